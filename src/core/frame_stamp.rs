//! A time stamp written into a video frame so that it survives encoding, the network, decoding and scaling, for
//! measuring glass-to-glass delay: a band across the top of the picture, cut into 40 blocks of equal width, each
//! black (0) or white (1) in luma. Blocks 0–3 and 36–39 are fixed patterns (1010 and 0101) that tell a stamped frame
//! from any other; blocks 4–35 hold the low 32 bits of the capture time in milliseconds since the Unix epoch, most
//! significant bit first. The band is 1/20 of the picture high, so it stays readable down to 320×180.
//! The doctor's page reads and writes the same format (`tests/support/measure.js`).

/// Blocks across the band.
pub const BLOCKS: u32 = 40;
const HEAD: [bool; 4] = [true, false, true, false];
const TAIL: [bool; 4] = [false, true, false, true];
/// Luma of a 1 and a 0 (video range).
const WHITE: u8 = 235;
const BLACK: u8 = 16;

fn bits(stamp: u32) -> impl Iterator<Item = bool> {
    HEAD.into_iter().chain((0..32).rev().map(move |i| stamp >> i & 1 == 1)).chain(TAIL)
}

/// Height of the band for a picture `height` rows high.
pub fn band_height(height: u32) -> u32 {
    (height / 20).max(2)
}

/// Writes `stamp` into the luma plane `y` (`stride` bytes per row) of a `width`×`height` picture.
pub fn write(y: &mut [u8], stride: usize, width: u32, height: u32, stamp: u32) {
    let band = band_height(height) as usize;
    for (i, bit) in bits(stamp).enumerate() {
        let (x0, x1) = block_span(i as u32, width);
        let value = if bit { WHITE } else { BLACK };
        for row in 0..band.min(height as usize) {
            let start = row * stride;
            if let Some(line) = y.get_mut(start + x0..start + x1) {
                line.fill(value);
            }
        }
    }
}

/// Reads a stamp from a luma plane, or `None` when the frame carries none (the fixed patterns do not match).
pub fn read(y: &[u8], stride: usize, width: u32, height: u32) -> Option<u32> {
    read_with(width, height, |x, row| y.get(row * stride + x).copied())
}

/// Reads a stamp through `luma(x, y)`, for pictures in other layouts (RGBA: compute the luma of the pixel).
///
/// Runs on every decoded picture of every call, and a camera's pictures carry no stamp: it stops at the first
/// block that breaks the fixed patterns (usually the first), so an unstamped picture costs one block's reads.
pub fn read_with(width: u32, height: u32, luma: impl Fn(usize, usize) -> Option<u8>) -> Option<u32> {
    let band = band_height(height) as usize;
    let (r0, r1) = (band / 4, (band * 3 / 4).max(band / 4 + 1));
    let block = |i: u32| -> Option<bool> {
        let (x0, x1) = block_span(i, width);
        // The middle half of the block: away from edges that compression smears.
        let (c0, c1) = (x0 + (x1 - x0) / 4, (x0 + (x1 - x0) * 3 / 4).max(x0 + (x1 - x0) / 4 + 1));
        let (mut sum, mut n) = (0u32, 0u32);
        for row in r0..r1 {
            for x in c0..c1 {
                sum += u32::from(luma(x, row)?);
                n += 1;
            }
        }
        Some(n > 0 && sum / n.max(1) >= 128)
    };
    let fixed = HEAD.iter().zip(0..).chain(TAIL.iter().zip(BLOCKS - 4..));
    for (&expected, i) in fixed {
        if block(i)? != expected {
            return None;
        }
    }
    (4..BLOCKS - 4).try_fold(0u32, |acc, i| Some(acc << 1 | u32::from(block(i)?)))
}

/// Milliseconds from a stamp to `now_ms` (both the low 32 bits of Unix milliseconds), across the wrap.
pub fn delay_ms(stamp: u32, now_ms: u64) -> u32 {
    (now_ms as u32).wrapping_sub(stamp)
}

fn block_span(i: u32, width: u32) -> (usize, usize) {
    let x0 = (i * width / BLOCKS) as usize;
    let x1 = ((i + 1) * width / BLOCKS) as usize;
    (x0, x1.max(x0 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_at_any_size_and_a_plain_picture_has_none() {
        for (w, h) in [(1280u32, 720u32), (640, 360), (320, 180)] {
            let stride = w as usize + 32;
            let mut y = vec![128u8; stride * h as usize];
            assert_eq!(read(&y, stride, w, h), None);
            write(&mut y, stride, w, h, 0xDEAD_BEEF);
            assert_eq!(read(&y, stride, w, h), Some(0xDEAD_BEEF), "{w}x{h}");
        }
    }

    #[test]
    fn a_stamp_survives_scaling_and_noise() {
        let (w, h) = (1280u32, 720u32);
        let mut y = vec![90u8; (w * h) as usize];
        write(&mut y, w as usize, w, h, 123_456_789);
        // Nearest-neighbour down to 320x180, with some noise as compression would add.
        let (sw, sh) = (320u32, 180u32);
        let small: Vec<u8> = (0..sh * sw)
            .map(|i| {
                let (x, r) = (i % sw, i / sw);
                let v = y[(r * h / sh * w + x * w / sw) as usize];
                v.saturating_add((i % 7) as u8 * 5).saturating_sub(15)
            })
            .collect();
        assert_eq!(read(&small, sw as usize, sw, sh), Some(123_456_789));
    }

    #[test]
    fn delays_cross_the_wrap() {
        assert_eq!(delay_ms(u32::MAX - 10, (1u64 << 32) + 30), 41);
        assert_eq!(delay_ms(1000, 1080), 80);
    }
}
