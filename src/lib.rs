//! Medi-Mitra Kiosk: one binary that turns a small computer with a touchscreen and camera into a telemedicine kiosk.
//!
//! Map of the crate:
//! - [`core`]: the pure domain (people, appointments and the rules that move them). No IO of any kind.
//! - [`config`]: the one TOML file, its embedded defaults and `MEDIMITRA_*` environment overrides.
//! - [`store`]: SQLite through rusqlite (WAL, migrations); every multi-step change is one transaction.
//! - [`http`]: the HTTPS API (axum + rustls), sessions, login rate limiting and the doctor's web app.
//! - [`calls`], [`media`]: the call service and the GStreamer webrtcbin engine.
//! - [`ui`]: the patient's Slint touch UI; it drives the same call core through [`calls::CallsHandle`].
//! - [`cli`]: the technician's command line; `serve` is the default command.

pub mod calls;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod logring;
pub mod media;
pub mod notify;
pub mod provision;
pub mod store;
pub mod ui;
