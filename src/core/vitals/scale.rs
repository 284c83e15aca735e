//! A&D standard format: the ASCII lines A&D weighing instruments send over RS-232C (`ST,+0072.50 kg`). Pure: bytes
//! in, [`Event`]s out. Only a stable weight in kg, g or lb becomes [`Reading::Weight`] (in kg); other units and
//! counting lines are [`Event::Ignored`].
//!
//! Why this family: A&D publishes the format in its instruction manuals, the stable/unstable/overload state is in
//! every line (no stability guessing here), and the lines are framed and checkable (two-letter header, comma, signed
//! zero-padded number, unit, CR LF), so a wrong baud rate or parity shows up as garbage instead of weights. That a
//! particular clinic (body-weight) scale speaks it must be checked per model: the manuals read are for A&D balances
//! and counting scales. (Tanita's clinic scales use a different, comma-keyed format, not decoded here.)
//!
//! Sources: A&D FZ-i/FX-i instruction manual (stored as `docs/fz_fx-i.pdf` in oscarbranson/AnD_balance): section
//! 10.6 (fifteen characters plus terminator, two-letter header, sign with leading zeros and `+` for zero, three-letter
//! unit; examples `ST,+00012.78  g`, `US,-00183.96  g`, `OL,+9999999E+19`), section 14 (600-19200 bps, 7 bits with
//! even or odd parity or 8 bits without, 1 stop bit) and its factory-settings table (bps 2 = 2400, btpr 0 = 7 bits
//! even, CR LF, A&D standard format); its unit table (1 lb = 453.59237 g). The A&D GC-series manual (section 16.2,
//! seen on manualshive.com) for the headers ST (stable weight), QT (stable count), US (unstable weight or count),
//! OL (out of range), the optional comparison header (LO, OK, HI, --) after the first, and `ST,+0001.234 kg`. The
//! CSV variant (data and unit split by a comma) is from the same FX-i section.

use super::{ByteStats, Decode, Event, LineSettings, Parity, Reading, StopBits};

/// Factory line settings of the A&D FZ-i/FX-i: 2400 baud, 7 data bits, even parity, 1 stop bit.
pub const AND_DEFAULT_LINE: LineSettings =
    LineSettings { baud: 2400, data_bits: 7, parity: Parity::Even, stop_bits: StopBits::One };

/// The standard line is 15 characters; with the optional comparison header and ID/date/time prefixes it stays well
/// below this. Anything longer is not this format (or a stuck line without terminators).
const MAX_LINE: usize = 64;
/// At most this many comma-separated fields (ID number, date, time) may come before the header.
const MAX_PREFIX_FIELDS: usize = 3;
/// Kilograms in a pound (the international pound, as in the FX-i unit table).
pub const KG_PER_LB: f64 = 0.453_592_37;

/// Decoder for A&D standard format lines. The scale sends on its own (stream, key or auto-print mode); there is no
/// start command.
#[derive(Debug, Default)]
pub struct AndStandardDecoder {
    line: Vec<u8>,
    /// The current line outgrew [`MAX_LINE`]: drop bytes until its terminator.
    overflowed: bool,
    stats: ByteStats,
}

impl AndStandardDecoder {
    /// A decoder at the start of a line.
    pub fn new() -> Self {
        AndStandardDecoder::default()
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        if self.overflowed {
            self.overflowed = false;
        } else if !self.line.is_empty() {
            match parse_line(&self.line) {
                Some(event) => out.push(event),
                None => self.stats.add_discarded(self.line.len()),
            }
        }
        self.line.clear();
    }
}

impl Decode for AndStandardDecoder {
    fn byte(&mut self, byte: u8, out: &mut Vec<Event>) {
        // The terminator is CR LF, or CR alone (A&D "Crlf 1"): either byte ends a line, and the empty line between
        // CR and LF is no line at all.
        if byte == b'\r' || byte == b'\n' {
            self.end_line(out);
        } else if self.overflowed {
            self.stats.add_discarded(1);
        } else if self.line.len() >= MAX_LINE {
            self.stats.add_discarded(self.line.len() + 1);
            self.line.clear();
            self.overflowed = true;
        } else {
            self.line.push(byte);
        }
    }

    fn stats(&self) -> ByteStats {
        self.stats
    }

    fn stats_mut(&mut self) -> &mut ByteStats {
        &mut self.stats
    }
}

/// The condition a line's header states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Stable,
    StableCount,
    Unstable,
    OutOfRange,
}

fn header(field: &str) -> Option<Header> {
    match field {
        "ST" => Some(Header::Stable),
        "QT" => Some(Header::StableCount),
        "US" => Some(Header::Unstable),
        "OL" => Some(Header::OutOfRange),
        _ => None,
    }
}

/// One line without its terminator; `None` if it is not A&D standard format.
fn parse_line(line: &[u8]) -> Option<Event> {
    // Printable ASCII only: a 7E1 line read as 8N1 has bit 7 set in some bytes and must look like garbage.
    if !line.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split(',');
    let found = fields.by_ref().take(MAX_PREFIX_FIELDS + 1).find_map(header)?;
    let mut data = fields.next()?;
    if matches!(data, "LO" | "OK" | "HI" | "--") {
        data = fields.next()?;
    }
    // CSV variant: the unit is the next field.
    let unit_field = fields.next();
    if fields.next().is_some() {
        return None;
    }
    if found == Header::OutOfRange {
        // The data is a fixed overflow pattern (`+9999999E+19`), not a weight.
        return Some(Event::Reading(Reading::Overload));
    }
    let (value, unit) = parse_number(data)?;
    let unit = match unit_field {
        Some(u) if unit.trim().is_empty() => u,
        Some(_) => return None,
        None => unit,
    };
    if found == Header::StableCount {
        return Some(Event::Ignored);
    }
    let Some(kg) = to_kg(value, unit.trim()) else {
        // A count (`US` is also used in counting mode), a percentage, or a unit we do not convert.
        return Some(Event::Ignored);
    };
    Some(Event::Reading(match found {
        Header::Stable => Reading::Weight { kg },
        _ => Reading::UnstableWeight { kg },
    }))
}

/// A signed decimal (`+00072.50`) and what follows it. A&D always sends the sign and at most one decimal point.
fn parse_number(field: &str) -> Option<(f64, &str)> {
    let (negative, rest) = match field.strip_prefix('+') {
        Some(rest) => (false, rest),
        None => (true, field.strip_prefix('-')?),
    };
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (digits, unit) = rest.split_at_checked(end)?;
    if !digits.bytes().any(|b| b.is_ascii_digit()) || digits.matches('.').count() > 1 {
        return None;
    }
    let magnitude: f64 = digits.parse().ok()?;
    Some((if negative { -magnitude } else { magnitude }, unit))
}

fn to_kg(value: f64, unit: &str) -> Option<f64> {
    let kg = match unit {
        "kg" => value,
        "g" => value / 1000.0,
        "lb" => value * KG_PER_LB,
        _ => return None,
    };
    kg.is_finite().then_some(kg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Vec<Event>, ByteStats) {
        let mut d = AndStandardDecoder::new();
        (d.push(bytes), d.stats())
    }

    fn weight(kg: f64) -> Event {
        Event::Reading(Reading::Weight { kg })
    }

    #[test]
    fn a_stable_kg_line_is_a_storable_weight() {
        let (out, stats) = decode(b"ST,+0072.50 kg\r\n");
        assert_eq!(out, vec![weight(72.5)]);
        assert_eq!(stats, ByteStats { received: 16, discarded: 0 });
        assert_eq!(Reading::Weight { kg: 72.5 }.storable_weight_kg(), Some(72.5));
    }

    #[test]
    fn the_manual_examples_decode_to_their_states() {
        let (out, stats) = decode(b"ST,+00012.78  g\r\nUS,-00183.96  g\r\nOL,+9999999E+19\r\nOL,-9999999E+19\r\n");
        let expected = vec![
            weight(12.78 / 1000.0),
            Event::Reading(Reading::UnstableWeight { kg: -183.96 / 1000.0 }),
            Event::Reading(Reading::Overload),
            Event::Reading(Reading::Overload),
        ];
        assert_eq!(out, expected);
        assert_eq!(stats.discarded, 0);
    }

    #[test]
    fn grams_and_pounds_are_converted_to_kilograms() {
        let (out, _) = decode(b"ST,+72500.00  g\r\nST,+00160.00 lb\r\n");
        assert_eq!(out, vec![weight(72.5), weight(160.0 * 0.453_592_37)]);
    }

    #[test]
    fn a_negative_stable_weight_is_decoded_but_not_storable() {
        let (out, _) = decode(b"ST,-0000.20 kg\r\n");
        assert_eq!(out, vec![weight(-0.2)]);
        assert_eq!(Reading::Weight { kg: -0.2 }.storable_weight_kg(), None);
    }

    #[test]
    fn comparison_headers_csv_units_and_id_prefixes_are_understood() {
        let (out, stats) =
            decode(b"ST,OK,+0072.50 kg\r\nLAB-0123,2004/07/01,12:34:56,ST,+0072.50, kg\r\nST,+72.5,kg\r\n");
        assert_eq!(out, vec![weight(72.5); 3]);
        assert_eq!(stats.discarded, 0);
    }

    #[test]
    fn counts_and_unconverted_units_are_ignored_not_garbage() {
        let (out, stats) = decode(b"QT,+00001234 PC\r\nUS,+00001234 PC\r\nST,+0012.345 oz\r\nST,+00050.00  %\r\n");
        assert_eq!(out, vec![Event::Ignored; 4]);
        assert_eq!(stats.discarded, 0);
    }

    #[test]
    fn a_carriage_return_alone_also_ends_a_line() {
        let (out, _) = decode(b"ST,+0072.50 kg\rUS,+0072.40 kg\r");
        assert_eq!(out, vec![weight(72.5), Event::Reading(Reading::UnstableWeight { kg: 72.4 })]);
    }

    #[test]
    fn lines_split_at_every_boundary_decode_the_same() {
        let stream = b"US,+0071.90 kg\r\nST,+0072.50 kg\r\nOL,+9999999E+19\r\nST,+72500.00  g\r\n";
        let (whole, _) = decode(stream);
        assert_eq!(whole.len(), 4);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let mut d = AndStandardDecoder::new();
            let mut out = d.push(a);
            out.extend(d.push(b));
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_lines_are_counted_and_the_next_line_decodes() {
        let cases: [&[u8]; 9] = [
            b"ST+0072.50 kg",      // no comma
            b"XX,+0072.50 kg",     // unknown header
            b"ST,0072.50 kg",      // no sign
            b"ST,+ kg",            // no digits
            b"ST,+72.5.0 kg",      // two decimal points
            b"ST,+0072.50 kg,x,y", // trailing fields
            b"a,b,c,d,ST,+1 kg",   // too many prefix fields
            b"ST,+0072.50 kg\xB5", // a byte with bit 7 set
            b"ST,+0072.50\x01 kg", // a control character
        ];
        for bad in cases {
            let mut d = AndStandardDecoder::new();
            assert_eq!(d.push(bad), vec![]);
            assert_eq!(d.push(b"\r\nST,+0072.50 kg\r\n"), vec![weight(72.5)], "{bad:?}");
            assert_eq!(d.stats().discarded, u64::try_from(bad.len()).unwrap(), "{bad:?}");
        }
    }

    #[test]
    fn an_overlong_line_is_dropped_up_to_its_terminator() {
        let mut stream = vec![b'9'; 100];
        stream.extend(b"\r\nST,+0072.50 kg\r\n");
        let (out, stats) = decode(&stream);
        assert_eq!(out, vec![weight(72.5)]);
        assert_eq!(stats, ByteStats { received: 118, discarded: 100 });
    }

    #[test]
    fn a_7e1_line_read_as_8n1_is_garbage() {
        // Even parity lands in bit 7 for characters with an odd number of one bits: 'T' (0x54) and CR (0x0D) among
        // them, so the CR is lost too and only the LF ends the line.
        let line: Vec<u8> =
            b"ST,+0072.50 kg\r\n".iter().map(|&c| if c.count_ones() % 2 == 1 { c | 0x80 } else { c }).collect();
        assert_eq!(line[1], 0xD4);
        let (out, stats) = decode(&line);
        assert_eq!(out, vec![]);
        assert_eq!(stats, ByteStats { received: 16, discarded: 15 });
    }

    #[test]
    fn random_bytes_give_no_readings_and_fuzzed_lines_stay_finite() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let noise: Vec<u8> = (0..20_000).map(|_| next().to_le_bytes()[0]).collect();
        let (out, stats) = decode(&noise);
        assert!(out.iter().all(|e| !matches!(e, Event::Reading(_))), "{out:?}");
        assert!(stats.garbage_ratio() > 0.9, "{stats:?}");
        // Lines from an alphabet close to the format, so that some parse.
        let alphabet = b"STUSOLQK,+-.0123456789 kglb\r\n";
        for _ in 0..2000 {
            let len = usize::try_from(next() % 40).unwrap();
            let line: Vec<u8> = (0..len).map(|_| alphabet[usize::try_from(next()).unwrap() % alphabet.len()]).collect();
            let mut d = AndStandardDecoder::new();
            for e in d.push(&line).into_iter().chain(d.push(b"\r\n")) {
                if let Event::Reading(Reading::Weight { kg } | Reading::UnstableWeight { kg }) = e {
                    assert!(kg.is_finite(), "{line:?}");
                }
            }
            assert!(d.stats().discarded <= d.stats().received);
        }
    }
}
