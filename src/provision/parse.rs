//! Reading a provisioning file into a [`Plan`]: pure, and it reports every problem at once, each named by its key.
//! Values of secret keys (passwords, the TURN credential, the private key) never appear in a message.

use toml::{Table, Value};

use crate::config::{ClinicId, IceServer, IceUrl, UI_LANGUAGES};
use crate::core::{validate_email, validate_name, validate_password};
use crate::credentials::{PemProblem, check_pem_pair};

/// A checked provisioning file: what the kiosk will look like afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub clinic_name: String,
    pub clinic_id: ClinicId,
    /// An IANA zone name such as `Asia/Kolkata`.
    pub timezone: String,
    /// `None`: wired network only (a Wi-Fi set up earlier is removed).
    pub wifi: Option<Wifi>,
    /// Replaces the configuration's list (empty: no STUN/TURN).
    pub ice_servers: Vec<IceServer>,
    pub tls: TlsPlan,
    pub technician_name: String,
    pub technician_email: String,
    pub one_time_password: String,
    /// Kept as configured when the file leaves them out.
    pub language: Option<String>,
    pub technician_pin: Option<String>,
    /// The clinic's two-factor policy for doctors; kept as configured when the file leaves it out.
    pub two_factor_for_doctors: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wifi {
    pub ssid: String,
    /// The WPA pre-shared key as 64 hex digits, derived from the passphrase (the passphrase itself is not kept).
    pub psk_hex: String,
    /// ISO 3166 country code for the radio's regulatory domain.
    pub country: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TlsPlan {
    /// A self-signed certificate made and kept by the kiosk.
    Auto,
    /// The clinic's own certificate chain and key (PEM); `fingerprint` of the leaf, for the log.
    Files { cert_pem: String, key_pem: String, fingerprint: String },
}

const SECTIONS: [(&str, &[&str]); 6] = [
    ("clinic", &["name", "id", "timezone", "two_factor_for_doctors"]),
    ("wifi", &["ssid", "password", "country"]),
    ("turn", &["urls", "username", "credential", "stun_urls"]),
    ("tls", &["mode", "certificate", "private_key"]),
    ("technician", &["name", "email", "one_time_password"]),
    ("kiosk", &["language", "technician_pin"]),
];

/// Checks a provisioning file. `zone_exists` answers whether a time zone name is in the system's zone database.
pub fn parse(text: &str, zone_exists: &dyn Fn(&str) -> bool) -> Result<Plan, Vec<String>> {
    let root: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return Err(vec![format!("not valid TOML: {}", e.message())]),
    };
    let mut r = Reader { problems: Vec::new() };
    for (key, value) in &root {
        match SECTIONS.iter().find(|(name, _)| name == key) {
            None => r.problem(key, "is not a section of the provisioning file".into()),
            Some((_, keys)) => match value {
                Value::Table(t) => {
                    for k in t.keys().filter(|k| !keys.contains(&k.as_str())) {
                        r.problem(&format!("{key}.{k}"), "is not a known key".into());
                    }
                }
                _ => r.problem(key, "must be a section ([name])".into()),
            },
        }
    }
    let clinic = r.section(&root, "clinic", true);
    let clinic_name = r.string(clinic, "clinic.name", true, |v| {
        let v = v.trim().to_string();
        let ok = !v.is_empty() && v.chars().count() <= 80 && !v.chars().any(char::is_control);
        if ok { Ok(v) } else { Err("must be 1 to 80 characters without control characters".into()) }
    });
    let clinic_id = r.string(clinic, "clinic.id", true, ClinicId::try_from);
    let timezone = r.string(clinic, "clinic.timezone", true, |v| timezone_ok(&v, zone_exists).map(|()| v));
    let two_factor_for_doctors = match clinic.and_then(|c| c.get("two_factor_for_doctors")) {
        None => None,
        Some(Value::Boolean(b)) => Some(*b),
        Some(_) => {
            r.problem("clinic.two_factor_for_doctors", "must be true or false".into());
            None
        }
    };

    let wifi = match r.section(&root, "wifi", false) {
        None => None,
        Some(section) => {
            let w = Some(section);
            let ssid = r.string(w, "wifi.ssid", true, |s| {
                let ok = (1..=32).contains(&s.len()) && !s.chars().any(char::is_control);
                if ok { Ok(s) } else { Err("must be 1 to 32 bytes without control characters".into()) }
            });
            let password = r.secret(w, "wifi.password", true, Ok);
            let country = r.string(w, "wifi.country", true, |c| {
                let ok = c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
                if ok { Ok(c) } else { Err(format!("`{c}` is not a two-letter country code such as IN")) }
            });
            let psk = match (&ssid, password) {
                (Some(s), Some(p)) => wpa_psk(s, &p).map_err(|e| r.problem("wifi.password", e)).ok(),
                _ => None,
            };
            match (ssid, psk, country) {
                (Some(ssid), Some(psk_hex), Some(country)) => Some(Wifi { ssid, psk_hex, country }),
                _ => None,
            }
        }
    };

    let mut ice_servers = Vec::new();
    if let Some(t) = r.section(&root, "turn", false) {
        let urls = r.urls(Some(t), "turn.urls", true, &["turn:", "turns:"]);
        let username = r.string(Some(t), "turn.username", true, short_text);
        let credential = r.secret(Some(t), "turn.credential", true, short_text);
        let stun = r.urls(Some(t), "turn.stun_urls", false, &["stun:", "stuns:"]);
        if let Some(stun) = stun.filter(|s| !s.is_empty()) {
            ice_servers.push(IceServer { urls: stun, username: None, credential: None });
        }
        if let (Some(urls), Some(username), Some(credential)) = (urls, username, credential) {
            ice_servers.push(IceServer { urls, username: Some(username), credential: Some(credential) });
        }
    }

    let tls_section = r.section(&root, "tls", false);
    let tls = match r.string(tls_section, "tls.mode", false, Ok).as_deref() {
        None | Some("auto") => {
            for k in ["certificate", "private_key"] {
                if tls_section.is_some_and(|t| t.contains_key(k)) {
                    r.problem(&format!("tls.{k}"), "is only used with tls.mode = \"files\"".into());
                }
            }
            Some(TlsPlan::Auto)
        }
        Some("files") => {
            let cert = r.string(tls_section, "tls.certificate", true, Ok);
            let key = r.secret(tls_section, "tls.private_key", true, Ok);
            match (cert, key) {
                (Some(cert_pem), Some(key_pem)) => match check_pem_pair(&cert_pem, &key_pem) {
                    Ok(fingerprint) => Some(TlsPlan::Files { cert_pem, key_pem, fingerprint }),
                    Err(PemProblem::Certificate(e)) => {
                        r.problem("tls.certificate", e);
                        None
                    }
                    Err(PemProblem::Key(e)) => {
                        r.problem("tls.private_key", e);
                        None
                    }
                },
                _ => None,
            }
        }
        Some(other) => {
            r.problem("tls.mode", format!("`{other}` is not \"auto\" or \"files\""));
            None
        }
    };

    let tech = r.section(&root, "technician", true);
    let technician_name =
        r.string(tech, "technician.name", true, |v| validate_name("technician.name", &v).map_err(|e| e.message));
    let technician_email =
        r.string(tech, "technician.email", true, |v| validate_email("technician.email", &v).map_err(|e| e.message));
    let one_time_password = r.secret(tech, "technician.one_time_password", true, |v| {
        validate_password(&v).map(|()| v).map_err(|e| e.message)
    });

    let kiosk = r.section(&root, "kiosk", false);
    let language = r.string(kiosk, "kiosk.language", false, |l| {
        if UI_LANGUAGES.contains(&l.as_str()) {
            Ok(l)
        } else {
            Err(format!("`{l}` is not one of {}", UI_LANGUAGES.join(", ")))
        }
    });
    let technician_pin = r.secret(kiosk, "kiosk.technician_pin", false, |p| {
        let ok = (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if ok { Ok(p) } else { Err("must be 4 to 8 digits".into()) }
    });

    match (clinic_name, clinic_id, timezone, wifi, tls, technician_name, technician_email, one_time_password) {
        (
            Some(clinic_name),
            Some(clinic_id),
            Some(timezone),
            wifi,
            Some(tls),
            Some(technician_name),
            Some(technician_email),
            Some(one_time_password),
        ) if r.problems.is_empty() => Ok(Plan {
            clinic_name,
            clinic_id,
            timezone,
            wifi,
            ice_servers,
            tls,
            technician_name,
            technician_email,
            one_time_password,
            language,
            technician_pin,
            two_factor_for_doctors,
        }),
        _ => Err(r.problems),
    }
}

/// TURN user names and credentials: 1 to 256 characters without control characters.
fn short_text(v: String) -> Result<String, String> {
    let ok = (1..=256).contains(&v.len()) && !v.chars().any(char::is_control);
    if ok { Ok(v) } else { Err("must be 1 to 256 characters without control characters".into()) }
}

fn timezone_ok(zone: &str, zone_exists: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let shape = !zone.is_empty()
        && zone.len() <= 64
        && !zone.starts_with('/')
        && !zone.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        && zone.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if !shape {
        return Err(format!("`{zone}` is not a time zone name such as Asia/Kolkata"));
    }
    if !zone_exists(zone) {
        return Err(format!("`{zone}` is not a time zone this system knows (e.g. Asia/Kolkata)"));
    }
    Ok(())
}

/// The WPA-PSK key for a network: a 64-hex-digit key as given, or PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 256 bit)
/// from an 8 to 63 character passphrase (what `wpa_passphrase` computes).
pub fn wpa_psk(ssid: &str, password: &str) -> Result<String, String> {
    if password.len() == 64 && password.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(password.to_ascii_lowercase());
    }
    if !(8..=63).contains(&password.len()) || !password.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("must be a passphrase of 8 to 63 printable ASCII characters, or 64 hex digits".into());
    }
    let mut key = [0u8; 32];
    let rounds = std::num::NonZeroU32::new(4096).ok_or("zero rounds")?;
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA1, rounds, ssid.as_bytes(), password.as_bytes(), &mut key);
    Ok(hex::encode(key))
}

struct Reader {
    problems: Vec<String>,
}

impl Reader {
    fn problem(&mut self, key: &str, message: String) {
        self.problems.push(format!("{key}: {message}"));
    }

    fn section<'t>(&mut self, root: &'t Table, name: &str, required: bool) -> Option<&'t Table> {
        match root.get(name) {
            Some(Value::Table(t)) => Some(t),
            Some(_) => None, // reported by the key check
            None => {
                if required {
                    self.problem(&format!("[{name}]"), "the section is missing".into());
                }
                None
            }
        }
    }

    fn value<'t>(&mut self, t: Option<&'t Table>, key: &str, required: bool) -> Option<&'t Value> {
        let v = t.and_then(|t| t.get(key.rsplit('.').next().unwrap_or(key)));
        if v.is_none() && required && t.is_some() {
            self.problem(key, "is missing".into());
        }
        v
    }

    /// The string at `key` checked by `check`; a wrong type or a refusal is recorded against the key.
    fn string<T>(
        &mut self,
        t: Option<&Table>,
        key: &str,
        required: bool,
        check: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        self.text(t, key, required, false, check)
    }

    /// Like `string`, but the value never appears in a message.
    fn secret<T>(
        &mut self,
        t: Option<&Table>,
        key: &str,
        required: bool,
        check: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        self.text(t, key, required, true, check)
    }

    fn text<T>(
        &mut self,
        t: Option<&Table>,
        key: &str,
        required: bool,
        secret: bool,
        check: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<T> {
        let value = match self.value(t, key, required)? {
            Value::String(s) => s.clone(),
            other => {
                let shown = if secret { String::new() } else { format!(", not {}", other.type_str()) };
                self.problem(key, format!("must be a string (in quotes){shown}"));
                return None;
            }
        };
        check(value).map_err(|e| self.problem(key, e)).ok()
    }

    fn urls(&mut self, t: Option<&Table>, key: &str, required: bool, schemes: &[&str]) -> Option<Vec<IceUrl>> {
        let Value::Array(items) = self.value(t, key, required)? else {
            self.problem(key, "must be a list of URLs, e.g. [\"turn:turn.example.org:3478\"]".into());
            return None;
        };
        if required && items.is_empty() {
            self.problem(key, "must list at least one URL".into());
            return None;
        }
        let mut urls = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ok = item.as_str().filter(|s| schemes.iter().any(|p| s.starts_with(p)));
            match ok.map(|s| IceUrl::try_from(s.to_string())) {
                Some(Ok(u)) => urls.push(u),
                Some(Err(e)) => self.problem(&format!("{key}[{i}]"), e),
                None => self
                    .problem(&format!("{key}[{i}]"), format!("must be a URL starting with {}", schemes.join(" or "))),
            }
        }
        (urls.len() == items.len()).then_some(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wpa_psk_matches_the_ieee_802_11i_test_vector() {
        // IEEE 802.11i-2004, H.4.3: passphrase "password", SSID "IEEE".
        assert_eq!(
            wpa_psk("IEEE", "password").unwrap(),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        let hex64 = "AB".repeat(32);
        assert_eq!(wpa_psk("x", &hex64).unwrap(), hex64.to_lowercase());
        assert!(wpa_psk("x", "short").is_err());
        assert!(wpa_psk("x", "tab\tinside passphrase").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once_and_secrets_are_not_echoed() {
        let text = r#"
            [clinic]
            name = "X"
            id = "Bad Id"
            [technician]
            name = "T"
            email = "t@x.example"
            one_time_password = "zzzzzzzzzzzz"
            [extra]
        "#;
        let problems = parse(text, &|_| true).unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("clinic.id:"), "{joined}");
        assert!(joined.contains("clinic.timezone: is missing"), "{joined}");
        assert!(joined.contains("technician.one_time_password:"), "{joined}");
        assert!(joined.contains("extra: is not a section"), "{joined}");
        assert!(!joined.contains("zzzz"), "{joined}");
    }

    #[test]
    fn a_minimal_file_gives_auto_tls_and_no_wifi_or_turn() {
        let text = r#"
            [clinic]
            name = "PHC"
            id = "phc"
            timezone = "Asia/Kolkata"
            [technician]
            name = "T"
            email = "T@X.example"
            one_time_password = "a fine one-time pass"
        "#;
        let plan = parse(text, &|z| z == "Asia/Kolkata").unwrap();
        assert_eq!(plan.tls, TlsPlan::Auto);
        assert!(plan.wifi.is_none() && plan.ice_servers.is_empty());
        assert_eq!(plan.technician_email, "t@x.example");
        assert_eq!(plan.language, None);
        assert!(parse(&text.replace("Asia/Kolkata", "Asia/Nowhere"), &|z| z == "Asia/Kolkata").is_err());
    }
}
