//! Welcome: the clinic's name, the clock, the language, and a banner for a lasting problem of the kiosk.

use slint::ComponentHandle;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::{KioskAdapter, Problem, Screens};

#[derive(Default)]
pub(crate) struct Welcome {
    /// When the network was last looked at.
    network_checked: Cell<Option<Instant>>,
}

pub(crate) fn wire(s: &Rc<Screens>) {
    let g = s.window.global::<KioskAdapter>();
    g.set_clinic_name(s.ctx.config.clinic.name.as_str().into());
    set_language(s, &s.ctx.config.ui.language);
    let weak = Rc::downgrade(s);
    g.on_choose_language(move |lang| {
        if let Some(s) = weak.upgrade() {
            set_language(&s, &lang);
        }
    });
    let weak = Rc::downgrade(s);
    g.on_back_to_welcome(move || {
        if let Some(s) = weak.upgrade() {
            s.to_welcome();
        }
    });
}

/// The clock, and the device banner (checked every 5 s: plugging a cable in clears it).
pub(crate) fn tick(s: &Screens) {
    let g = s.window.global::<KioskAdapter>();
    let now = chrono::Local::now();
    let time = now.format("%H:%M").to_string();
    if g.get_time_text().as_str() != time {
        g.set_time_text(time.into());
        g.set_date_text(now.format("%d-%m-%Y").to_string().into());
    }
    let due = s.welcome.network_checked.get().is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
    if !due {
        return;
    }
    s.welcome.network_checked.set(Some(Instant::now()));
    let online = if_addrs::get_if_addrs().map(|l| l.iter().any(|i| !i.is_loopback())).unwrap_or(false);
    let camera_missing = s.ctx.config.media.video_source != "test" && s.ctx.sources.video_is_test;
    g.set_device_problem(if s.ctx.setup_refused {
        Problem::SetupFailed
    } else if !online {
        Problem::NoNetwork
    } else if camera_missing {
        Problem::NoCamera
    } else {
        Problem::None
    });
}

/// The next patient starts in the configured language.
pub(crate) fn reset_language(s: &Screens) {
    if s.window.global::<KioskAdapter>().get_language().as_str() != s.ctx.config.ui.language {
        set_language(s, &s.ctx.config.ui.language);
    }
}

fn set_language(s: &Screens, lang: &str) {
    let lang = if crate::config::UI_LANGUAGES.contains(&lang) { lang } else { "en" };
    if let Err(e) = slint::select_bundled_translation(lang) {
        tracing::warn!(language = lang, error = ?e, "cannot switch the language");
        return;
    }
    s.window.global::<KioskAdapter>().set_language(lang.into());
}
