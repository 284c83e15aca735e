//! The kiosk's running devices: a reader for every configured port and every `vitals-*` adapter udev links (found
//! by a rescan every two seconds, its protocol detected first), their updates turned into messages for the doctor
//! ([`crate::core::vitals::wire::Publisher`]) and published to whoever listens (the call's data channels). Stable
//! readings (a steady oximetry run, a finished weighing) go to a keeper, which `serve` points at the store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{Reader, Update, Worker, detect, ports};
use crate::config::Devices;
use crate::core::vitals::check::{PortCondition, PortCounts};
use crate::core::vitals::observation::{Observation, ObservationKind, WeighingRule, from_oximetry};
use crate::core::vitals::wire::{NUMBERS_CHANNEL, Publisher, VitalsMessage};
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
    /// Bytes and readings since the port opened (a wrong device or baud rate discards nearly every byte); the
    /// technician's device test compares two of them.
    pub counts: PortCounts,
}

impl DeviceStatus {
    /// The port as the device test sees it.
    pub fn condition(&self) -> PortCondition {
        match (self.state, self.protocol) {
            (PortState::Connected, Some(p)) => PortCondition::Open(p),
            (PortState::Detecting, _) => PortCondition::Detecting,
            (PortState::NoProtocol, _) => PortCondition::Unknown,
            _ => PortCondition::Closed,
        }
    }
}

impl std::fmt::Debug for VitalsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VitalsFeed").field("listeners", &self.sender.receiver_count()).finish()
    }
}

/// The running hub: stops its readers when dropped.
pub struct Hub {
    /// Held for its drop, which stops the thread (and with it every reader).
    _thread: Worker,
}

impl Hub {
    /// Starts watching the configured ports and the udev directory; messages go to `feed`, stable readings to
    /// `keep` (called on the hub's thread).
    pub fn start(config: &Devices, feed: VitalsFeed, keep: impl FnMut(Vec<Observation>) + Send + 'static) -> Hub {
        let config = config.clone();
        Hub { _thread: Worker::spawn("vitals-hub", move |stop| run(&config, &feed, keep, stop)) }
    }
}

/// What the hub thread hears: a reader's update, or a detection's result.
enum Heard {
    Update(PathBuf, Update),
    Detected(PathBuf, Option<Protocol>),
}

/// One watched port: what the technician sees of it, its reader once its protocol is known, and when its readings
/// are steady enough to keep.
struct Port {
    status: DeviceStatus,
    reader: Option<Reader>,
    steady: (StabilityDetector, WeighingRule),
}

fn run(config: &Devices, feed: &VitalsFeed, mut keep: impl FnMut(Vec<Observation>), stop: &AtomicBool) {
    let named: Vec<(PathBuf, Protocol)> = config.ports.iter().map(|p| (p.path.clone(), p.protocol)).collect();
    let (tx, rx) = mpsc::channel::<Heard>();
    let started = Instant::now();
    let mut publisher = Publisher::default();
    // Sorted by path, as the technician screen lists them.
    let mut watched: BTreeMap<PathBuf, Port> = BTreeMap::new();
    let mut next_scan = Instant::now();
    let (mut status_changed, mut statuses_shown) = (true, Instant::now());
    while !stop.load(Ordering::SeqCst) {
        // The technician's view: at once after a change of state, else at most every 250 ms (readings).
        if std::mem::take(&mut status_changed) || statuses_shown.elapsed() >= Duration::from_millis(250) {
            statuses_shown = Instant::now();
            if let Ok(mut d) = feed.devices.lock() {
                *d = watched.values().map(|p| p.status.clone()).collect();
            }
        }
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + RESCAN_EVERY;
            let present = ports(&config.scan_dir, &named);
            // Links that vanished: their reader stops, so a different device behind a new link is detected anew.
            let before = watched.len();
            watched.retain(|path, _| present.iter().any(|(p, _)| p == path));
            status_changed |= watched.len() != before;
            for (path, protocol) in present {
                if watched.contains_key(&path) {
                    continue;
                }
                let reader = match protocol {
                    Some(protocol) => Some(spawn_reader(&path, protocol, &tx)),
                    None => {
                        let (tx, path) = (tx.clone(), path.clone());
                        let _ = std::thread::Builder::new().name("vitals-detect".into()).spawn(move || {
                            let found = detect(&path).ok();
                            let _ = tx.send(Heard::Detected(path, found));
                        });
                        None
                    }
                };
                let state = if protocol.is_some() { PortState::Waiting } else { PortState::Detecting };
                let status =
                    DeviceStatus { port: path.clone(), protocol, state, last: None, counts: PortCounts::default() };
                let steady = (StabilityDetector::new(StabilityRule::default()), WeighingRule::default());
                watched.insert(path, Port { status, reader, steady });
                status_changed = true;
            }
        }
        let Ok(heard) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        let messages = match heard {
            Heard::Detected(path, found) => {
                let Some(port) = watched.get_mut(&path).filter(|p| p.reader.is_none()) else { continue };
                match found {
                    Some(protocol) => {
                        tracing::info!(port = %path.display(), %protocol, "vitals device detected");
                        port.reader = Some(spawn_reader(&path, protocol, &tx));
                        (port.status.protocol, port.status.state) = (Some(protocol), PortState::Waiting);
                    }
                    None => {
                        tracing::warn!(port = %path.display(), "no known vitals protocol answered; not read until replugged");
                        port.status.state = PortState::NoProtocol;
                    }
                }
                status_changed = true;
                continue;
            }
            Heard::Update(path, update) => {
                let Some(port) = watched.get_mut(&path) else { continue };
                let Some(protocol) = port.status.protocol else { continue };
                let now = started.elapsed();
                match update {
                    Update::Connected => {
                        (port.status.state, port.status.counts) = (PortState::Connected, PortCounts::default());
                        status_changed = true;
                        continue;
                    }
                    Update::Bytes(stats) => {
                        port.status.counts.bytes = stats;
                        continue;
                    }
                    Update::DeviceEnded { .. } => continue,
                    Update::Unplugged => {
                        port.status.state = PortState::Unplugged;
                        port.steady = (StabilityDetector::new(StabilityRule::default()), WeighingRule::default());
                        status_changed = true;
                        publisher.unplugged(protocol, now)
                    }
                    Update::Reading { reading, at } => {
                        port.status.last = Some((reading, at));
                        port.status.counts.readings += 1;
                        let (oximetry, weighing) = &mut port.steady;
                        let taken_at = chrono::Utc::now();
                        if let Some(stable) = oximetry.push(&reading) {
                            keep(from_oximetry(stable, protocol, taken_at).to_vec());
                        }
                        if let Some(kg) = weighing.push(&reading) {
                            let kind = ObservationKind::BodyWeight;
                            keep(vec![Observation { kind, value: kg, device: protocol, taken_at }]);
                        }
                        publisher.reading(protocol, &reading, now)
                    }
                }
            }
        };
        // The latest state changes only with a numbers message, not with the waveform's batches.
        if messages.iter().any(|m| m.channel() == NUMBERS_CHANNEL)
            && let Ok(mut l) = feed.latest.lock()
        {
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
