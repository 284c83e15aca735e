//! End to end: the real `medimitra` binary as the kiosk and headless Debian Chromium as the doctor (fake camera and
//! microphone), driven through chromedriver. Runs inside a network namespace of its own with a veth pair, because
//! ICE needs a non-loopback interface; the namespace is removed afterwards. Needs root (as CI has).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fantoccini::Locator;
use medimitra::calls::control::ControlCommand;
use medimitra::core::{Actor, AppointmentStatus, CallPhase, CallState, EndReason};
use serde_json::json;
use support::browser::*;
use support::kiosk::{INSIDE, KioskProcess, rerun_inside_namespace};
use support::wait_for;

use std::time::{Duration, Instant};

#[test]
fn a_browser_doctor_and_the_kiosk_see_and_hear_each_other() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace("a_browser_doctor_and_the_kiosk_see_and_hear_each_other");
    }
    // chromedriver is spoken to over plain HTTP on loopback, but fantoccini's TLS stack still wants a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(scenarios());
}

async fn scenarios() {
    let k = KioskProcess::start();
    let (_driver, driver_port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(driver_port, &profiles.path().join("a")).await;

    // 1. Log in, press Call on a checked-in appointment, the kiosk accepts: media both ways.
    let first = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    a.wait().for_element(Locator::Css(&format!("button[data-appointment='{first}']"))).await.expect("Call button");
    a.find(Locator::Css(&format!("button[data-appointment='{first}']")))
        .await
        .expect("call")
        .click()
        .await
        .expect("click call");
    wait_for("the kiosk to ring", Duration::from_secs(10), || async { k.kiosk_status().call == CallState::Incoming })
        .await;
    assert!(k.control(ControlCommand::Accept).ok);
    let t = Instant::now();
    wait_for("video and audio both ways", Duration::from_secs(10), || async {
        let s = k.kiosk_status();
        js(&a, "window.medimitra.call.stats.framesDecoded > 0 && window.medimitra.call.stats.audioPacketsReceived > 0")
            .await
            == json!(true)
            && s.remote_video_frames > 0
            && s.remote_audio_buffers > 0
    })
    .await;
    println!("first call: media both ways {:?} after accept", t.elapsed());
    // Congestion control is live: rtpgccbwe's estimate from the browser's transport-wide feedback drives the encoder.
    wait_for("congestion control to set the encoder's bitrate", Duration::from_secs(15), || async {
        // Only rtpgccbwe's notifications set this (the encoder's start value does not).
        k.kiosk_status().send_bitrate_kbps > 0
    })
    .await;
    assert_eq!(k.status_of(first), AppointmentStatus::InCall);
    assert_eq!(js(&a, "document.getElementById('call-status').textContent").await, json!("Connected"));

    // 2. The doctor ends it: the appointment is completed and the call recorded.
    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(first), AppointmentStatus::Completed);
    let records = k.store.read_blocking(|db| db.call_records(first)).expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].end_reason, Some(EndReason::DoctorEnded));

    // 3. The kiosk ends it.
    let second = k.checked_in(k.doctor_a);
    call_and_accept(&a, &k, second).await;
    assert!(k.control(ControlCommand::End).ok);
    wait_for("the page to show the patient ended", Duration::from_secs(10), || async {
        banner(&a).await.contains("The patient ended the call")
    })
    .await;
    assert_eq!(k.status_of(second), AppointmentStatus::Completed);

    // 4. The patient declines: the appointment stays checked in.
    let third = k.checked_in(k.doctor_a);
    js(&a, &format!("window.medimitra.call.start({third}, 'Meena') && true")).await;
    wait_for("the kiosk to ring", Duration::from_secs(10), || async { k.kiosk_status().call == CallState::Incoming })
        .await;
    assert!(k.control(ControlCommand::Decline).ok);
    wait_for("the page to show the decline", Duration::from_secs(10), || async {
        banner(&a).await.contains("declined")
    })
    .await;
    assert_eq!(k.status_of(third), AppointmentStatus::CheckedIn);

    // 5. Busy: a second doctor calls while the first is in a call.
    let fourth = k.checked_in(k.doctor_a);
    call_and_accept(&a, &k, fourth).await;
    let b = browser(driver_port, &profiles.path().join("b")).await;
    let b_appt = k.checked_in(k.doctor_b);
    login(&b, &k.url, "vikram@clinic.in").await;
    js(&b, &format!("window.medimitra.call.start({b_appt}, 'Meena') && true")).await;
    wait_for("the second doctor to be told the kiosk is busy", Duration::from_secs(10), || async {
        banner(&b).await.contains("busy")
    })
    .await;
    assert_eq!(k.status_of(b_appt), AppointmentStatus::CheckedIn);
    b.close().await.expect("close b");

    // 6. The doctor reloads the page mid-call: the call recovers with a new session.
    let before = k.kiosk_status().call_id;
    a.refresh().await.expect("reload");
    wait_for("video in the reloaded page", Duration::from_secs(15), || async {
        js(&a, "window.medimitra && window.medimitra.call.stats.framesDecoded > 0").await == json!(true)
    })
    .await;
    let s = k.kiosk_status();
    assert_eq!((s.call_id.clone(), s.phase, s.media_sessions), (before, Some(CallPhase::Connected), 1), "{s:?}");
    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(fourth), AppointmentStatus::Completed);

    // 7. Twenty calls in a row: no growth in threads or file descriptors.
    let mut setups = Vec::new();
    let mut warm = (0, 0);
    for i in 0..20 {
        let id = k.checked_in(k.doctor_a);
        let (total, _) = call_and_accept(&a, &k, id).await;
        setups.push(total);
        end_from_page(&a, &k).await;
        if i == 1 {
            warm = k.proc_counts();
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = k.proc_counts();
    println!("20 calls: fds/threads after call 2 {warm:?}, after call 20 {after:?}; set-up times {setups:?}");
    assert!(after.0 <= warm.0 + 4, "file descriptors grew from {} to {}", warm.0, after.0);
    assert!(after.1 <= warm.1 + 4, "threads grew from {} to {}", warm.1, after.1);
    a.close().await.expect("close a");

    // 8. A technician set up with a one-time password (as first-boot provisioning does) must choose a new one in
    // the page before anything else.
    let hash = medimitra::credentials::hash_password("one-time pass 4417").expect("hash");
    k.store
        .write_blocking(|db| {
            let t = db.add_account(
                &medimitra::store::NewAccount {
                    name: "Tara Singh".into(),
                    specialty: String::new(),
                    email: "tara@clinic.in".into(),
                    password_hash: hash.clone(),
                    role: medimitra::core::Role::Technician,
                },
                Actor::Cli,
                chrono::Utc::now(),
            )?;
            db.set_one_time_password(t.id, &hash, Actor::Provisioning, chrono::Utc::now())
        })
        .expect("technician");
    let t = browser(driver_port, &profiles.path().join("t")).await;
    t.goto(&k.url).await.expect("open");
    t.wait().for_element(Locator::Css("#email")).await.expect("login form");
    type_into(&t, "#email", "tara@clinic.in").await;
    type_into(&t, "#password", "one-time pass 4417").await;
    t.find(Locator::Css("#login-form button[type=submit]")).await.expect("submit").click().await.expect("click");
    wait_for("the password view", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('password-view').hidden").await == json!(true)
    })
    .await;
    assert_eq!(js(&t, "document.getElementById('list-view').hidden").await, json!(true));
    // Two different new passwords: refused in the page.
    type_into(&t, "#current-password", "one-time pass 4417").await;
    type_into(&t, "#new-password", "my own clinic password").await;
    type_into(&t, "#repeat-password", "my own clinic passw0rd").await;
    t.find(Locator::Css("#password-form button[type=submit]")).await.expect("save").click().await.expect("click");
    wait_for("the mismatch to be shown", Duration::from_secs(5), || async {
        js(&t, "document.getElementById('password-error').textContent").await == json!("The two new passwords differ.")
    })
    .await;
    t.execute("document.getElementById('repeat-password').value = ''", vec![]).await.expect("clear");
    type_into(&t, "#repeat-password", "my own clinic password").await;
    t.find(Locator::Css("#password-form button[type=submit]")).await.expect("save").click().await.expect("click");
    wait_for("the appointment list after the change", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('list-view').hidden && document.getElementById('password-view').hidden").await
            == json!(true)
    })
    .await;
    let who = k.store.read_blocking(|db| db.account_by_email("tara@clinic.in")).expect("account");
    assert!(!who.must_change_password);
    t.close().await.expect("close t");
}
