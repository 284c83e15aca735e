//! `cargo bench --bench network`: calls on shaped links, the kiosk ↔ Chromium beside Chromium ↔ Chromium in the
//! same run, in the NAT lab (`tests/support/natlab.rs`: both ends behind symmetric NATs, coturn between them; the
//! "kiosk side" — the kiosk, or a Chromium in the kiosk's namespace — has its link shaped by `netlab` with each
//! profile of `netlab::PROFILES`, both directions).
//!
//! Per profile and pair: a measured call (BENCH_CALL_SECS, default 60 s, from the moment media flows both ways) and,
//! for the kiosk, BENCH_EXTRA_CALLS (default 3) short calls that count towards call success and set-up time. On the
//! clean link also: time to video both ways after a 10 s cut, and glass-to-glass delay both ways (stamped pictures,
//! `core::frame_stamp` and `tests/support/measure.js`).
//!
//! Pictures: the kiosk sends its moving 1280×720 test picture (H.264, `software-x264`); the Chromiums send their fake
//! camera at 1280×720@30 and prefer H.264 as well. Receive figures come from the receiver: Chromium's `inbound-rtp`
//! statistics (`framesDecoded`, `totalFreezesDuration`, …) and the kiosk's own (`call status` → `receiving`, its
//! freeze meter counts freezes as Chromium does). The browsers' SDP and candidates are relayed by this harness
//! (trickle, as the old web app's Socket.IO did); the kiosk uses its own signaling.
//!
//! Environment: BENCH_CALL_SECS, BENCH_EXTRA_CALLS, BENCH_REPEAT (measured calls per profile and pair, default 1;
//! the pairs take turns, and each cell's median and range are printed), BENCH_PROFILES (comma-separated names,
//! default all),
//! BENCH_OUT (JSON results, default target/bench-network.json). Without `--bench` (a smoke run under `cargo test
//! --benches`) one clean profile with 8 s calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use fantoccini::Client;
use medimitra::calls::control::ControlCommand;
use medimitra::core::CallState;
use serde::Serialize;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use support::KillOnDrop;
use support::browser::*;
use support::kiosk::{INSIDE, KioskProcess};
use support::natlab::*;
use support::netlab::{LinkProfile, PROFILES, Shaping};

const LAB: &str = "MM_NETLAB";
/// Chromium's fake camera at 30 fps (its default is 20).
const FAKE_CAMERA: &str = "--use-fake-device-for-media-stream=fps=30";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The harness's helpers in every page: a receiver's video statistics, and a browser-to-browser call.
const BENCH_JS: &str = r#"
// Every peer connection's ICE and connection state changes, timed (Unix ms), for the notes.
if (!window.mmIceLog) {
  window.mmIceLog = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    pc.addEventListener("iceconnectionstatechange", () => window.mmIceLog.push([Date.now(), pc.iceConnectionState]));
    // The peer connection's state follows DTLS: "connected" once this browser's handshake is done.
    pc.addEventListener("connectionstatechange", () => window.mmIceLog.push([Date.now(), "pc " + pc.connectionState]));
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
}
// The doctor's page's signaling messages and camera requests, timed, for the notes of a failed call.
window.mmMsgLog = [];
if (window.medimitra && !window.mmWrapped) {
  window.mmWrapped = true;
  const h = window.medimitra.signal.handlers;
  for (const k of Object.keys(h)) {
    const f = h[k];
    h[k] = (m) => { window.mmMsgLog.push([Date.now() % 100000, k, JSON.stringify(m).slice(0, 60)]); return f(m); };
  }
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    window.mmMsgLog.push([Date.now() % 100000, "getUserMedia"]);
    try { const s = await gum(c); window.mmMsgLog.push([Date.now() % 100000, "camera ok"]); return s; }
    catch (e) { window.mmMsgLog.push([Date.now() % 100000, "camera failed " + e.name + " " + e.message]); throw e; }
  };
}
window.mmBench = {
  async inbound(pc) {
    if (!pc) return null;
    const r = await pc.getStats();
    let v = null;
    let au = null, back = "";
    r.forEach((x) => { if (x.type === "inbound-rtp" && x.kind === "video") v = x; if (x.type === "inbound-rtp" && x.kind === "audio") au = x; });
    // The round trip this browser measures from RTCP (the other side's receiver reports about what it sends).
    r.forEach((x) => { if (x.type === "remote-inbound-rtp") back += `${x.kind} ${x.roundTripTime === undefined ? "-" : Math.round(1000 * x.roundTripTime)} ms (${x.roundTripTimeMeasurements || 0}) `; });
    if (!v) return null;
    // The path media takes: the selected candidate pair's local and remote candidates.
    let path = "";
    r.forEach((t) => {
      if (t.type !== "transport" || !t.selectedCandidatePairId) return;
      const pair = r.get(t.selectedCandidatePairId);
      const l = pair && r.get(pair.localCandidateId), m = pair && r.get(pair.remoteCandidateId);
      if (l && m) path = `${l.candidateType}/${l.protocol}${l.relayProtocol ? "/" + l.relayProtocol : ""} -> ${m.candidateType}/${m.protocol} rtt ${Math.round(1000 * (pair.currentRoundTripTime || 0))} ms`;
    });
    return {
      path: path + "; RTCP round trips: " + back,
      frames: v.framesDecoded || 0, freezeSeconds: v.totalFreezesDuration || 0, width: v.frameWidth || 0,
      height: v.frameHeight || 0, bytes: v.bytesReceived || 0, lost: v.packetsLost || 0,
      received: v.packetsReceived || 0, rtx: v.retransmittedPacketsReceived || 0, fec: v.fecPacketsReceived || 0,
      jbDelay: v.jitterBufferDelay || 0, jbEmitted: v.jitterBufferEmittedCount || 0,
      jbMinMs: v.jitterBufferEmittedCount ? Math.round(1000 * (v.jitterBufferMinimumDelay || 0) / v.jitterBufferEmittedCount) : -1,
      jbTargetMs: v.jitterBufferEmittedCount ? Math.round(1000 * (v.jitterBufferTargetDelay || 0) / v.jitterBufferEmittedCount) : -1,
      audioJbMs: au && au.jitterBufferEmittedCount ? Math.round(1000 * au.jitterBufferDelay / au.jitterBufferEmittedCount) : 0,
      audioTargetMs: au && au.jitterBufferEmittedCount ? Math.round(1000 * (au.jitterBufferTargetDelay || 0) / au.jitterBufferEmittedCount) : 0,
    };
  },
};
window.b2b = {
  pc: null, cands: [],
  async peer(iceServers) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720, frameRate: 30 } });
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    this.stream = stream;
    this.cands = [];
    pc.onicecandidate = (e) => { if (e.candidate) this.cands.push(e.candidate.toJSON()); };
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind === "video") {
        const caps = RTCRtpReceiver.getCapabilities("video").codecs;
        t.setCodecPreferences([...caps.filter((c) => c.mimeType === "video/H264"), ...caps.filter((c) => c.mimeType !== "video/H264")]);
      }
    }
    pc.ontrack = (ev) => {
      if (ev.track.kind !== "video") return;
      let v = document.getElementById("b2b-remote");
      if (!v) {
        v = document.createElement("video");
        v.id = "b2b-remote"; v.muted = true; v.autoplay = true; v.playsInline = true;
        document.body.append(v);
      }
      v.srcObject = new MediaStream([ev.track]);
      if (window.mmMeasure && window.mmMeasure.watching) window.mmMeasure.watch(v);
    };
    return pc;
  },
  async offer(iceServers) {
    const pc = await this.peer(iceServers);
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  },
  async answer(iceServers, sdp) {
    const pc = await this.peer(iceServers);
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    return pc.localDescription.sdp;
  },
  async accept(sdp) { await this.pc.setRemoteDescription({ type: "answer", sdp }); return true; },
  take() { return this.cands.splice(0); },
  async add(list) { for (const c of list) { try { await this.pc.addIceCandidate(c); } catch (e) {} } return true; },
  hangup() {
    if (this.pc) this.pc.close();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.pc = null;
    const v = document.getElementById("b2b-remote");
    if (v) v.remove();
    return true;
  },
};
true
"#;

async fn inject(c: &Client) {
    let ok = c.execute("return eval(arguments[0]);", vec![json!(BENCH_JS)]).await.expect("inject the bench's helpers");
    assert_eq!(ok, json!(true));
    inject_measure(c).await;
}

/// One reading of a video receiver, cumulative counters.
#[derive(Debug, Clone, Default)]
struct Reading {
    at: f64,
    frames: f64,
    freeze_s: f64,
    width: u32,
    height: u32,
    bytes: f64,
    lost: f64,
    received: f64,
    repaired: f64,
    fec: f64,
    /// The page's selected candidate pair (local -> remote: type/protocol, STUN round trip) and its RTCP round trips,
    /// empty for the kiosk.
    path: String,
    /// The page's audio jitter buffer, average delay and target since the start (ms).
    audio_jb_ms: f64,
    audio_target_ms: f64,
    /// The page's video jitter buffer: average minimum and target delay since the start (ms).
    video_min_ms: f64,
    video_target_ms: f64,
    /// The page's jitter buffer: total delay (s) and frames emitted, both cumulative (0 for the kiosk).
    jb_delay_s: f64,
    jb_frames: f64,
}

/// Who receives a direction's video.
#[derive(Clone, Copy)]
enum Receiver<'a> {
    /// The doctor's web app (its peer connection is `window.medimitra.call.pc`).
    DoctorPage(&'a Client),
    /// A page's browser-to-browser peer.
    B2bPage(&'a Client),
    /// The kiosk, from its call status.
    Kiosk(&'a KioskProcess),
}

async fn read(r: Receiver<'_>, t0: Instant) -> Option<Reading> {
    let at = t0.elapsed().as_secs_f64();
    let page = |v: Value| -> Option<Reading> {
        let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
        (!v.is_null() && v.is_object()).then(|| Reading {
            at,
            frames: n("frames"),
            freeze_s: n("freezeSeconds"),
            width: n("width") as u32,
            height: n("height") as u32,
            bytes: n("bytes"),
            lost: n("lost"),
            received: n("received"),
            repaired: n("rtx"),
            fec: n("fec"),
            path: v["path"].as_str().unwrap_or_default().to_string(),
            audio_jb_ms: n("audioJbMs"),
            audio_target_ms: n("audioTargetMs"),
            video_min_ms: n("jbMinMs"),
            video_target_ms: n("jbTargetMs"),
            jb_delay_s: n("jbDelay"),
            jb_frames: n("jbEmitted"),
        })
    };
    match r {
        Receiver::DoctorPage(c) => {
            page(js_async(c, "return await window.mmBench.inbound(window.medimitra.call.pc);").await)
        }
        Receiver::B2bPage(c) => page(js_async(c, "return await window.mmBench.inbound(window.b2b.pc);").await),
        Receiver::Kiosk(k) => {
            let s = k.kiosk_status();
            Some(Reading {
                at,
                frames: s.remote_video_frames as f64,
                freeze_s: s.receiving.freeze_seconds,
                width: s.receiving.width,
                height: s.receiving.height,
                // The kiosk reports rates, not byte counts: integrate its bitrate over the reading interval.
                bytes: s.receiving.bitrate_kbps as f64,
                lost: s.receiving.loss_percent,
                received: 0.0,
                repaired: s.receiving.packets_repaired as f64,
                ..Reading::default()
            })
        }
    }
}

/// What one direction of one call delivered.
#[derive(Debug, Clone, Default, Serialize)]
struct Direction {
    fps_median: f64,
    fps_p10: f64,
    frozen_s_per_min: f64,
    /// The resolution shown most of the time.
    resolution: String,
    kbps: f64,
    loss_pct: f64,
    retransmitted: f64,
    fec: f64,
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn summarise(rs: &[Reading], kiosk: bool) -> Direction {
    let (Some(first), Some(last)) = (rs.first(), rs.last()) else { return Direction::default() };
    let secs = (last.at - first.at).max(0.001);
    let fps: Vec<f64> = rs.windows(2).map(|w| (w[1].frames - w[0].frames) / (w[1].at - w[0].at).max(0.001)).collect();
    let mut sizes: Vec<(u32, u32)> = rs.iter().filter(|r| r.width > 0).map(|r| (r.width, r.height)).collect();
    sizes.sort();
    let mode = sizes
        .chunk_by(|a, b| a == b)
        .max_by_key(|c| c.len())
        .map_or("-".to_string(), |c| format!("{}x{}", c[0].0, c[0].1));
    let (kbps, loss_pct) = if kiosk {
        // Rates as the kiosk reports them each half second: their mean.
        let n = rs.len() as f64;
        (rs.iter().map(|r| r.bytes).sum::<f64>() / n, rs.iter().map(|r| r.lost).sum::<f64>() / n)
    } else {
        let lost = last.lost - first.lost;
        let got = last.received - first.received;
        (
            (last.bytes - first.bytes) * 8.0 / 1000.0 / secs,
            if lost + got > 0.0 { 100.0 * lost / (lost + got) } else { 0.0 },
        )
    };
    Direction {
        fps_median: percentile(&fps, 0.5),
        fps_p10: percentile(&fps, 0.1),
        frozen_s_per_min: (last.freeze_s - first.freeze_s) / secs * 60.0,
        resolution: mode,
        kbps,
        loss_pct,
        retransmitted: last.repaired - first.repaired,
        fec: last.fec - first.fec,
    }
}

#[derive(Debug, Clone, Default, Serialize)]
struct CallResult {
    profile: String,
    pair: String,
    ok: bool,
    setup_s: Option<f64>,
    measured_s: f64,
    /// Kiosk side → doctor side.
    to_doctor: Option<Direction>,
    /// Doctor side → kiosk side.
    to_kiosk: Option<Direction>,
    cut_recovery_s: Option<f64>,
    /// Each direction's return after the cut: (to the doctor side, to the kiosk side), seconds.
    cut_recovery_each_s: (Option<f64>, Option<f64>),
    note: String,
}

/// When each receiver had decoded `more` frames beyond its `base` (seconds from now), within `limit`.
async fn until_each(
    a: Receiver<'_>,
    b: Receiver<'_>,
    base: (f64, f64),
    more: f64,
    limit: Duration,
) -> (Option<f64>, Option<f64>) {
    let t = Instant::now();
    let (mut ta, mut tb) = (None, None);
    while t.elapsed() < limit && (ta.is_none() || tb.is_none()) {
        if ta.is_none() && timed_read(a, t).await.is_some_and(|r| r.frames >= base.0 + more) {
            ta = Some(t.elapsed().as_secs_f64());
        }
        if tb.is_none() && timed_read(b, t).await.is_some_and(|r| r.frames >= base.1 + more) {
            tb = Some(t.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (ta, tb)
}

/// `read`, saying so when one reading took longer than half a second: the harness itself then delays what it times.
async fn timed_read(r: Receiver<'_>, t0: Instant) -> Option<Reading> {
    let asked = Instant::now();
    let reading = read(r, t0).await;
    let took = asked.elapsed();
    if took > Duration::from_millis(500) {
        let who = match r {
            Receiver::Kiosk(_) => "the kiosk's status",
            _ => "a page's statistics",
        };
        println!("  (harness: reading {who} took {:.2} s, at {:.2} s)", took.as_secs_f64(), t0.elapsed().as_secs_f64());
    }
    reading
}

/// The receiving page's descriptions, the lines that say what was negotiated (for `BENCH_TRACE`).
async fn print_descriptions(receiver: Receiver<'_>) {
    let (c, pc) = match receiver {
        Receiver::DoctorPage(c) => (c, "window.medimitra.call.pc"),
        Receiver::B2bPage(c) => (c, "window.b2b.pc"),
        Receiver::Kiosk(_) => return,
    };
    for which in ["remoteDescription", "localDescription"] {
        let lines = js_async(
            c,
            &format!(
                "const d = {pc}.{which}; return d ? d.sdp.split('\\r\\n')\
                 .filter((l) => /^(m=|a=msid|a=ssrc:|a=rtpmap|a=extmap)/.test(l)).join('\\n') : '';"
            ),
        )
        .await;
        eprintln!("the receiving page's {which}:\n{}", lines.as_str().unwrap_or_default());
    }
}

/// Reads both receivers every second for `secs`; then, if `cut` is given, cuts the link for 10 s and times the
/// video's return both ways.
async fn measure(
    to_doctor: Receiver<'_>,
    to_kiosk: Receiver<'_>,
    secs: u64,
    cut: Option<&Shaping>,
    r: &mut CallResult,
) {
    let t0 = Instant::now();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // BENCH_TRACE=1: what the kiosk sends and the doctor's page receives, every second.
    let trace = std::env::var_os("BENCH_TRACE").is_some();
    for _ in 0..=secs {
        let next = t0.elapsed() + Duration::from_secs(1);
        if let Some(x) = read(to_doctor, t0).await {
            if trace {
                // The page's jitter buffer delay over the last second (what its playout waits).
                let jb_ms = a.last().map_or(0.0, |p: &Reading| {
                    let frames = x.jb_frames - p.jb_frames;
                    if frames > 0.0 { 1000.0 * (x.jb_delay_s - p.jb_delay_s) / frames } else { 0.0 }
                });
                eprintln!(
                    "  {:>4.0} s: page {x:?}\n         page's jitter buffers: video {jb_ms:.0} ms in the last second \
                     (minimum {:.0}, target {:.0} on average); audio {:.0} ms (target {:.0}); path {}",
                    x.at, x.video_min_ms, x.video_target_ms, x.audio_jb_ms, x.audio_target_ms, x.path
                );
                if a.is_empty() {
                    print_descriptions(to_doctor).await;
                }
                if let Receiver::Kiosk(k) = to_kiosk {
                    let st = k.kiosk_status();
                    eprintln!("         kiosk sends {:?}\n         kiosk receives {:?}", st.sending, st.receiving);
                }
            }
            a.push(x);
        }
        if let Some(x) = read(to_kiosk, t0).await {
            b.push(x);
        }
        tokio::time::sleep(next.saturating_sub(t0.elapsed())).await;
    }
    let kiosk_receives = matches!(to_kiosk, Receiver::Kiosk(_));
    let (da, db) = (summarise(&a, false), summarise(&b, kiosk_receives));
    // Both ways alive at the end: frames in the last 5 s.
    let alive = |v: &[Reading]| v.len() >= 2 && v[v.len() - 1].frames > v[v.len().saturating_sub(6)].frames;
    r.ok = alive(&a) && alive(&b);
    if !r.ok {
        r.note = format!("video stopped: to the doctor side {}, to the kiosk side {}", alive(&a), alive(&b));
    }
    r.measured_s = t0.elapsed().as_secs_f64();
    r.to_doctor = Some(da);
    r.to_kiosk = Some(db);
    if let Some(shaping) = cut {
        let unix_ms =
            || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        r.note.push_str(&format!("cut at {}; ", unix_ms()));
        shaping.cut();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t = Instant::now();
        let base =
            (read(to_doctor, t).await.map_or(0.0, |x| x.frames), read(to_kiosk, t).await.map_or(0.0, |x| x.frames));
        r.note.push_str(&format!("restored at {}; ", unix_ms()));
        shaping.restore();
        // Timed from the moment the network returns.
        let each = until_each(to_doctor, to_kiosk, base, 2.0, Duration::from_secs(40)).await;
        r.cut_recovery_each_s = each;
        let back = match each {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
        r.cut_recovery_s = back;
        if back.is_none() {
            r.note.push_str("video did not come back within 40 s of the cut's end; ");
        }
    }
}

/// A kiosk ↔ doctor's page call: the doctor calls, the patient accepts at once.
async fn kiosk_call(
    k: &KioskProcess,
    doctor: &Client,
    profile: &LinkProfile,
    secs: u64,
    cut: Option<&Shaping>,
) -> CallResult {
    let mut r = CallResult { profile: profile.name.into(), pair: "kiosk<->chromium".into(), ..Default::default() };
    let id = k.checked_in(k.doctor_a);
    js(doctor, "(window.mmMsgLog = []) && true").await;
    js(doctor, &format!("window.medimitra.call.start({id}, 'Meena') && true")).await;
    let rang = support::poll_until(Duration::from_secs(15), || async { k.kiosk_status().call == CallState::Incoming })
        .await
        .is_some();
    if !rang {
        r.note = "the kiosk did not ring".into();
        return r;
    }
    js(doctor, "window.mmIceLog.splice(0) && true").await;
    let accepted_at = js(doctor, "Date.now()").await.as_i64().unwrap_or(0);
    let t = Instant::now();
    k.control(ControlCommand::Accept);
    let (page, kiosk) = (Receiver::DoctorPage(doctor), Receiver::Kiosk(k));
    let (at_page, at_kiosk) = until_each(page, kiosk, (0.0, 0.0), 1.0, Duration::from_secs(20)).await;
    if at_page.is_some() && at_kiosk.is_some() {
        r.setup_s = Some(t.elapsed().as_secs_f64());
    }
    let ms = |at: Option<f64>| at.map_or("none".to_string(), |s| format!("{:+}", (s * 1000.0) as i64));
    r.note.push_str(&format!(
        "{}first frame at the page {}, at the kiosk {}; ",
        setup_timeline(doctor, accepted_at).await,
        ms(at_page),
        ms(at_kiosk)
    ));
    if r.setup_s.is_none() {
        let page = js(
            doctor,
            "(() => { const c = window.medimitra.call; return { state: c.state, pc: c.pc && c.pc.connectionState, \
             ice: c.pc && c.pc.iceConnectionState, frames: c.stats.framesDecoded, camera: !!c.local, \
             sent: c.stats.bytesOut, banner: document.getElementById('banner').textContent, \
             log: window.mmMsgLog.slice(-40) }; })()",
        )
        .await;
        let stats = js_async(
            doctor,
            "const c = window.medimitra.call; if (!c.pc) return null; const out = []; \
             (await c.pc.getStats()).forEach(s => { if (['inbound-rtp','outbound-rtp','transport','candidate-pair'].includes(s.type)) out.push(s); }); \
             const rd = c.pc.remoteDescription ? c.pc.remoteDescription.sdp.split('\\r\\n').filter(l => l.startsWith('a=ssrc') || l.startsWith('m=') || l.startsWith('a=mid') || l.startsWith('a=extmap')) : null; \
             return { stats: out, remote: rd, receivers: c.pc.getReceivers().map(r => ({ kind: r.track.kind, state: r.track.readyState, muted: r.track.muted })) };",
        )
        .await;
        r.note = format!(
            "no media both ways within 20 s of the accept: page {page}, page stats {stats}, kiosk {:?}",
            k.kiosk_status()
        );
    } else {
        let session = k.kiosk_status().media_session;
        measure(page, kiosk, secs, cut, &mut r).await;
        if k.kiosk_status().media_session != session {
            r.note.push_str("a new media session replaced the first; ");
        }
        if k.kiosk_status().call != CallState::InCall {
            r.ok = false;
            r.note.push_str("the call did not last; ");
        }
    }
    if cut.is_some() {
        r.note.push_str(&format!("ICE states at the page: {}; ", js(doctor, "window.mmIceLog.splice(0)").await));
    }
    let _ = js(doctor, "document.getElementById('end').click() || true").await;
    support::poll_until(Duration::from_secs(15), || async { k.kiosk_status().media_sessions == 0 }).await;
    r
}

/// What the doctor's page saw between the accept (`accepted_at`, the page's Unix ms) and now, in ms after the accept:
/// its signaling messages, camera requests and ICE states, e.g. `setup: offer +212, getUserMedia +215, ...`.
async fn setup_timeline(doctor: &Client, accepted_at: i64) -> String {
    let logs = js(doctor, "[window.mmMsgLog.slice(0), window.mmIceLog.slice(0)]").await;
    let mut events: Vec<(i64, String)> = Vec::new();
    // The message log keeps Date.now() % 100000.
    for e in logs[0].as_array().into_iter().flatten() {
        let (Some(at), Some(what)) = (e[0].as_i64(), e[1].as_str()) else { continue };
        let ms = (at - accepted_at % 100_000).rem_euclid(100_000);
        events.push((if ms > 50_000 { ms - 100_000 } else { ms }, what.to_string()));
    }
    for e in logs[1].as_array().into_iter().flatten() {
        let (Some(at), Some(state)) = (e[0].as_i64(), e[1].as_str()) else { continue };
        let what = if state.starts_with("pc ") { state.to_string() } else { format!("ice {state}") };
        events.push((at - accepted_at, what));
    }
    events.sort();
    let parts: Vec<String> = events.iter().map(|(ms, what)| format!("{what} {ms:+}")).collect();
    format!("setup: {}; ", parts.join(", "))
}

fn ice_servers() -> Value {
    json!([{ "urls": format!("turn:{TURN_ADDR}:3478"), "username": TURN_USER, "credential": TURN_PASSWORD }])
}

/// A Chromium ↔ Chromium call: `ks` (in the kiosk's namespace) offers, `ds` (the doctor's) answers; the harness
/// relays the descriptions and trickles the candidates both ways.
async fn browser_call(ks: &Client, ds: &Client, profile: &LinkProfile, secs: u64, cut: Option<&Shaping>) -> CallResult {
    let mut r = CallResult { profile: profile.name.into(), pair: "chromium<->chromium".into(), ..Default::default() };
    let t = Instant::now();
    negotiate(ks, ds).await;
    let (to_doctor, to_kiosk) = (Receiver::B2bPage(ds), Receiver::B2bPage(ks));
    // Trickle until media flows both ways (bounded), then keep passing late candidates while measuring.
    let limit = Instant::now() + Duration::from_secs(20);
    while Instant::now() < limit {
        trickle(ks, ds).await;
        let (a, b) = (read(to_doctor, t).await, read(to_kiosk, t).await);
        if a.is_some_and(|x| x.frames >= 1.0) && b.is_some_and(|x| x.frames >= 1.0) {
            r.setup_s = Some(t.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if r.setup_s.is_none() {
        r.note = "no media both ways within 20 s of the offer".into();
    } else {
        trickle(ks, ds).await;
        measure(to_doctor, to_kiosk, secs, cut, &mut r).await;
    }
    for c in [ks, ds] {
        js(c, "window.b2b.hangup()").await;
    }
    r
}

/// `ks` offers, `ds` answers, the harness carries the descriptions.
async fn negotiate(ks: &Client, ds: &Client) {
    let offer = js_async(ks, &format!("return await window.b2b.offer({});", ice_servers())).await;
    let answer = ds
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             window.b2b.answer(arguments[0], arguments[1]).then(done, (e) => done('ERR ' + e));",
            vec![ice_servers(), offer],
        )
        .await
        .expect("answer");
    ks.execute_async(
        "const done = arguments[arguments.length - 1]; window.b2b.accept(arguments[0]).then(done, (e) => done('ERR ' + e));",
        vec![answer],
    )
    .await
    .expect("accept");
}

async fn trickle(a: &Client, b: &Client) {
    for (from, to) in [(a, b), (b, a)] {
        let list = js(from, "window.b2b.take()").await;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            to.execute_async(
                "const done = arguments[arguments.length - 1]; window.b2b.add(arguments[0]).then(done, () => done(false));",
                vec![list],
            )
            .await
            .expect("add candidates");
        }
    }
}

/// Glass-to-glass delays (ms, medians) both ways over `secs` of a call in progress: (kiosk side → doctor side,
/// doctor side → kiosk side). The kiosk's own readings are sampled every 100 ms.
async fn glass_to_glass(to_doctor: &Client, kiosk_side: Result<&Client, &KioskProcess>, secs: u64) -> (f64, f64) {
    js(to_doctor, "window.mmMeasure.take()").await;
    if let Ok(c) = kiosk_side {
        js(c, "window.mmMeasure.take()").await;
    }
    let mut kiosk_samples = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if let Err(k) = kiosk_side
            && let Some(ms) = k.kiosk_status().receiving.glass_to_glass_ms
        {
            kiosk_samples.push(f64::from(ms));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = js(to_doctor, "window.mmMeasure.take()").await["median"].as_f64().unwrap_or(f64::NAN);
    let jb = js_async(
        to_doctor,
        "const pc = window.b2b.pc || window.medimitra.call.pc; const s = await window.mmBench.inbound(pc); \
         return s && s.jbEmitted ? 1000 * s.jbDelay / s.jbEmitted : null;",
    )
    .await;
    println!("  (the doctor side's jitter buffer held frames {jb} ms on average over the call)");
    let b = match kiosk_side {
        Ok(c) => js(c, "window.mmMeasure.take()").await["median"].as_f64().unwrap_or(f64::NAN),
        Err(_) => percentile(&kiosk_samples, 0.5),
    };
    (a, b)
}

fn dir_cells(d: &Option<Direction>) -> String {
    match d {
        Some(d) => format!(
            "{:>5.1} {:>5.1} {:>6.1} {:>9} {:>6.0} {:>5.1} {:>6.0} {:>5.0}",
            d.fps_median, d.fps_p10, d.frozen_s_per_min, d.resolution, d.kbps, d.loss_pct, d.retransmitted, d.fec
        ),
        None => "-".into(),
    }
}

fn main() {
    let Ok(prefix) = std::env::var(LAB) else {
        let lab = NatLab::create();
        let status = Command::new("ip")
            .args(["netns", "exec", &lab.ns("d")])
            .arg(std::env::current_exe().expect("bench binary"))
            .args(std::env::args().skip(1))
            .env(LAB, &lab.prefix)
            .env(INSIDE, "1")
            .status()
            .expect("run inside the lab");
        drop(lab);
        std::process::exit(status.code().unwrap_or(1));
    };
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = if smoke { 8 } else { env_num("BENCH_CALL_SECS", 60) };
    let extra = if smoke { 1 } else { env_num("BENCH_EXTRA_CALLS", 3) };
    let repeat = if smoke { 1 } else { env_num("BENCH_REPEAT", 1).max(1) };
    let wanted: Option<Vec<String>> =
        std::env::var("BENCH_PROFILES").ok().map(|v| v.split(',').map(str::to_string).collect());
    let profiles: Vec<LinkProfile> = PROFILES
        .iter()
        .copied()
        .filter(
            |p| if smoke { p.name == "clean" } else { wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == p.name)) },
        )
        .collect();
    let out = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-network.json").to_string());
    if std::env::var_os("KIOSK_LOG").is_none() {
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var("KIOSK_LOG", "warn") };
    }
    support::block_on(async move {
        let lab = NatLab::existing(&prefix);
        let dir = tempfile::tempdir().expect("dir");
        let _turn = KillOnDrop(lab.start_turn(dir.path()));
        let k = kiosk_in_lab(&lab, 1280, 720, "");
        let profiles_dir = tempfile::tempdir().expect("browser profiles");
        let (_dd, dport) = start_chromedriver();
        let (_kd, kport_inside) = start_chromedriver_in(&lab.ns("k"));
        let kport = forward_into(&lab.ns("k"), kport_inside);
        let doctor = browser_with(dport, &profiles_dir.path().join("d"), FAKE_CAMERA).await;
        let kiosk_side = browser_with(kport, &profiles_dir.path().join("k"), FAKE_CAMERA).await;
        login(&doctor, &k.url, "asha@clinic.in").await;
        inject(&doctor).await;
        // The kiosk-side Chromium needs a secure origin for its camera: the kiosk's own page over loopback.
        kiosk_side.goto(&format!("https://127.0.0.1:{HTTPS_PORT}/")).await.expect("kiosk-side page");
        inject(&kiosk_side).await;

        let mut results: Vec<CallResult> = Vec::new();
        let mut g2g = Vec::new();
        for p in &profiles {
            println!("== {}", p.name);
            let shaping = Shaping::kiosk_link(&lab, *p, dir.path());
            // The pairs take turns, so that a slow spell of the machine does not land on one of them only.
            for round in 0..repeat {
                let cut = (p.name == "clean" && round == 0).then_some(&shaping);
                let r = kiosk_call(&k, &doctor, p, secs, cut).await;
                println!(
                    "  kiosk:    ok {} setup {:?} cut {:?} (to doctor, to kiosk {:?}) {}",
                    r.ok, r.setup_s, r.cut_recovery_s, r.cut_recovery_each_s, r.note
                );
                results.push(r);
                // What the impairers did so far (a profile whose loss the receivers do not see shows here).
                println!("  impairers: {:?}", shaping.impaired(dir.path()));
                println!("  rate caps (interface, sent, dropped for a full queue): {:?}", shaping.shaper_drops());
                if round == 0 {
                    for _ in 0..extra {
                        let r = kiosk_call(&k, &doctor, p, 3, None).await;
                        println!("  kiosk (short): ok {} setup {:?} {}", r.ok, r.setup_s, r.note);
                        results.push(r);
                    }
                }
                let r = browser_call(&kiosk_side, &doctor, p, secs, cut).await;
                println!(
                    "  browsers: ok {} setup {:?} cut {:?} (to doctor, to kiosk {:?}) {}",
                    r.ok, r.setup_s, r.cut_recovery_s, r.cut_recovery_each_s, r.note
                );
                println!("  impairers: {:?}", shaping.impaired(dir.path()));
                println!("  rate caps (interface, sent, dropped for a full queue): {:?}", shaping.shaper_drops());
                results.push(r);
            }
            if p.name == "clean" {
                // Glass to glass: stamped cameras on the pages (the kiosk's moving picture is always stamped).
                for c in [&doctor, &kiosk_side] {
                    js(c, "window.mmMeasure.useStampedCamera()").await;
                }
                js(&doctor, "window.mmMeasure.watch(document.getElementById('remote-video'))").await;
                let id = k.checked_in(k.doctor_a);
                call_and_accept(&doctor, &k, id).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (a, b) = glass_to_glass(&doctor, Err(&k), 10).await;
                println!("  glass to glass, kiosk <-> chromium: to the doctor {a} ms, to the kiosk {b} ms");
                g2g.push(json!({"pair": "kiosk<->chromium", "to_doctor_ms": a, "to_kiosk_ms": b}));
                end_from_page(&doctor, &k).await;
                let (a, b) = browser_g2g(&kiosk_side, &doctor).await;
                println!("  glass to glass, chromium <-> chromium: to the doctor {a} ms, to the kiosk {b} ms");
                g2g.push(json!({"pair": "chromium<->chromium", "to_doctor_ms": a, "to_kiosk_ms": b}));
                // Back to the fake cameras for the next profiles.
                for c in [&doctor, &kiosk_side] {
                    js(c, "window.mmMeasure.stop()").await;
                }
            }
            drop(shaping);
        }
        report(&results, &g2g, secs);
        let doc = json!({ "call_secs": secs, "calls": results, "glass_to_glass": g2g });
        if let Err(e) = std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
            println!("could not write {out}: {e}");
        } else {
            println!("results: {out}");
        }
    });
}

/// A browser pair call held open while the delays are read.
async fn browser_g2g(ks: &Client, ds: &Client) -> (f64, f64) {
    // The pages' pictures are read from the moment the peers show them.
    for c in [ks, ds] {
        js(c, "(window.mmMeasure.watching = true)").await;
    }
    negotiate(ks, ds).await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        trickle(ks, ds).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = glass_to_glass(ds, Ok(ks), 10).await;
    for c in [ks, ds] {
        js(c, "window.b2b.hangup()").await;
    }
    d
}

/// One direction's figures of a call.
type DirectionOf = fn(&CallResult) -> Option<&Direction>;

fn report(results: &[CallResult], g2g: &[Value], secs: u64) {
    println!();
    println!("network bench: {secs} s measured per call; receive figures from the receiver");
    println!(
        "{:<28} {:<20} {:<10} {:>5} {:>5} {:>6} {:>9} {:>6} {:>5} {:>6} {:>5}",
        "profile", "pair", "direction", "fps", "p10", "frz/m", "res", "kbit/s", "loss%", "rtx", "fec"
    );
    for r in results.iter().filter(|r| r.measured_s > (secs as f64) * 0.9) {
        for (dir, d) in [("to doctor", &r.to_doctor), ("to kiosk", &r.to_kiosk)] {
            println!("{:<28} {:<20} {:<10} {}", r.profile, r.pair, dir, dir_cells(d));
        }
        if let Some(c) = r.cut_recovery_s {
            println!("{:<28} {:<20} video both ways {c:.2} s after a 10 s cut", r.profile, r.pair);
        }
    }
    // With BENCH_REPEAT, each cell's measured calls together: the median and the range of the seconds frozen per
    // minute and of the 10th-percentile frame rate.
    let measured: Vec<&CallResult> = results.iter().filter(|r| r.measured_s > (secs as f64) * 0.9).collect();
    let mut cells: Vec<(&str, &str)> = Vec::new();
    for r in &measured {
        if !cells.contains(&(r.profile.as_str(), r.pair.as_str())) {
            cells.push((r.profile.as_str(), r.pair.as_str()));
        }
    }
    for (profile, pair) in cells {
        let calls: Vec<&&CallResult> = measured.iter().filter(|r| r.profile == profile && r.pair == pair).collect();
        if calls.len() < 2 {
            continue;
        }
        let directions: [(&str, DirectionOf); 2] =
            [("to doctor", |r| r.to_doctor.as_ref()), ("to kiosk", |r| r.to_kiosk.as_ref())];
        for (dir, of) in directions {
            let ds: Vec<&Direction> = calls.iter().filter_map(|r| of(r)).collect();
            let frz: Vec<f64> = ds.iter().map(|d| d.frozen_s_per_min).collect();
            let p10: Vec<f64> = ds.iter().map(|d| d.fps_p10).collect();
            // percentile() at 0, 0.5 and 1: the range and the median.
            let [fmin, fmed, fmax, pmin, pmed, pmax] =
                [(&frz, 0.0), (&frz, 0.5), (&frz, 1.0), (&p10, 0.0), (&p10, 0.5), (&p10, 1.0)]
                    .map(|(v, p)| percentile(v, p));
            println!(
                "{profile:<28} {pair:<20} {dir:<10} {} calls: frz/m median {fmed:.1} ({fmin:.1}-{fmax:.1}), p10 median {pmed:.1} ({pmin:.1}-{pmax:.1})",
                ds.len()
            );
        }
    }
    for pair in ["kiosk<->chromium", "chromium<->chromium"] {
        let calls: Vec<&CallResult> = results.iter().filter(|r| r.pair == pair).collect();
        let ok = calls.iter().filter(|r| r.ok).count();
        let setups: Vec<f64> = calls.iter().filter_map(|r| r.setup_s).collect();
        println!(
            "{pair}: {ok} of {} calls succeeded; set-up (accept or offer -> media both ways) median {:.2} s, p95 {:.2} s",
            calls.len(),
            percentile(&setups, 0.5),
            percentile(&setups, 0.95)
        );
    }
    for g in g2g {
        println!("glass to glass {g}");
    }
}
