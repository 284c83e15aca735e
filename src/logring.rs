//! The last warnings and errors, kept in memory for the technician screen (never written anywhere; messages at
//! warn level carry no patient names or secrets, as the rest of the logging).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

const KEEP: usize = 12;

static RECENT: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();

fn ring() -> &'static Mutex<VecDeque<String>> {
    RECENT.get_or_init(|| Mutex::new(VecDeque::with_capacity(KEEP)))
}

/// Newest last.
pub fn recent() -> Vec<String> {
    ring().lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
}

pub fn push(line: String) {
    let mut r = ring().lock().unwrap_or_else(|p| p.into_inner());
    if r.len() == KEEP {
        r.pop_front();
    }
    r.push_back(line);
}

/// A `tracing` layer that keeps WARN and ERROR events.
pub struct RecentErrors;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecentErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > tracing::Level::WARN {
            return;
        }
        let mut line = Line(format!("{} {level} ", chrono::Local::now().format("%H:%M:%S")));
        event.record(&mut line);
        push(line.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_newest() {
        for i in 0..20 {
            super::push(format!("e{i}"));
        }
        let r = super::recent();
        assert_eq!(r.len(), super::KEEP);
        assert_eq!(r.last().map(String::as_str), Some("e19"));
    }
}
