//! Image inventories: `berth_scan_jobs{status}`, the queue as the database holds it (every
//! replica reports the same values, read when scraped, at most once per [`SAMPLE_TTL`]);
//! `berth_scan_jobs_ended_total{outcome}` and `berth_scan_duration_seconds`, what this
//! process's workers did. Label values are fixed: four statuses, three outcomes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as Families;

use crate::service::scanner::ScanEnd;

/// How long a sample of the queue is reused.
pub const SAMPLE_TTL: Duration = Duration::from_secs(10);

/// Upper bounds of the inventory duration buckets, seconds.
const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The scan families.
#[derive(Debug)]
pub struct ScanMetrics {
    jobs: Family<StatusLabel, Gauge>,
    ended: Family<OutcomeLabel, Counter>,
    duration: Histogram,
    sampled: Mutex<Option<Instant>>,
}

const STATUSES: [&str; 4] = ["queued", "running", "done", "failed"];

fn outcome(end: ScanEnd) -> &'static str {
    match end {
        ScanEnd::Done => "done",
        ScanEnd::Retried => "retried",
        ScanEnd::Failed => "failed",
    }
}

impl ScanMetrics {
    /// Registers the families, every series at zero.
    pub fn register(families: &mut Families) -> Self {
        let jobs = Family::<StatusLabel, Gauge>::default();
        for status in STATUSES {
            jobs.get_or_create_owned(&StatusLabel { status });
        }
        families.register(
            "berth_scan_jobs",
            "Image inventory jobs in the database, by status (queued, running, done, failed)",
            jobs.clone(),
        );
        let ended = Family::<OutcomeLabel, Counter>::default();
        for end in [ScanEnd::Done, ScanEnd::Retried, ScanEnd::Failed] {
            ended.get_or_create_owned(&OutcomeLabel {
                outcome: outcome(end),
            });
        }
        families.register(
            "berth_scan_jobs_ended",
            "Image inventory attempts this process finished, by outcome (done, retried, failed)",
            ended.clone(),
        );
        let duration = Histogram::new(BUCKETS);
        families.register(
            "berth_scan_duration_seconds",
            "Time one image inventory attempt took in this process (layers read, SBOM stored)",
            duration.clone(),
        );
        Self {
            jobs,
            ended,
            duration,
            sampled: Mutex::new(None),
        }
    }

    /// Records an attempt's end.
    pub fn ended(&self, end: ScanEnd, took: Duration) {
        self.ended
            .get_or_create(&OutcomeLabel {
                outcome: outcome(end),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Reads the queue from the database unless a recent sample stands.
    pub async fn refresh(&self, registry: &crate::service::Registry) {
        {
            let Ok(mut sampled) = self.sampled.lock() else {
                return;
            };
            if sampled.is_some_and(|at| at.elapsed() < SAMPLE_TTL) {
                return;
            }
            *sampled = Some(Instant::now());
        }
        match registry.scan_counts().await {
            Ok(c) => {
                for (status, n) in STATUSES
                    .into_iter()
                    .zip([c.queued, c.running, c.done, c.failed])
                {
                    self.jobs
                        .get_or_create(&StatusLabel { status })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the scan jobs"),
        }
    }
}
