// SPDX-License-Identifier: MPL-2.0

pub mod depay;
pub mod pay;

mod ac3_audio_utils;

#[allow(clippy::module_inception)]
#[cfg(test)]
mod tests;
