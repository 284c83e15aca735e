//! `cargo bench --bench ui`: the in-call screen showing a 1280x720@30 doctor's video plus the 320x180 self view, in a
//! real winit window under Xvfb (started here when there is no DISPLAY), once with the software renderer and once
//! with femtovg (OpenGL through Mesa's llvmpipe here). Frames come into the media engine's one-frame slots exactly
//! as the decoder hands them over (a feeder thread copies a moving picture in at 30 fps). Reports the draw rate,
//! CPU (% of one core, the whole process) and RSS. Each renderer runs in its own process.
//!
//! Environment: BENCH_UI_SECS (measured window, default 10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use medimitra::config::Config;
use medimitra::media::VideoFrame;
use medimitra::ui::{CallAdapter, KioskAdapter, Screen, Ui, UiContext};
use slint::ComponentHandle;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const RENDERER: &str = "BENCH_UI_RENDERER";

fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    if let Ok(renderer) = std::env::var(RENDERER) {
        return measure(&renderer);
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let xvfb = std::env::var_os("DISPLAY").is_none().then(|| support::Xvfb::start(1280, 800));
    println!("ui bench: in-call screen, 1280x720@30 remote video + 320x180 self view, window 1280x800 under Xvfb");
    for renderer in ["winit-software", "winit-femtovg"] {
        let mut cmd = Command::new(std::env::current_exe().expect("bench binary"));
        cmd.env(RENDERER, renderer);
        if smoke {
            cmd.env("BENCH_UI_SECS", "2");
        }
        if let Some(x) = &xvfb {
            cmd.env("DISPLAY", &x.display);
        }
        let status = cmd.status().expect("run");
        assert!(status.success(), "{renderer} failed");
    }
}

fn measure(renderer: &str) {
    let secs: u64 = std::env::var("BENCH_UI_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("dir");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.media.video_source = "test".into();
    config.media.audio_source = "test".into();
    config.media.audio_sink = "none".into();
    config.ui.fullscreen = false;
    config.ui.backend = renderer.into();
    let config = Arc::new(config);
    let store = medimitra::store::Store::open_in(dir.path()).expect("store");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let engine = medimitra::media::MediaEngine::start(&config.media, &config.ice_servers).expect("media");
    let sources = engine.sources.clone();
    let shutdown = medimitra::shutdown::Shutdown::new();
    let calls = {
        let _g = rt.enter();
        medimitra::calls::spawn(engine, store.clone(), config.clone(), shutdown.signal()).handle
    };
    medimitra::ui::select_backend(renderer).expect("backend");
    let ui = Ui::new(UiContext {
        store,
        calls: calls.clone(),
        config,
        sources,
        doctor_url: String::new(),
        fingerprint: None,
        setup_refused: false,
        runtime: rt.handle().clone(),
    })
    .expect("ui");
    let w = ui.window();
    w.window().set_size(slint::PhysicalSize::new(1280, 800));
    w.global::<CallAdapter>().set_doctor_name("Dr. Asha Rao".into());
    w.global::<KioskAdapter>().set_screen(Screen::Incall);

    let renders = Rc::new(std::cell::Cell::new(0u64));
    let r = renders.clone();
    let notifier = w
        .window()
        .set_rendering_notifier(move |state, _| {
            if matches!(state, slint::RenderingState::AfterRendering) {
                r.set(r.get() + 1);
            }
        })
        .is_ok();

    // The decoder's side: a moving picture at 30 fps into the one-frame slots.
    let stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (stop, offered, media) = (stop.clone(), offered.clone(), calls.media().clone());
        std::thread::spawn(move || {
            let frames: Vec<Vec<u8>> = (0..4)
                .map(|k| {
                    let mut v = vec![0u8; 1280 * 720 * 4];
                    for (i, p) in v.chunks_mut(4).enumerate() {
                        let (x, y) = (i % 1280, i / 1280);
                        let band = ((x + k * 20) / 80) % 2 == 0;
                        p.copy_from_slice(&[if band { 200 } else { 40 }, (y * 255 / 720) as u8, 120, 255]);
                    }
                    v
                })
                .collect();
            let small = vec![90u8; 320 * 180 * 4];
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rgba = frames[(n % 4) as usize].clone();
                media.pictures.offer_doctor(VideoFrame { width: 1280, height: 720, rgba });
                media.pictures.offer_self_view(VideoFrame { width: 320, height: 180, rgba: small.clone() });
                offered.fetch_add(1, Ordering::Relaxed);
                n += 1;
                let next = start + Duration::from_micros(33_333 * n);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        })
    };

    ui.window().show().expect("show");
    ui.start_timer();
    let ui = Rc::new(ui);
    let warm = Duration::from_secs(2);
    let mark = Rc::new(std::cell::RefCell::new(None::<(Instant, f64, u64, u64, u64)>));
    let timer = slint::Timer::default();
    let started = Instant::now();
    {
        let (ui, mark, renders, offered) = (ui.clone(), mark.clone(), renders.clone(), offered.clone());
        let renderer = renderer.to_string();
        timer.start(slint::TimerMode::Repeated, Duration::from_millis(100), move || {
            let now = Instant::now();
            let mut m = mark.borrow_mut();
            match *m {
                None if now - started >= warm => {
                    *m = Some((now, cpu_secs(), ui.frames_drawn(), renders.get(), offered.load(Ordering::Relaxed)));
                }
                Some((t0, c0, d0, r0, o0)) if now - t0 >= Duration::from_secs(secs) => {
                    let dt = (now - t0).as_secs_f64();
                    let drawn = (ui.frames_drawn() - d0) as f64 / dt;
                    let cpu = 100.0 * (cpu_secs() - c0) / dt;
                    let fed = (offered.load(Ordering::Relaxed) - o0) as f64 / dt;
                    let rendered = if notifier {
                        format!("{:.1} renders/s", (renders.get() - r0) as f64 / dt)
                    } else {
                        "renders not countable (no rendering notifier in this renderer)".into()
                    };
                    println!(
                        "  {renderer:<15} frames put on screen {drawn:5.1} /s (fed {fed:.1} /s), {rendered}; CPU {cpu:5.1} % of one core; RSS {:.0} MiB",
                        rss_mib()
                    );
                    let target = if drawn >= 25.0 { "met" } else { "NOT met" };
                    if renderer.ends_with("software") {
                        println!("  target: draw rate >= 25 fps with the software renderer at 1280x720: {target}");
                    }
                    let _ = slint::quit_event_loop();
                }
                _ => {}
            }
        });
    }
    slint::run_event_loop().expect("event loop");
    stop.store(true, Ordering::Relaxed);
    let _ = feeder.join();
}
