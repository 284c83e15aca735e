// SPDX-License-Identifier: MPL-2.0

pub mod common;

pub mod depay;
pub mod pay;

#[cfg(test)]
mod tests;
