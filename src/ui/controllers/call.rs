//! The call screens: incoming (with the ring tone), in call (the doctor's picture, the self view, the patient's
//! controls, connection quality, the timer) and call ended. They follow the call service's status; the buttons are
//! intents to the same call core the doctor's side drives.

use slint::{ComponentHandle, Image, Rgba8Pixel, SharedPixelBuffer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::{CallAdapter, EndReason, KioskAdapter, OximeterPrompt, Screen, Screens, model};
use crate::calls::{KioskStatus, PatientIntent};
use crate::core::{CallPhase, CallState};
use crate::media::{RingTone, VideoFrame};

pub(crate) struct Call {
    /// The call state last shown, to notice changes.
    shown: Cell<CallState>,
    started: Cell<Option<Instant>>,
    /// Doctor's frames counted at the last second: (count, when, frames per second).
    frame_rate: Cell<(u64, Instant, f64)>,
    /// Sounds while the incoming-call screen is up: 1 s on, 2 s off.
    ring: RefCell<Option<(RingTone, Instant)>>,
    drawn: Cell<u64>,
}

impl Default for Call {
    fn default() -> Self {
        Self {
            shown: Cell::new(CallState::Idle),
            started: Cell::new(None),
            frame_rate: Cell::new((0, Instant::now(), 0.0)),
            ring: RefCell::new(None),
            drawn: Cell::new(0),
        }
    }
}

impl Call {
    pub(crate) fn ringing(&self) -> bool {
        self.ring.borrow().as_ref().is_some_and(|(r, _)| r.is_sounding())
    }
    pub(crate) fn frames_drawn(&self) -> u64 {
        self.drawn.get()
    }
}

/// The core's reason, as the screen's enum: one match, so a new reason cannot be forgotten here.
fn end_reason(r: crate::core::EndReason) -> EndReason {
    use crate::core::EndReason as R;
    match r {
        // To the patient, a doctor whose session ended has left the call.
        R::DoctorEnded | R::SessionEnded => EndReason::DoctorEnded,
        R::PatientEnded => EndReason::PatientEnded,
        R::Declined => EndReason::Declined,
        R::NoAnswer => EndReason::NoAnswer,
        R::DoctorLost => EndReason::DoctorLost,
        R::MediaFailed => EndReason::MediaFailed,
        R::NegotiationFailed => EndReason::NegotiationFailed,
        R::NotResumable => EndReason::NotResumable,
        R::KioskStopping => EndReason::KioskStopping,
        R::KioskRestarted => EndReason::KioskRestarted,
    }
}

pub(crate) fn wire(s: &Rc<Screens>) {
    let weak = Rc::downgrade(s);
    s.window.global::<CallAdapter>().on_quick_reply(move |i| {
        let Some(s) = weak.upgrade() else { return };
        use crate::core::chat::QuickReply;
        let Some(reply) = usize::try_from(i).ok().and_then(|i| QuickReply::ALL.get(i).copied()) else { return };
        s.ctx.calls.media().chat.reply(reply);
        s.window.global::<CallAdapter>().set_chat_message("".into());
    });
    let g = s.window.global::<CallAdapter>();
    show_controls(s);
    let calls = s.ctx.calls.clone();
    g.on_accept(move || {
        calls.patient(PatientIntent::Accept);
    });
    let calls = s.ctx.calls.clone();
    g.on_decline(move || {
        calls.patient(PatientIntent::Decline);
    });
    let calls = s.ctx.calls.clone();
    g.on_end_call(move || {
        calls.patient(PatientIntent::End);
    });
    // The media engine's controls are the state; the screen shows them.
    let weak = Rc::downgrade(s);
    g.on_toggle_mute(move || {
        if let Some(s) = weak.upgrade() {
            let c = &s.ctx.calls.media().controls;
            c.set_muted(!c.muted());
            show_controls(&s);
        }
    });
    let weak = Rc::downgrade(s);
    g.on_toggle_camera(move || {
        if let Some(s) = weak.upgrade() {
            let c = &s.ctx.calls.media().controls;
            c.set_camera_off(!c.camera_off());
            show_controls(&s);
        }
    });
    let weak = Rc::downgrade(s);
    g.on_set_volume(move |v| {
        if let Some(s) = weak.upgrade() {
            s.ctx.calls.media().controls.set_volume(f64::from(v));
            show_controls(&s);
        }
    });
}

fn show_controls(s: &Screens) {
    let c = &s.ctx.calls.media().controls;
    let g = s.window.global::<CallAdapter>();
    g.set_muted(c.muted());
    g.set_camera_off(c.camera_off());
    g.set_volume(c.volume() as f32);
}

pub(crate) fn tick(s: &Screens) {
    let status = s.ctx.calls.status();
    follow_call(s, &status);
    let screen = s.window.global::<KioskAdapter>().get_screen();
    ring_while_incoming(s, screen == Screen::Incoming);
    if screen == Screen::Incall {
        draw_call(s, &status);
    }
}

/// Moves between the call screens as the call core's status changes.
fn follow_call(s: &Screens, status: &KioskStatus) {
    let last = s.call.shown.get();
    if last == status.call {
        return;
    }
    s.call.shown.set(status.call);
    let g = s.window.global::<CallAdapter>();
    match status.call {
        CallState::Incoming => {
            g.set_doctor_name(status.doctor_name.clone().unwrap_or_default().into());
            s.show(Screen::Incoming);
        }
        CallState::InCall => {
            s.ctx.calls.media().controls.reset();
            show_controls(s);
            g.set_confirm_end(false);
            g.set_has_remote_video(false);
            g.set_has_self_video(false);
            s.call.started.set(Some(Instant::now()));
            s.call.frame_rate.set((status.remote_video_frames, Instant::now(), 0.0));
            s.show(Screen::Incall);
        }
        CallState::Ended if matches!(last, CallState::Incoming | CallState::InCall) => {
            g.set_ended_reason(status.ended_reason.map_or(EndReason::None, end_reason));
            g.set_confirm_end(false);
            s.call.started.set(None);
            s.show(Screen::Ended);
        }
        _ => {}
    }
}

fn ring_while_incoming(s: &Screens, incoming: bool) {
    let mut ring = s.call.ring.borrow_mut();
    if !incoming {
        *ring = None;
        return;
    }
    if ring.is_none() {
        match RingTone::start(&s.ctx.sources.audio_sink) {
            Ok(r) => *ring = Some((r, Instant::now())),
            Err(e) => tracing::warn!(error = %e, "no ring tone"),
        }
    }
    if let Some((r, since)) = ring.as_ref() {
        r.set_sounding(since.elapsed().as_millis() % 3000 < 1000);
    }
}

fn image_of(f: &VideoFrame) -> Option<Image> {
    let expected = f.width as usize * f.height as usize * 4;
    (f.rgba.len() == expected && f.width > 0)
        .then(|| Image::from_rgba8(SharedPixelBuffer::<Rgba8Pixel>::clone_from_slice(&f.rgba, f.width, f.height)))
}

/// The newest pictures, the connection quality, the reconnecting banner and the timer.
fn draw_call(s: &Screens, status: &KioskStatus) {
    let g = s.window.global::<CallAdapter>();
    let pictures = &s.ctx.calls.media().pictures;
    if let Some(img) = pictures.take_doctor().as_ref().and_then(image_of) {
        g.set_remote_video(img);
        g.set_has_remote_video(true);
        s.call.drawn.set(s.call.drawn.get() + 1);
    }
    if let Some(img) = pictures.take_self_view().as_ref().and_then(image_of) {
        g.set_self_video(img);
        g.set_has_self_video(true);
    }
    let reconnecting = status.phase == Some(CallPhase::Reconnecting);
    let (count, since, mut fps) = s.call.frame_rate.get();
    let elapsed = since.elapsed();
    if elapsed >= Duration::from_secs(1) {
        fps = status.remote_video_frames.saturating_sub(count) as f64 / elapsed.as_secs_f64();
        s.call.frame_rate.set((status.remote_video_frames, Instant::now(), fps));
    }
    g.set_quality(model::quality(fps, status.send_bitrate_kbps, reconnecting));
    g.set_reconnecting(reconnecting);
    let secs = s.call.started.get().map(|t| t.elapsed().as_secs()).unwrap_or(0);
    g.set_call_timer(model::call_timer(secs).into());
    show_oximeter(s);
    let sharing = s.ctx.calls.media().chat.sharing();
    g.set_doctor_sharing(sharing);
    if let Some(img) = pictures.take_shared().as_ref().and_then(image_of) {
        g.set_shared_video(img);
        g.set_has_shared_video(sharing);
    } else if !sharing {
        g.set_has_shared_video(false);
    }
    let message = s.ctx.calls.media().chat.latest().1.unwrap_or_default();
    if g.get_chat_message().as_str() != message {
        g.set_chat_message(message.into());
    }
}

/// The pulse oximeter's numbers and prompt, from the same feed the doctor's page gets.
fn show_oximeter(s: &Screens) {
    let g = s.window.global::<CallAdapter>();
    let latest = s.ctx.calls.media().vitals.latest.lock().map(|l| l.clone()).unwrap_or_default();
    let Some(view) = model::oximeter_view(&latest) else {
        g.set_oximeter_shown(false);
        return;
    };
    g.set_oximeter_shown(true);
    g.set_spo2(view.spo2.into());
    g.set_pulse(view.pulse.into());
    g.set_oximeter_prompt(match view.prompt {
        model::OximeterPrompt::None => OximeterPrompt::None,
        model::OximeterPrompt::PutFinger => OximeterPrompt::PutFinger,
        model::OximeterPrompt::Searching => OximeterPrompt::Searching,
        model::OximeterPrompt::Unplugged => OximeterPrompt::Unplugged,
    });
}
