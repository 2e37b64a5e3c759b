//! Image inventories: `berth_scan_jobs{status}`, the queue as the database holds it (every
//! replica reports the same values, read when scraped, at most once per [`SAMPLE_TTL`]);
//! `berth_scan_jobs_ended_total{outcome}` and `berth_scan_duration_seconds`, what this
//! process's workers did; `berth_scan_findings{severity}`, the stored findings of every
//! matched image (sampled as the queue is); and `berth_blob_reads_total`, the blob reads this
//! process started (pulls and inventories; matching reads none). Label values are fixed: four
//! statuses, three outcomes, six severities.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
struct SeverityLabel {
    severity: &'static str,
}

const SEVERITIES: [&str; 6] = ["critical", "high", "medium", "low", "none", "unknown"];

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
    findings: Family<SeverityLabel, Gauge>,
    blob_reads: Counter,
    /// The registry's blob read count when last scraped.
    blob_reads_seen: AtomicU64,
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
        let findings = Family::<SeverityLabel, Gauge>::default();
        for severity in SEVERITIES {
            findings.get_or_create_owned(&SeverityLabel { severity });
        }
        families.register(
            "berth_scan_findings",
            "Vulnerability findings of every matched image in the database, by severity",
            findings.clone(),
        );
        let blob_reads = Counter::default();
        families.register(
            "berth_blob_reads",
            "Blob reads this process started (pulls, image inventories)",
            blob_reads.clone(),
        );
        Self {
            jobs,
            ended,
            duration,
            findings,
            blob_reads,
            blob_reads_seen: AtomicU64::new(0),
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
        let reads = registry.blob_reads();
        let seen = self.blob_reads_seen.swap(reads, Ordering::Relaxed);
        self.blob_reads.inc_by(reads.saturating_sub(seen));
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
        match registry.findings_totals().await {
            Ok(t) => {
                for (severity, n) in SEVERITIES
                    .into_iter()
                    .zip([t.critical, t.high, t.medium, t.low, t.none, t.unknown])
                {
                    self.findings
                        .get_or_create(&SeverityLabel { severity })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the findings"),
        }
    }
}
