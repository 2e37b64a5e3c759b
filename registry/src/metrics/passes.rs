//! What the scheduled background passes (garbage collection, scrub, retention) did, recorded
//! by `server` from each pass's report. One-shot passes from the command line run in another
//! process and are not counted.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry as Families;

use super::{FloatGauge, OutcomeLabel, unix_now};
use crate::meta::scrub::Problem;
use crate::service::gc::GcReport;
use crate::service::retention::RetentionReport;
use crate::service::scrub::ScrubReport;

/// What every kind of pass records: how often it ran and how it ended, when it last
/// succeeded and how long the last pass took.
#[derive(Debug)]
struct Passes {
    outcomes: Family<OutcomeLabel, Counter>,
    last_success: FloatGauge,
    last_duration: FloatGauge,
}

impl Passes {
    /// Registers `berth_<kind>_passes_total{outcome}`,
    /// `berth_<kind>_last_success_timestamp_seconds` and
    /// `berth_<kind>_last_duration_seconds`.
    fn register(families: &mut Families, kind: &str, what: &str) -> Self {
        let outcomes = Family::<OutcomeLabel, Counter>::default();
        // Both series from the start, so `rate()` and alerts see a zero, not no data.
        for outcome in ["success", "failure"] {
            outcomes.get_or_create_owned(&OutcomeLabel { outcome });
        }
        families.register(
            format!("berth_{kind}_passes"),
            format!("Scheduled {what} passes, by outcome (success, failure)"),
            outcomes.clone(),
        );
        let last_success = FloatGauge::default();
        families.register(
            format!("berth_{kind}_last_success_timestamp_seconds"),
            format!(
                "When the last successful scheduled {what} pass ended (Unix time; 0: none yet)"
            ),
            last_success.clone(),
        );
        let last_duration = FloatGauge::default();
        families.register(
            format!("berth_{kind}_last_duration_seconds"),
            format!("How long the last scheduled {what} pass took, successful or not"),
            last_duration.clone(),
        );
        Self {
            outcomes,
            last_success,
            last_duration,
        }
    }

    fn ended(&self, took: Duration, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.outcomes.get_or_create(&OutcomeLabel { outcome }).inc();
        self.last_duration.set(took.as_secs_f64());
        if ok {
            self.last_success.set(unix_now());
        }
    }
}

/// Garbage collection: passes, and what they removed.
#[derive(Debug)]
pub struct GcMetrics {
    passes: Passes,
    blobs: Counter,
    manifests: Counter,
    bytes: Counter,
}

impl GcMetrics {
    pub(super) fn register(families: &mut Families) -> Self {
        let passes = Passes::register(families, "gc", "garbage-collection");
        let blobs = Counter::default();
        families.register(
            "berth_gc_blobs_removed",
            "Blobs removed by scheduled garbage collection",
            blobs.clone(),
        );
        let manifests = Counter::default();
        families.register(
            "berth_gc_manifests_removed",
            "Manifests removed by scheduled garbage collection",
            manifests.clone(),
        );
        let bytes = Counter::default();
        families.register(
            "berth_gc_freed_bytes",
            "Bytes of blob storage freed by scheduled garbage collection",
            bytes.clone(),
        );
        Self {
            passes,
            blobs,
            manifests,
            bytes,
        }
    }

    /// Records a successful pass.
    pub fn succeeded(&self, report: &GcReport, took: Duration) {
        self.blobs.inc_by(report.blobs.len() as u64);
        self.manifests.inc_by(report.manifests.len() as u64);
        self.bytes.inc_by(report.bytes_freed);
        self.passes.ended(took, true);
    }

    /// Records a pass that failed after `took`.
    pub fn failed(&self, took: Duration) {
        self.passes.ended(took, false);
    }
}

/// Scrub: passes, what they checked and what they found.
#[derive(Debug)]
pub struct ScrubMetrics {
    passes: Passes,
    blobs: Counter,
    bytes: Counter,
    manifests: Counter,
    findings: Family<ProblemLabel, Counter>,
    quarantined: Counter,
    rounds: Counter,
}

/// A scrub finding's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct ProblemLabel {
    problem: &'static str,
}

impl ScrubMetrics {
    pub(super) fn register(families: &mut Families) -> Self {
        let passes = Passes::register(families, "scrub", "scrub");
        let blobs = Counter::default();
        families.register(
            "berth_scrub_blobs_checked",
            "Blobs re-hashed by scheduled scrub passes",
            blobs.clone(),
        );
        let bytes = Counter::default();
        families.register(
            "berth_scrub_checked_bytes",
            "Bytes re-hashed by scheduled scrub passes",
            bytes.clone(),
        );
        let manifests = Counter::default();
        families.register(
            "berth_scrub_manifests_checked",
            "Manifests checked by scheduled scrub passes",
            manifests.clone(),
        );
        let findings = Family::<ProblemLabel, Counter>::default();
        for problem in [
            Problem::Missing,
            Problem::Corrupt,
            Problem::ManifestCorrupt,
            Problem::DanglingReference,
        ] {
            findings.get_or_create_owned(&ProblemLabel {
                problem: problem.as_str(),
            });
        }
        families.register(
            "berth_scrub_findings",
            "Problems found by scheduled scrub passes, by kind (missing, corrupt, manifest_corrupt, dangling_reference)",
            findings.clone(),
        );
        let quarantined = Counter::default();
        families.register(
            "berth_scrub_blobs_quarantined",
            "Blobs quarantined by scheduled scrub passes (bytes missing or wrong)",
            quarantined.clone(),
        );
        let rounds = Counter::default();
        families.register(
            "berth_scrub_rounds_completed",
            "Scrub rounds (every blob and manifest checked) completed by scheduled passes",
            rounds.clone(),
        );
        Self {
            passes,
            blobs,
            bytes,
            manifests,
            findings,
            quarantined,
            rounds,
        }
    }

    /// Records a successful pass.
    pub fn succeeded(&self, report: &ScrubReport, took: Duration) {
        self.blobs.inc_by(report.blobs_checked);
        self.bytes.inc_by(report.bytes_checked);
        self.manifests.inc_by(report.manifests_checked);
        for finding in &report.findings {
            self.findings
                .get_or_create(&ProblemLabel {
                    problem: finding.problem.as_str(),
                })
                .inc();
            // Blob problems are the ones that quarantine (see `service::scrub`).
            if matches!(finding.problem, Problem::Missing | Problem::Corrupt) {
                self.quarantined.inc();
            }
        }
        if report.round_complete {
            self.rounds.inc();
        }
        self.passes.ended(took, true);
    }

    /// Records a pass that failed after `took`.
    pub fn failed(&self, took: Duration) {
        self.passes.ended(took, false);
    }
}

/// Retention: runs, and the tags they deleted.
#[derive(Debug)]
pub struct RetentionMetrics {
    passes: Passes,
    judged: Counter,
    removed: Counter,
}

impl RetentionMetrics {
    pub(super) fn register(families: &mut Families) -> Self {
        let passes = Passes::register(families, "retention", "retention");
        let judged = Counter::default();
        families.register(
            "berth_retention_tags_judged",
            "Tags judged by scheduled retention runs",
            judged.clone(),
        );
        let removed = Counter::default();
        families.register(
            "berth_retention_tags_removed",
            "Tags deleted by scheduled retention runs",
            removed.clone(),
        );
        Self {
            passes,
            judged,
            removed,
        }
    }

    /// Records a successful run.
    pub fn succeeded(&self, report: &RetentionReport, took: Duration) {
        self.judged.inc_by(report.tags_judged);
        self.removed.inc_by(report.deleted.len() as u64);
        self.passes.ended(took, true);
    }

    /// Records a pass that failed after `took`.
    pub fn failed(&self, took: Duration) {
        self.passes.ended(took, false);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::super::tests::sample;
    use super::*;
    use crate::meta::scrub::Finding;
    use crate::service::gc::GcBlob;

    #[test]
    fn gc_passes_add_up_their_reports() {
        let m = Metrics::new("0");
        let report = GcReport {
            blobs: vec![
                GcBlob {
                    digest: "sha256:a".into(),
                    size: 10,
                },
                GcBlob {
                    digest: "sha256:b".into(),
                    size: 5,
                },
            ],
            bytes_freed: 15,
            ..GcReport::default()
        };
        m.gc.succeeded(&report, Duration::from_millis(1500));
        m.gc.succeeded(&report, Duration::from_millis(500));
        m.gc.failed(Duration::from_secs(3));
        let text = m.encode().unwrap();
        for (series, value) in [
            ("berth_gc_blobs_removed_total", 4.0),
            ("berth_gc_manifests_removed_total", 0.0),
            ("berth_gc_freed_bytes_total", 30.0),
            (r#"berth_gc_passes_total{outcome="success"}"#, 2.0),
            (r#"berth_gc_passes_total{outcome="failure"}"#, 1.0),
            ("berth_gc_last_duration_seconds", 3.0),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series}: {text}");
        }
        let last = sample(&text, "berth_gc_last_success_timestamp_seconds").unwrap();
        assert!((last - unix_now()).abs() < 60.0, "{last}");
    }

    #[test]
    fn scrub_findings_are_counted_by_kind_and_blob_ones_quarantine() {
        let m = Metrics::new("0");
        let finding = |problem| Finding {
            problem,
            digest: "sha256:a".into(),
            repository: None,
            storage_key: None,
            detail: String::new(),
        };
        let report = ScrubReport {
            blobs_checked: 3,
            bytes_checked: 300,
            manifests_checked: 2,
            findings: vec![
                finding(Problem::Missing),
                finding(Problem::Corrupt),
                finding(Problem::DanglingReference),
            ],
            round_complete: true,
        };
        m.scrub.succeeded(&report, Duration::from_secs(1));
        let text = m.encode().unwrap();
        for (series, value) in [
            ("berth_scrub_blobs_checked_total", 3.0),
            ("berth_scrub_checked_bytes_total", 300.0),
            ("berth_scrub_manifests_checked_total", 2.0),
            (r#"berth_scrub_findings_total{problem="missing"}"#, 1.0),
            (r#"berth_scrub_findings_total{problem="corrupt"}"#, 1.0),
            (
                r#"berth_scrub_findings_total{problem="dangling_reference"}"#,
                1.0,
            ),
            ("berth_scrub_blobs_quarantined_total", 2.0),
            ("berth_scrub_rounds_completed_total", 1.0),
            (r#"berth_scrub_passes_total{outcome="success"}"#, 1.0),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series}: {text}");
        }
    }

    #[test]
    fn retention_runs_count_judged_and_removed_tags() {
        let m = Metrics::new("0");
        let report = RetentionReport {
            dry_run: false,
            tags_judged: 7,
            deleted: vec![crate::service::retention::Expired {
                repository: "a".into(),
                tag: "old".into(),
                digest: "sha256:a".into(),
                policy: "a".into(),
            }],
        };
        m.retention.succeeded(&report, Duration::from_secs(1));
        let text = m.encode().unwrap();
        assert_eq!(
            sample(&text, "berth_retention_tags_judged_total"),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, "berth_retention_tags_removed_total"),
            Some(1.0)
        );
    }
}
