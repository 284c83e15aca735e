//! STUN and TURN messages for the kiosk's network check (RFC 5389 / 8489 framing, RFC 5766 / 8656 Allocate and
//! Refresh with long-term credentials): requests built, answers read. Pure: no sockets, no clock. Only what the
//! check needs: Binding, Allocate, Refresh; XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, ERROR-CODE, REALM, NONCE;
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
}

/// Request, success or error (indications are never sent or expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Success,
    Error,
}

mod attr {
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const LIFETIME: u16 = 0x000D;
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
        _ => return None,
    };
    let class = match c {
        0b00 => Class::Request,
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
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&message_type(method, Class::Request).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&transaction);
    if method == Method::Allocate {
        push_attr(&mut out, attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    }
    if let Some(secs) = lifetime {
        push_attr(&mut out, attr::LIFETIME, &secs.to_be_bytes());
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

/// Reads the answer to `request` (a method's success or error), or says why it is not one.
pub fn parse_answer(bytes: &[u8], request: &Request) -> Result<(Method, Class, Answer), StunError> {
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
    if bytes[8..20] != request.transaction {
        return Err(StunError::OtherTransaction);
    }
    let (method, class) = split_type(kind).ok_or(StunError::Unexpected)?;
    if class == Class::Request {
        return Err(StunError::Unexpected);
    }
    let mut answer = Answer::default();
    let mut rest = &bytes[HEADER..HEADER + length];
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let padded = len + (4 - len % 4) % 4;
        if rest.len() < 4 + padded {
            return Err(StunError::NotStun("attribute length"));
        }
        let value = &rest[4..4 + len];
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
        rest = &rest[4 + padded..];
    }
    Ok((method, class, answer))
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
    /// Answered, but slowly: a call may stutter.
    AudioOnlyRecommended {
        rtt_ms: u32,
    },
    /// A TURN server answered but refused the kiosk's credentials: doctors behind strict NATs cannot call.
    TurnRefused,
    GoodForVideo {
        rtt_ms: u32,
        relay: bool,
    },
}

/// Above this round trip to the servers a video call is likely to stutter (the rural links the kiosk is made for
/// run 50-300 ms).
const SLOW_RTT_MS: u32 = 400;

/// `answered`: each checked server's round trip and whether it gave a relay (`None`: no answer or refused);
/// `turn_refused`: a TURN server refused the credentials (a configuration to fix, whatever else answered).
pub fn reachability(answered: &[Option<(u32, bool)>], turn_refused: bool) -> Reachability {
    if answered.is_empty() {
        return Reachability::NothingConfigured;
    }
    if turn_refused {
        return Reachability::TurnRefused;
    }
    let best = answered.iter().flatten().min_by_key(|(rtt, relay)| (*rtt, !*relay));
    match best {
        None => Reachability::CannotReach,
        Some(&(rtt_ms, _)) if rtt_ms > SLOW_RTT_MS => Reachability::AudioOnlyRecommended { rtt_ms },
        Some(&(rtt_ms, _)) => Reachability::GoodForVideo { rtt_ms, relay: answered.iter().flatten().any(|a| a.1) },
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
            Reachability::AudioOnlyRecommended { rtt_ms } => {
                write!(f, "audio only recommended: {rtt_ms} ms to the nearest server")
            }
            Reachability::GoodForVideo { rtt_ms, relay } => write!(
                f,
                "good for video: {rtt_ms} ms to the nearest server{}",
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
        assert_eq!(reachability(&[], false), Reachability::NothingConfigured);
        assert_eq!(reachability(&[None, None], false), Reachability::CannotReach);
        assert_eq!(reachability(&[None, Some((520, true))], false), Reachability::AudioOnlyRecommended { rtt_ms: 520 });
        assert_eq!(
            reachability(&[Some((80, false)), Some((95, true))], false),
            Reachability::GoodForVideo { rtt_ms: 80, relay: true }
        );
        assert!(reachability(&[Some((80, false))], false).to_string().contains("no TURN relay"));
        assert_eq!(reachability(&[Some((80, false)), None], true), Reachability::TurnRefused);
    }
}
