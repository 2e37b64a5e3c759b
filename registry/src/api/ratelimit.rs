//! Rate limits: at most N requests a minute per client address and per account, for each
//! class of request (pulls, pushes, token requests), answered with `429 TOOMANYREQUESTS` and
//! `Retry-After`.
//!
//! Each limit is a generic cell rate algorithm (GCRA): a key may spend its whole minute's
//! budget at once, then one request every `60 s / N`. The state is one instant per key, kept
//! in each process's memory in a map bounded by least-recent use, so memory stays fixed
//! whatever the number of clients (a key pushed out of a full map starts afresh). With
//! several replicas behind a load balancer each counts on its own: a client spread over R
//! replicas gets up to R times the budget. Putting a shared counter in the database would
//! add a write to every pull.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lru::LruCache;

use super::error::{ApiError, ErrorCode};
use crate::config::RateLimitConfig;

/// Keys remembered per limit.
const MAX_KEYS: usize = 100_000;

/// What a request does, for its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reads of the registry API (`GET`, `HEAD`).
    Pull,
    /// Writes: uploads, manifest pushes, deletes.
    Push,
    /// Token requests (`/token`).
    Token,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Pull => "pull",
            Class::Push => "push",
            Class::Token => "token",
        }
    }
}

/// One limit: `per_minute` requests a minute per key.
#[derive(Debug)]
struct Limiter<K: Hash + Eq> {
    per_minute: u32,
    /// Time between two requests at the steady rate.
    emission: Duration,
    /// How far ahead of now a key's next allowed time may be: the burst.
    tolerance: Duration,
    /// Each key's theoretical arrival time: when its budget is whole again.
    next: Mutex<LruCache<K, Instant>>,
}

impl<K: Hash + Eq> Limiter<K> {
    fn new(per_minute: u32) -> Option<Self> {
        if per_minute == 0 {
            return None;
        }
        let emission = Duration::from_secs(60) / per_minute;
        Some(Self {
            per_minute,
            emission,
            tolerance: emission * (per_minute - 1),
            next: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_KEYS).unwrap_or(NonZeroUsize::MIN),
            )),
        })
    }

    /// Takes one request from `key`'s budget, or says how long until one is available.
    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let tat = next.get(&key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        next.put(key, tat + self.emission);
        Ok(())
    }
}

/// The limits of one class.
#[derive(Debug)]
struct ClassLimits {
    per_address: Option<Limiter<IpAddr>>,
    per_account: Option<Limiter<String>>,
}

/// Every configured limit.
#[derive(Debug)]
pub struct RateLimits {
    pull: ClassLimits,
    push: ClassLimits,
    token: ClassLimits,
}

impl RateLimits {
    /// The limits of `config`, or `None` when it sets none.
    pub fn new(config: &RateLimitConfig) -> Option<Self> {
        let class = |address: u32, account: u32| ClassLimits {
            per_address: Limiter::new(address),
            per_account: Limiter::new(account),
        };
        let limits = Self {
            pull: class(config.pull_per_address, config.pull_per_account),
            push: class(config.push_per_address, config.push_per_account),
            token: class(config.token_per_address, config.token_per_account),
        };
        let any = [&limits.pull, &limits.push, &limits.token]
            .iter()
            .any(|c| c.per_address.is_some() || c.per_account.is_some());
        any.then_some(limits)
    }

    fn of(&self, class: Class) -> &ClassLimits {
        match class {
            Class::Pull => &self.pull,
            Class::Push => &self.push,
            Class::Token => &self.token,
        }
    }

    /// Counts a request from `address`, or refuses it.
    pub fn check_address(&self, class: Class, address: IpAddr) -> Result<(), Refusal> {
        let Some(limiter) = &self.of(class).per_address else {
            return Ok(());
        };
        limiter
            .take(address, Instant::now())
            .map_err(|wait| Refusal {
                class,
                who: format!("address {address}"),
                per_minute: limiter.per_minute,
                wait,
            })
    }

    /// Counts a request by `account`, or refuses it.
    pub fn check_account(&self, class: Class, account: &str) -> Result<(), Refusal> {
        let Some(limiter) = &self.of(class).per_account else {
            return Ok(());
        };
        limiter
            .take(account.to_owned(), Instant::now())
            .map_err(|wait| Refusal {
                class,
                who: format!("account {account}"),
                per_minute: limiter.per_minute,
                wait,
            })
    }
}

/// A request over a limit: answered `429 TOOMANYREQUESTS` with `Retry-After`.
#[derive(Debug)]
pub struct Refusal {
    class: Class,
    /// `address A` or `account N`.
    who: String,
    per_minute: u32,
    wait: Duration,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // Whole seconds, rounded up: a client retrying at once would be refused again.
        let secs = self.wait.as_millis().div_ceil(1000).max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            format!(
                "too many {} requests from {}: at most {} a minute; retry in {secs} s",
                self.class.name(),
                self.who,
                self.per_minute
            ),
        )
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_budget_at_once_then_the_steady_rate() {
        let limiter = Limiter::new(6).expect("limit");
        let t0 = Instant::now();
        for _ in 0..6 {
            assert_eq!(limiter.take("k", t0), Ok(()));
        }
        // The seventh waits one emission interval (10 s).
        assert_eq!(limiter.take("k", t0), Err(Duration::from_secs(10)));
        // Other keys have their own budget.
        assert_eq!(limiter.take("other", t0), Ok(()));
        // After 10 s one more request is allowed, and only one.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(limiter.take("k", t1), Ok(()));
        assert!(limiter.take("k", t1).is_err());
        // After a quiet minute the whole budget is back.
        let t2 = t1 + Duration::from_secs(70);
        for _ in 0..6 {
            assert_eq!(limiter.take("k", t2), Ok(()));
        }
        assert!(limiter.take("k", t2).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(Limiter::<String>::new(0).is_none());
        assert!(RateLimits::new(&RateLimitConfig::default()).is_none());
    }

    #[test]
    fn refusals_carry_retry_after_in_whole_seconds() {
        let r = Refusal {
            class: Class::Pull,
            who: "address 127.0.0.1".into(),
            per_minute: 60,
            wait: Duration::from_millis(1200),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
