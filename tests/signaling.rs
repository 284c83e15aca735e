//! The signaling socket over real WSS: who may open it, the protocol's first steps, refusal of bad frames, and
//! the call rules as the doctor's page meets them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use medimitra::calls::PatientIntent;
use medimitra::core::{Actor, AppointmentStatus, CallState, EndReason, Role};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::server::TestServer as Kiosk;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn tls(k: &Kiosk) -> tokio_tungstenite::Connector {
    let pem = std::fs::read(k.dir.path().join("tls/cert.pem")).expect("cert");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

async fn open(k: &Kiosk, token: Option<&str>, origin: Option<&str>) -> Result<Ws, u16> {
    let url = k.base.replace("https://", "wss://") + "/api/signal";
    let mut req = url.into_client_request().expect("request");
    if let Some(t) = token {
        req.headers_mut().insert("cookie", format!("mm_session={t}").parse().expect("header"));
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(tls(k))).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// The next JSON message from the kiosk (pings skipped); `None` when the socket closed.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("JSON from the kiosk")),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn hello(ws: &mut Ws) -> Value {
    send(ws, json!({"type": "hello", "version": 1})).await;
    next(ws).await.expect("welcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_logged_in_doctor_on_an_allowed_page_can_open_the_socket() {
    let k = Kiosk::start_with_calls(|_| {}).await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let t = k.login("asha@clinic.in").await;
    assert_eq!(open(&k, None, None).await.err(), Some(401));
    assert_eq!(open(&k, Some("forged-token"), None).await.err(), Some(401));
    assert_eq!(open(&k, Some(&t), Some("https://evil.example")).await.err(), Some(403));
    let own = k.base.clone();
    let mut ws = open(&k, Some(&t), Some(&own)).await.expect("own origin opens");
    assert_eq!(hello(&mut ws).await["type"], "welcome");
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_must_say_hello_in_a_version_the_kiosk_speaks() {
    let k = Kiosk::start_with_calls(|c| {
        c.ice_servers = vec![medimitra::config::IceServer {
            urls: vec!["stun:stun.clinic.example:3478".to_string().try_into().unwrap()],
            username: None,
            credential: None,
        }];
    })
    .await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let t = k.login("asha@clinic.in").await;
    let mut ws = open(&k, Some(&t), None).await.unwrap();
    send(&mut ws, json!({"type": "call:start", "appointmentId": 1})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "hello_required");
    send(&mut ws, json!({"type": "hello", "version": 2})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "unsupported_version");
    let mut welcome = hello(&mut ws).await;
    let boot_id = welcome["bootId"].take();
    assert!(boot_id.as_str().is_some_and(|b| b.len() == 8), "{boot_id}");
    assert_eq!(
        welcome,
        json!({"type": "welcome", "version": 1, "clinic": "Medi-Mitra Clinic", "iceServers": [{"urls": ["stun:stun.clinic.example:3478"]}], "iceTransportPolicy": "all", "resumableCallId": null, "bootId": null})
    );
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "pong"}));
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_a_stream_of_them_closes_the_socket() {
    let k = Kiosk::start_with_calls(|_| {}).await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let t = k.login("asha@clinic.in").await;
    let mut ws = open(&k, Some(&t), None).await.unwrap();
    hello(&mut ws).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["code"], "invalid_message");
    send(&mut ws, json!({"type": "call:teleport"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "invalid_message");
    // A good message in between resets the count.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "pong");
    let huge = json!({"type": "sdp:answer", "sessionId": "x", "sdp": "a".repeat(70 * 1024)});
    send(&mut ws, huge).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "message_too_large");
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["code"], "invalid_message");
    for _ in 0..2 {
        send(&mut ws, json!({"type": "call:start"})).await;
        assert_eq!(next(&mut ws).await.unwrap()["code"], "invalid_message");
    }
    // The fifth bad frame in a row: the kiosk answers and closes.
    send(&mut ws, json!({"type": "call:start", "appointmentId": "one"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "invalid_message");
    assert_eq!(next(&mut ws).await, None, "the socket must be closed");
    // The kiosk is unharmed.
    let mut again = open(&k, Some(&t), None).await.unwrap();
    assert_eq!(hello(&mut again).await["type"], "welcome");
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_rules_hold_over_the_socket() {
    let k = Kiosk::start_with_calls(|_| {}).await;
    let asha = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let vikram = k.add_account("Dr. Vikram Sen", "vikram@clinic.in", Role::Doctor);
    let p = k.add_patient("Meena Kumari");
    let now = Utc::now();
    let scheduled = k.add_appointment(p, asha, now + chrono::Duration::hours(1));
    let ready = k.add_appointment(p, asha, now + chrono::Duration::hours(2));
    let vikrams = k.add_appointment(p, vikram, now + chrono::Duration::hours(3));
    for id in [ready, vikrams] {
        k.store
            .write_blocking(|db| db.set_appointment_status(id, AppointmentStatus::CheckedIn, Actor::Cli, Utc::now()))
            .unwrap();
    }
    let ta = k.login("asha@clinic.in").await;
    let tv = k.login("vikram@clinic.in").await;
    let mut a = open(&k, Some(&ta), None).await.unwrap();
    let mut v = open(&k, Some(&tv), None).await.unwrap();
    hello(&mut a).await;
    hello(&mut v).await;

    for (appointment, code) in [(vikrams, "forbidden"), (scheduled, "not_checked_in"), (9999, "not_found")] {
        send(&mut a, json!({"type": "call:start", "appointmentId": appointment})).await;
        assert_eq!(next(&mut a).await.unwrap()["code"], code, "appointment {appointment}");
    }
    let av1 = json!({"video": [{"mimeType": "video/AV1"}]});
    send(&mut a, json!({"type": "call:start", "appointmentId": ready, "capabilities": av1})).await;
    assert_eq!(next(&mut a).await.unwrap()["code"], "no_common_codec");

    let vp8_only = json!({"video": [{"mimeType": "video/VP8", "clockRate": 90000}]});
    send(&mut a, json!({"type": "call:start", "appointmentId": ready, "capabilities": vp8_only})).await;
    let ringing = next(&mut a).await.unwrap();
    assert_eq!(
        (ringing["type"].as_str(), ringing["state"].as_str(), ringing["codec"].as_str()),
        (Some("call:state"), Some("ringing"), Some("VP8"))
    );
    let call_id = ringing["callId"].as_str().unwrap().to_string();

    send(&mut v, json!({"type": "call:start", "appointmentId": vikrams})).await;
    assert_eq!(next(&mut v).await.unwrap()["type"], "busy");

    send(&mut v, json!({"type": "call:end", "callId": call_id})).await;
    assert_eq!(next(&mut v).await.unwrap()["code"], "no_such_call");

    send(&mut a, json!({"type": "call:end", "callId": call_id})).await;
    assert_eq!(next(&mut a).await.unwrap(), json!({"type": "call:ended", "callId": call_id, "reason": "doctor_ended"}));
    // Never accepted: the appointment is still waiting for its call, and the kiosk is free again.
    assert_eq!(k.store.read_blocking(|db| db.appointment(ready)).unwrap().status, AppointmentStatus::CheckedIn);
    send(&mut v, json!({"type": "call:start", "appointmentId": vikrams})).await;
    assert_eq!(next(&mut v).await.unwrap()["state"], "ringing");
    k.stop().await;
}

/// A checked-in appointment of a new doctor, that doctor's greeted socket, and the appointment's id.
async fn doctor_with_a_patient_waiting(k: &Kiosk) -> (Ws, i64) {
    let doctor = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let p = k.add_patient("Meena Kumari");
    let id = k.add_appointment(p, doctor, Utc::now() + chrono::Duration::hours(1));
    k.store
        .write_blocking(|db| db.set_appointment_status(id, AppointmentStatus::CheckedIn, Actor::Cli, Utc::now()))
        .unwrap();
    let t = k.login("asha@clinic.in").await;
    let ws = open(k, Some(&t), None).await.unwrap();
    (ws, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_an_unsupported_version_cannot_ring_the_patient() {
    // Before the socket's rules moved into the core, `unsupported_version` was sent and the socket then counted as
    // greeted: this call:start rang the patient.
    let k = Kiosk::start_with_calls(|_| {}).await;
    let (mut ws, id) = doctor_with_a_patient_waiting(&k).await;
    send(&mut ws, json!({"type": "hello", "version": 2})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "unsupported_version");
    send(&mut ws, json!({"type": "call:start", "appointmentId": id})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "hello_required");
    let calls = &k.calls.as_ref().unwrap().handle;
    assert_eq!(calls.status().call, CallState::Idle, "the patient must not be rung");
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_kiosk_ends_the_call_tells_the_doctor_and_gives_the_appointment_back() {
    let k = Kiosk::start_with_calls(|_| {}).await;
    let (mut ws, id) = doctor_with_a_patient_waiting(&k).await;
    hello(&mut ws).await;
    send(&mut ws, json!({"type": "call:start", "appointmentId": id})).await;
    let ringing = next(&mut ws).await.unwrap();
    let call_id = ringing["callId"].as_str().unwrap().to_string();
    k.calls.as_ref().unwrap().handle.patient(PatientIntent::Accept);
    // Accepted: the kiosk offers a media session.
    loop {
        let m = next(&mut ws).await.expect("the call goes on");
        if m["type"] == "sdp:offer" {
            break;
        }
    }
    assert_eq!(k.store.read_blocking(|db| db.appointment(id)).unwrap().status, AppointmentStatus::InCall);
    let store = k.store.clone();
    // Before the explicit shutdown signal the call service's loop never ended, so this never returned.
    tokio::time::timeout(std::time::Duration::from_secs(10), k.stop()).await.expect("the kiosk stops");
    let mut ended = None;
    while let Some(m) = next(&mut ws).await {
        if m["type"] == "call:ended" {
            ended = Some(m);
        }
    }
    assert_eq!(ended, Some(json!({"type": "call:ended", "callId": call_id, "reason": "kiosk_stopping"})));
    assert_eq!(store.read_blocking(|db| db.appointment(id)).unwrap().status, AppointmentStatus::CheckedIn);
    let records = store.read_blocking(|db| db.call_records(id)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].end_reason, Some(EndReason::KioskStopping));
    assert!(records[0].ended_at.is_some());
}

/// Reads until the kiosk closes the socket: the JSON messages on the way and the close frame's code.
async fn until_closed(ws: &mut Ws) -> (Vec<Value>, Option<u16>) {
    let mut seen = Vec::new();
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("the socket closes within 10 s") {
            Some(Ok(Message::Text(t))) => seen.push(serde_json::from_str(t.as_str()).expect("JSON from the kiosk")),
            Some(Ok(Message::Close(frame))) => return (seen, frame.map(|f| u16::from(f.code))),
            None | Some(Err(_)) => return (seen, None),
            Some(Ok(_)) => continue,
        }
    }
    panic!("50 messages and the socket is still open: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_closes_its_socket_and_ends_its_call() {
    // Before sessions and sockets were tied, a socket opened before logout (or before the account was disabled) still
    // rang the patient with call:start.
    let k = Kiosk::start_with_calls(|_| {}).await;
    let (mut ws, id) = doctor_with_a_patient_waiting(&k).await;
    let token = k.login("asha@clinic.in").await;
    let mut same_session = open(&k, Some(&token), None).await.unwrap();
    hello(&mut same_session).await;
    // `ws` belongs to the first login: a second session of the same doctor.
    hello(&mut ws).await;
    send(&mut same_session, json!({"type": "call:start", "appointmentId": id})).await;
    assert_eq!(next(&mut same_session).await.unwrap()["state"], "ringing");
    let (status, _) = k.post_json("/api/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(status, 204);
    let (seen, code) = until_closed(&mut same_session).await;
    assert_eq!(code, Some(4001), "closed as 'log in again'");
    assert!(seen.iter().any(|m| m["type"] == "call:ended" && m["reason"] == "session_ended"), "{seen:?}");
    let calls = &k.calls.as_ref().unwrap().handle;
    let status = calls.status();
    assert_eq!(
        (status.call, status.ended_reason),
        (CallState::Ended, Some(EndReason::SessionEnded)),
        "the call ended with the session"
    );
    assert_eq!(k.store.read_blocking(|db| db.appointment(id)).unwrap().status, AppointmentStatus::CheckedIn);
    // The doctor's other session is untouched by this logout.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "pong");

    // A password change ends every other session's socket but keeps the one that made it.
    let changer = k.login("asha@clinic.in").await;
    let mut changers_socket = open(&k, Some(&changer), None).await.unwrap();
    hello(&mut changers_socket).await;
    let (status, body) = k
        .post_json(
            "/api/auth/password",
            Some(&changer),
            &json!({"currentPassword": support::PASSWORD, "newPassword": "a much newer passphrase"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(until_closed(&mut ws).await.1, Some(4001));
    send(&mut changers_socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut changers_socket).await.unwrap()["type"], "pong");

    // A technician disabling the account closes the rest, and a call:start sent afterwards rings nobody.
    k.add_account("Tech", "tech@clinic.in", Role::Technician);
    let tech = k.login("tech@clinic.in").await;
    let doctor = k.store.read_blocking(|db| db.account_by_email("asha@clinic.in")).unwrap().id;
    let (status, body) =
        k.put_json(&format!("/api/accounts/{doctor}/active"), Some(&tech), &json!({"active": false})).await;
    assert_eq!(status, 200, "{body}");
    let _ = changers_socket
        .send(Message::Text(json!({"type": "call:start", "appointmentId": id}).to_string().into()))
        .await;
    assert_eq!(until_closed(&mut changers_socket).await.1, Some(4001));
    assert_eq!(calls.status().call, CallState::Ended, "a disabled doctor cannot ring the patient");
    k.stop().await;
}
