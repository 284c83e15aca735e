//! The doctor's streams as they appear on webrtcbin: decoded, the video counted and handed to the screen's picture
//! slot, the audio mixed into the speaker path (which also feeds the echo canceller's probe). The decoders are set
//! up to ask for keyframes on loss (rate-limited PLI) and to conceal lost audio with Opus's in-band FEC.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::{LiveMedia, VideoFrame};
use super::tuning::Tuning;
use crate::core::playout::{MAX_PLAYOUT_DELAY, PlayoutClock};

/// The appsink that receives the doctor's decoded video.
pub(super) const DOCTOR_VIDEO: &str = "doctor-video";

/// The least time between two keyframe requests (PLI) the kiosk sends for the doctor's video.
const MIN_KEYFRAME_REQUEST_INTERVAL: gst::ClockTime = gst::ClockTime::from_mseconds(500);

/// The appsink that receives what the doctor shares, decoded.
pub(super) const SHARED_VIDEO: &str = "doctor-shared";

/// Which of the doctor's streams a webrtcbin pad carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RemoteStream {
    /// The doctor's camera and microphone (the call's first two transceivers).
    Camera,
    /// A picture or screen the doctor shares, on the video transceiver the kiosk offers receive-only.
    Shared,
}

/// Plays one stream the doctor sends: camera video to the appsink (counted; the touch UI draws it), audio to the
/// speaker mixer that also feeds the echo canceller's probe, a shared picture to its own appsink.
pub(super) fn link_remote(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    stream: RemoteStream,
    live: &Arc<LiveMedia>,
    tuning: &Arc<Tuning>,
) -> Result<(), glib::BoolError> {
    let decodebin = gst::ElementFactory::make("decodebin").build()?;
    pipeline.add(&decodebin)?;
    decodebin.sync_state_with_parent()?;
    let sink = decodebin.static_pad("sink").ok_or_else(|| glib::bool_error!("decodebin has no sink"))?;
    pad.link(&sink).map_err(|e| glib::bool_error!("link: {e:?}"))?;
    decodebin.connect("deep-element-added", false, |args| {
        if let Some(element) = args.get(2).and_then(|v| v.get::<gst::Element>().ok()) {
            tune_decoder(&element);
        }
        None
    });
    let pipe_weak = pipeline.downgrade();
    let live = live.clone();
    let tuning = tuning.clone();
    decodebin.connect_pad_added(move |_, dpad| {
        let Some(pipeline) = pipe_weak.upgrade() else { return };
        let is_video =
            dpad.current_caps().and_then(|c| c.structure(0).map(|s| s.name().starts_with("video"))).unwrap_or(false);
        let result = match (is_video, stream) {
            (true, RemoteStream::Shared) => link_shared(&pipeline, dpad, &live),
            (true, RemoteStream::Camera) => link_video(&pipeline, dpad, &live, &tuning),
            (false, _) => link_audio(&pipeline, dpad, &live),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot link the doctor's stream");
        }
    });
    Ok(())
}

/// Sets up an element decodebin made for the doctor's streams:
/// - video decoders ask for a keyframe when frames are lost (GstVideoDecoder's automatic sync-point requests go
///   upstream as PLI), at most one request per [`MIN_KEYFRAME_REQUEST_INTERVAL`], and drop corrupted frames (the
///   picture holds instead of smearing, as browsers do). The depayloaders' own `request-keyframe` is left off: it
///   sends an unthrottled FIR for every gap;
/// - `opusdec` conceals lost packets and decodes the in-band FEC the browser sends.
fn tune_decoder(element: &gst::Element) {
    let has = |name: &str| element.find_property(name).is_some();
    if has("automatic-request-sync-points") {
        element.set_property("automatic-request-sync-points", true);
        if has("min-force-key-unit-interval") {
            element.set_property("min-force-key-unit-interval", MIN_KEYFRAME_REQUEST_INTERVAL.nseconds());
        }
        if has("discard-corrupted-frames") {
            element.set_property("discard-corrupted-frames", true);
        }
    }
    if has("use-inband-fec") && has("plc") {
        element.set_property("plc", true);
        element.set_property("use-inband-fec", true);
    }
}

/// Decoded frames the queue before the sink keeps when nothing holds them (a slow screen drops, never queues).
const QUEUED_FRAMES: u32 = 2;

fn link_video(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    live: &Arc<LiveMedia>,
    tuning: &Arc<Tuning>,
) -> Result<(), glib::BoolError> {
    // While frames are held for their playout time (`core::playout`) the queue keeps more (`Playout::resize_queue`).
    let branch = VideoBranch::new(live, DOCTOR_VIDEO, QUEUED_FRAMES, 2)?;
    let want_rgba = branch.rgba;
    let live = live.clone();
    let tuning = tuning.clone();
    let queue_weak = branch.queue.downgrade();
    let playout = Arc::new(Playout::default());
    if let Some(pad) = branch.queue.static_pad("sink") {
        let playout = playout.clone();
        let queue_weak = queue_weak.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let (Some(queue), Some(buffer)) = (queue_weak.upgrade(), info.buffer()) {
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                playout.arrived(&queue, segment.as_ref().map(|e| e.segment()), buffer);
            }
            gst::PadProbeReturn::Ok
        });
    }
    branch.sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let delay = Duration::from_millis(u64::from(tuning.playout_delay_ms.load(Ordering::Relaxed)))
                    .min(MAX_PLAYOUT_DELAY);
                playout.resize_queue(&queue_weak, delay);
                if let Some(hold) = playout.hold(s, &sample, delay) {
                    std::thread::sleep(hold);
                }
                if let Some(st) = sample.caps().and_then(|c| c.structure(0).map(|s| s.to_owned()))
                    && let (Ok(w), Ok(h)) = (st.get::<i32>("width"), st.get::<i32>("height"))
                {
                    live.received.width.store(w as u64, Ordering::Relaxed);
                    live.received.height.store(h as u64, Ordering::Relaxed);
                }
                live.received.video_frame();
                if let Some(ms) = super::stamp::glass_to_glass(&sample) {
                    live.received.set_glass_to_glass_ms(ms);
                }
                if want_rgba && let Some(frame) = rgba_frame(&sample) {
                    live.pictures.offer_doctor(frame);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    branch.attach(pipeline, pad)
}

/// The end of a decoded video branch: a leaky queue, conversion to RGBA only when a screen draws the pictures
/// (converting every decoded frame costs a few percent of a core at 720p), and a dropping appsink. The caller sets
/// the sink's callbacks, then [`VideoBranch::attach`]es it.
struct VideoBranch {
    queue: gst::Element,
    convert: gst::Element,
    sink: gstreamer_app::AppSink,
    /// Whether the sink's samples are RGBA (a screen draws them).
    rgba: bool,
}

impl VideoBranch {
    fn new(live: &LiveMedia, name: &str, queued: u32, kept: u32) -> Result<VideoBranch, glib::BoolError> {
        let queue = gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", queued)
            .property("max-size-time", 0u64)
            .property("max-size-bytes", 0u32)
            .build()?;
        let rgba = live.pictures.wanted();
        let convert = gst::ElementFactory::make(if rgba { "videoconvert" } else { "identity" }).build()?;
        let caps =
            if rgba { gst::Caps::builder("video/x-raw").field("format", "RGBA").build() } else { gst::Caps::new_any() };
        let sink =
            gstreamer_app::AppSink::builder().name(name).caps(&caps).max_buffers(kept).drop(true).sync(false).build();
        Ok(VideoBranch { queue, convert, sink, rgba })
    }

    /// Adds the branch to `pipeline`, starts it and feeds it from `pad`.
    fn attach(self, pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), glib::BoolError> {
        let elements = [&self.queue, &self.convert, self.sink.upcast_ref::<gst::Element>()];
        pipeline.add_many(elements)?;
        gst::Element::link_many(elements)?;
        for e in elements {
            e.sync_state_with_parent()?;
        }
        let sinkpad = self.queue.static_pad("sink").ok_or_else(|| glib::bool_error!("queue has no sink"))?;
        pad.link(&sinkpad).map_err(|e| glib::bool_error!("link: {e:?}"))?;
        Ok(())
    }
}

/// Holds each of the doctor's frames until its playout time, in the sink's streaming thread (as a synchronising
/// sink would, but against the fastest recent arrival rather than the pipeline's latency, which the audio sets).
/// Arrivals are read where the decoder hands frames to the queue, before they wait there.
#[derive(Default)]
struct Playout {
    clock: Mutex<PlayoutClock>,
    /// The delay the queue was last sized for (ms).
    sized_for_ms: AtomicU64,
}

impl Playout {
    fn arrived(&self, element: &gst::Element, segment: Option<&gst::Segment>, buffer: &gst::BufferRef) {
        let pts = segment
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .zip(buffer.pts())
            .and_then(|(s, pts)| s.to_running_time(pts));
        if let (Some(now), Some(pts)) = (element.current_running_time(), pts) {
            self.clock.lock().unwrap_or_else(|p| p.into_inner()).arrived(now.into(), pts.into());
        }
    }

    fn hold(&self, sink: &gstreamer_app::AppSink, sample: &gst::Sample, delay: Duration) -> Option<Duration> {
        let now = sink.current_running_time()?;
        let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
        let pts = segment.to_running_time(sample.buffer()?.pts()?)?;
        let hold = self.clock.lock().unwrap_or_else(|p| p.into_inner()).hold(now.into(), pts.into(), delay);
        tracing::trace!(now = now.mseconds(), pts = pts.mseconds(), hold = hold.as_millis() as u64, "playout");
        (!hold.is_zero()).then_some(hold)
    }

    /// Room in the queue for the frames that arrive while one is held (30 fps assumed: at most 13 more).
    fn resize_queue(&self, queue: &glib::WeakRef<gst::Element>, delay: Duration) {
        let ms = delay.as_millis() as u64;
        if self.sized_for_ms.swap(ms, Ordering::Relaxed) == ms {
            return;
        }
        if let Some(q) = queue.upgrade() {
            q.set_property("max-size-buffers", QUEUED_FRAMES + ms.div_ceil(33) as u32);
        }
    }
}

/// What the doctor shares: counted, and for a screen that draws it converted to RGBA. No playout holding (nothing
/// to keep in step with) and one frame queued at most: a shared page changes seldom, and the newest is what counts.
fn link_shared(pipeline: &gst::Pipeline, pad: &gst::Pad, live: &Arc<LiveMedia>) -> Result<(), glib::BoolError> {
    let branch = VideoBranch::new(live, SHARED_VIDEO, 1, 1)?;
    let (live, want_rgba) = (live.clone(), branch.rgba);
    branch.sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                live.received.shared_frames.fetch_add(1, Ordering::Relaxed);
                if want_rgba && let Some(frame) = rgba_frame(&sample) {
                    live.pictures.offer_shared(frame);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    branch.attach(pipeline, pad)
}

/// An RGBA sample as a frame for the screen, when its caps and size agree.
fn rgba_frame(sample: &gst::Sample) -> Option<VideoFrame> {
    let st = sample.caps()?.structure(0)?.to_owned();
    let (w, h) =
        (u32::try_from(st.get::<i32>("width").ok()?).ok()?, u32::try_from(st.get::<i32>("height").ok()?).ok()?);
    let len = w as usize * h as usize * 4;
    let map = sample.buffer()?.map_readable().ok()?;
    (map.len() >= len).then(|| VideoFrame { width: w, height: h, rgba: map[..len].to_vec() })
}

fn link_audio(pipeline: &gst::Pipeline, pad: &gst::Pad, live: &Arc<LiveMedia>) -> Result<(), glib::BoolError> {
    let mixer = pipeline.by_name(super::chime::MIXER).ok_or_else(|| glib::bool_error!("no mixer"))?;
    let convert = gst::ElementFactory::make("audioconvert").build()?;
    let resample = gst::ElementFactory::make("audioresample").build()?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("rate", 48000i32)
                .field("channels", 1i32)
                .build(),
        )
        .build()?;
    let elements = [&convert, &resample, &caps];
    pipeline.add_many(elements)?;
    gst::Element::link_many(elements)?;
    let counts = live.clone();
    if let Some(p) = caps.static_pad("src") {
        p.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counts.received.audio_buffers.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    let mixpad = mixer.request_pad_simple("sink_%u").ok_or_else(|| glib::bool_error!("no mixer pad"))?;
    caps.static_pad("src")
        .ok_or_else(|| glib::bool_error!("no src"))?
        .link(&mixpad)
        .map_err(|e| glib::bool_error!("link: {e:?}"))?;
    for e in elements {
        e.sync_state_with_parent()?;
    }
    pad.link(&convert.static_pad("sink").ok_or_else(|| glib::bool_error!("no sink"))?)
        .map_err(|e| glib::bool_error!("link: {e:?}"))?;
    Ok(())
}
