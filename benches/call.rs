//! `cargo bench --bench call`: kiosk ↔ browser calls, then browser ↔ browser calls between two headless Chromium
//! instances relayed by this harness (the architecture of the web app the kiosk replaces), doing the same work:
//! 1280×720@30 moving pictures both ways (the kiosk's moving test picture, Chrome's fake camera at 30 fps), H.264,
//! no resolution drops on either side (`maintain-resolution`), and the kiosk's touch UI drawing the doctor's video and
//! the self view in a winit window under Xvfb (software renderer). Reports call set-up time (the doctor's click to the
//! first remote frame on the doctor's screen), CPU per peer (process tree) and memory per peer as PSS (a browser's
//! processes share pages; PSS counts each shared page once across them), median and p95, and what was received each
//! way. Runs in its own network namespace (needs root).
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
use std::time::{Duration, Instant};
use support::browser::*;
use support::kiosk::{KioskProcess, Where};
use support::{KillOnDrop, Xvfb, wait_for};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Proportional set size (KiB) of one process, from `/proc/<pid>/smaps_rollup`.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// (CPU ticks, PSS KiB) of `root` and all its descendants.
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
        parent.insert(pid, ppid.parse().unwrap_or(0));
        usage.insert(pid, (ut.parse::<u64>().unwrap_or(0) + st.parse::<u64>().unwrap_or(0), 0));
    }
    let mut total = (0, 0);
    for (&pid, &(ticks, _)) in &usage {
        let mut p = pid;
        let mut hops = 0;
        while p != 0 && p != root && hops < 64 {
            p = parent.get(&p).copied().unwrap_or(0);
            hops += 1;
        }
        if p == root {
            total.0 += ticks;
            total.1 += pss_kib(pid);
        }
    }
    total
}

/// CPU % (of one core) and PSS (MiB) of process trees over `window`.
async fn sample(roots: &[u32], window: Duration) -> Vec<(f64, f64)> {
    let before: Vec<u64> = roots.iter().map(|r| tree_usage(*r).0).collect();
    let t = Instant::now();
    tokio::time::sleep(window / 2).await;
    let pss: Vec<u64> = roots.iter().map(|r| tree_usage(*r).1).collect();
    tokio::time::sleep(window / 2).await;
    let secs = t.elapsed().as_secs_f64();
    roots
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let ticks = tree_usage(*r).0.saturating_sub(before[i]);
            (100.0 * ticks as f64 / clk_tck() / secs, pss[i] as f64 / 1024.0)
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

/// What a receiver got in the last seconds: "WxH @ fps".
fn picture(w: &Value, h: &Value, fps: &Value) -> String {
    format!("{}x{} @ {:.0} fps", w.as_u64().unwrap_or(0), h.as_u64().unwrap_or(0), fps.as_f64().unwrap_or(0.0))
}

/// Chrome's fake camera at 30 fps (its default is 20).
const FAKE_CAMERA: &str = "--use-fake-device-for-media-stream=fps=30";

fn main() {
    support::kiosk::run_bench_inside_namespace();
    let smoke = !std::env::args().any(|a| a == "--bench");
    let calls = if smoke { 1 } else { env_num("BENCH_CALLS", 10) } as usize;
    let window = Duration::from_secs(if smoke { 2 } else { env_num("BENCH_WINDOW_SECS", 6) });
    // SAFETY: set before any thread is started.
    unsafe { std::env::set_var("KIOSK_LOG", "warn") };
    let xvfb = Xvfb::start(1280, 800);
    support::block_on(async move {
        let k = KioskProcess::start_in(Where {
            width: 1280,
            height: 720,
            media: "test_pattern = \"moving\"\ndegradation_preference = \"maintain-resolution\"\n".into(),
            display: Some(xvfb.display.clone()),
            ..Where::default()
        });
        let kiosk_pid = k.proc.0.id();
        let profiles = tempfile::tempdir().expect("profiles");
        let drivers: Vec<(u16, KillOnDrop)> = (0..2)
            .map(|_| {
                let (p, port) = start_chromedriver();
                (port, p)
            })
            .collect();

        // Kiosk ↔ browser.
        let doctor = browser_with(drivers[0].0, &profiles.path().join("doctor"), FAKE_CAMERA).await;
        login(&doctor, &k.url, "asha@clinic.in").await;
        let (mut setup, mut kiosk_cpu, mut kiosk_pss, mut doctor_cpu, mut doctor_pss) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut doctor_sees, mut kiosk_sees, mut b2b_sees) = (String::new(), String::new(), String::new());
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
            // The doctor's Chrome keeps its 1280×720 too (as the browser pair below).
            js(
                &doctor,
                "window.medimitra.call.pc.getSenders().filter((s) => s.track && s.track.kind === 'video').forEach((s) => { \
                 const p = s.getParameters(); p.degradationPreference = 'maintain-resolution'; s.setParameters(p).catch(() => {}); }) || true",
            )
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await; // let bandwidth estimation settle
            let s = sample(&[kiosk_pid, drivers[0].1.0.id()], window).await;
            let st = js(&doctor, "window.medimitra.call.stats").await;
            doctor_sees = picture(&st["width"], &st["height"], &st["fps"]);
            let r = k.kiosk_status().receiving;
            kiosk_sees = format!("{}x{} @ {:.0} fps", r.width, r.height, r.fps);
            kiosk_cpu.push(s[0].0);
            kiosk_pss.push(s[0].1);
            doctor_cpu.push(s[1].0);
            doctor_pss.push(s[1].1);
            doctor.find(Locator::Css("#end")).await.expect("end").click().await.expect("click");
            wait_for("the end", Duration::from_secs(10), || async { k.kiosk_status().media_sessions == 0 }).await;
        }
        doctor.close().await.ok();

        // Browser ↔ browser, same machine, same resolution, H.264 preferred.
        let a = browser_with(drivers[0].0, &profiles.path().join("a"), FAKE_CAMERA).await;
        let b = browser_with(drivers[1].0, &profiles.path().join("b"), FAKE_CAMERA).await;
        for c in [&a, &b] {
            c.goto(&k.url).await.expect("page");
            c.execute(B2B_JS, vec![]).await.expect("inject");
        }
        let (mut b2b_setup, mut b2b_cpu, mut b2b_pss) = (vec![], vec![], vec![]);
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
            let st = run_async(
                &a,
                "const r = [...(await window.b2b.peer.getStats()).values()].find((r) => r.type === 'inbound-rtp' && r.kind === 'video'); \
                 return r ? { width: r.frameWidth, height: r.frameHeight, fps: r.framesPerSecond } : {};",
                vec![],
            )
            .await;
            b2b_sees = picture(&st["width"], &st["height"], &st["fps"]);
            b2b_cpu.push((s[0].0 + s[1].0) / 2.0);
            b2b_pss.push((s[0].1 + s[1].1) / 2.0);
            for c in [&a, &b] {
                js(c, "window.b2b.hangup() || true").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        a.close().await.ok();
        b.close().await.ok();

        let row = |name: &str, v: &[f64], unit: &str| {
            let (m, p) = stats(v.to_vec());
            format!("  {name:<40} median {m:>7.2} {unit:<4} p95 {p:>7.2} {unit}")
        };
        println!(
            "call bench: {calls} calls each way, 1280x720@30 moving pictures both ways, H.264 (kiosk: software-x264), \
             maintain-resolution on every sender, the kiosk's UI drawing under Xvfb, {} s CPU window",
            window.as_secs()
        );
        println!(
            "kiosk <-> browser (doctor's click to the first frame on the doctor's screen, patient answers at once)"
        );
        println!("{}", row("set-up", &setup, "s"));
        println!("{}", row("kiosk CPU (% of one core)", &kiosk_cpu, "%"));
        println!("{}", row("kiosk PSS", &kiosk_pss, "MiB"));
        println!("{}", row("doctor's browser CPU (% of one core)", &doctor_cpu, "%"));
        println!("{}", row("doctor's browser PSS (process tree)", &doctor_pss, "MiB"));
        println!("  last call: the doctor receives {doctor_sees}; the kiosk receives {kiosk_sees}");
        println!("browser <-> browser (page A's call to its first frame from B; harness relays SDP without trickle)");
        println!("{}", row("set-up", &b2b_setup, "s"));
        println!("{}", row("per-peer browser CPU (% of one core)", &b2b_cpu, "%"));
        println!("{}", row("per-peer browser PSS (process tree)", &b2b_pss, "MiB"));
        println!("  last call: A receives {b2b_sees}");
        let (setup_med, _) = stats(setup.clone());
        let (kcpu, _) = stats(kiosk_cpu.clone());
        let (bcpu, _) = stats(b2b_cpu.clone());
        let (kpss, _) = stats(kiosk_pss.clone());
        println!(
            "targets: set-up median <= 1.0 s: {}; kiosk CPU <= per-peer browser CPU: {}; kiosk PSS <= 150 MiB: {}",
            if setup_med <= 1.0 { "met" } else { "NOT met" },
            if kcpu <= bcpu { "met" } else { "NOT met" },
            if kpss <= 150.0 { "met" } else { "NOT met" }
        );
    });
}
