//! The ring tone for an incoming call: a soft two-tone chime on the speaker. The UI switches it on and off in the
//! ring's rhythm (and stops it by dropping the [`RingTone`]); nothing is recorded.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::MediaError;

pub struct RingTone {
    pipeline: gst::Pipeline,
}

impl RingTone {
    /// Starts the tone, silent until [`RingTone::set_sounding`]. `sink` is the speaker's element description.
    pub fn start(sink: &str) -> Result<RingTone, MediaError> {
        let desc = format!(
            "audiotestsrc is-live=true wave=sine freq=660 volume=0.25 ! audiomixer name=m ! audioconvert \
             ! volume name=ringvol mute=true ! {sink} \
             audiotestsrc is-live=true wave=sine freq=880 volume=0.15 ! m."
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| MediaError::Build(format!("ring tone: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("ring tone: not a pipeline".into()))?;
        pipeline.set_state(gst::State::Playing).map_err(|e| MediaError::Build(format!("ring tone: {e}")))?;
        Ok(RingTone { pipeline })
    }

    pub fn set_sounding(&self, on: bool) {
        if let Some(v) = self.pipeline.by_name("ringvol") {
            v.set_property("mute", !on);
        }
    }

    pub fn is_sounding(&self) -> bool {
        self.pipeline.by_name("ringvol").is_some_and(|v| !v.property::<bool>("mute"))
    }
}

impl Drop for RingTone {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
