//! Medi-Mitra Kiosk: one binary that turns a small computer with a touchscreen and camera into a telemedicine kiosk.
//!
//! Map of the crate (the pure core in the middle, thin edges around it):
//! - [`core`]: the pure domain — protocol types, the signaling socket's rules, the call state machine and its typed
//!   status, error codes, appointment rules, validation. No IO of any kind.
//! - [`app`]: the composition root of `serve`: starts the parts in order and stops them on one [`shutdown`] signal.
//! - [`calls`]: the call service, one task that owns the call core, the doctors' sockets and the media sessions;
//!   its local control socket (`medimitra call …`).
//! - [`media`]: GStreamer: one `webrtcbin` per session, encoder profiles and their probe, the live counters and the
//!   patient's controls, the ring tone, the technician's device check.
//! - [`http`]: the HTTPS API (axum + rustls), sessions and login limits, the signaling socket's IO, the web app.
//! - [`store`]: SQLite through rusqlite (WAL, migrations); every change is one transaction with its audit entry.
//! - [`credentials`]: password hashing, session tokens, TLS certificate checks (used by http, cli and provision).
//! - [`devices`]: the serial medical devices (pulse oximeter, scale): reader threads over the core's decoders.
//! - [`ui`]: the patient's Slint touch UI; its controllers drive the same call service and store as everything else.
//! - [`provision`]: the first-boot provisioning file (pure parse, staged apply).
//! - [`config`]: the one TOML file, its embedded defaults and `MEDIMITRA_*` environment overrides.
//! - [`cli`]: the technician's command line; `serve` is the default command.
//! - [`notify`]: systemd's notify protocol (ready, watchdog, stopping). [`logring`]: recent warnings for the
//!   technician screen. [`shutdown`]: the stop signal every task listens to.

pub mod app;
pub mod calls;
pub mod cli;
pub mod config;
pub mod core;
pub mod credentials;
pub mod devices;
pub mod http;
pub mod logring;
pub mod media;
pub mod netcheck;
pub mod notify;
pub mod provision;
pub mod shutdown;
pub mod store;
pub mod ui;
