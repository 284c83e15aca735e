//! Where the kiosk's pictures spend their time on the way out, for the debug log (target
//! `medimitra::media::session::send_delay`; the probes are attached only when that log is on). Logged every 10 s,
//! as means and maxima in ms:
//! - a frame's age (the pipeline's running time less the buffer's timestamp, the camera's capture time) where it
//!   enters the encoder, leaves it, and where the last packet of the frame leaves the payloader and the queue behind
//!   it;
//! - the gap between two packets of the same frame leaving that queue (each push runs through webrtcbin's whole send
//!   chain);
//! - for every video packet, the time since it left that queue where it enters and leaves webrtcbin's ULPFEC and RED
//!   encoders, enters its retransmission sender and the pacer (`rtpgccbwe`), leaves the pacer and reaches the network
//!   sink (after SRTP, which leaves the RTP header in the clear).

use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const TARGET: &str = "medimitra::media::session::send_delay";
const REPORT_EVERY_SECS: u64 = 10;

/// What is measured where, in the order a frame passes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Point {
    EncoderIn,
    EncoderOut,
    Payloaded,
    Queued,
    QueueGap,
    FecIn,
    FecOut,
    RedIn,
    RedOut,
    RtxIn,
    PacerIn,
    PacerOut,
    Wire,
}

const POINTS: [(Point, &str); 13] = [
    (Point::EncoderIn, "age entering the encoder"),
    (Point::EncoderOut, "leaving it"),
    (Point::Payloaded, "last packet payloaded"),
    (Point::Queued, "last packet out of the queue"),
    (Point::QueueGap, "gap between packets at the queue"),
    (Point::FecIn, "after the queue: ulpfec in"),
    (Point::FecOut, "ulpfec out"),
    (Point::RedIn, "red in"),
    (Point::RedOut, "red out"),
    (Point::RtxIn, "rtx sender in"),
    (Point::PacerIn, "pacer in"),
    (Point::PacerOut, "pacer out"),
    (Point::Wire, "network sink"),
];

#[derive(Default, Clone, Copy)]
struct Stat {
    count: u64,
    sum_ms: f64,
    max_ms: f64,
}

#[derive(Default)]
struct Delays {
    stats: [Stat; POINTS.len()],
    since: Option<Instant>,
    /// When each recent video packet left the queue, by sequence number.
    queued: HashMap<u16, Instant>,
    /// The RTP time and departure of the last packet out of the queue.
    last_queued: Option<(u32, Instant)>,
}

impl Delays {
    fn add(&mut self, point: Point, ms: f64) {
        let s = &mut self.stats[point as usize];
        s.count += 1;
        s.sum_ms += ms;
        s.max_ms = s.max_ms.max(ms);
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed().as_secs() >= REPORT_EVERY_SECS {
            let line = POINTS
                .iter()
                .zip(self.stats.iter())
                .filter(|(_, s)| s.count > 0)
                .map(|((_, name), s)| format!("{name} {:.1} (max {:.0})", s.sum_ms / s.count as f64, s.max_ms))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::debug!(target: TARGET, "video on its way out, ms: {line}");
            self.stats = [Stat::default(); POINTS.len()];
            self.since = Some(Instant::now());
        }
    }
}

/// Whether the debug log that reads these is on.
pub(super) fn wanted() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// Probes the video chain of a session: `encoder`, `payloader` and the queue after it, and webrtcbin's elements once
/// it makes them. `audio_pt` tells the audio's packets apart.
pub(super) fn attach(encoder: &gst::Element, payloader: &gst::Element, webrtc: &gst::Element, audio_pt: u32) {
    let delays = Arc::new(Mutex::new(Delays::default()));
    probe(&delays, Point::EncoderIn, encoder, "sink", None);
    probe(&delays, Point::EncoderOut, encoder, "src", None);
    probe(&delays, Point::Payloaded, payloader, "src", Some(audio_pt));
    if let Some(queue) = payloader.static_pad("src").and_then(|p| p.peer()).and_then(|p| p.parent_element()) {
        probe(&delays, Point::Queued, &queue, "src", Some(audio_pt));
    }
    webrtc.connect("deep-element-added", false, move |args| {
        let element = args.get(2).and_then(|v| v.get::<gst::Element>().ok())?;
        let factory = element.factory()?;
        let pads: &[(Point, &str)] = match factory.name().as_str() {
            "rtpulpfecenc" => &[(Point::FecIn, "sink"), (Point::FecOut, "src")],
            "rtpredenc" => &[(Point::RedIn, "sink"), (Point::RedOut, "src")],
            "rtprtxsend" => &[(Point::RtxIn, "sink")],
            "rtpgccbwe" => &[(Point::PacerIn, "sink"), (Point::PacerOut, "src")],
            "nicesink" => &[(Point::Wire, "sink")],
            _ => return None,
        };
        for (point, pad) in pads {
            probe(&delays, *point, &element, pad, Some(audio_pt));
        }
        None
    });
}

/// Records what passes `element`'s `pad`: every buffer, or with `rtp_but` the RTP packets not of that payload type.
fn probe(delays: &Arc<Mutex<Delays>>, point: Point, element: &gst::Element, pad: &str, rtp_but: Option<u32>) {
    let Some(pad) = element.static_pad(pad) else { return };
    let (delays, element) = (delays.clone(), element.downgrade());
    pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, move |pad, info| {
        let Some(element) = element.upgrade() else { return gst::PadProbeReturn::Ok };
        let each = |b: &gst::BufferRef| {
            let mut head = [0u8; 8];
            let rtp = rtp_but.map(|not_pt| {
                b.copy_to_slice(0, &mut head).is_ok() && head[0] >> 6 == 2 && u32::from(head[1] & 0x7f) != not_pt
            });
            match rtp {
                None => record_age(&delays, point, &element, pad, b),
                Some(false) => {}
                Some(true) => {
                    let marker = head[1] & 0x80 != 0;
                    let seq = u16::from_be_bytes([head[2], head[3]]);
                    let rtp_time = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                    record_packet(&delays, point, &element, pad, b, (marker, seq, rtp_time));
                }
            }
        };
        match &info.data {
            Some(gst::PadProbeData::Buffer(b)) => each(b),
            Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(each),
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}

/// A buffer's age since capture. Timestamps are read through the pad's segment: an encoder may shift them (x264enc
/// adds 1000 hours).
fn age_ms(element: &gst::Element, pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<f64> {
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let captured = segment.segment().downcast_ref::<gst::ClockTime>()?.to_running_time(buffer.pts())?;
    let now = element.current_running_time()?;
    Some(now.saturating_sub(captured).nseconds() as f64 / 1e6)
}

fn record_age(delays: &Mutex<Delays>, point: Point, element: &gst::Element, pad: &gst::Pad, buffer: &gst::BufferRef) {
    if let Some(age) = age_ms(element, pad, buffer) {
        delays.lock().unwrap_or_else(|p| p.into_inner()).add(point, age);
    }
}

fn record_packet(
    delays: &Mutex<Delays>,
    point: Point,
    element: &gst::Element,
    pad: &gst::Pad,
    buffer: &gst::BufferRef,
    (marker, seq, rtp_time): (bool, u16, u32),
) {
    let age = if marker && point <= Point::Queued { age_ms(element, pad, buffer) } else { None };
    let now = Instant::now();
    let mut d = delays.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(age) = age {
        d.add(point, age);
    }
    if point == Point::Queued {
        if let Some((last_time, at)) = d.last_queued
            && last_time == rtp_time
        {
            d.add(Point::QueueGap, now.duration_since(at).as_secs_f64() * 1000.0);
        }
        d.last_queued = Some((rtp_time, now));
        if d.queued.len() > 2000 {
            d.queued.clear();
        }
        d.queued.insert(seq, now);
    } else if point > Point::QueueGap
        && let Some(at) = d.queued.get(&seq).copied()
    {
        d.add(point, now.duration_since(at).as_secs_f64() * 1000.0);
    }
}
