//! The call's data channels: the kiosk's vitals to the doctor's page, on the call's own peer connection (one
//! SCTP association inside the same DTLS transport as the media). Numbers and states go on a reliable, ordered
//! channel; the pleth waveform on an unordered one without retransmission, where a late sample is worth nothing.
//! Both are made before the offer (and after webrtcbin reached PLAYING: before, it makes none), so the offer carries
//! them and the page gets them with `ondatachannel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::broadcast::error::TryRecvError;

use crate::core::vitals::wire::{NUMBERS_CHANNEL, VitalsMessage, WAVE_CHANNEL};
use crate::devices::VitalsFeed;

/// How often the forwarding thread looks for new messages: well inside the 300 ms a reading may take to reach the
/// doctor's screen.
const POLL: Duration = Duration::from_millis(10);

/// Creates both channels on `webrtc` (before its offer) and forwards the feed's messages to them until `stop`.
pub(super) fn open_vitals_channels(webrtc: &gst::Element, feed: &VitalsFeed, stop: Arc<AtomicBool>) {
    let numbers = create(webrtc, NUMBERS_CHANNEL, None);
    let wave = create(
        webrtc,
        WAVE_CHANNEL,
        Some(gst::Structure::builder("config").field("ordered", false).field("max-retransmits", 0i32).build()),
    );
    let (Some(numbers), Some(wave)) = (numbers, wave) else {
        tracing::warn!("webrtcbin made no data channel: the doctor will not see the vitals in this call");
        return;
    };
    // A page that opens its channel after the readings began gets every device's latest state first.
    let latest = feed.latest.clone();
    numbers.connect_on_open(move |channel| {
        for m in latest.lock().map(|l| l.clone()).unwrap_or_default() {
            send(channel, &m);
        }
    });
    let mut rx = feed.sender.subscribe();
    // Also ends when the webrtcbin is gone (a session that failed to start is never stopped).
    let alive = webrtc.downgrade();
    let spawned = std::thread::Builder::new().name("vitals-channel".into()).spawn(move || {
        while !stop.load(Ordering::SeqCst) && alive.upgrade().is_some() {
            match rx.try_recv() {
                Ok(m) => send(if m.channel() == NUMBERS_CHANNEL { &numbers } else { &wave }, &m),
                Err(TryRecvError::Empty) => std::thread::sleep(POLL),
                Err(TryRecvError::Lagged(n)) => tracing::debug!("vitals: {n} messages skipped (the channel lagged)"),
                Err(TryRecvError::Closed) => break,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("vitals: no forwarding thread: {e}");
    }
}

/// The `chat` channel (reliable, ordered): the doctor's messages go to the patient's screen (`LiveMedia::chat`), the
/// patient's quick replies go back, until `stop`. Message texts are never logged.
pub(super) fn open_chat_channel(webrtc: &gst::Element, live: &Arc<crate::media::LiveMedia>, stop: Arc<AtomicBool>) {
    let Some(chat) = create(webrtc, crate::core::chat::CHAT_CHANNEL, None) else {
        tracing::warn!("webrtcbin made no chat channel: the doctor cannot write to the patient in this call");
        return;
    };
    let inbox = Arc::downgrade(live);
    chat.connect_on_message_string(move |_, text| {
        let Some(live) = inbox.upgrade() else { return };
        match crate::core::chat::from_doctor(text.unwrap_or_default()) {
            Ok(crate::core::chat::FromDoctor::Message(message)) => live.chat.received(message),
            Ok(crate::core::chat::FromDoctor::Sharing(on)) => live.chat.set_sharing(on),
            Err(e) => tracing::info!("a chat message from the doctor was not shown: {}", kind_of(&e)),
        }
    });
    let mut replies = live.chat.replies();
    let alive = webrtc.downgrade();
    let spawned = std::thread::Builder::new().name("chat-channel".into()).spawn(move || {
        while !stop.load(Ordering::SeqCst) && alive.upgrade().is_some() {
            match replies.try_recv() {
                Ok(reply) => {
                    if chat.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
                        && let Err(e) = chat.send_string_full(Some(&reply.to_json()))
                    {
                        tracing::warn!("chat: the patient's reply was not sent: {e}");
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Lagged(_)) => std::thread::sleep(POLL),
                Err(TryRecvError::Closed) => break,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("chat: no forwarding thread: {e}");
    }
}

/// Why a message was refused, without its text (a doctor's words are patient data).
fn kind_of(e: &crate::core::chat::ChatError) -> &'static str {
    use crate::core::chat::ChatError;
    match e {
        ChatError::NotAMessage(_) => "not a chat message",
        ChatError::Empty => "empty",
        ChatError::TooLong(_) => "too long",
    }
}

fn create(
    webrtc: &gst::Element,
    label: &str,
    options: Option<gst::Structure>,
) -> Option<gst_webrtc::WebRTCDataChannel> {
    webrtc.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>("create-data-channel", &[&label, &options])
}

/// Sends when the channel is open; before that (ICE and DTLS still coming up) the message is dropped, and the page
/// gets the latest state when the channel opens.
fn send(channel: &gst_webrtc::WebRTCDataChannel, m: &VitalsMessage) {
    if channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
        && let Err(e) = channel.send_string_full(Some(&m.to_json()))
    {
        tracing::debug!("vitals: not sent: {e}");
    }
}
