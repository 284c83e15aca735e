//! The kiosk's HTTPS face: the REST API under `/api`, sessions and the doctor's web app. axum on tokio, TLS by
//! rustls (self-signed on first start, or the configured files). Handlers reach the database only through
//! [`Store`], whose calls run off the async workers.

mod api;
pub mod auth;
mod error;
mod limits;
mod metrics;
mod probe;
mod sessions;
mod signal;
pub mod tls;
mod two_factor;
mod web;

pub use error::ApiError;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, TlsMode};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub limiter: Arc<auth::LoginLimiter>,
    /// Whether the listener speaks TLS (decides the cookie's `Secure` flag).
    pub tls: bool,
    /// The call service; `None` when the kiosk runs without a media engine (then `/api/signal` answers 503).
    pub calls: Option<crate::calls::CallsHandle>,
    /// Signaling sockets open now: at shutdown the server waits for them to deliver their last message.
    pub(crate) open_sockets: Arc<std::sync::atomic::AtomicUsize>,
    /// Signaling sockets by login session, closed when their session ends.
    pub(crate) session_sockets: Arc<sessions::SessionSockets>,
    /// Answers by status class, for `/metrics`.
    pub(crate) http_counters: Arc<metrics::HttpCounters>,
    /// One network-check upload at a time.
    pub(crate) probe_upload: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        let limiter = auth::LoginLimiter::new(config.auth.throttle());
        let tls = config.tls.mode != TlsMode::Off;
        Self {
            store,
            config: Arc::new(config),
            limiter: Arc::new(limiter),
            tls,
            calls: None,
            open_sockets: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            session_sockets: Arc::default(),
            http_counters: Arc::new(metrics::HttpCounters::default()),
            probe_upload: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    pub fn with_calls(mut self, calls: crate::calls::CallsHandle) -> Self {
        self.calls = Some(calls);
        self
    }

    /// A request with no `Origin` (not from a browser page, or same-origin GET) passes; otherwise the origin must be
    /// the kiosk itself (same host as the request) or one of `server.allowed_origins`.
    pub fn origin_allowed(&self, parts: &Parts) -> bool {
        let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let own = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        own == Some(host) || self.config.server.allowed_origins.iter().any(|o| o.as_str() == origin)
    }
}

/// The whole application as a router (also what the tests and the benchmark drive).
pub fn router(state: AppState) -> Router {
    let limit = state.config.server.max_body_bytes;
    let counters = state.http_counters.clone();
    // Strict-Transport-Security only with a certificate browsers trust (a clinic's own, `tls.mode = "files"`):
    // with the self-signed one it would pin browsers to a certificate they were told to accept once.
    let hsts = state.config.tls.mode == TlsMode::Files;
    Router::new()
        .route("/api/signal", axum::routing::get(signal::upgrade))
        .route("/metrics", axum::routing::get(metrics::metrics))
        // Its own body limit: a network check sends more than any API body.
        .route(
            "/api/network-probe",
            axum::routing::get(probe::download).post(probe::upload).layer(DefaultBodyLimit::max(probe::MAX_BYTES)),
        )
        .nest("/api", api::routes())
        .merge(web::routes())
        .fallback(|| async { ApiError::not_found("page") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(crate::core::ErrorCode::MethodNotAllowed, "this page does not take that method")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(move |req, next| security_headers(req, next, hsts)))
        .layer(middleware::from_fn(move |req: axum::extract::Request, next: Next| {
            let counters = counters.clone();
            async move {
                let resp = next.run(req).await;
                counters.count(resp.status());
                resp
            }
        }))
        .with_state(state)
}

async fn security_headers(req: axum::extract::Request, next: Next, hsts: bool) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if is_api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    resp
}

/// A server that is listening.
pub struct RunningServer {
    /// The address actually bound (port 0 in the config becomes a real port here).
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// SHA-256 fingerprint of the certificate, when TLS is on.
    pub fingerprint: Option<String>,
    /// The certificate file, when TLS is on.
    pub cert_path: Option<std::path::PathBuf>,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    open_sockets: Arc<std::sync::atomic::AtomicUsize>,
}

impl RunningServer {
    /// Stops accepting, lets open requests finish (up to `grace`), and waits for the listener to end.
    pub async fn shutdown(self, grace: Duration) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the listener ends on its own (an IO error) .
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    pub fn handle(&self) -> axum_server::Handle {
        self.handle.clone()
    }

    /// Waits (up to `limit`) until every signaling socket has closed: after the call service stops, each socket
    /// sends its last messages and a close frame on its own task, which the listener's shutdown does not wait for.
    pub async fn wait_for_sockets(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.open_sockets.load(std::sync::atomic::Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Binds the listener from `config` and serves `state` on it.
pub async fn start(state: AppState) -> Result<RunningServer, HttpError> {
    let config = state.config.clone();
    let open_sockets = state.open_sockets.clone();
    let addr = config.server.listen;
    let tls = tls::load(&config)?;
    // Bind here, so a busy port is an error now, not a log line later.
    let listener = std::net::TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
    listener.set_nonblocking(true).map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| HttpError::Bind { addr, source })?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    match limits::raise_open_files_limit() {
        Some(files) if (files as usize) < config.server.max_connections + 256 => tracing::warn!(
            files,
            max_connections = config.server.max_connections,
            "the open-files limit is below the connection cap: raise LimitNOFILE"
        ),
        _ => {}
    }
    let capped = limits::ConnectionCap::new(
        limits::ShortBackoff(axum_server::accept::DefaultAcceptor),
        config.server.max_connections,
    );
    let mut server = axum_server::from_tcp(listener).handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits::REQUEST_HEAD_TIMEOUT);
    let (scheme, fingerprint, cert_path, task) = match tls {
        Some(material) => {
            let rustls_config = axum_server::tls_rustls::RustlsConfig::from_config(material.server_config);
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config)
                .handshake_timeout(limits::HANDSHAKE_TIMEOUT)
                .acceptor(capped);
            let server = server.acceptor(acceptor);
            ("https", Some(material.fingerprint), Some(material.cert_path), tokio::spawn(server.serve(app)))
        }
        None => ("http", None, None, tokio::spawn(server.acceptor(capped).serve(app))),
    };
    Ok(RunningServer { addr: bound, scheme, fingerprint, cert_path, handle, task, open_sockets })
}
