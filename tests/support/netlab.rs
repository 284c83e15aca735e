//! Shaped links for the NAT lab (`natlab`): the kiosk's link to the internet (between its NAT and the internet
//! namespace) gets, in each direction, a rate cap (`tbf` on the sending interface) and delay, jitter and loss from
//! the NFQUEUE impairer (`tests/netlab/impair.py`, this kernel has no netem) at the receiving interface. A cut drops
//! everything both ways while a file exists. Impairers are stopped and their rules removed when the `Shaping` is
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::KillOnDrop;
use super::natlab::NatLab;

/// How packets are lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    None,
    /// Each packet independently, percent.
    Random(f64),
    /// Gilbert-Elliott bursts: mean loss (percent) and mean burst length (packets).
    Bursts(f64, f64),
}

/// One direction of a link, as the profiles give them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    pub name: &'static str,
    pub delay_ms: u32,
    pub jitter_ms: u32,
    pub loss: Loss,
    /// `None`: not capped.
    pub rate_kbit: Option<u32>,
}

pub const CLEAN: LinkProfile =
    LinkProfile { name: "clean", delay_ms: 0, jitter_ms: 0, loss: Loss::None, rate_kbit: None };
/// The rural links the kiosk must hold up on, and a satellite link.
pub const PROFILES: [LinkProfile; 6] = [
    CLEAN,
    LinkProfile { name: "25ms-1pct-2mbit", delay_ms: 25, jitter_ms: 0, loss: Loss::Random(1.0), rate_kbit: Some(2000) },
    LinkProfile {
        name: "75ms-3pct-500kbit",
        delay_ms: 75,
        jitter_ms: 20,
        loss: Loss::Random(3.0),
        rate_kbit: Some(500),
    },
    LinkProfile {
        name: "30ms-bursty5pct-1mbit",
        delay_ms: 30,
        jitter_ms: 0,
        loss: Loss::Bursts(5.0, 4.0),
        rate_kbit: Some(1000),
    },
    LinkProfile { name: "40ms-3pct-1mbit", delay_ms: 40, jitter_ms: 0, loss: Loss::Random(3.0), rate_kbit: Some(1000) },
    LinkProfile {
        name: "satellite-300ms-1pct-1mbit",
        delay_ms: 300,
        jitter_ms: 0,
        loss: Loss::Random(1.0),
        rate_kbit: Some(1000),
    },
];

pub fn profile(name: &str) -> LinkProfile {
    PROFILES.iter().copied().find(|p| p.name == name).unwrap_or_else(|| panic!("no link profile {name}"))
}

/// The kiosk's shaped link; dropping it stops the impairers and lifts the shaping.
pub struct Shaping {
    lab_prefix: String,
    impairers: Vec<(String, String, u16, KillOnDrop)>,
    cut_file: PathBuf,
    shaped: Vec<(String, String)>,
}

/// The kiosk's uplink is the NAT's `out` → the internet's `tok`; its downlink the other way.
const UP: (&str, &str, &str, &str, u16) = ("nk", "out", "i", "tok", 11);
const DOWN: (&str, &str, &str, &str, u16) = ("i", "tok", "nk", "out", 12);

fn sh(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

impl Shaping {
    /// Shapes both directions of the kiosk's link with `p` (each direction gets the whole profile, as the issue's
    /// table gives it), using `dir` for the cut file and the impairers' statistics.
    pub fn kiosk_link(lab: &NatLab, p: LinkProfile, dir: &Path) -> Shaping {
        let mut s = Shaping {
            lab_prefix: lab.prefix.clone(),
            impairers: Vec::new(),
            cut_file: dir.join("cut"),
            shaped: Vec::new(),
        };
        for (seed, (send_role, send_if, recv_role, recv_if, queue)) in [(1u32, UP), (2, DOWN)] {
            let (send_ns, recv_ns) = (lab.ns(send_role), lab.ns(recv_role));
            if let Some(kbit) = p.rate_kbit {
                s.set_rate(&send_ns, send_if, kbit);
            }
            let stats = dir.join(format!("impair-{queue}.json"));
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &recv_ns, "python3"])
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netlab/impair.py"))
                .args(["--queue", &queue.to_string(), "--delay", &p.delay_ms.to_string()])
                .args(["--jitter", &p.jitter_ms.to_string(), "--seed", &seed.to_string()])
                .args(["--max-seconds", "1800", "--cut-file"])
                .arg(&s.cut_file)
                .arg("--stats-file")
                .arg(&stats);
            match p.loss {
                Loss::None => {}
                Loss::Random(pct) => {
                    cmd.args(["--loss", &pct.to_string()]);
                }
                Loss::Bursts(pct, len) => {
                    cmd.args(["--burst-loss", &pct.to_string(), "--burst-len", &len.to_string()]);
                }
            }
            let child = cmd.stdout(Stdio::null()).spawn().expect("the impairer (python3)");
            // The queue is bound before packets are handed to it.
            std::thread::sleep(Duration::from_millis(400));
            let rule = ["-t", "raw", "-A", "PREROUTING", "-i", recv_if, "-j", "NFQUEUE", "--queue-num"];
            let q = queue.to_string();
            let mut args = vec!["ip", "netns", "exec", recv_ns.as_str(), "iptables"];
            args.extend_from_slice(&rule);
            args.push(&q);
            assert!(sh(&args), "iptables NFQUEUE rule in {recv_ns}");
            s.impairers.push((recv_ns, recv_if.to_string(), queue, KillOnDrop(child)));
        }
        s
    }

    /// Caps (or, with `None`, uncaps) the kiosk's uplink.
    pub fn cap_uplink(&mut self, kbit: Option<u32>) {
        let ns = format!("{}{}", self.lab_prefix, UP.0);
        match kbit {
            Some(k) => self.set_rate(&ns, UP.1, k),
            None => {
                sh(&["ip", "netns", "exec", &ns, "tc", "qdisc", "del", "dev", UP.1, "root"]);
                self.shaped.retain(|(n, i)| !(n == &ns && i == UP.1));
            }
        }
    }

    /// A token bucket: `kbit` with a burst of about 20 ms of traffic and at most 200 ms queued.
    fn set_rate(&mut self, ns: &str, iface: &str, kbit: u32) {
        let burst = (kbit * 1000 / 8 / 50).max(3000).to_string();
        let rate = format!("{kbit}kbit");
        let ok = sh(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", iface, "root", "tbf", "rate", &rate, "burst",
            &burst, "latency", "200ms",
        ]);
        assert!(ok, "tbf on {iface} in {ns}");
        if !self.shaped.iter().any(|(n, i)| n == ns && i == iface) {
            self.shaped.push((ns.to_string(), iface.to_string()));
        }
    }

    /// Drops everything both ways until [`restore`](Self::restore).
    pub fn cut(&self) {
        std::fs::write(&self.cut_file, b"cut").expect("cut file");
    }

    pub fn restore(&self) {
        let _ = std::fs::remove_file(&self.cut_file);
    }

    /// Packets the impairers saw and dropped, per queue (from their statistics files).
    pub fn impaired(&self, dir: &Path) -> Vec<(u16, serde_json::Value)> {
        self.impairers
            .iter()
            .map(|(_, _, q, _)| {
                let text = std::fs::read_to_string(dir.join(format!("impair-{q}.json"))).unwrap_or_default();
                (*q, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
            })
            .collect()
    }
}

impl Shaping {
    /// Packets each rate cap (`tbf`) sent and dropped for a full queue, per shaped interface: drops here are the
    /// sender's overshoot of the link's rate, apart from the impairers' loss.
    pub fn shaper_drops(&self) -> Vec<(String, u64, u64)> {
        self.shaped
            .iter()
            .map(|(ns, iface)| {
                let out = Command::new("ip")
                    .args(["netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", iface])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                // " Sent 123 bytes 45 pkt (dropped 6, overlimits 7 requeues 0)"
                let number_after = |word: &str| -> u64 {
                    out.split_whitespace()
                        .skip_while(|w| *w != word)
                        .nth(1)
                        .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
                        .unwrap_or(0)
                };
                let sent = out
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .find(|w| w[1] == "pkt")
                    .and_then(|w| w[0].parse().ok())
                    .unwrap_or(0);
                (format!("{}:{iface}", ns.trim_start_matches(&self.lab_prefix)), sent, number_after("(dropped"))
            })
            .collect()
    }
}

impl Drop for Shaping {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cut_file);
        for (ns, iface, queue, _) in &self.impairers {
            let q = queue.to_string();
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "iptables",
                "-t",
                "raw",
                "-D",
                "PREROUTING",
                "-i",
                iface,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &q,
            ]);
        }
        // The impairers themselves stop with their KillOnDrop.
        for (ns, iface) in &self.shaped {
            sh(&["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", iface, "root"]);
        }
    }
}
