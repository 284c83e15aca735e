//! Vitals: pure decoders for the kiosk's serial medical devices. Bytes in, typed [`Event`]s out: no IO, no clock and
//! no serial-port crate. The caller opens the port with a [`Protocol`]'s [`LineSettings`], writes its start and
//! keep-alive bytes, and feeds whatever it reads, in chunks split anywhere.
//!
//! - [`cms50d`]: the Contec CMS50D+ pulse oximeter, both protocol generations.
//! - [`scale`]: the A&D standard format sent by A&D weighing instruments (`ST,+0072.50 kg`).
//! - [`observation`]: which readings are kept with an appointment, and their FHIR R4 form.
//! - [`wire`]: what the doctor's page is told during a call, and when.
//! - [`check`]: the technician's device test, from a port's counts.
//! - [`StabilityDetector`]: when an oximetry value has held still long enough to be stored.

pub mod check;
pub mod cms50d;
pub mod observation;
pub mod scale;
pub mod wire;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// What one decoded frame says about the patient. States ("no finger", "searching") are variants, never numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// A live oximeter sample (60 a second). A value the device marks invalid is `None`.
    Oximetry {
        /// Oxygen saturation, 1-100 %.
        spo2_percent: Option<u8>,
        /// Pulse rate, 1-254 bpm.
        pulse_bpm: Option<u16>,
        /// The pleth waveform sample, scaled from the device's 0-127 to 0-100 for drawing.
        pleth: u8,
        /// Pulse signal strength, 0-8.
        signal_strength: u8,
    },
    /// The probe reports an error: no finger in it (or a faulty probe).
    NoFinger,
    /// The oximeter is searching for a pulse; it has no numbers yet.
    Searching,
    /// A stable weight in kilograms: the only scale reading that may be stored (see [`Reading::storable_weight_kg`]).
    Weight {
        /// Kilograms, converted from the scale's unit.
        kg: f64,
    },
    /// A weight still settling: to show, never to store.
    UnstableWeight {
        /// Kilograms, converted from the scale's unit.
        kg: f64,
    },
    /// The load is outside the scale's range (over or under).
    Overload,
}

impl Reading {
    /// The weight to store, if this is one: stable, finite and above zero (a negative weight after a tare is not a
    /// patient's). Oximetry is stored through [`StabilityDetector`] instead.
    pub fn storable_weight_kg(&self) -> Option<f64> {
        match *self {
            Reading::Weight { kg } if kg.is_finite() && kg > 0.0 => Some(kg),
            _ => None,
        }
    }
}

/// A reading in a technician's words, e.g. `SpO2 97 %  pulse 72 /min  signal 5/8` (`--` for a value the device
/// marks invalid).
impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = |v: Option<String>| v.unwrap_or_else(|| "--".into());
        match self {
            Reading::Oximetry { spo2_percent, pulse_bpm, signal_strength, .. } => write!(
                f,
                "SpO2 {} %  pulse {} /min  signal {signal_strength}/8",
                value(spo2_percent.map(|v| v.to_string())),
                value(pulse_bpm.map(|v| v.to_string()))
            ),
            Reading::NoFinger => f.write_str("no finger in the clip"),
            Reading::Searching => f.write_str("searching for a pulse"),
            Reading::Weight { kg } => write!(f, "weight {kg:.2} kg (stable)"),
            Reading::UnstableWeight { kg } => write!(f, "settling {kg:.2} kg"),
            Reading::Overload => f.write_str("overload: the load is outside the scale's range"),
        }
    }
}

/// What a decoder found in the bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A frame with something about the patient.
    Reading(Reading),
    /// A well-formed frame with nothing to show: a command reply, a counting-mode line, a unit we do not convert.
    Ignored,
    /// The oximeter announced it is ending the session (firmware 4.6 packet 0x0D), with Contec's reason code.
    Disconnected {
        /// 0x00 operation completed, 0x01 device shut down, 0xFF unknown (Contec V7.0 table 4).
        reason: u8,
    },
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Stop bits of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBits {
    /// One stop bit.
    One,
    /// Two stop bits.
    Two,
}

/// How to open the port, in plain types (the caller maps them onto its serial crate). Always without flow control:
/// XON/XOFF would make the OS drop bytes 0x11 and 0x13, which are ordinary data in the CMS50D+ streams. (Several public
/// CMS50D+ tools turn XON/XOFF on; nothing read for this module shows the device needs it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character (7 or 8).
    pub data_bits: u8,
    /// Parity bit.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
}

/// Bytes the host must repeat for the device to keep streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// What to write.
    pub bytes: &'static [u8],
    /// How often.
    pub every: Duration,
}

/// A device protocol the kiosk can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// CMS50D+ before firmware 4.6: a one-way 5-byte stream at 19200 baud, 8O1.
    Cms50dLegacy,
    /// CMS50D+ firmware 4.6 (Contec's "V7.0" protocol): 9-byte packets at 115200 baud, 8N1, started by the host.
    Cms50dV46,
    /// A&D standard format lines from an A&D scale or balance, 2400 baud 7E1 by default.
    AndStandard,
}

impl Protocol {
    /// Every protocol, for settings screens.
    pub const ALL: [Protocol; 3] = [Protocol::Cms50dLegacy, Protocol::Cms50dV46, Protocol::AndStandard];

    /// The protocol's name in configuration files.
    pub fn id(self) -> &'static str {
        match self {
            Protocol::Cms50dLegacy => "cms50d-legacy",
            Protocol::Cms50dV46 => "cms50d-v46",
            Protocol::AndStandard => "and-standard",
        }
    }

    /// The serial line settings the device uses (sources in [`cms50d`] and [`scale`]).
    pub fn line_settings(self) -> LineSettings {
        match self {
            Protocol::Cms50dLegacy => cms50d::LEGACY_LINE,
            Protocol::Cms50dV46 => cms50d::V46_LINE,
            Protocol::AndStandard => scale::AND_DEFAULT_LINE,
        }
    }

    /// Bytes to write once after opening the port, where the device waits for them before it sends anything.
    pub fn start_command(self) -> Option<&'static [u8]> {
        match self {
            Protocol::Cms50dV46 => Some(&cms50d::V46_START),
            Protocol::Cms50dLegacy | Protocol::AndStandard => None,
        }
    }

    /// Bytes to write before closing the port, where the device has a stop command.
    pub fn stop_command(self) -> Option<&'static [u8]> {
        match self {
            Protocol::Cms50dV46 => Some(&cms50d::V46_STOP),
            Protocol::Cms50dLegacy | Protocol::AndStandard => None,
        }
    }

    /// What to repeat while streaming, where the device needs it.
    pub fn keep_alive(self) -> Option<KeepAlive> {
        match self {
            Protocol::Cms50dV46 => {
                Some(KeepAlive { bytes: &cms50d::V46_KEEP_ALIVE, every: cms50d::V46_KEEP_ALIVE_EVERY })
            }
            Protocol::Cms50dLegacy | Protocol::AndStandard => None,
        }
    }

    /// A fresh decoder for this protocol.
    pub fn decoder(self) -> Decoder {
        match self {
            Protocol::Cms50dLegacy => Decoder::Cms50dLegacy(cms50d::LegacyDecoder::new()),
            Protocol::Cms50dV46 => Decoder::Cms50dV46(cms50d::V46Decoder::new()),
            Protocol::AndStandard => Decoder::AndStandard(scale::AndStandardDecoder::new()),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// In configuration files a protocol is its [`Protocol::id`].
impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A protocol name that is none of [`Protocol::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown device protocol {0:?} (known: cms50d-legacy, cms50d-v46, and-standard)")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL.into_iter().find(|p| p.id() == s).ok_or_else(|| UnknownProtocol(s.to_owned()))
    }
}

/// Counts of bytes fed and bytes thrown away, so a technician can see a wrong baud rate or wrong device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteStats {
    /// Bytes pushed into the decoder.
    pub received: u64,
    /// Bytes that belonged to no frame, to a broken frame, or to frames dropped before the stream was trusted.
    pub discarded: u64,
}

impl ByteStats {
    /// Discarded over received, 0.0 before any byte. Near 0 on a healthy line; near 1 at a wrong baud rate.
    pub fn garbage_ratio(&self) -> f64 {
        let (mut discarded, mut received) = (self.discarded.min(self.received), self.received);
        // Halve both until they fit f64::from(u32) exactly; the ratio barely moves.
        while received > u64::from(u32::MAX) {
            discarded >>= 1;
            received >>= 1;
        }
        match (u32::try_from(discarded), u32::try_from(received)) {
            (Ok(d), Ok(r)) if r > 0 => f64::from(d) / f64::from(r),
            _ => 0.0,
        }
    }

    fn add_received(&mut self, n: usize) {
        self.received = self.received.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    fn add_discarded(&mut self, n: usize) {
        self.discarded = self.discarded.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// A streaming decoder: feed chunks split anywhere ([`Decode::push`]), get the events completed by them. Never
/// panics. Each decoder takes one byte at a time and keeps its own counts.
pub trait Decode {
    /// Takes the next byte, appending to `out` any event it completes.
    fn byte(&mut self, byte: u8, out: &mut Vec<Event>);
    /// What has been fed and thrown away so far.
    fn stats(&self) -> ByteStats;
    /// The counts [`Decode::push`] adds each chunk to.
    fn stats_mut(&mut self) -> &mut ByteStats;

    /// Decodes `bytes`, continuing any frame left open by the previous push.
    fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.stats_mut().add_received(bytes.len());
        let mut out = Vec::new();
        for &byte in bytes {
            self.byte(byte, &mut out);
        }
        out
    }
}

/// A decoder for any [`Protocol`], chosen at run time from configuration.
#[derive(Debug)]
pub enum Decoder {
    /// See [`cms50d::LegacyDecoder`].
    Cms50dLegacy(cms50d::LegacyDecoder),
    /// See [`cms50d::V46Decoder`].
    Cms50dV46(cms50d::V46Decoder),
    /// See [`scale::AndStandardDecoder`].
    AndStandard(scale::AndStandardDecoder),
}

impl Decoder {
    fn inner(&mut self) -> &mut dyn Decode {
        match self {
            Decoder::Cms50dLegacy(d) => d,
            Decoder::Cms50dV46(d) => d,
            Decoder::AndStandard(d) => d,
        }
    }
}

impl Decode for Decoder {
    fn byte(&mut self, byte: u8, out: &mut Vec<Event>) {
        self.inner().byte(byte, out);
    }

    fn stats(&self) -> ByteStats {
        match self {
            Decoder::Cms50dLegacy(d) => d.stats(),
            Decoder::Cms50dV46(d) => d.stats(),
            Decoder::AndStandard(d) => d.stats(),
        }
    }

    fn stats_mut(&mut self) -> &mut ByteStats {
        self.inner().stats_mut()
    }
}

/// Holds well-formed frames until `needed` of them have come back to back, then releases them and lets later ones
/// straight through; any discarded byte starts over and the held frames count as discarded. Without it, random bytes
/// at a wrong baud rate (which form a legacy CMS50D+ frame every few dozen bytes) would show as numbers.
#[derive(Debug)]
struct LockGate {
    needed: usize,
    run: usize,
    held: Vec<Event>,
    held_bytes: usize,
}

impl LockGate {
    fn new(needed: usize) -> Self {
        LockGate { needed, run: 0, held: Vec::new(), held_bytes: 0 }
    }

    fn frame(&mut self, event: Event, bytes: usize, out: &mut Vec<Event>) {
        if self.run >= self.needed {
            out.push(event);
            return;
        }
        self.run += 1;
        self.held.push(event);
        self.held_bytes = self.held_bytes.saturating_add(bytes);
        if self.run >= self.needed {
            out.append(&mut self.held);
            self.held_bytes = 0;
        }
    }

    fn broken(&mut self, stats: &mut ByteStats) {
        stats.add_discarded(self.held_bytes);
        self.run = 0;
        self.held.clear();
        self.held_bytes = 0;
    }
}

/// When an oximetry value is steady enough to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StabilityRule {
    /// Consecutive valid frames needed (the oximeters send 60 a second).
    pub frames: u32,
    /// How far SpO2 may stray from the run's first value, in percentage points.
    pub spo2_tolerance: u8,
    /// How far the pulse may stray from the run's first value, in bpm.
    pub pulse_tolerance: u16,
}

impl Default for StabilityRule {
    /// About 5 s at 60 Hz, within ±1 % SpO2 and ±3 bpm.
    fn default() -> Self {
        StabilityRule { frames: 300, spo2_tolerance: 1, pulse_tolerance: 3 }
    }
}

/// An oximetry value fit to store: the rounded means of a stable run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StableOximetry {
    /// Oxygen saturation, %.
    pub spo2_percent: u8,
    /// Pulse rate, bpm.
    pub pulse_bpm: u16,
}

/// Watches oximetry readings for a run in which SpO2 and pulse are both valid and stay within the rule's tolerance
/// of the run's first frame. Anything else (no finger, searching, an invalid value, a jump) starts a new run.
#[derive(Debug, Clone)]
pub struct StabilityDetector {
    rule: StabilityRule,
    anchor: Option<(u8, u16)>,
    frames: u32,
    spo2_sum: u64,
    pulse_sum: u64,
    reported: bool,
}

impl StabilityDetector {
    /// A detector with no run yet.
    pub fn new(rule: StabilityRule) -> Self {
        StabilityDetector { rule, anchor: None, frames: 0, spo2_sum: 0, pulse_sum: 0, reported: false }
    }

    /// Takes the next reading; returns the value to store once per stable run, on the frame that completes it.
    pub fn push(&mut self, reading: &Reading) -> Option<StableOximetry> {
        let Reading::Oximetry { spo2_percent: Some(spo2), pulse_bpm: Some(pulse), .. } = *reading else {
            self.reset();
            return None;
        };
        let within = self.anchor.is_some_and(|(a_spo2, a_pulse)| {
            spo2.abs_diff(a_spo2) <= self.rule.spo2_tolerance && pulse.abs_diff(a_pulse) <= self.rule.pulse_tolerance
        });
        if !within {
            self.reset();
            self.anchor = Some((spo2, pulse));
        }
        self.frames = self.frames.saturating_add(1);
        self.spo2_sum = self.spo2_sum.saturating_add(u64::from(spo2));
        self.pulse_sum = self.pulse_sum.saturating_add(u64::from(pulse));
        if self.reported || self.frames < self.rule.frames.max(1) {
            return None;
        }
        self.reported = true;
        let n = u64::from(self.frames);
        let spo2_percent = u8::try_from((self.spo2_sum + n / 2) / n).ok()?;
        let pulse_bpm = u16::try_from((self.pulse_sum + n / 2) / n).ok()?;
        Some(StableOximetry { spo2_percent, pulse_bpm })
    }

    /// Frames in the current run, for a progress bar (compare with the rule's `frames`).
    pub fn run_frames(&self) -> u32 {
        self.frames
    }

    /// Forgets the current run (a new patient, a new measurement).
    pub fn reset(&mut self) {
        *self = StabilityDetector::new(self.rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oxi(spo2: Option<u8>, pulse: Option<u16>) -> Reading {
        Reading::Oximetry { spo2_percent: spo2, pulse_bpm: pulse, pleth: 50, signal_strength: 5 }
    }

    fn rule(frames: u32) -> StabilityRule {
        StabilityRule { frames, ..StabilityRule::default() }
    }

    #[test]
    fn protocol_ids_round_trip_and_unknown_names_are_refused() {
        for p in Protocol::ALL {
            assert_eq!(p.id().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.id());
        }
        assert_eq!("cms50e".parse::<Protocol>(), Err(UnknownProtocol("cms50e".to_owned())));
    }

    #[test]
    fn each_protocol_names_its_line_settings_and_commands() {
        let legacy = Protocol::Cms50dLegacy.line_settings();
        assert_eq!(legacy, LineSettings { baud: 19200, data_bits: 8, parity: Parity::Odd, stop_bits: StopBits::One });
        let v46 = Protocol::Cms50dV46.line_settings();
        assert_eq!(v46, LineSettings { baud: 115_200, data_bits: 8, parity: Parity::None, stop_bits: StopBits::One });
        let and = Protocol::AndStandard.line_settings();
        assert_eq!(and, LineSettings { baud: 2400, data_bits: 7, parity: Parity::Even, stop_bits: StopBits::One });
        assert_eq!(
            Protocol::Cms50dV46.start_command(),
            Some(&[0x7D, 0x81, 0xA1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80][..])
        );
        assert_eq!(
            Protocol::Cms50dV46.stop_command(),
            Some(&[0x7D, 0x81, 0xA2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80][..])
        );
        let keep = Protocol::Cms50dV46.keep_alive().unwrap();
        assert_eq!(keep.bytes, &[0x7D, 0x81, 0xAF, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
        assert_eq!(keep.every, Duration::from_secs(5));
        for p in [Protocol::Cms50dLegacy, Protocol::AndStandard] {
            assert_eq!((p.start_command(), p.stop_command(), p.keep_alive()), (None, None, None));
        }
    }

    #[test]
    fn the_decoder_enum_dispatches_to_its_protocol() {
        let mut d = Protocol::AndStandard.decoder();
        assert_eq!(d.push(b"ST,+0072.50 kg\r\n"), vec![Event::Reading(Reading::Weight { kg: 72.5 })]);
        assert_eq!(d.stats(), ByteStats { received: 16, discarded: 0 });
        assert!(matches!(Protocol::Cms50dLegacy.decoder(), Decoder::Cms50dLegacy(_)));
        assert!(matches!(Protocol::Cms50dV46.decoder(), Decoder::Cms50dV46(_)));
    }

    #[test]
    fn garbage_ratio_is_zero_before_any_byte_and_exact_after() {
        assert_eq!(ByteStats::default().garbage_ratio(), 0.0);
        assert_eq!(ByteStats { received: 8, discarded: 2 }.garbage_ratio(), 0.25);
        assert_eq!(ByteStats { received: u64::MAX, discarded: u64::MAX }.garbage_ratio(), 1.0);
    }

    #[test]
    fn only_a_positive_stable_weight_is_storable() {
        assert_eq!(Reading::Weight { kg: 72.5 }.storable_weight_kg(), Some(72.5));
        assert_eq!(Reading::Weight { kg: -0.2 }.storable_weight_kg(), None);
        assert_eq!(Reading::Weight { kg: f64::NAN }.storable_weight_kg(), None);
        assert_eq!(Reading::UnstableWeight { kg: 72.5 }.storable_weight_kg(), None);
        assert_eq!(Reading::Overload.storable_weight_kg(), None);
        assert_eq!(oxi(Some(97), Some(70)).storable_weight_kg(), None);
    }

    #[test]
    fn a_steady_value_is_reported_once_on_the_frame_that_completes_the_run() {
        let mut d = StabilityDetector::new(StabilityRule::default());
        for _ in 0..299 {
            assert_eq!(d.push(&oxi(Some(97), Some(72))), None);
        }
        assert_eq!(d.push(&oxi(Some(97), Some(72))), Some(StableOximetry { spo2_percent: 97, pulse_bpm: 72 }));
        assert_eq!(d.run_frames(), 300);
        assert_eq!(d.push(&oxi(Some(97), Some(72))), None, "reported once per run");
    }

    #[test]
    fn values_within_tolerance_keep_the_run_and_the_mean_is_stored() {
        let mut d = StabilityDetector::new(rule(4));
        assert_eq!(d.push(&oxi(Some(97), Some(72))), None);
        assert_eq!(d.push(&oxi(Some(98), Some(75))), None);
        assert_eq!(d.push(&oxi(Some(96), Some(69))), None);
        // Means: SpO2 (97+98+96+98)/4 = 97.25 -> 97; pulse (72+75+69+75)/4 = 72.75 -> 73.
        assert_eq!(d.push(&oxi(Some(98), Some(75))), Some(StableOximetry { spo2_percent: 97, pulse_bpm: 73 }));
    }

    #[test]
    fn a_jump_beyond_tolerance_starts_a_new_run_from_the_new_value() {
        let mut d = StabilityDetector::new(rule(3));
        d.push(&oxi(Some(97), Some(72)));
        d.push(&oxi(Some(97), Some(72)));
        assert_eq!(d.push(&oxi(Some(97), Some(76))), None, "pulse +4 breaks the run");
        assert_eq!(d.run_frames(), 1);
        d.push(&oxi(Some(97), Some(76)));
        assert_eq!(d.push(&oxi(Some(99), Some(76))), None, "SpO2 +2 breaks the run");
        assert_eq!(d.run_frames(), 1);
    }

    #[test]
    fn invalid_values_and_finger_states_reset_the_run() {
        for interruption in
            [oxi(None, Some(72)), oxi(Some(97), None), Reading::NoFinger, Reading::Searching, Reading::Overload]
        {
            let mut d = StabilityDetector::new(rule(3));
            d.push(&oxi(Some(97), Some(72)));
            d.push(&oxi(Some(97), Some(72)));
            assert_eq!(d.push(&interruption), None);
            assert_eq!(d.run_frames(), 0);
            d.push(&oxi(Some(97), Some(72)));
            d.push(&oxi(Some(97), Some(72)));
            assert_eq!(d.push(&oxi(Some(97), Some(72))), Some(StableOximetry { spo2_percent: 97, pulse_bpm: 72 }));
        }
    }

    #[test]
    fn a_rule_of_zero_frames_behaves_as_one() {
        let mut d = StabilityDetector::new(rule(0));
        assert_eq!(d.push(&oxi(Some(95), Some(60))), Some(StableOximetry { spo2_percent: 95, pulse_bpm: 60 }));
    }
}
