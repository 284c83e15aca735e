//! STUN and TURN messages for the kiosk's network check (RFC 5389 / 8489 framing, RFC 5766 / 8656 Allocate,
//! Refresh and CreatePermission with long-term credentials, Send and Data indications): requests built, answers
//! read, and the rate of a packet train sent through the relay. Pure: no sockets, no clock. Only what the check
//! needs: XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, XOR-PEER-ADDRESS, DATA, ERROR-CODE, REALM, NONCE;
//! MESSAGE-INTEGRITY (HMAC-SHA1) on what it sends. Answers are parsed defensively and never trusted for lengths.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;

/// A STUN method the check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Binding = 0x001,
    Allocate = 0x003,
    Refresh = 0x004,
    Send = 0x006,
    Data = 0x007,
    CreatePermission = 0x008,
}

/// Request, indication, success or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

mod attr {
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
}

/// Long-term credentials (RFC 8489 section 9.2) with the realm and nonce the server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongTermAuth {
    pub username: String,
    pub password: String,
    pub realm: String,
    pub nonce: String,
}

impl LongTermAuth {
    /// The HMAC key: MD5(username ":" realm ":" password).
    fn key(&self) -> [u8; 16] {
        use md5::{Digest, Md5};
        let digest = Md5::digest(format!("{}:{}:{}", self.username, self.realm, self.password).as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest);
        key
    }
}

/// A request to send: its bytes and transaction id (to match the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub bytes: Vec<u8>,
    pub transaction: [u8; 12],
}

fn message_type(method: Method, class: Class) -> u16 {
    let m = method as u16;
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::Success => 0b10,
        Class::Error => 0b11,
    };
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

fn split_type(t: u16) -> Option<(Method, Class)> {
    let m = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let c = ((t >> 4) & 1) | ((t >> 7) & 2);
    let method = match m {
        0x001 => Method::Binding,
        0x003 => Method::Allocate,
        0x004 => Method::Refresh,
        0x006 => Method::Send,
        0x007 => Method::Data,
        0x008 => Method::CreatePermission,
        _ => return None,
    };
    let class = match c {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::Success,
        0b11 => Class::Error,
        _ => return None,
    };
    Some((method, class))
}

fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
}

fn set_length(out: &mut [u8], attributes_len: usize) {
    out[2..4].copy_from_slice(&(attributes_len as u16).to_be_bytes());
}

/// Builds a request. Allocate asks for a UDP relay; Refresh carries `lifetime` (0 releases the allocation). With
/// `auth`, USERNAME, REALM, NONCE and MESSAGE-INTEGRITY are added.
pub fn request(method: Method, transaction: [u8; 12], auth: Option<&LongTermAuth>, lifetime: Option<u32>) -> Request {
    build(method, transaction, auth, lifetime, None)
}

/// A CreatePermission request: lets packets from `peer`'s address through the allocation (and lets the kiosk send
/// to it).
pub fn create_permission(transaction: [u8; 12], auth: &LongTermAuth, peer: SocketAddr) -> Request {
    build(Method::CreatePermission, transaction, Some(auth), None, Some(peer))
}

/// A Send indication: `data` to be relayed to `peer` (no integrity: indications carry none).
pub fn send_indication(transaction: [u8; 12], peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut out = header(Method::Send, Class::Indication, &transaction);
    push_attr(&mut out, attr::XOR_PEER_ADDRESS, &encode_xor_address(peer, &transaction));
    push_attr(&mut out, attr::DATA, data);
    let len = out.len() - HEADER;
    set_length(&mut out, len);
    out
}

/// A Data indication's peer and payload (what the relay received from `peer`), or `None` for anything else.
pub fn parse_data_indication(bytes: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let body = framed(bytes).ok()?;
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    if split_type(kind)? != (Method::Data, Class::Indication) {
        return None;
    }
    let transaction: [u8; 12] = bytes[8..20].try_into().ok()?;
    let (mut peer, mut data) = (None, None);
    for (t, value) in attributes(body).ok()? {
        match t {
            attr::XOR_PEER_ADDRESS => peer = xor_address(value, &transaction),
            attr::DATA => data = Some(value),
            _ => {}
        }
    }
    Some((peer?, data?))
}

fn header(method: Method, class: Class, transaction: &[u8; 12]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1200);
    out.extend_from_slice(&message_type(method, class).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction);
    out
}

fn build(
    method: Method,
    transaction: [u8; 12],
    auth: Option<&LongTermAuth>,
    lifetime: Option<u32>,
    peer: Option<SocketAddr>,
) -> Request {
    let mut out = header(method, Class::Request, &transaction);
    if method == Method::Allocate {
        push_attr(&mut out, attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    }
    if let Some(secs) = lifetime {
        push_attr(&mut out, attr::LIFETIME, &secs.to_be_bytes());
    }
    if let Some(p) = peer {
        push_attr(&mut out, attr::XOR_PEER_ADDRESS, &encode_xor_address(p, &transaction));
    }
    if let Some(a) = auth {
        push_attr(&mut out, attr::USERNAME, a.username.as_bytes());
        push_attr(&mut out, attr::REALM, a.realm.as_bytes());
        push_attr(&mut out, attr::NONCE, a.nonce.as_bytes());
        // The HMAC covers the message up to the attribute, with the length already counting it (24 bytes).
        let with_integrity = out.len() - HEADER + 24;
        set_length(&mut out, with_integrity);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &a.key());
        let tag = ring::hmac::sign(&key, &out);
        push_attr(&mut out, attr::MESSAGE_INTEGRITY, tag.as_ref());
    }
    let len = out.len() - HEADER;
    set_length(&mut out, len);
    Request { bytes: out, transaction }
}

/// What an answer says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub mapped: Option<SocketAddr>,
    pub relayed: Option<SocketAddr>,
    /// The error code and reason of an error answer (e.g. 401 "Unauthorized", 438 "Stale Nonce").
    pub error: Option<(u16, String)>,
    pub realm: Option<String>,
    pub nonce: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StunError {
    #[error("not a STUN message ({0})")]
    NotStun(&'static str),
    #[error("an answer to another request")]
    OtherTransaction,
    #[error("a STUN message the check did not ask for")]
    Unexpected,
}

/// The attributes of a STUN message, checked for framing: the header's length and each attribute's.
fn framed(bytes: &[u8]) -> Result<&[u8], StunError> {
    if bytes.len() < HEADER {
        return Err(StunError::NotStun("shorter than a header"));
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if kind & 0xC000 != 0 || bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun("no magic cookie"));
    }
    if length % 4 != 0 || HEADER + length > bytes.len() {
        return Err(StunError::NotStun("length"));
    }
    Ok(&bytes[HEADER..HEADER + length])
}

/// Splits attributes into (type, value), refusing any whose length runs past the message.
fn attributes(mut rest: &[u8]) -> Result<Vec<(u16, &[u8])>, StunError> {
    let mut out = Vec::new();
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let padded = len + (4 - len % 4) % 4;
        if rest.len() < 4 + padded {
            return Err(StunError::NotStun("attribute length"));
        }
        out.push((t, &rest[4..4 + len]));
        rest = &rest[4 + padded..];
    }
    Ok(out)
}

/// Reads the answer to `request` (a method's success or error), or says why it is not one.
pub fn parse_answer(bytes: &[u8], request: &Request) -> Result<(Method, Class, Answer), StunError> {
    let body = framed(bytes)?;
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    if bytes[8..20] != request.transaction {
        return Err(StunError::OtherTransaction);
    }
    let (method, class) = split_type(kind).ok_or(StunError::Unexpected)?;
    if class == Class::Request || class == Class::Indication {
        return Err(StunError::Unexpected);
    }
    let mut answer = Answer::default();
    for (t, value) in attributes(body)? {
        let text = || Some(String::from_utf8_lossy(value).into_owned());
        match t {
            attr::XOR_MAPPED_ADDRESS => answer.mapped = xor_address(value, &request.transaction),
            attr::XOR_RELAYED_ADDRESS => answer.relayed = xor_address(value, &request.transaction),
            attr::REALM => answer.realm = text(),
            attr::NONCE => answer.nonce = text(),
            attr::ERROR_CODE if value.len() >= 4 => {
                let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
                answer.error = Some((code, String::from_utf8_lossy(&value[4..]).into_owned()));
            }
            _ => {}
        }
    }
    Ok((method, class, answer))
}

fn encode_xor_address(addr: SocketAddr, transaction: &[u8; 12]) -> Vec<u8> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = (addr.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            [vec![0, 1], port.to_vec(), (0..4).map(|i| o[i] ^ cookie[i]).collect()].concat()
        }
        IpAddr::V6(ip) => {
            let o = ip.octets();
            let mask: Vec<u8> = cookie.iter().chain(transaction.iter()).copied().collect();
            [vec![0, 2], port.to_vec(), (0..16).map(|i| o[i] ^ mask[i]).collect()].concat()
        }
    }
}

/// The rate a packet train came through at, in kbit/s: the bytes that arrived after the first, over the time from
/// the first arrival to the last (the spacing the narrowest link on the way gave them). `arrivals`: each received
/// packet's arrival in microseconds from any fixed point and its size in bytes, in arrival order. `None` with fewer
/// than 5 packets or no measurable spread: too little to say anything.
pub fn train_rate_kbps(arrivals: &[(u64, usize)]) -> Option<u32> {
    if arrivals.len() < 5 {
        return None;
    }
    let (first, last) = (arrivals.first()?.0, arrivals.last()?.0);
    let spread_us = last.checked_sub(first).filter(|d| *d > 0)?;
    let bits: u64 = arrivals[1..].iter().map(|(_, bytes)| *bytes as u64 * 8).sum();
    u32::try_from(bits * 1000 / spread_us).ok()
}

fn xor_address(value: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let ip = match value.get(1)? {
        0x01 => {
            let a: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(std::array::from_fn::<u8, 4, _>(|i| a[i] ^ cookie[i])))
        }
        0x02 => {
            let a: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            let mask: Vec<u8> = cookie.iter().chain(transaction.iter()).copied().collect();
            IpAddr::V6(Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(|i| a[i] ^ mask[i])))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The kiosk's plain verdict on its STUN/TURN reachability, from the best round trip of the servers that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// No STUN or TURN server configured: only doctors on the clinic's own network can call.
    NothingConfigured,
    /// None answered: a doctor outside the clinic's network cannot reach the kiosk.
    CannotReach,
    /// Answered, but slowly, or the probe through the relay came back slow: a call may stutter.
    AudioOnlyRecommended {
        rtt_ms: u32,
        kbps: Option<u32>,
    },
    /// A TURN server answered but refused the kiosk's credentials: doctors behind strict NATs cannot call.
    TurnRefused,
    GoodForVideo {
        rtt_ms: u32,
        relay: bool,
        kbps: Option<u32>,
    },
}

/// Above this round trip to the servers a video call is likely to stutter (the rural links the kiosk is made for
/// run 50-300 ms).
const SLOW_RTT_MS: u32 = 400;

/// Below this rate through the relay video cannot hold even its smallest picture (the ladder's 320×180 at ~200
/// kbit/s, with audio and overhead).
const VIDEO_MIN_KBPS: u32 = 300;

/// `answered`: each checked server's round trip and whether it gave a relay (`None`: no answer or refused);
/// `turn_refused`: a TURN server refused the credentials (a configuration to fix, whatever else answered);
/// `relay_kbps`: the best rate a packet train came back through a relay at, when one was measured.
pub fn reachability(answered: &[Option<(u32, bool)>], turn_refused: bool, relay_kbps: Option<u32>) -> Reachability {
    if answered.is_empty() {
        return Reachability::NothingConfigured;
    }
    if turn_refused {
        return Reachability::TurnRefused;
    }
    let best = answered.iter().flatten().min_by_key(|(rtt, relay)| (*rtt, !*relay));
    match best {
        None => Reachability::CannotReach,
        Some(&(rtt_ms, _)) if rtt_ms > SLOW_RTT_MS || relay_kbps.is_some_and(|k| k < VIDEO_MIN_KBPS) => {
            Reachability::AudioOnlyRecommended { rtt_ms, kbps: relay_kbps }
        }
        Some(&(rtt_ms, _)) => {
            Reachability::GoodForVideo { rtt_ms, relay: answered.iter().flatten().any(|a| a.1), kbps: relay_kbps }
        }
    }
}

fn rate(kbps: Option<u32>) -> String {
    match kbps {
        Some(k) if k >= 1000 => format!(", about {:.1} Mbit/s through the relay", f64::from(k) / 1000.0),
        Some(k) => format!(", about {k} kbit/s through the relay"),
        None => String::new(),
    }
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reachability::NothingConfigured => {
                f.write_str("no STUN or TURN server configured: only doctors on the clinic's network can call")
            }
            Reachability::CannotReach => f.write_str(
                "cannot reach any STUN or TURN server: doctors outside the clinic's network cannot call; check the \
                 internet connection and the ice_servers in the configuration",
            ),
            Reachability::TurnRefused => f.write_str(
                "the TURN server refused the kiosk's credentials: check username and credential in ice_servers \
                 (doctors behind strict NATs cannot call until then)",
            ),
            Reachability::AudioOnlyRecommended { rtt_ms, kbps } => {
                write!(f, "audio only recommended: {rtt_ms} ms to the nearest server{}", rate(*kbps))
            }
            Reachability::GoodForVideo { rtt_ms, relay, kbps } => write!(
                f,
                "good for video: {rtt_ms} ms to the nearest server{}{}",
                rate(*kbps),
                if *relay {
                    ", a TURN relay is available"
                } else {
                    " (no TURN relay: doctors behind strict NATs may fail)"
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn answer(kind: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&TID);
        for (t, v) in attrs {
            push_attr(&mut out, *t, v);
        }
        let len = out.len() - HEADER;
        set_length(&mut out, len);
        out
    }

    #[test]
    fn message_types_follow_the_rfc_bit_layout() {
        assert_eq!(message_type(Method::Binding, Class::Request), 0x0001);
        assert_eq!(message_type(Method::Binding, Class::Success), 0x0101);
        assert_eq!(message_type(Method::Allocate, Class::Error), 0x0113);
        assert_eq!(message_type(Method::Refresh, Class::Success), 0x0104);
        assert_eq!(split_type(0x0113), Some((Method::Allocate, Class::Error)));
    }

    #[test]
    fn an_authenticated_allocate_carries_its_integrity_last_and_a_length_that_covers_it() {
        let auth = LongTermAuth {
            username: "kiosk".into(),
            password: "secret".into(),
            realm: "medimitra.test".into(),
            nonce: "abc".into(),
        };
        let r = request(Method::Allocate, TID, Some(&auth), None);
        let len = usize::from(u16::from_be_bytes([r.bytes[2], r.bytes[3]]));
        assert_eq!(len + HEADER, r.bytes.len());
        let mi = r.bytes.len() - 24;
        assert_eq!(&r.bytes[mi..mi + 4], &[0x00, 0x08, 0x00, 0x14]);
        // The HMAC is over everything before it, with the length as sent.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth.key());
        assert!(ring::hmac::verify(&key, &r.bytes[..mi], &r.bytes[mi + 4..]).is_ok());
        // MD5("kiosk:medimitra.test:secret"), as Python's hashlib gives it.
        assert_eq!(hex::encode(auth.key()), "c9f3cfd04b03774f99dab6851079fac7");
    }

    #[test]
    fn addresses_errors_realm_and_nonce_are_read_back() {
        let r = request(Method::Allocate, TID, None, None);
        let port = 50_123u16 ^ 0x2112;
        let ip: Vec<u8> = [10u8, 0, 0, 7].iter().zip(MAGIC_COOKIE.to_be_bytes()).map(|(a, c)| a ^ c).collect();
        let xaddr = [vec![0, 1], port.to_be_bytes().to_vec(), ip].concat();
        let ok = answer(0x0103, &[(attr::XOR_RELAYED_ADDRESS, xaddr.clone()), (attr::XOR_MAPPED_ADDRESS, xaddr)]);
        let (method, class, a) = parse_answer(&ok, &r).unwrap();
        assert_eq!((method, class), (Method::Allocate, Class::Success));
        assert_eq!(a.relayed, Some("10.0.0.7:50123".parse().unwrap()));
        assert_eq!(a.mapped, a.relayed);
        let err = answer(
            0x0113,
            &[
                (attr::ERROR_CODE, [vec![0, 0, 4, 1], b"Unauthorized".to_vec()].concat()),
                (attr::REALM, b"medimitra.test".to_vec()),
                (attr::NONCE, b"n0nce".to_vec()),
            ],
        );
        let (_, class, a) = parse_answer(&err, &r).unwrap();
        assert_eq!(class, Class::Error);
        assert_eq!(a.error, Some((401, "Unauthorized".into())));
        assert_eq!((a.realm.as_deref(), a.nonce.as_deref()), (Some("medimitra.test"), Some("n0nce")));
    }

    #[test]
    fn garbage_truncation_and_other_transactions_are_refused_without_panic() {
        let r = request(Method::Binding, TID, None, None);
        assert!(parse_answer(&[0u8; 5], &r).is_err());
        let mut other = answer(0x0101, &[]);
        other[8] ^= 0xFF;
        assert_eq!(parse_answer(&other, &r), Err(StunError::OtherTransaction));
        let mut lying = answer(0x0101, &[(attr::REALM, b"x".to_vec())]);
        lying[22..24].copy_from_slice(&200u16.to_be_bytes()); // an attribute longer than the message
        assert!(parse_answer(&lying, &r).is_err());
        let mut seed = 7u32;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(seed % 64) as usize)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = parse_answer(&bytes, &r);
        }
    }

    #[test]
    fn the_verdict_takes_the_best_server_and_says_what_to_do() {
        assert_eq!(reachability(&[], false, None), Reachability::NothingConfigured);
        assert_eq!(reachability(&[None, None], false, None), Reachability::CannotReach);
        assert_eq!(
            reachability(&[None, Some((520, true))], false, None),
            Reachability::AudioOnlyRecommended { rtt_ms: 520, kbps: None }
        );
        assert_eq!(
            reachability(&[Some((80, false)), Some((95, true))], false, Some(1800)),
            Reachability::GoodForVideo { rtt_ms: 80, relay: true, kbps: Some(1800) }
        );
        assert!(reachability(&[Some((80, false))], false, None).to_string().contains("no TURN relay"));
        assert_eq!(reachability(&[Some((80, false)), None], true, None), Reachability::TurnRefused);
        // A near server behind a slow link: the probe decides.
        let slow = reachability(&[Some((30, true))], false, Some(180));
        assert_eq!(slow, Reachability::AudioOnlyRecommended { rtt_ms: 30, kbps: Some(180) });
        assert_eq!(
            slow.to_string(),
            "audio only recommended: 30 ms to the nearest server, about 180 kbit/s through the relay"
        );
        assert!(reachability(&[Some((30, true))], false, Some(2400)).to_string().contains("about 2.4 Mbit/s"));
    }

    #[test]
    fn permissions_and_send_indications_carry_the_peer_and_a_data_indication_is_read_back() {
        let peer: SocketAddr = "203.0.113.9:49170".parse().unwrap();
        let auth = LongTermAuth { username: "k".into(), password: "p".into(), realm: "r".into(), nonce: "n".into() };
        let r = create_permission(TID, &auth, peer);
        assert_eq!(u16::from_be_bytes([r.bytes[0], r.bytes[1]]), 0x0008);
        let attrs = attributes(framed(&r.bytes).unwrap()).unwrap();
        let xpeer = attrs.iter().find(|(t, _)| *t == attr::XOR_PEER_ADDRESS).unwrap().1;
        assert_eq!(xor_address(xpeer, &TID), Some(peer));
        assert_eq!(attrs.last().unwrap().0, attr::MESSAGE_INTEGRITY);

        let v6: SocketAddr = "[2001:db8::7]:3478".parse().unwrap();
        let send = send_indication(TID, v6, b"probe 1");
        assert_eq!(u16::from_be_bytes([send[0], send[1]]), 0x0016);
        // What the relay sends back for it has the same shape with the Data method.
        let mut data = send.clone();
        data[0..2].copy_from_slice(&message_type(Method::Data, Class::Indication).to_be_bytes());
        assert_eq!(parse_data_indication(&data), Some((v6, &b"probe 1"[..])));
        assert_eq!(parse_data_indication(&send), None, "a Send is not a Data indication");
        assert_eq!(parse_data_indication(&data[..data.len() - 3]), None);
        let mut seed = 11u32;
        for _ in 0..2000 {
            let mut bytes = data.clone();
            for _ in 0..3 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let i = (seed >> 8) as usize % bytes.len();
                bytes[i] = (seed >> 16) as u8;
            }
            let _ = parse_data_indication(&bytes);
        }
    }

    #[test]
    fn a_train_s_rate_is_its_bytes_over_its_spread() {
        // 11 packets of 1,000 bytes, one every 8 ms: 10 × 8,000 bits in 80 ms = 1,000 kbit/s.
        let train: Vec<(u64, usize)> = (0..11).map(|i| (5_000 + i * 8_000, 1000)).collect();
        assert_eq!(train_rate_kbps(&train), Some(1000));
        assert_eq!(train_rate_kbps(&train[..4]), None, "too few");
        assert_eq!(train_rate_kbps(&[(7, 1000); 6]), None, "no spread");
    }
}
