//! A small internet in network namespaces: the kiosk and the doctor each behind their own symmetric NAT (nftables
//! `masquerade random`: a new public port for every destination, so no direct path can be punched; unsolicited
//! packets silently dropped), a TURN server
//! (coturn) on the "internet" between them, and a port forward of the kiosk's HTTPS port so the doctor can reach it.
//! The kiosk's own namespace loads the device image's firewall (`image/rootfs/etc/nftables.conf`).
//!
//! ```text
//!  kiosk 10.1.0.2 ── 10.1.0.1 [nat-k] 198.18.1.2 ── 198.18.1.1 [internet: TURN 198.18.0.1] 198.18.2.1 ──
//!                                                            198.18.2.2 [nat-d] 10.2.0.1 ── 10.2.0.2 doctor
//! ```
//! Addresses are from 10/8 and the benchmarking range 198.18/15: nothing leaves the namespaces.
#![allow(dead_code)]

use super::kiosk::{KioskProcess, Where};
use std::io::Write;
use std::process::{Command, Stdio};

pub const KIOSK_ADDR: &str = "10.1.0.2";
/// The kiosk's NAT's public address, where its HTTPS port is forwarded.
pub const KIOSK_PUBLIC: &str = "198.18.1.2";
pub const TURN_ADDR: &str = "198.18.0.1";
pub const TURN_USER: &str = "kiosk";
pub const TURN_PASSWORD: &str = "turn-test-secret";
pub const HTTPS_PORT: u16 = 8443;

pub struct NatLab {
    pub prefix: String,
    /// The process that created the namespaces removes them.
    owner: bool,
}

const ROLES: [&str; 5] = ["k", "d", "nk", "nd", "i"];

impl NatLab {
    /// The lab's namespaces for prefix `prefix`, as created by another process.
    pub fn existing(prefix: &str) -> NatLab {
        NatLab { prefix: prefix.to_string(), owner: false }
    }

    /// A fresh lab; its namespaces are named after this process and a per-process count, so labs made by tests
    /// running side by side never share (or delete) each other's namespaces.
    pub fn create() -> NatLab {
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lab = NatLab { prefix: format!("mmnat{}n{n}", std::process::id()), owner: true };
        for role in ROLES {
            run("ip", &["netns", "add", &lab.ns(role)]);
            super::kiosk::without_duplicate_address_detection(&lab.ns(role));
            lab.ip(role, &["link", "set", "lo", "up"]);
        }
        // Links: (side a, its interface, address) <-> (side b, its interface, address).
        let links = [
            ("k", "eth0", "10.1.0.2/24", "nk", "in", "10.1.0.1/24"),
            ("d", "eth0", "10.2.0.2/24", "nd", "in", "10.2.0.1/24"),
            ("nk", "out", "198.18.1.2/24", "i", "tok", "198.18.1.1/24"),
            ("nd", "out", "198.18.2.2/24", "i", "tod", "198.18.2.1/24"),
        ];
        for (a, ia, aa, b, ib, ab) in links {
            // Made inside the lab's own namespaces, so a fixed name cannot clash (and stays under 15 bytes).
            let tmp = "mmveth";
            run("ip", &["-n", &lab.ns(a), "link", "add", ia, "type", "veth", "peer", "name", tmp]);
            run("ip", &["-n", &lab.ns(a), "link", "set", tmp, "netns", &lab.ns(b)]);
            lab.ip(b, &["link", "set", tmp, "name", ib]);
            lab.ip(a, &["addr", "add", aa, "dev", ia]);
            lab.ip(b, &["addr", "add", ab, "dev", ib]);
            lab.ip(a, &["link", "set", ia, "up"]);
            lab.ip(b, &["link", "set", ib, "up"]);
        }
        lab.ip("i", &["addr", "add", &format!("{TURN_ADDR}/32"), "dev", "lo"]);
        // The rest of the internet: private addresses (the peers' host candidates) go out and vanish, as they do on
        // a real TURN server. Without a route coturn's sends fail with ENETUNREACH and it closes the relay socket.
        run("ip", &["-n", &lab.ns("i"), "link", "add", "sink", "type", "veth", "peer", "name", "sinkpeer"]);
        lab.ip("i", &["link", "set", "sink", "up"]);
        lab.ip("i", &["link", "set", "sinkpeer", "up"]);
        lab.ip("i", &["route", "add", "default", "dev", "sink"]);
        lab.ip("k", &["route", "add", "default", "via", "10.1.0.1"]);
        lab.ip("d", &["route", "add", "default", "via", "10.2.0.1"]);
        lab.ip("nk", &["route", "add", "default", "via", "198.18.1.1"]);
        lab.ip("nd", &["route", "add", "default", "via", "198.18.2.1"]);
        for role in ["nk", "nd", "i"] {
            lab.exec(role, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        }
        lab.nft(
            "nk",
            &format!(
                "table ip nat {{\n chain pre {{ type nat hook prerouting priority -100; iifname \"out\" tcp dport \
                 {HTTPS_PORT} dnat to {KIOSK_ADDR}:{HTTPS_PORT}; }}\n chain post {{ type nat hook postrouting priority \
                 100; oifname \"out\" masquerade random; }}\n chain in {{ type filter hook input priority 0; iifname \
                 \"out\" drop; }}\n}}\n"
            ),
        );
        // The kiosk sits behind the device image's own firewall: only its HTTPS port comes in; replies to what it
        // sent (TURN, its ICE checks and the media they open) pass by conntrack.
        let firewall = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/image/rootfs/etc/nftables.conf"))
            .expect("the image's firewall rules");
        lab.nft("k", &firewall);
        lab.nft(
            "nd",
            "table ip nat {\n chain post { type nat hook postrouting priority 100; oifname \"out\" masquerade random; }\n \
             chain in { type filter hook input priority 0; iifname \"out\" drop; }\n}\n",
        );
        for role in ROLES {
            super::kiosk::wait_until_addresses_settle(&lab.ns(role));
        }
        lab
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    fn ip(&self, role: &str, args: &[&str]) {
        let ns = self.ns(role);
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    fn exec(&self, role: &str, args: &[&str]) {
        let ns = self.ns(role);
        let mut all = vec!["netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    pub fn nft(&self, role: &str, script: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft: the NAT tests need nftables");
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("nft script");
        assert!(child.wait().expect("nft").success(), "nft failed in {role}:\n{script}");
    }

    /// Drops all UDP through the kiosk's NAT (media and TURN), leaving TCP (the signaling socket) alone.
    pub fn cut_kiosk_udp(&self) {
        self.nft(
            "nk",
            "table ip cut {\n chain block { type filter hook forward priority 0; meta l4proto udp drop; }\n}\n",
        );
    }

    pub fn restore_kiosk_udp(&self) {
        self.nft("nk", "delete table ip cut\n");
    }

    /// coturn on the internet namespace, long-term credentials, UDP only, relaying between the two NATs.
    pub fn start_turn(&self, dir: &std::path::Path) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns("i"), "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls"])
            .args(["--listening-ip", TURN_ADDR, "--relay-ip", TURN_ADDR, "--listening-port", "3478"])
            .args(["--min-port", "50000", "--max-port", "50999", "--lt-cred-mech", "--realm", "medimitra.test"])
            .arg(format!("--user={TURN_USER}:{TURN_PASSWORD}"))
            .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .args(["--log-file", "stdout", "--simple-log", "-v"])
            .stdout(if std::env::var_os("TURN_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver: the NAT tests need coturn")
    }
}

/// Where the real kiosk runs in `lab`: its namespace, listening on every address, reached by the doctor at its
/// NAT's public address, with the lab's TURN server; `width`×`height`. Callers add their own settings.
pub fn kiosk_where(lab: &NatLab, width: u32, height: u32) -> Where {
    Where {
        width,
        height,
        netns: Some(lab.ns("k")),
        listen: Some(format!("0.0.0.0:{HTTPS_PORT}")),
        url: Some(format!("https://{KIOSK_PUBLIC}:{HTTPS_PORT}/")),
        extra_config: format!(
            "[[ice_servers]]\nurls = [\"turn:{TURN_ADDR}:3478\"]\nusername = \"{TURN_USER}\"\n\
             credential = \"{TURN_PASSWORD}\"\n"
        ),
        ..Where::default()
    }
}

/// The real kiosk in the lab's kiosk namespace ([`kiosk_where`]) with the moving (stamped) test picture and
/// `media` lines added to its `[media]` section.
pub fn kiosk_in_lab(lab: &NatLab, width: u32, height: u32, media: &str) -> KioskProcess {
    KioskProcess::start_in(Where {
        media: format!("test_pattern = \"moving\"\n{media}"),
        ..kiosk_where(lab, width, height)
    })
}

/// Forwards a new port on this namespace's loopback to `port` on the loopback of namespace `ns` (for a
/// chromedriver started there): each connection is made from a thread that has entered `ns`. Returns the new port.
pub fn forward_into(ns: &str, port: u16) -> u16 {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("forwarding listener");
    let local = listener.local_addr().expect("address").port();
    let ns_path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut down) = conn else { continue };
            let ns_path = ns_path.clone();
            std::thread::spawn(move || {
                let Ok(handle) = std::fs::File::open(&ns_path) else { return };
                // SAFETY: setns on this thread only; the file descriptor is open for the call.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return;
                }
                let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
                let (Ok(mut up2), Ok(mut down2)) = (up.try_clone(), down.try_clone()) else { return };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up2, &mut down2);
                    let _ = down2.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut down, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    local
}

impl Drop for NatLab {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        for role in ROLES {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(role)]).status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let ok = Command::new(cmd).args(args).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "`{cmd} {}` failed: the NAT tests need root, iproute2 and nftables", args.join(" "));
}
