// SPDX-License-Identifier: MPL-2.0

mod common;
pub mod depay;
pub mod pay;
