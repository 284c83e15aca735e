//! Any SDP answer a browser (or an attacker with a session) could send: the answer checks must decide, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medimitra::core::media_rules::{answer_facts, check_answer};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else { return };
    for codec in medimitra::core::media_rules::VideoCodec::ALL {
        let _ = check_answer(sdp, *codec);
    }
    let _ = answer_facts(sdp);
});
