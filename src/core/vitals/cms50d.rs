//! Contec CMS50D+ finger pulse oximeter: decoders for the two serial protocols it has shipped with. Pure: bytes in,
//! [`Event`]s out; the caller opens the port ([`Protocol::line_settings`]) and writes the 4.6 start command.
//!
//! No fact here was checked against a device; each comes from public reverse engineering or Contec's own document:
//! - Legacy stream (before firmware 4.6): atbrask/CMS50Dplus `cms50dplus/cms50dplus.py` (19200 baud, odd parity,
//!   8 data bits, 1 stop bit; 5-byte frames, sync bit 7 set only in the first byte; byte layout) and its `README`
//!   (60 Hz). The same bit layout is in Yujia-Yan/CMS50SerialProtocolKit `CMS50Protocol/src/CMS50.java` and in a
//!   translation of Contec's Chinese manual posted on picbasic.co.uk (thread 11311).
//! - Firmware 4.6: Contec's "Communication protocol of pulse oximeter V7.0" (2010-07-08, stored as a PDF in
//!   albertcbraun/CMS50FW): 115200 8N1; packet = type byte (bit 7 clear), a "high byte" holding bit 7 of each
//!   following byte, then data bytes with bit 7 set; real-time packet 0x01 of 9 bytes, 60 a second (table 2); its
//!   fields (table 3); commands 0x7D (table 7). That 4.6 speaks this protocol is from MarkMLl/Contec_cms50dplus
//!   `cms50dplus4v6/consoleapp.pas` (9-byte messages at 115k) and celiponcio/oximeter-CMS50Dplus-v4.6-LIVE-data-
//!   display-store-alarm `cms50Dplus_thread.py`; captured packets from headrotor/contec_data `stream_data.py` and
//!   MarkMLl serve as test vectors. The high-byte rule also matches timegrid/CMS50Dplus7 `cms50dplus7.py`.

use std::time::Duration;

use super::{ByteStats, Decode, Event, LineSettings, LockGate, Parity, Reading, StopBits};

/// Legacy line: 19200 baud, 8 data bits, odd parity, 1 stop bit (atbrask/CMS50Dplus `cms50dplus/cms50dplus.py`).
pub const LEGACY_LINE: LineSettings =
    LineSettings { baud: 19200, data_bits: 8, parity: Parity::Odd, stop_bits: StopBits::One };

/// Firmware 4.6 line: 115200 baud 8N1 (Contec V7.0 section 2.2; MarkMLl, celiponcio, headrotor all use it).
pub const V46_LINE: LineSettings =
    LineSettings { baud: 115_200, data_bits: 8, parity: Parity::None, stop_bits: StopBits::One };

/// "Ask for continuous real-time data" (command 0xA1), the bytes every 4.6 source sends to start the stream.
pub const V46_START: [u8; 9] = v46_command(0xA1);
/// "Stop sending real-time data" (command 0xA2).
pub const V46_STOP: [u8; 9] = v46_command(0xA2);
/// "Inform device being connected" (command 0xAF), "send once per 5 sec" (Contec V7.0 table 7). MarkMLl saw the
/// stream stop after 30 s when nothing was repeated; AndreasZachariae/cms50dplus-driver repeats 0xA1 instead.
pub const V46_KEEP_ALIVE: [u8; 9] = v46_command(0xAF);
/// How often to send [`V46_KEEP_ALIVE`].
pub const V46_KEEP_ALIVE_EVERY: Duration = Duration::from_secs(5);

/// A control packet: type 0x7D, high byte, the command, six unused bytes sent as 0x80 (Contec V7.0 table 7, note 4).
const fn v46_command(command: u8) -> [u8; 9] {
    let high = 0x80 | (command >> 7);
    [0x7D, high, command | 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]
}

const SYNC_BIT: u8 = 0x80;
const LEGACY_FRAME_LEN: usize = 5;
/// Legacy frames have no checksum; random bytes pass the sync-bit check about once per 32 bytes, so four frames in a
/// row (67 ms of stream) must agree before any is shown.
const LEGACY_LOCK_FRAMES: usize = 4;
/// 4.6 packets start with an exact type byte and carry 8 framing bits; two in a row are plenty.
const V46_LOCK_PACKETS: usize = 2;
/// "Invalid" SpO2 in both protocols (Contec V7.0 table 3: "0x7F ... display as ---").
const INVALID_SPO2: u8 = 0x7F;
/// "Invalid" pulse rate (Contec V7.0 table 3: valid range (0, 254], else 0xFF).
const INVALID_PULSE: u16 = 0xFF;

const V46_REALTIME: u8 = 0x01;
const V46_DISCONNECT: u8 = 0x0D;

/// Length, type byte included, of each uplink packet type (Contec V7.0 table 2).
fn v46_packet_len(kind: u8) -> Option<usize> {
    match kind {
        0x0C => Some(2),
        0x0D | 0x0E | 0x10 => Some(3),
        0x0A | 0x0B => Some(4),
        0x09 => Some(6),
        0x07 | 0x08 | 0x0F | 0x12 => Some(8),
        0x01 | 0x04 | 0x05 | 0x11 | 0x15 => Some(9),
        _ => None,
    }
}

/// The reading for one frame's fields, shared by both protocols. Probe error wins over searching, which wins over
/// numbers: the device's numbers are stale in both states.
fn reading(probe_error: bool, searching: bool, spo2: u8, pulse: u16, pleth_raw: u8, signal: u8) -> Reading {
    if probe_error {
        return Reading::NoFinger;
    }
    if searching {
        return Reading::Searching;
    }
    let spo2_percent = (1..=100).contains(&spo2).then_some(spo2);
    let pulse_bpm = (1..INVALID_PULSE).contains(&pulse).then_some(pulse);
    // 0-127 onto 0-100, rounded; the sum stays below 12_764 so the division's result fits a u8.
    let pleth = u8::try_from((u16::from(pleth_raw & 0x7F) * 100 + 63) / 127).unwrap_or(100);
    // "Values: [0,8], 8 default if larger than 8" (Contec V7.0 table 3); the legacy manual also says 0-8.
    Reading::Oximetry { spo2_percent, pulse_bpm, pleth, signal_strength: signal.min(8) }
}

/// An SpO2 byte the device never sends means the frame is misaligned or corrupt, not a reading.
fn plausible_spo2(spo2: u8) -> bool {
    spo2 <= 100 || spo2 == INVALID_SPO2
}

/// Decodes one legacy frame. Byte layout (atbrask/CMS50Dplus `cms50dplus/cms50dplus.py`, Yujia-Yan `CMS50.java`):
/// 1: bit 7 sync, 6 pulse beep, 5 SpO2 dropping, 4 "searching time too long" (atbrask calls it "finger out"; the
///    manual translation and Yujia-Yan say searching), 0-3 signal strength; 2: pleth 0-127; 3: bit 6 pulse rate bit 7,
///    5 searching for pulse, 4 probe (sensor) error, 0-3 bar graph; 4: pulse rate bits 0-6; 5: SpO2.
fn decode_legacy(frame: &[u8]) -> Option<Reading> {
    let [b1, b2, b3, b4, b5] = <[u8; LEGACY_FRAME_LEN]>::try_from(frame).ok()?;
    let spo2 = b5 & 0x7F;
    if !plausible_spo2(spo2) {
        return None;
    }
    let pulse = (u16::from(b3 & 0x40) << 1) | u16::from(b4 & 0x7F);
    let searching = b3 & 0x20 != 0 || b1 & 0x10 != 0;
    Some(reading(b3 & 0x10 != 0, searching, spo2, pulse, b2, b1 & 0x0F))
}

/// Decoder for the legacy 5-byte stream. It needs no command: the device streams as soon as it is on.
#[derive(Debug)]
pub struct LegacyDecoder {
    frame: Vec<u8>,
    gate: LockGate,
    stats: ByteStats,
}

impl Default for LegacyDecoder {
    fn default() -> Self {
        LegacyDecoder::new()
    }
}

impl LegacyDecoder {
    /// A decoder waiting for its first sync byte.
    pub fn new() -> Self {
        LegacyDecoder {
            frame: Vec::with_capacity(LEGACY_FRAME_LEN),
            gate: LockGate::new(LEGACY_LOCK_FRAMES),
            stats: ByteStats::default(),
        }
    }

    fn discard(&mut self, bytes: usize) {
        self.stats.add_discarded(bytes);
        self.gate.broken(&mut self.stats);
    }
}

impl Decode for LegacyDecoder {
    fn byte(&mut self, byte: u8, out: &mut Vec<Event>) {
        if byte & SYNC_BIT != 0 {
            // A sync byte always starts a frame; one already open was cut short.
            if !self.frame.is_empty() {
                self.discard(self.frame.len());
                self.frame.clear();
            }
            self.frame.push(byte);
            return;
        }
        if self.frame.is_empty() {
            self.discard(1);
            return;
        }
        self.frame.push(byte);
        if self.frame.len() == LEGACY_FRAME_LEN {
            match decode_legacy(&self.frame) {
                Some(reading) => self.gate.frame(Event::Reading(reading), LEGACY_FRAME_LEN, out),
                None => self.discard(LEGACY_FRAME_LEN),
            }
            self.frame.clear();
        }
    }

    fn stats(&self) -> ByteStats {
        self.stats
    }

    fn stats_mut(&mut self) -> &mut ByteStats {
        &mut self.stats
    }
}

/// Decodes one firmware 4.6 packet (type, high byte, data). The high byte's bit i is bit 7 of data byte i.
fn decode_v46(packet: &[u8]) -> Option<Event> {
    let (&kind, rest) = packet.split_first()?;
    let (&high, data) = rest.split_first()?;
    let mut restored = [0u8; 7];
    for (i, (slot, &b)) in restored.iter_mut().zip(data).enumerate() {
        *slot = (b & 0x7F) | (((high >> i) & 1) << 7);
    }
    let [d0, d1, _bar_graph, d3, d4, _pi_low, _pi_high] = restored;
    match kind {
        // Real-time data (Contec V7.0 table 3): d0 bit 7 probe error ("show Finger Out"), 6 pulse beep, 5 low SpO2,
        // 4 searching too long, 0-3 signal strength; d1 bit 7 searching for pulse, 0-6 pleth; d2 bit 4 PI invalid,
        // 0-3 bar graph; d3 pulse rate (all 8 bits); d4 SpO2; d5-d6 perfusion index x100 (not used by the kiosk).
        V46_REALTIME => {
            if !plausible_spo2(d4) {
                return None;
            }
            let searching = d1 & 0x80 != 0 || d0 & 0x10 != 0;
            Some(Event::Reading(reading(d0 & 0x80 != 0, searching, d4, u16::from(d3), d1, d0 & 0x0F)))
        }
        V46_DISCONNECT => Some(Event::Disconnected { reason: d0 }),
        _ => Some(Event::Ignored),
    }
}

/// Decoder for firmware 4.6 packets. The device sends nothing until [`V46_START`]; send [`V46_KEEP_ALIVE`] every
/// [`V46_KEEP_ALIVE_EVERY`] while streaming.
#[derive(Debug)]
pub struct V46Decoder {
    packet: Vec<u8>,
    expected: usize,
    gate: LockGate,
    stats: ByteStats,
}

impl Default for V46Decoder {
    fn default() -> Self {
        V46Decoder::new()
    }
}

impl V46Decoder {
    /// A decoder waiting for its first type byte.
    pub fn new() -> Self {
        V46Decoder {
            packet: Vec::with_capacity(9),
            expected: 0,
            gate: LockGate::new(V46_LOCK_PACKETS),
            stats: ByteStats::default(),
        }
    }

    fn discard(&mut self, bytes: usize) {
        self.stats.add_discarded(bytes);
        self.gate.broken(&mut self.stats);
    }
}

impl Decode for V46Decoder {
    fn byte(&mut self, byte: u8, out: &mut Vec<Event>) {
        if byte & SYNC_BIT == 0 {
            // Only a type byte has bit 7 clear: a packet still open was cut short.
            if !self.packet.is_empty() {
                self.discard(self.packet.len());
                self.packet.clear();
            }
            match v46_packet_len(byte) {
                Some(len) => {
                    self.expected = len;
                    self.packet.push(byte);
                }
                None => self.discard(1),
            }
            return;
        }
        if self.packet.is_empty() {
            self.discard(1);
            return;
        }
        self.packet.push(byte);
        if self.packet.len() >= self.expected {
            let len = self.packet.len();
            match decode_v46(&self.packet) {
                Some(event) => self.gate.frame(event, len, out),
                None => self.discard(len),
            }
            self.packet.clear();
        }
    }

    fn stats(&self) -> ByteStats {
        self.stats
    }

    fn stats_mut(&mut self) -> &mut ByteStats {
        &mut self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: deterministic pseudo-random bytes without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
        }
    }

    fn oxi(spo2: Option<u8>, pulse: Option<u16>, pleth: u8, signal: u8) -> Event {
        Event::Reading(Reading::Oximetry { spo2_percent: spo2, pulse_bpm: pulse, pleth, signal_strength: signal })
    }

    /// A legacy frame: signal 5, pleth raw 64 (scaled 50), bar graph 3, the given pulse and SpO2.
    fn legacy(pulse: u16, spo2: u8) -> Vec<u8> {
        let high = u8::from(pulse & 0x80 != 0) << 6;
        vec![0x85, 64, 0x03 | high, u8::try_from(pulse & 0x7F).unwrap(), spo2]
    }

    fn legacy_stream(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    /// Captured by headrotor/contec_data `stream_data.py`: pulse 65, SpO2 97, pleth raw 0x33, signal 5.
    const CAPTURED_A: [u8; 9] = [0x01, 0xE0, 0x85, 0xB3, 0x96, 0xC1, 0xE1, 0xFF, 0xFF];
    /// Captured by MarkMLl `consoleapp.pas` ("Nominal operation"): pulse 61, SpO2 99, pleth raw 0x55.
    const CAPTURED_B: [u8; 9] = [0x01, 0xE0, 0x85, 0xD5, 0x9A, 0xBD, 0xE3, 0xFF, 0xFF];

    fn assert_in_range(events: &[Event]) {
        for e in events {
            if let Event::Reading(Reading::Oximetry { spo2_percent, pulse_bpm, pleth, signal_strength }) = *e {
                assert!(spo2_percent.is_none_or(|s| (1..=100).contains(&s)), "{e:?}");
                assert!(pulse_bpm.is_none_or(|p| (1..=254).contains(&p)), "{e:?}");
                assert!(pleth <= 100 && signal_strength <= 8, "{e:?}");
            }
        }
    }

    #[test]
    fn legacy_frames_are_held_until_four_agree_then_all_are_released() {
        let mut d = LegacyDecoder::new();
        let frames = [legacy(72, 97), legacy(73, 97), legacy(73, 98)];
        assert_eq!(d.push(&legacy_stream(&frames)), vec![]);
        let out = d.push(&legacy(74, 98));
        let expected = vec![
            oxi(Some(97), Some(72), 50, 5),
            oxi(Some(97), Some(73), 50, 5),
            oxi(Some(98), Some(73), 50, 5),
            oxi(Some(98), Some(74), 50, 5),
        ];
        assert_eq!(out, expected);
        assert_eq!(d.push(&legacy(75, 99)), vec![oxi(Some(99), Some(75), 50, 5)], "locked: straight through");
        assert_eq!(d.stats(), ByteStats { received: 25, discarded: 0 });
    }

    #[test]
    fn legacy_pulse_rate_uses_its_eighth_bit_from_byte_three() {
        let mut d = LegacyDecoder::new();
        let frame = legacy(130, 95);
        assert_eq!(frame, vec![0x85, 0x40, 0x43, 0x02, 95]);
        let out = d.push(&legacy_stream(&[frame.clone(), frame.clone(), frame.clone(), frame]));
        assert_eq!(out, vec![oxi(Some(95), Some(130), 50, 5); 4]);
    }

    #[test]
    fn legacy_finger_out_searching_and_invalid_values_are_states_not_numbers() {
        let lock = legacy_stream(&[legacy(72, 97), legacy(72, 97), legacy(72, 97), legacy(72, 97)]);
        let cases: [(Vec<u8>, Event); 6] = [
            (vec![0x80, 0x40, 0x10, 0x00, 0x00], Event::Reading(Reading::NoFinger)),
            (vec![0x80, 0x40, 0x30, 0x00, 0x00], Event::Reading(Reading::NoFinger)),
            (vec![0x80, 0x00, 0x20, 0x00, 0x7F], Event::Reading(Reading::Searching)),
            (vec![0x90, 0x00, 0x00, 0x00, 0x7F], Event::Reading(Reading::Searching)),
            (vec![0x83, 0x7F, 0x4F, 0x7F, 0x7F], oxi(None, None, 100, 3)),
            (vec![0x8C, 0x00, 0x00, 0x00, 0x00], oxi(None, None, 0, 8)),
        ];
        for (frame, expected) in cases {
            let mut d = LegacyDecoder::new();
            d.push(&lock);
            assert_eq!(d.push(&frame), vec![expected], "{frame:02X?}");
        }
    }

    #[test]
    fn a_legacy_stream_split_at_every_boundary_decodes_the_same() {
        let stream = legacy_stream(&[legacy(60, 96), legacy(61, 97), legacy(130, 98), legacy(62, 99), legacy(63, 99)]);
        let whole = LegacyDecoder::new().push(&stream);
        assert_eq!(whole.len(), 5);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let mut d = LegacyDecoder::new();
            let mut out = d.push(a);
            out.extend(d.push(b));
            assert_eq!(out, whole, "cut at {cut}");
        }
        let mut d = LegacyDecoder::new();
        let bytewise: Vec<Event> = stream.iter().flat_map(|b| d.push(&[*b])).collect();
        assert_eq!(bytewise, whole);
    }

    #[test]
    fn legacy_garbage_and_cut_frames_are_counted_and_the_stream_resynchronises() {
        let mut d = LegacyDecoder::new();
        // 3 stray data bytes, a frame cut after 2 bytes, 4 good frames, a frame with an extra byte, 4 good frames.
        let mut stream = vec![0x01, 0x02, 0x03, 0x85, 0x40];
        stream.extend(legacy_stream(&[legacy(70, 97), legacy(70, 97), legacy(70, 97), legacy(70, 97)]));
        stream.extend([0x85, 0x40, 0x03, 70, 97, 0x11]);
        stream.extend(legacy_stream(&[legacy(71, 98), legacy(71, 98), legacy(71, 98), legacy(71, 98)]));
        let out = d.push(&stream);
        let mut expected = vec![oxi(Some(97), Some(70), 50, 5); 4];
        // The frame before the extra byte was released (already locked); the extra byte breaks the lock.
        expected.push(oxi(Some(97), Some(70), 50, 5));
        expected.extend(vec![oxi(Some(98), Some(71), 50, 5); 4]);
        assert_eq!(out, expected);
        assert_eq!(d.stats(), ByteStats { received: 51, discarded: 3 + 2 + 1 });
    }

    #[test]
    fn a_legacy_frame_with_an_impossible_spo2_is_garbage() {
        let mut d = LegacyDecoder::new();
        let good = legacy_stream(&[legacy(72, 97), legacy(72, 97), legacy(72, 97)]);
        d.push(&good);
        assert_eq!(d.push(&legacy(72, 110)), vec![]);
        assert_eq!(d.stats().discarded, 15 + 5, "the held frames go with it");
    }

    #[test]
    fn random_bytes_at_a_wrong_baud_rate_give_no_readings_and_a_high_garbage_ratio() {
        for seed in [1, 0x9E37_79B9_7F4A_7C15, 42] {
            let noise = Rng(seed).bytes(20_000);
            let mut legacy_d = LegacyDecoder::new();
            assert!(legacy_d.push(&noise).iter().all(|e| !matches!(e, Event::Reading(_))));
            assert!(legacy_d.stats().garbage_ratio() > 0.9, "{:?}", legacy_d.stats());
            let mut v46 = V46Decoder::new();
            assert!(v46.push(&noise).iter().all(|e| !matches!(e, Event::Reading(_))));
            assert!(v46.stats().garbage_ratio() > 0.9, "{:?}", v46.stats());
        }
    }

    #[test]
    fn fuzzed_input_never_panics_and_every_reading_stays_in_range() {
        let mut rng = Rng(0xDEAD_BEEF);
        for round in 0..300 {
            let len = usize::try_from(rng.next() % 400).unwrap();
            let mut input = rng.bytes(len);
            // Every other round, splice valid frames in so the locked paths are fuzzed too.
            if round % 2 == 0 {
                let at = usize::try_from(rng.next()).unwrap() % (input.len() + 1);
                let mut good = legacy_stream(&vec![legacy(72, 97); 6]);
                good.extend(CAPTURED_A.repeat(3));
                input.splice(at..at, good);
            }
            let (mut a, mut b) = (LegacyDecoder::new(), V46Decoder::new());
            for chunk in input.chunks(usize::try_from(rng.next() % 17 + 1).unwrap()) {
                assert_in_range(&a.push(chunk));
                assert_in_range(&b.push(chunk));
            }
            for s in [a.stats(), b.stats()] {
                assert_eq!(s.received, u64::try_from(input.len()).unwrap());
                assert!(s.discarded <= s.received);
            }
        }
    }

    #[test]
    fn v46_commands_match_the_captured_bytes() {
        assert_eq!(V46_START, [0x7D, 0x81, 0xA1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
        assert_eq!(V46_KEEP_ALIVE, [0x7D, 0x81, 0xAF, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
        assert_eq!(V46_STOP, [0x7D, 0x81, 0xA2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
    }

    #[test]
    fn v46_captured_packets_decode_after_two_agree() {
        let mut d = V46Decoder::new();
        assert_eq!(d.push(&CAPTURED_A), vec![]);
        // Pleth: 0x33 = 51 -> 40; 0x55 = 85 -> 67.
        assert_eq!(d.push(&CAPTURED_B), vec![oxi(Some(97), Some(65), 40, 5), oxi(Some(99), Some(61), 67, 5)]);
        assert_eq!(d.push(&CAPTURED_A), vec![oxi(Some(97), Some(65), 40, 5)]);
        assert_eq!(d.stats(), ByteStats { received: 27, discarded: 0 });
    }

    #[test]
    fn v46_high_byte_bits_give_finger_out_searching_and_pulse_above_127() {
        let cases: [(u8, usize, u8, Event); 5] = [
            // High byte bit 0 -> d0 bit 7, probe error (headrotor: 0xE1 "pulse and spo2 not valid"; MarkMLl: finger out).
            (0xE1, 2, 0x80, Event::Reading(Reading::NoFinger)),
            // High byte bit 1 -> d1 bit 7, searching for pulse (headrotor 0xE2; celiponcio "searching").
            (0xE2, 3, 0xB3, Event::Reading(Reading::Searching)),
            // d0 bit 4: searching too long.
            (0xE0, 2, 0x95, Event::Reading(Reading::Searching)),
            // High byte bit 3 -> pulse bit 7: 0x82 = 130 bpm.
            (0xE8, 5, 0x82, oxi(Some(97), Some(130), 40, 5)),
            // Invalid markers: pulse 0xFF (bit 3 set), SpO2 0x7F.
            (0xE8, 5, 0xFF, oxi(Some(97), None, 40, 5)),
        ];
        for (high, at, value, expected) in cases {
            let mut d = V46Decoder::new();
            d.push(&CAPTURED_A);
            d.push(&CAPTURED_A);
            let mut packet = CAPTURED_A;
            packet[1] = high;
            packet[at] = value;
            assert_eq!(d.push(&packet), vec![expected], "{packet:02X?}");
        }
        let mut d = V46Decoder::new();
        d.push(&CAPTURED_A);
        let mut packet = CAPTURED_A;
        packet[6] = 0xFF; // SpO2 0x7F: invalid
        assert_eq!(d.push(&packet), vec![oxi(Some(97), Some(65), 40, 5), oxi(None, Some(65), 40, 5)]);
    }

    #[test]
    fn a_v46_stream_split_at_every_boundary_decodes_the_same() {
        let stream = [&CAPTURED_A[..], &[0x0C, 0x80], &CAPTURED_B, &CAPTURED_A, &[0x0D, 0x80, 0x81]].concat();
        let whole = V46Decoder::new().push(&stream);
        let expected = vec![
            oxi(Some(97), Some(65), 40, 5),
            Event::Ignored,
            oxi(Some(99), Some(61), 67, 5),
            oxi(Some(97), Some(65), 40, 5),
            Event::Disconnected { reason: 0x01 },
        ];
        assert_eq!(whole, expected);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let mut d = V46Decoder::new();
            let mut out = d.push(a);
            out.extend(d.push(b));
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn v46_garbage_cut_packets_and_unknown_types_are_counted_and_the_stream_resynchronises() {
        let mut d = V46Decoder::new();
        let mut stream = vec![0xFF, 0x85, 0x7E, 0x01, 0xE0, 0x85]; // 2 stray, unknown type 0x7E, a packet cut at 3
        stream.extend(CAPTURED_A);
        stream.extend(CAPTURED_B);
        stream.extend([0x01, 0xE0]); // cut again by the next packet's type byte
        stream.extend(CAPTURED_A);
        stream.extend(CAPTURED_B);
        let out = d.push(&stream);
        let expected = vec![
            oxi(Some(97), Some(65), 40, 5),
            oxi(Some(99), Some(61), 67, 5),
            oxi(Some(97), Some(65), 40, 5),
            oxi(Some(99), Some(61), 67, 5),
        ];
        assert_eq!(out, expected);
        assert_eq!(d.stats(), ByteStats { received: 44, discarded: 2 + 1 + 3 + 2 });
    }

    #[test]
    fn a_v46_packet_with_an_impossible_spo2_is_garbage() {
        let mut d = V46Decoder::new();
        let mut bad = CAPTURED_A;
        bad[6] = 0xE5; // SpO2 101
        assert_eq!(d.push(&[&CAPTURED_A[..], &bad, &CAPTURED_A].concat()), vec![]);
        assert_eq!(d.stats(), ByteStats { received: 27, discarded: 18 });
    }
}
