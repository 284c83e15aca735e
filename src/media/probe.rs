//! Which encoder profiles work on this machine: every element present, and a short test encode that reaches the
//! end of its stream. The best working profile per codec is chosen; a forced profile wins when it works.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::fmt::Write;
use std::time::Duration;

use super::EncoderProfile;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Used for its codec.
    Chosen,
    /// Works, but another profile of the same codec was chosen.
    Working,
    /// Elements not installed (or no such hardware).
    MissingElements(Vec<String>),
    /// Elements present, but the test encode failed.
    TestFailed(String),
}

#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub entries: Vec<(EncoderProfile, ProbeOutcome)>,
    /// The profile the configuration asked for, when it did not work.
    pub forced_failed: Option<String>,
}

impl ProbeReport {
    pub fn chosen(&self) -> impl Iterator<Item = &EncoderProfile> {
        self.entries.iter().filter(|(_, o)| *o == ProbeOutcome::Chosen).map(|(p, _)| p)
    }

    /// One line per profile, for logs and errors.
    pub fn summary(&self) -> String {
        self.entries.iter().map(|(p, o)| format!("{}: {}", p.name, describe(o))).collect::<Vec<_>>().join("; ")
    }

    /// The table `medimitra media probe` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:<24} {:<5} {:>8}  result", "profile", "codec", "priority");
        for (p, o) in &self.entries {
            let _ = writeln!(out, "{:<24} {:<5} {:>8}  {}", p.name, p.codec.encoding_name(), p.priority, describe(o));
        }
        if let Some(f) = &self.forced_failed {
            let _ =
                writeln!(out, "media.profile = \"{f}\" does not work here; the best working profile is used instead");
        }
        for p in self.chosen() {
            let _ = writeln!(out, "{} video: {} ({})", p.codec.encoding_name(), p.name, p.description);
        }
        if self.chosen().next().is_none() {
            let _ = writeln!(out, "no working encoder profile: calls cannot send video");
        }
        out
    }
}

fn describe(o: &ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Chosen => "works; chosen".into(),
        ProbeOutcome::Working => "works; not needed (a preferred profile of the same codec works)".into(),
        ProbeOutcome::MissingElements(e) => format!("missing element(s) {}", e.join(", ")),
        ProbeOutcome::TestFailed(why) => format!("test encode failed: {why}"),
    }
}

/// A 10-frame encode at 320x240 through the profile's converter, encoder and caps.
fn test_encode(p: &EncoderProfile) -> Result<(), String> {
    let desc = format!(
        "videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240,framerate=30/1 ! {} ! {} ! {} ! fakesink",
        p.convert, p.encoder, p.encoder_caps
    );
    let pipeline = gst::parse::launch(&desc).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let result = match pipeline.set_state(gst::State::Playing) {
        Err(_) => Err("the pipeline did not start".to_string()),
        Ok(_) => match bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(e) => Err(e.error().to_string()),
                _ => Err("unexpected message".into()),
            },
            None => Err(format!("no result within {:?}", Duration::from_secs(10))),
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Probes `profiles` (highest priority first). `forced` is `auto` or a profile name.
pub fn probe(profiles: &[EncoderProfile], forced: &str) -> ProbeReport {
    let mut entries: Vec<(EncoderProfile, ProbeOutcome)> = profiles
        .iter()
        .map(|p| {
            let missing: Vec<String> =
                p.elements().into_iter().filter(|e| gst::ElementFactory::find(e).is_none()).collect();
            let outcome = if !missing.is_empty() {
                ProbeOutcome::MissingElements(missing)
            } else {
                match test_encode(p) {
                    Ok(()) => ProbeOutcome::Working,
                    Err(why) => ProbeOutcome::TestFailed(why),
                }
            };
            (p.clone(), outcome)
        })
        .collect();
    let mut forced_failed = None;
    if forced != "auto" {
        match entries.iter_mut().find(|(p, _)| p.name == forced) {
            Some((_, o)) if *o == ProbeOutcome::Working => *o = ProbeOutcome::Chosen,
            _ => forced_failed = Some(forced.to_string()),
        }
    }
    // Highest priority working profile for each codec not yet covered.
    for i in 0..entries.len() {
        let codec = entries[i].0.codec;
        let covered = entries.iter().any(|(p, o)| p.codec == codec && *o == ProbeOutcome::Chosen);
        if entries[i].1 == ProbeOutcome::Working && !covered {
            entries[i].1 = ProbeOutcome::Chosen;
        }
    }
    ProbeReport { entries, forced_failed }
}
