//! The media engine on real GStreamer pipelines with test sources: every profile whose elements exist here builds
//! and produces an offer; the probe falls back when a preferred encoder is missing. What sessions leave behind is
//! checked in a process of its own, `tests/media_leaks.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use medimitra::config::Media;
use medimitra::core::media_rules::VideoCodec;
use medimitra::media::{EncoderProfile, MediaEngine, ProbeOutcome, probe};
use std::time::{Duration, Instant};

#[path = "support/media.rs"]
mod media_support;
use media_support::{test_media, wait_offer};

#[test]
fn every_working_profile_builds_a_session_and_offers_its_codec_with_twcc() {
    medimitra::media::init().unwrap();
    let all = EncoderProfile::load_all(None).unwrap();
    let report = probe(&all, "auto");
    let working: Vec<&EncoderProfile> = report
        .entries
        .iter()
        .filter(|(_, o)| matches!(o, ProbeOutcome::Chosen | ProbeOutcome::Working))
        .map(|(p, _)| p)
        .collect();
    assert!(working.iter().any(|p| p.name == "software-x264"), "{}", report.render());
    assert!(working.iter().any(|p| p.name == "software-vp8"), "{}", report.render());
    for profile in working {
        let mut settings = test_media();
        settings.profile = profile.name.clone();
        let engine = MediaEngine::start(&settings, &[]).unwrap();
        assert_eq!(engine.profile_for(profile.codec).map(|p| p.name.as_str()), Some(profile.name.as_str()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let session = engine.start_session("t-s1", profile.codec, tx).unwrap();
        let sdp = wait_offer(&mut rx);
        session.stop();
        let name = profile.codec.encoding_name();
        assert!(sdp.contains(&format!(" {name}/90000")), "{}: offer lacks {name}:\n{sdp}", profile.name);
        assert!(sdp.to_lowercase().contains("opus/48000"), "{}: no Opus", profile.name);
        assert!(sdp.contains("transport-wide-cc"), "{}: no TWCC extension:\n{sdp}", profile.name);
        assert!(sdp.contains("a=group:BUNDLE"), "{}: no BUNDLE", profile.name);
        assert!(sdp.contains("a=setup:active"), "{}: the kiosk must be the DTLS client", profile.name);
        assert_eq!(sdp.matches("a=sendrecv").count(), 2, "{}", profile.name);
    }
}

#[test]
fn the_probe_falls_back_when_the_preferred_encoder_is_missing_or_broken() {
    medimitra::media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let x264 = include_str!("../pipelines/40-software-x264.toml");
    std::fs::write(dir.path().join("40-x264.toml"), x264).unwrap();
    std::fs::write(
        dir.path().join("01-missing.toml"),
        x264.replace("software-x264", "imaginary-hw")
            .replace("priority = 50", "priority = 200")
            .replace("x264enc tune", "imaginaryh264enc tune"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("02-broken.toml"),
        x264.replace("software-x264", "broken-caps")
            .replace("priority = 50", "priority = 150")
            .replace("video/x-h264,profile=(string)constrained-baseline", "video/x-vp8"),
    )
    .unwrap();
    let profiles = EncoderProfile::load_all(Some(dir.path())).unwrap();
    let report = probe(&profiles, "auto");
    let outcome = |name: &str| report.entries.iter().find(|(p, _)| p.name == name).map(|(_, o)| o.clone()).unwrap();
    assert_eq!(outcome("imaginary-hw"), ProbeOutcome::MissingElements(vec!["imaginaryh264enc".into()]));
    assert!(matches!(outcome("broken-caps"), ProbeOutcome::TestFailed(_)), "{}", report.render());
    assert_eq!(outcome("software-x264"), ProbeOutcome::Chosen);
    assert_eq!(report.chosen().map(|p| p.codec).collect::<Vec<_>>(), vec![VideoCodec::H264]);

    // Forcing a profile that cannot run is reported, and the best working one is used.
    let report = probe(&profiles, "imaginary-hw");
    assert_eq!(report.forced_failed.as_deref(), Some("imaginary-hw"));
    assert!(report.render().contains("does not work here"));
    assert_eq!(report.chosen().next().map(|p| p.name.as_str()), Some("software-x264"));
}

/// What an offer's media sections lack of their sending SSRCs: the video section must name its stream and its
/// retransmission stream (`a=ssrc-group:FID`), the audio section its stream. Without them Chrome drops the kiosk's
/// video (no demultiplexing by MID here) and every retransmission.
fn missing_ssrcs(sdp: &str) -> Vec<&'static str> {
    let section =
        |kind: &str| sdp.split("\r\nm=").find(|s| s.starts_with(kind)).map(|s| s.to_string()).unwrap_or_default();
    let (video, audio) = (section("video"), section("audio"));
    let mut missing = Vec::new();
    if !video.contains("a=ssrc-group:FID ") {
        missing.push("video ssrc-group:FID");
    }
    if !video.contains("a=ssrc:") {
        missing.push("video a=ssrc");
    }
    if !audio.contains("a=ssrc:") {
        missing.push("audio a=ssrc");
    }
    missing
}

/// Every offer names the SSRCs of what the kiosk sends. webrtcbin takes them from the caps its sink pads have
/// received; the offer used to wait for the payloaders' caps only, and now and then the caps were still in the queue
/// between payloader and webrtcbin when the offer was made: an offer without the video's SSRC, and a call in which
/// the doctor never saw the kiosk (seen in about 1 of 100 calls in the network bench). Many sessions on a loaded
/// machine (two threads spinning) to meet the race.
#[test]
fn every_offer_names_the_ssrcs_of_what_the_kiosk_sends() {
    medimitra::media::init().unwrap();
    let engine = MediaEngine::start(&test_media(), &[]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let mut bad = Vec::new();
    for i in 0..120 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let session = engine.start_session(&format!("t-ssrc{i}"), VideoCodec::H264, tx).unwrap();
        let sdp = wait_offer(&mut rx);
        session.stop();
        let missing = missing_ssrcs(&sdp);
        if !missing.is_empty() {
            bad.push((i, missing));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    assert!(bad.is_empty(), "offers without their SSRCs (session, what was missing): {bad:?}");
}

/// Until the peer connection is up webrtcbin sends no RTP, and everything encoded meanwhile used to leave at once when
/// it came up: more than a 1 Mbit/s uplink takes (its router dropped 77-190 packets per call, most in the first
/// second). A session whose offer is never answered encodes the frame that gives the offer its SSRCs and then holds
/// the picture back: over 2 s at 30 fps the encoder puts out a handful of frames, not ~60.
#[test]
fn nothing_is_encoded_while_the_peer_connection_comes_up() {
    medimitra::media::init().unwrap();
    let settings = Media { framerate: 30, ..test_media() };
    let engine = MediaEngine::start(&settings, &[]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let session = engine.start_session("t-hold", VideoCodec::H264, tx).unwrap();
    wait_offer(&mut rx);
    let at_offer = session.encoded_frames();
    std::thread::sleep(Duration::from_secs(2));
    let after = session.encoded_frames();
    session.stop();
    assert!(after <= at_offer + 3, "{after} frames encoded in 2 s without a connection (at the offer: {at_offer})");
}

/// webrtcbin sends no RTP until the peer connection is up and blocks what reaches it; the microphone's packets used
/// to wait in the queue before it until that was full, and then the microphone itself was blocked. A live source
/// catches up on what it missed, so when the connection came up all of it left at once: 235 packets within 250 ms
/// after a 4.7 s set-up, and a 500 kbit/s uplink's router dropped 83-143 packets of that call's start. Now the
/// packets are dropped until then and the microphone runs in real time: a session whose offer is never answered
/// encodes its 50 frames a second throughout (before: it stopped once the queue held a second of them).
#[test]
fn the_microphone_is_not_held_back_while_the_peer_connection_comes_up() {
    medimitra::media::init().unwrap();
    let engine = MediaEngine::start(&test_media(), &[]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let session = engine.start_session("t-audio-hold", VideoCodec::H264, tx).unwrap();
    wait_offer(&mut rx);
    let at_offer = session.encoded_audio_frames();
    std::thread::sleep(Duration::from_secs(3));
    let made = session.encoded_audio_frames() - at_offer;
    session.stop();
    assert!(made >= 100, "{made} audio frames encoded in 3 s without a connection (150 in real time)");
}

/// Frames through the ladder's stage at the rung `rung`, pushed with timestamps 1/30 s apart: how many of `pushed`
/// came out, and whether the first came out before the second went in (read with a 1 s wait).
fn through_the_ladder(rung: medimitra::core::adaptation::Rung, pushed: u64) -> (u64, bool) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use medimitra::media::ladder;
    gst::init().expect("gstreamer");
    let desc = format!(
        "appsrc name=in format=time caps=\"video/x-raw,format=I420,width={w},height={h},framerate=30/1\" \
         ! {} ! appsink name=out sync=false",
        ladder::stage(rung),
        w = rung.width,
        h = rung.height,
    );
    // Dropped frames must not make GStreamer complain (a probe returning `Drop` logged a CRITICAL for each).
    let criticals = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = criticals.clone();
    let handler = gst::glib::log_set_handler(
        Some("GStreamer"),
        gst::glib::LogLevels::LEVEL_CRITICAL,
        false,
        false,
        move |_, _, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
    );
    let pipeline = gst::parse::launch(&desc).expect("pipeline").downcast::<gst::Pipeline>().expect("a pipeline");
    ladder::drop_above_rung(pipeline.upcast_ref());
    let src = pipeline.by_name("in").and_downcast::<gstreamer_app::AppSrc>().expect("appsrc");
    let sink = pipeline.by_name("out").and_downcast::<gstreamer_app::AppSink>().expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let frame_bytes = (rung.width * rung.height * 3 / 2) as usize;
    let push = |n: u64| {
        let mut buffer = gst::Buffer::with_size(frame_bytes).expect("buffer");
        let b = buffer.get_mut().expect("writable");
        b.set_pts(gst::ClockTime::from_nseconds(n * 1_000_000_000 / 30));
        b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / 30));
        src.push_buffer(buffer).expect("pushed");
    };
    push(0);
    let first_at_once = sink.try_pull_sample(gst::ClockTime::from_seconds(1)).is_some();
    let mut out = u64::from(first_at_once);
    for n in 1..pushed {
        push(n);
        while sink.try_pull_sample(gst::ClockTime::from_mseconds(if n + 1 == pushed { 500 } else { 0 })).is_some() {
            out += 1;
        }
    }
    pipeline.set_state(gst::State::Null).expect("stopped");
    gst::glib::log_remove_handler(Some("GStreamer"), handler);
    assert_eq!(
        criticals.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "GStreamer CRITICALs while frames went through"
    );
    (out, first_at_once)
}

/// The ladder's frame dropper passes a frame on as it arrives. videorate in its default mode held each frame until
/// the next one came (it picks the closer of two to its output times): 33 ms more on every picture's way to the
/// doctor at 30 fps (glass-to-glass 79 ms against Chromium's 40 in the network bench).
#[test]
fn the_ladder_passes_each_frame_on_as_it_arrives() {
    let full = medimitra::core::adaptation::Rung { width: 320, height: 180, fps: 30, min_kbps: 0 };
    let (out, first_at_once) = through_the_ladder(full, 60);
    assert!(first_at_once, "the first frame waited for the second");
    assert_eq!(out, 60, "at the camera's own rate every frame goes through");
}

/// ...and still keeps a rung's lower frame rate: 15 fps out of 30.
#[test]
fn the_ladder_halves_the_frame_rate_at_a_15_fps_rung() {
    let half = medimitra::core::adaptation::Rung { width: 320, height: 180, fps: 15, min_kbps: 0 };
    let (out, first_at_once) = through_the_ladder(half, 90);
    assert!(first_at_once, "the first frame waited for the second");
    assert_eq!(out, 45, "of 90 frames at 30 fps through a 15 fps rung");
}

/// The ladder moves the picture between rungs while a moving picture flows into the encoder, as the session's monitor
/// does on a lossy link: no step may stop the chain (before `caps-change-mode=delayed` one of the first ~60 steps
/// did, with `not-negotiated`, and the session failed), and the last step is what leaves the stage.
#[test]
fn the_ladder_steps_any_way_while_frames_flow_without_stopping_the_picture() {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use medimitra::core::adaptation::{Rung, ladder as rungs};
    use medimitra::media::ladder;
    gst::init().expect("gstreamer");
    let all: Vec<Rung> = rungs(1280, 720, 30);
    assert!(all.len() >= 4, "{all:?}");
    let desc = format!(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=3 \
         ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 \
         ! queue max-size-buffers=2 max-size-time=0 max-size-bytes=0 leaky=downstream ! {} \
         ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast threads=2 \
         ! video/x-h264,profile=(string)constrained-baseline,level=(string)3.1 ! fakesink sync=false",
        ladder::stage(all[2])
    );
    let pipeline = gst::parse::launch(&desc).expect("pipeline").downcast::<gst::Pipeline>().expect("a pipeline");
    ladder::drop_above_rung(pipeline.upcast_ref());
    let filter = pipeline.by_name(ladder::NAME).expect("the ladder's capsfilter");
    let bus = pipeline.bus().expect("bus");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut failure = None;
    // Every pair of rungs in both directions, again and again, 30 ms apart (a frame at 30 fps).
    for step in 0..300usize {
        let rung = all[(step * 7 + step / 3) % all.len()];
        filter.set_property("caps", ladder::caps(rung));
        if let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(30), &[gst::MessageType::Error]) {
            failure = Some(format!("step {step} to {rung:?}: {msg:?}"));
            break;
        }
    }
    let last = all[all.len() - 1];
    filter.set_property("caps", ladder::caps(last));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = None;
    while failure.is_none() && Instant::now() < deadline {
        out = filter.static_pad("src").and_then(|p| p.current_caps());
        let s = out.as_ref().and_then(|c| c.structure(0).map(|s| (s.get::<i32>("width"), s.get::<i32>("height"))));
        if s == Some((Ok(last.width as i32), Ok(last.height as i32))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pipeline.set_state(gst::State::Null).expect("stopped");
    assert_eq!(failure, None);
    let out = out.expect("caps after the last step");
    let s = out.structure(0).expect("structure");
    assert_eq!(
        (s.get::<i32>("width"), s.get::<i32>("height"), s.get::<gst::Fraction>("framerate")),
        (Ok(last.width as i32), Ok(last.height as i32), Ok(gst::Fraction::new(last.fps as i32, 1)))
    );
}

/// GStreamer's DTLS waits OpenSSL's default 1 s before it sends a lost handshake flight again; on a lossy link each
/// lost flight held the call's first picture both ways for a second or more. The kiosk's own timer
/// (`core::dtls`, installed by `media::init`) resends after 200 ms. Two real DTLS connections, the kiosk's
/// elements as webrtcbin uses them; the client's first flight (its ClientHello) is lost on the way.
#[test]
fn a_lost_dtls_handshake_flight_is_sent_again_after_a_fifth_of_a_second() {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use std::sync::{Arc, Mutex};

    medimitra::media::init().unwrap();
    let id = std::process::id();
    let pipeline = gst::parse::launch(&format!(
        "dtlsenc name=cenc connection-id=c{id} is-client=true ! dtlsdec name=sdec connection-id=s{id} \
         dtlsenc name=senc connection-id=s{id} ! dtlsdec name=cdec connection-id=c{id}"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let pad = pipeline.by_name("cenc").unwrap().static_pad("src").unwrap();
    let log = sent.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let mut log = log.lock().unwrap();
        log.push(Instant::now());
        if log.len() == 1 {
            drop(info.data.take());
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let connected = |name: &str| {
        let e = pipeline.by_name(name).unwrap();
        let state = e.property_value("connection-state");
        let state = state.get::<&gst::glib::EnumValue>().map(|v| v.nick().to_string()).unwrap_or_default();
        state == "connected"
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(connected("cenc") && connected("senc")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let both = connected("cenc") && connected("senc");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(both, "the handshake did not complete after the lost flight");
    let sent = sent.lock().unwrap();
    // The first flight leaves at once (a record or two); the next send after a pause is its retransmission.
    let resent_after = sent.iter().map(|t| *t - sent[0]).find(|d| *d > Duration::from_millis(50));
    let resent_after = resent_after.expect("the client never sent its first flight again");
    assert!(
        resent_after < Duration::from_millis(600),
        "the lost ClientHello was sent again after {resent_after:?} (OpenSSL's default is 1 s)"
    );
}
