//! A call across two symmetric NATs: no direct path exists, so media must go through the TURN server from the
//! kiosk's config (coturn, long-term credentials), which both the kiosk's webrtcbin and the browser use. Then the
//! kiosk's uplink drops all UDP for longer than `calls.interrupt_grace_secs`: the call must notice, set up a fresh
//! media session by itself (webrtcbin has no ICE restart) and carry on once the network is back, same call, no clicks.
//! (A shorter cut is ridden out on the same session: `tests/network.rs`.)
//! Runs in namespaces of its own (see `support/natlab.rs`); needs root, coturn and nftables (as CI has).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use medimitra::core::{AppointmentStatus, CallPhase};
use serde_json::json;
use support::browser::*;
use support::kiosk::{KioskProcess, Where, rerun_inside};
use support::natlab::*;
use support::{KillOnDrop, wait_for};

use std::time::{Duration, Instant};

const LAB: &str = "MM_NATLAB";

#[test]
fn a_call_across_symmetric_nats_is_relayed_by_turn_and_survives_a_network_cut() {
    let name = "a_call_across_symmetric_nats_is_relayed_by_turn_and_survives_a_network_cut";
    let Ok(prefix) = std::env::var(LAB) else {
        let lab = NatLab::create();
        // The test itself plays the doctor: it runs in the doctor's namespace, the kiosk in its own.
        return rerun_inside(&lab.ns("d"), name, &[(LAB, &lab.prefix)]);
    };
    support::block_on(scenario(NatLab::existing(&prefix)));
}

async fn scenario(lab: NatLab) {
    let turn_dir = tempfile::tempdir().expect("turn dir");
    let _turn = KillOnDrop(lab.start_turn(turn_dir.path()));
    let k = KioskProcess::start_in(Where {
        // A cut longer than this is not ridden out on the old session (a shorter one is: tests/network.rs).
        calls: "interrupt_grace_secs = 4".into(),
        ..kiosk_where(&lab, 640, 360)
    });
    let (_driver, driver_port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(driver_port, &profiles.path().join("a")).await;

    // 1. The call connects, and only through the relay.
    let id = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    let (setup, _) = call_and_accept(&a, &k, id).await;
    println!("call across two symmetric NATs: media both ways {setup:?} after the call was started");
    wait_for("the page's stats to name the route", Duration::from_secs(5), || async {
        js(&a, "window.medimitra.call.stats.route !== null").await == json!(true)
    })
    .await;
    let route = js(&a, "window.medimitra.call.stats.route").await;
    println!("route (browser's view): {route}");
    assert!(route["local"] == "relay" || route["remote"] == "relay", "the call was not relayed: {route}");
    assert_eq!(js(&a, "document.getElementById('stat-route').textContent").await, json!("relayed (TURN)"));

    // 2. The kiosk's uplink drops all UDP (the signaling socket, TCP, stays up).
    let before = k.kiosk_status();
    let first_session = before.media_session.clone();
    assert_eq!(before.phase, Some(CallPhase::Connected), "{before:?}");
    let cut = Instant::now();
    lab.cut_kiosk_udp();
    let noticed = wait_for("the kiosk to notice the lost media", Duration::from_secs(40), || async {
        k.kiosk_status().phase == Some(CallPhase::Reconnecting)
    })
    .await;
    wait_for("the doctor's page to say so", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('call-status').textContent").await == json!("Reconnecting…")
    })
    .await;
    wait_for("a fresh media session", Duration::from_secs(30), || async {
        let s = k.kiosk_status();
        s.media_session != first_session && s.media_session.is_some()
    })
    .await;
    println!("network cut: kiosk noticed after {noticed:?}, fresh session after {:?}", cut.elapsed());

    // 3. The network comes back: the fresh session connects, media flows both ways again, same call.
    lab.restore_kiosk_udp();
    let back = Instant::now();
    let frames_before = k.kiosk_status().remote_video_frames;
    wait_for("the call to be connected again", Duration::from_secs(30), || async {
        let s = k.kiosk_status();
        s.phase == Some(CallPhase::Connected) && s.remote_video_frames > frames_before
    })
    .await;
    wait_for("video in the browser again", Duration::from_secs(10), || async {
        js(&a, "window.medimitra.call.sessionId").await == json!(k.kiosk_status().media_session)
            && js(&a, "window.medimitra.call.stats.framesDecoded > 0").await == json!(true)
    })
    .await;
    println!("network back: media both ways {:?} later", back.elapsed());
    let s = k.kiosk_status();
    assert_eq!((s.call_id.clone(), s.media_sessions), (before.call_id.clone(), 1), "{s:?}");
    assert_eq!(k.status_of(id), AppointmentStatus::InCall);
    assert_eq!(js(&a, "document.getElementById('call-status').textContent").await, json!("Connected"));

    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(id), AppointmentStatus::Completed);
    a.close().await.expect("close");
}
