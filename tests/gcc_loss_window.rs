//! The loss window patched into rtpgccbwe (vendor/gst-plugin-rtp, see its src/gcc/loss.rs): its own unit tests,
//! compiled here because the vendored crate's test build needs dev-dependencies the kiosk does not carry.
#[path = "../vendor/gst-plugin-rtp/src/gcc/loss.rs"]
mod loss;
