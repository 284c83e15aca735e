//! The kiosk's network check: can it reach its STUN and TURN servers, how far away are they, does each TURN server
//! give it a relay (a real allocation, released at the end), and how fast does a short packet train come back
//! through that relay (sent to the relay's own address: out over the kiosk's uplink and back over its downlink, so
//! the slower of the two)? Blocking UDP, bounded by a timeout per server; the messages, the rate and the verdict are
//! `core::stun`'s. Used by `medimitra check network` and `GET /api/network-check`. Passwords are never logged or
//! returned.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::IceServer;
use crate::core::stun::{self, Class, LongTermAuth, Method, Reachability, Request};

/// One server URL's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerCheck {
    /// The URL as configured (it holds no secret: credentials are separate fields).
    pub url: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Outcome {
    /// Answered: round trip of the last exchange, the kiosk's address as the server saw it, and for TURN the relay
    /// and the rate a packet train came back through it at (`None` when the relay would not carry it back).
    Reached { rtt_ms: u32, mapped: Option<SocketAddr>, relayed: Option<SocketAddr>, relay_kbps: Option<u32> },
    /// Answered with an error (e.g. 401 for wrong credentials).
    Refused { code: u16, reason: String },
    /// No answer within the time allowed.
    NoAnswer,
    /// Not checked (a TCP or TLS URL, or a name that does not resolve), and why.
    NotChecked { why: String },
}

/// The whole check: every URL's result and the plain verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkCheck {
    pub servers: Vec<ServerCheck>,
    pub verdict: String,
    pub good_for_video: bool,
}

impl Outcome {
    /// The result in words (for `check network` and the technician screen).
    pub fn describe(&self) -> String {
        let addr = |a: &Option<SocketAddr>| a.map_or("?".to_string(), |a| a.to_string());
        match self {
            Outcome::Reached { rtt_ms, mapped, relayed: Some(r), relay_kbps } => {
                let rate = relay_kbps.map_or_else(
                    || "; it carried no probe back".to_string(),
                    |k| format!("; a probe came back through it at {k} kbit/s"),
                );
                format!("relay {r} allocated (and released), {rtt_ms} ms, seen as {}{rate}", addr(mapped))
            }
            Outcome::Reached { rtt_ms, mapped, relayed: None, .. } => {
                format!("answered in {rtt_ms} ms, seen as {}", addr(mapped))
            }
            Outcome::Refused { code, reason } => format!("refused: {code} {reason}"),
            Outcome::NoAnswer => "no answer".into(),
            Outcome::NotChecked { why } => format!("not checked: {why}"),
        }
    }
}

impl NetworkCheck {
    /// One line per server, then the verdict.
    pub fn report(&self) -> String {
        let mut out: String = self.servers.iter().map(|s| format!("{}: {}\n", s.url, s.outcome.describe())).collect();
        out.push_str(&format!("verdict: {}\n", self.verdict));
        out
    }
}

/// Checks every URL of `servers`, each within `timeout`.
pub fn check(servers: &[IceServer], timeout: Duration) -> NetworkCheck {
    let mut results = Vec::new();
    for s in servers {
        for url in &s.urls {
            let outcome = check_url(url.as_str(), s, timeout);
            results.push(ServerCheck { url: url.as_str().to_string(), outcome });
        }
    }
    let answered: Vec<Option<(u32, bool)>> = results
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::NotChecked { .. }))
        .map(|r| match &r.outcome {
            Outcome::Reached { rtt_ms, relayed, .. } => Some((*rtt_ms, relayed.is_some())),
            _ => None,
        })
        .collect();
    let turn_refused = results
        .iter()
        .any(|r| r.url.starts_with("turn") && matches!(r.outcome, Outcome::Refused { code: 401 | 403 | 441, .. }));
    let relay_kbps = results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Reached { relay_kbps, .. } => relay_kbps,
            _ => None,
        })
        .max();
    let verdict = stun::reachability(&answered, turn_refused, relay_kbps);
    NetworkCheck {
        servers: results,
        verdict: verdict.to_string(),
        good_for_video: matches!(verdict, Reachability::GoodForVideo { .. }),
    }
}

fn check_url(url: &str, server: &IceServer, timeout: Duration) -> Outcome {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let (host_port, query) = rest.trim_start_matches("//").split_once('?').unwrap_or((rest, ""));
    if scheme == "stuns" || scheme == "turns" || query.contains("transport=tcp") {
        return Outcome::NotChecked { why: "only UDP servers are checked".into() };
    }
    let with_port = if host_port.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host_port.to_string()
    } else {
        format!("{host_port}:3478")
    };
    let Some(addr) = with_port.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return Outcome::NotChecked { why: format!("{host_port} does not resolve") };
    };
    let socket = match UdpSocket::bind(if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }) {
        Ok(s) => s,
        Err(e) => return Outcome::NotChecked { why: format!("no UDP socket: {e}") },
    };
    if scheme == "stun" {
        return match exchange(&socket, addr, &stun::request(Method::Binding, transaction(), None, None), timeout) {
            Some((_, Class::Success, a, rtt)) => {
                Outcome::Reached { rtt_ms: rtt, mapped: a.mapped, relayed: None, relay_kbps: None }
            }
            Some((_, _, a, _)) => refused(&a),
            None => Outcome::NoAnswer,
        };
    }
    allocate(&socket, addr, server, timeout)
}

/// A TURN allocation: asked without credentials (the server answers 401 with its realm and nonce), then with them
/// (once more on 438 Stale Nonce); released at once with a Refresh of lifetime 0.
fn allocate(socket: &UdpSocket, addr: SocketAddr, server: &IceServer, timeout: Duration) -> Outcome {
    let mut auth: Option<LongTermAuth> = None;
    for _ in 0..3 {
        let req = stun::request(Method::Allocate, transaction(), auth.as_ref(), None);
        let Some((_, class, answer, rtt)) = exchange(socket, addr, &req, timeout) else { return Outcome::NoAnswer };
        if class == Class::Success {
            let mut relay_kbps = None;
            if let Some(a) = &mut auth {
                if let Some(relayed) = answer.relayed {
                    relay_kbps = probe(socket, addr, a, relayed, timeout);
                }
                let release = stun::request(Method::Refresh, transaction(), Some(a), Some(0));
                let _ = exchange(socket, addr, &release, timeout);
            }
            return Outcome::Reached { rtt_ms: rtt, mapped: answer.mapped, relayed: answer.relayed, relay_kbps };
        }
        let asks_for_credentials = matches!(answer.error, Some((401 | 438, _)));
        match (asks_for_credentials, answer.realm.clone(), answer.nonce.clone()) {
            (true, Some(realm), Some(nonce)) if auth.as_ref().is_none_or(|a| a.nonce != nonce) => {
                auth = Some(LongTermAuth {
                    username: server.username.clone().unwrap_or_default(),
                    password: server.credential.clone().unwrap_or_default(),
                    realm,
                    nonce,
                });
            }
            _ => return refused(&answer),
        }
    }
    Outcome::Refused { code: 401, reason: "the credentials were refused".into() }
}

/// Packets in the probe's train and the payload of each: 48 kB, under half a second on a 1 Mbit/s uplink.
const TRAIN: u32 = 40;
const PAYLOAD: usize = 1200;

/// Sends a train of [`TRAIN`] packets through the relay to the relay's own address (a permission for it first;
/// once more with a fresh nonce on 438) and times what comes back: `core::stun::train_rate_kbps`. Waits at most
/// `timeout` for the permission and 1 s after the last packet left. `None` when the server refuses the permission
/// or relays nothing back (some servers refuse peers on their own addresses).
fn probe(
    socket: &UdpSocket,
    server: SocketAddr,
    auth: &mut LongTermAuth,
    relayed: SocketAddr,
    timeout: Duration,
) -> Option<u32> {
    permit(socket, server, auth, relayed, timeout)?;
    // The payload: a tag, the packet's number, and filler, so nothing else arriving is counted.
    let tag: [u8; 8] = rand::random();
    let mut payload = vec![0u8; PAYLOAD];
    payload[..8].copy_from_slice(&tag);
    let start = Instant::now();
    let mut arrivals: Vec<(u64, usize)> = Vec::with_capacity(TRAIN as usize);
    let mut buf = [0u8; 2048];
    let note = |bytes: &[u8], arrivals: &mut Vec<(u64, usize)>| {
        if let Some((from, data)) = stun::parse_data_indication(bytes)
            && from == relayed
            && data.len() == PAYLOAD
            && data[..8] == tag
        {
            let at = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            arrivals.push((at, bytes.len()));
        }
    };
    socket.set_nonblocking(true).ok()?;
    for n in 0..TRAIN {
        payload[8..12].copy_from_slice(&n.to_be_bytes());
        let _ = socket.send_to(&stun::send_indication(transaction(), relayed, &payload), server);
        // What has come back already is timed now, not when the train has left.
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            if from == server {
                note(&buf[..len], &mut arrivals);
            }
        }
    }
    socket.set_nonblocking(false).ok()?;
    let sent = Instant::now();
    while arrivals.len() < TRAIN as usize {
        let Some(left) = (sent + Duration::from_secs(1)).checked_duration_since(Instant::now()) else { break };
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let Ok((len, from)) = socket.recv_from(&mut buf) else { break };
        if from == server {
            note(&buf[..len], &mut arrivals);
        }
    }
    stun::train_rate_kbps(&arrivals)
}

/// A permission for `peer` on the allocation, asked once more with the fresh nonce of a 438 answer.
fn permit(
    socket: &UdpSocket,
    server: SocketAddr,
    auth: &mut LongTermAuth,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<()> {
    for _ in 0..2 {
        let (_, class, answer, _) =
            exchange(socket, server, &stun::create_permission(transaction(), auth, peer), timeout)?;
        if class == Class::Success {
            return Some(());
        }
        match (answer.error, answer.nonce) {
            (Some((438, _)), Some(nonce)) => auth.nonce = nonce,
            _ => return None,
        }
    }
    None
}

fn refused(a: &stun::Answer) -> Outcome {
    let (code, reason) = a.error.clone().unwrap_or((0, "an error without a code".into()));
    Outcome::Refused { code, reason }
}

/// Sends `req` and waits for its answer, resending after 250 ms, 500 ms, … within `timeout`. The round trip is that
/// of the send the answer matched (the last one).
fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    req: &Request,
    timeout: Duration,
) -> Option<(Method, Class, stun::Answer, u32)> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut buf = [0u8; 1500];
    while start.elapsed() < timeout {
        let sent = Instant::now();
        socket.send_to(&req.bytes, to).ok()?;
        let until = (sent + wait).min(start + timeout);
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            socket.set_read_timeout(Some(left)).ok()?;
            let Ok((n, from)) = socket.recv_from(&mut buf) else { break };
            if from != to {
                continue;
            }
            if let Ok((method, class, answer)) = stun::parse_answer(&buf[..n], req) {
                let rtt = u32::try_from(sent.elapsed().as_millis()).unwrap_or(u32::MAX);
                return Some((method, class, answer, rtt));
            }
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    None
}

fn transaction() -> [u8; 12] {
    rand::random()
}
