//! The ladder's stage of the kiosk's video chain: a scaler, a frame dropper and the capsfilter whose caps name the
//! rung (`core::adaptation::Rung`) the picture is sent at. The session's monitor moves the picture between rungs by
//! setting [`caps`] on the element named [`NAME`] while frames flow.

use crate::core::adaptation::{FrameDropper, Rung};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Mutex;

/// The name of the capsfilter that sets the picture's rung.
pub const NAME: &str = "ladder";
/// The name of the stage's scaler, its first element.
const SCALER: &str = "ladderscale";

/// The stage as a launch-line fragment, starting at the rung `first`.
///
/// The capsfilter changes its caps in `delayed` mode: with the default (`immediate`) a frame already past the scaler
/// when the caps change meets the new caps with its old size, the transform elements fail to renegotiate and the
/// source stops with `not-negotiated`: the whole media session failed and a new one had to replace it (seen in the
/// network benchmark on most lossy profiles; `tests/media.rs` steps the ladder while frames flow).
///
/// Frames above the rung's rate are dropped where they enter the stage ([`drop_above_rung`]); videorate only turns
/// the caps' frame rate into the rung's. In its default mode videorate holds every frame until the next one arrives,
/// to pick the closer of the two: one frame interval (33 ms at 30 fps) added to every picture's way to the doctor.
/// In its averaging mode (`average-period`) it holds nothing, and GStreamer 1.22 drops nothing in it either.
pub fn stage(first: Rung) -> String {
    format!(
        "videoscale name={SCALER} ! videorate drop-only=true average-period={AVERAGE_PERIOD_NS} \
         ! capsfilter name={NAME} caps-change-mode=delayed caps=\"{}\"",
        caps(first)
    )
}

/// Drops the frames above the current rung's rate as they enter the ladder's stage in `bin` (a
/// [`FrameDropper`]; the rate is read from the capsfilter's caps, which the monitor changes).
pub fn drop_above_rung(bin: &gst::Bin) {
    let (Some(scaler), Some(filter)) = (bin.by_name(SCALER), bin.by_name(NAME)) else { return };
    let Some(pad) = scaler.static_pad("sink") else { return };
    let filter = filter.downgrade();
    let dropper = Mutex::new(FrameDropper::default());
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let (Some(pts), Some(filter)) = (info.buffer().and_then(|b| b.pts()), filter.upgrade()) else {
            return gst::PadProbeReturn::Ok;
        };
        let caps = filter.property::<Option<gst::Caps>>("caps");
        let fps = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map_or(0, |f| (f.numer() as u32).div_ceil(f.denom() as u32));
        if dropper.lock().unwrap_or_else(|p| p.into_inner()).pass(pts.nseconds(), fps) {
            gst::PadProbeReturn::Ok
        } else {
            // Taken and reported handled: returning `Drop` from this probe made GStreamer log a
            // `gst_mini_object_unref: assertion 'mini_object != NULL'` CRITICAL for every dropped frame.
            drop(info.data.take());
            gst::PadProbeReturn::Handled
        }
    });
}

/// The window of videorate's moving average of the frame interval (1 s).
const AVERAGE_PERIOD_NS: u64 = 1_000_000_000;

/// The raw video caps for a rung (what the capsfilter asks of the scaler and the frame dropper).
pub fn caps(r: Rung) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("width", r.width as i32)
        .field("height", r.height as i32)
        .field("framerate", gst::Fraction::new(r.fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}
