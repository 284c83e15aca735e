// SPDX-License-Identifier: MPL-2.0

pub mod depay;
pub mod pay;

#[allow(clippy::module_inception)]
#[cfg(test)]
mod tests;
