//! The HTTPS API driven by a real rustls client against a real server and a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{Duration, Local, TimeZone, Utc};
use medimitra::core::{Actor, Role};
use serde_json::{Value, json};
use support::PASSWORD;
use support::server::TestServer as Kiosk;

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
    assert_eq!(body["schemaVersion"], 3);
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
async fn logins_are_rate_limited_per_account_and_per_address() {
    let k = Kiosk::start_with(|c| {
        c.auth.max_failures_per_account = 3;
        c.auth.max_attempts_per_address = 8;
    })
    .await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    k.add_account("Dr. Vikram Sen", "vikram@clinic.in", Role::Doctor);
    let login = |email: &'static str, password: &'static str| {
        let k = &k;
        async move { k.post_json("/api/auth/login", None, &json!({"email": email, "password": password})).await }
    };
    for _ in 0..3 {
        assert_eq!(login("asha@clinic.in", "wrong password").await.0, 401);
    }
    // Locked: even the right password is refused now, with a time to wait.
    let resp = k
        .client
        .post(k.url("/api/auth/login"))
        .json(&json!({"email": "asha@clinic.in", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 15 * 60 + 1, "{wait}");
    let (_, body) = support::server::read(resp).await;
    assert_eq!(body["code"], "too_many_attempts");
    // Another account from the same address still works (3 failures + 1 refusal + this = 5 of 8 attempts).
    assert_eq!(login("vikram@clinic.in", PASSWORD).await.0, 200);
    assert_eq!(login("vikram@clinic.in", PASSWORD).await.0, 200);
    assert_eq!(login("vikram@clinic.in", "wrong password").await.0, 401);
    assert_eq!(login("vikram@clinic.in", PASSWORD).await.0, 200);
    // The address has used its 8 attempts.
    let (s, b) = login("vikram@clinic.in", PASSWORD).await;
    assert_eq!((s, b["code"].as_str()), (429, Some("too_many_attempts")));
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
