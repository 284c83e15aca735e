//! What the integration tests and the benches share, in one place:
//! - [`server`]: [`server::TestServer`], a kiosk server inside the test process on 127.0.0.1 over HTTPS, with a
//!   client that trusts exactly its certificate;
//! - [`kiosk`]: [`kiosk::KioskProcess`], the real `medimitra` binary with seeded data, its control socket, and the
//!   network namespaces that end-to-end tests re-run themselves in;
//! - [`browser`]: chromedriver and headless Chromium as the doctor, and the page's helpers;
//! - [`natlab`]: NATed namespaces with a TURN server between them;
//! - [`seed`]: the accounts, patient and appointments every test kiosk starts with.
//!
//! Servers listen on port 0 and report the port they bound; chromedriver says which port it took. Nothing binds a
//! port found free a moment earlier.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod kiosk;
pub mod natlab;
pub mod netlab;
pub mod seed;
pub mod server;

use std::time::{Duration, Instant};

/// The password of every seeded account.
pub const PASSWORD: &str = "correct horse battery";

/// Polls `check` every 100 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A child process killed and reaped when the test lets go of it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
