//! `cargo bench --bench api`: GET /api/appointments over HTTPS against the real `medimitra` binary holding 10,000
//! appointments for 50 doctors, 32 concurrent keep-alive clients. Prints requests/s and latency percentiles.
//!
//! Environment: BENCH_SECONDS (measured time, default 10), BENCH_CLIENTS (default 32).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use medimitra::core::{Actor, Language, Role, Sex};
use medimitra::store::{NewAccount, NewAppointment, NewPatient, Store};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const DOCTORS: usize = 50;
const APPOINTMENTS: usize = 10_000;
const PATIENTS: usize = 2_000;
const PASSWORD: &str = "benchmark password";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed(store: &Store) {
    let hash = medimitra::credentials::hash_password(PASSWORD).expect("hash");
    let day0 = Utc.with_ymd_and_hms(2026, 11, 2, 3, 30, 0).single().expect("date");
    store
        .write_blocking(|db| {
            let now = Utc::now();
            for d in 0..DOCTORS {
                db.add_account(
                    &NewAccount {
                        name: format!("Dr. Bench {d}"),
                        specialty: "General medicine".into(),
                        email: format!("doctor{d}@bench.in"),
                        password_hash: hash.clone(),
                        role: Role::Doctor,
                    },
                    Actor::Cli,
                    now,
                )?;
            }
            for p in 0..PATIENTS {
                db.add_patient(
                    &NewPatient {
                        name: format!("Patient {p}"),
                        date_of_birth: None,
                        sex: Sex::Unknown,
                        phone: None,
                        preferred_language: Language::Hindi,
                    },
                    Actor::Cli,
                    now,
                )?;
            }
            // 200 per doctor: 20 working days of 10 fifteen-minute slots.
            for i in 0..APPOINTMENTS {
                let doctor = (i % DOCTORS) as i64 + 1;
                let k = (i / DOCTORS) as i64;
                let starts_at = day0 + Duration::days(k / 10) + Duration::minutes(15 * (k % 10));
                db.add_appointment(
                    &NewAppointment {
                        patient_id: (i % PATIENTS) as i64 + 1,
                        doctor_id: doctor,
                        starts_at,
                        duration_minutes: 15,
                        reason: "follow-up".into(),
                    },
                    Actor::Cli,
                    now,
                )?;
            }
            Ok(())
        })
        .expect("seed");
}

/// A number from /proc/PID/status, e.g. `VmRSS:` (KiB) or `Threads:`.
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, where a short smoke run is enough.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let seconds = if smoke { 1 } else { env_num("BENCH_SECONDS", 10) };
    let clients = env_num("BENCH_CLIENTS", 32) as usize;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in(dir.path()).expect("store");
    let t = Instant::now();
    seed(&store);
    println!(
        "seeded {DOCTORS} doctors, {PATIENTS} patients, {APPOINTMENTS} appointments in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);

    let config = dir.path().join("bench.toml");
    std::fs::write(&config, "[auth]\nmax_attempts_per_address = 1000\n[log]\nlevel = \"warn\"\n").expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_medimitra"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--headless", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start medimitra");
    let pid = server.id();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let base = format!("https://localhost:{port}");
        let cert_path = dir.path().join("tls/cert.pem");
        let started = Instant::now();
        while !cert_path.exists() || reqwest_client(&cert_path).get(format!("{base}/api/health")).send().await.is_err()
        {
            assert!(started.elapsed().as_secs() < 30, "server did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut tokens = Vec::new();
        let login = reqwest_client(&cert_path);
        for d in 0..DOCTORS {
            let resp: serde_json::Value = login
                .post(format!("{base}/api/auth/login"))
                .json(&serde_json::json!({"email": format!("doctor{d}@bench.in"), "password": PASSWORD}))
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("login body");
            tokens.push(resp["token"].as_str().expect("token").to_string());
        }
        let tokens = Arc::new(tokens);
        let run = |secs: u64| {
            let tokens = tokens.clone();
            let base = base.clone();
            let cert_path = cert_path.clone();
            async move {
                let deadline = Instant::now() + std::time::Duration::from_secs(secs);
                let mut tasks = Vec::new();
                for c in 0..clients {
                    let client = reqwest_client(&cert_path);
                    let tokens = tokens.clone();
                    let url = format!("{base}/api/appointments");
                    tasks.push(tokio::spawn(async move {
                        let mut lat = Vec::new();
                        let mut errors = 0u64;
                        let mut rows = 0usize;
                        let mut i = c;
                        while Instant::now() < deadline {
                            let t = Instant::now();
                            let ok = match client.get(&url).bearer_auth(&tokens[i % tokens.len()]).send().await {
                                // Read the whole body, but count rows with a byte scan: parsing 25 KB of JSON
                                // per response here would measure the client, which shares the 2 cores.
                                Ok(r) if r.status().is_success() => match r.bytes().await {
                                    Ok(b) => {
                                        rows += b.windows(12).filter(|w| w == b"\"patientId\":").count();
                                        true
                                    }
                                    Err(_) => false,
                                },
                                _ => false,
                            };
                            if ok {
                                lat.push(t.elapsed())
                            } else {
                                errors += 1
                            }
                            i += 1;
                        }
                        (lat, errors, rows)
                    }));
                }
                let mut all = Vec::new();
                let (mut errors, mut rows) = (0, 0);
                for t in tasks {
                    let (l, e, r) = t.await.expect("client task");
                    all.extend(l);
                    errors += e;
                    rows += r;
                }
                (all, errors, rows)
            }
        };
        let idle_rss = proc_status(pid, "VmRSS:");
        run(if smoke { 1 } else { 2 }).await; // warm-up
        let t = Instant::now();
        let (mut lat, errors, rows) = run(seconds).await;
        let elapsed = t.elapsed().as_secs_f64();
        lat.sort();
        (lat, errors, rows, elapsed, idle_rss)
    });
    let rss = proc_status(pid, "VmRSS:");
    let threads = proc_status(pid, "Threads:");
    let _ = server.kill();
    let _ = server.wait();

    let (lat, errors, rows, elapsed, idle_rss) = result;
    assert!(!lat.is_empty(), "no successful request");
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    let rps = lat.len() as f64 / elapsed;
    println!(
        "api bench: GET /api/appointments (100 rows of 200 per doctor), {clients} clients, {:.1} s, {} requests, {errors} errors",
        elapsed,
        lat.len()
    );
    println!("  requests/s {rps:.0}   rows/request {:.0}", rows as f64 / lat.len() as f64);
    println!("  latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}", pct(0.50), pct(0.90), pct(0.99), pct(1.0));
    let mib = |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "  server RSS idle {}, after the run {}; threads {}",
        mib(idle_rss),
        mib(rss),
        threads.map_or("?".into(), |t| t.to_string())
    );
    let verdict = rps >= 2000.0 && pct(0.99) <= 50.0 && errors == 0;
    println!("  target (>= 2000 req/s, p99 <= 50 ms, no errors): {}", if verdict { "met" } else { "NOT met" });
}

fn reqwest_client(cert_path: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(cert_path).expect("cert");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .pool_max_idle_per_host(1)
        .build()
        .expect("client")
}
