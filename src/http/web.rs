//! The doctor's web app: static files from `ui/web/`, compiled into the binary so the kiosk needs no network and no
//! files beside itself to serve it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!("../../ui/web/index.html");
const APP_JS: &str = include_str!("../../ui/web/app.js");
const STYLE: &str = include_str!("../../ui/web/style.css");
/// pdf.js (pdfjs-dist 6.5.438, legacy build; `ui/web/vendor/pdfjs/README.md`): the page loads it only to show a PDF
/// page to the patient.
const PDF_JS: &str = include_str!("../../ui/web/vendor/pdfjs/pdf.min.mjs");
const PDF_WORKER_JS: &str = include_str!("../../ui/web/vendor/pdfjs/pdf.worker.min.mjs");

/// Scripts and styles only from the kiosk itself; media and sockets to it; nothing framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self' wss:; frame-ancestors 'none'; base-uri 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/style.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/vendor/pdf.min.mjs", get(|| async { asset(PDF_JS, "text/javascript; charset=utf-8") }))
        .route("/vendor/pdf.worker.min.mjs", get(|| async { asset(PDF_WORKER_JS, "text/javascript; charset=utf-8") }))
}
