//! First-boot provisioning as the device does it: the real binary runs `medimitra provision FILE` against a
//! configuration file, a data dir and a system root (a folder here), then `medimitra serve` runs with the result and
//! the technician logs in over HTTPS with the one-time password and must choose a new one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_medimitra");
const OTP: &str = "first-boot-otp-7731";
const WIFI_PASS: &str = "clinic wifi pass 42";
const TURN_SECRET: &str = "turn-secret-9921";

/// A kiosk's files in a temporary folder: the configuration, the data dir, a system root with a zone database, and
/// a "boot partition" folder for the provisioning file.
struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let d = Device { dir };
        for zone in ["Asia/Kolkata", "UTC"] {
            let p = d.root().join("usr/share/zoneinfo").join(zone);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"TZif").unwrap();
        }
        std::fs::create_dir_all(d.boot()).unwrap();
        std::fs::write(
            d.config(),
            format!("# the image's configuration\n[storage]\ndata_dir = \"{}\"\n", d.data().display()),
        )
        .unwrap();
        d
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn boot(&self) -> PathBuf {
        self.dir.path().join("boot")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("medimitra.toml")
    }
    fn file(&self) -> PathBuf {
        self.boot().join("medimitra-provision.toml")
    }
    fn provision(&self, text: &str) -> Output {
        std::fs::write(self.file(), text).unwrap();
        self.run(&["provision", self.file().to_str().unwrap(), "--root", self.root().to_str().unwrap()])
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("MEDIMITRA_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
    /// Everything provisioning may change, to compare before and after a refused file.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root(), self.data()];
        stack.push(self.config());
        while let Some(p) = stack.pop() {
            if let Ok(target) = std::fs::read_link(&p) {
                out.push((p.display().to_string(), target.display().to_string().into_bytes()));
            } else if p.is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    stack.push(e.unwrap().path());
                }
            } else if p.is_file() {
                // The database is compared by its accounts below; its WAL files change on every open.
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if !name.starts_with("medimitra.sqlite3") && name != "provisioning.json" {
                    out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
    fn accounts(&self) -> String {
        text(&self.run(&["account", "list"]))
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tls_pair() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["kiosk.clinic.example".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "kiosk.clinic.example");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn valid_file() -> String {
    format!(
        r#"
[clinic]
name = "PHC Rampur"
id = "phc-rampur"
timezone = "Asia/Kolkata"
two_factor_for_doctors = true

[wifi]
ssid = "Clinic \"Main\" Net"
password = "{WIFI_PASS}"
country = "IN"

[turn]
urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
username = "kiosk-17"
credential = "{TURN_SECRET}"
stun_urls = ["stun:turn.example.org:3478"]

[tls]
mode = "auto"

[technician]
name = "Asha Verma"
email = "Asha@Clinic.example"
one_time_password = "{OTP}"

[kiosk]
language = "hi"
technician_pin = "482913"
"#
    )
}

#[test]
fn a_valid_file_is_applied_and_removed() {
    let dev = Device::new();
    let out = dev.provision(&valid_file());
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("provisioned clinic phc-rampur"), "{said}");
    for secret in [OTP, WIFI_PASS, TURN_SECRET] {
        assert!(!said.contains(secret), "a secret was printed: {said}");
    }
    assert!(!dev.file().exists(), "the provisioning file must be gone");
    assert!(!dev.boot().join("medimitra-provision-error.txt").exists());

    // The configuration: clinic, TURN and STUN, language and PIN; it still loads (`config check`).
    let config = std::fs::read_to_string(dev.config()).unwrap();
    let parsed: toml::Table = config.parse().unwrap();
    assert_eq!(parsed["clinic"]["name"].as_str(), Some("PHC Rampur"));
    assert_eq!(parsed["clinic"]["id"].as_str(), Some("phc-rampur"));
    assert_eq!(parsed["ui"]["language"].as_str(), Some("hi"));
    assert_eq!(parsed["ui"]["technician_pin"].as_str(), Some("482913"));
    assert_eq!(parsed["auth"]["two_factor_for_doctors"].as_bool(), Some(true), "the clinic's two-factor policy");
    let ice = parsed["ice_servers"].as_array().unwrap();
    assert_eq!(ice.len(), 2);
    assert_eq!(ice[0]["urls"][0].as_str(), Some("stun:turn.example.org:3478"));
    assert_eq!(ice[1]["urls"][1].as_str(), Some("turns:turn.example.org:5349"));
    assert_eq!(ice[1]["credential"].as_str(), Some(TURN_SECRET));
    assert_eq!(parsed["storage"]["data_dir"].as_str(), Some(dev.data().to_str().unwrap()));
    let check = dev.run(&["config", "check"]);
    assert!(check.status.success(), "{}", text(&check));

    // Time zone and Wi-Fi in the system root; Wi-Fi holds the derived key, not the passphrase, and is private.
    assert_eq!(
        std::fs::read_link(dev.root().join("etc/localtime")).unwrap(),
        PathBuf::from("/usr/share/zoneinfo/Asia/Kolkata")
    );
    assert_eq!(std::fs::read_to_string(dev.root().join("etc/timezone")).unwrap(), "Asia/Kolkata\n");
    let wpa_path = dev.root().join("etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    let wpa = std::fs::read_to_string(&wpa_path).unwrap();
    let psk = medimitra::provision::wpa_psk("Clinic \"Main\" Net", WIFI_PASS).unwrap();
    assert!(wpa.contains(&format!("psk={psk}")), "{wpa}");
    assert!(wpa.contains(&format!("ssid={}", hex::encode("Clinic \"Main\" Net"))), "{wpa}");
    assert!(wpa.contains("country=IN"));
    assert!(!wpa.contains(WIFI_PASS));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&wpa_path).unwrap().permissions().mode() & 0o777, 0o600);
    let wants = dev.root().join("etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service");
    assert_eq!(std::fs::read_link(wants).unwrap(), PathBuf::from("/lib/systemd/system/wpa_supplicant@.service"));

    // The technician's account exists (e-mail lower-cased); nothing staged is left behind.
    assert!(dev.accounts().contains("asha@clinic.example"), "{}", dev.accounts());
    let leftovers: Vec<_> =
        dev.snapshot().into_iter().filter(|(p, _)| p.ends_with(".provision-new")).map(|(p, _)| p).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn the_technician_logs_in_with_the_one_time_password_and_must_change_it() {
    let dev = Device::new();
    let out = dev.provision(&valid_file());
    assert!(out.status.success(), "{}", text(&out));
    let (_server, url) = serve(&dev);
    let cert = std::fs::read(dev.data().join("tls/cert.pem")).unwrap();
    let client = support::server::https_client(&cert);

    let health: serde_json::Value = client.get(format!("{url}/api/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["clinic"]["name"], "PHC Rampur");
    assert_eq!(health["clinic"]["id"], "phc-rampur");

    let login = |password: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/api/auth/login"))
                .json(&serde_json::json!({"email": "asha@clinic.example", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let resp = login(OTP).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["mustChangePassword"], true);
    assert_eq!(body["user"]["role"], "technician");
    let token = body["token"].as_str().unwrap().to_string();

    // Until a new password is chosen, only the profile, logout and the password change answer.
    let list = client.get(format!("{url}/api/accounts")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(list.status().as_u16(), 403);
    let err: serde_json::Value = list.json().await.unwrap();
    assert_eq!(err["code"], "password_change_required", "{err}");
    let me = client.get(format!("{url}/api/users/profile")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);

    let change = |current: &str, new: &str| {
        client
            .post(format!("{url}/api/auth/password"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"currentPassword": current, "newPassword": new}))
            .send()
    };
    assert_eq!(change("wrong password here", "my own new password").await.unwrap().status().as_u16(), 403);
    assert_eq!(change(OTP, "short").await.unwrap().status().as_u16(), 422);
    assert_eq!(change(OTP, OTP).await.unwrap().status().as_u16(), 400);
    let ok = change(OTP, "my own new password").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let me: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(me["mustChangePassword"], false);

    // Technicians log in with a second factor: the session must set it up before anything else.
    let list = client.get(format!("{url}/api/accounts")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(list.status().as_u16(), 403);
    assert_eq!(list.json::<serde_json::Value>().await.unwrap()["code"], "two_factor_setup_required");
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{url}{path}")).bearer_auth(&token).json(&body).send()
    };
    let setup: serde_json::Value =
        post("/api/auth/2fa/setup", serde_json::json!({})).await.unwrap().json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    let code = support::totp_code(&secret, 0);
    let confirmed = post("/api/auth/2fa/confirm", serde_json::json!({"code": code})).await.unwrap();
    assert_eq!(confirmed.status().as_u16(), 200);

    // The same session now reaches everything a technician may; the one-time password no longer works, and the new
    // one asks for the second factor.
    let list = client.get(format!("{url}/api/accounts")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(list.status().as_u16(), 200);
    assert_eq!(login(OTP).await.status().as_u16(), 401);
    let again = login("my own new password").await;
    assert_eq!(again.status().as_u16(), 401);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["code"], "second_factor_required");

    // Guessing the current password from a session is throttled like logins: 403 until the limit, then 429.
    let mut codes = Vec::new();
    for i in 0..7 {
        codes.push(change(&format!("guess number {i} here"), "yet another password").await.unwrap().status().as_u16());
    }
    assert_eq!(codes[0], 403, "{codes:?}");
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
}

/// `medimitra serve` on the device's configuration and a port it picks, once it listens; and its base URL.
fn serve(dev: &Device) -> (support::KillOnDrop, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dev.config())
        .args(["serve", "--headless", "--listen", "127.0.0.1:0"])
        .env_remove("MEDIMITRA_CONFIG")
        .env("MEDIMITRA_MEDIA_VIDEO_SOURCE", "test")
        .env("MEDIMITRA_MEDIA_AUDIO_SOURCE", "test")
        .env("MEDIMITRA_MEDIA_AUDIO_SINK", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = support::KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(url) = line.strip_prefix("Doctors open: ")
        {
            return (server, url.trim_end_matches('/').to_string());
        }
    }
    panic!("the kiosk did not listen within 30 s");
}

/// One field broken at a time: each is refused with its key named, nothing changes, no secret is echoed, the file
/// is removed and the reason is left beside it and shown on the kiosk's screen (the data dir's record).
#[test]
fn each_invalid_field_is_refused_by_name_and_nothing_changes() {
    let dev = Device::new();
    // A first, valid provisioning: the state that must survive every refused file.
    assert!(dev.provision(&valid_file()).status.success());
    let before = dev.snapshot();
    let accounts_before = dev.accounts();
    let (cert, _) = tls_pair();
    let (_, other_key) = tls_pair();
    let good = valid_file();
    let cases: Vec<(&str, String)> = vec![
        ("clinic.id", good.replace("id = \"phc-rampur\"", "id = \"PHC Rampur\"")),
        ("clinic.name", good.replace("name = \"PHC Rampur\"", "name = \"\"")),
        ("clinic.timezone", good.replace("Asia/Kolkata", "Asia/Atlantis")),
        ("clinic.timezone", good.replace("Asia/Kolkata", "../../etc/passwd")),
        ("[clinic]", good.replace("[clinic]", "[clinik]")),
        (
            "clinic.two_factor_for_doctors",
            good.replace("two_factor_for_doctors = true", "two_factor_for_doctors = \"yes\""),
        ),
        ("wifi.password", good.replace(WIFI_PASS, "short")),
        ("wifi.country", good.replace("country = \"IN\"", "country = \"India\"")),
        ("wifi.ssid", good.replace("ssid = \"Clinic \\\"Main\\\" Net\"", "ssid = \"\"")),
        ("turn.urls[0]", good.replace("turn:turn.example.org:3478?transport=udp", "http://turn.example.org")),
        ("turn.credential", good.replace(&format!("credential = \"{TURN_SECRET}\""), "")),
        ("turn.stun_urls[0]", good.replace("stun:turn.example.org:3478", "turn:nope")),
        ("tls.mode", good.replace("mode = \"auto\"", "mode = \"off\"")),
        ("tls.certificate", good.replace("mode = \"auto\"", "mode = \"files\"\nprivate_key = \"x\"")),
        (
            "tls.private_key",
            good.replace(
                "mode = \"auto\"",
                &format!("mode = \"files\"\ncertificate = '''{cert}'''\nprivate_key = '''{other_key}'''"),
            ),
        ),
        ("technician.email", good.replace("Asha@Clinic.example", "not-an-email")),
        ("technician.one_time_password", good.replace(OTP, "aaaaaaaaaaaa")),
        ("technician.name", good.replace("name = \"Asha Verma\"", "name = 42")),
        ("kiosk.language", good.replace("language = \"hi\"", "language = \"fr\"")),
        ("kiosk.technician_pin", good.replace("\"482913\"", "\"12ab\"")),
        ("kiosk.colour", good.replace("[kiosk]", "[kiosk]\ncolour = \"blue\"")),
        ("not valid TOML", good.replace("[tls]", "[tls")),
    ];
    for (key, file) in &cases {
        assert_ne!(file, &good, "case {key} did not change the file");
        let out = dev.provision(file);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {said}");
        assert!(said.contains(key), "{key} not named in: {said}");
        assert!(said.contains("nothing was changed"), "{said}");
        for secret in [OTP, WIFI_PASS, TURN_SECRET, "aaaaaaaaaaaa"] {
            assert!(!said.contains(secret), "{key}: a secret was printed: {said}");
        }
        assert!(!dev.file().exists(), "{key}: the refused file must be removed (it holds secrets)");
        let reason = std::fs::read_to_string(dev.boot().join("medimitra-provision-error.txt")).unwrap();
        assert!(reason.contains(key) && reason.contains("Nothing was changed"), "{reason}");
        assert!(!reason.contains(OTP) && !reason.contains(WIFI_PASS));
        assert_eq!(dev.snapshot(), before, "{key}: something changed");
        assert_eq!(dev.accounts(), accounts_before, "{key}: the accounts changed");
        let failure = medimitra::provision::last_failure(&dev.data()).expect("a recorded failure");
        assert!(failure.iter().any(|p| p.contains(key)), "{failure:?}");
    }

    // A doctor's e-mail cannot become the technician's.
    let add = Command::new(BIN)
        .arg("--config")
        .arg(dev.config())
        .args(["account", "add", "--name", "Dr. Rao", "--email", "rao@clinic.example"])
        .env_remove("MEDIMITRA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"a doctor's password\n")?;
            c.wait()
        })
        .unwrap();
    assert!(add.success());
    let before = dev.snapshot();
    let out = dev.provision(&good.replace("Asha@Clinic.example", "rao@clinic.example"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("technician.email: belongs to a doctor"), "{}", text(&out));
    assert_eq!(dev.snapshot(), before);

    // Several problems are all named at once.
    let out = dev.provision(&good.replace("phc-rampur", "PHC").replace("\"IN\"", "\"in\""));
    let said = text(&out);
    assert!(said.contains("clinic.id") && said.contains("wifi.country"), "{said}");

    // A later good file clears the failure.
    assert!(dev.provision(&good).status.success());
    assert!(medimitra::provision::last_failure(&dev.data()).is_none());
    assert!(!dev.boot().join("medimitra-provision-error.txt").exists());
}

#[test]
fn provisioning_again_replaces_the_settings() {
    let dev = Device::new();
    assert!(dev.provision(&valid_file()).status.success());
    let (cert, key) = tls_pair();
    // Wired only, no TURN, the clinic's own certificate, another clinic; the same technician gets a new OTP.
    let second = format!(
        r#"
[clinic]
name = "CHC Sitapur"
id = "chc-sitapur"
timezone = "UTC"

[tls]
mode = "files"
certificate = '''{cert}'''
private_key = '''{key}'''

[technician]
name = "Asha Verma"
email = "asha@clinic.example"
one_time_password = "second-otp-5512"
"#
    );
    let out = dev.provision(&second);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("technician account reset"), "{}", text(&out));
    assert!(text(&out).contains("TLS certificate fingerprint"), "{}", text(&out));
    let parsed: toml::Table = std::fs::read_to_string(dev.config()).unwrap().parse().unwrap();
    assert_eq!(parsed["clinic"]["id"].as_str(), Some("chc-sitapur"));
    assert!(parsed.get("ice_servers").is_none_or(|v| v.as_array().is_some_and(|a| a.is_empty())));
    assert_eq!(parsed["tls"]["mode"].as_str(), Some("files"));
    // The language and PIN were left out, so they stay.
    assert_eq!(parsed["ui"]["language"].as_str(), Some("hi"));
    let key_file = PathBuf::from(parsed["tls"]["key_file"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!dev.root().join("etc/wpa_supplicant/wpa_supplicant-wlan0.conf").exists());
    assert!(!dev.root().join("etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service").exists());
    assert_eq!(std::fs::read_link(dev.root().join("etc/localtime")).unwrap(), Path::new("/usr/share/zoneinfo/UTC"));
    assert_eq!(dev.accounts().matches("technician").count(), 1, "{}", dev.accounts());

    // `--check` reads a file on a laptop without changing anything or removing it.
    std::fs::write(dev.file(), valid_file()).unwrap();
    let out = dev.run(&["provision", "--check", dev.file().to_str().unwrap(), "--root", dev.root().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dev.file().exists());
}
