//! The rules that slow down password guessing without locking an account's owner out (no IO; the caller passes
//! the time).
//!
//! - Every attempt is counted *before* its password is checked, as a failure until it succeeds: simultaneous guesses
//!   cannot all slip in under a limit.
//! - Per account **and address**: `free_failures` wrong passwords, then each further attempt from that address for
//!   that account waits twice as long as the one before (1 s, 2 s, 4 s … up to `max_backoff`). The owner, on
//!   another address, is not slowed by an attacker's failures.
//! - Per address, all accounts: at most `max_attempts_per_address` attempts per window (spraying one password over
//!   many e-mails).
//! - Per account, all addresses: once `guard_after` failures have been counted within the window (a guess from many
//!   addresses), attempts from browsers that have not logged into this account before share one slot per
//!   `guard_spacing`. A browser that has (it holds a trusted-device cookie for the account) is not held by this.
//!
//! So an attacker who knows an e-mail and has many addresses gets about one guess per `guard_spacing`; the owner on a
//! browser they logged in from before gets in at once with the right password; the owner on a new browser competes
//! for the shared slot (slow, never locked out for good).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    pub window: Duration,
    pub free_failures: u32,
    pub max_backoff: Duration,
    pub max_attempts_per_address: u32,
    pub guard_after: u32,
    pub guard_spacing: Duration,
}

/// An admitted attempt. Report its outcome with [`LoginThrottle::succeeded`]; one that is dropped unreported stays
/// counted as a failure.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct Attempt {
    account: String,
    addr: IpAddr,
    at: Instant,
}

#[derive(Debug, Default)]
struct Pair {
    /// Failures (and attempts still being checked) within the window.
    failures: VecDeque<Instant>,
}

/// Beyond this many tracked keys in a map, expired entries are swept before another is added.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
pub struct LoginThrottle {
    settings: ThrottleSettings,
    pairs: HashMap<(String, IpAddr), Pair>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    accounts: HashMap<String, VecDeque<Instant>>,
    /// When the next attempt from an untrusted browser may use a guarded account's shared slot.
    guarded_next: HashMap<String, Instant>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            pairs: HashMap::new(),
            addresses: HashMap::new(),
            accounts: HashMap::new(),
            guarded_next: HashMap::new(),
        }
    }

    /// Admits an attempt for `account` (lower-cased e-mail) from `addr`, or says how long to wait.
    pub fn admit(&mut self, account: &str, addr: IpAddr, trusted: bool, now: Instant) -> Result<Attempt, Duration> {
        let s = self.settings;
        self.sweep(now);
        let attempts = self.addresses.entry(addr).or_default();
        expire(attempts, now, s.window);
        if attempts.len() >= s.max_attempts_per_address as usize {
            return Err(until_oldest_expires(attempts, now, s.window));
        }
        let key = (account.to_string(), addr);
        let pair = self.pairs.entry(key).or_default();
        expire(&mut pair.failures, now, s.window);
        if pair.failures.len() >= s.free_failures as usize {
            let over = (pair.failures.len() - s.free_failures as usize + 1) as u32;
            let backoff = backoff(over, s.max_backoff);
            let last = pair.failures.back().copied().unwrap_or(now);
            let free_at = last + backoff;
            if now < free_at {
                return Err(free_at - now);
            }
        }
        let failures = self.accounts.entry(account.to_string()).or_default();
        expire(failures, now, s.window);
        if !trusted && failures.len() >= s.guard_after as usize {
            let next = self.guarded_next.entry(account.to_string()).or_insert(now);
            if now < *next {
                return Err(*next - now);
            }
            *next = now + s.guard_spacing;
        }
        // Counted now, as a failure until it succeeds.
        failures.push_back(now);
        pair.failures.push_back(now);
        attempts.push_back(now);
        Ok(Attempt { account: account.to_string(), addr, at: now })
    }

    /// The attempt's password was right: it no longer counts as a failure, and its pair starts afresh.
    pub fn succeeded(&mut self, attempt: Attempt) {
        self.pairs.remove(&(attempt.account.clone(), attempt.addr));
        if let Some(q) = self.accounts.get_mut(&attempt.account)
            && let Some(i) = q.iter().position(|t| *t == attempt.at)
        {
            q.remove(i);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let w = self.settings.window;
        let live = |q: &VecDeque<Instant>| q.back().is_some_and(|t| now.duration_since(*t) < w);
        if self.addresses.len() >= MAX_TRACKED {
            self.addresses.retain(|_, q| live(q));
        }
        if self.pairs.len() >= MAX_TRACKED {
            self.pairs.retain(|_, p| live(&p.failures));
        }
        if self.accounts.len() >= MAX_TRACKED {
            self.accounts.retain(|_, q| live(q));
        }
        if self.guarded_next.len() >= MAX_TRACKED {
            self.guarded_next.retain(|_, t| *t > now);
        }
    }
}

/// 1 s for the first attempt over the allowance, doubling after each, capped.
fn backoff(over: u32, cap: Duration) -> Duration {
    Duration::from_secs(1u64 << (over - 1).min(20)).min(cap)
}

fn expire(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

fn until_oldest_expires(q: &VecDeque<Instant>, now: Instant, window: Duration) -> Duration {
    q.front().map_or(Duration::ZERO, |t| window.saturating_sub(now.duration_since(*t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            window: Duration::from_secs(900),
            free_failures: 3,
            max_backoff: Duration::from_secs(60),
            max_attempts_per_address: 30,
            guard_after: 10,
            guard_spacing: Duration::from_secs(10),
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn simultaneous_guesses_count_before_any_is_checked() {
        let mut t = LoginThrottle::new(settings());
        let now = Instant::now();
        let admitted: Vec<_> = (0..10).filter_map(|_| t.admit("a@x.in", ip(1), false, now).ok()).collect();
        assert_eq!(admitted.len(), 3, "only the free allowance gets checked");
    }

    #[test]
    fn failures_from_one_address_back_off_doubling_while_the_owner_elsewhere_gets_in() {
        let mut t = LoginThrottle::new(settings());
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(t.admit("a@x.in", ip(1), false, t0).unwrap());
        }
        assert_eq!(t.admit("a@x.in", ip(1), false, t0), Err(Duration::from_secs(1)));
        let a = t.admit("a@x.in", ip(1), false, t0 + Duration::from_secs(1)).unwrap();
        drop(a);
        let at = t0 + Duration::from_secs(1);
        assert_eq!(t.admit("a@x.in", ip(1), false, at), Err(Duration::from_secs(2)));
        // The owner on their own address is not held by the attacker's failures.
        let owner = t.admit("a@x.in", ip(2), false, at).unwrap();
        t.succeeded(owner);
        // Capped backoff.
        let mut now = at;
        for _ in 0..10 {
            match t.admit("a@x.in", ip(1), false, now) {
                Ok(a) => drop(a),
                Err(wait) => {
                    assert!(wait <= Duration::from_secs(60));
                    now += wait;
                }
            }
        }
    }

    #[test]
    fn a_success_starts_the_pair_afresh() {
        let mut t = LoginThrottle::new(settings());
        let t0 = Instant::now();
        for _ in 0..2 {
            drop(t.admit("a@x.in", ip(1), false, t0).unwrap());
        }
        let ok = t.admit("a@x.in", ip(1), false, t0).unwrap();
        t.succeeded(ok);
        for _ in 0..3 {
            drop(t.admit("a@x.in", ip(1), false, t0).unwrap());
        }
    }

    #[test]
    fn an_account_guessed_from_many_addresses_is_spaced_except_for_trusted_browsers() {
        let mut t = LoginThrottle::new(settings());
        let t0 = Instant::now();
        for n in 0..10 {
            drop(t.admit("a@x.in", ip(n), false, t0).unwrap());
        }
        // Guarded: one untrusted attempt per 10 s for the account, whichever address.
        drop(t.admit("a@x.in", ip(20), false, t0).unwrap());
        assert_eq!(t.admit("a@x.in", ip(21), false, t0), Err(Duration::from_secs(10)));
        // The owner's browser that logged in before goes straight to the password check.
        let owner = t.admit("a@x.in", ip(22), true, t0).unwrap();
        t.succeeded(owner);
        assert!(t.admit("a@x.in", ip(21), false, t0 + Duration::from_secs(10)).is_ok());
        // Other accounts are not guarded.
        assert!(t.admit("b@x.in", ip(23), false, t0).is_ok());
    }

    #[test]
    fn one_address_spraying_many_accounts_is_capped() {
        let mut t = LoginThrottle::new(settings());
        let t0 = Instant::now();
        for n in 0..30 {
            drop(t.admit(&format!("u{n}@x.in"), ip(1), false, t0).unwrap());
        }
        assert_eq!(t.admit("v@x.in", ip(1), false, t0), Err(Duration::from_secs(900)));
        assert!(t.admit("v@x.in", ip(2), false, t0).is_ok());
    }

    #[test]
    fn counts_expire_with_the_window() {
        let mut t = LoginThrottle::new(settings());
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(t.admit("a@x.in", ip(1), false, t0).unwrap());
        }
        assert!(t.admit("a@x.in", ip(1), false, t0 + Duration::from_secs(900)).is_ok());
    }
}
