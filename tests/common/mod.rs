//! Shared test harness: a real kiosk server on 127.0.0.1 over HTTPS with its own temporary data dir, and a reqwest
//! client that trusts exactly that kiosk's self-signed certificate.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use medimitra::config::Config;
use medimitra::core::{Language, Role, Sex};
use medimitra::http::{self, AppState, RunningServer};
use medimitra::store::{NewAppointment, NewDoctor, NewPatient, Store};
use serde_json::Value;
use std::time::Duration;

pub const PASSWORD: &str = "correct horse battery";

pub struct Kiosk {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    server: Option<RunningServer>,
}

/// A child process (a running `medimitra serve`) killed and reaped when the test lets go of it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn https_client(cert_pem: &[u8]) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem).expect("certificate PEM");
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

impl Kiosk {
    pub async fn start() -> Kiosk {
        Self::start_with(|_| {}).await
    }

    /// A kiosk whose call service runs on a media engine with test sources (needs a multi-thread runtime).
    pub async fn start_with_calls(tune: impl FnOnce(&mut Config)) -> Kiosk {
        Self::start_inner(tune, true).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Kiosk {
        Self::start_inner(tune, false).await
    }

    async fn start_inner(tune: impl FnOnce(&mut Config), calls: bool) -> Kiosk {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        tune(&mut config);
        let store = Store::open_in(dir.path()).expect("store");
        let mut state = AppState::new(store.clone(), config.clone());
        if calls {
            config.media.video_source = "test".into();
            config.media.audio_source = "test".into();
            config.media.audio_sink = "none".into();
            let engine =
                medimitra::media::MediaEngine::start(&config.media, &config.ice_servers).expect("media engine");
            state = state.with_calls(medimitra::calls::spawn(engine, store.clone(), std::sync::Arc::new(config)));
        }
        let server = http::start(state).await.expect("server starts");
        let cert = std::fs::read(server.cert_path.as_ref().expect("TLS on")).expect("cert");
        let base = format!("https://localhost:{}", server.addr.port());
        Kiosk { dir, base, client: https_client(&cert), store, server: Some(server) }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_secs(2)).await.expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn add_account(&self, name: &str, email: &str, role: Role) -> i64 {
        let hash = http::auth::hash_password(PASSWORD).expect("hash");
        let new = NewDoctor {
            name: name.into(),
            specialty: "General medicine".into(),
            email: email.into(),
            password_hash: hash,
            role,
        };
        self.store.write_blocking(|db| db.add_doctor(&new, Utc::now())).expect("add account").id
    }

    pub fn add_patient(&self, name: &str) -> i64 {
        let new = NewPatient {
            name: name.into(),
            date_of_birth: None,
            sex: Sex::Female,
            phone: None,
            preferred_language: Language::Hindi,
        };
        self.store.write_blocking(|db| db.add_patient(&new, Utc::now())).expect("add patient").id
    }

    pub fn add_appointment(&self, patient_id: i64, doctor_id: i64, starts_at: DateTime<Utc>) -> i64 {
        let new = NewAppointment { patient_id, doctor_id, starts_at, duration_minutes: 15, reason: "fever".into() };
        self.store.write_blocking(|db| db.add_appointment(&new, Utc::now())).expect("add appointment").id
    }

    /// Logs in and returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let (status, body) =
            self.post_json("/api/auth/login", None, &serde_json::json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(status, 200, "login of {email}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send_raw(reqwest::Method::POST, path, token, body.to_string()).await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send_raw(reqwest::Method::PUT, path, token, body.to_string()).await
    }

    /// Sends `body` as-is with a JSON content type (for malformed input).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: String,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path)).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    /// Every row of every table, as text: equal snapshots mean an unchanged database.
    pub fn snapshot(&self) -> String {
        let conn = rusqlite::Connection::open(self.store.path()).expect("open");
        let mut out = String::new();
        for table in ["doctors", "patients", "appointments", "call_records", "sessions", "audit_log"] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).expect("prepare");
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("query");
            for row in rows {
                out.push_str(&format!("{table}: {}\n", row.expect("row").join("|")));
            }
        }
        out
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}
