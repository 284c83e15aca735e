//! The patient's touch UI (Slint). It shows state and sends intents; call logic lives in `core::call` only, data
//! rules in the store. One controller per screen group (`controllers/`) writes its global (`ui/globals.slint`) and
//! handles its buttons:
//! - `welcome`: the clock, the language, the device banner;
//! - `checkin`: today's appointments, the keypad, confirmation and waiting;
//! - `call`: incoming call, the call itself (pictures, controls, quality) and its end, the ring tone;
//! - `technician`: the PIN and the technician screen.
//!
//! The UI thread never waits for the database: store work runs on the tokio runtime and its result comes back as a
//! job in the inbox, which the 30 Hz tick drains. The tick also follows the call status and takes the newest decoded
//! frame from the media engine's one-frame slot (a UI slower than the stream skips frames, never queues them).

mod controllers;
pub mod model;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slint::{ComponentHandle, Image, Rgb8Pixel, SharedPixelBuffer};

use crate::calls::CallsHandle;
use crate::config::Config;
use crate::media::Sources;
use crate::store::Store;

/// The code slint-build generates from `ui/`: the window, its globals, enums and structs.
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod generated {
    slint::include_modules!();
}
pub use generated::*;

/// What the UI needs from the rest of the kiosk.
pub struct UiContext {
    pub store: Store,
    pub calls: CallsHandle,
    pub config: Arc<Config>,
    pub sources: Sources,
    /// The URL doctors open (shown on the technician screen, also as a QR code).
    pub doctor_url: String,
    pub fingerprint: Option<String>,
    /// The last provisioning file was refused (read once at start; a new one restarts the kiosk).
    pub setup_refused: bool,
    /// Where store work runs, off the UI thread.
    pub runtime: tokio::runtime::Handle,
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

/// Work for the UI thread, sent from another thread (a store result, a device check).
type Job = Box<dyn FnOnce(&Screens) + Send>;

/// The window, the context and each controller's state; lives on the UI thread.
pub(crate) struct Screens {
    window: KioskWindow,
    ctx: UiContext,
    jobs: std::sync::mpsc::Sender<Job>,
    inbox: std::sync::mpsc::Receiver<Job>,
    /// When the current screen was last touched or shown (for returning to Welcome).
    since: Cell<Instant>,
    welcome: controllers::welcome::Welcome,
    checkin: controllers::checkin::CheckIn,
    call: controllers::call::Call,
    technician: controllers::technician::Technician,
}

impl Screens {
    fn show(&self, screen: Screen) {
        self.window.global::<KioskAdapter>().set_screen(screen);
        self.touched();
    }

    fn touched(&self) {
        self.since.set(Instant::now());
    }

    /// Back to Welcome, forgetting everything about the patient.
    fn to_welcome(&self) {
        self.checkin.forget();
        self.window.global::<KioskAdapter>().invoke_forget_patient();
        controllers::welcome::reset_language(self);
        self.show(Screen::Welcome);
    }

    /// Runs `work` on the runtime and `then` with its result on the UI thread.
    fn off_thread<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
        then: impl FnOnce(&Screens, T) + Send + 'static,
    ) {
        let jobs = self.jobs.clone();
        self.ctx.runtime.spawn(async move {
            let value = work.await;
            let _ = jobs.send(Box::new(move |s: &Screens| then(s, value)));
        });
    }

    /// One update: finished off-thread work, the clock, the call, the idle timeout.
    fn tick(&self) {
        while let Ok(job) = self.inbox.try_recv() {
            job(self);
        }
        controllers::welcome::tick(self);
        controllers::call::tick(self);
        controllers::technician::tick(self);
        // Screens a patient may walk away from return to Welcome and forget them.
        let screen = self.window.global::<KioskAdapter>().get_screen();
        let idle = self.since.get().elapsed() >= Duration::from_secs(self.ctx.config.ui.return_to_welcome_secs.into());
        if idle
            && matches!(screen, Screen::Checkin | Screen::Confirm | Screen::Ended | Screen::Pin | Screen::Technician)
        {
            self.to_welcome();
        }
    }
}

/// The running UI. Create it on the thread that runs the event loop.
pub struct Ui {
    screens: Rc<Screens>,
    timer: slint::Timer,
}

impl Ui {
    pub fn new(ctx: UiContext) -> Result<Ui, UiError> {
        let window = KioskWindow::new()
            .map_err(|e| UiError::Platform { backend: ctx.config.ui.backend.clone(), message: e.to_string() })?;
        // From now on the engine converts decoded frames to RGBA and keeps a self view for us.
        ctx.calls.media().pictures.want();
        let (jobs, inbox) = std::sync::mpsc::channel();
        let screens = Rc::new(Screens {
            window,
            ctx,
            jobs,
            inbox,
            since: Cell::new(Instant::now()),
            welcome: Default::default(),
            checkin: Default::default(),
            call: Default::default(),
            technician: Default::default(),
        });
        controllers::welcome::wire(&screens);
        controllers::checkin::wire(&screens);
        controllers::call::wire(&screens);
        controllers::technician::wire(&screens);
        screens.tick();
        Ok(Ui { screens, timer: slint::Timer::default() })
    }

    pub fn window(&self) -> &KioskWindow {
        &self.screens.window
    }

    /// Whether the ring tone is sounding now.
    pub fn ringing(&self) -> bool {
        self.screens.call.ringing()
    }

    /// Remote frames put on screen so far.
    pub fn frames_drawn(&self) -> u64 {
        self.screens.call.frames_drawn()
    }

    /// Shows the window and runs the event loop until it is closed or [`slint::quit_event_loop`] is called.
    pub fn run(self) -> Result<(), UiError> {
        self.screens.window.show().map_err(|e| UiError::EventLoop(e.to_string()))?;
        if self.screens.ctx.config.ui.fullscreen {
            self.screens.window.window().set_fullscreen(true);
        }
        self.start_timer();
        slint::run_event_loop().map_err(|e| UiError::EventLoop(e.to_string()))
    }

    /// Drives [`Ui::tick`] 30 times a second from the event loop.
    pub fn start_timer(&self) {
        let weak = Rc::downgrade(&self.screens);
        self.timer.start(slint::TimerMode::Repeated, Duration::from_millis(33), move || {
            if let Some(s) = weak.upgrade() {
                s.tick();
            }
        });
    }

    /// One update: results of store work, the clock, call status to screens, newest frames, idle screens back to
    /// Welcome.
    pub fn tick(&self) {
        self.screens.tick();
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
