//! `GET /metrics` over real HTTPS: the Prometheus text parses with an independent parser (crate prometheus-parse)
//! and holds the kiosk's counters and the call's measurements; callers the configuration does not allow are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::metrics::{parse, value};
use support::server::TestServer;

async fn scrape(k: &TestServer, host: &str, token: Option<&str>) -> (u16, String) {
    let url = k.url("/metrics").replace("localhost", host);
    let mut req = k.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kiosk_itself_may_read_the_metrics_and_they_parse() {
    let k = TestServer::start_with_calls(|_| {}).await;
    k.get("/api/health", None).await;
    k.get("/api/nothing-here", None).await;
    let (status, text) = scrape(&k, "localhost", None).await;
    assert_eq!(status, 200, "{text}");
    let m = parse(&text);
    assert_eq!(value(&m, "medimitra_up", None), Some(1.0));
    assert_eq!(value(&m, "medimitra_calls_available", None), Some(1.0));
    assert!(value(&m, "medimitra_http_responses_total", Some(("class", "2xx"))).unwrap() >= 1.0);
    assert!(value(&m, "medimitra_http_responses_total", Some(("class", "4xx"))).unwrap() >= 1.0);
    assert_eq!(value(&m, "medimitra_call_state", Some(("state", "idle"))), Some(1.0));
    assert_eq!(value(&m, "medimitra_calls_ended_total", Some(("reason", "kiosk_stopping"))), Some(0.0));
    for family in ["medimitra_send_fps", "medimitra_send_retransmitted_packets", "medimitra_receive_freezes"] {
        assert!(value(&m, family, None).is_some(), "{family} missing");
    }
    assert!(text.contains("# TYPE medimitra_calls_started_total counter"));
    k.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_machines_are_refused_unless_they_bring_the_token() {
    // The kiosk listens on all addresses; this machine's own non-loopback address stands in for another machine.
    let Some(lan) = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .find(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| i.ip().to_string())
    else {
        panic!("this test needs a non-loopback IPv4 address");
    };
    let k = TestServer::start_with(|c| c.server.listen = "0.0.0.0:0".parse().unwrap()).await;
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let url = k.url("/metrics").replace("localhost", &lan);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403, "localhost access refuses another address");
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["code"], "forbidden");
    k.stop().await;

    let token = "a-metrics-token-of-at-least-32-characters";
    let k = TestServer::start_with(|c| {
        c.server.listen = "0.0.0.0:0".parse().unwrap();
        c.metrics.access = medimitra::config::MetricsAccess::Token;
        c.metrics.token = token.into();
    })
    .await;
    let url = k.url("/metrics").replace("localhost", &lan);
    assert_eq!(client.get(&url).send().await.unwrap().status().as_u16(), 401, "no token");
    assert_eq!(client.get(&url).bearer_auth("wrong").send().await.unwrap().status().as_u16(), 403, "wrong token");
    let ok = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(value(&parse(&ok.text().await.unwrap()), "medimitra_up", None), Some(1.0));
    k.stop().await;

    let k = TestServer::start_with(|c| c.metrics.access = medimitra::config::MetricsAccess::Off).await;
    assert_eq!(scrape(&k, "localhost", None).await.0, 404, "off: no such endpoint");
    k.stop().await;
}
