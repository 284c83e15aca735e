//! The real `medimitra` binary as a test kiosk: its own data dir with seeded people, a config file, `serve
//! --headless` on port 0 (the URL it prints says which port it bound), its control socket; and the network
//! namespaces that browser tests re-run themselves in (ICE needs a non-loopback interface).

use medimitra::calls::KioskStatus;
use medimitra::calls::control::{ControlCommand, Reply};
use medimitra::core::AppointmentStatus;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::KillOnDrop;
use super::seed::{appointment, seed_people};

pub const BIN: &str = env!("CARGO_BIN_EXE_medimitra");
/// Set in the environment of a test re-run inside a namespace.
pub const INSIDE: &str = "MM_E2E_INSIDE";

/// A network namespace with a veth pair (10.231.7.1 and .2), removed when dropped.
pub struct Namespace(pub String);

impl Namespace {
    pub fn create() -> Namespace {
        // Tests of one binary run in parallel threads: the pid alone does not tell their namespaces apart.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("mme2e{}n{n}", std::process::id());
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "`ip {}` failed: the end-to-end tests need root and iproute2", args.join(" "));
        };
        ip(&["netns", "add", &name]);
        let ns = Namespace(name.clone());
        without_duplicate_address_detection(&name);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["-n", &name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ip(&["-n", &name, "addr", "add", "10.231.7.1/24", "dev", "v0"]);
        ip(&["-n", &name, "addr", "add", "10.231.7.2/24", "dev", "v1"]);
        ip(&["-n", &name, "link", "set", "v0", "up"]);
        ip(&["-n", &name, "link", "set", "v1", "up"]);
        wait_until_addresses_settle(&name);
        ns
    }
}

/// Gives the test's own namespace (the one a re-run test runs in) a default route, via the veth pair's other end,
/// so no packet leaves the namespace. Firefox needs one: it gathers host candidates only on the default route's
/// interface (nICEr logs "failed to find default addresses" and gathers none), whatever
/// `media.peerconnection.ice.default_address_only` says. A doctor's computer always has one.
pub fn default_route_in_this_namespace() {
    let has = Command::new("ip").args(["route", "show", "default"]).output().map(|o| !o.stdout.is_empty());
    if has.unwrap_or(false) {
        return;
    }
    let ok = Command::new("ip")
        .args(["route", "add", "default", "via", "10.231.7.2", "dev", "v0"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "no default route in the test's namespace");
}

/// Turns IPv6 duplicate address detection off in a new namespace, before its links come up.
///
/// Why: Chromium treats an address change as a network change and aborts the navigation in flight with
/// `ERR_NETWORK_CHANGED` (its error page is titled with the host, e.g. "127.0.0.1"). With DAD on, a veth's
/// link-local IPv6 address leaves its tentative state 1.1–1.6 s after the link comes up (seen with `ip monitor
/// address`), which is just when a test's first navigation happens (the kiosk starts in ~1 s, Chromium in ~0.5 s).
/// Measured with a fresh namespace per navigation: 3 failed navigations in 65 with DAD on (all
/// `ERR_NETWORK_CHANGED`), none in 40 with it off. The kiosk is not involved; a doctor's browser on a settled
/// network never meets this.
pub fn without_duplicate_address_detection(ns: &str) {
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "cannot turn off IPv6 duplicate address detection in {ns}");
}

/// Waits (at most 5 s) until no address of namespace `ns` is still tentative, so nothing changes under a browser.
pub fn wait_until_addresses_settle(ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let out = Command::new("ip").args(["-n", ns, "addr"]).output().map(|o| o.stdout).unwrap_or_default();
        if !String::from_utf8_lossy(&out).contains("tentative") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("addresses in namespace {ns} were still tentative after 5 s");
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// For a bench's `main`: unless this already is the inner run, runs this bench binary again (same arguments) inside
/// a fresh network namespace, removes the namespace and exits with the inner run's status.
pub fn run_bench_inside_namespace() {
    if std::env::var(INSIDE).is_ok() {
        return;
    }
    let ns = Namespace::create();
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(std::env::current_exe().expect("bench binary"))
        .args(std::env::args().skip(1))
        .env(INSIDE, "1")
        .status()
        .expect("run inside the namespace");
    // exit() runs no destructors: remove the namespace first.
    drop(ns);
    std::process::exit(status.code().unwrap_or(1));
}

/// Runs `test` of this binary again inside a fresh namespace and fails if it fails there.
pub fn rerun_inside_namespace(test: &str) {
    let ns = Namespace::create();
    rerun_inside(&ns.0, test, &[]);
}

/// Runs `test` of this binary again inside namespace `ns` (with `INSIDE` and `env` set) and fails if it fails there,
/// or if the inner run did not run exactly that one test (a renamed test would otherwise pass by running nothing).
pub fn rerun_inside(ns: &str, test: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run inside the namespace");
    // Relay the inner run's output, marked, so its own summary line is not counted as a second test.
    let mut ran_one = false;
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            ran_one |= line.starts_with("test result: ok. 1 passed;");
            println!("[netns] {line}");
        }
    }
    let status = child.wait().expect("inner run");
    assert!(status.success(), "{test} failed inside network namespace {ns}");
    assert!(ran_one, "the run inside network namespace {ns} did not run {test}");
}

/// A socket standing in for systemd's `NOTIFY_SOCKET`: give [`env`](Self::env) to the kiosk, read what it said
/// with [`received`](Self::received).
pub struct NotifySocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sock: std::os::unix::net::UnixDatagram,
}

impl NotifySocket {
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("notify socket");
        sock.set_nonblocking(true).expect("nonblocking");
        NotifySocket { _dir: dir, path, sock }
    }

    /// The environment variable that points the kiosk at this socket.
    pub fn env(&self) -> (String, String) {
        ("NOTIFY_SOCKET".into(), self.path.display().to_string())
    }

    /// The notifications received since the last call.
    pub fn received(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        out
    }
}

/// Where and how a test kiosk runs.
#[derive(Default)]
pub struct Where {
    pub width: u32,
    pub height: u32,
    /// Network namespace to run in (default: the caller's).
    pub netns: Option<String>,
    /// Listen address (default: 127.0.0.1, port 0).
    pub listen: Option<String>,
    /// The URL doctors open, when it is not the one the kiosk prints (port forwards).
    pub url: Option<String>,
    /// Appended to the kiosk's config file.
    pub extra_config: String,
    /// Lines added to its `[media]` section.
    pub media: String,
    /// Lines added to its `[calls]` section.
    pub calls: String,
    /// Environment for the kiosk process.
    pub env: Vec<(String, String)>,
    /// An X display (e.g. Xvfb's) for the touch UI in a winit window with the software renderer; headless
    /// without one.
    pub display: Option<String>,
    /// A command the kiosk is started through (e.g. `scripts/seccomp-exec UNIT`); empty for none.
    pub wrapper: Vec<String>,
}

/// A running `medimitra serve --headless` with accounts, a patient and appointments.
pub struct KioskProcess {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    pub url: String,
    pub proc: KillOnDrop,
    pub store: medimitra::store::Store,
    pub doctor_a: i64,
    pub doctor_b: i64,
    pub patient: i64,
    pub next_slot: std::cell::Cell<i64>,
    /// Lines the kiosk printed on standard output.
    pub stdout: std::sync::mpsc::Receiver<String>,
    netns: Option<String>,
    listen: String,
    env: Vec<(String, String)>,
}

impl KioskProcess {
    /// A kiosk sending 640x360 test video (light enough for tests on two cores).
    pub fn start() -> KioskProcess {
        Self::start_sized(640, 360)
    }

    pub fn start_sized(width: u32, height: u32) -> KioskProcess {
        Self::start_in(Where { width, height, ..Where::default() })
    }

    pub fn start_in(at: Where) -> KioskProcess {
        let Where { width, height, netns, listen, url, extra_config, media, calls, mut env, display, wrapper } = at;
        if let Some(d) = display {
            env.push(("DISPLAY".into(), d));
            env.push(("MEDIMITRA_UI_BACKEND".into(), "winit-software".into()));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_path_buf();
        let store = medimitra::store::Store::open_in(&data).expect("store");
        let hash = medimitra::credentials::hash_password(super::PASSWORD).expect("hash");
        let people = seed_people(&store, &hash);
        let config = data.join("kiosk.toml");
        std::fs::write(
            &config,
            format!(
                "[media]\nvideo_source = \"test\"\naudio_source = \"test\"\naudio_sink = \"none\"\nwidth = {width}\n\
                 height = {height}\n{media}\n[calls]\nring_timeout_secs = 30\nreconnect_grace_secs = 30\n{calls}\n[auth]\n\
                 max_attempts_per_address = 1000\n{extra_config}"
            ),
        )
        .expect("config");
        let listen = listen.unwrap_or_else(|| "127.0.0.1:0".into());
        let (proc, stdout, printed) = spawn_serve(&config, &data, &listen, netns.as_deref(), &env, &wrapper);
        KioskProcess {
            dir,
            data,
            config,
            url: url.unwrap_or(printed),
            proc,
            store,
            doctor_a: people.asha.id,
            doctor_b: people.vikram.id,
            patient: people.patient,
            next_slot: std::cell::Cell::new(0),
            stdout,
            netns,
            listen,
            env,
        }
    }

    /// Sends `signal` to the kiosk and waits (up to 30 s) for it to exit: its exit status and how long it took.
    pub fn stop_with(&mut self, signal: i32) -> (std::process::ExitStatus, Duration) {
        let pid = self.kiosk_pid();
        let t = Instant::now();
        // SAFETY: kill sends a signal to the kiosk process this test started.
        unsafe { libc::kill(pid as i32, signal) };
        let deadline = t + Duration::from_secs(30);
        loop {
            if let Some(status) = self.proc.0.try_wait().expect("wait") {
                return (status, t.elapsed());
            }
            assert!(Instant::now() < deadline, "the kiosk did not exit within 30 s of signal {signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the kiosk again on the same data, configuration and port (after [`stop_with`](Self::stop_with)).
    pub fn restart(&mut self) {
        let port = self.url.rsplit(':').next().map(|p| p.trim_end_matches('/').to_string()).unwrap_or_default();
        let listen = match self.listen.rsplit_once(':') {
            Some((host, "0")) => format!("{host}:{port}"),
            _ => self.listen.clone(),
        };
        let (proc, stdout, _) = spawn_serve(&self.config, &self.data, &listen, self.netns.as_deref(), &self.env, &[]);
        self.proc = proc;
        self.stdout = stdout;
    }

    /// The kiosk's own process id (inside `ip netns exec`, which execs it, the same as the child's).
    pub fn kiosk_pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// A new appointment for `doctor`, `days` from today, with `status`.
    pub fn booked(&self, doctor: i64, days: i64, status: AppointmentStatus) -> i64 {
        let slot = self.next_slot.get();
        self.next_slot.set(slot + 1);
        appointment(&self.store, self.patient, doctor, days, 10 * slot, status)
    }

    /// A new checked-in appointment today for `doctor`.
    pub fn checked_in(&self, doctor: i64) -> i64 {
        let slot = self.next_slot.get();
        self.next_slot.set(slot + 1);
        appointment(&self.store, self.patient, doctor, 0, 10 * slot, AppointmentStatus::CheckedIn)
    }

    pub fn status_of(&self, id: i64) -> AppointmentStatus {
        self.store.read_blocking(|db| db.appointment(id)).expect("appointment").status
    }

    pub fn control(&self, command: ControlCommand) -> Reply {
        medimitra::calls::control::request(&self.data, command).expect("control socket")
    }

    pub fn kiosk_status(&self) -> KioskStatus {
        self.control(ControlCommand::Status).status.expect("status")
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// The value of a counter or gauge (its first sample) from the kiosk's `GET /metrics`; the test runs on the
    /// kiosk's machine, so it is a local caller.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let cert = std::fs::read(self.data.join("tls/cert.pem")).expect("the kiosk's certificate");
        let url = format!("{}/metrics", self.url.trim_end_matches('/'));
        let resp = super::server::https_client(&cert).get(&url).send().await.expect("GET /metrics");
        assert_eq!(resp.status().as_u16(), 200, "GET /metrics");
        let text = resp.text().await.expect("the metrics' text");
        super::metrics::value(&super::metrics::parse(&text), name, None)
    }

    pub fn proc_counts(&self) -> (usize, usize) {
        let pid = self.pid();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
        (fds, threads)
    }
}

/// Starts `medimitra serve` (`--headless` unless `env` names a `DISPLAY`) and waits for the URL it prints.
fn spawn_serve(
    config: &std::path::Path,
    data: &std::path::Path,
    listen: &str,
    netns: Option<&str>,
    env: &[(String, String)],
    wrapper: &[String],
) -> (KillOnDrop, std::sync::mpsc::Receiver<String>, String) {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(wrapper).arg(BIN);
            c
        }
        None if !wrapper.is_empty() => {
            let mut c = Command::new(&wrapper[0]);
            c.args(&wrapper[1..]).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .args(if env.iter().any(|(k, _)| k == "DISPLAY") { None } else { Some("--headless") })
        .args(["--listen", listen])
        .env("RUST_LOG", std::env::var("KIOSK_LOG").unwrap_or_else(|_| "warn,medimitra=info".into()))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start medimitra");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            println!("kiosk: {line}");
            let _ = tx.send(line);
        }
    });
    let mut proc = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let printed = loop {
        assert!(Instant::now() < deadline, "the kiosk did not start");
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("the kiosk exited at start ({status}); its errors are above");
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(u) = line.strip_prefix("Doctors open: ")
        {
            break u.to_string();
        }
    };
    (proc, rx, printed)
}
