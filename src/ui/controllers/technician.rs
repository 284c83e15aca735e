//! The technician's PIN (a 3-second press on the clinic's name; five wrong tries lock it for a minute; an empty PIN
//! disables it) and screen: devices, encoder, addresses, the URL and its QR code, recent warnings, the camera and
//! microphone check, the vitals devices' test and the network check.

use slint::{ComponentHandle, SharedString};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::{KioskAdapter, Screen, Screens, TechnicianAdapter, model, qr_image};

#[derive(Default)]
pub(crate) struct Technician {
    pin_failures: Cell<u32>,
    locked_until: Cell<Option<Instant>>,
    /// When the screen's lines were last filled: they are refreshed every second while it shows.
    filled_at: Cell<Option<Instant>>,
}

/// Refreshes the technician screen's lines (the call's sending and receiving figures change) once a second.
pub(crate) fn tick(s: &Screens) {
    if s.window.global::<KioskAdapter>().get_screen() != Screen::Technician {
        return;
    }
    if s.technician.filled_at.get().is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        fill(s);
    }
}

const MAX_PIN_FAILURES: u32 = 5;
const PIN_LOCK: Duration = Duration::from_secs(60);

pub(crate) fn wire(s: &Rc<Screens>) {
    let weak = Rc::downgrade(s);
    s.window.global::<KioskAdapter>().on_technician_requested(move || {
        let Some(s) = weak.upgrade() else { return };
        if s.ctx.config.ui.technician_pin.is_empty() {
            tracing::info!("technician screen requested; it is disabled (ui.technician_pin is empty)");
            return;
        }
        let g = s.window.global::<TechnicianAdapter>();
        g.set_pin(SharedString::new());
        g.set_pin_refused(false);
        s.show(Screen::Pin);
    });
    let g = s.window.global::<TechnicianAdapter>();
    let weak = Rc::downgrade(s);
    g.on_submit_pin(move |pin| {
        let Some(s) = weak.upgrade() else { return };
        let t = &s.technician;
        let now = Instant::now();
        let locked = t.locked_until.get().is_some_and(|until| now < until);
        if !locked && model::pin_matches(&s.ctx.config.ui.technician_pin, &pin) {
            t.pin_failures.set(0);
            open(&s);
            s.show(Screen::Technician);
            return;
        }
        t.pin_failures.set(t.pin_failures.get() + 1);
        if t.pin_failures.get() >= MAX_PIN_FAILURES {
            t.pin_failures.set(0);
            t.locked_until.set(Some(now + PIN_LOCK));
        }
        s.touched();
        tracing::warn!("technician PIN refused");
        s.window.global::<TechnicianAdapter>().set_pin_refused(true);
    });
    let weak = Rc::downgrade(s);
    g.on_test_call(move || {
        let Some(s) = weak.upgrade() else { return };
        s.window.global::<TechnicianAdapter>().set_test_result("…".into());
        let sources = s.ctx.sources.clone();
        let check = async move {
            tokio::task::spawn_blocking(move || crate::media::device_check(&sources, Duration::from_secs(2)))
                .await
                .unwrap_or_else(|e| format!("The check stopped: {e}"))
        };
        s.off_thread(check, |s, text| s.window.global::<TechnicianAdapter>().set_test_result(text.into()));
    });
    let weak = Rc::downgrade(s);
    g.on_test_devices(move || {
        let Some(s) = weak.upgrade() else { return };
        s.window.global::<TechnicianAdapter>().set_devices_result("…".into());
        let devices = s.ctx.calls.media().vitals.devices.clone();
        let snapshot = move || devices.lock().map(|d| d.clone()).unwrap_or_default();
        let test = async move {
            let before = snapshot();
            tokio::time::sleep(DEVICE_TEST).await;
            model::device_test_lines(&before, &snapshot())
        };
        s.off_thread(test, |s, text| s.window.global::<TechnicianAdapter>().set_devices_result(text.into()));
    });
    let weak = Rc::downgrade(s);
    g.on_test_network(move || {
        let Some(s) = weak.upgrade() else { return };
        s.window.global::<TechnicianAdapter>().set_network_result("…".into());
        let servers = s.ctx.config.ice_servers.clone();
        let check = async move {
            tokio::task::spawn_blocking(move || crate::netcheck::check(&servers, NETWORK_CHECK).report())
                .await
                .unwrap_or_else(|e| format!("The check stopped: {e}"))
        };
        s.off_thread(check, |s, text| {
            s.window.global::<TechnicianAdapter>().set_network_result(text.trim_end().into())
        });
    });
}

/// How long the network check waits for each server (as `/api/network-check`).
const NETWORK_CHECK: Duration = Duration::from_secs(3);

/// How long the vitals device test watches each port: a 60 Hz oximeter sends hundreds of frames, a scale may send
/// none until someone steps on it.
const DEVICE_TEST: Duration = Duration::from_secs(4);

fn fill(s: &Screens) {
    let status = s.ctx.calls.status();
    let sources = &s.ctx.sources;
    let addresses: Vec<String> = if_addrs::get_if_addrs()
        .map(|l| l.into_iter().filter(|i| !i.is_loopback()).map(|i| format!("{} {}", i.name, i.ip())).collect())
        .unwrap_or_default();
    let lines = [
        format!("Camera: {}", if sources.video_is_test { "none (test picture)".into() } else { sources.video.clone() }),
        format!(
            "Microphone: {}",
            if sources.audio_is_test { "none (test tone)".into() } else { sources.audio.clone() }
        ),
        format!("Speaker: {}", sources.audio_sink),
        format!("Video encoder: {}", status.video_profiles.join(", ")),
        format!("Network: {}", if addresses.is_empty() { "no address".into() } else { addresses.join(", ") }),
        format!(
            "TLS certificate SHA-256: {}",
            s.ctx.fingerprint.as_deref().unwrap_or("(files from the configuration)")
        ),
        format!("Call: {}", status.call),
        format!("Sending: {}", status.sending.summary()),
        format!("Receiving: {}", status.receiving.summary()),
        format!("Version: {}", env!("CARGO_PKG_VERSION")),
    ];
    let devices = s.ctx.calls.media().vitals.devices.lock().map(|d| d.clone()).unwrap_or_default();
    let now = Instant::now();
    let vitals: Vec<String> = if devices.is_empty() {
        vec![format!(
            "Vitals devices: none (configured ports, or vitals-* in {})",
            s.ctx.config.devices.scan_dir.display()
        )]
    } else {
        devices.iter().map(|d| format!("Vitals device {}", model::device_line(d, now))).collect()
    };
    s.technician.filled_at.set(Some(now));
    let g = s.window.global::<TechnicianAdapter>();
    g.set_lines(lines.iter().chain(&vitals).cloned().collect::<Vec<_>>().join("\n").into());
    g.set_errors(crate::logring::recent().join("\n").into());
}

/// The screen as it opens: its lines, and the doctor's URL with its QR code (these do not change).
fn open(s: &Screens) {
    fill(s);
    let g = s.window.global::<TechnicianAdapter>();
    g.set_doctor_url(s.ctx.doctor_url.as_str().into());
    if let Some(img) = qr_image(&s.ctx.doctor_url) {
        g.set_qr(img);
    }
}
