//! The call's data channels, on the call's own peer connection (one SCTP association inside the same DTLS transport
//! as the media): the kiosk's vitals to the doctor's page (numbers and states on a reliable, ordered channel; the
//! pleth waveform on an unordered one without retransmission, where a late sample is worth nothing) and the chat
//! (a new message from the doctor chimes on the speaker).
//! All are made before the offer (and after webrtcbin reached PLAYING: before, it makes none), so the offer carries
//! them and the page gets them with `ondatachannel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::broadcast::error::TryRecvError;

use crate::core::chat::{CHAT_CHANNEL, FromDoctor, from_doctor};
use crate::core::vitals::wire::{NUMBERS_CHANNEL, WAVE_CHANNEL};
use crate::media::LiveMedia;

/// How often the forwarding thread looks for new messages: well inside the 300 ms a reading may take to reach the
/// doctor's screen.
const POLL: Duration = Duration::from_millis(10);

/// Creates the call's channels on `webrtc` (before its offer): `vitals` (reliable: numbers and states), `vitals-wave`
/// (unordered, no retransmission: the pleth waveform) and `chat` (reliable: the doctor's messages in, the patient's
/// quick replies out). One thread forwards the vitals feed and the replies until `stop`, or until the webrtcbin is
/// gone (a session that failed to start is never stopped). Message texts are never logged.
pub(super) fn open_channels(webrtc: &gst::Element, live: &Arc<LiveMedia>, stop: Arc<AtomicBool>) {
    let numbers = create(webrtc, NUMBERS_CHANNEL, None);
    let wave = create(
        webrtc,
        WAVE_CHANNEL,
        Some(gst::Structure::builder("config").field("ordered", false).field("max-retransmits", 0i32).build()),
    );
    let chat = create(webrtc, CHAT_CHANNEL, None);
    let (Some(numbers), Some(wave), Some(chat)) = (numbers, wave, chat) else {
        tracing::warn!("webrtcbin made no data channel: no vitals or chat in this call");
        return;
    };
    // A page that opens its channel after the readings began gets every device's latest state first.
    let latest = live.vitals.latest.clone();
    numbers.connect_on_open(move |channel| {
        for m in latest.lock().map(|l| l.clone()).unwrap_or_default() {
            send(channel, &m.to_json());
        }
    });
    let inbox = Arc::downgrade(live);
    let call = webrtc.parent().and_then(|p| p.downcast::<gst::Pipeline>().ok()).map(|p| p.downgrade());
    chat.connect_on_message_string(move |_, text| {
        let Some(live) = inbox.upgrade() else { return };
        match from_doctor(text.unwrap_or_default()) {
            Ok(FromDoctor::Message(message)) => {
                live.chat.received(message);
                // The patient hears that something new is on the screen.
                if let Some(Err(e)) = call.as_ref().and_then(|c| c.upgrade()).map(|p| super::chime::play(&p)) {
                    tracing::warn!("no chime for a chat message: {e}");
                }
            }
            Ok(FromDoctor::Sharing(on)) => live.chat.set_sharing(on),
            Err(e) => tracing::info!("a chat message from the doctor was not shown: {}", kind_of(&e)),
        }
    });
    let (mut vitals, mut replies) = (live.vitals.sender.subscribe(), live.chat.replies());
    let alive = webrtc.downgrade();
    let spawned = std::thread::Builder::new().name("data-channels".into()).spawn(move || {
        while !stop.load(Ordering::SeqCst) && alive.upgrade().is_some() {
            let mut idle = true;
            match vitals.try_recv() {
                Ok(m) => {
                    idle = false;
                    send(if m.channel() == NUMBERS_CHANNEL { &numbers } else { &wave }, &m.to_json());
                }
                Err(TryRecvError::Lagged(n)) => tracing::debug!("vitals: {n} messages skipped (the channel lagged)"),
                Err(TryRecvError::Empty | TryRecvError::Closed) => {}
            }
            if let Ok(reply) = replies.try_recv() {
                idle = false;
                send(&chat, &reply.to_json());
            }
            if idle {
                std::thread::sleep(POLL);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("data channels: no forwarding thread: {e}");
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

/// Sends when the channel is open; before that (ICE and DTLS still coming up) the message is dropped: the page gets
/// the vitals' latest state when the channel opens, and a quick reply is only offered once a message arrived on it.
fn send(channel: &gst_webrtc::WebRTCDataChannel, json: &str) {
    if channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
        && let Err(e) = channel.send_string_full(Some(json))
    {
        tracing::debug!("data channel {}: not sent: {e}", channel.label().unwrap_or_default());
    }
}
