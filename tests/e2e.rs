//! End to end: the real `medimitra` binary as the kiosk and headless Debian Chromium as the doctor (fake camera and
//! microphone), driven through chromedriver. Runs inside a network namespace of its own with a veth pair, because
//! ICE needs a non-loopback interface; the namespace is removed afterwards. Needs root (as CI has).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fantoccini::Locator;
use medimitra::calls::control::ControlCommand;
use medimitra::core::{Actor, AppointmentStatus, CallPhase, CallState, EndReason};
use medimitra::store::AppointmentFilter;
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
    support::block_on(scenarios());
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
    // The kiosk's receiver reports reach the doctor's browser, which measures its round trip from them. Without
    // them Chrome does not know the round trip: it re-asks for lost packets far too often and does not play the
    // kiosk's picture out late enough for a retransmission to arrive, so every repair froze it (the kiosk's RTP
    // session sent one report at the start and then only reduced-size feedback, see docs/platform-notes.md).
    wait_for("the doctor's browser to measure round trips from the kiosk's reports", Duration::from_secs(12), || async {
        let n = js_async(
            &a,
            "const r = await window.medimitra.call.pc.getStats(); let n = 0; \
             r.forEach((s) => { if (s.type === 'remote-inbound-rtp' && s.kind === 'video') n = s.roundTripTimeMeasurements || 0; }); \
             return n;",
        )
        .await;
        n.as_f64().unwrap_or(0.0) >= 3.0
    })
    .await;
    assert_eq!(k.status_of(first), AppointmentStatus::InCall);
    assert_eq!(js(&a, "document.getElementById('call-status').textContent").await, json!("Connected"));
    // The doctor's panel says what is received and what is sent, and whether the sending is limited.
    wait_for("the panel's video lines", Duration::from_secs(10), || async {
        let got = js(
            &a,
            "document.getElementById('stat-video').textContent + ' | ' + \
                          document.getElementById('stat-sent-video').textContent",
        )
        .await;
        let text = got.as_str().unwrap_or("").to_string();
        text.contains(" fps |") && text.contains(" fps, ") && text.contains("limited")
    })
    .await;

    // 2. The doctor ends it: the appointment is completed and the call recorded.
    let first_call_id = js(&a, "window.medimitra.call.id").await;
    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(first), AppointmentStatus::Completed);
    let records = k.store.read_blocking(|db| db.call_records(first)).expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].end_reason, Some(EndReason::DoctorEnded));
    // The hang-up is not a failed media session: the browser aborts the data channels' association as it closes,
    // a moment before its `call:end` arrives, and every ended call used to count one failure.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(k.metric("medimitra_media_sessions_failed_total").await, Some(0.0), "sessions failed after a hang-up");

    // 3. The kiosk ends it.
    let second = k.checked_in(k.doctor_a);
    // The kiosk's last words about the first call (its state, then its end) can arrive late, in one burst, after
    // the next call has been started and just before that call's first state (seen in the network bench: the
    // doctor's socket stalled by a cut delivered them 6 s late, and the page revived the ended call, cleaned it up
    // with the new camera and sent nothing). Delivered here exactly there.
    let replay = json!([
        { "type": "call:state", "callId": first_call_id, "appointmentId": first, "state": "connected", "codec": "H264" },
        { "type": "call:ended", "callId": first_call_id, "reason": "doctor_ended" },
    ]);
    a.execute(
        "const h = window.medimitra.signal.handlers, late = arguments[0], onState = h['call:state']; \
         h['call:state'] = (m) => { h['call:state'] = onState; onState(late[0]); h['call:ended'](late[1]); return onState(m); }; \
         return true;",
        vec![replay],
    )
    .await
    .expect("hold the late messages");
    call_and_accept(&a, &k, second).await;
    assert_eq!(js(&a, "!!window.medimitra.call.local").await, json!(true), "the new call keeps its camera");
    // The kiosk's `call:ended` for the call the doctor just ended can arrive after the next call has begun (a
    // doctor who ends and calls the next patient at once; seen in the network bench, where the page then sent no
    // camera): it must not touch the new call.
    let stale = json!({ "type": "call:ended", "callId": first_call_id, "reason": "doctor_ended" });
    a.execute("window.medimitra.signal.handlers['call:ended'](arguments[0]); return true;", vec![stale])
        .await
        .expect("deliver the stale message");
    let frames = k.kiosk_status().remote_video_frames;
    wait_for("the doctor's video still arriving at the kiosk", Duration::from_secs(5), || async {
        k.kiosk_status().remote_video_frames > frames + 15
    })
    .await;
    assert_eq!(js(&a, "document.getElementById('call-status').textContent").await, json!("Connected"));
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
    // A technician sets up two-factor login next: a QR code and its key, confirmed with a code from "the phone"
    // (computed by Python's standard library from the key the page shows).
    wait_for("the two-factor set-up after the change", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('twofactor-view').hidden && document.getElementById('twofactor-secret').textContent.length > 20").await
            == json!(true)
    })
    .await;
    let qr = js(&t, "document.getElementById('twofactor-qr').naturalWidth").await;
    assert!(qr.as_f64().unwrap_or(0.0) > 0.0, "the QR code image loads: {qr}");
    let secret = js(&t, "document.getElementById('twofactor-secret').textContent").await;
    let secret = secret.as_str().expect("key").replace(' ', "");
    type_into(&t, "#twofactor-code", &support::totp_code(&secret, 0)).await;
    t.find(Locator::Css("#twofactor-form button[type=submit]")).await.expect("turn on").click().await.expect("click");
    wait_for("the recovery codes", Duration::from_secs(10), || async {
        js(&t, "document.querySelectorAll('#recovery-codes li').length").await == json!(10)
    })
    .await;
    t.find(Locator::Css("#twofactor-done")).await.expect("done").click().await.expect("click");
    wait_for("the appointment list after the set-up", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('list-view').hidden && document.getElementById('twofactor-view').hidden").await
            == json!(true)
    })
    .await;
    let who = k.store.read_blocking(|db| db.account_by_email("tara@clinic.in")).expect("account");
    assert!(!who.must_change_password && who.two_factor);
    // Log out and in again: the password, then the code on the same form.
    t.find(Locator::Css("#logout")).await.expect("logout").click().await.expect("click");
    wait_for("the login form", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('login-view').hidden").await == json!(true)
    })
    .await;
    t.execute("document.getElementById('email').value = ''; document.getElementById('password').value = ''", vec![])
        .await
        .expect("clear the form");
    type_into(&t, "#email", "tara@clinic.in").await;
    type_into(&t, "#password", "my own clinic password").await;
    t.find(Locator::Css("#login-form button[type=submit]")).await.expect("submit").click().await.expect("click");
    wait_for("the code field", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('code-row').hidden").await == json!(true)
    })
    .await;
    // The next step's code: the one used for the set-up works only once.
    type_into(&t, "#login-code", &support::totp_code(&secret, 1)).await;
    t.find(Locator::Css("#login-form button[type=submit]")).await.expect("submit").click().await.expect("click");
    wait_for("the appointment list after the two-step login", Duration::from_secs(10), || async {
        js(&t, "!document.getElementById('list-view').hidden").await == json!(true)
    })
    .await;
    t.close().await.expect("close t");
}

#[test]
fn a_kiosk_stopped_or_killed_mid_call_tells_the_doctor_and_gives_the_appointment_back() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace(
            "a_kiosk_stopped_or_killed_mid_call_tells_the_doctor_and_gives_the_appointment_back",
        );
    }
    support::block_on(stop_and_kill());
}

async fn stop_and_kill() {
    let notify = support::kiosk::NotifySocket::bind();
    let mut k = KioskProcess::start_in(support::kiosk::Where {
        width: 640,
        height: 360,
        env: vec![notify.env()],
        ..Default::default()
    });
    let (_driver, driver_port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(driver_port, &profiles.path().join("a")).await;
    login(&a, &k.url, "asha@clinic.in").await;

    // 1. SIGTERM during a connected call (what `systemctl stop` or a restart by the technician does).
    let first = k.checked_in(k.doctor_a);
    call_and_accept(&a, &k, first).await;
    assert_eq!(k.status_of(first), AppointmentStatus::InCall);
    let (status, took) = k.stop_with(libc::SIGTERM);
    println!("SIGTERM mid-call: exited with {status} after {took:?}");
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    assert!(took < Duration::from_secs(5), "stopped within 5 s: {took:?}");
    let said = notify.received();
    assert!(said.iter().any(|n| n.starts_with("READY=1")), "{said:?}");
    assert_eq!(said.last().map(String::as_str), Some("STOPPING=1"), "{said:?}");
    wait_for("the page to say the kiosk is restarting", Duration::from_secs(10), || async {
        banner(&a).await.contains("The kiosk is restarting")
    })
    .await;
    assert_eq!(js(&a, "window.medimitra.call.id").await, json!(null), "the page left the call");
    assert_eq!(k.status_of(first), AppointmentStatus::CheckedIn, "the doctor can call again");
    let records = k.store.read_blocking(|db| db.call_records(first)).expect("records");
    assert_eq!((records.len(), records[0].end_reason), (1, Some(EndReason::KioskStopping)));
    assert!(records[0].ended_at.is_some());

    // 2. Back up; the same appointment is called again and connects; then the kiosk is killed (SIGKILL: a crash or
    // a power cut) and comes back.
    k.restart();
    wait_for("the page to find the kiosk again", Duration::from_secs(20), || async {
        js(&a, "window.medimitra.signal.ready").await == json!(true)
    })
    .await;
    call_and_accept(&a, &k, first).await;
    let (_, took) = k.stop_with(libc::SIGKILL);
    println!("SIGKILL mid-call: gone after {took:?}");
    assert_eq!(k.status_of(first), AppointmentStatus::InCall, "nothing could clean up");
    k.restart();
    assert_eq!(k.status_of(first), AppointmentStatus::CheckedIn, "the restart gives the appointment back");
    let records = k.store.read_blocking(|db| db.call_records(first)).expect("records");
    assert_eq!((records.len(), records[1].end_reason), (2, Some(EndReason::KioskRestarted)));
    wait_for("the page to say the kiosk restarted", Duration::from_secs(20), || async {
        banner(&a).await.contains("The kiosk restarted")
    })
    .await;
    assert_eq!(js(&a, "window.medimitra.call.id").await, json!(null));
    a.close().await.expect("close");
}

#[test]
fn glass_to_glass_delay_is_measured_both_ways() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace("glass_to_glass_delay_is_measured_both_ways");
    }
    support::block_on(glass_to_glass());
}

/// The kiosk's moving test picture carries capture times that the page reads from the decoded video; the page's
/// stamped camera (`measure.js`) carries them the other way and the kiosk reads them from its decoded pictures.
async fn glass_to_glass() {
    let k = KioskProcess::start_in(support::kiosk::Where {
        width: 640,
        height: 360,
        media: "test_pattern = \"moving\"\n".into(),
        ..Default::default()
    });
    let (_driver, driver_port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(driver_port, &profiles.path().join("a")).await;
    let id = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    inject_measure(&a).await;
    assert_eq!(js(&a, "window.mmMeasure.useStampedCamera()").await, json!(true));
    assert_eq!(js(&a, "window.mmMeasure.watch(document.getElementById('remote-video'))").await, json!(true));
    call_and_accept(&a, &k, id).await;
    wait_for("stamped pictures read at both ends", Duration::from_secs(20), || async {
        js(&a, "window.mmMeasure.samples.length > 10").await == json!(true)
            && k.kiosk_status().receiving.glass_to_glass_ms.is_some()
    })
    .await;
    let page = js(&a, "window.mmMeasure.take()").await;
    let kiosk_ms = k.kiosk_status().receiving.glass_to_glass_ms.expect("kiosk's reading");
    let page_ms = page["median"].as_u64().expect("page's median");
    println!("glass to glass: kiosk -> page {page_ms} ms, page -> kiosk {kiosk_ms} ms");
    // Delays, not garbage (a misread stamp gives any 32-bit value). Not a latency target: with the other browser
    // tests running beside it on two cores the first seconds of a call can lag by a second or more; the delays
    // themselves are measured by the network bench.
    assert!(page_ms < 5000 && kiosk_ms < 5000, "kiosk -> page {page_ms} ms, page -> kiosk {kiosk_ms} ms");
    end_from_page(&a, &k).await;
    a.close().await.expect("close");
}

#[test]
fn the_doctor_sees_the_kiosk_oximeter_live_during_a_call() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace("the_doctor_sees_the_kiosk_oximeter_live_during_a_call");
    }
    support::block_on(vitals_in_a_call(Engine::Chromium));
}

#[test]
fn a_doctor_in_firefox_gets_the_vitals_chat_and_shared_picture_too() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace("a_doctor_in_firefox_gets_the_vitals_chat_and_shared_picture_too");
    }
    support::kiosk::default_route_in_this_namespace();
    support::block_on(vitals_in_a_call(Engine::Firefox));
}

/// An emulated CMS50D+ (legacy stream, 60 frames a second) on a pseudo-terminal named in the kiosk's configuration:
/// its numbers, waveform and states reach the doctor's page over the call's data channels; the chat and a shared
/// picture go the other way. The same in Chromium and Firefox (which receives VP8 only).
async fn vitals_in_a_call(engine: Engine) {
    use support::pty::{Streamer, legacy_frame, pty};
    let device = pty();
    let k = KioskProcess::start_in(support::kiosk::Where {
        width: 640,
        height: 360,
        extra_config: device.legacy_oximeter_config(),
        ..Default::default()
    });
    // The patient checks in before putting a finger in the clip: a steady reading with nobody checked in belongs to
    // nobody and is not kept (a browser slow to start made this test race that rule).
    let id = k.checked_in(k.doctor_a);
    let streamer = Streamer::start(device.master, &legacy_frame(97, 72, 40, false));
    let doctor = Doctor::start(engine).await;
    let a = doctor.client.clone();
    login(&a, &k.url, "asha@clinic.in").await;
    call_and_accept(&a, &k, id).await;
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the call view");
    if engine == Engine::Firefox {
        let codec = js_async(
            &a,
            "const r = await window.medimitra.call.pc.getStats(); let c = null; \
             r.forEach((s) => { if (s.type === 'codec' && s.mimeType.startsWith('video/')) c = s.mimeType; }); return c;",
        )
        .await;
        assert_eq!(codec, json!("video/VP8"), "the kiosk sends Firefox VP8");
    }

    let shown = |id: &'static str| {
        let a = a.clone();
        async move { js(&a, &format!("document.getElementById('{id}').textContent")).await }
    };
    wait_for("SpO2 and pulse on the doctor's page", Duration::from_secs(15), || async {
        shown("v-spo2").await == json!("97") && shown("v-pulse").await == json!("72")
    })
    .await;
    assert_eq!(js(&a, "document.getElementById('vitals').hidden").await, json!(false));
    wait_for("the pleth waveform", Duration::from_secs(10), || async {
        js(&a, "window.medimitra.vitals.wave.length > 60").await == json!(true)
    })
    .await;
    assert_eq!(js(&a, "window.medimitra.vitals.wave.every((s) => s === 31)").await, json!(true), "40/127 as 0-100");

    // Held steady for 5 s, the reading is kept with the appointment in the call, and the API gives it back as FHIR R4,
    // checked by an independent implementation (fhir.resources).
    let fetch = format!(
        "const r = await fetch('/api/appointments/{id}/observations'); \
         return {{type: r.headers.get('content-type'), body: await r.json()}};"
    );
    let mut kept = json!(null);
    for _ in 0..40 {
        kept = js_async(&a, &fetch).await;
        if kept["body"]["total"] == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(kept["body"]["total"], json!(2), "the steady reading was not kept: {kept}");
    assert_eq!(kept["type"], "application/fhir+json");
    let codes: Vec<(String, f64, String)> = kept["body"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["resource"];
            let code = r["code"]["coding"][0]["code"].as_str().unwrap().to_string();
            (
                code,
                r["valueQuantity"]["value"].as_f64().unwrap(),
                r["valueQuantity"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(codes, vec![("59408-5".into(), 97.0, "%".into()), ("8867-4".into(), 72.0, "/min".into())]);
    assert_eq!(kept["body"]["entry"][0]["resource"]["subject"]["reference"], format!("Patient/{}", k.patient));
    support::fhir::assert_valid_r4(&kept["body"]);
    // The doctor sees them under the live numbers.
    let kept_list =
        "Array.from(document.querySelectorAll('#v-kept-list li')).map((l) => l.lastChild.textContent.trim())";
    wait_for("the kept readings in the call view", Duration::from_secs(10), || async {
        js(&a, kept_list).await == json!(["SpO₂: 97 %", "Pulse: 72 beats/minute"])
    })
    .await;

    // A changed number is shown as it changes; an empty clip is a state, not a number.
    streamer.send(&legacy_frame(93, 130, 40, false));
    wait_for("the new numbers", Duration::from_secs(5), || async {
        shown("v-spo2").await == json!("93") && shown("v-pulse").await == json!("130")
    })
    .await;
    streamer.send(&legacy_frame(127, 0, 0, true));
    wait_for("no finger", Duration::from_secs(5), || async {
        shown("v-state").await == json!("No finger in the clip") && shown("v-spo2").await == json!("--")
    })
    .await;

    // Chat: the doctor types, the kiosk has the message for the patient's screen; the patient's quick reply comes
    // back in English. (The kiosk here has no screen: the reply goes through the local control, as `medimitra call
    // reply --answer please_repeat` sends it; the touch UI's buttons are tested in tests/ui.rs.)
    wait_for("the chat channel", Duration::from_secs(10), || async {
        js(&a, "!document.getElementById('chat').hidden").await == json!(true)
    })
    .await;
    // With the doctor's microphone muted the patient's speaker is quiet, so the message's chime is heard alone.
    a.find(Locator::Css("#mute")).await.expect("mute").click().await.expect("click mute");
    wait_for("a quiet speaker at the kiosk", Duration::from_secs(10), || async {
        k.kiosk_status().speaker_peak_db < -50.0
    })
    .await;
    type_into(&a, "#chat-text", "Please keep your hand on the table").await;
    a.find(Locator::Css("#chat-form button[type=submit]")).await.expect("send").click().await.expect("click send");
    let mut loudest = f64::NEG_INFINITY;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(5) && loudest < -20.0 {
        loudest = loudest.max(k.kiosk_status().speaker_peak_db);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(loudest >= -20.0, "no chime on the kiosk's speaker for the message (peak {loudest:.1} dB)");
    wait_for("the message at the kiosk", Duration::from_secs(5), || async {
        k.kiosk_status().chat_message.as_deref() == Some("Please keep your hand on the table")
    })
    .await;
    let reply = medimitra::calls::control::request_with(
        &k.data,
        ControlCommand::Reply,
        Some(medimitra::core::chat::QuickReply::PleaseRepeat),
    )
    .expect("control");
    assert!(reply.ok, "{reply:?}");
    wait_for("the reply on the doctor's page", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('chat-log').textContent").await
            == json!("You: Please keep your hand on the tablePatient: Please repeat")
    })
    .await;
    assert_eq!(k.kiosk_status().chat_message, None, "answered: off the patient's screen");
    // Kept only when the doctor saves it, as a note of the appointment.
    let notes = || k.store.read_blocking(|db| db.appointment(id)).expect("the appointment").notes;
    assert!(!notes().contains("Please keep your hand"), "nothing stored before the doctor saves it");
    a.find(Locator::Css("#chat-save")).await.expect("save").click().await.expect("click save");
    wait_for("the chat in the notes", Duration::from_secs(5), || async {
        notes().contains("Chat during the call:\nDoctor: Please keep your hand on the table\nPatient: Please repeat")
    })
    .await;
    // The call view's visit note takes the addition in, and the doctor edits the note during the call.
    wait_for("the chat in the call's note", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('note-text').value")
            .await
            .as_str()
            .is_some_and(|t| t.ends_with("Patient: Please repeat"))
    })
    .await;
    type_into(&a, "#note-text", "\nSpO2 normal at rest.").await;
    a.find(Locator::Css("#note-form button[type=submit]")).await.expect("save").click().await.expect("click save");
    wait_for("the edit saved during the call", Duration::from_secs(5), || async {
        notes().ends_with("Patient: Please repeat\nSpO2 normal at rest.")
    })
    .await;
    // Every control of the call view (chat, sharing, note, statistics, the call's buttons) by keyboard alone.
    assert_eq!(keyboard_misses(&a, "#call-view").await, Vec::<String>::new(), "the call view by keyboard");

    // The doctor shows a picture in place of the camera: the kiosk is told, and the picture's frames keep coming.
    let showing = js_async(
        &a,
        "const c = document.createElement('canvas'); c.width = 640; c.height = 480; \
         const g = c.getContext('2d'); g.fillStyle = '#d02020'; g.fillRect(0, 0, 640, 480); \
         return await window.medimitra.share.showImage(c.toDataURL('image/png'));",
    )
    .await;
    assert_eq!(showing, json!(true));
    wait_for("the kiosk to know the doctor shares", Duration::from_secs(5), || async {
        k.kiosk_status().doctor_sharing
    })
    .await;
    // The picture comes on its own stream, and the doctor's camera keeps coming beside it (the kiosk shows their
    // face small).
    let before = k.kiosk_status();
    wait_for("the shared picture's frames and the camera's at the kiosk", Duration::from_secs(10), || async {
        let now = k.kiosk_status();
        now.remote_shared_frames > before.remote_shared_frames + 5
            && now.remote_video_frames > before.remote_video_frames + 30
    })
    .await;
    // The panel's "Your video" stays the camera's (30 fps), not the shared picture's stream (5 fps), whichever order
    // the browser lists their statistics in.
    wait_for("the camera's rate in the panel while sharing", Duration::from_secs(5), || async {
        js(&a, "window.medimitra.call.stats.sentFps || 0").await.as_f64().unwrap_or(0.0) > 15.0
    })
    .await;
    // A PDF chosen like a picture: its first page is shown, then the next.
    let dir = tempfile::tempdir().expect("a directory for the PDF");
    let file = dir.path().join("prescription.pdf");
    std::fs::write(&file, two_page_pdf()).expect("write the PDF");
    a.find(Locator::Css("#share-file"))
        .await
        .expect("the file input")
        .send_keys(file.to_str().expect("a UTF-8 path"))
        .await
        .expect("choose the PDF");
    let centre = "(() => { const c = window.medimitra.share.canvas; \
                  return Array.from(c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data.slice(0, 3)); })()";
    wait_for("the PDF's first page shown", Duration::from_secs(15), || async {
        js(&a, "document.getElementById('share-page').textContent").await == json!("Page 1 of 2")
            && js(&a, centre).await == json!([255, 0, 0])
    })
    .await;
    a.find(Locator::Css("#share-next")).await.expect("next page").click().await.expect("click next");
    wait_for("the PDF's second page shown", Duration::from_secs(10), || async {
        js(&a, "document.getElementById('share-page').textContent").await == json!("Page 2 of 2")
            && js(&a, centre).await == json!([0, 0, 255])
    })
    .await;
    assert_eq!(js(&a, "document.getElementById('share-next').disabled").await, json!(true));
    let before = k.kiosk_status().remote_shared_frames;
    wait_for("the PDF page's frames at the kiosk", Duration::from_secs(10), || async {
        k.kiosk_status().remote_shared_frames > before + 5
    })
    .await;
    assert!(k.kiosk_status().doctor_sharing);

    a.find(Locator::Css("#share-stop")).await.expect("stop").click().await.expect("click stop");
    wait_for("sharing stopped at the kiosk", Duration::from_secs(5), || async { !k.kiosk_status().doctor_sharing })
        .await;
    assert_eq!(js(&a, "document.getElementById('share-pages').hidden").await, json!(true));
    // Its stream stops; the camera goes on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = k.kiosk_status();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = k.kiosk_status();
    // (Firefox still sends a frame now and then after `replaceTrack(null)`; a shared picture runs at 5 a second,
    // 10 in these 2 s. The camera runs at 30, less on a loaded machine: a failure here once with two browsers.)
    assert!(later.remote_shared_frames <= stopped.remote_shared_frames + 4, "{stopped:?} then {later:?}");
    assert!(later.remote_video_frames > stopped.remote_video_frames + 15, "{stopped:?} then {later:?}");

    // The call view on a phone held either way, a tablet and a laptop: nothing wider than the screen, the patient's
    // picture in view without scrolling, the call's buttons touch-sized; references kept to look at.
    for (w, h, name) in
        [(390u32, 844u32, "phone"), (844, 390, "phone-landscape"), (768, 1024, "tablet"), (1366, 768, "laptop")]
    {
        a.set_window_size(w, h).await.expect("window size");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fit = js(
            &a,
            "(() => { const v = document.getElementById('remote-video').getBoundingClientRect(); \
              return { width: innerWidth, height: innerHeight, scroll: document.documentElement.scrollWidth, \
                videoTop: v.top + scrollY, videoHeight: v.height, \
                smallest: Math.min(...Array.from(document.querySelectorAll('.controls button')) \
                  .map((b) => b.getBoundingClientRect().height)) }; })()",
        )
        .await;
        let n = |k: &str| fit[k].as_f64().unwrap_or(f64::NAN);
        assert!(n("scroll") <= n("width"), "{name}: wider than the screen: {fit}");
        assert!(n("videoHeight") >= 100.0 && n("videoTop") < n("height") / 2.0, "{name}: the picture: {fit}");
        assert!(n("smallest") >= 40.0, "{name}: a call button too small to touch: {fit}");
        if engine == Engine::Chromium && std::env::var_os("UPDATE_WEB_REFERENCE").is_some() {
            js(&a, "window.scrollTo(0, 0) || true").await;
            let png = a.screenshot().await.expect("screenshot");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web-reference");
            std::fs::create_dir_all(&dir).expect("reference directory");
            std::fs::write(dir.join(format!("call-{name}.png")), png).expect("write the reference");
        }
    }

    // Unplugged: the page says so and shows no stale numbers.
    let master = streamer.stop();
    drop(master);
    drop(device.slave);
    wait_for("unplugged", Duration::from_secs(5), || async {
        shown("v-state").await == json!("The oximeter is unplugged")
    })
    .await;
    end_from_page(&a, &k).await;

    // Afterwards the appointment's details keep them.
    let details = format!("#appointments tr[data-id='{id}'] button.details");
    wait_for("the day's list", Duration::from_secs(10), || async { a.find(Locator::Css(&details)).await.is_ok() })
        .await;
    a.find(Locator::Css(&details)).await.expect("details").click().await.expect("click details");
    let readings = "Array.from(document.querySelectorAll('#d-kept li')).map((l) => l.lastChild.textContent.trim())";
    wait_for("the readings in the appointment's details", Duration::from_secs(10), || async {
        js(&a, readings).await == json!(["SpO₂: 97 %", "Pulse: 72 beats/minute"])
    })
    .await;
    a.close().await.expect("close");
}

/// A two-page PDF: the first page red, the second blue (each filled by one rectangle), with a correct cross-reference
/// table, as a doctor's PDF reader would accept.
fn two_page_pdf() -> Vec<u8> {
    let page = |colour: &str| format!("{colour} rg 0 0 595 842 re f");
    let (red, blue) = (page("1 0 0"), page("0 0 1"));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 6 0 R >>".to_string(),
        format!("<< /Length {} >>\nstream\n{red}\nendstream", red.len()),
        format!("<< /Length {} >>\nstream\n{blue}\nendstream", blue.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

#[test]
fn the_doctors_day_in_chromium_moves_between_days_marks_patients_and_tells_of_check_ins() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace(
            "the_doctors_day_in_chromium_moves_between_days_marks_patients_and_tells_of_check_ins",
        );
    }
    support::block_on(doctors_day(Engine::Chromium));
}

#[test]
fn the_doctors_day_in_firefox_moves_between_days_marks_patients_and_tells_of_check_ins() {
    if std::env::var(INSIDE).is_err() {
        return rerun_inside_namespace(
            "the_doctors_day_in_firefox_moves_between_days_marks_patients_and_tells_of_check_ins",
        );
    }
    support::block_on(doctors_day(Engine::Firefox));
}

/// The day view as a doctor uses it: today's list with a check-in and a no-show marked by hand, a patient checking in
/// at the kiosk while the doctor watches (a notice and a chime), the next day and back; and the same view on a phone
/// (390 px), a tablet and a laptop: nothing wider than the screen, the header short, touch-sized buttons.
async fn doctors_day(engine: Engine) {
    let k = KioskProcess::start();
    let at_desk = k.booked(k.doctor_a, 0, AppointmentStatus::Scheduled);
    let absent = k.booked(k.doctor_a, 0, AppointmentStatus::Scheduled);
    let tomorrow = k.booked(k.doctor_a, 1, AppointmentStatus::Scheduled);
    // A visit last week that the patient missed, with a note.
    let last_week = k.booked(k.doctor_a, -7, AppointmentStatus::Scheduled);
    k.store
        .write_blocking(|db| {
            let now = chrono::Utc::now();
            db.set_appointment_status(last_week, AppointmentStatus::NoShow, Actor::Cli, now)?;
            db.add_note(last_week, "Dr. Asha Rao", "Phoned: will come next week", Actor::Cli, now)
        })
        .expect("last week's visit");
    let doctor = Doctor::start(engine).await;
    let a = doctor.client.clone();
    a.goto(&k.url).await.expect("open the web app");
    wait_for("the login form", Duration::from_secs(10), || async { a.find(Locator::Css("#email")).await.is_ok() })
        .await;
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the login view");
    // Keyboard only: Tab to the e-mail field, Tab to the password, Enter to log in; later Tab to a row's Details,
    // Enter opens it and Escape closes it.
    const TAB: char = '\u{E004}';
    const ENTER: char = '\u{E007}';
    const ESCAPE: char = '\u{E00C}';
    // Keys pressed on the keyboard (WebDriver actions), not typed into an element: Firefox's date field would take
    // "element send keys" as its value.
    let press = |key: char| {
        let a = a.clone();
        async move {
            use fantoccini::actions::{InputSource, KeyAction, KeyActions};
            let keys = KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
            a.perform_actions(keys).await.expect("a key press");
        }
    };
    let typed = |text: String| {
        let a = a.clone();
        async move { a.active_element().await.expect("focus").send_keys(&text).await.expect("typing") }
    };
    press(TAB).await;
    assert_eq!(js(&a, "document.activeElement.id").await, json!("email"), "Tab reaches the e-mail field first");
    typed("asha@clinic.in".into()).await;
    press(TAB).await;
    typed(support::PASSWORD.into()).await;
    press(ENTER).await;
    wait_for("logged in by keyboard", Duration::from_secs(15), || async {
        js(&a, "window.medimitra && window.medimitra.signal.ready").await == json!(true)
    })
    .await;
    let row = |id: i64, what: &str| format!("#appointments tr[data-id='{id}'] {what}");
    let exists = |css: String| {
        let a = a.clone();
        async move { a.find(Locator::Css(&css)).await.is_ok() }
    };
    wait_for("today's list", Duration::from_secs(10), || exists(row(at_desk, "button.checkin"))).await;
    assert!(!exists(row(tomorrow, "td")).await, "tomorrow's appointment is not in today's list");
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the day view");
    let mut tabs = 0;
    while js(&a, "document.activeElement.classList.contains('details')").await != json!(true) {
        tabs += 1;
        assert!(
            tabs <= 30,
            "no Details button within 30 Tabs; at {}",
            js(&a, "document.activeElement.outerHTML.slice(0, 120)").await
        );
        press(TAB).await;
    }
    press(ENTER).await;
    wait_for("the details opened by keyboard", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('details').open").await == json!(true)
    })
    .await;
    press(ESCAPE).await;
    wait_for("Escape closes them", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('details').open").await == json!(false)
    })
    .await;
    // Every control of the day view is reached by Tab and shows that it has focus.
    assert_eq!(keyboard_misses(&a, "body").await, Vec::<String>::new(), "the day view by keyboard");

    // The pre-call check: the doctor's camera and microphone, the kiosk reached, and the kiosk's own STUN/TURN
    // check (none configured in this test: the real check is tests/netcheck.rs), with one verdict.
    a.find(Locator::Css("#precheck-open")).await.expect("check").click().await.expect("click check");
    let text = |id: &'static str| {
        let a = a.clone();
        async move { js(&a, &format!("document.getElementById('{id}').textContent")).await }
    };
    wait_for("the pre-call verdict", Duration::from_secs(15), || async {
        text("pc-verdict").await != json!("Checking…")
    })
    .await;
    assert_eq!(
        text("pc-verdict").await,
        json!("Good for video from the clinic's own network; calls from outside may fail (see the kiosk's network).")
    );
    assert_eq!((text("pc-devices").await, text("pc-kiosk").await), (json!("working"), json!("reached")));
    assert!(text("pc-network").await.as_str().is_some_and(|t| t.starts_with("no STUN or TURN server configured")));
    // The path to the kiosk, measured over this page's own connection (a link shaped to slow is in
    // tests/network.rs): a round trip and a rate each way.
    let path = text("pc-path").await;
    let numbers: Vec<f64> = path
        .as_str()
        .unwrap_or_default()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        path.as_str().is_some_and(|p| p.starts_with("round trip ") && p.contains("; from the kiosk "))
            && numbers.len() == 3,
        "{path}"
    );
    assert_eq!(text("pc-ice").await, json!("no relay configured"));
    // (Headless Firefox here has no audio output, so its Web Audio never runs: the page must say the level cannot
    // be shown rather than show one that never moves.)
    let preview = "[document.getElementById('pc-video').videoWidth, window.medimitra.precheck.peak, \
                   document.getElementById('pc-level-note').textContent]";
    if support::poll_until(Duration::from_secs(10), || async {
        let p = js(&a, preview).await;
        let level = match engine {
            Engine::Chromium => p[1].as_f64().unwrap_or(0.0) > 0.0,
            Engine::Firefox => {
                p[1].as_f64().unwrap_or(0.0) > 0.0
                    || p[2] == json!("level not shown: this browser has no working audio output")
            }
        };
        p[0].as_f64().unwrap_or(0.0) > 0.0 && level
    })
    .await
    .is_none()
    {
        panic!("no camera preview or microphone level: {}", js(&a, preview).await);
    }
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the pre-call check");
    assert_eq!(keyboard_misses(&a, "#precheck").await, Vec::<String>::new(), "the pre-call check by keyboard");
    a.find(Locator::Css("#precheck-close")).await.expect("close").click().await.expect("click close");
    wait_for("camera and microphone released", Duration::from_secs(5), || async {
        js(&a, "window.medimitra.precheck.stream === null").await == json!(true)
    })
    .await;

    // A patient checks in at the kiosk while the doctor looks at the list: the page says so and chimes.
    let walk_in = k.booked(k.doctor_a, 0, AppointmentStatus::Scheduled);
    wait_for("the new appointment in the list", Duration::from_secs(10), || exists(row(walk_in, "td"))).await;
    k.store
        .write_blocking(|db| {
            db.set_appointment_status(walk_in, AppointmentStatus::CheckedIn, Actor::TouchScreen, chrono::Utc::now())
        })
        .expect("check in at the kiosk");
    wait_for("the check-in notice", Duration::from_secs(10), || async {
        js(&a, "document.getElementById('checkin-news').hidden").await == json!(false)
    })
    .await;
    let news = js(&a, "document.getElementById('checkin-news').textContent").await;
    assert_eq!(news, json!("Meena Kumari checked in at the kiosk."));
    assert_eq!(js(&a, "window.chime.played || 0").await, json!(1), "one chime");
    assert!(exists(row(walk_in, "button.call")).await);
    assert_eq!(
        js(&a, &format!("document.querySelector(\"{}\").textContent", row(walk_in, "td.status"))).await,
        json!("checked in, waiting 0 min")
    );

    // By hand: one patient checked in at the desk, one who did not come.
    a.find(Locator::Css(&row(at_desk, "button.checkin"))).await.expect("check in").click().await.expect("click");
    wait_for("checked in by hand", Duration::from_secs(5), || async {
        k.status_of(at_desk) == AppointmentStatus::CheckedIn
    })
    .await;
    wait_for("its Call button", Duration::from_secs(5), || exists(row(at_desk, "button.call"))).await;
    a.find(Locator::Css(&row(absent, "button.noshow"))).await.expect("no-show").click().await.expect("click");
    wait_for("marked as not come", Duration::from_secs(5), || async {
        k.status_of(absent) == AppointmentStatus::NoShow
    })
    .await;
    wait_for("the row says so", Duration::from_secs(5), || async {
        js(&a, &format!("document.querySelector(\"{}\").textContent", row(absent, "td.status"))).await
            == json!("no show")
    })
    .await;

    // The appointment's details: who the patient is, what happened before, and a note added by the doctor.
    a.find(Locator::Css(&row(at_desk, "button.details"))).await.expect("details").click().await.expect("click");
    let shown = |id: &'static str| {
        let a = a.clone();
        async move { js(&a, &format!("document.getElementById('{id}').textContent")).await }
    };
    wait_for("the patient's details", Duration::from_secs(10), || async {
        shown("d-age").await == json!("age not given, female") && shown("d-language").await == json!("Hindi")
    })
    .await;
    let history = js(&a, "Array.from(document.querySelectorAll('#d-history li')).map((l) => l.textContent)").await;
    let visits = history.as_array().cloned().unwrap_or_default();
    assert_eq!(visits.len(), 1, "{history}");
    let visit = visits[0].as_str().unwrap_or_default();
    assert!(visit.contains(": fever (no show) — ") && visit.ends_with("Phoned: will come next week"), "{visit}");
    assert_eq!(shown("d-calls").await, json!(""), "no call yet");
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the appointment's details");
    // The visit note: written, saved, edited; every version kept and shown; a save from a version another device
    // has moved past is refused with the doctor's text kept.
    let note = || k.store.read_blocking(|db| db.appointment(at_desk)).expect("appointment");
    let save = || async {
        a.find(Locator::Css("#d-note-form button[type=submit]")).await.expect("save").click().await.expect("click save")
    };
    type_into(&a, "#d-note-text", "Came to the desk at 10:05").await;
    save().await;
    wait_for("the note saved", Duration::from_secs(5), || async {
        note().notes == "Came to the desk at 10:05" && shown("d-note-status").await == json!("Saved (version 1).")
    })
    .await;
    type_into(&a, "#d-note-text", ". BP 130/85.").await;
    save().await;
    wait_for("the edit saved", Duration::from_secs(5), || async {
        note().note_revision == 2 && shown("d-note-status").await == json!("Saved (version 2).")
    })
    .await;
    assert_eq!(note().notes, "Came to the desk at 10:05. BP 130/85.");
    a.find(Locator::Css("#d-note-versions summary")).await.expect("versions").click().await.expect("click versions");
    wait_for("both versions listed", Duration::from_secs(5), || async {
        let items =
            js(&a, "Array.from(document.querySelectorAll('#d-note-history li pre')).map((p) => p.textContent)").await;
        items == json!(["Came to the desk at 10:05. BP 130/85.", "Came to the desk at 10:05"])
    })
    .await;
    let first = js(&a, "document.querySelector('#d-note-history li').firstChild.textContent").await;
    assert!(first.as_str().is_some_and(|t| t.starts_with("Version 2, ") && t.ends_with(", Dr. Asha Rao")), "{first}");
    // Another device saves meanwhile (version 3); this page's save, started from version 2, is refused.
    k.store
        .write_blocking(|db| {
            db.save_note(at_desk, 2, "Dr. Asha Rao", "Written on the tablet", Actor::Cli, chrono::Utc::now())
        })
        .expect("a save elsewhere");
    type_into(&a, "#d-note-text", " Pulse 88.").await;
    save().await;
    wait_for("the stale save refused", Duration::from_secs(5), || async {
        shown("d-note-status").await.as_str().is_some_and(|t| t.starts_with("Not saved: the note was saved again by"))
    })
    .await;
    assert_eq!(note().notes, "Written on the tablet", "nothing overwritten");
    let kept_text = js(&a, "document.getElementById('d-note-text').value").await;
    assert_eq!(kept_text, json!("Came to the desk at 10:05. BP 130/85. Pulse 88."), "the doctor's text stays");
    a.find(Locator::Css("#d-note-reload")).await.expect("load the latest").click().await.expect("click");
    wait_for("the latest version loaded", Duration::from_secs(5), || async {
        js(&a, "document.getElementById('d-note-text').value").await == json!("Written on the tablet")
    })
    .await;

    // A follow-up from the details: refused where it overlaps tomorrow's appointment, booked an hour later, and in
    // tomorrow's list.
    let taken = k.store.read_blocking(|db| db.appointment(tomorrow)).expect("tomorrow").starts_at;
    let set_time = |offset_minutes: i64| {
        let a = a.clone();
        let taken = taken.clone();
        async move {
            a.execute(
                "const t = new Date(new Date(arguments[0]).getTime() + arguments[1] * 60000); \
                 const p = (n) => String(n).padStart(2, '0'); \
                 document.getElementById('fu-date').value = `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}`; \
                 document.getElementById('fu-time').value = `${p(t.getHours())}:${p(t.getMinutes())}`; return true;",
                vec![json!(taken), json!(offset_minutes)],
            )
            .await
            .expect("set the follow-up's time");
        }
    };
    let book = || async {
        a.find(Locator::Css("#followup-form button[type=submit]")).await.expect("book").click().await.expect("click")
    };
    let appointments_of_patient = || {
        let all = AppointmentFilter { patient_id: Some(k.patient), limit: 100, ..AppointmentFilter::default() };
        k.store.read_blocking(|db| db.list_appointments(&all)).expect("list")
    };
    let before = appointments_of_patient().len();
    set_time(0).await;
    book().await;
    wait_for("the overlap refused", Duration::from_secs(5), || async {
        shown("fu-status")
            .await
            .as_str()
            .is_some_and(|t| t.starts_with("Not booked: the doctor already has appointment"))
    })
    .await;
    assert_eq!(appointments_of_patient().len(), before, "nothing booked");
    set_time(60).await;
    book().await;
    wait_for("the follow-up booked", Duration::from_secs(5), || async {
        shown("fu-status").await.as_str().is_some_and(|t| t.starts_with("Booked: "))
    })
    .await;
    let now_booked = appointments_of_patient();
    assert_eq!(now_booked.len(), before + 1);
    let follow_up = now_booked.into_iter().max_by_key(|x| x.id).expect("the follow-up");
    assert_eq!((follow_up.doctor_id, follow_up.reason.as_str()), (k.doctor_a, "Follow-up"));
    assert_eq!(accessibility_violations(&a).await, Vec::<String>::new(), "the details with the note and follow-up");
    assert_eq!(keyboard_misses(&a, "#details").await, Vec::<String>::new(), "the details by keyboard");
    a.find(Locator::Css("#details-close")).await.expect("close").click().await.expect("click close");

    // Tomorrow, and back.
    a.find(Locator::Css("#day-next")).await.expect("next day").click().await.expect("click");
    wait_for("tomorrow's list", Duration::from_secs(10), || exists(row(tomorrow, "td"))).await;
    wait_for("the follow-up in it", Duration::from_secs(10), || exists(row(follow_up.id, "td"))).await;
    assert!(!exists(row(tomorrow, "button.checkin")).await, "no check-in for another day");
    let title = js(&a, "document.getElementById('day-title').textContent").await;
    assert!(title.as_str().is_some_and(|t| t.starts_with("Appointments on ")), "{title}");
    a.find(Locator::Css("#day-today")).await.expect("today").click().await.expect("click");
    wait_for("today again", Duration::from_secs(10), || exists(row(at_desk, "td"))).await;

    // A browser that refuses the camera and microphone: Mute and Camera off are disabled, and the page says why
    // and what to do (before, they stayed active and did nothing).
    let refused = js_async(
        &a,
        "navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError')); \
         await window.medimitra.call.media(); \
         return [document.getElementById('mute').disabled, document.getElementById('camera').disabled, \
                 document.getElementById('mute').title, document.getElementById('controls-note').textContent];",
    )
    .await;
    assert_eq!(refused[0], json!(true), "{refused}");
    assert_eq!(refused[1], json!(true), "{refused}");
    assert!(refused[2].as_str().is_some_and(|t| t.starts_with("No microphone: permission was denied")), "{refused}");
    assert!(refused[3].as_str().is_some_and(|t| t.ends_with("The patient will not see or hear you.")), "{refused}");

    // Phone, tablet and laptop widths: the layout fits, and the references are kept to look at.
    for (w, h, name) in [(390u32, 844u32, "phone"), (768, 1024, "tablet"), (1366, 768, "laptop")] {
        a.set_window_size(w, h).await.expect("window size");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fit = js(
            &a,
            "({ width: innerWidth, scroll: document.documentElement.scrollWidth, \
                header: document.querySelector('header').getBoundingClientRect().height, \
                smallest: Math.min(...Array.from(document.querySelectorAll('#list-view button')) \
                  .filter((b) => b.offsetParent).map((b) => b.getBoundingClientRect().height)) })",
        )
        .await;
        let width = fit["width"].as_f64().unwrap_or(0.0);
        assert!(fit["scroll"].as_f64().unwrap_or(f64::MAX) <= width, "{name}: wider than the screen: {fit}");
        assert!(fit["header"].as_f64().unwrap_or(f64::MAX) <= 100.0, "{name}: the header takes too much: {fit}");
        assert!(fit["smallest"].as_f64().unwrap_or(0.0) >= 40.0, "{name}: a button too small to touch: {fit}");
        if engine == Engine::Chromium && std::env::var_os("UPDATE_WEB_REFERENCE").is_some() {
            let png = a.screenshot().await.expect("screenshot");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web-reference");
            std::fs::create_dir_all(&dir).expect("reference directory");
            std::fs::write(dir.join(format!("day-{name}.png")), png).expect("write the reference");
        }
    }
    a.close().await.expect("close");
}
