//! `cargo bench --bench vitals`: from a byte at the kiosk's serial port to the number on the doctor's screen, during a
//! real call. An emulated CMS50D+ (legacy stream, ~60 frames a second) on a pseudo-terminal feeds the real
//! `medimitra serve`; headless Chromium is the doctor. The oximeter's numbers change every 400 ms to a pair never
//! used before; the latency of each change is the page's `Date.now()` when it wrote the new numbers into the page
//! less the wall-clock time the first byte of the first frame carrying them was written to the pty (same machine,
//! same clock). Also the kiosk's CPU (all its threads) over a window of the call with the oximeter streaming and
//! one without. Runs in its own network namespace (needs root).
//!
//! Environment: BENCH_CHANGES (default 60), BENCH_WINDOW_SECS (each CPU window, default 10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, UNIX_EPOCH};
use support::browser::*;
use support::kiosk::{KioskProcess, Where};
use support::pty::{Streamer, legacy_frame, pty};
use support::wait_for;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds used so far by process `pid` (all its threads), from `/proc/<pid>/stat`.
fn cpu_secs(pid: u32) -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let tck = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as f64,
        _ => 100.0,
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<u64>() as f64 / tck
}

/// The kiosk's CPU use (percent of one core) over `window`.
fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_secs(pid);
    std::thread::sleep(window);
    100.0 * (cpu_secs(pid) - before) / window.as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    support::kiosk::run_bench_inside_namespace();
    let smoke = !std::env::args().any(|a| a == "--bench");
    let changes = if smoke { 5 } else { env_num("BENCH_CHANGES", 60) };
    let window = Duration::from_secs(if smoke { 2 } else { env_num("BENCH_WINDOW_SECS", 10) });
    support::block_on(async move {
        let device = pty();
        let k = KioskProcess::start_in(Where {
            width: 640,
            height: 360,
            extra_config: device.legacy_oximeter_config(),
            ..Default::default()
        });
        let (_driver, driver_port) = start_chromedriver();
        let profiles = tempfile::tempdir().expect("profiles");
        let page = browser(driver_port, &profiles.path().join("doctor")).await;
        let id = k.checked_in(k.doctor_a);
        login(&page, &k.url, "asha@clinic.in").await;
        call_and_accept(&page, &k, id).await;

        // CPU with the call alone, then with the oximeter streaming.
        let without = cpu_over(k.pid(), window);
        let streamer = Streamer::start(device.master, &legacy_frame(97, 60, 40, false));
        wait_for("the first numbers on the page", Duration::from_secs(15), || async {
            js(&page, "document.getElementById('v-pulse').textContent").await == "60"
        })
        .await;
        let with = cpu_over(k.pid(), window);

        // Each change: SpO2 88-99 and a pulse never used before (61, 62, ...), so every shown pair names its frame.
        for i in 0..changes {
            streamer.send(&legacy_frame(88 + (i % 12) as u8, 61 + i as u16, 40, false));
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let shown = js(&page, "window.medimitra.vitals.shownLog").await;
        let written = streamer.written.lock().unwrap().clone();
        let mut latencies: Vec<f64> = Vec::new();
        for i in 0..changes {
            let pulse = 61 + i;
            let frame = legacy_frame(88 + (i % 12) as u8, pulse as u16, 40, false).to_vec();
            let Some((_, at)) = written.iter().find(|(f, _)| *f == frame) else { continue };
            let wrote_ms = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
            let seen = shown.as_array().into_iter().flatten().find(|e| e["pulse"].as_u64() == Some(pulse));
            if let Some(ms) = seen.and_then(|e| e["at"].as_f64()) {
                latencies.push(ms - wrote_ms);
            }
        }
        drop(streamer.stop());
        end_from_page(&page, &k).await;
        page.close().await.expect("close");
        latencies.sort_by(f64::total_cmp);
        println!("vitals bench: {} of {changes} changes shown on the doctor's page", latencies.len());
        println!(
            "serial byte -> doctor's screen: median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            latencies.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "kiosk CPU during the call ({} s windows, % of one core): without the oximeter {without:.1}, \
             with its 60 Hz stream {with:.1}",
            window.as_secs()
        );
        assert_eq!(latencies.len() as u64, changes, "every change must reach the page");
    });
}
