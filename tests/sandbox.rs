//! The kiosk under its unit's system-call sandbox (`scripts/seccomp-exec image/medimitra.service`) with the touch
//! UI and a call from headless Chromium. Its own test binary, so it does not share the two cores with the other
//! end-to-end calls. Runs inside a network namespace of its own; needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use medimitra::core::AppointmentStatus;
use support::browser::*;
use support::kiosk::{INSIDE, KioskProcess, rerun_inside_namespace};
use support::wait_for;

use std::time::Duration;

#[test]
fn a_call_with_the_touch_ui_works_under_the_units_system_call_sandbox() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace("a_call_with_the_touch_ui_works_under_the_units_system_call_sandbox");
    }
    support::block_on(sandboxed());
}

/// The kiosk started through `scripts/seccomp-exec image/medimitra.service`: the unit's SystemCallFilter,
/// SystemCallErrorNumber, SystemCallArchitectures, RestrictAddressFamilies and RestrictNamespaces as systemd applies
/// them, with the touch UI in a window (winit, software renderer) and a call from Chromium both ways.
async fn sandboxed() {
    let root = env!("CARGO_MANIFEST_DIR");
    let xvfb = support::Xvfb::start(800, 480);
    let notify = support::kiosk::NotifySocket::bind();
    let k = KioskProcess::start_in(support::kiosk::Where {
        width: 640,
        height: 360,
        display: Some(xvfb.display.clone()),
        env: vec![notify.env(), ("MEDIMITRA_UI_FULLSCREEN".into(), "false".into())],
        wrapper: vec![
            "/usr/bin/python3".into(),
            format!("{root}/scripts/seccomp-exec"),
            format!("{root}/image/medimitra.service"),
        ],
        ..Default::default()
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", k.kiosk_pid())).expect("status");
    assert!(status.lines().any(|l| l.split_whitespace().eq(["Seccomp:", "2"])), "not filtered: {status}");
    wait_for("READY=1 with the touch UI", Duration::from_secs(30), || {
        let seen = notify.received();
        async move { seen.iter().any(|m| m.contains("READY=1") && m.contains("(touch UI)")) }
    })
    .await;

    let (_driver, driver_port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(driver_port, &profiles.path().join("a")).await;
    login(&a, &k.url, "asha@clinic.in").await;
    let id = k.checked_in(k.doctor_a);
    call_and_accept(&a, &k, id).await;
    // The doctor's picture moves on the kiosk's screen.
    let shot = || {
        std::process::Command::new("import")
            .args(["-display", xvfb.display.as_str(), "-window", "root", "png:-"])
            .output()
            .expect("import (apt imagemagick)")
            .stdout
    };
    let first = shot();
    wait_for("the doctor's video to move on the kiosk's screen", Duration::from_secs(10), || {
        let now = shot();
        let moved = !first.is_empty() && now != first;
        async move { moved }
    })
    .await;
    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(id), AppointmentStatus::Completed);
    let status = std::fs::read_to_string(format!("/proc/{}/status", k.kiosk_pid())).expect("status");
    assert!(status.contains("Seccomp:\t2"), "the kiosk is still running under its filter");
}
