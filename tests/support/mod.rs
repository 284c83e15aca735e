//! What the integration tests and the benches share, in one place:
//! - [`server`]: [`server::TestServer`], a kiosk server inside the test process on 127.0.0.1 over HTTPS, with a
//!   client that trusts exactly its certificate;
//! - [`kiosk`]: [`kiosk::KioskProcess`], the real `medimitra` binary with seeded data, its control socket, and the
//!   network namespaces that end-to-end tests re-run themselves in;
//! - [`browser`]: chromedriver and headless Chromium as the doctor, and the page's helpers;
//! - [`natlab`]: NATed namespaces with a TURN server between them;
//! - [`seed`]: the accounts, patient and appointments every test kiosk starts with;
//! - [`pty`]: emulated serial medical devices on pseudo-terminals; [`fhir`]: FHIR R4 checked by `fhir.resources`.
//! - [`metrics`]: the kiosk's `/metrics` text read with an independent Prometheus parser.
//!
//! Servers listen on port 0 and report the port they bound; chromedriver says which port it took. Nothing binds a
//! port found free a moment earlier.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod fhir;
pub mod kiosk;
pub mod metrics;
pub mod natlab;
pub mod netlab;
pub mod pty;
pub mod seed;
pub mod server;

use std::time::{Duration, Instant};

/// The password of every seeded account.
pub const PASSWORD: &str = "correct horse battery";

/// The 6-digit TOTP code (RFC 6238: HMAC-SHA1, 30 s, 6 digits) for a base32 secret at the step `offset` steps from
/// now, computed by Python's standard library: an implementation independent of the kiosk's.
pub fn totp_code(secret_base32: &str, offset: i64) -> String {
    let script = "import base64,hmac,hashlib,struct,sys,time\n\
                  s=sys.argv[1].replace(' ','').upper(); k=base64.b32decode(s+'='*(-len(s)%8))\n\
                  c=int(time.time())//30+int(sys.argv[2])\n\
                  h=hmac.new(k,struct.pack('>Q',c),hashlib.sha1).digest(); o=h[-1]&15\n\
                  print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret_base32, &offset.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

/// Polls `check` every 50 ms until it holds or `limit` has passed; how long it took, or `None`.
pub async fn poll_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Polls `check` until it holds; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    poll_until(timeout, check).await.unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Runs `test` on a multi-threaded runtime, with rustls' ring provider installed (chromedriver is spoken to over
/// plain HTTP, but fantoccini's TLS stack still wants a provider; the tests' HTTPS clients use it too).
pub fn block_on<T>(test: impl std::future::Future<Output = T>) -> T {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(test)
}

/// A child process killed and reaped when the test lets go of it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // A child started as the leader of its own process group (`process_group(0)`: chromedriver) goes with the
        // whole group, the browsers it started included (killing chromedriver alone left 20+ Chromium processes
        // running after every network bench). For any other child no group has its pid (it is not reaped yet), so
        // this finds nothing.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group our own child leads; no memory involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Xvfb server of `width`×`height`, stopped when dropped: the display for the touch UI's winit window.
pub struct Xvfb {
    _server: KillOnDrop,
    pub display: String,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Xvfb {
        let n = (90..200)
            .find(|n| {
                !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{n}");
        let server = KillOnDrop(
            std::process::Command::new("Xvfb")
                .args([display.as_str(), "-screen", "0", &format!("{width}x{height}x24"), "-nolisten", "tcp"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("Xvfb (apt xvfb)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start on {display}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Xvfb { _server: server, display }
    }
}
