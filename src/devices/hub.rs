//! The kiosk's running devices: a reader for every configured port and every `vitals-*` adapter udev links (found
//! by a rescan every two seconds, its protocol detected first), their updates turned into messages for the doctor
//! ([`crate::core::vitals::wire::Publisher`]) and published to whoever listens (the call's data channels). Stable
//! readings (a steady oximetry run, a finished weighing) go to a keeper, which `serve` points at the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{Reader, Update, detect, ports};
use crate::config::Devices;
use crate::core::vitals::observation::{Observation, ObservationKind, WeighingRule, from_oximetry};
use crate::core::vitals::wire::{Publisher, VitalsMessage};
use crate::core::vitals::{Protocol, Reading, StabilityDetector, StabilityRule};

/// How often the udev directory is looked at for adapters plugged in or removed.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The vitals as the call's data channels see them: messages as they are made (lagging listeners lose the oldest;
/// the waveform is the bulk), and every device's latest numbers or state for a channel that opens late. Also each
/// port as the technician sees it.
#[derive(Clone)]
pub struct VitalsFeed {
    pub sender: broadcast::Sender<Arc<VitalsMessage>>,
    pub latest: Arc<Mutex<Vec<VitalsMessage>>>,
    /// Every port the hub watches, sorted by path (refreshed at most four times a second while readings flow).
    pub devices: Arc<Mutex<Vec<DeviceStatus>>>,
}

impl Default for VitalsFeed {
    fn default() -> Self {
        // ~4 s of a 60 Hz oximeter's messages.
        Self { sender: broadcast::channel(256).0, latest: Arc::default(), devices: Arc::default() }
    }
}

/// Where a watched port stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// Trying each protocol on an adapter nobody named.
    Detecting,
    /// No known protocol answered: not read until the adapter is replugged.
    NoProtocol,
    /// Known protocol; the port is not open (yet).
    Waiting,
    /// Open and read.
    Connected,
    /// The port went away after it had been open.
    Unplugged,
}

/// One port as the technician sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    pub port: PathBuf,
    pub protocol: Option<Protocol>,
    pub state: PortState,
    /// The latest reading and when it arrived.
    pub last: Option<(Reading, Instant)>,
    /// Bytes that made no frame, of all read since the port opened (a wrong device or baud rate reads near 1).
    pub garbage_ratio: f64,
}

impl std::fmt::Debug for VitalsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VitalsFeed").field("listeners", &self.sender.receiver_count()).finish()
    }
}

/// The running hub: stops its readers when dropped.
pub struct Hub {
    /// Raised to end the hub's thread, which then drops (stops) every reader.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hub {
    /// Starts watching the configured ports and the udev directory; messages go to `feed`, stable readings to
    /// `keep` (called on the hub's thread).
    pub fn start(config: &Devices, feed: VitalsFeed, keep: impl FnMut(Vec<Observation>) + Send + 'static) -> Hub {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, config) = (stop.clone(), config.clone());
        let thread =
            std::thread::Builder::new().name("vitals-hub".into()).spawn(move || run(&config, &feed, keep, &flag)).ok();
        Hub { stop, thread }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the hub thread hears: a reader's update, or a detection's result.
enum Heard {
    Update(PathBuf, Update),
    Detected(PathBuf, Option<Protocol>),
}

fn run(config: &Devices, feed: &VitalsFeed, mut keep: impl FnMut(Vec<Observation>), stop: &AtomicBool) {
    let named: Vec<(PathBuf, Protocol)> = config.ports.iter().map(|p| (p.path.clone(), p.protocol)).collect();
    let (tx, rx) = mpsc::channel::<Heard>();
    let started = Instant::now();
    let mut publisher = Publisher::default();
    // Per port: when its readings are steady enough to keep.
    let mut steady: HashMap<PathBuf, (StabilityDetector, WeighingRule)> = HashMap::new();
    // Per port: its protocol and reader once known; `None` while detecting or after a failed detection.
    let mut running: HashMap<PathBuf, Option<(Protocol, Reader)>> = HashMap::new();
    let mut next_scan = Instant::now();
    let mut publish_now = true;
    let mut statuses: std::collections::BTreeMap<PathBuf, DeviceStatus> = Default::default();
    let mut statuses_shown = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // The technician's view: at once after a change of state, else at most every 250 ms.
        let status_changed = std::mem::take(&mut publish_now) || statuses_shown.elapsed() >= Duration::from_millis(250);
        if status_changed {
            statuses_shown = Instant::now();
            if let Ok(mut d) = feed.devices.lock() {
                *d = statuses.values().cloned().collect();
            }
        }
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + RESCAN_EVERY;
            let present = ports(&config.scan_dir, &named);
            // Links that vanished: their reader stops, so a different device behind a new link is detected anew.
            running.retain(|path, _| present.iter().any(|(p, _)| p == path));
            statuses.retain(|path, _| running.contains_key(path) || present.iter().any(|(p, _)| p == path));
            for (path, protocol) in present {
                if running.contains_key(&path) {
                    continue;
                }
                let state = if protocol.is_some() { PortState::Waiting } else { PortState::Detecting };
                let status = DeviceStatus { port: path.clone(), protocol, state, last: None, garbage_ratio: 0.0 };
                statuses.insert(path.clone(), status);
                publish_now = true;
                match protocol {
                    Some(protocol) => {
                        let reader = spawn_reader(&path, protocol, &tx);
                        running.insert(path, Some((protocol, reader)));
                    }
                    None => {
                        running.insert(path.clone(), None);
                        let tx = tx.clone();
                        let _ = std::thread::Builder::new().name("vitals-detect".into()).spawn(move || {
                            let found = detect(&path).ok();
                            let _ = tx.send(Heard::Detected(path, found));
                        });
                    }
                }
            }
        }
        let heard = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(h) => h,
            Err(_) => continue,
        };
        let messages = match heard {
            Heard::Detected(path, Some(protocol)) => {
                if let Some(slot @ None) = running.get_mut(&path) {
                    tracing::info!(port = %path.display(), %protocol, "vitals device detected");
                    *slot = Some((protocol, spawn_reader(&path, protocol, &tx)));
                    if let Some(s) = statuses.get_mut(&path) {
                        (s.protocol, s.state) = (Some(protocol), PortState::Waiting);
                    }
                    publish_now = true;
                }
                continue;
            }
            Heard::Detected(path, None) => {
                tracing::warn!(port = %path.display(), "no known vitals protocol answered; not read until replugged");
                if let Some(s) = statuses.get_mut(&path) {
                    s.state = PortState::NoProtocol;
                }
                publish_now = true;
                continue;
            }
            Heard::Update(path, update) => {
                let Some(Some((protocol, _))) = running.get(&path) else { continue };
                let now = started.elapsed();
                if let Some(s) = statuses.get_mut(&path) {
                    match &update {
                        Update::Connected => {
                            (s.state, s.garbage_ratio, publish_now) = (PortState::Connected, 0.0, true)
                        }
                        Update::Unplugged => (s.state, publish_now) = (PortState::Unplugged, true),
                        Update::Reading { reading, at } => s.last = Some((*reading, *at)),
                        Update::Bytes(stats) => s.garbage_ratio = stats.garbage_ratio(),
                        Update::DeviceEnded { .. } => {}
                    }
                }
                match update {
                    Update::Reading { reading, .. } => {
                        let (oximetry, weighing) = steady.entry(path.clone()).or_insert_with(|| {
                            (StabilityDetector::new(StabilityRule::default()), WeighingRule::default())
                        });
                        let at = chrono::Utc::now();
                        if let Some(stable) = oximetry.push(&reading) {
                            keep(from_oximetry(stable, *protocol, at).to_vec());
                        }
                        if let Some(kg) = weighing.push(&reading) {
                            let weight = Observation {
                                kind: ObservationKind::BodyWeight,
                                value: kg,
                                device: *protocol,
                                taken_at: at,
                            };
                            keep(vec![weight]);
                        }
                        publisher.reading(*protocol, &reading, now)
                    }
                    Update::Unplugged => {
                        steady.remove(&path);
                        publisher.unplugged(*protocol, now)
                    }
                    Update::Connected | Update::DeviceEnded { .. } | Update::Bytes(_) => continue,
                }
            }
        };
        if let Ok(mut l) = feed.latest.lock() {
            *l = publisher.latest();
        }
        for m in messages {
            // No listener (no call) is normal.
            let _ = feed.sender.send(Arc::new(m));
        }
    }
}

/// A reader whose updates reach the hub tagged with their port.
fn spawn_reader(path: &std::path::Path, protocol: Protocol, hub: &mpsc::Sender<Heard>) -> Reader {
    let (hub, tagged) = (hub.clone(), path.to_path_buf());
    Reader::spawn(path.to_path_buf(), protocol, move |update| hub.send(Heard::Update(tagged.clone(), update)).is_ok())
}
