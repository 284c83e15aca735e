//! The kiosk's one configuration file: embedded defaults, then `/etc/medimitra/medimitra.toml` (or `--config`), then
//! `MEDIMITRA_<SECTION>_<KEY>` environment variables, then command-line flags. Every value is checked while it is
//! read, so a bad file fails at start-up with the key, the file and the line, never later at first use.

use serde::{Deserialize, Serialize};

pub use crate::core::protocol::IceTransportPolicy;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the file is looked for when neither `--config` nor `MEDIMITRA_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/medimitra/medimitra.toml";

/// A configuration that could not be used. The binary exits with code 2 on it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {origin}: {message}")]
pub struct ConfigError {
    /// The file (or `environment variable X`) the bad value came from.
    pub origin: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub clinic: Clinic,
    pub server: Server,
    pub tls: Tls,
    pub storage: Storage,
    pub auth: Auth,
    pub calls: Calls,
    pub media: Media,
    pub ui: Ui,
    pub log: Log,
    pub metrics: Metrics,
    pub devices: Devices,
    /// STUN/TURN servers handed to both peers of a call. None by default: a kiosk on the clinic LAN needs none, and
    /// tests must never contact outside addresses.
    pub ice_servers: Vec<IceServer>,
}

/// The Prometheus endpoint, `GET /metrics` on the HTTPS listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Who may read it: `localhost` (requests from the kiosk itself, e.g. a local Prometheus agent), `token`
    /// (`Authorization: Bearer <token>` from anywhere), or `off`.
    pub access: MetricsAccess,
    /// The bearer token when `access = "token"`: at least 32 characters.
    pub token: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    #[default]
    Localhost,
    Token,
    Off,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { access: MetricsAccess::Localhost, token: String::new() }
    }
}

/// The serial medical devices (pulse oximeter, scale): `crate::devices`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Devices {
    /// Where udev links the USB-serial adapters of vitals devices (`vitals-*`, see `udev/`); each one's protocol is
    /// found by trying them in turn.
    pub scan_dir: PathBuf,
    /// Ports read with the protocol named, whether or not udev linked them (e.g. a built-in UART).
    pub ports: Vec<DevicePort>,
}

impl Default for Devices {
    fn default() -> Self {
        Self { scan_dir: PathBuf::from("/dev/medimitra"), ports: Vec::new() }
    }
}

/// One serial port and the protocol its device speaks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevicePort {
    /// The port, e.g. `/dev/ttyUSB0`.
    pub path: PathBuf,
    /// `cms50d-legacy`, `cms50d-v46` or `and-standard`.
    pub protocol: crate::core::vitals::Protocol,
}

/// The patient's touch UI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ui {
    /// "auto" (winit when a display server is there, else linuxkms), or a Slint backend such as "linuxkms",
    /// "linuxkms-software", "linuxkms-femtovg", "winit", "winit-software", "winit-femtovg".
    pub backend: String,
    /// Fill the screen (winit; linuxkms always does).
    pub fullscreen: bool,
    /// Language shown at start and after each patient: "en", "hi" or "mr".
    pub language: String,
    /// PIN for the technician screen (long press on the clinic's name). Empty: the technician screen is disabled.
    pub technician_pin: String,
    /// Seconds the call-ended and check-in screens stay before returning to Welcome (and forgetting the patient).
    pub return_to_welcome_secs: u32,
}

impl Default for Ui {
    fn default() -> Self {
        Self {
            backend: "auto".into(),
            fullscreen: true,
            language: "en".into(),
            technician_pin: String::new(),
            return_to_welcome_secs: 30,
        }
    }
}

pub const UI_LANGUAGES: [&str; 3] = ["en", "hi", "mr"];
const UI_BACKENDS: [&str; 7] =
    ["auto", "linuxkms", "linuxkms-software", "linuxkms-femtovg", "winit", "winit-software", "winit-femtovg"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Clinic {
    /// Shown to patients on the welcome screen and to doctors in the web app.
    pub name: String,
    /// Stable identifier of this kiosk's clinic (lower-case letters, digits, dashes).
    pub id: ClinicId,
}

impl Default for Clinic {
    fn default() -> Self {
        Self { name: "Medi-Mitra Clinic".into(), id: ClinicId("clinic-1".into()) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address and port the HTTPS API listens on.
    pub listen: SocketAddr,
    /// Origins (scheme://host[:port]) whose pages may use the API and the signaling socket besides the kiosk's own.
    pub allowed_origins: Vec<Origin>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most connections open at once (signaling sockets included); one more is closed at once. Idle ones are
    /// closed after 10 s without a request, so this bounds memory, not who gets in.
    pub max_connections: usize,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            allowed_origins: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// A self-signed certificate made on first start and kept in the data dir.
    Auto,
    /// The certificate and key files named by `cert_file` and `key_file`.
    Files,
    /// Plain HTTP. Browsers refuse camera access on such a page unless it is on localhost.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    pub mode: TlsMode,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Self { mode: TlsMode::Auto, cert_file: None, key_file: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Database, TLS material and other state. Relative paths are taken from the working directory.
    pub data_dir: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("var") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// How long a login lasts.
    pub session_hours: u32,
    /// Wrong passwords for one account from one address within `window_minutes` before each further attempt from
    /// there waits, doubling from 1 s up to the window (the older name `max_failures_per_account` is read too).
    #[serde(alias = "max_failures_per_account")]
    pub free_failures: u32,
    /// Login attempts from one address within `window_minutes` (all accounts) before further attempts are refused.
    pub max_attempts_per_address: u32,
    /// Failures for one account from all addresses within `window_minutes` after which browsers that never logged
    /// into it share one attempt per `guard_spacing_secs` (the owner's own browsers are not held).
    pub account_guard_after: u32,
    pub guard_spacing_secs: u32,
    pub window_minutes: u32,
    /// Technicians must set up and use two-factor login (TOTP).
    pub two_factor_for_technicians: bool,
    /// Doctors must too (the clinic's policy; the provisioning file's `clinic.two_factor_for_doctors`).
    pub two_factor_for_doctors: bool,
}

impl Auth {
    /// The throttle's settings from these.
    pub fn throttle(&self) -> crate::core::login_throttle::ThrottleSettings {
        let window = std::time::Duration::from_secs(u64::from(self.window_minutes) * 60);
        crate::core::login_throttle::ThrottleSettings {
            window,
            free_failures: self.free_failures,
            max_backoff: window,
            max_attempts_per_address: self.max_attempts_per_address,
            guard_after: self.account_guard_after,
            guard_spacing: std::time::Duration::from_secs(u64::from(self.guard_spacing_secs)),
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            session_hours: 12,
            free_failures: 5,
            max_attempts_per_address: 30,
            account_guard_after: 20,
            guard_spacing_secs: 10,
            window_minutes: 15,
            two_factor_for_technicians: true,
            two_factor_for_doctors: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Calls {
    /// Ringing ends as "no answer" after this.
    pub ring_timeout_secs: u32,
    /// A media session that has not connected by then is replaced by a fresh one.
    pub connect_timeout_secs: u32,
    /// How long a doctor whose page lost its connection may take to come back to the call.
    pub reconnect_grace_secs: u32,
    /// How long connected media may stay interrupted before the kiosk sets up a fresh session (new offer/answer).
    pub interrupt_grace_secs: u32,
}

impl Default for Calls {
    fn default() -> Self {
        Self { ring_timeout_secs: 45, connect_timeout_secs: 15, reconnect_grace_secs: 30, interrupt_grace_secs: 20 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// `auto` (the first camera, else a test picture), `test`, or a V4L2 device path such as `/dev/video0`.
    pub video_source: String,
    /// `auto` (the default microphone, else a test tone), or `test`.
    pub audio_source: String,
    /// `auto` (the default speaker when there is a sound card, else none), or `none`.
    pub audio_sink: String,
    /// `auto` picks the best working encoder profile; a profile name forces that one.
    pub profile: String,
    /// Directory of encoder profiles replacing the built-in ones (see pipelines/README.md).
    pub profiles_dir: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    /// Congestion control keeps the video bitrate within these bounds.
    pub min_bitrate_kbps: u32,
    pub start_bitrate_kbps: u32,
    pub max_bitrate_kbps: u32,
    /// Receive jitter buffer; webrtcbin's default of 200 ms is too long for conversation. The doctor's video waits
    /// longer when the round trip needs it for retransmissions to arrive (at most 1 s; only a missing packet is
    /// waited for: the doctor's picture is shown as soon as it is decoded).
    pub jitter_latency_ms: u32,
    /// Offer RED/ULPFEC for video; its protection follows the loss measured (0 % on a clean link).
    pub video_fec: bool,
    /// `all`, or `relay` for sites where only TURN works (the page is told to do the same).
    pub ice_transport_policy: IceTransportPolicy,
    /// The test picture sent without a camera: `still` (cheap) or `moving` (gives the encoder real work, for
    /// measurements).
    pub test_pattern: TestPattern,
    /// `balanced` (the picture steps down a resolution ladder on a slow link or a busy CPU) or
    /// `maintain-resolution` (the camera's size always; for measurements of equal work).
    pub degradation_preference: crate::core::adaptation::DegradationPreference,
}

/// The test picture a kiosk without a camera sends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TestPattern {
    /// One frame repeated: almost free to make and to encode.
    #[default]
    Still,
    /// Moving colour bars: as much work for the encoder as a camera. Each frame carries its capture time in a
    /// band across the top (`core::frame_stamp`), so the far end can measure glass-to-glass delay.
    Moving,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            video_source: "auto".into(),
            audio_source: "auto".into(),
            audio_sink: "auto".into(),
            profile: "auto".into(),
            profiles_dir: None,
            width: 1280,
            height: 720,
            framerate: 30,
            min_bitrate_kbps: 100,
            // libwebrtc's own start: a 500 kbit/s link is not overrun in the first seconds (a 500 start overran it:
            // 91-104 packets dropped at the router per bench call); congestion control climbs to 720p on a clean link.
            start_bitrate_kbps: 300,
            max_bitrate_kbps: 2500,
            jitter_latency_ms: 60,
            video_fec: true,
            ice_transport_policy: IceTransportPolicy::All,
            test_pattern: TestPattern::Still,
            degradation_preference: crate::core::adaptation::DegradationPreference::Balanced,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub level: LogLevel,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs.
    pub urls: Vec<IceUrl>,
    #[serde(default)]
    pub username: Option<String>,
    /// TURN secret: masked by `config show`, never logged.
    #[serde(default)]
    pub credential: Option<String>,
}

/// Validated clinic identifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct ClinicId(String);

impl ClinicId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClinicId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(Self(s)) } else { Err(format!("`{s}` is not a clinic id (1-64 of a-z, 0-9, -)")) }
    }
}

impl From<ClinicId> for String {
    fn from(c: ClinicId) -> String {
        c.0
    }
}

/// Validated STUN/TURN URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct IceUrl(String);

impl IceUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_turn(&self) -> bool {
        self.0.starts_with("turn:") || self.0.starts_with("turns:")
    }
}

impl TryFrom<String> for IceUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let rest = ["stun:", "stuns:", "turn:", "turns:"].iter().find_map(|p| s.strip_prefix(p));
        match rest {
            Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(Self(s)),
            _ => Err(format!("`{s}` is not a STUN/TURN URL (stun:, stuns:, turn: or turns: followed by a host)")),
        }
    }
}

impl From<IceUrl> for String {
    fn from(u: IceUrl) -> String {
        u.0
    }
}

/// Validated web origin, `scheme://host[:port]` without path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let host = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
        match host {
            Some(h) if !h.is_empty() && !h.contains('/') && !h.contains(char::is_whitespace) => Ok(Self(s)),
            _ => Err(format!("`{s}` is not an origin such as https://doctor.example.org:8443")),
        }
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> String {
        o.0
    }
}

/// Settings given on the command line; they win over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

/// The configuration in force and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file that was read, if any.
    pub path: Option<PathBuf>,
    /// `MEDIMITRA_*` variables that name no key; reported, not fatal (another tool may own them).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the configuration: defaults, the file, the environment, then `overrides`.
    pub fn load(overrides: &Overrides) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("MEDIMITRA_")).collect();
        let explicit = overrides
            .config_path
            .clone()
            .or_else(|| env.iter().find(|(k, _)| k == "MEDIMITRA_CONFIG").map(|(_, v)| PathBuf::from(v)));
        let (mut config, path) = match explicit {
            Some(p) => (Self::from_file(&p)?, Some(p)),
            None if Path::new(DEFAULT_PATH).exists() => {
                (Self::from_file(Path::new(DEFAULT_PATH))?, Some(DEFAULT_PATH.into()))
            }
            None => (Config::default(), None),
        };
        let warnings = config.apply_env(env.iter().filter(|(k, _)| k != "MEDIMITRA_CONFIG").cloned())?;
        if let Some(d) = &overrides.data_dir {
            config.storage.data_dir = d.clone();
        }
        if let Some(l) = overrides.listen {
            config.server.listen = l;
        }
        let origin = path.as_ref().map_or_else(|| "the built-in defaults".to_string(), |p| p.display().to_string());
        config.check(path.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).as_deref(), &origin)?;
        Ok(Loaded { config, path, warnings })
    }

    /// Parses one file. Errors carry the key path and the line.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { origin: origin.clone(), message: format!("cannot read the file: {e}") })?;
        let config = Self::from_toml(&text, &origin)?;
        config.check(Some(&text), &origin)?;
        Ok(config)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_of(text, s.start));
            let mut message = String::new();
            if key != "." && !key.is_empty() {
                message.push_str(&format!("key `{key}`"));
            }
            if let Some(l) = line {
                message.push_str(&format!("{}line {l}", if message.is_empty() { "" } else { ", " }));
            }
            message.push_str(&format!(": {}", inner.message()));
            ConfigError { origin: origin.to_string(), message }
        })
    }

    /// Applies `MEDIMITRA_<SECTION>_<KEY>` variables to scalar and list keys. Lists are comma-separated.
    fn apply_env(&mut self, vars: impl Iterator<Item = (String, String)>) -> Result<Vec<String>, ConfigError> {
        let mut tree = toml::Value::try_from(&*self)
            .map_err(|e| ConfigError { origin: "the built-in defaults".into(), message: e.to_string() })?;
        let mut warnings = Vec::new();
        let mut touched = false;
        for (name, raw) in vars {
            let Some(slot) = env_slot(&mut tree, &name) else {
                warnings.push(format!("environment variable {name} names no configuration key; ignored"));
                continue;
            };
            let value = match slot {
                Some(toml::Value::Integer(_)) => {
                    raw.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| ConfigError {
                        origin: format!("environment variable {name}"),
                        message: format!("`{raw}` is not a whole number"),
                    })?
                }
                Some(toml::Value::Boolean(_)) => {
                    raw.trim().parse::<bool>().map(toml::Value::Boolean).map_err(|_| ConfigError {
                        origin: format!("environment variable {name}"),
                        message: format!("`{raw}` is not true or false"),
                    })?
                }
                Some(toml::Value::Array(_)) => toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.into()))
                        .collect(),
                ),
                _ => toml::Value::String(raw.clone()),
            };
            set_env_slot(&mut tree, &name, value);
            touched = true;
        }
        if touched {
            let origin = "environment variables MEDIMITRA_*";
            *self = serde_path_to_error::deserialize(tree).map_err(|e| ConfigError {
                origin: origin.into(),
                message: format!("key `{}`: {}", e.path(), e.inner()),
            })?;
        }
        Ok(warnings)
    }

    /// Rules that span keys. `text` (the file, when there is one) lets errors point at a line.
    fn check(&self, text: Option<&str>, origin: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| {
            let line = text.and_then(|t| find_key_line(t, key)).map(|l| format!(", line {l}")).unwrap_or_default();
            Err(ConfigError { origin: origin.to_string(), message: format!("key `{key}`{line}: {message}") })
        };
        if self.clinic.name.trim().is_empty() || self.clinic.name.chars().count() > 80 {
            return fail("clinic.name", "must be 1 to 80 characters".into());
        }
        if self.tls.mode == TlsMode::Files {
            if self.tls.cert_file.is_none() {
                return fail("tls.cert_file", "is required when tls.mode = \"files\"".into());
            }
            if self.tls.key_file.is_none() {
                return fail("tls.key_file", "is required when tls.mode = \"files\"".into());
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return fail("storage.data_dir", "must not be empty".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return fail("server.max_body_bytes", "must be between 1024 and 16777216".into());
        }
        if !(16..=65_536).contains(&self.server.max_connections) {
            return fail("server.max_connections", "must be between 16 and 65536".into());
        }
        if !(1..=24 * 30).contains(&self.auth.session_hours) {
            return fail("auth.session_hours", "must be between 1 and 720".into());
        }
        for (key, v) in [
            ("auth.free_failures", self.auth.free_failures),
            ("auth.max_attempts_per_address", self.auth.max_attempts_per_address),
            ("auth.account_guard_after", self.auth.account_guard_after),
            ("auth.guard_spacing_secs", self.auth.guard_spacing_secs),
            ("auth.window_minutes", self.auth.window_minutes),
        ] {
            if v == 0 {
                return fail(key, "must be at least 1".into());
            }
        }
        let m = &self.media;
        if !(160..=1920).contains(&m.width) || !(120..=1080).contains(&m.height) {
            return fail("media.width", "the picture must be between 160x120 and 1920x1080".into());
        }
        if !(5..=60).contains(&m.framerate) {
            return fail("media.framerate", "must be between 5 and 60".into());
        }
        if !(m.min_bitrate_kbps >= 50
            && m.min_bitrate_kbps <= m.start_bitrate_kbps
            && m.start_bitrate_kbps <= m.max_bitrate_kbps
            && m.max_bitrate_kbps <= 20_000)
        {
            return fail(
                "media.max_bitrate_kbps",
                "need 50 <= min_bitrate_kbps <= start_bitrate_kbps <= max_bitrate_kbps <= 20000".into(),
            );
        }
        if m.jitter_latency_ms > 1000 {
            return fail("media.jitter_latency_ms", "must be at most 1000".into());
        }
        if self.metrics.access == MetricsAccess::Token && self.metrics.token.chars().count() < 32 {
            return fail("metrics.token", "must be at least 32 characters when metrics.access is \"token\"".into());
        }
        for (key, v, ok) in [
            (
                "media.video_source",
                &m.video_source,
                m.video_source == "auto" || m.video_source == "test" || m.video_source.starts_with("/dev/"),
            ),
            ("media.audio_source", &m.audio_source, m.audio_source == "auto" || m.audio_source == "test"),
            ("media.audio_sink", &m.audio_sink, m.audio_sink == "auto" || m.audio_sink == "none"),
        ] {
            if !ok {
                return fail(key, format!("`{v}` is not one of the documented values"));
            }
        }
        let c = &self.calls;
        for (key, v) in [
            ("calls.ring_timeout_secs", c.ring_timeout_secs),
            ("calls.connect_timeout_secs", c.connect_timeout_secs),
            ("calls.reconnect_grace_secs", c.reconnect_grace_secs),
            ("calls.interrupt_grace_secs", c.interrupt_grace_secs),
        ] {
            if !(1..=600).contains(&v) {
                return fail(key, "must be between 1 and 600".into());
            }
        }
        if !UI_BACKENDS.contains(&self.ui.backend.as_str()) {
            return fail("ui.backend", format!("must be one of {}", UI_BACKENDS.join(", ")));
        }
        if !UI_LANGUAGES.contains(&self.ui.language.as_str()) {
            return fail("ui.language", format!("must be one of {}", UI_LANGUAGES.join(", ")));
        }
        let pin = &self.ui.technician_pin;
        let pin_ok = pin.is_empty() || ((4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()));
        if !pin_ok {
            return fail("ui.technician_pin", "must be empty (disabled) or 4 to 8 digits".into());
        }
        if !(5..=600).contains(&self.ui.return_to_welcome_secs) {
            return fail("ui.return_to_welcome_secs", "must be between 5 and 600".into());
        }
        for (i, s) in self.ice_servers.iter().enumerate() {
            if s.urls.is_empty() {
                return fail(&format!("ice_servers[{i}].urls"), "must list at least one URL".into());
            }
            if s.urls.iter().any(IceUrl::is_turn) && (s.username.is_none() || s.credential.is_none()) {
                return fail(&format!("ice_servers[{i}]"), "a TURN server needs username and credential".into());
            }
        }
        Ok(())
    }

    /// Checks the rules across keys, as loading a file does; `text` is the file the configuration came from.
    pub fn check_all(&self, text: &str, origin: &str) -> Result<(), ConfigError> {
        self.check(Some(text), origin)
    }

    /// The effective configuration as TOML with secrets masked, for `config show`.
    pub fn to_masked_toml(&self) -> String {
        let mut masked = self.clone();
        for s in &mut masked.ice_servers {
            if s.credential.is_some() {
                s.credential = Some("********".into());
            }
        }
        if !masked.ui.technician_pin.is_empty() {
            masked.ui.technician_pin = "********".into();
        }
        if !masked.metrics.token.is_empty() {
            masked.metrics.token = "********".into();
        }
        toml::to_string_pretty(&masked).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// Finds the current value addressed by `MEDIMITRA_SECTION_KEY` (`None` when no such key exists).
fn env_slot<'a>(tree: &'a mut toml::Value, name: &str) -> Option<Option<&'a toml::Value>> {
    let rest = name.strip_prefix("MEDIMITRA_")?.to_lowercase();
    let table = tree.as_table()?;
    for (section, inner) in table {
        let Some(key) = rest.strip_prefix(&format!("{section}_")) else {
            continue;
        };
        if let Some(t) = inner.as_table()
            && (t.contains_key(key) || optional_keys(section).contains(&key))
        {
            return Some(t.get(key));
        }
    }
    None
}

fn set_env_slot(tree: &mut toml::Value, name: &str, value: toml::Value) {
    let Some(rest) = name.strip_prefix("MEDIMITRA_").map(str::to_lowercase) else {
        return;
    };
    let Some(table) = tree.as_table_mut() else {
        return;
    };
    for (section, inner) in table.iter_mut() {
        if let (Some(key), Some(t)) = (rest.strip_prefix(&format!("{section}_")), inner.as_table_mut()) {
            t.insert(key.to_string(), value);
            return;
        }
    }
}

/// Keys that are absent from the serialized defaults because they default to nothing.
fn optional_keys(section: &str) -> &'static [&'static str] {
    match section {
        "tls" => &["cert_file", "key_file"],
        "media" => &["profiles_dir"],
        _ => &[],
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `section.key = …` is set, to point a person at it.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = s.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == section && l.split('=').next().map(str::trim) == Some(key) {
            return Some(i + 1);
        }
    }
    None
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Files => "files",
            Self::Off => "off",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_settings_are_checked() {
        for (text, key) in [
            ("[ui]\nbackend = \"qt\"\n", "ui.backend"),
            ("[ui]\nlanguage = \"fr\"\n", "ui.language"),
            ("[ui]\ntechnician_pin = \"12\"\n", "ui.technician_pin"),
            ("[ui]\ntechnician_pin = \"12ab\"\n", "ui.technician_pin"),
            ("[ui]\nreturn_to_welcome_secs = 1\n", "ui.return_to_welcome_secs"),
        ] {
            let c = Config::from_toml(text, "t.toml").unwrap();
            let e = c.check(Some(text), "t.toml").unwrap_err();
            assert!(e.message.contains(key), "{text}: {}", e.message);
        }
        let text = "[ui]\nbackend = \"linuxkms\"\ntechnician_pin = \"2468\"\n";
        let c = Config::from_toml(text, "t.toml").unwrap();
        c.check(Some(text), "t.toml").unwrap();
        assert_eq!((c.ui.backend.as_str(), c.ui.technician_pin.as_str()), ("linuxkms", "2468"));
        assert!(!c.to_masked_toml().contains("2468"), "the PIN is masked");
    }

    #[test]
    fn empty_file_gives_the_embedded_defaults() {
        assert_eq!(Config::from_toml("", "t.toml").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = Config::from_toml("[clinic]\nname = \"A\"\ncolour = \"red\"\n", "t.toml").unwrap_err();
        assert_eq!(e.origin, "t.toml");
        assert!(e.message.contains("line 3"), "{}", e.message);
        assert!(e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn wrong_type_and_bad_value_are_named_with_key_and_line() {
        let e = Config::from_toml("[server]\n\nlisten = 8443\n", "t.toml").unwrap_err();
        assert!(e.message.starts_with("key `server.listen`, line 3"), "{}", e.message);
        let e = Config::from_toml("[clinic]\nid = \"Main Clinic\"\n", "t.toml").unwrap_err();
        assert!(e.message.starts_with("key `clinic.id`, line 2"), "{}", e.message);
        let e = Config::from_toml("[[ice_servers]]\nurls = [\"http://x\"]\n", "t.toml").unwrap_err();
        assert!(e.message.contains("ice_servers[0].urls"), "{}", e.message);
        let e = Config::from_toml("[tls]\nmode = \"maybe\"\n", "t.toml").unwrap_err();
        assert!(e.message.starts_with("key `tls.mode`, line 2"), "{}", e.message);
    }

    #[test]
    fn cross_key_rules_point_at_the_line() {
        let text = "[tls]\nmode = \"files\"\ncert_file = \"/c.pem\"\n";
        let c = Config::from_toml(text, "t.toml").unwrap();
        let e = c.check(Some(text), "t.toml").unwrap_err();
        assert_eq!(e.message, "key `tls.key_file`: is required when tls.mode = \"files\"");
        let text = "[[ice_servers]]\nurls = [\"turn:turn.example.org\"]\n";
        let c = Config::from_toml(text, "t.toml").unwrap();
        assert!(c.check(Some(text), "t.toml").unwrap_err().message.contains("needs username and credential"));
        let text = "[auth]\nsession_hours = 0\n";
        let c = Config::from_toml(text, "t.toml").unwrap();
        assert_eq!(
            c.check(Some(text), "t.toml").unwrap_err().message,
            "key `auth.session_hours`, line 2: must be between 1 and 720"
        );
    }

    #[test]
    fn environment_overrides_scalars_and_lists_and_reports_strays() {
        let mut c = Config::default();
        let warnings = c
            .apply_env(
                [
                    ("MEDIMITRA_SERVER_LISTEN", "127.0.0.1:9443"),
                    ("MEDIMITRA_SERVER_ALLOWED_ORIGINS", "https://a.example, https://b.example"),
                    ("MEDIMITRA_AUTH_SESSION_HOURS", "2"),
                    ("MEDIMITRA_TLS_CERT_FILE", "/etc/c.pem"),
                    ("MEDIMITRA_COLOUR", "red"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(c.server.allowed_origins.len(), 2);
        assert_eq!(c.auth.session_hours, 2);
        assert_eq!(c.tls.cert_file.as_deref(), Some(Path::new("/etc/c.pem")));
        assert_eq!(warnings.len(), 1);
        let e = c.apply_env(std::iter::once(("MEDIMITRA_SERVER_LISTEN".into(), "nowhere".into()))).unwrap_err();
        assert!(e.message.contains("server.listen"), "{}", e.message);
        let e = c.apply_env(std::iter::once(("MEDIMITRA_AUTH_SESSION_HOURS".into(), "ten".into()))).unwrap_err();
        assert_eq!(e.origin, "environment variable MEDIMITRA_AUTH_SESSION_HOURS");
    }

    #[test]
    fn a_device_port_with_an_unknown_protocol_is_refused_with_the_known_ones() {
        let text = "[[devices.ports]]\npath = \"/dev/ttyUSB0\"\nprotocol = \"cms60\"\n";
        let e = Config::from_toml(text, "t").unwrap_err();
        assert!(e.message.contains("unknown device protocol \"cms60\""), "{}", e.message);
        assert!(e.message.contains("cms50d-legacy, cms50d-v46, and-standard"), "{}", e.message);
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let text = include_str!("../docs/medimitra.toml");
        assert_eq!(Config::from_toml(text, "docs/medimitra.toml").unwrap(), Config::default());
        let uncommented: String = text
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ") || r.starts_with("[[")).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&uncommented, "example").unwrap();
        assert_eq!(c.ice_servers.len(), 2);
        assert_eq!(
            c.devices.ports,
            vec![DevicePort { path: "/dev/ttyAMA0".into(), protocol: crate::core::vitals::Protocol::Cms50dLegacy }]
        );
        assert_eq!(c.tls.cert_file.as_deref(), Some(Path::new("/etc/medimitra/tls/cert.pem")));
    }

    #[test]
    fn show_masks_secrets() {
        let mut c = Config::default();
        c.ice_servers.push(IceServer {
            urls: vec![IceUrl::try_from("turn:turn.example.org:3478".to_string()).unwrap()],
            username: Some("kiosk".into()),
            credential: Some("s3cret".into()),
        });
        let shown = c.to_masked_toml();
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("********"));
    }
}
