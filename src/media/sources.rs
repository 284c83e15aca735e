//! Where capture and playback come from: the camera, microphone and speaker found at start, or test sources that
//! stand in for them (and say so).

use crate::config::{Media, TestPattern};

/// Where capture comes from, decided once at start (and reported, so a kiosk on test sources says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub video: String,
    pub video_is_test: bool,
    /// The test picture carries each frame's capture time (`core::frame_stamp`).
    pub stamp_frames: bool,
    pub audio: String,
    pub audio_is_test: bool,
    pub audio_sink: String,
}

fn has_capture_device(prefix: &str, suffix: char) -> bool {
    std::fs::read_dir("/dev/snd").is_ok_and(|d| {
        d.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
    })
}

fn first_camera() -> Option<String> {
    let mut cams: Vec<String> = std::fs::read_dir("/dev")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("video") && n[5..].chars().all(|c| c.is_ascii_digit()) && n.len() > 5)
        .collect();
    cams.sort();
    cams.first().map(|n| format!("/dev/{n}"))
}

impl Sources {
    /// Resolves `auto` against the devices present now.
    pub fn resolve(m: &Media) -> Sources {
        let (w, h, f) = (m.width, m.height, m.framerate);
        // The test picture is painted once, in I420 (what encoders take), and repeated live by imagefreeze. Measured
        // at 720p30: painting every frame cost 4 % of a core (13 % when left to paint a 64-bit format that
        // videoconvert then converted); repeating one frame costs 0.6 %. Either way the encoder sees a still picture.
        let test_video = match m.test_pattern {
            TestPattern::Still => format!(
                "videotestsrc pattern=smpte num-buffers=1 ! video/x-raw,format=I420,width={w},height={h},framerate={f}/1 \
                 ! imagefreeze is-live=true"
            ),
            // Bars sliding sideways under a ball: every frame differs, with edges and flat areas, as a camera's do.
            TestPattern::Moving => format!(
                "videotestsrc is-live=true pattern=smpte horizontal-speed=3 \
                 ! video/x-raw,format=I420,width={w},height={h},framerate={f}/1"
            ),
        };
        let libcamera = gstreamer::ElementFactory::find("libcamerasrc").is_some();
        let (video, video_is_test) = match m.video_source.as_str() {
            "test" => (test_video, true),
            "auto" => match first_camera() {
                // Raspberry Pi camera modules expose raw sensor nodes that only libcamera can drive.
                Some(_) if libcamera => ("libcamerasrc".to_string(), false),
                Some(dev) => (format!("v4l2src device={dev}"), false),
                None => (test_video, true),
            },
            dev => (format!("v4l2src device={dev}"), false),
        };
        let test_audio = "audiotestsrc is-live=true wave=sine freq=440 volume=0.05".to_string();
        let (audio, audio_is_test) = match m.audio_source.as_str() {
            "auto" if has_capture_device("pcmC", 'c') => ("autoaudiosrc".to_string(), false),
            _ => (test_audio, true),
        };
        let audio_sink = match m.audio_sink.as_str() {
            "auto" if has_capture_device("pcmC", 'p') => "autoaudiosink".to_string(),
            _ => "fakesink sync=true".to_string(),
        };
        let stamp_frames = video_is_test && m.test_pattern == TestPattern::Moving;
        Sources { video, video_is_test, stamp_frames, audio, audio_is_test, audio_sink }
    }
}
