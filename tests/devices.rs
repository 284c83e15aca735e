//! The serial medical devices through the real binary: emulated devices on pseudo-terminals speak each protocol
//! (frames built here from the published layouts, independently of the decoders), and `medimitra devices watch` /
//! `devices list` must show what a technician expects: readings, "no finger", an unplug (the pty closed) and the
//! replug (a new pty behind the same udev-style link), and a detected protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::KillOnDrop;
use support::pty::{Streamer, legacy_frame, pty, v46_packet};

const BIN: &str = env!("CARGO_BIN_EXE_medimitra");

/// The binary's standard output, line by line, as it comes.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most 8 s) for a line containing `want`; returns every line seen on the way.
fn wait_for(lines: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(8);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(want);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {want:?}; saw:\n{}", seen.join("\n"));
}

fn medimitra(data: &Path, config: &Path, args: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("MEDIMITRA_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn medimitra"),
    )
}

fn link(target: &Path, at: &Path) {
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at).expect("symlink");
}

#[test]
fn watch_shows_readings_no_finger_an_unplug_and_the_replug_of_a_legacy_oximeter() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("vitals-cp210x-0");
    let first = pty();
    link(&first.path, &port);
    // Garbage before the first frame (a device switched on mid-byte), then 130 bpm: the pulse's 8th bit is used.
    let mut master = first.master;
    master.write_all(&[0x00, 0x13, 0x45, 0x11, 0x7F]).unwrap();
    let streamer = Streamer::start(master, &legacy_frame(97, 130, 40, false));

    let mut kiosk = medimitra(
        dir.path(),
        Path::new("/dev/null"),
        &["devices", "watch", port.to_str().unwrap(), "--protocol", "cms50d-legacy", "--seconds", "40"],
    );
    let lines = lines_of(&mut kiosk.0);
    let mut seen = Vec::new();
    wait_for(&lines, "connected", &mut seen);
    wait_for(&lines, "SpO2 97 %  pulse 130 /min  signal 5/8", &mut seen);

    streamer.send(&legacy_frame(127, 0, 0, true));
    wait_for(&lines, "no finger in the clip", &mut seen);

    // The unplug: the device stops and its pty closes (the kiosk's read fails as on a USB unplug).
    drop(streamer.stop());
    drop(first.slave);
    wait_for(&lines, "unplugged", &mut seen);

    // The replug: a new pty behind the same link, as udev would make it.
    let second = pty();
    link(&second.path, &port);
    let streamer = Streamer::start(second.master, &legacy_frame(95, 64, 80, false));
    wait_for(&lines, "connected", &mut seen);
    wait_for(&lines, "SpO2 95 %  pulse 64 /min", &mut seen);
    drop(streamer.stop());
    assert!(
        !seen.iter().any(|l| l.contains("SpO2 127") || l.contains("pulse 0 ")),
        "an invalid value shown as a number:\n{}",
        seen.join("\n")
    );
}

#[test]
fn watch_names_a_wrong_protocol_instead_of_showing_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let device = pty();
    // A 4.6 oximeter read as the legacy protocol: every byte is thrown away, and the technician is told why.
    let streamer = Streamer::start(device.master, &v46_packet(98, 72, 30));
    let mut kiosk = medimitra(
        dir.path(),
        Path::new("/dev/null"),
        &["devices", "watch", device.path.to_str().unwrap(), "--protocol", "cms50d-legacy", "--seconds", "4"],
    );
    let lines = lines_of(&mut kiosk.0);
    let mut seen = Vec::new();
    wait_for(&lines, "made no frame: a wrong protocol or baud rate?", &mut seen);
    let status = kiosk.0.wait().unwrap();
    seen.extend(lines.try_iter());
    drop(streamer.stop());
    assert!(status.success(), "{status:?}");
    assert!(!seen.iter().any(|l| l.contains("SpO2")), "a reading from the wrong protocol:\n{}", seen.join("\n"));
}

#[test]
fn list_detects_the_protocol_of_an_adapter_udev_linked_and_shows_its_latest_reading() {
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("dev");
    std::fs::create_dir(&links).unwrap();
    let device = pty();
    link(&device.path, &links.join("vitals-ftdi-3"));
    let config = dir.path().join("medimitra.toml");
    std::fs::write(&config, format!("[devices]\nscan_dir = {:?}\n", links.to_str().unwrap())).unwrap();
    let streamer = Streamer::start(device.master, &v46_packet(98, 72, 30));

    let mut kiosk = medimitra(dir.path(), &config, &["devices", "list"]);
    let lines = lines_of(&mut kiosk.0);
    let mut seen = Vec::new();
    wait_for(&lines, "vitals-ftdi-3", &mut seen);
    drop(streamer.stop());
    let row = seen.last().unwrap();
    assert!(row.contains("cms50d-v46"), "{row}");
    assert!(row.contains("SpO2 98 %  pulse 72 /min"), "{row}");
}

#[test]
fn list_without_devices_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medimitra.toml");
    std::fs::write(&config, format!("[devices]\nscan_dir = {:?}\n", dir.path().join("none").to_str().unwrap()))
        .unwrap();
    let out = Command::new(BIN)
        .args(["--data-dir", dir.path().to_str().unwrap(), "--config", config.to_str().unwrap(), "devices", "list"])
        .env_remove("MEDIMITRA_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no devices: none configured and no vitals-* adapter in"), "{text}");
}
