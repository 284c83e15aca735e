//! Glass-to-glass stamps (`core::frame_stamp`): the moving test picture gets its capture time written in as it
//! leaves the camera stage; the doctor's decoded pictures are read for the stamp of the page's test source, which
//! gives the delay from the doctor's camera to the kiosk's screen. A camera's pictures carry no stamp (the fixed
//! patterns at both ends of the band do not match), so nothing is measured in a real call.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::frame_stamp;

/// A delay longer than this is a misread, not a measurement.
const PLAUSIBLE_MS: u32 = 10_000;

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Writes the capture time into every frame passing `pad` (8-bit luma first formats: I420, NV12…).
pub(super) fn stamp_passing(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        let Some(info_caps) = pad.current_caps() else { return gst::PadProbeReturn::Ok };
        let Ok(video) = gst_video::VideoInfo::from_caps(&info_caps) else { return gst::PadProbeReturn::Ok };
        if !luma_first(&video) {
            return gst::PadProbeReturn::Ok;
        }
        let Some(buffer) = info.buffer_mut() else { return gst::PadProbeReturn::Ok };
        let stamp = unix_ms() as u32;
        let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), &video) else {
            return gst::PadProbeReturn::Ok;
        };
        let stride = frame.plane_stride()[0] as usize;
        if let Ok(y) = frame.plane_data_mut(0) {
            frame_stamp::write(y, stride, video.width(), video.height(), stamp);
        }
        gst::PadProbeReturn::Ok
    });
}

fn luma_first(video: &gst_video::VideoInfo) -> bool {
    let f = video.format_info();
    f.is_yuv() && f.depth().first() == Some(&8) && f.pixel_stride().first() == Some(&1)
}

/// The delay (ms) from the stamp in a decoded picture to now, or `None` for a picture without a stamp.
pub(super) fn glass_to_glass(sample: &gst::Sample) -> Option<u32> {
    let video = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &video).ok()?;
    let (w, h) = (video.width(), video.height());
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).ok()?;
    let stamp = if luma_first(&video) {
        frame_stamp::read(data, stride, w, h)
    } else if video.format() == gst_video::VideoFormat::Rgba {
        frame_stamp::read_with(w, h, |x, row| {
            let p = data.get(row * stride + x * 4..row * stride + x * 4 + 3)?;
            let luma = 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
            Some(luma as u8)
        })
    } else {
        None
    }?;
    let delay = frame_stamp::delay_ms(stamp, unix_ms());
    (delay < PLAUSIBLE_MS).then_some(delay)
}
