//! The device files: every rule in `udev/` parses (keys, operators, quoted values, line continuations) with udev's own vocabulary,
//! and the rules the kiosk needs are there. (bookworm's udevadm 252 has no `verify`; this is the check instead.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

const MATCH_KEYS: &[&str] = &["SUBSYSTEM", "KERNEL", "ATTR", "ATTRS", "ENV", "ACTION", "DRIVERS", "SUBSYSTEMS", "TAG"];
const ASSIGN_KEYS: &[&str] = &["GROUP", "MODE", "OWNER", "SYMLINK", "ENV", "TAG", "RUN", "NAME"];

#[derive(Debug, PartialEq)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

fn parse_rule(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).ok_or("a key with no operator")?;
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(r) = rest.strip_prefix('{') {
            let close = r.find('}').ok_or(format!("{key}{{ not closed"))?;
            attr = Some(r[..close].to_string());
            rest = &r[close + 1..];
        }
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|o| rest.starts_with(o))
            .ok_or(format!("{key}: no operator"))?;
        rest = &rest[op.len()..];
        let r = rest.strip_prefix('"').ok_or(format!("{key}: value not quoted"))?;
        let close = r.find('"').ok_or(format!("{key}: quote not closed"))?;
        let value = r[..close].to_string();
        rest = r[close + 1..].trim_start();
        if !rest.is_empty() {
            rest = rest.strip_prefix(',').ok_or(format!("after {key}: a comma is missing"))?.trim_start();
        }
        let is_match = op == "==" || op == "!=";
        let known = if is_match { MATCH_KEYS } else { ASSIGN_KEYS };
        if !known.contains(&key) {
            return Err(format!("`{key}` is not a udev {} key", if is_match { "match" } else { "assignment" }));
        }
        if (key == "ATTR" || key == "ATTRS" || key == "ENV") && attr.is_none() {
            return Err(format!("{key} needs {{name}}"));
        }
        if key == "MODE" && !(value.len() == 4 && value.bytes().all(|b| (b'0'..=b'7').contains(&b))) {
            return Err(format!("MODE `{value}` is not an octal mode"));
        }
        pairs.push(Pair { key: key.into(), attr, op: op.into(), value });
    }
    if !pairs.iter().any(|p| p.op == "==") {
        return Err("a rule with no match key applies to every device".into());
    }
    Ok(pairs)
}

fn rules() -> Vec<(String, usize, Vec<Pair>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("udev");
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with(".rules") && name.chars().next().is_some_and(|c| c.is_ascii_digit()), "{name}");
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.replace("\\\n", " ").lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_rule(line) {
                Ok(p) => all.push((name.clone(), i + 1, p)),
                Err(e) => panic!("{name}:{}: {e}\n{line}", i + 1),
            }
        }
    }
    all
}

fn has(rules: &[(String, usize, Vec<Pair>)], want: &[(&str, &str, &str)]) -> bool {
    rules.iter().any(|(_, _, pairs)| {
        want.iter().all(|(k, op, v)| pairs.iter().any(|p| p.key == *k && p.op == *op && p.value.contains(v)))
    })
}

#[test]
fn every_rule_parses_and_the_kiosk_gets_its_devices() {
    let r = rules();
    assert!(has(&r, &[("SUBSYSTEM", "==", "video4linux"), ("GROUP", "=", "video")]), "cameras");
    assert!(has(&r, &[("SUBSYSTEM", "==", "drm"), ("GROUP", "=", "video")]), "KMS");
    assert!(has(&r, &[("SUBSYSTEM", "==", "drm"), ("GROUP", "=", "render")]), "render nodes");
    assert!(has(&r, &[("SUBSYSTEM", "==", "input"), ("GROUP", "=", "input")]), "touch");
    assert!(has(&r, &[("ATTR", "==", "bcm2835-codec-encode"), ("SYMLINK", "+=", "medimitra/")]), "Pi 4 encoder");
    let rotation = r.iter().flat_map(|(_, _, p)| p).any(|p| p.attr.as_deref() == Some("LIBINPUT_CALIBRATION_MATRIX"));
    assert!(rotation, "touch rotation");
    let serial: Vec<_> =
        r.iter().filter(|(_, _, p)| p.iter().any(|p| p.key == "SUBSYSTEM" && p.value == "tty")).collect();
    assert!(serial.len() >= 4, "vitals adapters");
    for (file, line, pairs) in serial {
        let get = |k: &str, a: Option<&str>| {
            pairs.iter().find(|p| p.key == k && p.attr.as_deref() == a).map(|p| p.value.as_str())
        };
        assert_eq!(get("ENV", Some("ID_MM_DEVICE_IGNORE")), Some("1"), "{file}:{line}: ModemManager must ignore it");
        assert!(get("SYMLINK", None).is_some_and(|s| s.starts_with("medimitra/")), "{file}:{line}: stable name");
        assert_eq!(get("GROUP", None), Some("dialout"), "{file}:{line}");
    }
}

#[test]
fn the_parser_refuses_what_udev_would() {
    for bad in [
        "SUBSYSTEM==\"tty\" GROUP=\"dialout\"",
        "SUBSYSTEM==tty",
        "SUBSYSTM==\"tty\"",
        "ATTRS==\"x\"",
        "SUBSYSTEM==\"tty\", MODE=\"660\"",
        "GROUP=\"video\"",
        "SUBSYSTEM==\"tty\", ENV{A}=\"1",
    ] {
        assert!(parse_rule(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_service_unit_is_notify_with_a_watchdog_and_hardened() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image/medimitra.service");
    let text = std::fs::read_to_string(path).unwrap();
    let keys: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| l.split_once('=').unwrap_or_else(|| panic!("not key=value: {l}")))
        .collect();
    let get = |k: &str| keys.iter().filter(|(key, _)| *key == k).map(|(_, v)| *v).collect::<Vec<_>>();
    for (k, v) in [
        ("Type", "notify"),
        ("Restart", "always"),
        ("User", "medimitra"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ReadWritePaths", "/var/lib/medimitra"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
    ] {
        assert_eq!(get(k), vec![v], "{k}");
    }
    assert!(get("WatchdogSec").first().is_some_and(|v| v.trim_end_matches('s').parse::<u32>().is_ok()));
    let allowed = get("DeviceAllow").join(" ");
    for dev in ["char-drm", "char-video4linux", "char-input", "char-alsa", "char-ttyUSB"] {
        assert!(allowed.contains(dev), "DeviceAllow lacks {dev}: {allowed}");
    }
    let exec = get("ExecStart");
    assert!(exec.first().is_some_and(|e| e.contains("medimitra") && e.contains("serve")), "{exec:?}");
    // Room for the connection cap (server.max_connections) over systemd's soft 1024.
    assert!(get("LimitNOFILE").first().and_then(|v| v.parse::<u32>().ok()).is_some_and(|n| n >= 4096 + 256));
}

#[test]
fn the_service_units_exposure_is_at_most_2() {
    // systemd's own rating of the unit's sandbox (5.2 before the system-call filter and the rest).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image/medimitra.service");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no level in {line}"));
    println!("{line}");
    assert!(level <= 2.0, "{line}");
}

fn unit_keys(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| l.split_once('=').unwrap_or_else(|| panic!("not key=value: {l}")))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_provisioning_unit_runs_once_per_file_before_the_kiosk() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image/medimitra-provision.service");
    // The image build puts the boot partition's mount point in place of @BOOT@.
    let text = std::fs::read_to_string(path).unwrap().replace("@BOOT@", "/boot/efi");
    let keys = unit_keys(&text);
    let get = |k: &str| keys.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("Type"), ["oneshot"]);
    assert_eq!(get("ConditionPathExists"), ["/boot/efi/medimitra-provision.toml"]);
    assert_eq!(get("Before"), ["medimitra.service"]);
    assert!(
        get("RequiresMountsFor")[0].contains("/boot/efi") && get("RequiresMountsFor")[0].contains("/var/lib/medimitra")
    );
    let exec = get("ExecStart")[0];
    assert!(exec.starts_with("/usr/bin/medimitra ") && exec.ends_with("provision /boot/efi/medimitra-provision.toml"));
    // A refused file (exit 2) must not fail the boot; files made as root go to the kiosk's user either way.
    assert_eq!(get("SuccessExitStatus"), ["2"]);
    assert!(get("ExecStopPost")[0].contains("chown -R medimitra:medimitra /var/lib/medimitra"));
    let kiosk =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image/medimitra.service"))
            .unwrap();
    assert!(kiosk.contains("medimitra-provision.service"), "the kiosk must start after provisioning");
}

#[test]
fn the_firewall_parses_and_opens_only_the_https_port() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image/rootfs/etc/nftables.conf");
    // `nft --check` parses the whole ruleset and checks it against the kernel without loading it.
    let out = std::process::Command::new("nft").args(["--check", "--file"]).arg(&path).output().expect("nft");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("type filter hook input priority filter; policy drop;"));
    let opened: Vec<&str> =
        text.lines().map(str::trim).filter(|l| l.contains("dport") && l.contains("accept")).collect();
    let tcp: Vec<&&str> = opened.iter().filter(|l| l.starts_with("tcp")).collect();
    assert_eq!(tcp.len(), 1, "{opened:?}");
    assert!(tcp[0].starts_with("tcp dport 8443 accept"), "{opened:?}");
    // UDP only for DHCP replies (media is opened by the kiosk's own ICE checks: conntrack's established/related).
    for l in opened.iter().filter(|l| l.starts_with("udp")) {
        assert!(l.contains("dport 68 ") || l.contains("dport 546 "), "unexpected open UDP port: {l}");
    }
}
