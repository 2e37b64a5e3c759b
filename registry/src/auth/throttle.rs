//! Slows down password guessing without handing an attacker a way to lock people out.
//!
//! Failed password logins are counted three ways, each with its own allowance within the
//! failure window; past it, attempts are refused for the lockout, doubling with each further
//! failure (at most 64 times):
//! - per **account and client address**: the strict limit. Someone guessing alice's password
//!   from one address is stopped after a few tries, and only there;
//! - per **client address** (an IPv6 address counts by its /64, which one subscriber usually
//!   holds whole): one address guessing many accounts;
//! - per **account**, from every address together: a soft limit, many times the first, against
//!   guessing spread over many addresses. It never applies to an address the account signed in
//!   from successfully within the window, so an attacker cannot lock a user out of where they
//!   work.
//!
//! Access-token secrets are not passwords: they are long random strings nobody can guess, so
//! they are never throttled and a robot or CI token keeps working while its owner's password
//! is under attack (see `Accounts::login`).
//!
//! Memory is bounded whatever clients send: keys are fixed-size keyed hashes of the account
//! name and address (never the raw text), each table keeps at most [`MAX_ENTRIES`] entries
//! (the least recently touched go first), and only failures for accounts that exist count
//! against an account. Counts are kept in process memory, so with several replicas each counts
//! its own (N replicas give an attacker N times the allowance, still a handful per minute).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest as _, Sha256};

/// Entries kept at most in each table: about 100 bytes each, so the throttle never holds more
/// than a few megabytes.
pub const MAX_ENTRIES: usize = 32_768;

/// A fixed-size key: 128 bits of a salted SHA-256, so collisions cannot be arranged.
type Key = [u8; 16];

/// How many failures a table allows within the window before locking.
#[derive(Debug, Clone, Copy)]
pub struct Allowances {
    /// Per account and client address.
    pub per_account_address: u32,
    /// Per client address, over every account.
    pub per_address: u32,
    /// Per account, over every address (soft: addresses that signed in are exempt).
    pub per_account: u32,
}

/// The failure counts.
#[derive(Debug)]
pub struct Throttle {
    salt: [u8; 32],
    allow: Allowances,
    window: Duration,
    lockout: Duration,
    pairs: Table,
    addresses: Table,
    accounts: Table,
    /// (account, address) pairs that signed in successfully, with when.
    known: Mutex<LruCache<Key, Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// One bounded table of failure counts.
#[derive(Debug)]
struct Table(Mutex<LruCache<Key, Entry>>);

impl Table {
    fn new() -> Self {
        Self(Mutex::new(LruCache::new(capacity())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Entry>> {
        // A panic while holding the lock leaves counts that are still valid.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn capacity() -> NonZeroUsize {
    NonZeroUsize::new(MAX_ENTRIES).unwrap_or(NonZeroUsize::MIN)
}

/// One login attempt's keys: account and address together, the address, the account.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pair: Key,
    address: Key,
    account: Key,
}

impl Throttle {
    /// A throttle with the given allowances within `window`; each failure beyond an allowance
    /// locks for `lockout`, doubled per further failure (capped at 64 times).
    pub fn new(allow: Allowances, window: Duration, lockout: Duration) -> Self {
        let mut salt = [0u8; 32];
        // Without randomness the keys are still fixed-size; only their unpredictability goes.
        let _ = getrandom::fill(&mut salt);
        Self {
            salt,
            allow,
            window,
            lockout,
            pairs: Table::new(),
            addresses: Table::new(),
            accounts: Table::new(),
            known: Mutex::new(LruCache::new(capacity())),
        }
    }

    /// The keys of a login attempt for `account` (already checked to be a valid name) from
    /// `client`.
    pub fn attempt(&self, account: &str, client: IpAddr) -> Attempt {
        let address = address_bytes(client);
        Attempt {
            pair: self.key(b'p', &[account.as_bytes(), &address]),
            address: self.key(b'a', &[&address]),
            account: self.key(b'u', &[account.as_bytes()]),
        }
    }

    /// `Err(wait)` while the attempt is locked out, with how long until it opens.
    pub fn check(&self, attempt: &Attempt) -> Result<(), Duration> {
        let now = Instant::now();
        let mut wait = [
            self.wait(
                &self.pairs,
                &attempt.pair,
                self.allow.per_account_address,
                now,
            ),
            self.wait(
                &self.addresses,
                &attempt.address,
                self.allow.per_address,
                now,
            ),
        ]
        .into_iter()
        .flatten()
        .max();
        if !self.is_known(&attempt.pair, now) {
            let account = self.wait(
                &self.accounts,
                &attempt.account,
                self.allow.per_account,
                now,
            );
            wait = wait.max(account);
        }
        match wait {
            Some(w) if !w.is_zero() => Err(w),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; `account_exists` says whether to count it against the
    /// account too (names that are no account must not fill the account table).
    pub fn failed(&self, attempt: &Attempt, account_exists: bool) {
        let now = Instant::now();
        self.count(
            &self.pairs,
            attempt.pair,
            self.allow.per_account_address,
            now,
        );
        self.count(
            &self.addresses,
            attempt.address,
            self.allow.per_address,
            now,
        );
        if account_exists {
            self.count(&self.accounts, attempt.account, self.allow.per_account, now);
        }
    }

    /// Records a successful sign-in: the account's failures from that address are forgotten,
    /// and the address stays exempt from the account-wide limit for the window.
    pub fn succeeded(&self, attempt: &Attempt) {
        self.pairs.lock().pop(&attempt.pair);
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(attempt.pair, Instant::now());
    }

    /// How many entries each table holds (pairs, addresses, accounts, known), for tests and
    /// diagnostics.
    pub fn sizes(&self) -> [usize; 4] {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        [
            self.pairs.len(),
            self.addresses.len(),
            self.accounts.len(),
            known,
        ]
    }

    fn key(&self, kind: u8, parts: &[&[u8]]) -> Key {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update([kind]);
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&h.finalize()[..16]);
        key
    }

    fn is_known(&self, pair: &Key, now: Instant) -> bool {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known
            .peek(pair)
            .is_some_and(|at| now.duration_since(*at) < self.window.max(self.lockout))
    }

    fn wait(&self, table: &Table, key: &Key, free: u32, now: Instant) -> Option<Duration> {
        let entries = table.lock();
        let e = entries.peek(key)?;
        self.locked_until(e, free).checked_duration_since(now)
    }

    fn count(&self, table: &Table, key: Key, free: u32, now: Instant) {
        let mut entries = table.lock();
        let e = entries.get_or_insert_mut(key, || Entry {
            failures: 0,
            last: now,
        });
        // A quiet window starts the count afresh, but never shortens a lockout in force.
        if now.duration_since(e.last) > self.window && self.locked_until(e, free) <= now {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
    }

    fn locked_until(&self, e: &Entry, free: u32) -> Instant {
        match e.failures.checked_sub(free) {
            None | Some(0) => e.last,
            Some(over) => e.last + self.lockout * (1u32 << (over - 1).min(6)),
        }
    }
}

/// The address as the throttle counts it: IPv4 whole, IPv6 by its /64 (an IPv4-mapped
/// IPv6 address as the IPv4 address it is).
fn address_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(
            Allowances {
                per_account_address: 3,
                per_address: 6,
                per_account: 10,
            },
            Duration::from_secs(60),
            Duration::from_secs(10),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn failures_beyond_the_allowance_lock_the_pair_and_success_clears_it() {
        let t = throttle();
        let a = t.attempt("alice", ip("192.0.2.1"));
        for _ in 0..3 {
            assert!(t.check(&a).is_ok());
            t.failed(&a, true);
        }
        assert!(t.check(&a).is_ok(), "three failures are free");
        t.failed(&a, true);
        let wait = t.check(&a).expect_err("locked");
        assert!(wait <= Duration::from_secs(10) && wait > Duration::from_secs(8));
        t.failed(&a, true);
        assert!(t.check(&a).expect_err("locked") > Duration::from_secs(15));
        // The same account from another address is not locked by that.
        assert!(t.check(&t.attempt("alice", ip("198.51.100.7"))).is_ok());
        t.succeeded(&a);
        assert!(t.check(&a).is_ok());
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked_everywhere() {
        let t = throttle();
        for i in 0..7 {
            t.failed(&t.attempt(&format!("user{i}"), ip("192.0.2.1")), false);
        }
        assert!(t.check(&t.attempt("someone", ip("192.0.2.1"))).is_err());
        assert!(t.check(&t.attempt("someone", ip("192.0.2.2"))).is_ok());
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_one_address() {
        let t = throttle();
        for i in 0..7 {
            let addr = ip(&format!("2001:db8:1:2::{i:x}"));
            t.failed(&t.attempt(&format!("user{i}"), addr), false);
        }
        assert!(
            t.check(&t.attempt("x", ip("2001:db8:1:2:ffff::1")))
                .is_err()
        );
        assert!(t.check(&t.attempt("x", ip("2001:db8:1:3::1"))).is_ok());
    }

    #[test]
    fn distributed_guessing_locks_the_account_but_not_where_its_user_signed_in() {
        let t = throttle();
        let home = t.attempt("alice", ip("203.0.113.5"));
        t.succeeded(&home);
        for i in 0..11 {
            t.failed(&t.attempt("alice", ip(&format!("192.0.2.{i}"))), true);
        }
        assert!(
            t.check(&t.attempt("alice", ip("192.0.2.200"))).is_err(),
            "a new address is held back"
        );
        assert!(t.check(&home).is_ok(), "alice still signs in from home");
        // Failures for names that are no account never lock anything account-wide.
        for i in 0..11 {
            t.failed(&t.attempt("nobody", ip(&format!("198.51.100.{i}"))), false);
        }
        assert!(t.check(&t.attempt("nobody", ip("198.51.100.200"))).is_ok());
    }

    #[test]
    fn tables_stay_bounded_whatever_clients_send() {
        let t = throttle();
        for i in 0..(MAX_ENTRIES + 500) {
            let addr = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            t.failed(&t.attempt(&format!("n{i}"), addr), true);
        }
        let [pairs, addresses, accounts, _] = t.sizes();
        assert_eq!(pairs, MAX_ENTRIES);
        assert_eq!(addresses, MAX_ENTRIES);
        assert_eq!(accounts, MAX_ENTRIES);
    }
}
