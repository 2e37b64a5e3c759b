//! Gauges of what the whole registry stores and is receiving, read from the database when
//! `/metrics` is scraped: at most once per [`SAMPLE_TTL`], however many scrapers (or
//! replicas' scrapers hitting one replica) ask, so scraping never loads the database.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as Families;

use crate::service::Registry;
use crate::service::usage::UsageSummary;

/// How long a sample is served before the database is asked again.
pub const SAMPLE_TTL: Duration = Duration::from_secs(10);

/// The storage and upload-session gauges.
#[derive(Debug)]
pub(super) struct StorageGauges {
    repositories: Gauge,
    blobs: Gauge,
    blob_bytes: Gauge,
    manifests: Gauge,
    manifest_bytes: Gauge,
    upload_sessions: Gauge,
    upload_bytes: Gauge,
    errors: Counter,
    /// When the gauges were last refreshed (or a refresh last failed). Held across the
    /// query, so concurrent scrapes wait for it rather than query too.
    sampled: tokio::sync::Mutex<Option<Instant>>,
}

impl StorageGauges {
    pub(super) fn register(families: &mut Families) -> Self {
        let mut gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            families.register(name, help, g.clone());
            g
        };
        let repositories = gauge("berth_storage_repositories", "Repositories in the registry");
        let blobs = gauge(
            "berth_storage_blobs",
            "Distinct blobs linked into any repository",
        );
        let blob_bytes = gauge(
            "berth_storage_blob_bytes",
            "Bytes of those blobs, each stored blob counted once",
        );
        let manifests = gauge("berth_storage_manifests", "Manifests in all repositories");
        let manifest_bytes = gauge("berth_storage_manifest_bytes", "Bytes of those manifests");
        let upload_sessions = gauge(
            "berth_upload_sessions",
            "Blob upload sessions open in the registry (every replica's)",
        );
        let upload_bytes = gauge(
            "berth_upload_session_bytes",
            "Bytes received so far by the open upload sessions",
        );
        let errors = Counter::default();
        families.register(
            "berth_storage_sample_errors",
            "Failed reads of the storage gauges from the database (the previous values are kept)",
            errors.clone(),
        );
        Self {
            repositories,
            blobs,
            blob_bytes,
            manifests,
            manifest_bytes,
            upload_sessions,
            upload_bytes,
            errors,
            sampled: tokio::sync::Mutex::new(None),
        }
    }

    /// Reads the gauges from `registry` unless the last read is younger than [`SAMPLE_TTL`].
    pub(super) async fn refresh(&self, registry: &Registry) {
        let mut sampled = self.sampled.lock().await;
        if sampled.is_some_and(|at| at.elapsed() < SAMPLE_TTL) {
            return;
        }
        match registry.usage_summary().await {
            Ok(summary) => self.set(&summary),
            Err(e) => {
                self.errors.inc();
                tracing::warn!(error = %e, "could not read storage usage for metrics");
            }
        }
        // A failure waits out the TTL too: a struggling database gets no more queries.
        *sampled = Some(Instant::now());
    }

    fn set(&self, s: &UsageSummary) {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.repositories, s.total.repositories);
        set(&self.blobs, s.total.blobs);
        set(&self.blob_bytes, s.total.blob_bytes);
        set(&self.manifests, s.total.manifests);
        set(&self.manifest_bytes, s.total.manifest_bytes);
        set(&self.upload_sessions, s.uploads.sessions);
        set(&self.upload_bytes, s.uploads.received_bytes);
    }
}
