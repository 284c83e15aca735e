//! `cargo bench --bench call`: ten kiosk ↔ browser calls at 1280x720@30 with the software H.264 encoder, then ten
//! browser ↔ browser calls at the same resolution (two Chromium instances relayed by this harness: the architecture
//! of the web app the kiosk replaces). Reports call set-up time (the doctor's click to the first remote frame on the
//! doctor's screen), CPU per peer and memory, median and p95. Runs in its own network namespace (needs root).
//!
//! Environment: BENCH_CALLS (default 10), BENCH_WINDOW_SECS (CPU sampling window per call, default 6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use fantoccini::{Client, Locator};
use medimitra::calls::control::ControlCommand;
use medimitra::core::CallState;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::browser::*;
use support::kiosk::{INSIDE, KioskProcess, Namespace};
use support::{KillOnDrop, wait_for};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// (CPU ticks, RSS KiB) of `root` and all its descendants.
fn tree_usage(root: u32) -> (u64, u64) {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut usage: HashMap<u32, (u64, u64)> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(ut), Some(st)) = (f.get(1), f.get(11), f.get(12)) else { continue };
        let rss_pages: u64 = f.get(21).and_then(|v| v.parse().ok()).unwrap_or(0);
        parent.insert(pid, ppid.parse().unwrap_or(0));
        usage.insert(pid, (ut.parse::<u64>().unwrap_or(0) + st.parse::<u64>().unwrap_or(0), rss_pages * 4));
    }
    let mut total = (0, 0);
    for (&pid, &(ticks, rss)) in &usage {
        let mut p = pid;
        let mut hops = 0;
        while p != 0 && p != root && hops < 64 {
            p = parent.get(&p).copied().unwrap_or(0);
            hops += 1;
        }
        if p == root {
            total.0 += ticks;
            total.1 += rss;
        }
    }
    total
}

/// CPU % (of one core) and RSS (MiB) of process trees over `window`.
async fn sample(roots: &[u32], window: Duration) -> Vec<(f64, f64)> {
    let before: Vec<u64> = roots.iter().map(|r| tree_usage(*r).0).collect();
    let t = Instant::now();
    tokio::time::sleep(window / 2).await;
    let rss: Vec<u64> = roots.iter().map(|r| tree_usage(*r).1).collect();
    tokio::time::sleep(window / 2).await;
    let secs = t.elapsed().as_secs_f64();
    roots
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let ticks = tree_usage(*r).0.saturating_sub(before[i]);
            (100.0 * ticks as f64 / clk_tck() / secs, rss[i] as f64 / 1024.0)
        })
        .collect()
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let pick = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (pick(0.5), pick(0.95))
}

const B2B_JS: &str = r#"
window.b2b = {
  async media() {
    return navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720, frameRate: 30 } });
  },
  async pc(stream) {
    const pc = new RTCPeerConnection();
    this.peer = pc;
    this.firstFrameAt = null;
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    // Keep 720p as the kiosk does (no resolution drop under load), so both sides encode the same picture.
    for (const s of pc.getSenders()) {
      if (s.track && s.track.kind === "video") {
        const p = s.getParameters();
        p.degradationPreference = "maintain-resolution";
        s.setParameters(p).catch(() => {});
      }
    }
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind === "video") {
        const caps = RTCRtpReceiver.getCapabilities("video").codecs;
        t.setCodecPreferences([...caps.filter((c) => c.mimeType === "video/H264"), ...caps.filter((c) => c.mimeType !== "video/H264")]);
      }
    }
    pc.ontrack = (ev) => {
      if (ev.track.kind !== "video") return;
      const v = document.createElement("video");
      v.muted = true; v.autoplay = true; v.playsInline = true;
      v.srcObject = new MediaStream([ev.track]);
      document.body.append(v);
      v.requestVideoFrameCallback(() => { if (!this.firstFrameAt) this.firstFrameAt = Date.now(); });
    };
    return pc;
  },
  gathered(pc) {
    return new Promise((ok) => {
      if (pc.iceGatheringState === "complete") return ok();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") ok(); };
    });
  },
  async offer() {
    this.startedAt = Date.now();
    const pc = await this.pc(await this.media());
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered(pc);
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    const pc = await this.pc(await this.media());
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.gathered(pc);
    return pc.localDescription.sdp;
  },
  async accept(sdp) { await this.peer.setRemoteDescription({ type: "answer", sdp }); },
  hangup() { if (this.peer) this.peer.close(); this.peer = null; document.querySelectorAll("video").forEach((v) => v.remove()); },
};
true
"#;

async fn run_async(c: &Client, body: &str, args: Vec<Value>) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1]; (async () => {{ {body} }})().then(done, (e) => done('ERR ' + e));"
    );
    c.execute_async(&script, args).await.expect("script")
}

fn main() {
    if std::env::var(INSIDE).is_err() {
        let ns = Namespace::create();
        let status = Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(std::env::current_exe().expect("bench binary"))
            .args(std::env::args().skip(1))
            .env(INSIDE, "1")
            .status()
            .expect("run inside the namespace");
        std::process::exit(status.code().unwrap_or(1));
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let calls = if smoke { 1 } else { env_num("BENCH_CALLS", 10) } as usize;
    let window = Duration::from_secs(if smoke { 2 } else { env_num("BENCH_WINDOW_SECS", 6) });
    let _ = rustls::crypto::ring::default_provider().install_default();
    // SAFETY: set before any thread is started.
    unsafe { std::env::set_var("KIOSK_LOG", "warn") };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let k = KioskProcess::start_sized(1280, 720);
        let kiosk_pid = k.proc.0.id();
        let profiles = tempfile::tempdir().expect("profiles");
        let drivers: Vec<(u16, KillOnDrop)> = (0..2)
            .map(|_| {
                let (p, port) = start_chromedriver();
                (port, p)
            })
            .collect();

        // Kiosk ↔ browser.
        let doctor = browser(drivers[0].0, &profiles.path().join("doctor")).await;
        login(&doctor, &k.url, "asha@clinic.in").await;
        let (mut setup, mut kiosk_cpu, mut kiosk_rss, mut doctor_cpu) = (vec![], vec![], vec![], vec![]);
        let (mut doctor_res, mut kiosk_res, mut b2b_res) = (String::new(), String::new(), String::new());
        for _ in 0..calls {
            let id = k.checked_in(k.doctor_a);
            js(&doctor, &format!("window.medimitra.call.start({id}, 'Meena') && true")).await;
            // The patient answers at once.
            wait_for("ringing", Duration::from_secs(10), || async { k.kiosk_status().call == CallState::Incoming })
                .await;
            k.control(ControlCommand::Accept);
            wait_for("the first frame", Duration::from_secs(15), || async {
                js(&doctor, "!!(window.medimitra.call.timing && window.medimitra.call.timing.firstFrameAt)").await
                    == json!(true)
            })
            .await;
            let ms =
                js(&doctor, "window.medimitra.call.timing.firstFrameAt - window.medimitra.call.timing.clickedAt").await;
            setup.push(ms.as_f64().unwrap_or(f64::NAN) / 1000.0);
            tokio::time::sleep(Duration::from_secs(2)).await; // let bandwidth estimation settle
            let s = sample(&[kiosk_pid, drivers[0].1.0.id()], window).await;
            doctor_res = js(&doctor, "[window.medimitra.call.stats.width, window.medimitra.call.stats.height]").await.to_string();
            kiosk_res = format!("{:?}", k.kiosk_status().remote_video_size);
            kiosk_cpu.push(s[0].0);
            kiosk_rss.push(s[0].1);
            doctor_cpu.push(s[1].0);
            doctor.find(Locator::Css("#end")).await.expect("end").click().await.expect("click");
            wait_for("the end", Duration::from_secs(10), || async { k.kiosk_status().media_sessions == 0 }).await;
        }
        let remote = k.kiosk_status();
        doctor.close().await.ok();

        // Browser ↔ browser, same machine, same resolution, H.264 preferred.
        let a = browser(drivers[0].0, &profiles.path().join("a")).await;
        let b = browser(drivers[1].0, &profiles.path().join("b")).await;
        for c in [&a, &b] {
            c.goto(&k.url).await.expect("page");
            c.execute(B2B_JS, vec![]).await.expect("inject");
        }
        let (mut b2b_setup, mut b2b_cpu, mut b2b_rss) = (vec![], vec![], vec![]);
        for _ in 0..calls {
            let offer = run_async(&a, "return await window.b2b.offer();", vec![]).await;
            let answer = run_async(&b, "return await window.b2b.answer(arguments[0]);", vec![offer]).await;
            run_async(&a, "await window.b2b.accept(arguments[0]); return true;", vec![answer]).await;
            wait_for("the first browser-to-browser frame", Duration::from_secs(15), || async {
                js(&a, "window.b2b.firstFrameAt !== null").await == json!(true)
            })
            .await;
            let ms = js(&a, "window.b2b.firstFrameAt - window.b2b.startedAt").await;
            b2b_setup.push(ms.as_f64().unwrap_or(f64::NAN) / 1000.0);
            tokio::time::sleep(Duration::from_secs(2)).await;
            let s = sample(&[drivers[0].1.0.id(), drivers[1].1.0.id()], window).await;
            b2b_res = js(&a, "(() => { const v = document.querySelector('video'); return v ? [v.videoWidth, v.videoHeight] : null; })()").await.to_string();
            b2b_cpu.push((s[0].0 + s[1].0) / 2.0);
            b2b_rss.push((s[0].1 + s[1].1) / 2.0);
            for c in [&a, &b] {
                js(c, "window.b2b.hangup() || true").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        a.close().await.ok();
        b.close().await.ok();

        let row = |name: &str, v: &[f64], unit: &str| {
            let (m, p) = stats(v.to_vec());
            format!("  {name:<38} median {m:>7.2} {unit:<4} p95 {p:>7.2} {unit}")
        };
        println!(
            "call bench: {calls} calls each way, 1280x720@30 test video, H.264 (kiosk: software-x264), {} s CPU window",
            window.as_secs()
        );
        println!(
            "kiosk <-> browser (doctor's click to the first frame on the doctor's screen, patient answers at once)"
        );
        println!("{}", row("set-up", &setup, "s"));
        println!("{}", row("kiosk CPU (% of one core)", &kiosk_cpu, "%"));
        println!("{}", row("kiosk RSS", &kiosk_rss, "MiB"));
        println!("{}", row("doctor's browser CPU (% of one core)", &doctor_cpu, "%"));
        let _ = remote;
        println!("  picture in the last call: the doctor sees the kiosk at {doctor_res}; the kiosk receives {kiosk_res}");
        println!("browser <-> browser (page A's call to its first frame from B; harness relays SDP without trickle)");
        println!("{}", row("set-up", &b2b_setup, "s"));
        println!("{}", row("per-peer browser CPU (% of one core)", &b2b_cpu, "%"));
        println!("{}", row("per-peer browser RSS (process tree)", &b2b_rss, "MiB"));
        println!("  picture in the last call: A shows B at {b2b_res}");
        let (setup_med, _) = stats(setup.clone());
        let (kcpu, _) = stats(kiosk_cpu.clone());
        let (bcpu, _) = stats(b2b_cpu.clone());
        let (krss, _) = stats(kiosk_rss.clone());
        println!(
            "targets: set-up median <= 1.0 s: {}; kiosk CPU <= per-peer browser CPU: {}; kiosk RSS <= 150 MiB: {}",
            if setup_med <= 1.0 { "met" } else { "NOT met" },
            if kcpu <= bcpu { "met" } else { "NOT met" },
            if krss <= 150.0 { "met" } else { "NOT met" }
        );
    });
}
