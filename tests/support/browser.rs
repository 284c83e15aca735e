//! Shared by the end-to-end test and the call benchmark: a network namespace, the real kiosk binary with seeded
//! data, headless Chromium through chromedriver, and helpers to drive a call.
#![allow(dead_code)]

use chrono::{Local, TimeZone, Utc};
use fantoccini::{Client, Locator};
use medimitra::core::{AppointmentStatus, Role};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_medimitra");
pub const INSIDE: &str = "MM_E2E_INSIDE";
pub const PASSWORD: &str = "correct horse battery";

pub struct Namespace(pub String);

impl Namespace {
    pub fn create() -> Namespace {
        let name = format!("mme2e{}", std::process::id());
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "`ip {}` failed: the end-to-end tests need root and iproute2", args.join(" "));
        };
        ip(&["netns", "add", &name]);
        let ns = Namespace(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["-n", &name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ip(&["-n", &name, "addr", "add", "10.231.7.1/24", "dev", "v0"]);
        ip(&["-n", &name, "addr", "add", "10.231.7.2/24", "dev", "v1"]);
        ip(&["-n", &name, "link", "set", "v0", "up"]);
        ip(&["-n", &name, "link", "set", "v1", "up"]);
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `test` of this binary again inside a fresh namespace and fails if it fails there.
pub fn rerun_inside_namespace(test: &str) {
    let ns = Namespace::create();
    rerun_inside(&ns.0, test, &[]);
}

/// Runs `test` of this binary again inside namespace `ns` (with `INSIDE` and `env` set) and fails if it fails there.
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
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            println!("[netns] {line}");
        }
    }
    let status = child.wait().expect("inner run");
    assert!(status.success(), "{test} failed inside network namespace {ns}");
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free loopback port, given half a second to listen.
pub fn start_chromedriver() -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    std::thread::sleep(Duration::from_millis(500));
    (Proc(child), port)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port()
}

/// The accounts and the patient every test kiosk has.
pub struct People {
    pub asha: medimitra::store::Doctor,
    pub vikram: medimitra::store::Doctor,
    pub patient: i64,
}

/// Two doctors (asha@clinic.in, vikram@clinic.in, both with `password_hash`) and the patient Meena Kumari.
pub fn seed_people(store: &medimitra::store::Store, password_hash: &str) -> People {
    let now = Utc::now();
    store
        .write_blocking(|db| {
            let mk = |name: &str, email: &str| medimitra::store::NewDoctor {
                name: name.into(),
                specialty: "GP".into(),
                email: email.into(),
                password_hash: password_hash.into(),
                role: Role::Doctor,
            };
            let asha = db.add_doctor(&mk("Dr. Asha Rao", "asha@clinic.in"), now)?;
            let vikram = db.add_doctor(&mk("Dr. Vikram Sen", "vikram@clinic.in"), now)?;
            let patient = db
                .add_patient(
                    &medimitra::store::NewPatient {
                        name: "Meena Kumari".into(),
                        date_of_birth: None,
                        sex: medimitra::core::Sex::Female,
                        phone: None,
                        preferred_language: medimitra::core::Language::Hindi,
                    },
                    now,
                )?
                .id;
            Ok(People { asha, vikram, patient })
        })
        .expect("seed")
}

/// An appointment `days` from today at `minutes` past local midnight, moved to `status` (from scheduled).
pub fn appointment(
    store: &medimitra::store::Store,
    patient: i64,
    doctor: i64,
    days: i64,
    minutes: i64,
    status: AppointmentStatus,
) -> i64 {
    let midnight = Local::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight") + chrono::Duration::days(days);
    let start = Local.from_local_datetime(&midnight).earliest().expect("local").with_timezone(&Utc)
        + chrono::Duration::minutes(minutes);
    let new = medimitra::store::NewAppointment {
        patient_id: patient,
        doctor_id: doctor,
        starts_at: start,
        duration_minutes: 5,
        reason: "fever".into(),
    };
    store
        .write_blocking(|db| {
            let a = db.add_appointment(&new, Utc::now())?;
            if status != AppointmentStatus::Scheduled {
                db.set_appointment_status(a.id, status, Utc::now())?;
            }
            Ok(a.id)
        })
        .expect("appointment")
}

/// Where and how a test kiosk runs.
#[derive(Default)]
pub struct Where {
    pub width: u32,
    pub height: u32,
    /// Network namespace to run in (default: the caller's).
    pub netns: Option<String>,
    /// Listen address (default: a free port on 127.0.0.1).
    pub listen: Option<String>,
    /// The URL doctors open, when it is not the one the kiosk prints (port forwards).
    pub url: Option<String>,
    /// Appended to the kiosk's config file.
    pub extra_config: String,
}

/// A kiosk with accounts, a patient and checked-in appointments, running as a subprocess.
pub struct Kiosk {
    pub _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub url: String,
    pub proc: Proc,
    pub store: medimitra::store::Store,
    pub doctor_a: i64,
    pub doctor_b: i64,
    pub patient: i64,
    pub next_slot: std::cell::Cell<i64>,
}

impl Kiosk {
    /// A kiosk sending 640x360 test video (light enough for tests on two cores).
    pub fn start() -> Kiosk {
        Self::start_sized(640, 360)
    }

    pub fn start_sized(width: u32, height: u32) -> Kiosk {
        Self::start_in(Where { width, height, ..Where::default() })
    }

    pub fn start_in(at: Where) -> Kiosk {
        let Where { width, height, netns, listen, url, extra_config } = at;
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_path_buf();
        let store = medimitra::store::Store::open_in(&data).expect("store");
        let hash = medimitra::http::auth::hash_password(PASSWORD).expect("hash");
        let people = seed_people(&store, &hash);
        let (doctor_a, doctor_b, patient) = (people.asha.id, people.vikram.id, people.patient);
        let cfg = data.join("kiosk.toml");
        std::fs::write(
            &cfg,
            format!(
                "[media]\nvideo_source = \"test\"\naudio_source = \"test\"\naudio_sink = \"none\"\nwidth = {width}\n\
                 height = {height}\n[calls]\nring_timeout_secs = 30\nreconnect_grace_secs = 30\n[auth]\n\
                 max_attempts_per_address = 1000\n{extra_config}"
            ),
        )
        .expect("config");
        let listen = listen.unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--headless", "--listen", &listen])
            .env("RUST_LOG", std::env::var("KIOSK_LOG").unwrap_or_else(|_| "warn,medimitra=info".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start medimitra");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("kiosk: {line}");
                let _ = tx.send(line);
            }
        });
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let printed = loop {
            assert!(Instant::now() < deadline, "the kiosk did not start");
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
                && let Some(u) = line.strip_prefix("Doctors open: ")
            {
                break u.to_string();
            }
        };
        let url = url.unwrap_or(printed);
        Kiosk { _dir: dir, data, url, proc, store, doctor_a, doctor_b, patient, next_slot: std::cell::Cell::new(0) }
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

    pub fn control(&self, command: &str) -> Value {
        medimitra::calls::control::request(&self.data, command).expect("control socket")
    }

    pub fn kiosk_status(&self) -> Value {
        self.control("status")["status"].clone()
    }

    pub fn proc_counts(&self) -> (usize, usize) {
        let pid = self.proc.0.id();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
        (fds, threads)
    }
}

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

pub async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![]).await.unwrap_or(Value::Null)
}

pub async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    caps.insert("acceptInsecureCerts".into(), json!(true));
    fantoccini::ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver session")
}

/// Types `text` into the page's element at `css`.
pub async fn type_into(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css)).await.expect(css).send_keys(text).await.expect("type");
}

pub async fn login(c: &Client, url: &str, email: &str) {
    c.goto(url).await.expect("open the web app");
    // Now and then (about one start in four under load) the first navigation of a fresh Chromium never shows the
    // page; say what it shows instead and load it once more, as a user would.
    if c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#email")).await.is_err() {
        let shown = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let title = c.title().await.unwrap_or_default();
        println!("the web app did not load ({shown}, title {title:?}); loading it again");
        c.goto(url).await.expect("open the web app again");
        c.wait().for_element(Locator::Css("#email")).await.expect("login form");
    }
    type_into(c, "#email", email).await;
    type_into(c, "#password", PASSWORD).await;
    c.find(Locator::Css("#login-form button[type=submit]")).await.expect("submit").click().await.expect("click");
    wait_for("the signaling socket", Duration::from_secs(15), || async {
        js(c, "window.medimitra && window.medimitra.signal.ready").await == json!(true)
    })
    .await;
}

/// Starts a call from the page (the same code the Call button runs) and has the kiosk accept it.
pub async fn call_and_accept(c: &Client, k: &Kiosk, appointment: i64) -> (Duration, Duration) {
    let t0 = Instant::now();
    js(c, &format!("window.medimitra.call.start({appointment}, 'Meena') && true")).await;
    wait_for("the kiosk to ring", Duration::from_secs(10), || async { k.kiosk_status()["call"] == "incoming" }).await;
    let accept = k.control("accept");
    assert_eq!(accept["ok"], true, "{accept}");
    let t_accept = Instant::now();
    wait_for("video and audio in the browser", Duration::from_secs(10), || async {
        js(c, "window.medimitra.call.stats.framesDecoded > 0 && window.medimitra.call.stats.audioPacketsReceived > 0")
            .await
            == json!(true)
    })
    .await;
    let browser_media = t_accept.elapsed();
    wait_for("the browser's video and audio at the kiosk", Duration::from_secs(10), || async {
        let s = k.kiosk_status();
        s["remoteVideoFrames"].as_u64().unwrap_or(0) > 0 && s["remoteAudioBuffers"].as_u64().unwrap_or(0) > 0
    })
    .await;
    (t0.elapsed(), browser_media)
}

pub async fn end_from_page(c: &Client, k: &Kiosk) {
    c.find(Locator::Css("#end")).await.expect("end button").click().await.expect("click end");
    wait_for("the call to end at the kiosk", Duration::from_secs(10), || async {
        let s = k.kiosk_status();
        s["call"] == "ended" && s["mediaSessions"] == 0
    })
    .await;
}

pub async fn banner(c: &Client) -> String {
    js(c, "document.getElementById('banner').textContent").await.as_str().unwrap_or("").to_string()
}
