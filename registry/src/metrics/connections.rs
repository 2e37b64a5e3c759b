//! The connections this process holds: how many are open and from how many client addresses,
//! how many were refused at a limit, and how many were closed for sending no request in time.
//! Updated by [`crate::connections`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Families;

/// Why a connection was refused or closed early.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why a connection was refused right after accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.max_connections` were open.
    Total,
    /// `server.max_connections_per_address` were open from the client's address.
    PerAddress,
}

impl Refused {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "max_connections",
            Self::PerAddress => "max_connections_per_address",
        }
    }
}

/// Why a connection was closed by the server before the client was done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedOut {
    /// The TLS handshake did not complete in time.
    TlsHandshake,
    /// No complete request head arrived in time (HTTP/1.1: any request's; HTTP/2: the
    /// first's).
    RequestHead,
    /// An HTTP/2 connection had no request in progress for the idle timeout.
    Idle,
}

impl TimedOut {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsHandshake => "tls_handshake",
            Self::RequestHead => "request_head",
            Self::Idle => "idle",
        }
    }
}

/// The connection gauges and counters.
#[derive(Debug, Clone)]
pub struct ConnectionMetrics {
    open: Gauge,
    addresses: Gauge,
    accepted: Counter,
    refused: Family<ReasonLabel, Counter>,
    timed_out: Family<ReasonLabel, Counter>,
}

impl ConnectionMetrics {
    pub(super) fn register(families: &mut Families) -> Self {
        let open = Gauge::default();
        families.register(
            "berth_connections_open",
            "Client connections this process holds open (TLS handshakes included)",
            open.clone(),
        );
        let addresses = Gauge::default();
        families.register(
            "berth_connection_addresses",
            "Client addresses (IPv6: /64 networks) holding open connections",
            addresses.clone(),
        );
        let accepted = Counter::default();
        families.register(
            "berth_connections_accepted",
            "Client connections accepted within the limits",
            accepted.clone(),
        );
        // Every series from the start, so alerts see a zero rather than no data.
        let refused = Family::<ReasonLabel, Counter>::default();
        for r in [Refused::Total, Refused::PerAddress] {
            refused.get_or_create_owned(&ReasonLabel { reason: r.as_str() });
        }
        families.register(
            "berth_connections_refused",
            "Client connections closed right after accept, by the limit reached (max_connections, max_connections_per_address)",
            refused.clone(),
        );
        let timed_out = Family::<ReasonLabel, Counter>::default();
        for t in [
            TimedOut::TlsHandshake,
            TimedOut::RequestHead,
            TimedOut::Idle,
        ] {
            timed_out.get_or_create_owned(&ReasonLabel { reason: t.as_str() });
        }
        families.register(
            "berth_connections_timed_out",
            "Client connections closed for sending too little in time, by what was missing (tls_handshake, request_head, idle)",
            timed_out.clone(),
        );
        Self {
            open,
            addresses,
            accepted,
            refused,
            timed_out,
        }
    }

    /// A connection was admitted: `open` are open now, from `addresses` client addresses.
    pub fn admitted(&self, open: usize, addresses: usize) {
        self.accepted.inc();
        self.set(open, addresses);
    }

    /// A connection closed: `open` remain, from `addresses` client addresses.
    pub fn closed(&self, open: usize, addresses: usize) {
        self.set(open, addresses);
    }

    fn set(&self, open: usize, addresses: usize) {
        self.open.set(i64::try_from(open).unwrap_or(i64::MAX));
        self.addresses
            .set(i64::try_from(addresses).unwrap_or(i64::MAX));
    }

    /// A connection was refused at a limit.
    pub fn refused(&self, why: Refused) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }

    /// A connection was closed for sending too little in time.
    pub fn timed_out(&self, why: TimedOut) {
        self.timed_out
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }
}
