//! The kiosk's serial medical devices: one reader thread per port opens it with its protocol's line settings, writes
//! the device's start and keep-alive bytes, feeds what it reads to the core's decoders ([`crate::core::vitals`]) and
//! reports typed [`Update`]s. An unplugged device is reported once and the port is reopened until it comes back; the
//! protocol of an adapter nobody named is found by trying each in turn ([`detect`]). Nothing here decodes a byte.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod hub;

pub use hub::{DeviceStatus, Hub, PortState, VitalsFeed};

use crate::core::vitals::{ByteStats, Decode, Event, LineSettings, Parity, Protocol, Reading, StopBits};

/// How long a read waits before the thread looks at its stop flag and keep-alive clock.
const READ_WAIT: Duration = Duration::from_millis(100);
/// How often a port that is gone is tried again.
const REOPEN_EVERY: Duration = Duration::from_millis(500);
/// How long [`detect`] listens with each protocol (the slowest stream, the A&D scale, sends a line a second or more
/// often in its streaming mode; the oximeters 60 frames a second).
const DETECT_LISTEN: Duration = Duration::from_millis(1500);

/// What a reader saw at its port.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The port is open (again) and the device's start bytes were written.
    Connected,
    /// A decoded reading, stamped when its bytes were read.
    Reading { reading: Reading, at: Instant },
    /// The device said it ends the session (CMS50D+ firmware 4.6), with its reason code.
    DeviceEnded { reason: u8 },
    /// The port went away (unplugged, or the adapter reset). Reported once; the reader keeps trying to reopen it.
    Unplugged,
    /// What the decoder has counted since the port was opened, sent about once a second while bytes arrive: a high
    /// garbage ratio means a wrong baud rate or the wrong device.
    Bytes(ByteStats),
}

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: serialport::Error },
    #[error("{path}: no known device protocol answered within {secs:.1} s per protocol")]
    NotDetected { path: String, secs: f64 },
}

/// A thread that runs until its owner lets go: dropping it raises the thread's stop flag and joins it, so whatever
/// the thread holds (a port, the readers it started) is closed when the drop returns. The thread looks at the flag at
/// least every [`READ_WAIT`].
struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(name: &str, run: impl FnOnce(&AtomicBool) + Send + 'static) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = match std::thread::Builder::new().name(name.into()).spawn(move || run(&flag)) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("vitals: no {name} thread: {e}");
                None
            }
        };
        Worker { stop, thread }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running reader: stops (and closes its port) when dropped or [`Reader::stop`]ped.
pub struct Reader {
    /// Held for its drop, which stops the thread.
    _thread: Worker,
}

impl Reader {
    /// Starts reading `path` with `protocol`; each update goes to `sink` until the reader is stopped or `sink`
    /// returns false (nobody listens any more).
    pub fn spawn(path: PathBuf, protocol: Protocol, sink: impl FnMut(Update) -> bool + Send + 'static) -> Reader {
        Reader { _thread: Worker::spawn("vitals-reader", move |stop| read_port(&path, protocol, sink, stop)) }
    }

    /// Ends the thread and closes the port (what dropping the reader does, said out loud).
    pub fn stop(self) {}
}

/// The ports to watch: those named in the configuration (with their protocol) and the `vitals-*` links udev makes in
/// `scan_dir` (protocol unknown until [`detect`]ed). Sorted and without repeats.
pub fn ports(scan_dir: &Path, named: &[(PathBuf, Protocol)]) -> Vec<(PathBuf, Option<Protocol>)> {
    let mut found: Vec<(PathBuf, Option<Protocol>)> =
        named.iter().map(|(p, proto)| (p.clone(), Some(*proto))).collect();
    if let Ok(dir) = std::fs::read_dir(scan_dir) {
        let mut linked: Vec<PathBuf> = dir
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("vitals-")))
            .map(|e| e.path())
            .filter(|p| !named.iter().any(|(n, _)| n == p))
            .collect();
        linked.sort();
        found.extend(linked.into_iter().map(|p| (p, None)));
    }
    found
}

/// Finds which protocol the device at `path` speaks: opens it with each protocol's settings in turn, sends its start
/// bytes and listens; the first whose decoder yields a reading wins. The decoders lock on only after several whole
/// frames in a row, so bytes read at a wrong baud rate do not pass.
pub fn detect(path: &Path) -> Result<Protocol, DeviceError> {
    for protocol in Protocol::ALL {
        let mut port = open(path, protocol)?;
        let mut decoder = protocol.decoder();
        let deadline = Instant::now() + DETECT_LISTEN;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            match port.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let events = decoder.push(buf.get(..n).unwrap_or_default());
                    if events.iter().any(|e| matches!(e, Event::Reading(_))) {
                        stop_device(&mut port, protocol);
                        return Ok(protocol);
                    }
                }
                Ok(_) => break,
                Err(e) if is_wait(&e) => {}
                Err(_) => break,
            }
        }
        stop_device(&mut port, protocol);
    }
    Err(DeviceError::NotDetected { path: path.display().to_string(), secs: DETECT_LISTEN.as_secs_f64() })
}

/// Opens `path` with the protocol's line settings (no flow control: 0x11 and 0x13 are data) and writes its start
/// bytes.
fn open(path: &Path, protocol: Protocol) -> Result<serialport::TTYPort, DeviceError> {
    let LineSettings { baud, data_bits, parity, stop_bits } = protocol.line_settings();
    let err = |source| DeviceError::Open { path: path.display().to_string(), source };
    let mut port = serialport::new(path.to_string_lossy(), baud)
        .data_bits(if data_bits == 7 { serialport::DataBits::Seven } else { serialport::DataBits::Eight })
        .parity(match parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        })
        .stop_bits(match stop_bits {
            StopBits::One => serialport::StopBits::One,
            StopBits::Two => serialport::StopBits::Two,
        })
        .flow_control(serialport::FlowControl::None)
        .timeout(READ_WAIT)
        .open_native()
        .map_err(err)?;
    if let Some(start) = protocol.start_command() {
        port.write_all(start).map_err(|e| err(e.into()))?;
    }
    Ok(port)
}

fn stop_device(port: &mut serialport::TTYPort, protocol: Protocol) {
    if let Some(bytes) = protocol.stop_command() {
        let _ = port.write_all(bytes);
    }
}

/// A read that only timed out or was interrupted: the port is still there.
fn is_wait(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

/// The reader thread: open, read until the port fails, report, reopen; until stopped.
fn read_port(path: &Path, protocol: Protocol, mut sink: impl FnMut(Update) -> bool, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mut port = match open(path, protocol) {
            Ok(port) => port,
            Err(e) => {
                tracing::debug!("vitals: {e}");
                std::thread::sleep(REOPEN_EVERY);
                continue;
            }
        };
        tracing::info!(port = %path.display(), %protocol, "vitals device connected");
        if !sink(Update::Connected) {
            return;
        }
        let ended = stream(&mut port, protocol, &mut sink, stop);
        stop_device(&mut port, protocol);
        drop(port);
        match ended {
            StreamEnd::Stopped => return,
            StreamEnd::PortGone => {
                tracing::info!(port = %path.display(), "vitals device unplugged");
                if !sink(Update::Unplugged) {
                    return;
                }
            }
        }
    }
}

enum StreamEnd {
    Stopped,
    PortGone,
}

/// Reads one open port until it fails or the reader is stopped.
fn stream(
    port: &mut serialport::TTYPort,
    protocol: Protocol,
    sink: &mut impl FnMut(Update) -> bool,
    stop: &AtomicBool,
) -> StreamEnd {
    let mut decoder = protocol.decoder();
    let keep_alive = protocol.keep_alive();
    let mut last_keep_alive = Instant::now();
    let mut last_stats = Instant::now();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        match port.read(&mut buf) {
            Ok(0) => return StreamEnd::PortGone,
            Ok(n) => {
                let at = Instant::now();
                for event in decoder.push(buf.get(..n).unwrap_or_default()) {
                    let update = match event {
                        Event::Reading(reading) => Update::Reading { reading, at },
                        Event::Disconnected { reason } => Update::DeviceEnded { reason },
                        Event::Ignored => continue,
                    };
                    if !sink(update) {
                        return StreamEnd::Stopped;
                    }
                }
                if last_stats.elapsed() >= Duration::from_secs(1) {
                    last_stats = Instant::now();
                    if !sink(Update::Bytes(decoder.stats())) {
                        return StreamEnd::Stopped;
                    }
                }
            }
            Err(e) if is_wait(&e) => {}
            Err(_) => return StreamEnd::PortGone,
        }
        if let Some(k) = keep_alive
            && last_keep_alive.elapsed() >= k.every
        {
            last_keep_alive = Instant::now();
            if port.write_all(k.bytes).is_err() {
                return StreamEnd::PortGone;
            }
        }
    }
    StreamEnd::Stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lists_named_ports_first_then_the_udev_links_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["vitals-ftdi-0", "vitals-cp210x-1", "ttyS0", "other"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let named = vec![(dir.path().join("vitals-ftdi-0"), Protocol::AndStandard)];
        let found = ports(dir.path(), &named);
        assert_eq!(
            found,
            vec![
                (dir.path().join("vitals-ftdi-0"), Some(Protocol::AndStandard)),
                (dir.path().join("vitals-cp210x-1"), None),
            ]
        );
    }

    #[test]
    fn ports_without_the_udev_directory_are_the_named_ones() {
        let named = vec![(PathBuf::from("/dev/ttyUSB7"), Protocol::Cms50dLegacy)];
        assert_eq!(ports(Path::new("/nonexistent/medimitra"), &named), vec![(named[0].0.clone(), named[0].1.into())]);
    }
}
