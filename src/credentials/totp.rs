//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits, as every authenticator app does by
//! default) and recovery codes for staff two-factor login.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;

/// A fresh 160-bit secret (RFC 4226's recommended length).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// RFC 4226's HOTP value for a counter.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The step a Unix time falls in.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// Checks a code typed by a person (spaces ignored) against the steps around `now_step` (one either side, for
/// clocks and typing), refusing any step at or before `last_used` (a code is good once). Returns the step it
/// matched.
pub fn verify(secret: &[u8], code: &str, now_step: u64, last_used: Option<u64>) -> Option<u64> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = digits.parse().ok()?;
    [now_step.saturating_sub(1), now_step, now_step + 1]
        .into_iter()
        .filter(|s| last_used.is_none_or(|u| *s > u))
        .find(|s| constant_time_eq(hotp(secret, *s), value))
}

/// One XOR over the whole value: no early exit on the first differing digit.
fn constant_time_eq(a: u32, b: u32) -> bool {
    std::hint::black_box(a ^ b) == 0
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// Fresh recovery codes (`xxxxx-xxxxx`, 50 bits each, no look-alike characters) and the hashes to store.
pub fn new_recovery_codes() -> Vec<(String, String)> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let chars: String = raw.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
            let code = format!("{}-{}", &chars[..5], &chars[5..]);
            let hash = recovery_hash(&code);
            (code, hash)
        })
        .collect()
}

/// The stored form of a recovery code as typed (case, spaces and dashes ignored).
pub fn recovery_hash(typed: &str) -> String {
    let norm: String = typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    hex::encode(Sha256::digest(norm.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        // RFC 6238 appendix B, SHA1 rows (8 digits there; the last 6 digits here).
        let secret = b"12345678901234567890";
        for (t, expect8) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(secret, step_at(t)), expect8 % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn codes_match_one_step_either_side_and_only_once() {
        let secret = b"12345678901234567890";
        let now = step_at(1_234_567_890);
        let code = format!("{:06}", hotp(secret, now - 1));
        assert_eq!(verify(secret, &code, now, None), Some(now - 1));
        assert_eq!(verify(secret, &code, now, Some(now - 1)), None, "replayed");
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(secret, &spaced, now, None), Some(now - 1));
        let late = format!("{:06}", hotp(secret, now - 2));
        assert_eq!(verify(secret, &late, now, None), None);
        for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(verify(secret, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, out) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), out);
        }
    }

    #[test]
    fn recovery_codes_are_distinct_and_stored_hashed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(&recovery_hash(&code.to_uppercase().replace('-', " ")), hash);
        assert!(codes.iter().skip(1).all(|(c, _)| c != code));
    }
}
