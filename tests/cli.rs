//! The real `medimitra` binary as a technician uses it: subprocesses, passwords on standard input, a server
//! answering over HTTPS, and configuration errors with exit code 2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_medimitra");

fn medimitra(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    // Isolate from a kiosk configuration on this machine: an empty file means the built-in defaults.
    let isolate: &[&str] = if args.contains(&"--config") { &[] } else { &["--config", "/dev/null"] };
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(isolate)
        .args(args)
        .env_remove("MEDIMITRA_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn medimitra");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Starts `medimitra serve` on a port it picks and waits until it prints the doctors' URL (with that port).
fn serve(data: &std::path::Path) -> (KillOnDrop, String) {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["--config", "/dev/null", "serve", "--headless", "--listen", "127.0.0.1:0"])
        .env_remove("MEDIMITRA_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let server = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(url) = line.strip_prefix("Doctors open: ")
        {
            return (server, url.to_string());
        }
    }
    panic!("the server did not print its URL within 30 s");
}

#[tokio::test]
async fn a_doctor_added_on_the_command_line_logs_in_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let out = medimitra(
        dir.path(),
        &["account", "add", "--name", "Dr. Asha Rao", "--email", "asha@clinic.in", "--specialty", "GP"],
        Some("a long enough secret\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("added doctor Dr. Asha Rao <asha@clinic.in>"), "{}", text(&out));

    let (_server, url) = serve(dir.path());
    assert!(url.starts_with("https://127.0.0.1:") && !url.ends_with(":0/"), "{url}");
    let cert = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    let client = support::server::https_client(&cert);
    let resp = client
        .post(format!("{url}api/auth/login"))
        .json(&serde_json::json!({"email": "asha@clinic.in", "password": "a long enough secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let me: serde_json::Value =
        client.get(format!("{url}api/users/profile")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["specialty"], "GP");

    // The doctor's web app is served too.
    let page = client.get(&url).send().await.unwrap();
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(page.text().await.unwrap().contains("Doctor login"));

    // The CLI works beside the running server: reset the password, and the old session is gone.
    let out = medimitra(dir.path(), &["doctor", "reset-password", "asha@clinic.in"], Some("another long secret\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        client.get(format!("{url}api/users/profile")).bearer_auth(token).send().await.unwrap().status().as_u16(),
        401
    );
    let backup = dir.path().join("copy.sqlite3");
    let out = medimitra(dir.path(), &["db", "backup", backup.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    // The copy holds the data: the account, its sessions and their audit entries.
    let copy = rusqlite::Connection::open_with_flags(&backup, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let count =
        |table: &str| -> i64 { copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap() };
    assert_eq!((count("accounts"), count("sessions")), (1, 1));
    assert!(count("audit_log") >= 3, "account created, login, password reset");
    let out = medimitra(dir.path(), &["db", "check"], None);
    assert!(text(&out).contains("database OK: schema version 7"), "{}", text(&out));
}

#[test]
fn weak_passwords_and_duplicate_accounts_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = medimitra(dir.path(), &["account", "add", "--name", "Dr. A", "--email", "a@clinic.in"], Some("short\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("password: must be 10 to 128 characters long"), "{}", text(&out));
    let out = medimitra(
        dir.path(),
        &["doctor", "add", "--name", "Dr. A", "--email", "a@clinic.in"],
        Some("long enough secret\n"),
    );
    assert!(out.status.success());
    let out = medimitra(
        dir.path(),
        &["doctor", "add", "--name", "Dr. B", "--email", "A@clinic.in"],
        Some("long enough secret\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let out =
        medimitra(dir.path(), &["doctor", "add", "--name", "Dr. C", "--email", "c@clinic.in", "--role", "admin"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let list = medimitra(dir.path(), &["account", "list"], None);
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 2, "{}", text(&list));
    // `doctor` is the old name of `account` and still works.
    let old = medimitra(dir.path(), &["doctor", "list"], None);
    assert_eq!(old.stdout, list.stdout);
}

#[test]
fn patients_and_appointments_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        medimitra(
            dir.path(),
            &["doctor", "add", "--name", "Dr. A", "--email", "a@clinic.in"],
            Some("long enough secret\n")
        )
        .status
        .success()
    );
    let out = medimitra(
        dir.path(),
        &["patient", "add", "--name", "Meena O'Hara", "--dob", "1961-04-02", "--sex", "female", "--language", "hi"],
        None,
    );
    assert!(text(&out).contains("added patient Meena O'Hara (id 1)"), "{}", text(&out));
    let out = medimitra(dir.path(), &["patient", "add", "--name", "Bad Date", "--dob", "1961-02-30"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("dob: `1961-02-30` is not a date"), "{}", text(&out));
    let out = medimitra(
        dir.path(),
        &[
            "appointment",
            "add",
            "--patient",
            "1",
            "--doctor",
            "a@clinic.in",
            "--at",
            "2026-11-25T10:30:00+05:30",
            "--duration",
            "20",
        ],
        None,
    );
    assert!(text(&out).contains("booked appointment 1 at 2026-11-25T05:00:00Z"), "{}", text(&out));
    let out = medimitra(dir.path(), &["appointment", "list", "--doctor", "a@clinic.in"], None);
    assert!(text(&out).contains("scheduled") && text(&out).contains("Meena O'Hara"), "{}", text(&out));
    let out = medimitra(dir.path(), &["appointment", "cancel", "1"], None);
    assert!(text(&out).contains("appointment 1 is cancelled"), "{}", text(&out));
    let out = medimitra(dir.path(), &["appointment", "cancel", "1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("an appointment that is cancelled cannot become cancelled"), "{}", text(&out));
    let out = medimitra(dir.path(), &["appointment", "list", "--status", "scheduled"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "{}", text(&out));
}

#[test]
fn a_broken_configuration_is_named_and_exits_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medimitra.toml");
    std::fs::write(&cfg, "[clinic]\nname = \"Gram Clinic\"\n\n[server]\nlisten = \"0.0.0.0:99999\"\n").unwrap();
    let out = medimitra(dir.path(), &["--config", cfg.to_str().unwrap(), "config", "check"], None);
    assert_eq!(out.status.code(), Some(2));
    let msg = text(&out);
    assert!(msg.contains(cfg.to_str().unwrap()) && msg.contains("key `server.listen`, line 5"), "{msg}");

    std::fs::write(&cfg, "[clinic]\nname = \"Gram Clinic\"\nmotto = \"care\"\n").unwrap();
    let out = medimitra(dir.path(), &["--config", cfg.to_str().unwrap(), "serve"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("line 3") && text(&out).contains("motto"), "{}", text(&out));

    let out = medimitra(
        dir.path(),
        &["--config", dir.path().join("missing.toml").to_str().unwrap(), "config", "check"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));

    std::fs::write(&cfg, "[clinic]\nname = \"Gram Clinic\"\n[[ice_servers]]\nurls = [\"turn:turn.clinic.in:3478\"]\nusername = \"kiosk\"\ncredential = \"s3cret-value\"\n").unwrap();
    let out = medimitra(dir.path(), &["--config", cfg.to_str().unwrap(), "config", "show"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("name = \"Gram Clinic\"") && !text(&out).contains("s3cret-value"), "{}", text(&out));

    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("MEDIMITRA_CONFIG", cfg.to_str().unwrap())
        .env("MEDIMITRA_AUTH_SESSION_HOURS", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("MEDIMITRA_AUTH_SESSION_HOURS"), "{}", text(&out));
}

#[test]
fn systemd_hears_ready_then_watchdog_keepalives_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--config", "/dev/null", "serve", "--headless", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env("MEDIMITRA_MEDIA_VIDEO_SOURCE", "test")
        .env("MEDIMITRA_MEDIA_AUDIO_SOURCE", "test")
        .env("MEDIMITRA_MEDIA_AUDIO_SINK", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = sock.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let first = next();
    assert!(first.starts_with("READY=1\nSTATUS=serving on 127.0.0.1:"), "{first}");
    let t = Instant::now();
    assert_eq!(next(), "WATCHDOG=1");
    assert_eq!(next(), "WATCHDOG=1");
    assert!(t.elapsed() < Duration::from_secs(2), "keepalives at half of WATCHDOG_USEC");
    // SAFETY: kill sends a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut stopping = false;
    for _ in 0..20 {
        if next() == "STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 on SIGTERM");
    assert!(child.wait().unwrap().success(), "a clean exit on SIGTERM");
}

#[test]
fn a_killed_backup_leaves_nothing_that_passes_for_a_backup() {
    // Before: `db backup` wrote straight to the named file; killed part-way it left that file beside a journal, and
    // SQLite rolled the journal back to a database that passed its integrity check and held no tables.
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = medimitra::store::Store::open_in(&data).unwrap();
        store
            .write_blocking(|db| {
                (0..30_000).try_for_each(|i| {
                    let p = medimitra::store::NewPatient {
                        name: format!("Patient number {i} with a name long enough to fill pages"),
                        date_of_birth: None,
                        sex: medimitra::core::Sex::Unknown,
                        phone: None,
                        preferred_language: medimitra::core::Language::English,
                    };
                    db.add_patient(&p, medimitra::core::Actor::Cli, chrono::Utc::now()).map(|_| ())
                })
            })
            .unwrap();
    }
    let (mut killed_midway, mut finished) = (0, 0);
    for run in 0..16u64 {
        let dest = dir.path().join(format!("backup-{run}.sqlite3"));
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(["--config", "/dev/null", "db", "backup"])
            .arg(&dest)
            .env_remove("MEDIMITRA_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // From at once to well after the copy started.
        std::thread::sleep(Duration::from_millis(10 + run * 15));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if dest.exists() {
            // Whatever is there under the name asked for must be the whole database.
            let copy =
                rusqlite::Connection::open_with_flags(&dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            let n: i64 = copy.query_row("SELECT COUNT(*) FROM patients", [], |r| r.get(0)).unwrap_or(-1);
            assert_eq!((check.as_str(), n), ("ok", 30_000), "run {run}: a backup under the name asked for");
            finished += 1;
        } else {
            assert_eq!(status.signal(), Some(9), "run {run}: no backup and not killed");
            // Killed while copying: the copy's own name is left, which nothing takes for a backup.
            let partial = format!("backup-{run}.sqlite3.partial-");
            if std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&partial))
            {
                killed_midway += 1;
            }
        }
    }
    assert!(killed_midway > 0, "no backup was killed while copying ({finished} finished), so this test proved nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_the_server_killed_mid_load() {
    // The real server under a write load from four concurrent clients (a doctor's notes over HTTPS), killed with
    // SIGKILL at a random moment 20 times, restarted each time: every write it answered 200 to is there afterwards,
    // and `db check` finds the database sound.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let ok = |args: &[&str], stdin: Option<&str>| {
        let out = medimitra(data, args, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    };
    ok(&["doctor", "add", "--name", "Dr. A", "--email", "a@clinic.in"], Some("long enough secret\n"));
    ok(&["patient", "add", "--name", "Meena"], None);
    ok(&["appointment", "add", "--patient", "1", "--doctor", "a@clinic.in", "--at", "2026-11-25T10:30:00+05:30"], None);
    let mut acknowledged: Vec<String> = Vec::new();
    // A fixed seed, printed, so a failing run can be repeated.
    let mut seed: u64 = std::env::var("DURABILITY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2026);
    println!("seed {seed}");
    let mut killed_under_load = 0;
    for round in 0..20 {
        let (mut server, url) = serve(data);
        let cert = std::fs::read(data.join("tls/cert.pem")).unwrap();
        let client = support::server::https_client(&cert);
        let answer = |request: reqwest::RequestBuilder| async move {
            request.send().await.unwrap().json::<serde_json::Value>().await.unwrap()
        };
        let login = answer(
            client
                .post(format!("{url}api/auth/login"))
                .json(&serde_json::json!({"email": "a@clinic.in", "password": "long enough secret"})),
        )
        .await;
        let token = login["token"].as_str().unwrap().to_string();
        // Everything acknowledged so far is there after the restart.
        let a = answer(client.get(format!("{url}api/appointments/1")).bearer_auth(&token)).await;
        let notes = a["notes"].as_str().unwrap_or("");
        let lines: std::collections::HashSet<&str> =
            notes.lines().filter_map(|l| l.rsplit_once("] ").map(|(_, t)| t)).collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|w| !lines.contains(w.as_str())).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged writes lost after SIGKILL: {lost:?}");
        // Four writers, each sending one note after another until the server dies under them.
        let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (client, url, token, acks) = (client.clone(), url.clone(), token.clone(), acks.clone());
            writers.push(tokio::spawn(async move {
                for n in 0..10_000 {
                    let note = format!("r{round}-w{w}-n{n}");
                    let sent = client
                        .post(format!("{url}api/appointments/1/notes"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"text": note}))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 200 => acks.lock().unwrap().push(note),
                        _ => return,
                    }
                }
            }));
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(50 + (seed >> 33) % 450)).await;
        let acked_before_kill = acks.lock().unwrap().len();
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let acks = std::mem::take(&mut *acks.lock().unwrap());
        if acked_before_kill > 0 {
            killed_under_load += 1;
        }
        acknowledged.extend(acks);
    }
    assert!(killed_under_load >= 15, "the server was killed under load only {killed_under_load} times");
    println!("{} acknowledged writes over 20 kills, none lost", acknowledged.len());
    let out = medimitra(data, &["db", "check"], None);
    assert!(out.status.success() && text(&out).contains("database OK"), "{}", text(&out));
}
