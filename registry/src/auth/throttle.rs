//! Slows down password guessing: after a few failed logins for one account or from one client
//! address, further attempts are refused for a while, doubling with each further failure.
//!
//! Kept in process memory, so with several replicas each counts its own failures (an attacker
//! spreading guesses over N replicas gets N times the budget, still a handful per minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; beyond this, idle entries are dropped first.
const MAX_ENTRIES: usize = 100_000;

/// Failure counts per key (`user:NAME`, `addr:IP`).
#[derive(Debug)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
    free_failures: u32,
    window: Duration,
    lockout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

impl Throttle {
    /// Allows `free_failures` failures per key within `window`; each failure beyond locks the
    /// key for `lockout`, doubled per further failure (capped at 64 times).
    pub fn new(free_failures: u32, window: Duration, lockout: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            free_failures,
            window,
            lockout,
        }
    }

    /// `Err(wait)` when any of `keys` is locked, with how long until it opens.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let entries = self.lock();
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k))
            .filter_map(|e| self.locked_until(e).checked_duration_since(now))
            .max();
        match wait {
            Some(w) if !w.is_zero() => Err(w),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt against every key.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let window = self.window.max(self.lockout * 64);
            entries.retain(|_, e| now.duration_since(e.last) < window);
        }
        for key in keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.duration_since(e.last) > self.window && self.locked_until(e) <= now {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }

    fn locked_until(&self, e: &Entry) -> Instant {
        match e.failures.checked_sub(self.free_failures) {
            None | Some(0) => e.last,
            Some(over) => e.last + self.lockout * (1u32 << (over - 1).min(6)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves counts that are still valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_allowance_lock_the_key_and_success_clears_it() {
        let t = Throttle::new(3, Duration::from_secs(60), Duration::from_secs(10));
        let keys = vec!["user:alice".to_owned(), "addr:1.2.3.4".to_owned()];
        for _ in 0..3 {
            assert!(t.check(&keys).is_ok());
            t.failed(&keys);
        }
        assert!(t.check(&keys).is_ok(), "three failures are free");
        t.failed(&keys);
        let wait = t.check(&keys).expect_err("locked");
        assert!(wait <= Duration::from_secs(10) && wait > Duration::from_secs(8));
        t.failed(&keys);
        assert!(t.check(&keys).expect_err("locked") > Duration::from_secs(15));
        // The address stays locked when the account succeeds elsewhere.
        t.succeeded("user:alice");
        assert!(t.check(&keys[..1]).is_ok());
        assert!(t.check(&keys[1..]).is_err());
    }
}
