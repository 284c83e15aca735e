//! The technician's camera and microphone check: a short capture, outside any call.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Sources;

/// The technician's camera and microphone check: runs the capture sources for `run` and says in one line what
/// arrived (pictures counted, microphone level), or why they did not start.
pub fn device_check(sources: &Sources, run: std::time::Duration) -> String {
    let desc = format!(
        "{} ! videoconvert ! appsink name=v sync=false max-buffers=1 drop=true \
         {} ! audioconvert ! level name=lvl interval=200000000 ! fakesink sync=false",
        sources.video, sources.audio
    );
    let pipeline = match gst::parse::launch(&desc).map(|e| e.downcast::<gst::Pipeline>()) {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return "The check could not build its pipeline.".into(),
        Err(e) => return format!("The camera or microphone could not be opened: {e}"),
    };
    let frames = Arc::new(AtomicU64::new(0));
    if let Some(sink) = pipeline.by_name("v").and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok()) {
        let frames = frames.clone();
        sink.set_callbacks(
            gstreamer_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let _ = s.pull_sample();
                    frames.fetch_add(1, Ordering::Relaxed);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return format!("The camera or microphone did not start: {e}");
    }
    let mut level_db: Option<f64> = None;
    let mut error = None;
    let deadline = std::time::Instant::now() + run;
    if let Some(bus) = pipeline.bus() {
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else { break };
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(st) = e.structure().filter(|s| s.name() == "level")
                        && let Ok(rms) = st.get::<gst::glib::ValueArray>("rms")
                        && let Some(v) = rms.iter().filter_map(|v| v.get::<f64>().ok()).reduce(f64::max)
                    {
                        level_db = Some(level_db.map_or(v, |l: f64| l.max(v)));
                    }
                }
                gst::MessageView::Error(e) => {
                    error = Some(e.error().to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(e) = error {
        return format!("The check failed: {e}");
    }
    let n = frames.load(Ordering::Relaxed);
    let cam = if sources.video_is_test { " (test picture, no camera)" } else { "" };
    let mic = if sources.audio_is_test { " (test tone, no microphone)" } else { "" };
    let level = level_db.map_or("no sound level".to_string(), |l| format!("loudest {l:.0} dB"));
    format!("Camera: {n} pictures in {} s{cam}. Microphone: {level}{mic}.", run.as_secs())
}
