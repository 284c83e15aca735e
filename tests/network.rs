//! Calls on the links rural clinics have, in the NAT lab (`support/natlab.rs`: the kiosk and the doctor behind
//! their own symmetric NATs, coturn between them) with the kiosk's link shaped (`support/netlab.rs`: tbf and the
//! NFQUEUE impairer, both directions). Behaviour, not timing: retransmissions and retransmission requests really
//! flow under loss, the picture steps down a capped uplink and back up, a 10 s cut is ridden out on the same media
//! session, the relay-only policy uses nothing but the relay. Needs root, coturn, nftables, iptables and python3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use medimitra::calls::KioskStatus;
use medimitra::core::adaptation::LimitReason;
use medimitra::core::{AppointmentStatus, CallPhase};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::KillOnDrop;
use support::browser::*;
use support::kiosk::{KioskProcess, Where, rerun_inside};
use support::natlab::*;
use support::netlab::{LinkProfile, Loss, Shaping, profile};

const LAB: &str = "MM_NETLAB";

type Scenario = fn(NatLab) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// One call at a time: each test's kiosk, browser and impairer need both cores, and two of them side by side starve
/// each other's encoders (which is what the ladder reacts to) and make the numbers meaningless.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `scenario` as the doctor, inside the doctor's namespace of a fresh lab.
fn in_lab(name: &str, scenario: Scenario) {
    let Ok(prefix) = std::env::var(LAB) else {
        let _turn = one_at_a_time();
        let lab = NatLab::create();
        return rerun_inside(&lab.ns("d"), name, &[(LAB, &lab.prefix)]);
    };
    support::block_on(scenario(NatLab::existing(&prefix)));
}

async fn page_stats(c: &fantoccini::Client) -> Value {
    js(c, "window.medimitra.call.stats").await
}

fn n(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

/// Waits until the kiosk's status satisfies `cond`, printing what it sends now and then.
async fn until_kiosk(
    k: &KioskProcess,
    what: &str,
    limit: Duration,
    cond: impl Fn(&KioskStatus) -> bool,
) -> KioskStatus {
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let s = k.kiosk_status();
        if cond(&s) {
            return s;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            println!("  waiting for {what}: sending {:?}", s.sending);
            last_print = Instant::now();
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn loss_is_repaired_a_capped_uplink_steps_the_picture_down_and_up_and_a_cut_keeps_the_session() {
    in_lab("loss_is_repaired_a_capped_uplink_steps_the_picture_down_and_up_and_a_cut_keeps_the_session", |lab| {
        Box::pin(shaped_call(lab))
    });
}

async fn shaped_call(lab: NatLab) {
    let dir = tempfile::tempdir().expect("dir");
    let _turn = KillOnDrop(lab.start_turn(dir.path()));
    let k = kiosk_in_lab(&lab, 1280, 720, "");
    let (_driver, port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(port, &profiles.path().join("a")).await;
    let id = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    call_and_accept(&a, &k, id).await;

    // 1. On a clean link congestion control climbs and the picture reaches the camera's size.
    let s = until_kiosk(&k, "1280x720 on a clean link", Duration::from_secs(40), |s| s.sending.width == 1280).await;
    println!("clean: {:?}", s.sending);
    assert_eq!(s.sending.limit, Some(LimitReason::None));

    // 1b. Jitter without loss (75 ± 20 ms each way, never reordered): nothing is lost, so the kiosk asks for no
    // retransmission. It asked for ~40 % of the doctor's video packets (rtpjitterbuffer's `rtx-next-seqnum` timed
    // out on every packet that came late) and the doctor's 500 kbit/s uplink carried the needless copies.
    let (before_page, before) = (page_stats(&a).await, k.kiosk_status());
    let jitter = LinkProfile { name: "75ms-jitter", delay_ms: 75, jitter_ms: 20, loss: Loss::None, rate_kbit: None };
    let shaping = Shaping::kiosk_link(&lab, jitter, dir.path());
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (after_page, after) = (page_stats(&a).await, k.kiosk_status());
    drop(shaping);
    let frames = after.remote_video_frames.saturating_sub(before.remote_video_frames);
    let asked = after.receiving.nacks_sent.saturating_sub(before.receiving.nacks_sent);
    println!("jitter: {frames} frames of the doctor's video, {asked} retransmission requests; page {after_page}");
    assert!(frames > 150, "the doctor's video flowed: {frames} frames");
    assert!(asked <= 5, "{asked} retransmission requests for a link that lost nothing");
    let got = n(&after_page, "nacksReceived") - n(&before_page, "nacksReceived");
    assert!(got <= 5.0, "the browser received {got} retransmission requests");

    // 2. 3 % loss, 40 ms each way, 1 Mbit/s: lost packets are retransmitted to the browser, and the kiosk asks for
    // the doctor's lost packets.
    let before_page = page_stats(&a).await;
    let before = k.kiosk_status();
    let shaping = Shaping::kiosk_link(&lab, profile("40ms-3pct-1mbit"), dir.path());
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after_page = page_stats(&a).await;
    let after = k.kiosk_status();
    println!(
        "lossy: kiosk sending {:?}\n       kiosk receiving {:?}\n       page {after_page}",
        after.sending, after.receiving
    );
    println!("impairers: {:?}", shaping.impaired(dir.path()));
    let retransmitted = n(&after_page, "retransmittedReceived") - n(&before_page, "retransmittedReceived");
    assert!(retransmitted > 0.0, "the browser received retransmissions: {after_page}");
    assert!(after.sending.rtx_packets > 0 && after.sending.nacks_received > 0, "{:?}", after.sending);
    assert!(after.receiving.nacks_sent > before.receiving.nacks_sent, "the kiosk NACKs the doctor's video");
    assert!(n(&after_page, "nacksReceived") > n(&before_page, "nacksReceived"), "the browser got the kiosk's NACKs");
    // (Keyframe requests are checked after the cut, step 4: on this link a packet lost beyond repair, which is what
    // makes the kiosk ask, became rare once the kiosk stopped asking for packets that were only late.)
    // While it repairs the doctor's video, the kiosk holds each frame long enough for a retransmitted one to be
    // shown on time (core::playout); on a clean link it holds none (below).
    assert!(after.receiving.packets_repaired > before.receiving.packets_repaired, "{:?}", after.receiving);
    assert!(after.receiving.playout_delay_ms > 0, "frames held while repairing: {:?}", after.receiving);
    assert!(after.sending.width < 1280, "1 Mbit/s cannot carry 720p: {:?}", after.sending);
    drop(shaping);

    // 3. The uplink capped to 300 kbit/s: the picture steps down; the cap lifted: back up.
    let mut shaping = Shaping::kiosk_link(&lab, profile("clean"), dir.path());
    until_kiosk(&k, "recovery from the lossy link", Duration::from_secs(60), |s| s.sending.width >= 640).await;
    shaping.cap_uplink(Some(300));
    let down = until_kiosk(&k, "a step down on the capped uplink", Duration::from_secs(30), |s| {
        s.sending.width <= 480 && s.sending.limit == Some(LimitReason::Bandwidth)
    })
    .await;
    println!("capped: {:?}", down.sending);
    shaping.cap_uplink(None);
    let up = until_kiosk(&k, "a step back up", Duration::from_secs(60), |s| s.sending.width >= 640).await;
    println!("uncapped: {:?}", up.sending);
    // The doctor's side of the link has been clean since step 2: frames are shown at once again.
    let held = until_kiosk(&k, "no playout delay on a clean link", Duration::from_secs(30), |s| {
        s.receiving.playout_delay_ms == 0
    })
    .await;
    println!("clean again: {:?}", held.receiving);

    // 4. A 10 s cut of everything: the call and its media session survive, and media flows both ways afterwards.
    let session = k.kiosk_status().media_session;
    let plis_before = n(&page_stats(&a).await, "plisReceived");
    shaping.cut();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let frames = (k.kiosk_status().remote_video_frames, n(&page_stats(&a).await, "framesDecoded"));
    let status = "document.getElementById('call-status').textContent";
    assert_eq!(js(&a, status).await, json!("Reconnecting…"), "the doctor's page saw the cut");
    shaping.restore();
    let back = Instant::now();
    let (mut at_kiosk, mut at_page) = (None, None);
    while at_kiosk.is_none() || at_page.is_none() {
        assert!(back.elapsed() < Duration::from_secs(30), "no video both ways 30 s after the cut");
        if at_kiosk.is_none() && k.kiosk_status().remote_video_frames > frames.0 + 10 {
            at_kiosk = Some(back.elapsed());
        }
        if at_page.is_none() && n(&page_stats(&a).await, "framesDecoded") > frames.1 + 10.0 {
            at_page = Some(back.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "cut of 10 s: doctor's video at the kiosk {at_kiosk:?}, kiosk's video at the doctor {at_page:?} after the network returned"
    );
    // The doctor's video comes back in ~1 s. An earlier build with the jitter buffer's next-packet timer off took
    // 9.2 s (it waited on the whole gap: docs/platform-notes.md, `rtx-next-seqnum`); the timer is off now.
    let at_kiosk = at_kiosk.unwrap_or_default();
    assert!(at_kiosk < Duration::from_secs(5), "the doctor's video took {at_kiosk:?} to come back after the cut");
    // The kiosk's word that the call is connected again reaches the page soon after the network returns. Its
    // signaling socket had messages unacknowledged through the cut; with the kernel's backoff the next resend came
    // 3-6 s after the network was back, and the page said "Reconnecting…" over a moving picture all that time.
    let mut said_connected = None;
    while said_connected.is_none() && back.elapsed() < Duration::from_secs(30) {
        if js(&a, status).await == json!("Connected") {
            said_connected = Some(back.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("the page said Connected {said_connected:?} after the network returned");
    let said_connected = said_connected.expect("the page never said Connected again");
    assert!(
        said_connected < Duration::from_secs(3),
        "the page said Connected only {said_connected:?} after the network returned"
    );
    // The cut's packets are given up, so the kiosk asks for a keyframe and the browser receives the request (none
    // ever arrived while the decoder alone asked: the doctor's video could stay frozen for the rest of a call).
    support::wait_for("the kiosk's keyframe request at the browser after the cut", Duration::from_secs(10), || async {
        n(&page_stats(&a).await, "plisReceived") > plis_before
    })
    .await;
    let s = k.kiosk_status();
    assert_eq!(s.media_session, session, "the same media session carries the call after the cut");
    assert_eq!(s.phase, Some(CallPhase::Connected));
    drop(shaping);

    end_from_page(&a, &k).await;
    assert_eq!(k.status_of(id), AppointmentStatus::Completed);
    a.close().await.expect("close");
}

#[test]
fn the_relay_only_policy_uses_only_the_turn_relay() {
    in_lab("the_relay_only_policy_uses_only_the_turn_relay", |lab| Box::pin(relay_only(lab)));
}

async fn relay_only(lab: NatLab) {
    let dir = tempfile::tempdir().expect("dir");
    let _turn = KillOnDrop(lab.start_turn(dir.path()));
    let k = kiosk_in_lab(&lab, 640, 360, "ice_transport_policy = \"relay\"");
    let (_driver, port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(port, &profiles.path().join("a")).await;
    let id = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    assert_eq!(js(&a, "window.medimitra.signal.iceTransportPolicy").await, Value::from("relay"));
    call_and_accept(&a, &k, id).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = page_stats(&a).await;
    println!("relay only: {s}");
    let types = |key: &str| -> Vec<String> {
        s[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let (local, remote) = (types("localCandidates"), types("remoteCandidates"));
    assert!(!local.is_empty() && local.iter().all(|t| t == "relay"), "the page gathered only relay: {local:?}");
    assert!(!remote.is_empty() && remote.iter().all(|t| t == "relay"), "the kiosk offered only relay: {remote:?}");
    end_from_page(&a, &k).await;
    a.close().await.expect("close");
}

#[test]
fn the_doctors_pre_call_check_measures_the_path_and_recommends_audio_only_on_a_slow_link() {
    in_lab("the_doctors_pre_call_check_measures_the_path_and_recommends_audio_only_on_a_slow_link", |lab| {
        Box::pin(precheck_on_a_slow_link(lab))
    });
}

/// Opens the doctor's pre-call check and returns what it says: (the path line, the doctor's network line, the
/// verdict, the kiosk's network line).
async fn precheck(a: &fantoccini::Client) -> (String, String, String, String) {
    a.find(fantoccini::Locator::Css("#precheck-open")).await.expect("check").click().await.expect("click");
    let text = |id: &'static str| {
        let a = a.clone();
        async move {
            js(&a, &format!("document.getElementById('{id}').textContent")).await.as_str().unwrap_or("").to_string()
        }
    };
    support::wait_for("the pre-call verdict", Duration::from_secs(40), || async {
        text("pc-verdict").await != "Checking…"
    })
    .await;
    let said = (text("pc-path").await, text("pc-ice").await, text("pc-verdict").await, text("pc-network").await);
    a.find(fantoccini::Locator::Css("#precheck-close")).await.expect("close").click().await.expect("click");
    said
}

/// The rate each way the path line gives, in kbit/s.
fn rates(path: &str) -> (f64, f64) {
    let rate = |after: &str| -> f64 {
        let Some((_, rest)) = path.split_once(after) else { return 0.0 };
        let mut words = rest.split([' ', ',', ';']).filter(|w| !w.is_empty() && *w != "over");
        let value: f64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if words.next() == Some("Mbit/s") { value * 1000.0 } else { value }
    };
    (rate("from the kiosk "), rate("to the kiosk "))
}

async fn precheck_on_a_slow_link(lab: NatLab) {
    let dir = tempfile::tempdir().expect("dir");
    let _turn = KillOnDrop(lab.start_turn(dir.path()));
    let k = kiosk_in_lab(&lab, 640, 360, "");
    let (_driver, port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(port, &profiles.path().join("a")).await;
    login(&a, &k.url, "asha@clinic.in").await;

    // The kiosk's own probe through its TURN relay, in kbit/s, from its line ("… about N kbit/s through the relay").
    let relay_rate = |line: &str| rates(&line.replace("about ", "from the kiosk ")).0;

    let (path, ice, verdict, kiosk) = precheck(&a).await;
    println!("unshaped: {path} | {ice} | {verdict} | kiosk: {kiosk}");
    let (down, up) = rates(&path);
    assert!(down > 2000.0 && up > 2000.0, "{path}");
    assert!(!verdict.starts_with("Audio only"), "{verdict}");
    assert!(ice.starts_with("the kiosk's relay (TURN) is reached"), "the doctor's side reaches coturn: {ice}");
    assert!(kiosk.starts_with("good for video") && relay_rate(&kiosk) > 2000.0, "the kiosk's probe: {kiosk}");

    // The kiosk's uplink (the page's download, and the kiosk's probe through its relay) capped to 200 kbit/s:
    // measured as such on both sides, and audio only advised.
    let mut shaping = Shaping::kiosk_link(&lab, support::netlab::CLEAN, dir.path());
    shaping.cap_uplink(Some(200));
    let (path, _, verdict, kiosk) = precheck(&a).await;
    println!("kiosk uplink capped to 200 kbit/s: {path} | {verdict} | kiosk: {kiosk}");
    let (down, up) = rates(&path);
    assert!((100.0..=230.0).contains(&down), "from the kiosk within the cap: {path}");
    assert!(up > 1000.0, "to the kiosk not capped: {path}");
    assert!(verdict.starts_with("Audio only recommended: the link to the kiosk is slow"), "{verdict}");
    assert!(kiosk.starts_with("audio only recommended"), "the kiosk's probe: {kiosk}");
    assert!((100.0..=260.0).contains(&relay_rate(&kiosk)), "the kiosk's probe within the cap: {kiosk}");
    drop(shaping);
    a.close().await.expect("close");
}

/// The kiosk's process in a CPU cgroup (v1 `cpu` controller) with a quota, as a busy or slow device would be.
struct CpuLimit(std::path::PathBuf);

/// The cgroup v1 `cpu` hierarchy. `ip netns exec` gives this process a fresh /sys without the cgroup mounts, so
/// the hierarchy is mounted again here (the same hierarchy: the quota applies machine-wide); the mounts live only
/// in this process's mount namespace.
const CPU_CGROUPS: &str = "/sys/fs/cgroup/cpu";

fn mount_cpu_cgroups() {
    if std::path::Path::new(CPU_CGROUPS).join("cgroup.procs").exists() {
        return;
    }
    let run = |args: &[&str]| {
        let ok = std::process::Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success());
        assert!(ok, "`{}` failed", args.join(" "));
    };
    run(&["mount", "-t", "tmpfs", "cgroups", "/sys/fs/cgroup"]);
    std::fs::create_dir_all(CPU_CGROUPS).expect("mount point");
    run(&["mount", "-t", "cgroup", "-o", "cpu", "cgroup", CPU_CGROUPS]);
}

impl CpuLimit {
    fn apply(pid: u32, percent_of_a_core: u32) -> CpuLimit {
        mount_cpu_cgroups();
        let dir = std::path::PathBuf::from(format!("{CPU_CGROUPS}/medimitra-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a cpu cgroup (needs root and the cgroup v1 cpu controller)");
        std::fs::write(dir.join("cpu.cfs_period_us"), "100000").expect("period");
        std::fs::write(dir.join("cpu.cfs_quota_us"), (percent_of_a_core * 1000).to_string()).expect("quota");
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move the kiosk into the cgroup");
        CpuLimit(dir)
    }

    fn set_quota(&self, percent_of_a_core: u32) {
        std::fs::write(self.0.join("cpu.cfs_quota_us"), (percent_of_a_core * 1000).to_string()).expect("quota");
    }

    /// The group's `cpu.stat` (periods, throttled periods, throttled time) on one line.
    fn throttled(&self) -> String {
        std::fs::read_to_string(self.0.join("cpu.stat"))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // The processes go back to the root group before the group can go.
        if let Ok(pids) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for pid in pids.lines() {
                let _ = std::fs::write(format!("{CPU_CGROUPS}/cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_cpu_starved_kiosk_steps_its_picture_down_instead_of_dropping_frames() {
    if std::env::var(support::kiosk::INSIDE).is_err() {
        let _turn = one_at_a_time();
        return support::kiosk::rerun_inside_namespace(
            "a_cpu_starved_kiosk_steps_its_picture_down_instead_of_dropping_frames",
        );
    }
    support::block_on(cpu_starved());
}

/// CPU time of process `pid` (all its threads) over `window`, in percent of one core.
async fn cpu_percent(pid: u32, window: Duration) -> f64 {
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // utime and stime are the 12th and 13th fields after the command name's closing parenthesis.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
        f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
    };
    let (before, t) = (ticks(), std::time::Instant::now());
    tokio::time::sleep(window).await;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    100.0 * (ticks() - before) as f64 / hz / t.elapsed().as_secs_f64()
}

async fn cpu_starved() {
    let k = KioskProcess::start_in(Where {
        width: 1280,
        height: 720,
        media: "test_pattern = \"moving\"\nstart_bitrate_kbps = 2000".into(),
        ..Where::default()
    });
    let (_driver, port) = start_chromedriver();
    let profiles = tempfile::tempdir().expect("profiles");
    let a = browser(port, &profiles.path().join("a")).await;
    let id = k.checked_in(k.doctor_a);
    login(&a, &k.url, "asha@clinic.in").await;
    call_and_accept(&a, &k, id).await;
    let s = until_kiosk(&k, "1280x720", Duration::from_secs(40), |s| s.sending.width == 1280).await;
    println!("unlimited: {:?}", s.sending);
    // 70 % of what the kiosk uses unlimited (a real starvation on any machine, with room for a lower rung), or
    // MM_CPU_QUOTA. What it uses moves with the doctor's picture it decodes, so one short reading can be high (a CI
    // run kept 30 fps under its quota): without a step down within 15 s the quota is halved, twice at most.
    let used = cpu_percent(k.kiosk_pid(), Duration::from_secs(5)).await;
    let mut quota: u32 =
        std::env::var("MM_CPU_QUOTA").ok().and_then(|v| v.parse().ok()).unwrap_or(((used * 0.7) as u32).max(10));
    println!("the kiosk used {used:.0} % of a core unlimited");
    let limit = CpuLimit::apply(k.kiosk_pid(), quota);
    let stepped_down = |s: &KioskStatus| s.sending.width < 1280 && s.sending.limit == Some(LimitReason::Cpu);
    let mut tried = Vec::new();
    let down = loop {
        let start = Instant::now();
        let mut s = k.kiosk_status();
        while !stepped_down(&s) && start.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            s = k.kiosk_status();
        }
        tried.push((quota, limit.throttled(), s.sending.fps));
        if stepped_down(&s) {
            break s;
        }
        assert!(
            tried.len() < 3,
            "no step down for CPU; (quota % of a core, cgroup cpu.stat, sending fps) tried: {tried:?}; last: {:?}",
            s.sending
        );
        quota = (quota / 2).max(8);
        limit.set_quota(quota);
    };
    println!("starved ({quota} % of a core): {:?}", down.sending);
    // Settled: the ladder may take more steps (each after 3 s on a rung); then the frame rate holds on the rung it
    // stays on. Bounded: 60 readings at most.
    let (mut width, mut same_since) = (down.sending.width, 0);
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let w = k.kiosk_status().sending.width;
        same_since = if w == width { same_since + 1 } else { 0 };
        width = w;
        if same_since >= 10 {
            break;
        }
    }
    let mut fps = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fps.push(k.kiosk_status().sending.fps);
    }
    let s = k.kiosk_status();
    println!("settled: {:?}; fps {fps:?}", s.sending);
    let mean = fps.iter().sum::<f64>() / fps.len() as f64;
    // 15 fps, less what half-second readings of a 15 fps stream can miss (each holds 7 or 8 frames).
    assert!(mean >= 14.0, "the frame rate holds at 15 or more: {fps:?} at {}x{}", s.sending.width, s.sending.height);
    end_from_page(&a, &k).await;
    a.close().await.expect("close");
}
