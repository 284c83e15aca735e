//! `medimitra devices list` and `medimitra devices watch PORT`: the technician's view of the serial medical devices,
//! through the same readers (`crate::devices`) and decoders (`crate::core::vitals`) the kiosk uses.

use anyhow::{Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::Devices;
use crate::core::vitals::{Protocol, Reading};
use crate::devices::{self, Reader, Update};

#[derive(Subcommand)]
pub(super) enum DevicesCmd {
    /// List the configured ports and the udev-linked adapters, each with its protocol and its latest reading
    List,
    /// Print a device's readings as they arrive (oximetry once a second and on every change)
    Watch {
        /// The serial port, e.g. /dev/medimitra/vitals-cp210x-0
        port: PathBuf,
        /// cms50d-legacy, cms50d-v46 or and-standard; detected when left out
        #[arg(long)]
        protocol: Option<Protocol>,
        /// Stop after this many seconds (default: until interrupted)
        #[arg(long, value_name = "SECS")]
        seconds: Option<u64>,
    },
}

/// How long `list` listens to each device for a reading.
const LIST_LISTEN: Duration = Duration::from_secs(2);

pub(super) fn run(config: &Devices, cmd: DevicesCmd) -> Result<()> {
    match cmd {
        DevicesCmd::List => list(config),
        DevicesCmd::Watch { port, protocol, seconds } => {
            let protocol = match protocol {
                Some(p) => p,
                None => {
                    let p = devices::detect(&port)?;
                    println!("detected {p} at {}", port.display());
                    p
                }
            };
            watch(port, protocol, seconds.map(Duration::from_secs))
        }
    }
}

fn list(config: &Devices) -> Result<()> {
    let named: Vec<(PathBuf, Protocol)> = config.ports.iter().map(|p| (p.path.clone(), p.protocol)).collect();
    let ports = devices::ports(&config.scan_dir, &named);
    if ports.is_empty() {
        println!("no devices: none configured and no vitals-* adapter in {}", config.scan_dir.display());
        return Ok(());
    }
    println!("{:<40} {:<14} latest reading", "port", "protocol");
    for (port, protocol) in ports {
        let protocol = match protocol.map_or_else(|| devices::detect(&port), Ok) {
            Ok(p) => p,
            Err(e) => {
                println!("{:<40} {:<14} {e}", port.display(), "?");
                continue;
            }
        };
        let (tx, rx) = mpsc::channel();
        let reader = Reader::spawn(port.clone(), protocol, move |u| tx.send(u).is_ok());
        let deadline = Instant::now() + LIST_LISTEN;
        let mut latest = String::from("nothing received");
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Update::Reading { reading, .. }) => latest = reading.to_string(),
                Ok(Update::Unplugged) => latest = "unplugged".into(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        reader.stop();
        println!("{:<40} {:<14} {latest}", port.display(), protocol.id());
    }
    Ok(())
}

fn watch(port: PathBuf, protocol: Protocol, limit: Option<Duration>) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    println!("watching {} ({protocol}); waiting for the device", port.display());
    let reader = Reader::spawn(port, protocol, move |u| tx.send(u).is_ok());
    let started = Instant::now();
    let mut shown = Shown::default();
    loop {
        let wait = match limit {
            Some(l) => match l.checked_sub(started.elapsed()) {
                Some(left) => left.min(Duration::from_secs(1)),
                None => break,
            },
            None => Duration::from_secs(1),
        };
        match rx.recv_timeout(wait) {
            Ok(update) => {
                if let Some(line) = shown.line_for(&update) {
                    println!("{:>7.2} s  {line}", started.elapsed().as_secs_f64());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                reader.stop();
                bail!("the reader stopped");
            }
        }
    }
    reader.stop();
    Ok(())
}

/// What `watch` printed last, so 60 samples a second become a line a second plus every change of state.
#[derive(Default)]
struct Shown {
    /// The kind of reading last printed (a number, no finger, searching, …), and when.
    last: Option<(std::mem::Discriminant<Reading>, Instant)>,
}

impl Shown {
    fn line_for(&mut self, update: &Update) -> Option<String> {
        match update {
            Update::Connected => Some("connected".into()),
            Update::Unplugged => {
                self.last = None;
                Some("unplugged: waiting for the device to come back".into())
            }
            Update::DeviceEnded { reason } => Some(format!("the device ended the session (reason {reason:#04x})")),
            Update::Bytes(stats) if stats.received >= 200 && stats.garbage_ratio() > 0.5 => Some(format!(
                "{:.0} % of {} bytes made no frame: a wrong protocol or baud rate?",
                100.0 * stats.garbage_ratio(),
                stats.received
            )),
            Update::Bytes(_) => None,
            Update::Reading { reading, at } => {
                let kind = std::mem::discriminant(reading);
                let state_changed = self.last.is_none_or(|(k, _)| k != kind);
                let due = self.last.is_none_or(|(_, t)| at.duration_since(t) >= Duration::from_secs(1));
                (state_changed || due).then(|| {
                    self.last = Some((kind, *at));
                    reading.to_string()
                })
            }
        }
    }
}
