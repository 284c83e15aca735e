// SPDX-License-Identifier: MPL-2.0

pub mod channel_positions;
