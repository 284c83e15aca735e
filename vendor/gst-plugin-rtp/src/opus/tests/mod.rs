// SPDX-License-Identifier: MPL-2.0

mod tests;
