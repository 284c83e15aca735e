//! Reception reports about the doctor's streams in the kiosk's feedback packets.
//!
//! GStreamer 1.22's RTP session sends one regular report (sender report with report blocks) at the start of a call
//! and then, once feedback flows (transport-wide CC, NACK, PLI: several a second), only early feedback packets: an
//! early request scheduled at the regular report's time takes its place as an early packet, and early packets are
//! reduced-size (no report blocks). The doctor's browser then never learns its round trip to the kiosk (its
//! `remote-inbound-rtp` has no `roundTripTime`): Chrome re-asked for lost packets far more often than once per round
//! trip and played the kiosk's picture out with no room for a retransmission, so every repair froze it.
//!
//! So every early packet, at most every [`EVERY`], gets a receiver report with a block about each of the doctor's
//! streams (`core::reception_report`): the counts the session keeps, and the last sender report echoed with the time
//! since it arrived (read from each received RTCP packet).

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::ToGlibPtr;
use gstreamer::prelude::*;
use gstreamer_rtp as gst_rtp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::core::reception_report::{LastSenderReport, ReceiveCounts, ReportBlock, report_block};

/// The least time between two added reports.
const EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    /// Per SSRC: the last sender report's NTP time and when it was first seen.
    sender_reports: HashMap<u32, (u64, Instant)>,
    /// Per SSRC: the counts at the last block sent.
    previous: HashMap<u32, ReceiveCounts>,
    last_added: Option<Instant>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connects to the internal RTP session (session 0, everything is bundled) of `webrtc`.
pub(super) fn add_reception_reports(webrtc: &gst::Element) {
    let Some(session) = super::tuning::rtpbin(webrtc)
        .and_then(|b| b.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32]))
    else {
        tracing::warn!("no RTP session to add reception reports to");
        return;
    };
    let state = Arc::new(Mutex::new(State::default()));
    let seen = state.clone();
    // Every RTCP packet from the doctor (decrypted): note when each stream's sender report arrived.
    session.connect("on-receiving-rtcp", false, move |args| {
        let arrived = Instant::now();
        let found = args.get(1).map(sender_reports).unwrap_or_default();
        if !found.is_empty() {
            lock(&seen).sender_reports.extend(found.into_iter().map(|(ssrc, ntp)| (ssrc, (ntp, arrived))));
        }
        None
    });
    session.connect("on-sending-rtcp", false, move |args| {
        let early = args.get(2).and_then(|v| v.get::<bool>().ok()).unwrap_or(false);
        let added = early && add_to(args, &state);
        tracing::trace!(early, added, "RTCP packet leaving");
        // Whether the packet must not be suppressed; the other handlers still run (the results are or-ed).
        Some(added.to_value())
    });
}

fn flag(s: &gst::StructureRef, key: &str) -> bool {
    s.get::<bool>(key).unwrap_or(false)
}

/// A numeric field whatever its integer type.
fn number(s: &gst::StructureRef, key: &str) -> Option<i64> {
    let v = s.value(key).ok()?;
    v.get::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .or_else(|| v.get::<i64>().ok())
        .or_else(|| v.get::<u32>().ok().map(i64::from))
        .or_else(|| v.get::<i32>().ok().map(i64::from))
}

/// The GstBuffer an RTCP signal passes, as the C API takes it (not referenced: the signal's scope is static, so
/// the buffer stays writable for `on-sending-rtcp`'s handlers, as the session's own ones use it).
fn buffer_of(value: &glib::Value) -> *mut gst::ffi::GstBuffer {
    // SAFETY: reads the boxed pointer out of a value the signal holds for the duration of the handler.
    unsafe { glib::gobject_ffi::g_value_get_boxed(value.to_glib_none().0) as *mut gst::ffi::GstBuffer }
}

/// The sender reports in a received RTCP packet: (SSRC, NTP timestamp).
fn sender_reports(value: &glib::Value) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    let buffer = buffer_of(value);
    if buffer.is_null() {
        return found;
    }
    // SAFETY: the received packet, mapped read-only here and unmapped before return.
    unsafe {
        let mut rtcp: gst_rtp::ffi::GstRTCPBuffer = std::mem::zeroed();
        if gst_rtp::ffi::gst_rtcp_buffer_map(buffer, gst::ffi::GST_MAP_READ, &mut rtcp) == 0 {
            return found;
        }
        let mut packet: gst_rtp::ffi::GstRTCPPacket = std::mem::zeroed();
        let mut more = gst_rtp::ffi::gst_rtcp_buffer_get_first_packet(&mut rtcp, &mut packet) != 0;
        while more {
            if gst_rtp::ffi::gst_rtcp_packet_get_type(&mut packet) == gst_rtp::ffi::GST_RTCP_TYPE_SR {
                let (mut ssrc, mut ntp, mut rtp, mut packets, mut octets) = (0u32, 0u64, 0u32, 0u32, 0u32);
                gst_rtp::ffi::gst_rtcp_packet_sr_get_sender_info(
                    &mut packet,
                    &mut ssrc,
                    &mut ntp,
                    &mut rtp,
                    &mut packets,
                    &mut octets,
                );
                found.push((ssrc, ntp));
            }
            more = gst_rtp::ffi::gst_rtcp_packet_move_to_next(&mut packet) != 0;
        }
        gst_rtp::ffi::gst_rtcp_buffer_unmap(&mut rtcp);
    }
    found
}

/// Adds the receiver report to the packet in `args` (session, buffer, early). True when added.
fn add_to(args: &[glib::Value], state: &Mutex<State>) -> bool {
    let Some(session) = args.first().and_then(|v| v.get::<glib::Object>().ok()) else { return false };
    let now = Instant::now();
    let (own, blocks) = {
        let mut state = lock(state);
        if state.last_added.is_some_and(|t| now.duration_since(t) < EVERY) {
            return false;
        }
        let own = session.property::<u32>("internal-ssrc");
        let sources = session.property::<glib::ValueArray>("sources");
        let mut blocks: Vec<(u32, ReportBlock)> = Vec::new();
        for source in sources.iter().filter_map(|v| v.get::<glib::Object>().ok()) {
            let Some(stats) = source.property::<Option<gst::Structure>>("stats") else { continue };
            if flag(&stats, "internal") || !flag(&stats, "is-sender") {
                continue;
            }
            let Some(ssrc) = number(&stats, "ssrc").map(|n| n as u32) else { continue };
            let counts = ReceiveCounts {
                seqnum_base: number(&stats, "seqnum-base").filter(|n| *n >= 0).unwrap_or(0) as u32,
                packets_received: number(&stats, "packets-received").unwrap_or(0).max(0) as u64,
                packets_lost: number(&stats, "packets-lost").unwrap_or(0),
                jitter: number(&stats, "jitter").unwrap_or(0).max(0) as u32,
            };
            let sr =
                state.sender_reports.get(&ssrc).map(|&(ntp, at)| LastSenderReport { ntp, age: now.duration_since(at) });
            let block = report_block(state.previous.get(&ssrc).copied(), counts, sr);
            state.previous.insert(ssrc, counts);
            blocks.push((ssrc, block));
        }
        tracing::trace!(?blocks, sender_reports = state.sender_reports.len(), "reception report blocks");
        if blocks.is_empty() {
            return false;
        }
        state.last_added = Some(now);
        (own, blocks)
    };
    let Some(value) = args.get(1) else { return false };
    let buffer = buffer_of(value);
    // SAFETY: the packet being built, checked writable, mapped, added to and unmapped here, on the session's thread,
    // before the session sends it.
    unsafe {
        if buffer.is_null() || gst::ffi::gst_mini_object_is_writable(buffer as *const gst::ffi::GstMiniObject) == 0 {
            return false;
        }
        let mut rtcp: gst_rtp::ffi::GstRTCPBuffer = std::mem::zeroed();
        if gst_rtp::ffi::gst_rtcp_buffer_map(buffer, gst::ffi::GST_MAP_READWRITE, &mut rtcp) == 0 {
            return false;
        }
        let mut packet: gst_rtp::ffi::GstRTCPPacket = std::mem::zeroed();
        let added =
            gst_rtp::ffi::gst_rtcp_buffer_add_packet(&mut rtcp, gst_rtp::ffi::GST_RTCP_TYPE_RR, &mut packet) != 0;
        if added {
            gst_rtp::ffi::gst_rtcp_packet_rr_set_ssrc(&mut packet, own);
            for (ssrc, b) in &blocks {
                if gst_rtp::ffi::gst_rtcp_packet_add_rb(
                    &mut packet,
                    *ssrc,
                    b.fraction_lost,
                    b.cumulative_lost,
                    b.extended_highest_seq,
                    b.jitter,
                    b.last_sr,
                    b.delay_since_last_sr,
                ) == 0
                {
                    break;
                }
            }
        }
        gst_rtp::ffi::gst_rtcp_buffer_unmap(&mut rtcp);
        added
    }
}
