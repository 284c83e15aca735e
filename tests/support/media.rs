//! What the media-engine tests share: small test-source settings and waiting for a session's offer.

use medimitra::config::Media;
use medimitra::media::MediaEvent;
use std::time::{Duration, Instant};

pub fn test_media() -> Media {
    Media {
        video_source: "test".into(),
        audio_source: "test".into(),
        audio_sink: "none".into(),
        width: 320,
        height: 240,
        ..Media::default()
    }
}

pub fn wait_offer(rx: &mut tokio::sync::mpsc::UnboundedReceiver<MediaEvent>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(MediaEvent::Offer { sdp, .. }) => return sdp,
            Ok(MediaEvent::Failed { reason, .. }) => panic!("session failed: {reason}"),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("no offer within 10 s");
}
