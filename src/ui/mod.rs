//! The patient's touch UI (Slint). It shows state and sends intents: check-in goes through the store's appointment
//! rules, the call through the same [`CallsHandle`] the doctor's side and the local control use. Call logic lives in
//! `core::call` only.
//!
//! One timer on the UI thread (30 Hz) reads the call status, moves between screens and takes the newest decoded
//! frame from the media engine's one-frame slot: when drawing is slower than the stream, frames are skipped, never
//! queued.

pub mod model;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use slint::{ComponentHandle, Image, ModelRc, Rgb8Pixel, Rgba8Pixel, SharedPixelBuffer, SharedString, VecModel};

use crate::calls::{CallsHandle, KioskStatus, PatientIntent};
use crate::config::Config;
use crate::core::AppointmentStatus;
use crate::media::{Sources, VideoFrame};
use crate::store::{AppointmentFilter, Store};

slint::include_modules!();

/// What the UI needs from the rest of the kiosk.
pub struct UiContext {
    pub store: Store,
    pub calls: CallsHandle,
    pub config: Arc<Config>,
    pub sources: Sources,
    /// The URL doctors open (shown on the technician screen, also as a QR code).
    pub doctor_url: String,
    pub fingerprint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("cannot open the kiosk screen ({backend}): {message}")]
    Platform { backend: String, message: String },
    #[error("the kiosk screen stopped: {0}")]
    EventLoop(String),
}

/// Picks the Slint backend from `ui.backend` ("auto" leaves the choice to Slint and `SLINT_BACKEND`).
pub fn select_backend(backend: &str) -> Result<(), UiError> {
    let mut selector = slint::BackendSelector::new();
    if backend != "auto" {
        selector = selector.backend_name(backend.to_string());
    }
    selector.select().map_err(|e| UiError::Platform { backend: backend.into(), message: e.to_string() })
}

#[derive(Debug, Clone)]
struct Pending {
    id: i64,
    first_name: String,
    time: String,
    doctor: String,
}

struct State {
    pending: Option<Pending>,
    last_call: &'static str,
    call_started: Option<Instant>,
    /// When the current screen was last touched or shown (for returning to Welcome).
    since: Instant,
    frames: (u64, Instant, f64),
    pin_failures: u32,
    pin_locked_until: Option<Instant>,
    /// When the network was last looked at.
    network_checked: Option<Instant>,
    /// Sounds while the incoming-call screen is up: 1 s on, 2 s off.
    ringer: Option<(crate::media::Ringer, Instant)>,
}

/// The running UI. Create it on the thread that runs the event loop.
pub struct Ui {
    window: KioskWindow,
    ctx: Rc<UiContext>,
    state: Rc<RefCell<State>>,
    drawn: Rc<Cell<u64>>,
    timer: slint::Timer,
}

impl Ui {
    pub fn new(ctx: UiContext) -> Result<Ui, UiError> {
        let window = KioskWindow::new()
            .map_err(|e| UiError::Platform { backend: ctx.config.ui.backend.clone(), message: e.to_string() })?;
        // From now on the engine converts decoded frames to RGBA and keeps a self view for us.
        ctx.calls.media().want_frames.store(true, std::sync::atomic::Ordering::Relaxed);
        let ui = Ui {
            window,
            ctx: Rc::new(ctx),
            state: Rc::new(RefCell::new(State {
                pending: None,
                last_call: "idle",
                call_started: None,
                since: Instant::now(),
                frames: (0, Instant::now(), 0.0),
                pin_failures: 0,
                pin_locked_until: None,
                ringer: None,
                network_checked: None,
            })),
            drawn: Rc::new(Cell::new(0)),
            timer: slint::Timer::default(),
        };
        ui.window.set_clinic_name(ui.ctx.config.clinic.name.as_str().into());
        show_controls(&ui.window.as_weak(), &ui.ctx);
        set_language(&ui.window, &ui.ctx.config.ui.language);
        ui.wire();
        ui.tick();
        Ok(ui)
    }

    pub fn window(&self) -> &KioskWindow {
        &self.window
    }

    /// Whether the ring tone is sounding now.
    pub fn ringing(&self) -> bool {
        self.state.borrow().ringer.as_ref().is_some_and(|(r, _)| r.is_sounding())
    }

    /// Remote frames put on screen so far.
    pub fn frames_drawn(&self) -> u64 {
        self.drawn.get()
    }

    /// Shows the window and runs the event loop until it is closed or [`slint::quit_event_loop`] is called.
    pub fn run(self) -> Result<(), UiError> {
        self.window.show().map_err(|e| UiError::EventLoop(e.to_string()))?;
        if self.ctx.config.ui.fullscreen {
            self.window.window().set_fullscreen(true);
        }
        self.start_timer();
        slint::run_event_loop().map_err(|e| UiError::EventLoop(e.to_string()))
    }

    /// Drives [`Ui::tick`] 30 times a second from the event loop.
    pub fn start_timer(&self) {
        let weak = self.window.as_weak();
        let ctx = self.ctx.clone();
        let state = self.state.clone();
        let drawn = self.drawn.clone();
        self.timer.start(slint::TimerMode::Repeated, Duration::from_millis(33), move || {
            if let Some(w) = weak.upgrade() {
                tick(&w, &ctx, &state, &drawn);
            }
        });
    }

    /// One update: clock, call status to screens, newest frames, returning idle screens to Welcome.
    pub fn tick(&self) {
        tick(&self.window, &self.ctx, &self.state, &self.drawn);
    }

    fn wire(&self) {
        let w = &self.window;
        let weak = || w.as_weak();

        let ww = weak();
        w.on_choose_language(move |lang| {
            if let Some(w) = ww.upgrade() {
                set_language(&w, &lang);
            }
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_start_checkin(move || {
            let Some(w) = ww.upgrade() else { return };
            w.set_problem(Problem::None);
            w.set_code(SharedString::new());
            match todays_slots(&ctx.store) {
                Ok(slots) => w.set_slots(ModelRc::new(VecModel::from(slots))),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read today's appointments");
                    w.set_slots(ModelRc::new(VecModel::from(Vec::<Slot>::new())));
                    w.set_problem(Problem::Store);
                }
            }
            show(&w, &st, Screen::Checkin);
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_choose_slot(move |id| {
            if let Some(w) = ww.upgrade() {
                propose(&w, &ctx, &st, i64::from(id));
            }
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_submit_code(move |code| {
            let Some(w) = ww.upgrade() else { return };
            match code.trim().parse::<i64>() {
                Ok(id) if id > 0 => propose(&w, &ctx, &st, id),
                _ => {
                    w.set_problem(Problem::CodeNotFound);
                    st.borrow_mut().since = Instant::now();
                }
            }
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_confirm_yes(move || {
            let Some(w) = ww.upgrade() else { return };
            let Some(p) = st.borrow().pending.clone() else { return };
            let now = Utc::now();
            let id = p.id;
            let r = ctx.store.write_blocking(move |db| {
                let a = db.set_appointment_status(id, AppointmentStatus::CheckedIn, now)?;
                db.audit("kiosk", "check_in", &format!("appointment:{id}"), &format!("-> {}", a.status), now)
            });
            match r {
                Ok(()) => {
                    tracing::info!(appointment = id, "patient checked in at the kiosk");
                    w.set_doctor_name(p.doctor.as_str().into());
                    w.set_appointment_time(p.time.as_str().into());
                    show(&w, &st, Screen::Waiting);
                }
                Err(e) => {
                    tracing::warn!(appointment = id, error = %e, "check-in refused");
                    w.set_problem(Problem::NotToday);
                    show(&w, &st, Screen::Checkin);
                }
            }
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_back_to_welcome(move || {
            if let Some(w) = ww.upgrade() {
                to_welcome(&w, &ctx, &st);
            }
        });

        let ctx = self.ctx.clone();
        w.on_accept(move || {
            ctx.calls.patient(PatientIntent::Accept);
        });
        let ctx = self.ctx.clone();
        w.on_decline(move || {
            ctx.calls.patient(PatientIntent::Decline);
        });
        let ctx = self.ctx.clone();
        w.on_end_call(move || {
            ctx.calls.patient(PatientIntent::End);
        });

        // The media engine's controls are the state; the screen shows them.
        let (ww, ctx) = (weak(), self.ctx.clone());
        w.on_toggle_mute(move || {
            let c = &ctx.calls.media().controls;
            c.set_muted(!c.muted());
            show_controls(&ww, &ctx);
        });
        let (ww, ctx) = (weak(), self.ctx.clone());
        w.on_toggle_camera(move || {
            let c = &ctx.calls.media().controls;
            c.set_camera_off(!c.camera_off());
            show_controls(&ww, &ctx);
        });
        let (ww, ctx) = (weak(), self.ctx.clone());
        w.on_set_volume(move |v| {
            ctx.calls.media().controls.set_volume(f64::from(v));
            show_controls(&ww, &ctx);
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_technician_requested(move || {
            let Some(w) = ww.upgrade() else { return };
            if ctx.config.ui.technician_pin.is_empty() {
                tracing::info!("technician screen requested; it is disabled (ui.technician_pin is empty)");
                return;
            }
            w.set_pin(SharedString::new());
            w.set_pin_refused(false);
            show(&w, &st, Screen::Pin);
        });

        let (ww, ctx, st) = (weak(), self.ctx.clone(), self.state.clone());
        w.on_submit_pin(move |pin| {
            let Some(w) = ww.upgrade() else { return };
            let now = Instant::now();
            let locked = st.borrow().pin_locked_until.is_some_and(|t| now < t);
            if !locked && model::pin_matches(&ctx.config.ui.technician_pin, &pin) {
                st.borrow_mut().pin_failures = 0;
                fill_technician(&w, &ctx);
                show(&w, &st, Screen::Technician);
                return;
            }
            let mut s = st.borrow_mut();
            s.pin_failures += 1;
            if s.pin_failures >= 5 {
                s.pin_failures = 0;
                s.pin_locked_until = Some(now + Duration::from_secs(60));
            }
            s.since = now;
            tracing::warn!("technician PIN refused");
            w.set_pin_refused(true);
        });

        let (ww, ctx) = (weak(), self.ctx.clone());
        w.on_test_call(move || {
            if let Some(w) = ww.upgrade() {
                w.set_test_result("…".into());
            }
            let sources = ctx.sources.clone();
            let ww = ww.clone();
            std::thread::spawn(move || {
                let text = crate::media::device_check(&sources, Duration::from_secs(2));
                let _ = ww.upgrade_in_event_loop(move |w| w.set_test_result(text.into()));
            });
        });
    }
}

fn show_controls(w: &slint::Weak<KioskWindow>, ctx: &UiContext) {
    let c = &ctx.calls.media().controls;
    if let Some(w) = w.upgrade() {
        w.set_muted(c.muted());
        w.set_camera_off(c.camera_off());
        w.set_volume(c.volume() as f32);
    }
}

fn set_language(w: &KioskWindow, lang: &str) {
    let lang = if crate::config::UI_LANGUAGES.contains(&lang) { lang } else { "en" };
    if let Err(e) = slint::select_bundled_translation(lang) {
        tracing::warn!(language = lang, error = ?e, "cannot switch the language");
        return;
    }
    w.set_language(lang.into());
}

fn show(w: &KioskWindow, st: &Rc<RefCell<State>>, screen: Screen) {
    w.set_screen(screen);
    st.borrow_mut().since = Instant::now();
}

/// Back to Welcome, forgetting everything about the patient.
fn to_welcome(w: &KioskWindow, ctx: &UiContext, st: &Rc<RefCell<State>>) {
    st.borrow_mut().pending = None;
    w.set_slots(ModelRc::new(VecModel::from(Vec::<Slot>::new())));
    for set in [KioskWindow::set_code, KioskWindow::set_confirm_name, KioskWindow::set_confirm_time] {
        set(w, SharedString::new());
    }
    w.set_doctor_name(SharedString::new());
    w.set_appointment_time(SharedString::new());
    w.set_ended_reason(SharedString::new());
    w.set_pin(SharedString::new());
    w.set_test_result(SharedString::new());
    w.set_tech_lines(SharedString::new());
    w.set_problem(Problem::None);
    w.set_confirm_end(false);
    w.set_has_remote_video(false);
    w.set_has_self_video(false);
    w.set_remote_video(Image::default());
    w.set_self_video(Image::default());
    if w.get_language().as_str() != ctx.config.ui.language {
        set_language(w, &ctx.config.ui.language);
    }
    show(w, st, Screen::Welcome);
}

fn local_time(rfc3339: &str) -> Option<DateTime<Local>> {
    DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.with_timezone(&Local))
}

fn todays_slots(store: &Store) -> Result<Vec<Slot>, crate::store::StoreError> {
    let today = Local::now().date_naive();
    let day = today.format("%Y-%m-%d").to_string();
    let (from, to) = crate::core::local_day_range("day", &day)?;
    let list = store.read_blocking(move |db| {
        db.list_appointments(&AppointmentFilter {
            doctor_id: None,
            from: Some(from),
            to: Some(to),
            status: Some(AppointmentStatus::Scheduled),
            limit: 40,
            offset: 0,
        })
    })?;
    Ok(list
        .into_iter()
        .filter_map(|a| {
            let t = local_time(&a.starts_at)?;
            Some(Slot {
                id: i32::try_from(a.id).ok()?,
                first_name: model::first_name(&a.patient_name).into(),
                time: t.format("%H:%M").to_string().into(),
            })
        })
        .collect())
}

/// Shows the confirmation for appointment `id`, or says why it cannot be checked in.
fn propose(w: &KioskWindow, ctx: &UiContext, st: &Rc<RefCell<State>>, id: i64) {
    st.borrow_mut().since = Instant::now();
    let Ok(a) = ctx.store.read_blocking(move |db| db.appointment(id)) else {
        w.set_problem(Problem::CodeNotFound);
        return;
    };
    let start = local_time(&a.starts_at);
    let is_today = start.is_some_and(|t| t.date_naive() == Local::now().date_naive());
    if model::can_check_in(a.status, is_today).is_err() {
        w.set_problem(Problem::NotToday);
        return;
    }
    let p = Pending {
        id,
        first_name: model::first_name(&a.patient_name),
        time: start.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
        doctor: a.doctor_name,
    };
    w.set_problem(Problem::None);
    w.set_confirm_name(p.first_name.as_str().into());
    w.set_confirm_time(p.time.as_str().into());
    w.set_doctor_name(p.doctor.as_str().into());
    st.borrow_mut().pending = Some(p);
    show(w, st, Screen::Confirm);
}

fn image_of(f: &VideoFrame) -> Option<Image> {
    let expected = f.width as usize * f.height as usize * 4;
    (f.rgba.len() == expected && f.width > 0)
        .then(|| Image::from_rgba8(SharedPixelBuffer::<Rgba8Pixel>::clone_from_slice(&f.rgba, f.width, f.height)))
}

fn tick(w: &KioskWindow, ctx: &UiContext, st: &Rc<RefCell<State>>, drawn: &Cell<u64>) {
    let now = Local::now();
    let time = now.format("%H:%M").to_string();
    if w.get_time_text().as_str() != time {
        w.set_time_text(time.into());
        w.set_date_text(now.format("%d-%m-%Y").to_string().into());
    }
    let status = ctx.calls.status();
    follow_call(w, ctx, st, &status);
    device_problems(w, ctx, st);

    let screen = w.get_screen();
    {
        let mut s = st.borrow_mut();
        if screen == Screen::Incoming {
            if s.ringer.is_none() {
                match crate::media::Ringer::start(&ctx.sources.audio_sink) {
                    Ok(r) => s.ringer = Some((r, Instant::now())),
                    Err(e) => tracing::warn!(error = %e, "no ring tone"),
                }
            }
            if let Some((r, since)) = &s.ringer {
                r.set_sounding(since.elapsed().as_millis() % 3000 < 1000);
            }
        } else {
            s.ringer = None;
        }
    }
    if screen == Screen::Incall {
        let media = ctx.calls.media();
        if let Some(img) = media.take_frame().as_ref().and_then(image_of) {
            w.set_remote_video(img);
            w.set_has_remote_video(true);
            drawn.set(drawn.get() + 1);
        }
        if let Some(img) = media.take_self_frame().as_ref().and_then(image_of) {
            w.set_self_video(img);
            w.set_has_self_video(true);
        }
        let mut s = st.borrow_mut();
        let reconnecting = status.phase.as_deref() == Some("reconnecting");
        let elapsed = s.frames.1.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let fps = (status.remote_video_frames.saturating_sub(s.frames.0)) as f64 / elapsed.as_secs_f64();
            s.frames = (status.remote_video_frames, Instant::now(), fps);
        }
        w.set_quality(model::quality(s.frames.2, status.send_bitrate_kbps, reconnecting));
        w.set_reconnecting(reconnecting);
        let secs = s.call_started.map(|t| t.elapsed().as_secs()).unwrap_or(0);
        w.set_call_timer(model::call_timer(secs).into());
    }

    // Screens a patient may walk away from return to Welcome and forget them.
    let idle = st.borrow().since.elapsed() >= Duration::from_secs(ctx.config.ui.return_to_welcome_secs.into());
    if idle && matches!(screen, Screen::Checkin | Screen::Confirm | Screen::Ended | Screen::Pin | Screen::Technician) {
        to_welcome(w, ctx, st);
    }
}

/// A refused provisioning file, no network address, or no camera where one should be: said on Welcome (checked every
/// 5 s: plugging a cable in clears it).
fn device_problems(w: &KioskWindow, ctx: &UiContext, st: &Rc<RefCell<State>>) {
    let due = st.borrow().network_checked.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
    if !due {
        return;
    }
    st.borrow_mut().network_checked = Some(Instant::now());
    let online = if_addrs::get_if_addrs().map(|l| l.iter().any(|i| !i.is_loopback())).unwrap_or(false);
    let camera_missing = ctx.config.media.video_source != "test" && ctx.sources.video_is_test;
    let setup_failed = crate::provision::last_failure(&ctx.config.storage.data_dir).is_some();
    w.set_device_problem(if setup_failed {
        Problem::SetupFailed
    } else if !online {
        Problem::NoNetwork
    } else if camera_missing {
        Problem::NoCamera
    } else {
        Problem::None
    });
}

/// Moves between the call screens as the call core's status changes.
fn follow_call(w: &KioskWindow, ctx: &UiContext, st: &Rc<RefCell<State>>, status: &KioskStatus) {
    let last = st.borrow().last_call;
    if last == status.call {
        return;
    }
    st.borrow_mut().last_call = status.call;
    match status.call {
        "incoming" => {
            w.set_doctor_name(status.doctor_name.clone().unwrap_or_default().into());
            show(w, st, Screen::Incoming);
        }
        "in_call" => {
            ctx.calls.media().controls.reset();
            show_controls(&w.as_weak(), ctx);
            w.set_confirm_end(false);
            w.set_has_remote_video(false);
            w.set_has_self_video(false);
            let mut s = st.borrow_mut();
            s.call_started = Some(Instant::now());
            s.frames = (status.remote_video_frames, Instant::now(), 0.0);
            drop(s);
            show(w, st, Screen::Incall);
        }
        "ended" if matches!(last, "incoming" | "in_call") => {
            w.set_ended_reason(status.ended_reason.clone().unwrap_or_default().into());
            w.set_confirm_end(false);
            st.borrow_mut().call_started = None;
            show(w, st, Screen::Ended);
        }
        _ => {}
    }
}

fn fill_technician(w: &KioskWindow, ctx: &UiContext) {
    let s = ctx.calls.status();
    let addresses: Vec<String> = if_addrs::get_if_addrs()
        .map(|l| l.into_iter().filter(|i| !i.is_loopback()).map(|i| format!("{} {}", i.name, i.ip())).collect())
        .unwrap_or_default();
    let lines = [
        format!(
            "Camera: {}",
            if ctx.sources.video_is_test { "none (test picture)".into() } else { ctx.sources.video.clone() }
        ),
        format!(
            "Microphone: {}",
            if ctx.sources.audio_is_test { "none (test tone)".into() } else { ctx.sources.audio.clone() }
        ),
        format!("Speaker: {}", ctx.sources.audio_sink),
        format!("Video encoder: {}", s.video_profiles.join(", ")),
        format!("Network: {}", if addresses.is_empty() { "no address".into() } else { addresses.join(", ") }),
        format!("TLS certificate SHA-256: {}", ctx.fingerprint.as_deref().unwrap_or("(files from the configuration)")),
        format!("Call: {}", s.call),
        format!("Version: {}", env!("CARGO_PKG_VERSION")),
    ];
    w.set_tech_lines(lines.join("\n").into());
    w.set_tech_errors(crate::logring::recent().join("\n").into());
    w.set_doctor_url(ctx.doctor_url.as_str().into());
    if let Some(img) = qr_image(&ctx.doctor_url) {
        w.set_qr(img);
    }
}

/// The doctor's URL as a QR code, 8 pixels per module with a quiet zone.
pub fn qr_image(text: &str) -> Option<Image> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (8usize, 4usize);
    let side = (n + 2 * quiet) * scale;
    let mut buf = SharedPixelBuffer::<Rgb8Pixel>::new(side as u32, side as u32);
    let px = buf.make_mut_slice();
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = ((x / scale).wrapping_sub(quiet), (y / scale).wrapping_sub(quiet));
            let dark = mx < n && my < n && colors[my * n + mx] == qrcode::Color::Dark;
            let v = if dark { 0 } else { 255 };
            px[y * side + x] = Rgb8Pixel { r: v, g: v, b: v };
        }
    }
    Some(Image::from_rgb8(buf))
}
