//! The HTTPS API driven by a real rustls client against a real server and a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{Duration, Local, TimeZone, Utc};
use medimitra::core::{Actor, Role};
use serde_json::{Value, json};
use support::PASSWORD;
use support::server::TestServer as Kiosk;
use support::server::{client_from, try_login};

/// Today at `h:m` local time, in UTC.
fn today_at(h: u32, m: u32) -> chrono::DateTime<Utc> {
    let d = Local::now().date_naive().and_hms_opt(h, m, 0).expect("time");
    Local.from_local_datetime(&d).earliest().expect("local time").with_timezone(&Utc)
}

fn today() -> String {
    Local::now().date_naive().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn health_answers_without_login_over_https() {
    let k = Kiosk::start().await;
    let (status, body) = k.get("/api/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["clinic"]["id"], "clinic-1");
    assert_eq!(body["schemaVersion"], 7);
    k.stop().await;
}

#[tokio::test]
async fn the_network_check_needs_a_login_and_says_what_is_configured() {
    let k = Kiosk::start().await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    assert_eq!(k.get("/api/network-check", None).await.0, 401);
    let t = k.login("asha@clinic.in").await;
    let (status, body) = k.get("/api/network-check", Some(&t)).await;
    assert_eq!(status, 200, "{body}");
    // The test kiosk has no STUN or TURN server (the check against a real one is tests/netcheck.rs).
    assert_eq!(body["servers"], json!([]));
    assert_eq!(body["goodForVideo"], json!(false));
    assert!(body["verdict"].as_str().unwrap().starts_with("no STUN or TURN server configured"), "{body}");
    k.stop().await;
}

#[tokio::test]
async fn the_path_probe_sends_and_takes_bounded_incompressible_bytes_to_logged_in_staff() {
    let k = Kiosk::start().await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let probe = k.url("/api/network-probe");
    assert_eq!(k.client.get(&probe).send().await.expect("get").status(), 401);
    assert_eq!(k.client.post(&probe).body(vec![0u8; 10]).send().await.expect("post").status(), 401);
    let t = k.login("asha@clinic.in").await;
    let get = |q: &'static str| k.client.get(format!("{probe}{q}")).bearer_auth(&t).send();
    // A round trip: nothing to carry.
    let r = get("").await.expect("round trip");
    assert_eq!(r.status(), 204);
    // A download: exactly the bytes asked for, not compressible (a byte value repeats about as often as chance has
    // it), at most 4 MiB.
    let r = get("?bytes=300000").await.expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.bytes().await.expect("body");
    assert_eq!(body.len(), 300_000);
    let mut counts = [0usize; 256];
    body.iter().for_each(|b| counts[usize::from(*b)] += 1);
    assert!(counts.iter().all(|&c| c > 900 && c < 1450), "bytes spread evenly: {:?}", &counts[..8]);
    for bad in ["?bytes=4194305", "?bytes=-1", "?bytes=many", "?size=10"] {
        let r = get(bad).await.expect("bad");
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(get("?bytes=4194304").await.expect("4 MiB").bytes().await.expect("body").len(), 4 * 1024 * 1024);
    // An upload: counted and answered, larger than any API body but at most 4 MiB.
    let up = |n: usize| k.client.post(&probe).bearer_auth(&t).body(vec![7u8; n]).send();
    let r = up(1_000_000).await.expect("upload");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["bytes"], 1_000_000);
    let r = up(4 * 1024 * 1024 + 1).await.expect("too large");
    assert_eq!(r.status(), 413);
    k.stop().await;
}

#[tokio::test]
async fn login_profile_and_logout_with_bearer_and_cookie() {
    let k = Kiosk::start().await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);

    let resp = k
        .client
        .post(k.url("/api/auth/login"))
        .json(&json!({"email": "Asha@Clinic.in", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Strict"), "{cookie}");
    let (status, body) = support::server::read(resp).await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["user"]["email"], "asha@clinic.in");
    assert!(body["user"].get("passwordHash").is_none());
    assert!(cookie.starts_with(&format!("mm_session={token};")));

    let (status, me) = k.get("/api/users/profile", Some(&token)).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("Dr. Asha Rao")));

    let (status, me) = support::server::read(
        k.client.get(k.url("/api/users/profile")).header("cookie", format!("mm_session={token}")).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, me["role"].as_str()), (200, Some("doctor")));

    // The token is stored only as a hash.
    assert!(!k.snapshot().contains(&token));

    let resp = k.client.post(k.url("/api/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, body) = k.get("/api/users/profile", Some(&token)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("session_expired")));
    k.stop().await;
}

#[tokio::test]
async fn wrong_credentials_and_missing_tokens_are_refused_alike() {
    let k = Kiosk::start().await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let (s1, b1) =
        k.post_json("/api/auth/login", None, &json!({"email": "asha@clinic.in", "password": "wrong password"})).await;
    let (s2, b2) =
        k.post_json("/api/auth/login", None, &json!({"email": "nobody@clinic.in", "password": PASSWORD})).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2, "an unknown account must look like a wrong password");
    assert_eq!(b1["code"], "unauthenticated");
    let (status, body) = k.get("/api/users/profile", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    let (status, _) = k.get("/api/users/profile", Some("not-a-real-token")).await;
    assert_eq!(status, 401);
    k.stop().await;
}

#[tokio::test]
async fn expired_revoked_and_disabled_sessions_stop_working() {
    let k = Kiosk::start().await;
    let id = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);

    // An expired session, as the store would hold it after its time ran out.
    let (token, hash) = medimitra::credentials::new_token();
    let now = Utc::now();
    k.store
        .write_blocking(|db| {
            let account = db.account(id)?;
            db.create_session(&hash, &account, now - Duration::hours(13), now - Duration::hours(1))
        })
        .unwrap();
    let (status, body) = k.get("/api/users/profile", Some(&token)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("session_expired")));

    // Revoked: a second login stays valid when the first logs out.
    let t1 = k.login("asha@clinic.in").await;
    let t2 = k.login("asha@clinic.in").await;
    let resp = k.client.post(k.url("/api/auth/logout")).bearer_auth(&t1).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(k.get("/api/users/profile", Some(&t1)).await.0, 401);
    assert_eq!(k.get("/api/users/profile", Some(&t2)).await.0, 200);

    // Disabled by a technician: every session of the account ends, and it cannot log in again.
    let tech = k.login("tara@clinic.in").await;
    let (status, body) =
        k.put_json(&format!("/api/accounts/{id}/active"), Some(&tech), &json!({"active": false})).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(false)));
    assert_eq!(k.get("/api/users/profile", Some(&t2)).await.0, 401);
    let (status, _) =
        k.post_json("/api/auth/login", None, &json!({"email": "asha@clinic.in", "password": PASSWORD})).await;
    assert_eq!(status, 401);
    k.stop().await;
}

#[tokio::test]
async fn doctors_list_and_filter_only_their_own_appointments() {
    let k = Kiosk::start().await;
    let asha = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let vikram = k.add_account("Dr. Vikram Sen", "vikram@clinic.in", Role::Doctor);
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let p1 = k.add_patient("Meena Kumari");
    let p2 = k.add_patient("Ravi Patel");
    let a1 = k.add_appointment(p1, asha, today_at(9, 0));
    let a2 = k.add_appointment(p2, asha, today_at(9, 30));
    let a_tomorrow = k.add_appointment(p1, asha, today_at(9, 0) + Duration::days(1));
    let v1 = k.add_appointment(p2, vikram, today_at(9, 0));

    let t = k.login("asha@clinic.in").await;
    let ids = |body: &Value| {
        body["appointments"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };

    let (status, body) = k.get("/api/appointments", Some(&t)).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), vec![a1, a2, a_tomorrow]);
    assert_eq!(body["appointments"][0]["patientName"], "Meena Kumari");
    assert_eq!(body["appointments"][0]["status"], "scheduled");

    let (_, body) = k.get(&format!("/api/appointments?day={}", today()), Some(&t)).await;
    assert_eq!(ids(&body), vec![a1, a2]);

    let (_, s) =
        k.put_json(&format!("/api/appointments/{a2}/status"), Some(&t), &json!({"status": "checked_in"})).await;
    assert_eq!(s["status"], "checked_in");
    let (_, body) = k.get(&format!("/api/appointments?day={}&status=checked_in", today()), Some(&t)).await;
    assert_eq!(ids(&body), vec![a2]);
    let (_, body) = k.get("/api/appointments?limit=1&offset=1", Some(&t)).await;
    assert_eq!(ids(&body), vec![a2]);
    // One patient's history with this doctor (Vikram's appointment with the same patient is not in it).
    let (_, body) = k.get(&format!("/api/appointments?patientId={p2}"), Some(&t)).await;
    assert_eq!(ids(&body), vec![a2]);
    let (_, body) = k.get(&format!("/api/appointments?patientId={p1}"), Some(&t)).await;
    assert_eq!(ids(&body), vec![a1, a_tomorrow]);
    // Its calls (none yet), and not those of another doctor's appointment.
    let (status, body) = k.get(&format!("/api/appointments/{a2}/calls"), Some(&t)).await;
    assert_eq!((status, body), (200, json!([])));
    assert_eq!(k.get(&format!("/api/appointments/{v1}/calls"), Some(&t)).await.0, 404);

    // Another doctor's data: not listed, not readable, not changeable.
    let (status, _) = k.get(&format!("/api/appointments?doctorId={vikram}"), Some(&t)).await;
    assert_eq!(status, 403);
    let (status, body) = k.get(&format!("/api/appointments/{v1}"), Some(&t)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let before = k.snapshot();
    let (status, _) =
        k.put_json(&format!("/api/appointments/{v1}/status"), Some(&t), &json!({"status": "cancelled"})).await;
    assert_eq!(status, 404);
    assert_eq!(k.snapshot(), before);

    // Patients: a doctor reads only those they have appointments with.
    let (status, body) = k.get(&format!("/api/patients/{p1}"), Some(&t)).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("Meena Kumari")));
    let tv = k.login("vikram@clinic.in").await;
    assert_eq!(k.get(&format!("/api/patients/{p1}"), Some(&tv)).await.0, 404);

    // A technician sees every doctor's appointments.
    let tech = k.login("tara@clinic.in").await;
    let (_, body) = k.get(&format!("/api/appointments?day={}", today()), Some(&tech)).await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = k.get(&format!("/api/appointments?doctorId={vikram}"), Some(&tech)).await;
    assert_eq!(ids(&body), vec![v1]);
    k.stop().await;
}

#[tokio::test]
async fn appointments_are_created_and_moved_through_their_states() {
    let k = Kiosk::start().await;
    let asha = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let vikram = k.add_account("Dr. Vikram Sen", "vikram@clinic.in", Role::Doctor);
    let p = k.add_patient("Meena Kumari");
    // Meena saw Dr. Rao last week: Dr. Rao may book her follow-up.
    k.add_appointment(p, asha, Utc::now() - Duration::days(7));
    let t = k.login("asha@clinic.in").await;

    let start =
        (Utc::now() + Duration::hours(2)).with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap());
    let (status, a) = k
        .post_json(
            "/api/appointments",
            Some(&t),
            &json!({"patientId": p, "startsAt": start.to_rfc3339(), "durationMinutes": 20, "reason": "cough"}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        (a["doctorId"].as_i64(), a["status"].as_str(), a["durationMinutes"].as_i64()),
        (Some(asha), Some("scheduled"), Some(20))
    );
    assert!(a["startsAt"].as_str().unwrap().ends_with('Z'));
    let id = a["id"].as_i64().unwrap();

    // Overlapping booking for the same doctor, booking for someone else, unknown patient.
    let (status, body) = k
        .post_json(
            "/api/appointments",
            Some(&t),
            &json!({"patientId": p, "startsAt": start.to_rfc3339(), "durationMinutes": 15}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    let (status, _) = k
        .post_json(
            "/api/appointments",
            Some(&t),
            &json!({"patientId": p, "doctorId": vikram, "startsAt": start.to_rfc3339(), "durationMinutes": 15}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = k
        .post_json(
            "/api/appointments",
            Some(&t),
            &json!({"patientId": 9999, "startsAt": start.to_rfc3339(), "durationMinutes": 15}),
        )
        .await;
    assert_eq!((status, body["message"].as_str()), (404, Some("patient not found")));

    for (to, expected, code) in [
        ("checked_in", 200, None),
        ("completed", 409, Some("invalid_transition")),
        ("in_call", 409, Some("call_managed")),
    ] {
        let (status, body) =
            k.put_json(&format!("/api/appointments/{id}/status"), Some(&t), &json!({"status": to})).await;
        assert_eq!((status, body["code"].as_str()), (expected, code), "-> {to}: {body}");
    }
    // The call service moves it in_call; the doctor may then close it by hand.
    k.store
        .write_blocking(|db| {
            db.set_appointment_status(id, medimitra::core::AppointmentStatus::InCall, Actor::CallService, Utc::now())
        })
        .unwrap();
    for (to, expected) in [("completed", 200), ("cancelled", 409)] {
        let (status, body) =
            k.put_json(&format!("/api/appointments/{id}/status"), Some(&t), &json!({"status": to})).await;
        assert_eq!(status, expected, "-> {to}: {body}");
    }
    let (_, a) = k.get(&format!("/api/appointments/{id}"), Some(&t)).await;
    assert_eq!(a["status"], "completed");

    let (status, a) =
        k.post_json(&format!("/api/appointments/{id}/notes"), Some(&t), &json!({"text": "Paracetamol 500 mg"})).await;
    assert_eq!(status, 200);
    assert!(a["notes"].as_str().unwrap().ends_with("Dr. Asha Rao] Paracetamol 500 mg"));

    let audit = k.store.read_blocking(|db| db.recent_audit(50)).unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"appointment_create") && actions.contains(&"appointment_status"), "{actions:?}");
    k.stop().await;
}

#[tokio::test]
async fn the_visit_note_is_edited_with_its_history_kept_and_a_stale_edit_refused() {
    let k = Kiosk::start().await;
    let doctor = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    k.add_account("Dr. Ravi Menon", "ravi@clinic.in", Role::Doctor);
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let p = k.add_patient("Meena Kumari");
    let id = k.add_appointment(p, doctor, today_at(10, 0));
    let t = k.login("asha@clinic.in").await;
    let note = format!("/api/appointments/{id}/note");
    let (_, a) = k.get(&format!("/api/appointments/{id}"), Some(&t)).await;
    assert_eq!(a["noteRevision"], 0);

    // Written, added to (the chat's "save to the notes" path), then edited from the revision it has reached.
    let (status, a) = k.put_json(&note, Some(&t), &json!({"text": "Fever 3 days.", "baseRevision": 0})).await;
    assert_eq!((status, a["noteRevision"].clone(), a["notes"].clone()), (200, json!(1), json!("Fever 3 days.")));
    let (status, a) =
        k.post_json(&format!("/api/appointments/{id}/notes"), Some(&t), &json!({"text": "Chat: no cough"})).await;
    assert_eq!((status, a["noteRevision"].clone()), (200, json!(2)));
    let added = a["notes"].as_str().unwrap_or_default().to_string();
    let edited = "Fever 3 days, no cough. Paracetamol 500 mg.";
    let (status, a) = k.put_json(&note, Some(&t), &json!({"text": edited, "baseRevision": 2})).await;
    assert_eq!((status, a["noteRevision"].clone(), a["notes"].clone()), (200, json!(3), json!(edited)));

    // A save from an older revision (a second tab, another device) changes nothing and says who saved since.
    let (status, body) = k.put_json(&note, Some(&t), &json!({"text": "old tab", "baseRevision": 1})).await;
    assert_eq!((status, body["code"].clone()), (409, json!("conflict")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("by Dr. Asha Rao"), "{body}");
    // The same text again is no new revision.
    let (status, a) = k.put_json(&note, Some(&t), &json!({"text": edited, "baseRevision": 3})).await;
    assert_eq!((status, a["noteRevision"].clone()), (200, json!(3)));

    let (status, h) = k.get(&format!("{note}/revisions"), Some(&t)).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = h["revisions"].as_array().unwrap().iter().filter_map(|r| r["text"].as_str()).collect();
    assert_eq!(texts, vec![edited, added.as_str(), "Fever 3 days."]);
    assert_eq!(h["revisions"][0]["author"], "Dr. Asha Rao");
    assert_eq!(h["revisions"][0]["revision"], 3);

    // Another doctor does not see it; a technician sees the history but does not write the doctor's note; bad
    // bodies are refused. None of it changes the note.
    let ravi = k.login("ravi@clinic.in").await;
    let (status, _) = k.put_json(&note, Some(&ravi), &json!({"text": "x", "baseRevision": 3})).await;
    assert_eq!(status, 404);
    let (status, _) = k.get(&format!("{note}/revisions"), Some(&ravi)).await;
    assert_eq!(status, 404);
    let tara = k.login("tara@clinic.in").await;
    let (status, _) = k.get(&format!("{note}/revisions"), Some(&tara)).await;
    assert_eq!(status, 200);
    let (status, _) = k.put_json(&note, Some(&tara), &json!({"text": "x", "baseRevision": 3})).await;
    assert_eq!(status, 403);
    for bad in [
        json!({"text": "x"}),
        json!({"text": "x", "baseRevision": -1}),
        json!({"text": "a\u{0007}b", "baseRevision": 3}),
        json!({"text": "x".repeat(20_001), "baseRevision": 3}),
        json!({"text": "x", "baseRevision": 3, "extra": 1}),
    ] {
        let (status, body) = k.put_json(&note, Some(&t), &bad).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
    }
    let (_, a) = k.get(&format!("/api/appointments/{id}"), Some(&t)).await;
    assert_eq!((a["noteRevision"].clone(), a["notes"].clone()), (json!(3), json!(edited)));
    k.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_changes_nothing() {
    let k = Kiosk::start_with(|c| c.server.max_body_bytes = 16 * 1024).await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let tech_id = k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let p = k.add_patient("Meena Kumari");
    let t = k.login("asha@clinic.in").await;
    let tech = k.login("tara@clinic.in").await;
    let id = k.add_appointment(p, 1, today_at(11, 0));
    let before = k.snapshot();

    let start = today_at(15, 0).to_rfc3339();
    let cases: Vec<(&str, reqwest::Method, String, &str, u16, &str)> = vec![
        (
            "malformed JSON",
            reqwest::Method::POST,
            "/api/appointments".into(),
            "{\"patientId\": 1,",
            400,
            "malformed_json",
        ),
        (
            "not JSON at all",
            reqwest::Method::PUT,
            format!("/api/appointments/{id}/status"),
            "status=completed",
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            reqwest::Method::POST,
            "/api/appointments".into(),
            r#"{"patientId":1,"startsAt":"2026-11-25T10:00:00Z","durationMinutes":15,"price":5}"#,
            422,
            "invalid_body",
        ),
        (
            "wrong type",
            reqwest::Method::POST,
            "/api/appointments".into(),
            r#"{"patientId":"one","startsAt":"2026-11-25T10:00:00Z","durationMinutes":15}"#,
            422,
            "invalid_body",
        ),
        ("missing field", reqwest::Method::POST, "/api/appointments".into(), r#"{"patientId":1}"#, 422, "invalid_body"),
        (
            "invalid date",
            reqwest::Method::POST,
            "/api/appointments".into(),
            r#"{"patientId":1,"startsAt":"2026-02-30T10:00:00Z","durationMinutes":15}"#,
            422,
            "invalid_field",
        ),
        (
            "not a date",
            reqwest::Method::POST,
            "/api/appointments".into(),
            r#"{"patientId":1,"startsAt":"next tuesday","durationMinutes":15}"#,
            422,
            "invalid_field",
        ),
        (
            "duration out of range",
            reqwest::Method::POST,
            "/api/appointments".into(),
            format!(r#"{{"patientId":1,"startsAt":"{start}","durationMinutes":900}}"#).leak(),
            422,
            "invalid_field",
        ),
        (
            "unknown status",
            reqwest::Method::PUT,
            format!("/api/appointments/{id}/status"),
            r#"{"status":"done"}"#,
            422,
            "invalid_body",
        ),
        (
            "invalid transition",
            reqwest::Method::PUT,
            format!("/api/appointments/{id}/status"),
            r#"{"status":"completed"}"#,
            409,
            "invalid_transition",
        ),
        (
            "non-numeric id",
            reqwest::Method::PUT,
            "/api/appointments/abc/status".into(),
            r#"{"status":"checked_in"}"#,
            404,
            "not_found",
        ),
        ("unknown endpoint", reqwest::Method::POST, "/api/nothing".into(), "{}", 404, "not_found"),
        ("wrong method", reqwest::Method::DELETE, "/api/appointments".into(), "{}", 405, "method_not_allowed"),
    ];
    for (what, method, path, body, status, code) in cases {
        let (s, b) = k.send_raw(method, &path, Some(&t), body.to_string()).await;
        assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{what}: {b}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message");
    }

    // A body over the limit: 413, whether announced by Content-Length or not.
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(64 * 1024));
    let (s, b) =
        k.send_raw(reqwest::Method::POST, &format!("/api/appointments/{id}/notes"), Some(&t), huge.clone()).await;
    assert_eq!((s, b["code"].as_str()), (413, Some("body_too_large")));
    let stream = reqwest::Body::wrap_stream(futures_once(huge));
    let resp = k
        .client
        .post(k.url(&format!("/api/appointments/{id}/notes")))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    // Query parameters too.
    let (s, b) = k.get("/api/appointments?day=2026-13-01", Some(&t)).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_query")));
    let (s, _) = k.get("/api/appointments?limit=100000", Some(&t)).await;
    assert_eq!(s, 400);
    let (s, _) = k.get("/api/appointments?colour=red", Some(&t)).await;
    assert_eq!(s, 400);

    // Technician-only endpoints refuse doctors; account rules hold.
    let (s, _) = k.post_json("/api/patients", Some(&t), &json!({"name": "X"})).await;
    assert_eq!(s, 403);
    let (s, b) = k
        .post_json(
            "/api/accounts",
            Some(&tech),
            &json!({"name": "Dr. Short", "email": "short@clinic.in", "password": "short", "role": "doctor"}),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (422, Some("invalid_field")));
    let (s, _) = k
        .post_json(
            "/api/accounts",
            Some(&tech),
            &json!({"name": "Dr. Dup", "email": "asha@clinic.in", "password": PASSWORD, "role": "doctor"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = k.put_json(&format!("/api/accounts/{tech_id}/active"), Some(&tech), &json!({"active": false})).await;
    assert_eq!(s, 409);
    let (s, _) = k.post_json("/api/patients", Some(&tech), &json!({"name": "X", "dateOfBirth": "2999-01-01"})).await;
    assert_eq!(s, 422);
    let (s, _) = k.post_json("/api/patients", Some(&tech), &json!({"name": "   "})).await;
    assert_eq!(s, 422);

    assert_eq!(k.snapshot(), before, "refused requests must not change the database");
    k.stop().await;
}

/// A body stream with no Content-Length (sent chunked).
fn futures_once(s: String) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    futures_util::stream::once(async move { Ok(s) })
}

#[tokio::test]
async fn names_with_quotes_and_sql_words_are_stored_verbatim() {
    let k = Kiosk::start().await;
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let tech = k.login("tara@clinic.in").await;
    let nasty = [
        "Robert'); DROP TABLE patients;--",
        "O'Brien \"Bobby\" ; DELETE FROM doctors WHERE 1=1",
        "अनीता शर्मा",
        "x' OR '1'='1",
    ];
    for name in nasty {
        let (s, p) = k
            .post_json(
                "/api/patients",
                Some(&tech),
                &json!({"name": name, "sex": "female", "preferredLanguage": "hi", "phone": "+91 98765 43210"}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let (s, back) = k.get(&format!("/api/patients/{}", p["id"]), Some(&tech)).await;
        assert_eq!((s, back["name"].as_str()), (200, Some(name)));
    }
    let (s, d) = k.post_json("/api/accounts", Some(&tech), &json!({"name": "Dr. O'Neil; DROP TABLE accounts", "email": "oneil@clinic.in", "password": PASSWORD, "role": "doctor"})).await;
    assert_eq!((s, d["name"].as_str()), (201, Some("Dr. O'Neil; DROP TABLE accounts")));
    let (_, list) = k.get("/api/patients", Some(&tech)).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    let (_, accounts) = k.get("/api/accounts", Some(&tech)).await;
    assert_eq!(accounts.as_array().unwrap().len(), 2);
    // The route's old name still answers (existing clients).
    let (_, old_name) = k.get("/api/doctors", Some(&tech)).await;
    assert_eq!(old_name, accounts);
    k.stop().await;
}

#[tokio::test]
async fn a_doctor_reaches_only_patients_they_have_or_had_an_appointment_with() {
    // Before, doctor B could book A's patient by id (ids are sequential) and then read the record.
    let k = Kiosk::start().await;
    let a = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let b = k.add_account("Dr. Vikram Sen", "vikram@clinic.in", Role::Doctor);
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let meena = k.add_patient("Meena Kumari");
    k.add_appointment(meena, a, Utc::now() + Duration::hours(1));
    let (ta, tb, tech) =
        (k.login("asha@clinic.in").await, k.login("vikram@clinic.in").await, k.login("tara@clinic.in").await);
    let start = (Utc::now() + Duration::days(1)).to_rfc3339();
    let book = json!({"patientId": meena, "startsAt": start, "durationMinutes": 15});
    let before = k.snapshot();
    let (status, body) = k.post_json("/api/appointments", Some(&tb), &book).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    assert_eq!(k.snapshot(), before, "nothing booked");
    let (status, body) = k.get(&format!("/api/patients/{meena}"), Some(&tb)).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains("Meena"));
    // An unknown id answers the same.
    let (status, unknown) = k
        .post_json("/api/appointments", Some(&tb), &json!({"patientId": 999, "startsAt": start, "durationMinutes": 15}))
        .await;
    assert_eq!((status, &unknown["message"]), (404, &body["message"]));
    // Her own doctor books the follow-up; a technician books her with Dr. Sen, who then sees her.
    assert_eq!(k.post_json("/api/appointments", Some(&ta), &book).await.0, 201);
    let mut for_b = book.clone();
    for_b["doctorId"] = json!(b);
    assert_eq!(k.post_json("/api/appointments", Some(&tech), &for_b).await.0, 201);
    let (status, p) = k.get(&format!("/api/patients/{meena}"), Some(&tb)).await;
    assert_eq!((status, p["name"].as_str()), (200, Some("Meena Kumari")));
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_slowed_without_locking_the_owner_out() {
    let k = Kiosk::start_with(|c| {
        c.auth.free_failures = 3;
        c.auth.account_guard_after = 10;
        c.auth.guard_spacing_secs = 30;
        c.auth.max_attempts_per_address = 100;
    })
    .await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let email = "asha@clinic.in";
    // The owner has logged in from their browser before: it holds a trusted-device cookie.
    let owner = client_from(&k, [127, 0, 0, 2]);
    let (status, _, _, device) = try_login(&k, &owner, email, PASSWORD, None).await;
    assert_eq!(status, 200);
    let device = device.expect("a trusted-device cookie");

    // 40 simultaneous guesses from one address: counted before the check, so only the free allowance is checked.
    // (Before, all 40 were checked and answered 401.)
    let attacker = client_from(&k, [127, 0, 0, 3]);
    let guesses = (0..40).map(|_| try_login(&k, &attacker, email, "wrong password", None));
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|a| a.0 == 401).count();
    assert_eq!(checked, 3, "{answers:?}");
    assert!(answers.iter().all(|a| a.0 == 401 || (a.0 == 429 && a.1 == "too_many_attempts" && a.2.is_some())));

    // 40 simultaneous guesses from 40 addresses: the account-wide guard holds after 10 failures in all, then lets
    // one untrusted attempt through per 30 s.
    let many: Vec<_> = (1..=40).map(|n| client_from(&k, [127, 0, 1, n])).collect();
    let answers =
        futures_util::future::join_all(many.iter().map(|c| try_login(&k, c, email, "wrong password", None))).await;
    let checked = answers.iter().filter(|a| a.0 == 401).count();
    assert!(checked <= 10 - 3 + 1, "{checked} of 40 checked");
    assert_eq!(answers.iter().filter(|a| a.0 == 429).count(), 40 - checked);

    // The attacker's own address now waits, even with the right password.
    let (status, code, wait, _) = try_login(&k, &attacker, email, PASSWORD, None).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
    assert!(wait.unwrap() >= 1);
    // A new browser of the owner shares the guarded slot: slowed, told how long to wait.
    let (status, _, wait, _) = try_login(&k, &client_from(&k, [127, 0, 0, 4]), email, PASSWORD, None).await;
    assert_eq!(status, 429);
    assert!(wait.unwrap() <= 30);
    // The owner's own browser goes straight to the password check and gets in (before: locked out like everyone).
    let (status, _, _, _) = try_login(&k, &owner, email, PASSWORD, Some(&device)).await;
    assert_eq!(status, 200);
    // A forged or foreign device cookie is no pass.
    let (status, _, _, _) = try_login(&k, &many[0], email, PASSWORD, Some("mm_device=00ff")).await;
    assert_eq!(status, 429);
    k.stop().await;
}

#[tokio::test]
async fn cookie_requests_from_foreign_pages_cannot_change_anything() {
    let k = Kiosk::start_with(|c| {
        c.server.allowed_origins = vec!["https://portal.clinic.in".to_string().try_into().unwrap()]
    })
    .await;
    let asha = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let p = k.add_patient("Meena Kumari");
    let id = k.add_appointment(p, asha, today_at(12, 0));
    let t = k.login("asha@clinic.in").await;
    let put = |origin: &'static str| {
        k.client
            .put(k.url(&format!("/api/appointments/{id}/status")))
            .header("cookie", format!("mm_session={t}"))
            .header("origin", origin)
            .json(&json!({"status": "checked_in"}))
            .send()
    };
    let before = k.snapshot();
    assert_eq!(put("https://evil.example").await.unwrap().status().as_u16(), 403);
    assert_eq!(k.snapshot(), before);
    assert_eq!(put("https://portal.clinic.in").await.unwrap().status().as_u16(), 200);
    k.stop().await;
}

#[tokio::test]
async fn error_answers_outside_the_handlers_are_json_with_a_documented_code() {
    let k = Kiosk::start().await;
    let cases: Vec<(reqwest::Method, &str, u16, &str)> = vec![
        // Before: 404 with an empty body (the web app's paths had no fallback).
        (reqwest::Method::GET, "/API/HEALTH", 404, "not_found"),
        (reqwest::Method::GET, "/no/such/page", 404, "not_found"),
        (reqwest::Method::POST, "/", 405, "method_not_allowed"),
        (reqwest::Method::DELETE, "/api/health", 405, "method_not_allowed"),
        // axum's WebSocket rejection was plain text.
        (reqwest::Method::GET, "/api/signal", 401, "unauthenticated"),
    ];
    for (method, path, status, code) in cases {
        let resp = k.client.request(method.clone(), k.url(path)).send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{method} {path}");
        let (s, body) = support::server::read(resp).await;
        assert_eq!((s, body["code"].as_str()), (status, Some(code)), "{method} {path}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let t = k.login("asha@clinic.in").await;
    // A logged-in GET without the upgrade headers: axum's rejection, now JSON.
    let resp = k.client.get(k.url("/api/signal")).bearer_auth(&t).send().await.unwrap();
    let (s, body) = support::server::read(resp).await;
    assert!(s == 400 || s == 426, "{s} {body}");
    assert!(body["code"] == "bad_request" || body["code"] == "upgrade_required", "{body}");
    // No HSTS with the self-signed certificate.
    let resp = k.client.get(k.url("/api/health")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
    // The same certificate configured as the clinic's own (`tls.mode = "files"`): HSTS on every answer.
    let own = tempfile::tempdir().unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(k.dir.path().join("tls").join(f), own.path().join(f)).unwrap();
    }
    k.stop().await;
    let (cert, key) = (own.path().join("cert.pem"), own.path().join("key.pem"));
    let k = Kiosk::start_with(|c| {
        c.tls.mode = medimitra::config::TlsMode::Files;
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
    })
    .await;
    for path in ["/api/health", "/", "/nope"] {
        let resp = k.client.get(k.url(path)).send().await.unwrap();
        assert_eq!(resp.headers()["strict-transport-security"], "max-age=31536000", "{path}");
    }
    k.stop().await;
}

#[tokio::test]
async fn staff_log_in_with_a_second_factor_set_up_from_a_qr_code() {
    let k = Kiosk::start_with(|c| {
        c.auth.two_factor_for_technicians = true;
        c.auth.two_factor_for_doctors = true;
    })
    .await;
    k.add_account("Tech Tara", "tara@clinic.in", Role::Technician);
    let doctor = k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let login = |email: &'static str, code: Option<String>| {
        let k = &k;
        async move {
            let mut body = json!({"email": email, "password": PASSWORD});
            if let Some(c) = code {
                body["code"] = json!(c);
            }
            k.post_json("/api/auth/login", None, &body).await
        }
    };
    // Not set up yet: the password lets the technician in, but only as far as the set-up.
    let (status, body) = login("tara@clinic.in", None).await;
    assert_eq!(status, 200, "{body}");
    let t = body["token"].as_str().unwrap().to_string();
    let (status, body) = k.get("/api/accounts", Some(&t)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("two_factor_setup_required")));
    let (_, me) = k.get("/api/users/profile", Some(&t)).await;
    assert_eq!((me["twoFactorRequired"].as_bool(), me["twoFactor"].as_bool()), (Some(true), Some(false)));

    let (status, setup) = k.post_json("/api/auth/2fa/setup", Some(&t), &json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().replace(' ', "");
    assert!(setup["uri"].as_str().unwrap().starts_with("otpauth://totp/Medi-Mitra:tara@clinic.in"));
    assert!(setup["uri"].as_str().unwrap().contains(&format!("secret={secret}")));
    assert!(setup["qrSvg"].as_str().unwrap().starts_with("<svg"));
    let (status, body) = k.post_json("/api/auth/2fa/confirm", Some(&t), &json!({"code": "000000"})).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("wrong_second_factor")));
    let first = support::totp_code(&secret, 0);
    let (status, body) = k.post_json("/api/auth/2fa/confirm", Some(&t), &json!({"code": first})).await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> =
        body["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(k.get("/api/accounts", Some(&t)).await.0, 200);
    // Stored hashed only.
    assert!(!k.snapshot().contains(&recovery[0]));

    // From now on the password alone is not enough; a code works once.
    let (status, body) = login("tara@clinic.in", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("second_factor_required")));
    assert!(body.get("token").is_none());
    let (status, body) = login("tara@clinic.in", Some(first.clone())).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("wrong_second_factor")), "a used code is refused");
    let (status, body) = login("tara@clinic.in", Some(support::totp_code(&secret, 1))).await;
    assert_eq!(status, 200, "the next step's code (clocks may differ by one step): {body}");
    // A recovery code works once, typed loosely.
    let loose = recovery[3].to_uppercase().replace('-', " ");
    assert_eq!(login("tara@clinic.in", Some(loose.clone())).await.0, 200);
    assert_eq!(login("tara@clinic.in", Some(loose)).await.0, 401);
    // The wrong password with a right code is still refused.
    let (status, _) = k
        .post_json(
            "/api/auth/login",
            None,
            &json!({"email": "tara@clinic.in", "password": "wrong password", "code": recovery[4]}),
        )
        .await;
    assert_eq!(status, 401);

    // The clinic's policy covers doctors; a technician resets a doctor's second factor (a lost phone).
    let (_, body) = login("asha@clinic.in", None).await;
    let d = body["token"].as_str().unwrap().to_string();
    assert_eq!(k.get("/api/appointments", Some(&d)).await.1["code"], "two_factor_setup_required");
    let (_, setup) = k.post_json("/api/auth/2fa/setup", Some(&d), &json!({})).await;
    let doctor_secret = setup["secret"].as_str().unwrap().replace(' ', "");
    let code = support::totp_code(&doctor_secret, 0);
    assert_eq!(k.post_json("/api/auth/2fa/confirm", Some(&d), &json!({"code": code})).await.0, 200);
    assert_eq!(k.get("/api/appointments", Some(&d)).await.0, 200);
    let (_, body) = login("tara@clinic.in", Some(recovery[5].clone())).await;
    let t = body["token"].as_str().unwrap().to_string();
    let (status, body) = k.post_json(&format!("/api/accounts/{doctor}/two-factor/reset"), Some(&t), &json!({})).await;
    assert_eq!((status, body["twoFactor"].as_bool()), (200, Some(false)), "{body}");
    assert_eq!(k.get("/api/appointments", Some(&d)).await.0, 401, "the doctor's sessions ended");
    let (status, body) = login("asha@clinic.in", None).await;
    assert_eq!(status, 200, "password only again, until set up anew: {body}");
    k.stop().await;
}
