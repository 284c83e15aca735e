//! What the doctor's page is told about the kiosk's devices during a call, and when. Numbers and states go on a
//! reliable data channel as soon as they change and at least once a second; the pleth waveform goes in batches of
//! 100 ms on an unordered channel without retransmission (a late sample is worth nothing). Pure: readings and times
//! in, messages out.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::{Protocol, Reading};

/// The reliable channel's label (numbers and states).
pub const NUMBERS_CHANNEL: &str = "vitals";
/// The unreliable channel's label (the pleth waveform).
pub const WAVE_CHANNEL: &str = "vitals-wave";

/// Samples per waveform message: 100 ms of a 60 Hz oximeter.
const WAVE_BATCH: usize = 6;
/// A device whose numbers have not changed is repeated this often, so a page that joins late or lost a message
/// (it cannot on a reliable channel, but it can reload) is never more than this behind.
const REPEAT_EVERY: Duration = Duration::from_secs(1);

/// A device's state as the doctor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Numbers are valid (or marked missing by the device: `null`).
    Reading,
    /// The oximeter's clip is empty.
    NoFinger,
    /// The oximeter is looking for a pulse.
    Searching,
    /// The scale's weight is still moving.
    Settling,
    /// The load is outside the scale's range.
    Overload,
    /// The device's port is gone (unplugged); its last numbers are stale.
    Unplugged,
}

/// One message to the doctor's page, JSON tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VitalsMessage {
    /// A device's latest numbers or state.
    Vitals {
        /// The device's protocol, which names its kind (`cms50d-legacy`, `and-standard`).
        device: Protocol,
        state: DeviceState,
        #[serde(skip_serializing_if = "Option::is_none")]
        spo2: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pulse: Option<u16>,
        /// Pulse signal strength 0-8 (oximeters).
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<u8>,
        /// Kilograms (scales): stable when `state` is `reading`, moving when `settling`.
        #[serde(skip_serializing_if = "Option::is_none")]
        weight_kg: Option<f64>,
    },
    /// Pleth waveform samples (0-100, 60 a second) in the order measured.
    Pleth { device: Protocol, samples: Vec<u8> },
}

impl VitalsMessage {
    /// Which channel carries it.
    pub fn channel(&self) -> &'static str {
        match self {
            VitalsMessage::Vitals { .. } => NUMBERS_CHANNEL,
            VitalsMessage::Pleth { .. } => WAVE_CHANNEL,
        }
    }

    /// The JSON text sent on the channel.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Turns each device's stream of readings into the messages worth sending.
#[derive(Debug, Default)]
pub struct Publisher {
    /// Per device: the last numbers message sent, and when.
    last: HashMap<Protocol, (VitalsMessage, Duration)>,
    /// Per device: waveform samples not sent yet.
    wave: HashMap<Protocol, Vec<u8>>,
}

impl Publisher {
    /// A reading from `device` at `now` (any monotonic clock): the messages to send now, if any.
    pub fn reading(&mut self, device: Protocol, reading: &Reading, now: Duration) -> Vec<VitalsMessage> {
        let mut out = Vec::new();
        let numbers = numbers(device, reading);
        if let Reading::Oximetry { pleth, .. } = reading {
            let batch = self.wave.entry(device).or_default();
            batch.push(*pleth);
            if batch.len() >= WAVE_BATCH {
                out.push(VitalsMessage::Pleth { device, samples: std::mem::take(batch) });
            }
        } else {
            self.wave.remove(&device);
        }
        let due = match self.last.get(&device) {
            Some((last, at)) => *last != numbers || now.saturating_sub(*at) >= REPEAT_EVERY,
            None => true,
        };
        if due {
            self.last.insert(device, (numbers.clone(), now));
            out.push(numbers);
        }
        out
    }

    /// The device's port went away: one message saying so (its numbers are stale), and its waveform is dropped.
    pub fn unplugged(&mut self, device: Protocol, now: Duration) -> Vec<VitalsMessage> {
        self.wave.remove(&device);
        let message = VitalsMessage::Vitals {
            device,
            state: DeviceState::Unplugged,
            spo2: None,
            pulse: None,
            signal: None,
            weight_kg: None,
        };
        self.last.insert(device, (message.clone(), now));
        vec![message]
    }

    /// The latest numbers message of every device, for a page that has just opened its channel.
    pub fn latest(&self) -> Vec<VitalsMessage> {
        let mut all: Vec<&(VitalsMessage, Duration)> = self.last.values().collect();
        all.sort_by_key(|(_, at)| *at);
        all.into_iter().map(|(m, _)| m.clone()).collect()
    }
}

fn numbers(device: Protocol, reading: &Reading) -> VitalsMessage {
    let (state, spo2, pulse, signal, weight_kg) = match *reading {
        Reading::Oximetry { spo2_percent, pulse_bpm, signal_strength, .. } => {
            (DeviceState::Reading, spo2_percent, pulse_bpm, Some(signal_strength), None)
        }
        Reading::NoFinger => (DeviceState::NoFinger, None, None, None, None),
        Reading::Searching => (DeviceState::Searching, None, None, None, None),
        Reading::Weight { kg } => (DeviceState::Reading, None, None, None, Some(round_grams(kg))),
        Reading::UnstableWeight { kg } => (DeviceState::Settling, None, None, None, Some(round_grams(kg))),
        Reading::Overload => (DeviceState::Overload, None, None, None, None),
    };
    VitalsMessage::Vitals { device, state, spo2, pulse, signal, weight_kg }
}

/// Kilograms to the gram: the scales resolve 10-100 g, and a converted pound value would otherwise carry noise.
fn round_grams(kg: f64) -> f64 {
    (kg * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const OXI: Protocol = Protocol::Cms50dLegacy;

    fn oxi(spo2: u8, pulse: u16, pleth: u8) -> Reading {
        Reading::Oximetry { spo2_percent: Some(spo2), pulse_bpm: Some(pulse), pleth, signal_strength: 5 }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_reading_is_sent_at_once_and_unchanged_numbers_only_once_a_second() {
        let mut p = Publisher::default();
        let first = p.reading(OXI, &oxi(97, 72, 10), ms(0));
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].to_json(),
            r#"{"type":"vitals","device":"cms50d-legacy","state":"reading","spo2":97,"pulse":72,"signal":5}"#
        );
        let numbers_in = |msgs: &[VitalsMessage]| msgs.iter().filter(|m| m.channel() == NUMBERS_CHANNEL).count();
        let mut sent = 0;
        for i in 1..60 {
            sent += numbers_in(&p.reading(OXI, &oxi(97, 72, 10), ms(i * 1000 / 60)));
        }
        assert_eq!(sent, 0, "unchanged numbers within a second");
        assert_eq!(numbers_in(&p.reading(OXI, &oxi(97, 72, 10), ms(1000))), 1);
    }

    #[test]
    fn a_changed_number_or_state_is_sent_at_once() {
        let mut p = Publisher::default();
        p.reading(OXI, &oxi(97, 72, 10), ms(0));
        let changed = p.reading(OXI, &oxi(96, 72, 10), ms(16));
        assert!(changed.iter().any(|m| matches!(m, VitalsMessage::Vitals { spo2: Some(96), .. })), "{changed:?}");
        let out = p.reading(OXI, &Reading::NoFinger, ms(33));
        assert_eq!(out[0].to_json(), r#"{"type":"vitals","device":"cms50d-legacy","state":"no_finger"}"#);
    }

    #[test]
    fn the_waveform_leaves_in_batches_of_100_ms_in_order_and_stops_with_the_finger() {
        let mut p = Publisher::default();
        let mut waves = Vec::new();
        for i in 0..13u8 {
            for m in p.reading(OXI, &oxi(97, 72, i), ms(u64::from(i) * 16)) {
                if let VitalsMessage::Pleth { samples, .. } = m {
                    waves.push(samples);
                }
            }
        }
        assert_eq!(waves, vec![vec![0, 1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10, 11]]);
        p.reading(OXI, &Reading::NoFinger, ms(300));
        let after: Vec<_> = (0..5).flat_map(|i| p.reading(OXI, &oxi(97, 72, 50), ms(400 + i * 16))).collect();
        assert!(
            !after.iter().any(|m| matches!(m, VitalsMessage::Pleth { .. })),
            "the sample from before the gap leaked"
        );
    }

    #[test]
    fn an_unplugged_device_says_so_and_a_late_page_gets_every_device_latest_state() {
        let mut p = Publisher::default();
        p.reading(Protocol::AndStandard, &Reading::Weight { kg: 72.456_000_1 }, ms(0));
        p.reading(OXI, &oxi(97, 72, 10), ms(10));
        let out = p.unplugged(OXI, ms(20));
        assert_eq!(out[0].to_json(), r#"{"type":"vitals","device":"cms50d-legacy","state":"unplugged"}"#);
        let latest: Vec<String> = p.latest().iter().map(VitalsMessage::to_json).collect();
        assert_eq!(
            latest,
            vec![
                r#"{"type":"vitals","device":"and-standard","state":"reading","weight_kg":72.456}"#.to_string(),
                r#"{"type":"vitals","device":"cms50d-legacy","state":"unplugged"}"#.to_string(),
            ]
        );
    }

    #[test]
    fn a_settling_weight_is_labelled_so_the_page_never_shows_it_as_measured() {
        let mut p = Publisher::default();
        let out = p.reading(Protocol::AndStandard, &Reading::UnstableWeight { kg: 70.1 }, ms(0));
        assert_eq!(
            out[0].to_json(),
            r#"{"type":"vitals","device":"and-standard","state":"settling","weight_kg":70.1}"#
        );
    }
}
