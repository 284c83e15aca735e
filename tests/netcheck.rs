//! The kiosk's network check against a real TURN server (coturn on loopback): a STUN answer, a TURN allocation with
//! long-term credentials (and its release), wrong credentials, a server that does not answer; through the library
//! and the `medimitra check network` command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use medimitra::config::IceServer;
use medimitra::netcheck::{Outcome, check};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::KillOnDrop;

struct Turn {
    _proc: KillOnDrop,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn coturn() -> Turn {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let log = dir.path().join("turn.log");
    let relay = 40_000 + (port % 200) * 20;
    let proc = Command::new("turnserver")
        .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
        .args(["--listening-port", &port.to_string(), "--min-port", &relay.to_string()])
        .args(["--max-port", &(relay + 19).to_string(), "--lt-cred-mech", "--realm", "medimitra.test"])
        .arg("--user=kiosk:secret")
        // The probe sends to the relay's own (loopback) address; coturn refuses loopback peers unless told.
        .arg("--allow-loopback-peers")
        .arg(format!("--pidfile={}", dir.path().join("pid").display()))
        .arg(format!("--userdb={}", dir.path().join("db").display()))
        .args(["--log-file", "stdout", "--simple-log", "-v"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian coturn)");
    let turn = Turn { _proc: KillOnDrop(proc), port, log, _dir: dir };
    // Ready when it answers a STUN binding.
    let t0 = Instant::now();
    while !matches!(
        check(&servers(&turn, &["stun"], "secret"), Duration::from_millis(300)).servers[0].outcome,
        Outcome::Reached { .. }
    ) {
        assert!(t0.elapsed() < Duration::from_secs(10), "coturn did not start");
    }
    turn
}

fn servers(t: &Turn, schemes: &[&str], password: &str) -> Vec<IceServer> {
    let urls: Vec<String> = schemes.iter().map(|s| format!("{s}:127.0.0.1:{}", t.port)).collect();
    let toml = format!("urls = {urls:?}\nusername = \"kiosk\"\ncredential = \"{password}\"\n");
    vec![toml::from_str(&toml).unwrap()]
}

#[test]
fn the_check_gets_a_real_relay_names_wrong_credentials_and_a_silent_server() {
    let t = coturn();
    let good = check(&servers(&t, &["stun", "turn"], "secret"), Duration::from_secs(3));
    assert!(good.good_for_video, "{good:?}");
    assert!(good.verdict.starts_with("good for video") && good.verdict.contains("TURN relay is available"), "{good:?}");
    match &good.servers[1].outcome {
        Outcome::Reached { relayed: Some(r), mapped: Some(m), relay_kbps, .. } => {
            assert_eq!(r.ip().to_string(), "127.0.0.1");
            assert_eq!(m.ip().to_string(), "127.0.0.1");
            // The probe's train came back through the relay (on loopback: fast; the rate of a capped link is
            // tests/network.rs's).
            assert!(relay_kbps.is_some_and(|k| k > 2000), "{relay_kbps:?}");
            assert!(good.verdict.contains("through the relay"), "{good:?}");
        }
        other => panic!("no relay: {other:?}"),
    }
    // The allocation was made with the credentials and released at once (coturn logs both).
    let log = std::fs::read_to_string(&t.log).unwrap();
    assert!(log.contains("ALLOCATE processed, success"), "{log}");
    assert!(log.contains("REFRESH processed, success"), "{log}");

    let wrong = check(&servers(&t, &["turn"], "not-the-secret"), Duration::from_secs(3));
    assert_eq!(wrong.servers[0].outcome, Outcome::Refused { code: 401, reason: "Unauthorized".into() });
    assert!(!wrong.good_for_video && wrong.verdict.contains("refused the kiosk's credentials"), "{wrong:?}");

    // Nobody listening: no answer within the time allowed; a TLS URL is named, not tried.
    let silent: Vec<IceServer> = vec![
        toml::from_str(&format!("urls = [\"turn:127.0.0.1:{}\", \"turns:127.0.0.1:5349\"]", free_udp_port())).unwrap(),
    ];
    let t0 = Instant::now();
    let none = check(&silent, Duration::from_secs(1));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(none.servers[0].outcome, Outcome::NoAnswer);
    assert!(matches!(none.servers[1].outcome, Outcome::NotChecked { .. }));
    assert!(none.verdict.starts_with("cannot reach any STUN or TURN server"), "{none:?}");

    // The technician's command says the same, and fails when there is a problem.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medimitra.toml");
    let write = |password: &str| {
        std::fs::write(
            &config,
            format!(
                "[[ice_servers]]\nurls = [\"turn:127.0.0.1:{}\"]\nusername = \"kiosk\"\ncredential = \"{password}\"\n",
                t.port
            ),
        )
        .unwrap()
    };
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_medimitra"))
            .args(["--config", config.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()])
            .args(["check", "network", "--timeout", "2"])
            .output()
            .unwrap()
    };
    write("secret");
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("allocated (and released)") && text.contains("verdict: good for video"), "{text}");
    assert!(!text.contains("secret"), "the credential is never printed: {text}");
    write("wrong-one");
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused: 401 Unauthorized"));
}
