//! Sessions leave nothing behind: a process of its own, since `/proc/self` counts the threads and descriptors of every
//! test in the process, and a test running beside this one (the 120-session SSRC test in `tests/media.rs`) made the
//! count grow from 11 to 30 in a CI run without any leak.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/media.rs"]
mod media_support;

use media_support::{test_media, wait_offer};
use medimitra::core::media_rules::VideoCodec;
use medimitra::media::MediaEngine;
use std::time::Duration;

fn counts() -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
    (fds, threads)
}

#[test]
fn fifty_sessions_in_one_process_leave_no_threads_or_descriptors_behind() {
    medimitra::media::init().unwrap();
    let engine = MediaEngine::start(&test_media(), &[]).unwrap();
    let mut warm = (0, 0);
    for i in 0..50 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let session = engine.start_session(&format!("t-s{i}"), VideoCodec::H264, tx).unwrap();
        wait_offer(&mut rx);
        session.stop();
        if i == 4 {
            std::thread::sleep(Duration::from_millis(300));
            warm = counts();
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = counts();
    println!("fds/threads after 5 sessions {warm:?}, after 50 {after:?}");
    assert!(after.0 <= warm.0 + 2, "file descriptors grew from {} to {}", warm.0, after.0);
    assert!(after.1 <= warm.1 + 2, "threads grew from {} to {}", warm.1, after.1);
}
