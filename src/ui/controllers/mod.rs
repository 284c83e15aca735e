//! One controller per screen group: each wires its global's callbacks and, where it follows something, has a
//! `tick` run by the UI's 30 Hz timer.

pub(super) mod call;
pub(super) mod checkin;
pub(super) mod technician;
pub(super) mod welcome;
