//! Prometheus metrics: the families berth exposes at `/metrics`, in the OpenMetrics text
//! format.
//!
//! One [`Metrics`] is created at start-up and shared (`Arc`) with the HTTP middleware, the
//! upload dispatcher, the `/metrics` endpoint and the scheduled passes in `server`. Counters
//! and the in-flight gauge describe this process since it started (sum them over replicas);
//! the storage gauges describe the whole registry (every replica reports the same values) and
//! are read from the database when scraped, at most once per [`storage::SAMPLE_TTL`].
//!
//! Every label value comes from a small fixed set (route names, methods, statuses, outcomes),
//! never from a path, repository or tag, so the number of series stays bounded.
//!
//! Depends on `service` (the reports of passes, the usage summary) and `prometheus-client`.

mod connections;
mod logins;
mod passes;
mod scans;
mod storage;
mod trust;
mod vuln_policy;

pub use connections::{ConnectionMetrics, Refused, TimedOut};

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as Families;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request duration buckets, seconds: manifests and small blobs take
/// milliseconds, layer uploads can take minutes.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A request's endpoint, method and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// A request's endpoint and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteMethod {
    route: &'static str,
    method: &'static str,
}

/// A request's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// How something ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The running build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// A histogram of request durations.
type DurationFamily = Family<RouteMethod, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// How a webhook delivery attempt ended (the worker in `serve` reports each pass through
/// [`Metrics::webhook_deliveries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The endpoint answered with a 2xx status.
    Delivered,
    /// The attempt failed (connection error, timeout or non-2xx status) and will be retried.
    Failed,
    /// The attempt failed and was the last one: the event is dropped.
    Dropped,
}

impl WebhookOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

/// One finished HTTP request, as the middleware saw it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest {
    /// The endpoint's name ([`crate::api::RouteName`]).
    pub route: &'static str,
    /// Its method, as [`method_label`] names it.
    pub method: &'static str,
    /// The response status.
    pub status: u16,
    /// Time from the request's arrival to the response head.
    pub duration: Duration,
    /// Request body bytes received.
    pub bytes_in: u64,
}

/// Every metric family berth exposes.
#[derive(Debug)]
pub struct Metrics {
    families: Families,
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
    request_bytes: Family<RouteLabel, Counter>,
    response_bytes: Family<RouteLabel, Counter>,
    uploads_in_flight: Gauge,
    webhook_deliveries: Family<OutcomeLabel, Counter>,
    storage: storage::StorageGauges,
    /// Scheduled garbage-collection passes.
    pub gc: passes::GcMetrics,
    /// Scheduled scrub passes.
    pub scrub: passes::ScrubMetrics,
    /// Scheduled retention runs.
    pub retention: passes::RetentionMetrics,
    /// The login throttle's tables.
    pub logins: logins::LoginGauges,
    /// Client connections: open, refused, timed out.
    pub connections: ConnectionMetrics,
    /// Signature verdicts and trust policy refusals.
    pub trust: trust::TrustMetrics,
    /// Image inventories.
    pub scans: scans::ScanMetrics,
    /// Pulls vulnerability policies refused.
    pub vuln_policy: vuln_policy::VulnPolicyMetrics,
}

impl Metrics {
    /// Every family registered, all at zero, and `berth_build_info{version}` at 1.
    pub fn new(version: &'static str) -> Self {
        let mut families = Families::default();
        let requests = Family::<RequestLabels, Counter>::default();
        families.register(
            "berth_http_requests",
            "HTTP requests answered, by endpoint, method and status",
            requests.clone(),
        );
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        families.register(
            "berth_http_request_duration_seconds",
            "Time from a request's arrival to its response head (streamed bodies continue after it), by endpoint and method",
            durations.clone(),
        );
        let request_bytes = Family::<RouteLabel, Counter>::default();
        families.register(
            "berth_http_request_bytes",
            "Request body bytes received, by endpoint",
            request_bytes.clone(),
        );
        let response_bytes = Family::<RouteLabel, Counter>::default();
        families.register(
            "berth_http_response_bytes",
            "Response body bytes sent, by endpoint (counted as they are sent)",
            response_bytes.clone(),
        );
        let uploads_in_flight = Gauge::default();
        families.register(
            "berth_upload_requests_in_flight",
            "Blob upload requests (POST, PATCH, PUT) this process is serving right now",
            uploads_in_flight.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabel, Counter>::default();
        for outcome in [
            WebhookOutcome::Delivered,
            WebhookOutcome::Failed,
            WebhookOutcome::Dropped,
        ] {
            webhook_deliveries.get_or_create_owned(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        families.register(
            "berth_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, failed, dropped)",
            webhook_deliveries.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build.get_or_create(&VersionLabel { version }).set(1);
        families.register(
            "berth_build_info",
            "The running berth version (always 1)",
            build,
        );
        let storage = storage::StorageGauges::register(&mut families);
        let gc = passes::GcMetrics::register(&mut families);
        let scrub = passes::ScrubMetrics::register(&mut families);
        let retention = passes::RetentionMetrics::register(&mut families);
        let logins = logins::LoginGauges::register(&mut families);
        let connections = ConnectionMetrics::register(&mut families);
        let trust = trust::TrustMetrics::register(&mut families);
        let scans = scans::ScanMetrics::register(&mut families);
        let vuln_policy = vuln_policy::VulnPolicyMetrics::register(&mut families);
        Self {
            families,
            requests,
            durations,
            request_bytes,
            response_bytes,
            uploads_in_flight,
            webhook_deliveries,
            storage,
            gc,
            scrub,
            retention,
            logins,
            connections,
            trust,
            scans,
            vuln_policy,
        }
    }

    /// Records a request once its response head is ready.
    pub fn http_request(&self, r: &HttpRequest) {
        self.requests
            .get_or_create(&RequestLabels {
                route: r.route,
                method: r.method,
                status: r.status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteMethod {
                route: r.route,
                method: r.method,
            })
            .observe(r.duration.as_secs_f64());
        self.request_bytes
            .get_or_create(&RouteLabel { route: r.route })
            .inc_by(r.bytes_in);
    }

    /// The counter of response bytes sent for `route`, for a body that counts its bytes as
    /// they go out.
    pub fn response_bytes(&self, route: &'static str) -> Counter {
        self.response_bytes
            .get_or_create_owned(&RouteLabel { route })
    }

    /// Counts an upload request in flight until the returned guard is dropped.
    pub fn upload_in_flight(&self) -> InFlight {
        self.uploads_in_flight.inc();
        InFlight(self.uploads_in_flight.clone())
    }

    /// Records one webhook delivery attempt (for the webhook sender).
    pub fn webhook_delivery(&self, outcome: WebhookOutcome) {
        self.webhook_deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Records the attempts of one delivery pass.
    pub fn webhook_deliveries(&self, tally: &crate::service::webhooks::DeliveryTally) {
        for (outcome, n) in [
            (WebhookOutcome::Delivered, tally.delivered),
            (WebhookOutcome::Failed, tally.failed),
            (WebhookOutcome::Dropped, tally.dropped),
        ] {
            self.webhook_deliveries
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.as_str(),
                })
                .inc_by(u64::from(n));
        }
    }

    /// Refreshes the storage gauges from `registry` if they are older than
    /// [`storage::SAMPLE_TTL`]. Concurrent scrapes wait for one query instead of each sending
    /// their own; a failed query keeps the previous values (and counts the failure).
    pub async fn sample_storage(&self, registry: &crate::service::Registry) {
        self.storage.refresh(registry).await;
        self.trust.set(&registry.trust_counts());
        self.vuln_policy.set(registry.vuln_refused_pulls());
        self.scans.refresh(registry).await;
    }

    /// Records the end of an image inventory attempt (for the scan workers).
    pub fn scan_ended(&self, end: crate::service::scanner::ScanEnd, took: Duration) {
        self.scans.ended(end, took);
    }

    /// The exposition: every family, then `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.families)?;
        Ok(out)
    }
}

/// Keeps an in-flight gauge raised while alive.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The label value of a method: the standard ones by name, anything else `other` (a client
/// may send any token as a method, which must not create a series each).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A gauge holding a float (timestamps, durations).
type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds since the Unix epoch, now.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `series` (name and labels exactly as encoded).
    pub(super) fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = Metrics::new("1.2.3");
        let request = HttpRequest {
            route: "manifest_get",
            method: method_label(&Method::GET),
            status: 404,
            duration: Duration::from_millis(30),
            bytes_in: 0,
        };
        m.http_request(&request);
        m.http_request(&request);
        m.http_request(&HttpRequest {
            route: "upload_patch",
            method: "PATCH",
            status: 202,
            duration: Duration::from_secs(2),
            bytes_in: 1000,
        });
        m.response_bytes("manifest_get").inc_by(70);
        let text = m.encode().unwrap();
        let get = r#"route="manifest_get",method="GET""#;
        assert_eq!(
            sample(
                &text,
                &format!("berth_http_requests_total{{{get},status=\"404\"}}")
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("berth_http_request_duration_seconds_count{{{get}}}")
            ),
            Some(2.0)
        );
        // 30 ms falls in the 50 ms bucket, not in the 25 ms one.
        for (le, count) in [("0.025", 0.0), ("0.05", 2.0), ("+Inf", 2.0)] {
            assert_eq!(
                sample(
                    &text,
                    &format!("berth_http_request_duration_seconds_bucket{{le=\"{le}\",{get}}}")
                ),
                Some(count),
                "{le}: {text}"
            );
        }
        assert_eq!(
            sample(
                &text,
                r#"berth_http_request_bytes_total{route="upload_patch"}"#
            ),
            Some(1000.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"berth_http_response_bytes_total{route="manifest_get"}"#
            ),
            Some(70.0)
        );
        assert_eq!(
            sample(&text, r#"berth_build_info{version="1.2.3"}"#),
            Some(1.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn known_outcomes_start_at_zero() {
        let text = Metrics::new("0").encode().unwrap();
        for series in [
            r#"berth_webhook_deliveries_total{outcome="dropped"}"#,
            r#"berth_gc_passes_total{outcome="failure"}"#,
            r#"berth_scrub_passes_total{outcome="success"}"#,
            r#"berth_scrub_findings_total{problem="corrupt"}"#,
            r#"berth_retention_passes_total{outcome="success"}"#,
            "berth_storage_blob_bytes",
            "berth_connections_open",
            r#"berth_connections_refused_total{reason="max_connections_per_address"}"#,
            r#"berth_connections_timed_out_total{reason="idle"}"#,
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series}: {text}");
        }
    }

    #[test]
    fn odd_methods_share_one_label() {
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }

    #[test]
    fn the_upload_gauge_falls_when_the_guard_drops() {
        let m = Metrics::new("0");
        let one = m.upload_in_flight();
        let two = m.upload_in_flight();
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, "berth_upload_requests_in_flight"), Some(2.0));
        drop(one);
        drop(two);
        let text = m.encode().unwrap();
        assert_eq!(sample(&text, "berth_upload_requests_in_flight"), Some(0.0));
    }

    #[test]
    fn webhook_deliveries_are_counted_by_outcome() {
        let m = Metrics::new("0");
        m.webhook_delivery(WebhookOutcome::Delivered);
        m.webhook_delivery(WebhookOutcome::Failed);
        m.webhook_delivery(WebhookOutcome::Failed);
        m.webhook_delivery(WebhookOutcome::Dropped);
        let text = m.encode().unwrap();
        for (outcome, n) in [("delivered", 1.0), ("failed", 2.0), ("dropped", 1.0)] {
            assert_eq!(
                sample(
                    &text,
                    &format!("berth_webhook_deliveries_total{{outcome=\"{outcome}\"}}")
                ),
                Some(n),
                "{text}"
            );
        }
    }
}
