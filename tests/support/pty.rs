//! Emulated serial medical devices for tests: a pseudo-terminal per device, frames built from the published
//! protocol layouts (independently of the kiosk's decoders), streamed at the device's rate.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One end of an emulated device: the pty's master (what the device writes) and its slave's path (the port).
pub struct Pty {
    pub master: std::fs::File,
    /// Kept open so the slave's raw mode holds until the kiosk opens it; closed with the master on unplug.
    pub slave: std::fs::File,
    pub path: PathBuf,
}

pub fn pty() -> Pty {
    let (mut master, mut slave) = (0, 0);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: openpty writes two descriptors and a NUL-terminated name of at most a few dozen bytes.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, name.as_mut_ptr(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    // openpty's descriptors are inherited by default: the kiosk started next would hold the master open, and
    // closing it here would then not unplug anything.
    for fd in [master, slave] {
        // SAFETY: fcntl on a descriptor this function owns.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    // SAFETY: `slave` is an open terminal; termios is plain data filled by tcgetattr.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave, &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(slave, libc::TCSANOW, &t), 0);
    }
    // SAFETY: the name is NUL-terminated within the buffer.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    // SAFETY: both descriptors are open and owned by nothing else.
    let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) };
    Pty { master, slave, path: path.into() }
}

impl Pty {
    /// The kiosk configuration that reads this device as a legacy CMS50D+ and no other port.
    pub fn legacy_oximeter_config(&self) -> String {
        format!(
            "[devices]\nscan_dir = \"/nonexistent\"\n[[devices.ports]]\npath = {:?}\nprotocol = \"cms50d-legacy\"\n",
            self.path.to_str().unwrap()
        )
    }
}

/// A CMS50D+ legacy frame (before firmware 4.6): sync bit only in byte 1; pulse bit 7 in byte 3 bit 6; probe error
/// (finger out) byte 3 bit 4; searching byte 3 bit 5; SpO2 in byte 5 (atbrask/CMS50Dplus).
pub fn legacy_frame(spo2: u8, pulse: u16, pleth: u8, finger_out: bool) -> [u8; 5] {
    let pulse_hi = if pulse & 0x80 != 0 { 0x40 } else { 0 };
    let probe = if finger_out { 0x10 } else { 0 };
    [0x80 | 0x05, pleth & 0x7F, pulse_hi | probe | 0x03, (pulse & 0x7F) as u8, spo2 & 0x7F]
}

/// A CMS50D+ firmware 4.6 real-time packet (Contec V7.0): type 0x01, a byte holding bit 7 of each data byte, then
/// seven data bytes sent with bit 7 set: signal, pleth, bar graph, pulse, SpO2, perfusion index low and high.
pub fn v46_packet(spo2: u8, pulse: u8, pleth: u8) -> [u8; 9] {
    let data = [0x05, pleth & 0x7F, 0x03, pulse, spo2, 0x10, 0x00];
    let mut high = 0x80;
    let mut out = [0u8; 9];
    out[0] = 0x01;
    for (i, d) in data.iter().enumerate() {
        high |= (d >> 7) << i;
        out[i + 2] = d | 0x80;
    }
    out[1] = high;
    out
}

/// A frame and when its first byte was written.
pub type Written = (Vec<u8>, std::time::SystemTime);

/// Writes `frame` 60 times a second to the pty's master, each split in two writes (the decoder must join them),
/// until stopped; the frame can be swapped while it runs.
pub struct Streamer {
    frame: Arc<Mutex<Vec<u8>>>,
    /// Each frame the streamer began to write, with the wall-clock time its first byte was written (for latency
    /// measured against the browser's `Date.now()`).
    pub written: Arc<Mutex<Vec<Written>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<std::fs::File>>,
}

impl Streamer {
    pub fn start(mut master: std::fs::File, frame: &[u8]) -> Streamer {
        let frame = Arc::new(Mutex::new(frame.to_vec()));
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(Mutex::new(Vec::new()));
        let (f, s, w) = (frame.clone(), stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            let mut previous = Vec::new();
            // Bounded: ten minutes at most, whatever the test or bench does.
            for _ in 0..36_000 {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let bytes = f.lock().unwrap().clone();
                let (a, b) = bytes.split_at(2);
                let at = std::time::SystemTime::now();
                let _ = master.write_all(a);
                if bytes != previous {
                    w.lock().unwrap().push((bytes.clone(), at));
                    previous = bytes.clone();
                }
                std::thread::sleep(Duration::from_millis(2));
                let _ = master.write_all(b);
                std::thread::sleep(Duration::from_millis(14));
            }
            master
        });
        Streamer { frame, written, stop, thread: Some(thread) }
    }

    pub fn send(&self, frame: &[u8]) {
        *self.frame.lock().unwrap() = frame.to_vec();
    }

    /// Stops writing and hands the master back (dropping it is the unplug).
    pub fn stop(mut self) -> std::fs::File {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}
