//! The record of the background passes for administrators: garbage-collection passes as they
//! ran (by `serve` or `berth gc`, what each removed and freed, why one failed) and where the
//! scrub stands (the current round's progress and the findings not repaired yet).

use serde::Serialize;

use super::gc::{GcOptions, GcReport};
use super::{Registry, RegistryResult};
use crate::meta::maintenance::{GcPass, GcRunner, OpenFinding, ScrubProgress};
use crate::meta::now_ms;

/// Most open findings shown at once.
const FINDINGS_SHOWN: u32 = 1000;

/// Where the scrub stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubStatus {
    /// The current round's progress.
    pub progress: ScrubProgress,
    /// Findings not repaired yet, oldest first (at most 1000).
    pub findings: Vec<OpenFinding>,
}

impl Registry {
    /// Runs a garbage-collection pass ([`Registry::collect_garbage`]) and records it, as
    /// run by `run_by`, with what it removed or why it failed. Dry runs are not recorded. A
    /// pass whose record cannot be written still counts (the failure is logged).
    pub async fn collect_garbage_recorded(
        &self,
        options: &GcOptions,
        run_by: GcRunner,
    ) -> RegistryResult<GcReport> {
        if options.dry_run {
            return self.collect_garbage(options).await;
        }
        let started_at = now_ms();
        let outcome = self.collect_garbage(options).await;
        let mut pass = GcPass {
            id: 0,
            started_at,
            finished_at: now_ms(),
            run_by,
            manifests_removed: 0,
            blobs_removed: 0,
            bytes_freed: 0,
            error: None,
        };
        match &outcome {
            Ok(report) => {
                pass.manifests_removed = report.manifests.len() as u64;
                pass.blobs_removed = report.blobs.len() as u64;
                pass.bytes_freed = report.bytes_freed;
            }
            // The error's own words, not its cause chain: no backend details on the page.
            Err(e) => pass.error = Some(e.to_string()),
        }
        if let Err(e) = self.meta.record_gc_pass(&pass).await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "could not record the garbage-collection pass");
        }
        outcome
    }

    /// The newest `limit` garbage-collection passes, newest first.
    pub async fn gc_passes(&self, limit: u32) -> RegistryResult<Vec<GcPass>> {
        Ok(self.meta.gc_passes(limit).await?)
    }

    /// The scrub round's progress and the open findings.
    pub async fn scrub_status(&self) -> RegistryResult<ScrubStatus> {
        Ok(ScrubStatus {
            progress: self.meta.scrub_progress().await?,
            findings: self.meta.open_scrub_findings(FINDINGS_SHOWN).await?,
        })
    }
}
