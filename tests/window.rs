//! The real binary opens its window with the winit backend under Xvfb and shows the welcome screen: the screen is
//! captured (ImageMagick `import`) and must show the green "Check in" button and no error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{KillOnDrop, Xvfb};

/// Share of the screen's pixels that are the welcome screen's "Check in" green (#11763a).
fn green_share(png_bytes: &[u8]) -> f64 {
    let mut dec = png::Decoder::new(png_bytes);
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("frame");
    let step = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let green = px
        .chunks(step)
        .filter(|p| p.len() >= 3 && p[0].abs_diff(0x11) < 12 && p[1].abs_diff(0x76) < 12 && p[2].abs_diff(0x3a) < 12)
        .count();
    green as f64 / (px.len() / step) as f64
}

#[test]
fn the_binary_opens_the_welcome_screen_in_a_window() {
    let xvfb = Xvfb::start(1280, 800);
    let data = tempfile::tempdir().expect("dir");
    let mut kiosk = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_medimitra"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DISPLAY", &xvfb.display)
            .env("MEDIMITRA_UI_BACKEND", "winit-software")
            .env("MEDIMITRA_UI_FULLSCREEN", "false")
            .env("MEDIMITRA_MEDIA_VIDEO_SOURCE", "test")
            .env("MEDIMITRA_MEDIA_AUDIO_SOURCE", "test")
            .env("MEDIMITRA_MEDIA_AUDIO_SINK", "none")
            .env("RUST_LOG", "warn,medimitra=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("medimitra"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in [
        kiosk.0.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        kiosk.0.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                println!("kiosk: {line}");
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the kiosk did not report serving");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            assert!(!line.contains("did not start"), "{line}");
            if line.contains("serving") {
                assert!(line.contains("touch UI"), "serving without the UI: {line}");
                break;
            }
        }
    }
    // The window maps and paints shortly after: capture the screen until the welcome screen is on it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut share = 0.0;
    while Instant::now() < deadline {
        let shot = Command::new("import")
            .args(["-display", xvfb.display.as_str(), "-window", "root", "png:-"])
            .output()
            .expect("import (apt imagemagick)");
        if shot.status.success() && !shot.stdout.is_empty() {
            share = green_share(&shot.stdout);
            if share > 0.02 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("welcome screen: {:.1} % of the screen is the Check in button's green", share * 100.0);
    assert!(share > 0.02, "the welcome screen's Check in button is not on the screen");
    assert!(kiosk.0.try_wait().expect("wait").is_none(), "the kiosk exited");
}
