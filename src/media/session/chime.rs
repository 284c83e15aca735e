//! A short chime for a new chat message, mixed into what the patient hears (the call's `playmix` mixer), so it
//! plays on whatever speaker the call uses and under the doctor's voice rather than in place of it. Each chime is a
//! small bin on a request pad of the mixer that removes itself when its tone has ended.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::media::MediaError;

/// The mixer on the speaker path (see the session's pipeline).
pub(super) const MIXER: &str = "playmix";

/// A soft 880 Hz tone of 240 ms (12 buffers of 20 ms), at the call's speaker format.
const TONE: &str = "audiotestsrc is-live=true wave=sine freq=880 volume=0.3 samplesperbuffer=960 num-buffers=12 \
                    ! capsfilter caps=audio/x-raw,format=S16LE,rate=48000,channels=1";

/// Plays one chime in `pipeline` (a call's): it starts at once and cleans up after itself.
pub(super) fn play(pipeline: &gst::Pipeline) -> Result<(), MediaError> {
    let fail = |what: &str| MediaError::Build(format!("chime: {what}"));
    let mixer = pipeline.by_name(MIXER).ok_or_else(|| fail("the call has no speaker mixer"))?;
    let bin = gst::parse::bin_from_description(TONE, true).map_err(|e| fail(&e.to_string()))?;
    let src = bin.static_pad("src").ok_or_else(|| fail("no source pad"))?;
    let sink = mixer.request_pad_simple("sink_%u").ok_or_else(|| fail("the mixer gave no pad"))?;
    pipeline.add(&bin).map_err(|e| fail(&e.to_string()))?;
    if let Err(e) = src.link(&sink) {
        let _ = pipeline.remove(&bin);
        mixer.release_request_pad(&sink);
        return Err(fail(&e.to_string()));
    }
    // Once the tone's end reaches the mixer the bin goes away (not from the streaming thread: from GStreamer's
    // pool), and the mixer's pad with it.
    let (weak_pipeline, weak_mixer) = (pipeline.downgrade(), mixer.downgrade());
    src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        if !matches!(info.event().map(|e| e.type_()), Some(gst::EventType::Eos)) {
            return gst::PadProbeReturn::Ok;
        }
        let Some(bin) = pad.parent_element() else { return gst::PadProbeReturn::Remove };
        let (weak_pipeline, weak_mixer, pad) = (weak_pipeline.clone(), weak_mixer.clone(), pad.clone());
        bin.call_async(move |bin| {
            if let Some(peer) = pad.peer() {
                let _ = pad.unlink(&peer);
                if let Some(mixer) = weak_mixer.upgrade() {
                    mixer.release_request_pad(&peer);
                }
            }
            let _ = bin.set_state(gst::State::Null);
            if let Some(pipeline) = weak_pipeline.upgrade() {
                let _ = pipeline.remove(bin);
            }
        });
        // The mixer never sees the end of one of its inputs: the pad is released instead.
        gst::PadProbeReturn::Drop
    });
    bin.sync_state_with_parent().map_err(|e| fail(&e.to_string()))?;
    Ok(())
}
