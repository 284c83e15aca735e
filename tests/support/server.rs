//! A real kiosk server inside the test process, on 127.0.0.1 (port 0) over HTTPS with its own temporary data dir,
//! and a reqwest client that trusts exactly that kiosk's self-signed certificate.

use chrono::{DateTime, Utc};
use medimitra::calls::CallService;
use medimitra::config::Config;
use medimitra::core::{Actor, Language, Role, Sex};
use medimitra::http::{self, AppState, RunningServer};
use medimitra::shutdown::Shutdown;
use medimitra::store::{NewAccount, NewAppointment, NewPatient, Store};
use serde_json::Value;
use std::time::Duration;

use super::PASSWORD;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    server: Option<RunningServer>,
    /// The kiosk's stop signal (what SIGTERM fires in `medimitra serve`).
    pub shutdown: Shutdown,
    /// The call service, when started with calls.
    pub calls: Option<CallService>,
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

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A kiosk whose call service runs on a media engine with test sources (needs a multi-thread runtime).
    pub async fn start_with_calls(tune: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_inner(tune, true).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_inner(tune, false).await
    }

    async fn start_inner(tune: impl FnOnce(&mut Config), with_calls: bool) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        // Tests about other things log technicians in with a password only; the two-factor tests turn it on.
        config.auth.two_factor_for_technicians = false;
        tune(&mut config);
        let store = Store::open_in(dir.path()).expect("store");
        let mut state = AppState::new(store.clone(), config.clone());
        let shutdown = Shutdown::new();
        let mut calls = None;
        if with_calls {
            config.media.video_source = "test".into();
            config.media.audio_source = "test".into();
            config.media.audio_sink = "none".into();
            let engine =
                medimitra::media::MediaEngine::start(&config.media, &config.ice_servers).expect("media engine");
            let service =
                medimitra::calls::spawn(engine, store.clone(), std::sync::Arc::new(config), shutdown.signal());
            state = state.with_calls(service.handle.clone());
            calls = Some(service);
        }
        let server = http::start(state).await.expect("server starts");
        let cert = std::fs::read(server.cert_path.as_ref().expect("TLS on")).expect("cert");
        let base = format!("https://localhost:{}", server.addr.port());
        TestServer { dir, base, client: https_client(&cert), store, server: Some(server), shutdown, calls }
    }

    /// Stops the way `medimitra serve` does on SIGTERM: the call service first, then the sockets, then the listener.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(calls) = self.calls.take() {
            tokio::time::timeout(Duration::from_secs(5), calls.stopped()).await.expect("the call service stops");
        }
        if let Some(s) = self.server.take() {
            s.wait_for_sockets(Duration::from_secs(2)).await;
            s.shutdown(Duration::from_secs(2)).await.expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn add_account(&self, name: &str, email: &str, role: Role) -> i64 {
        let hash = medimitra::credentials::hash_password(PASSWORD).expect("hash");
        let new = NewAccount {
            name: name.into(),
            specialty: "General medicine".into(),
            email: email.into(),
            password_hash: hash,
            role,
        };
        self.store.write_blocking(|db| db.add_account(&new, Actor::Cli, Utc::now())).expect("add account").id
    }

    pub fn add_patient(&self, name: &str) -> i64 {
        let new = NewPatient {
            name: name.into(),
            date_of_birth: None,
            sex: Sex::Female,
            phone: None,
            preferred_language: Language::Hindi,
        };
        self.store.write_blocking(|db| db.add_patient(&new, Actor::Cli, Utc::now())).expect("add patient").id
    }

    pub fn add_appointment(&self, patient_id: i64, doctor_id: i64, starts_at: DateTime<Utc>) -> i64 {
        let new = NewAppointment { patient_id, doctor_id, starts_at, duration_minutes: 15, reason: "fever".into() };
        self.store.write_blocking(|db| db.add_appointment(&new, Actor::Cli, Utc::now())).expect("add appointment").id
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
        for table in medimitra::store::TABLES {
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

/// A client of the kiosk whose connections come from `ip` (any 127.x address reaches the loopback listener), so
/// the kiosk sees many addresses.
pub fn client_from(k: &TestServer, ip: [u8; 4]) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(k.dir.path().join("tls/cert.pem")).unwrap()).unwrap();
    let port = k.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .local_address(std::net::IpAddr::from(ip))
        .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A login attempt: status, error code, `Retry-After`, and the trusted-device cookie if one was set.
pub async fn try_login(
    k: &TestServer,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> (u16, String, Option<u64>, Option<String>) {
    let mut req =
        client.post(k.url("/api/auth/login")).json(&serde_json::json!({"email": email, "password": password}));
    if let Some(d) = device {
        req = req.header("cookie", d);
    }
    let resp = req.send().await.unwrap();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let device = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("mm_device="))
        .map(|c| c.split(';').next().unwrap().to_string());
    let (status, body) = read(resp).await;
    (status, body["code"].as_str().unwrap_or("").to_string(), retry, device)
}
