//! Encoder profiles: readable TOML files in `pipelines/` that a technician can edit, one per hardware class. The
//! repository's files are compiled in; `media.profiles_dir` points at a directory that replaces them.

use serde::Deserialize;
use std::path::Path;

use crate::core::media_rules::VideoCodec;

/// How congestion control writes a new target rate into the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BitrateUnit {
    #[serde(rename = "kbps")]
    Kbps,
    #[serde(rename = "bps")]
    Bps,
    /// `video_bitrate` (bps) inside a V4L2 `extra-controls` structure.
    #[serde(rename = "v4l2-controls")]
    V4l2Controls,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderProfile {
    pub name: String,
    pub description: String,
    pub codec: VideoCodec,
    pub priority: i32,
    pub convert: String,
    pub encoder: String,
    pub encoder_caps: String,
    pub bitrate_property: String,
    pub bitrate_unit: BitrateUnit,
    pub payloader: String,
    pub rtp_caps: String,
}

#[derive(Debug, thiserror::Error)]
#[error("encoder profile {origin}: {message}")]
pub struct ProfileError {
    pub origin: String,
    pub message: String,
}

const BUILT_IN: &[(&str, &str)] = &[
    ("10-rpi4-v4l2.toml", include_str!("../../pipelines/10-rpi4-v4l2.toml")),
    ("20-vaapi-va.toml", include_str!("../../pipelines/20-vaapi-va.toml")),
    ("21-vaapi-legacy.toml", include_str!("../../pipelines/21-vaapi-legacy.toml")),
    ("30-nvidia-nvenc.toml", include_str!("../../pipelines/30-nvidia-nvenc.toml")),
    ("40-software-x264.toml", include_str!("../../pipelines/40-software-x264.toml")),
    ("41-software-openh264.toml", include_str!("../../pipelines/41-software-openh264.toml")),
    ("50-software-vp8.toml", include_str!("../../pipelines/50-software-vp8.toml")),
];

impl EncoderProfile {
    pub fn parse(text: &str, origin: &str) -> Result<EncoderProfile, ProfileError> {
        let p: EncoderProfile =
            toml::from_str(text).map_err(|e| ProfileError { origin: origin.into(), message: e.to_string() })?;
        for (key, value) in [("encoder", &p.encoder), ("payloader", &p.payloader), ("convert", &p.convert)] {
            if value.contains('!') || value.trim().is_empty() {
                return Err(ProfileError {
                    origin: origin.into(),
                    message: format!("`{key}` must be one element with its properties"),
                });
            }
        }
        Ok(p)
    }

    /// Element factory names the profile needs (the first word of each fragment).
    pub fn elements(&self) -> Vec<String> {
        [&self.convert, &self.encoder, &self.payloader]
            .iter()
            .filter_map(|f| f.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// The built-in profiles, or those in `dir` when given, highest priority first.
    pub fn load_all(dir: Option<&Path>) -> Result<Vec<EncoderProfile>, ProfileError> {
        let mut out = Vec::new();
        match dir {
            None => {
                for (name, text) in BUILT_IN {
                    out.push(Self::parse(text, name)?);
                }
            }
            Some(dir) => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| ProfileError { origin: dir.display().to_string(), message: e.to_string() })?;
                let mut paths: Vec<_> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                paths.sort();
                for path in paths {
                    let origin = path.display().to_string();
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| ProfileError { origin: origin.clone(), message: e.to_string() })?;
                    out.push(Self::parse(&text, &origin)?);
                }
            }
        }
        out.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse_and_cover_every_hardware_class() {
        let all = EncoderProfile::load_all(None).unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rpi4-v4l2h264enc",
                "intel-amd-vah264enc",
                "intel-amd-vaapih264enc",
                "nvidia-nvh264enc",
                "software-vp8",
                "software-x264",
                "software-openh264"
            ]
        );
        assert_eq!(all[0].elements(), ["v4l2convert", "v4l2h264enc", "rtph264pay"]);
    }

    #[test]
    fn the_repository_directory_matches_the_built_in_copies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        assert_eq!(EncoderProfile::load_all(Some(&dir)).unwrap(), EncoderProfile::load_all(None).unwrap());
    }

    #[test]
    fn broken_profiles_are_named() {
        let e = EncoderProfile::parse("name = \"x\"\n", "bad.toml").unwrap_err();
        assert!(e.to_string().starts_with("encoder profile bad.toml:"), "{e}");
        let text =
            include_str!("../../pipelines/40-software-x264.toml").replace("x264enc tune", "x264enc ! fakesink tune");
        assert!(EncoderProfile::parse(&text, "t").unwrap_err().message.contains("one element"));
    }
}
