//! Media negotiation rules that need no media stack: which video codec to offer given what the doctor's browser can
//! receive, and whether the browser's SDP answer can carry the call. A failed check ends the call with a clear
//! reason instead of a silent hang (a rejected m-line or missing BUNDLE group otherwise stalls ICE with no error).

use super::names::wire_enum;
use super::protocol::CodecCapability;

wire_enum!(
    /// The video codecs the kiosk sends; the words are the encoding names in SDP and RTP caps.
    VideoCodec {
        /// H.264 constrained baseline, packetization-mode 1 (what Safari needs).
        H264 = "H264",
        Vp8 = "VP8",
    }
);

impl VideoCodec {
    /// The encoding name in SDP and RTP caps.
    pub fn encoding_name(self) -> &'static str {
        self.as_str()
    }
}

fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim())
}

/// Whether the browser can receive H.264 that a baseline encoder produces: packetization-mode 1 and a baseline
/// family profile (`42…`; constrained baseline is `42e0…` or `42c0…`, which browsers treat alike).
fn receives_baseline_h264(c: &CodecCapability) -> bool {
    if !c.mime_type.eq_ignore_ascii_case("video/H264") {
        return false;
    }
    let fmtp = c.sdp_fmtp_line.as_deref().unwrap_or("");
    let mode1 = fmtp_value(fmtp, "packetization-mode") == Some("1");
    let baseline =
        fmtp_value(fmtp, "profile-level-id").is_some_and(|p| p.len() == 6 && p[..2].eq_ignore_ascii_case("42"));
    mode1 && baseline
}

/// The best codec both sides support: H.264 first (hardware encoders, Safari), VP8 otherwise. `kiosk` lists what
/// the kiosk's working encoder profiles produce. An empty browser list (an old page) is taken as "H.264 and VP8",
/// which every current browser receives.
pub fn choose_video_codec(browser: &[CodecCapability], kiosk: &[VideoCodec]) -> Result<VideoCodec, String> {
    let browser_h264 = browser.is_empty() || browser.iter().any(receives_baseline_h264);
    let browser_vp8 = browser.is_empty() || browser.iter().any(|c| c.mime_type.eq_ignore_ascii_case("video/VP8"));
    if kiosk.contains(&VideoCodec::H264) && browser_h264 {
        Ok(VideoCodec::H264)
    } else if kiosk.contains(&VideoCodec::Vp8) && browser_vp8 {
        Ok(VideoCodec::Vp8)
    } else {
        let offered: Vec<&str> = browser.iter().map(|c| c.mime_type.as_str()).collect();
        let ours: Vec<&str> = kiosk.iter().map(|c| c.encoding_name()).collect();
        Err(format!(
            "no video codec in common: the browser receives {} and the kiosk sends {}",
            if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") },
            if ours.is_empty() { "nothing".to_string() } else { ours.join(", ") }
        ))
    }
}

/// Checks the browser's answer to a kiosk offer of Opus audio and `codec` video.
pub fn check_answer(sdp: &str, codec: VideoCodec) -> Result<(), String> {
    struct Section {
        kind: String,
        port: String,
        direction: Option<String>,
        encodings: Vec<String>,
    }
    let mut bundle = false;
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            sections.push(Section {
                kind: parts.next().unwrap_or("").to_string(),
                port: parts.next().unwrap_or("").to_string(),
                direction: None,
                encodings: Vec::new(),
            });
        } else if let Some(a) = line.strip_prefix("a=") {
            match sections.last_mut() {
                None => bundle |= a.starts_with("group:BUNDLE ") && a.split_whitespace().count() > 1,
                Some(s) => {
                    if matches!(a, "sendrecv" | "sendonly" | "recvonly" | "inactive") {
                        s.direction = Some(a.to_string());
                    } else if let Some(map) = a.strip_prefix("rtpmap:")
                        && let Some(name) = map.split_whitespace().nth(1).and_then(|e| e.split('/').next())
                    {
                        s.encodings.push(name.to_ascii_uppercase());
                    }
                }
            }
        }
    }
    if !sdp.trim_start().starts_with("v=0") {
        return Err("the answer is not an SDP description".into());
    }
    let media: Vec<&Section> = sections.iter().filter(|s| s.kind == "audio" || s.kind == "video").collect();
    for kind in ["audio", "video"] {
        let Some(s) = media.iter().find(|s| s.kind == kind) else {
            return Err(format!("the answer has no {kind} section"));
        };
        if s.port == "0" {
            return Err(format!("the doctor's browser rejected the {kind} stream (m={kind} 0)"));
        }
        // The kiosk must be able to send: the browser receives (sendrecv or recvonly when it has no camera/mic).
        match s.direction.as_deref().unwrap_or("sendrecv") {
            "sendrecv" | "recvonly" => {}
            other => {
                return Err(format!(
                    "the doctor's browser answered {kind} as {other}: it would not receive the patient"
                ));
            }
        }
        let wanted = if kind == "audio" { "OPUS" } else { codec.encoding_name() };
        if !s.encodings.iter().any(|e| e == wanted) {
            return Err(format!(
                "the doctor's browser did not accept {wanted} for {kind} (answered {})",
                s.encodings.join(", ")
            ));
        }
    }
    if !bundle {
        return Err("the answer has no BUNDLE group; the kiosk needs audio and video on one transport".into());
    }
    Ok(())
}

/// What the browser's answer agreed to beyond the basics, which the media engine needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The SSRCs the browser sends its camera with (media and retransmission), from its first video section's
    /// `a=ssrc` (a second video section is for sharing a picture or screen).
    pub video_ssrcs: Vec<u32>,
    /// The browser sends transport-wide congestion feedback (`a=rtcp-fb:<pt> transport-cc`): Google congestion
    /// control can estimate; without it the kiosk controls its rate from receiver reports.
    pub transport_cc: bool,
    /// Retransmission (`rtx`) was accepted for video: the browser's NACKs can be answered.
    pub rtx: bool,
    /// RED and ULPFEC were accepted for video.
    pub ulpfec: bool,
    /// The browser reads the transport-wide sequence number on the kiosk's audio too (its audio section keeps the
    /// extension, `a=extmap:<id> …transport-wide-cc…`): the audio's packets may then count in congestion control.
    /// Firefox drops it from audio, and audio packets stamped anyway would read as lost.
    pub audio_transport_wide: bool,
}

/// The transport-wide congestion control header extension.
pub const TRANSPORT_WIDE_CC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Reads [`AnswerFacts`] from an SDP answer (no validation: [`check_answer`] does that).
pub fn answer_facts(sdp: &str) -> AnswerFacts {
    let mut facts = AnswerFacts::default();
    let (mut in_video, mut in_audio, mut video_sections) = (false, false, 0);
    let (mut red, mut ulpfec) = (false, false);
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            // The first video section is the camera's; a later one carries what the doctor shares.
            video_sections += usize::from(m.starts_with("video "));
            in_video = m.starts_with("video ") && video_sections == 1;
            in_audio = m.starts_with("audio ");
            continue;
        }
        if in_audio
            && let Some(ext) = line.strip_prefix("a=extmap:")
            && ext.split_whitespace().nth(1) == Some(TRANSPORT_WIDE_CC_URI)
        {
            facts.audio_transport_wide = true;
        }
        let Some(a) = line.strip_prefix("a=").filter(|_| in_video) else { continue };
        if let Some(v) = a.strip_prefix("ssrc:")
            && let Some(ssrc) = v.split_whitespace().next().and_then(|n| n.parse::<u32>().ok())
            && !facts.video_ssrcs.contains(&ssrc)
        {
            facts.video_ssrcs.push(ssrc);
        } else if a.starts_with("rtcp-fb:") && a.ends_with(" transport-cc") {
            facts.transport_cc = true;
        } else if let Some(map) = a.strip_prefix("rtpmap:") {
            let name = map.split_whitespace().nth(1).and_then(|e| e.split('/').next()).unwrap_or("");
            match name.to_ascii_lowercase().as_str() {
                "rtx" => facts.rtx = true,
                "red" => red = true,
                "ulpfec" => ulpfec = true,
                _ => {}
            }
        }
    }
    facts.ulpfec = red && ulpfec;
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(mime: &str, fmtp: Option<&str>) -> CodecCapability {
        CodecCapability { mime_type: mime.into(), sdp_fmtp_line: fmtp.map(Into::into), clock_rate: Some(90000) }
    }

    #[test]
    fn the_camera_facts_come_from_the_first_video_section_only() {
        let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:97 rtx/90000\r\na=ssrc:11 cname:x\r\n\
                      a=ssrc:12 cname:x\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc:20 cname:x\r\n\
                      m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=sendonly\r\na=ssrc:31 cname:x\r\n";
        let f = answer_facts(answer);
        assert_eq!(f.video_ssrcs, vec![11, 12]);
        assert!(f.rtx);
    }

    #[test]
    fn h264_is_preferred_when_both_sides_have_it() {
        let chrome = vec![
            cap("video/VP8", None),
            cap("video/H264", Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")),
            cap("video/rtx", Some("apt=96")),
        ];
        assert_eq!(choose_video_codec(&chrome, &[VideoCodec::H264, VideoCodec::Vp8]), Ok(VideoCodec::H264));
        assert_eq!(choose_video_codec(&chrome, &[VideoCodec::Vp8]), Ok(VideoCodec::Vp8));
    }

    #[test]
    fn vp8_when_the_browser_has_no_usable_h264() {
        let firefox_no_h264 =
            vec![cap("video/VP8", Some("max-fs=12288;max-fr=60")), cap("video/VP9", None), cap("video/AV1", None)];
        assert_eq!(choose_video_codec(&firefox_no_h264, &[VideoCodec::H264, VideoCodec::Vp8]), Ok(VideoCodec::Vp8));
        let only_mode0_and_high = vec![
            cap("video/H264", Some("packetization-mode=0;profile-level-id=42e01f")),
            cap("video/H264", Some("packetization-mode=1;profile-level-id=640032")),
            cap("video/VP8", None),
        ];
        assert_eq!(choose_video_codec(&only_mode0_and_high, &[VideoCodec::H264, VideoCodec::Vp8]), Ok(VideoCodec::Vp8));
    }

    #[test]
    fn no_common_codec_is_an_error_naming_both_sides() {
        let av1_only = vec![cap("video/AV1", None)];
        let err = choose_video_codec(&av1_only, &[VideoCodec::H264]).unwrap_err();
        assert_eq!(err, "no video codec in common: the browser receives video/AV1 and the kiosk sends H264");
        assert_eq!(choose_video_codec(&[], &[VideoCodec::Vp8]), Ok(VideoCodec::Vp8));
    }

    const GOOD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn a_good_answer_passes() {
        assert_eq!(check_answer(GOOD, VideoCodec::H264), Ok(()));
        assert_eq!(
            check_answer(&GOOD.replace("a=sendrecv\r\na=rtpmap:96", "a=recvonly\r\na=rtpmap:96"), VideoCodec::H264),
            Ok(())
        );
    }

    #[test]
    fn answers_that_cannot_carry_the_call_are_named() {
        let cases = [
            (GOOD.replace("m=video 9", "m=video 0"), VideoCodec::H264, "rejected the video stream"),
            (GOOD.replace("a=group:BUNDLE 0 1\r\n", ""), VideoCodec::H264, "no BUNDLE group"),
            (
                GOOD.replace("a=sendrecv\r\na=rtpmap:96", "a=sendonly\r\na=rtpmap:96"),
                VideoCodec::H264,
                "answered video as sendonly",
            ),
            (
                GOOD.replace("a=sendrecv\r\na=rtpmap:111", "a=inactive\r\na=rtpmap:111"),
                VideoCodec::H264,
                "answered audio as inactive",
            ),
            (GOOD.to_string(), VideoCodec::Vp8, "did not accept VP8"),
            ("hello".to_string(), VideoCodec::H264, "not an SDP"),
        ];
        for (sdp, codec, expected) in cases {
            let err = check_answer(&sdp, codec).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn answer_facts_name_the_browsers_video_ssrcs_and_what_it_accepted() {
        let chrome = "v=0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99\r\na=mid:0\r\n\
            a=rtpmap:96 H264/90000\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\n\
            a=fmtp:97 apt=96\r\na=rtpmap:98 red/90000\r\na=rtpmap:99 ulpfec/90000\r\na=ssrc-group:FID 111 222\r\n\
            a=ssrc:111 cname:x\r\na=ssrc:111 msid:a b\r\na=ssrc:222 cname:x\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-fb:111 transport-cc\r\n\
            a=extmap:1 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
            a=ssrc:333 cname:x\r\n";
        assert_eq!(
            answer_facts(chrome),
            AnswerFacts {
                video_ssrcs: vec![111, 222],
                transport_cc: true,
                rtx: true,
                ulpfec: true,
                audio_transport_wide: true
            }
        );
        // Firefox keeps the extension on video only.
        let firefox = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 120\r\n\
            a=extmap:1 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
            a=rtcp-fb:120 transport-cc\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109\r\n\
            a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        let f = answer_facts(firefox);
        assert!(f.transport_cc && !f.audio_transport_wide, "{f:?}");
        let plain = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n";
        assert_eq!(answer_facts(plain), AnswerFacts::default());
    }
}
