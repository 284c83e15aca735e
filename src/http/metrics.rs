//! `GET /metrics`: the kiosk's counters and the running call's media in Prometheus' text format (version 0.0.4),
//! for a technician's dashboards. Who may read it is configured (`metrics.access`): requests from the kiosk itself
//! (a local agent), a bearer token, or nobody. Patient and doctor names never appear; only counts and measurements.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::AppState;
use super::error::ApiError;
use crate::config::MetricsAccess;
use crate::core::ErrorCode;

/// Answers counted by status class, for `medimitra_http_responses_total`.
#[derive(Debug, Default)]
pub struct HttpCounters {
    by_class: [AtomicU64; 5],
}

impl HttpCounters {
    pub fn count(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn metrics(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = &s.config.metrics;
    match m.access {
        MetricsAccess::Off => return Err(ApiError::not_found("API endpoint")),
        MetricsAccess::Localhost if !peer.ip().is_loopback() => {
            return Err(ApiError::forbidden("the metrics are served to the kiosk itself only (metrics.access)"));
        }
        MetricsAccess::Token => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let Some(given) = given else {
                return Err(ApiError::new(ErrorCode::Unauthenticated, "send the metrics token as a bearer token"));
            };
            if !same(given.as_bytes(), m.token.as_bytes()) {
                return Err(ApiError::forbidden("wrong metrics token"));
            }
        }
        MetricsAccess::Localhost => {}
    }
    let mut body = render(&s);
    body.push('\n');
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One metric family: its help, type and samples (`labels` like `reason="declined"`, or empty).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

fn one(v: f64) -> Vec<(String, f64)> {
    vec![(String::new(), v)]
}

fn render(s: &AppState) -> String {
    let mut out = String::new();
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let http: Vec<(String, f64)> = classes
        .iter()
        .zip(&s.http_counters.by_class)
        .map(|(c, n)| (format!("class=\"{c}\""), n.load(Ordering::Relaxed) as f64))
        .collect();
    family(&mut out, "medimitra_http_responses_total", "counter", "HTTP answers by status class.", &http);
    family(&mut out, "medimitra_up", "gauge", "1 while the kiosk serves.", &one(1.0));
    let Some(calls) = &s.calls else {
        family(&mut out, "medimitra_calls_available", "gauge", "1 when the media engine runs.", &one(0.0));
        return out;
    };
    family(&mut out, "medimitra_calls_available", "gauge", "1 when the media engine runs.", &one(1.0));
    let c = calls.counters();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(&mut out, "medimitra_calls_started_total", "counter", "Calls that rang the kiosk.", &one(load(&c.started)));
    let ended: Vec<(String, f64)> =
        c.ended_by_reason().into_iter().map(|(r, n)| (format!("reason=\"{r}\""), n as f64)).collect();
    family(&mut out, "medimitra_calls_ended_total", "counter", "Calls ended, by reason.", &ended);
    family(
        &mut out,
        "medimitra_media_sessions_started_total",
        "counter",
        "Media sessions started.",
        &one(load(&c.sessions_started)),
    );
    family(
        &mut out,
        "medimitra_media_sessions_failed_total",
        "counter",
        "Media sessions that failed.",
        &one(load(&c.sessions_failed)),
    );
    family(
        &mut out,
        "medimitra_media_interruptions_total",
        "counter",
        "Times the doctor's media stopped arriving.",
        &one(load(&c.interruptions)),
    );

    let st = calls.status();
    let states: Vec<(String, f64)> = crate::core::CallState::ALL
        .iter()
        .map(|state| (format!("state=\"{state}\""), if *state == st.call { 1.0 } else { 0.0 }))
        .collect();
    family(&mut out, "medimitra_call_state", "gauge", "1 for the kiosk's call state now.", &states);
    let tx = &st.sending;
    let rx = &st.receiving;
    let gauges: [(&str, &str, f64); 16] = [
        ("medimitra_send_fps", "Frames per second the encoder puts out.", tx.fps),
        ("medimitra_send_width_pixels", "Width of the picture sent.", f64::from(tx.width)),
        ("medimitra_send_height_pixels", "Height of the picture sent.", f64::from(tx.height)),
        (
            "medimitra_send_bitrate_kbps",
            "Video bitrate sent, retransmissions and FEC included.",
            f64::from(tx.bitrate_kbps),
        ),
        ("medimitra_send_target_kbps", "Video bitrate congestion control allows.", f64::from(tx.target_kbps)),
        (
            "medimitra_send_loss_percent",
            "Loss of the kiosk's packets as the doctor's browser reports it.",
            tx.loss_percent,
        ),
        (
            "medimitra_send_rtt_seconds",
            "Round trip to the doctor's browser.",
            tx.rtt_ms.map_or(0.0, |ms| f64::from(ms) / 1000.0),
        ),
        ("medimitra_send_fec_percent", "ULPFEC protection of the video.", f64::from(tx.fec_percent)),
        ("medimitra_send_retransmitted_packets", "Packets retransmitted in this media session.", tx.rtx_packets as f64),
        (
            "medimitra_send_nacks_received",
            "Retransmission requests received in this media session.",
            tx.nacks_received as f64,
        ),
        ("medimitra_send_plis_received", "Keyframe requests received in this media session.", tx.plis_received as f64),
        ("medimitra_receive_fps", "Frames per second of the doctor's video decoded.", rx.fps),
        ("medimitra_receive_loss_percent", "Loss of the doctor's video packets before repair.", rx.loss_percent),
        ("medimitra_receive_nacks_sent", "Retransmission requests sent in this media session.", rx.nacks_sent as f64),
        ("medimitra_receive_freezes", "Freezes of the doctor's video in this media session.", rx.freeze_count as f64),
        ("medimitra_receive_freeze_seconds", "Time the doctor's video froze in this media session.", rx.freeze_seconds),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help, &one(value));
    }
    let limits: Vec<(String, f64)> = crate::core::adaptation::LimitReason::ALL
        .iter()
        .map(|l| (format!("reason=\"{l}\""), if tx.limit == Some(*l) { 1.0 } else { 0.0 }))
        .collect();
    family(&mut out, "medimitra_send_limited", "gauge", "1 for why the picture sent is limited now.", &limits);
    out
}
