//! Bounds on the client connections one process serves, so that no client, signed in or
//! not, can hold connections, or the memory behind them, without limit (README "Limits"):
//!
//! - [`Admission`]: at most `server.max_connections` open at once, and at most
//!   `server.max_connections_per_address` from one client address. A connection beyond
//!   either is closed right after accept (plain HTTP first gets a bare `503`); the refusals
//!   are counted and logged at most once per [`REPORT_EVERY`].
//! - [`fd_budget`]: the open-file limit, raised to its hard maximum at start, lowers
//!   `max_connections` so that accepting never fails with "too many open files".
//! - [`Activity`]: hyper closes an HTTP/1.1 connection whose request head does not arrive
//!   within `server.header_read_timeout_secs`, but its HTTP/2 server has no such timer: a
//!   client could send the preface, or a HEADERS frame without END_HEADERS, and then nothing.
//!   `Activity` counts the requests of one HTTP/2 connection, so that `server` can close a
//!   connection whose first request does not arrive within the header timeout, or that has
//!   no request in progress for `server.idle_timeout_secs`.
//! - [`Settings`]: the per-connection settings, HTTP/2's included (streams, header list
//!   size, pings).
//!
//! Depends on `config` and `metrics`; `server` uses it for every accepted connection.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderValue;
use tokio::sync::watch;

use crate::config::{ServerConfig, TlsConfig};
use crate::metrics::{ConnectionMetrics, Refused, TimedOut};

/// The least time between two warnings about refused connections (each says how many were
/// refused since the last), so that a flood of refusals does not flood the log as well.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Open files kept for everything but client connections: the listeners, the database pool,
/// connections to object storage and webhook receivers, the runtime's own descriptors.
pub const RESERVED_FDS: u64 = 128;

/// How long a client may take to close an HTTP/2 connection after the server's GOAWAY once
/// no request is in progress on it (a live client answers the GOAWAY's ping in one round
/// trip); then the connection is dropped.
pub const GOAWAY_GRACE: Duration = Duration::from_secs(5);

/// The most header bytes one HTTP/2 request may carry (RFC 9113 section 6.5.2,
/// SETTINGS_MAX_HEADER_LIST_SIZE), as hyper's HTTP/1.1 side bounds a request head too.
pub const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// How every accepted connection is served.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time for a request head (HTTP/1.1: each; HTTP/2: the first).
    pub header_read_timeout: Duration,
    /// Time an HTTP/2 connection may have no request in progress.
    pub idle_timeout: Duration,
    /// Requests in progress at once on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Interval (and timeout) of HTTP/2 pings; `None`: no pings.
    pub http2_keepalive: Option<Duration>,
    /// The `Strict-Transport-Security` value for responses over TLS; `None`: no header.
    pub hsts: Option<HeaderValue>,
}

impl Settings {
    /// The settings `[server]` and `[tls]` give.
    pub fn from_config(server: &ServerConfig, tls: &TlsConfig) -> Self {
        let secs = Duration::from_secs;
        Self {
            header_read_timeout: secs(server.header_read_timeout_secs.max(1)),
            idle_timeout: secs(server.idle_timeout_secs.max(1)),
            http2_max_concurrent_streams: server.http2_max_concurrent_streams.max(1),
            http2_keepalive: (server.http2_keepalive_interval_secs > 0)
                .then(|| secs(server.http2_keepalive_interval_secs)),
            hsts: (tls.enabled() && tls.hsts_max_age_secs > 0).then(|| {
                // Digits only: always a valid header value.
                HeaderValue::from_str(&format!("max-age={}", tls.hsts_max_age_secs))
                    .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
            }),
        }
    }

    /// An HTTP/2 server with these settings.
    pub fn http2(&self) -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
        let mut b = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        b.timer(hyper_util::rt::TokioTimer::new())
            // Grow flow-control windows with the measured bandwidth-delay product, so a blob
            // upload is not throttled to the protocol's 64 KiB default window per round trip.
            .adaptive_window(true)
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE)
            .keep_alive_interval(self.http2_keepalive)
            .keep_alive_timeout(self.http2_keepalive.unwrap_or(Duration::from_secs(20)));
        b
    }
}

/// A client address as the per-address limit counts it: an IPv4 address (also when mapped
/// into IPv6), or an IPv6 /64 network, which one subscriber usually has whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(Ipv6Addr::from_bits(
                    v6.to_bits() & !u128::from(u64::MAX),
                ))),
            },
        }
    }
}

/// Counts open connections against the limits.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Limits>);

#[derive(Debug)]
struct Limits {
    max_total: usize,
    /// 0: no per-address limit.
    max_per_address: usize,
    metrics: ConnectionMetrics,
    state: Mutex<Open>,
}

/// What is open now. An address has an entry only while it holds a connection, so there are
/// never more entries than `max_total`.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<ClientKey, usize>,
    /// Refusals not yet logged, and when the last were.
    unreported: u64,
    reported: Option<Instant>,
}

impl Admission {
    /// Limits of `max_total` connections, and `max_per_address` from one address (0: none).
    pub fn new(max_total: usize, max_per_address: usize, metrics: ConnectionMetrics) -> Self {
        Self(Arc::new(Limits {
            max_total,
            max_per_address,
            metrics,
            state: Mutex::new(Open::default()),
        }))
    }

    /// Counts a connection from `peer` until the returned guard drops, or says which limit
    /// it is beyond.
    pub fn admit(&self, peer: IpAddr) -> Result<Admitted, Refused> {
        let key = ClientKey::of(peer);
        let limits = &self.0;
        let mut open = limits.state.lock().unwrap_or_else(PoisonError::into_inner);
        let from_peer = open.per_address.get(&key).copied().unwrap_or(0);
        let refused = if open.total >= limits.max_total {
            Some(Refused::Total)
        } else if limits.max_per_address > 0 && from_peer >= limits.max_per_address {
            Some(Refused::PerAddress)
        } else {
            None
        };
        if let Some(why) = refused {
            limits.metrics.refused(why);
            open.unreported += 1;
            let now = Instant::now();
            if open
                .reported
                .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
            {
                let refused = std::mem::take(&mut open.unreported);
                open.reported = Some(now);
                drop(open);
                tracing::warn!(
                    %peer,
                    limit = why.as_str(),
                    refused,
                    "connection limit reached: refusing connections"
                );
            }
            return Err(why);
        }
        open.total += 1;
        *open.per_address.entry(key).or_default() += 1;
        limits.metrics.admitted(open.total, open.per_address.len());
        Ok(Admitted {
            limits: self.0.clone(),
            key,
        })
    }
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    limits: Arc<Limits>,
    key: ClientKey,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Entry::Occupied(mut e) = open.per_address.entry(self.key) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        // A burst's table does not stay allocated once it is mostly empty.
        let (len, capacity) = (open.per_address.len(), open.per_address.capacity());
        if capacity > 64 && len * 4 < capacity {
            open.per_address.shrink_to(len * 2);
        }
        self.limits
            .metrics
            .closed(open.total, open.per_address.len());
    }
}

/// The open-file limit and the connections it leaves room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft limit on open files when berth started (`None`: unlimited).
    pub started_with: Option<u64>,
    /// The soft limit now, after raising it to the hard one (`None`: unlimited).
    pub limit: Option<u64>,
    /// `server.max_connections`, lowered to fit the limit.
    pub max_connections: usize,
}

/// Raises the soft limit on open files to the hard one (service managers start programs at
/// a soft limit of 1024 for the sake of `select()`, which tokio does not use) and returns
/// how many of `configured` connections fit under it ([`connections_within`]).
pub fn fd_budget(configured: u32) -> FdBudget {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let mut limit = before.current;
    if let (Some(current), Some(maximum)) = (before.current, before.maximum)
        && current < maximum
    {
        let raised = rustix::process::Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = Some(maximum),
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    FdBudget {
        started_with: before.current,
        limit,
        max_connections: connections_within(limit, configured),
    }
}

/// How many of `configured` connections fit under an open-file limit of `limit`: each may
/// hold its socket and one more descriptor (a blob file being read or written, or a
/// connection to object storage), beside [`RESERVED_FDS`]. At least 1.
pub fn connections_within(limit: Option<u64>, configured: u32) -> usize {
    let configured = u64::from(configured);
    let fit = limit.map_or(configured, |l| l.saturating_sub(RESERVED_FDS) / 2);
    usize::try_from(configured.min(fit).max(1)).unwrap_or(usize::MAX)
}

/// The requests of one HTTP/2 connection: how many started, how many are in progress.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    started: u64,
    in_progress: usize,
}

/// Tracks the requests of one HTTP/2 connection, for [`Activity::expired`].
#[derive(Debug, Clone)]
pub struct Activity(Arc<watch::Sender<Progress>>);

impl Default for Activity {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(Progress::default())))
    }
}

impl Activity {
    /// Marks a request in progress until the returned guard drops: keep it with the response
    /// body, so a download in progress counts.
    pub fn start(&self) -> InProgress {
        self.0.send_modify(|p| {
            p.started += 1;
            p.in_progress += 1;
        });
        InProgress(self.0.clone())
    }

    /// Completes when the connection has had its time: no request arrived within `first`,
    /// or later no request was in progress for `idle`.
    pub async fn expired(&self, first: Duration, idle: Duration) -> TimedOut {
        let mut changes = self.0.subscribe();
        let arrived = tokio::time::timeout(first, changes.wait_for(|p| p.started > 0))
            .await
            .is_ok();
        if !arrived {
            return TimedOut::RequestHead;
        }
        self.quiet_for(idle).await;
        TimedOut::Idle
    }

    /// Completes once no request has been in progress for `quiet`.
    pub async fn quiet_for(&self, quiet: Duration) {
        let mut changes = self.0.subscribe();
        loop {
            // The count of started requests tells apart a quiet connection from one whose
            // requests come and go between two looks.
            let Ok(started) = changes
                .wait_for(|p| p.in_progress == 0)
                .await
                .map(|p| p.started)
            else {
                return;
            };
            let next = changes.wait_for(|p| p.started != started);
            let woke = tokio::time::timeout(quiet, next).await.is_ok();
            if !woke {
                return;
            }
        }
    }
}

/// A request in progress ([`Activity::start`]).
#[derive(Debug)]
pub struct InProgress(Arc<watch::Sender<Progress>>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0
            .send_modify(|p| p.in_progress = p.in_progress.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_address: usize) -> (Admission, crate::metrics::Metrics) {
        let metrics = crate::metrics::Metrics::new("0");
        (
            Admission::new(total, per_address, metrics.connections.clone()),
            metrics,
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sample(m: &crate::metrics::Metrics, series: &str) -> Option<f64> {
        let text = m.encode().unwrap();
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    #[test]
    fn the_total_and_per_address_limits_hold_and_free_up() {
        let (a, m) = admission(3, 2);
        let one = a.admit(ip("10.0.0.1")).unwrap();
        let two = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.1")).unwrap_err(), Refused::PerAddress);
        let three = a.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.3")).unwrap_err(), Refused::Total);
        assert_eq!(sample(&m, "berth_connections_open"), Some(3.0));
        assert_eq!(sample(&m, "berth_connection_addresses"), Some(2.0));
        drop(one);
        let _again = a.admit(ip("10.0.0.1")).unwrap();
        drop((two, three));
        assert_eq!(sample(&m, "berth_connections_open"), Some(1.0));
        assert_eq!(sample(&m, "berth_connection_addresses"), Some(1.0));
        for (reason, n) in [
            ("max_connections", 1.0),
            ("max_connections_per_address", 1.0),
        ] {
            let series = format!("berth_connections_refused_total{{reason=\"{reason}\"}}");
            assert_eq!(sample(&m, &series), Some(n), "{series}");
        }
        assert_eq!(sample(&m, "berth_connections_accepted_total"), Some(4.0));
    }

    #[test]
    fn no_per_address_limit_when_zero() {
        let (a, _m) = admission(100, 0);
        let held: Vec<_> = (0..100).map(|_| a.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(a.admit(ip("10.0.0.1")).unwrap_err(), Refused::Total);
        drop(held);
    }

    #[test]
    fn the_address_table_empties_and_shrinks() {
        let (a, _m) = admission(10_000, 1);
        let held: Vec<_> = (0..5000u32)
            .map(|i| a.admit(IpAddr::from(i.to_be_bytes())).unwrap())
            .collect();
        assert_eq!(a.0.state.lock().unwrap().per_address.len(), 5000);
        drop(held);
        let open = a.0.state.lock().unwrap();
        assert_eq!((open.total, open.per_address.len()), (0, 0));
        assert!(
            open.per_address.capacity() <= 64,
            "{}",
            open.per_address.capacity()
        );
    }

    #[test]
    fn ipv6_addresses_count_by_64_network_and_mapped_ipv4_as_ipv4() {
        let (a, _m) = admission(100, 1);
        let _one = a.admit(ip("2001:db8:1:2:aaaa::1")).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8:1:2:bbbb::9")).unwrap_err(),
            Refused::PerAddress
        );
        let _other_net = a.admit(ip("2001:db8:1:3::1")).unwrap();
        let _v4 = a.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            a.admit(ip("::ffff:192.0.2.7")).unwrap_err(),
            Refused::PerAddress
        );
    }

    #[test]
    fn connections_fit_under_the_open_file_limit() {
        assert_eq!(connections_within(None, 10_000), 10_000);
        assert_eq!(connections_within(Some(1 << 20), 10_000), 10_000);
        assert_eq!(connections_within(Some(20_000), 10_000), 9936);
        assert_eq!(connections_within(Some(1024), 10_000), 448);
        assert_eq!(connections_within(Some(100), 10_000), 1);
    }

    #[test]
    fn hsts_only_over_tls_and_not_at_zero() {
        let server = ServerConfig::default();
        let mut tls = TlsConfig::default();
        assert!(Settings::from_config(&server, &tls).hsts.is_none());
        tls.cert_file = "cert.pem".into();
        tls.key_file = "key.pem".into();
        let hsts = Settings::from_config(&server, &tls).hsts.unwrap();
        assert_eq!(hsts, "max-age=31536000");
        tls.hsts_max_age_secs = 0;
        assert!(Settings::from_config(&server, &tls).hsts.is_none());
    }

    // Real time (tokio's paused clock needs its test-util feature): short timeouts, wide
    // margins.
    #[tokio::test]
    async fn a_connection_without_a_first_request_expires() {
        let activity = Activity::default();
        let why = activity
            .expired(Duration::from_millis(50), Duration::from_secs(60))
            .await;
        assert_eq!(why, TimedOut::RequestHead);
    }

    #[tokio::test]
    async fn a_connection_expires_once_idle_not_while_a_request_is_in_progress() {
        let ms = Duration::from_millis;
        let activity = Activity::default();
        let request = activity.start();
        let watch = tokio::spawn({
            let activity = activity.clone();
            async move { activity.expired(ms(50), ms(1000)).await }
        });
        // A long request holds the connection open.
        tokio::time::sleep(ms(1500)).await;
        assert!(!watch.is_finished());
        drop(request);
        // Short requests, each beginning and ending between two looks of the watcher, keep
        // it from going idle too.
        for _ in 0..5 {
            tokio::time::sleep(ms(300)).await;
            drop(activity.start());
        }
        assert!(!watch.is_finished());
        let quiet_from = std::time::Instant::now();
        assert_eq!(watch.await.unwrap(), TimedOut::Idle);
        assert!(quiet_from.elapsed() >= ms(500));
    }
}
