//! Any frame the doctor's page could send: the socket's rules must answer, never panic, and a frame they deliver
//! must survive a round trip through the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medimitra::core::protocol::DoctorMessage;
use medimitra::core::signaling::{Frame, SocketRules, Verdict};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let mut rules = SocketRules::new();
        let _ = rules.on_frame(Frame::Binary);
        return;
    };
    let _ = DoctorMessage::parse(text);
    let mut rules = SocketRules::new();
    // Greeted first, so the frame reaches the message rules too.
    let _ = rules.on_frame(Frame::Text(r#"{"type":"hello","version":1}"#));
    if let Verdict::Deliver(m) = rules.on_frame(Frame::Text(text)) {
        let _ = m;
    }
});
