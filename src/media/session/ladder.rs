//! The ladder's stage of the kiosk's video chain: a scaler, a frame dropper and the capsfilter whose caps name the
//! rung (`core::adaptation::Rung`) the picture is sent at. The session's monitor moves the picture between rungs by
//! setting [`caps`] on the element named [`NAME`] while frames flow.

use crate::core::adaptation::Rung;
use gstreamer as gst;

/// The name of the capsfilter that sets the picture's rung.
pub const NAME: &str = "ladder";

/// The stage as a launch-line fragment, starting at the rung `first`.
///
/// The capsfilter changes its caps in `delayed` mode: with the default (`immediate`) a frame already past the scaler
/// when the caps change meets the new caps with its old size, the transform elements fail to renegotiate and the
/// source stops with `not-negotiated`: the whole media session failed and a new one had to replace it (seen in the
/// network benchmark on most lossy profiles; `tests/media.rs` steps the ladder while frames flow).
pub fn stage(first: Rung) -> String {
    format!(
        "videoscale ! videorate drop-only=true skip-to-first=true \
         ! capsfilter name={NAME} caps-change-mode=delayed caps=\"{}\"",
        caps(first)
    )
}

/// The raw video caps for a rung (what the capsfilter asks of the scaler and the frame dropper).
pub fn caps(r: Rung) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("width", r.width as i32)
        .field("height", r.height as i32)
        .field("framerate", gst::Fraction::new(r.fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}
