//! Online garbage collection: removes manifests and blobs nothing references while the
//! registry serves traffic, on one node or many replicas at once.
//!
//! A pass works from the review queues (see [`crate::meta::gc`]): it first lists what is due
//! and unreferenced as things stand (that list is the dry run), then removes each entry in a
//! transaction of its own that checks again, so whatever a push, mount or tag claimed in the
//! meantime stays. Blobs come before manifests: what a removed manifest leaves unreferenced is
//! queued afresh and judged by a later pass, after the review delay, so a pass removes exactly
//! what its dry run listed unless traffic changed something in between. A blob's row goes
//! before its bytes; a tombstone row carries the bytes' key until they are deleted, so a crash
//! between the two leaves work for the next pass, never a row without bytes.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Registry, RegistryResult};
use crate::domain::Digest;
use crate::meta::gc::{BlobCandidate, GcPolicy, ManifestCandidate};
use crate::meta::now_ms;

/// Rows read per query while listing candidates.
const PAGE: u32 = 1000;

/// Blob removals in progress at once.
const REMOVALS_IN_FLIGHT: usize = 64;

/// How a pass runs.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Entries are reviewed once their newest event is this old: the time a push has to
    /// finish (layers first, manifest last) before unreferenced uploads count as garbage.
    pub review_delay: Duration,
    /// How long a manifest a tag left stays restorable (tag history is kept this long).
    pub tag_history: Duration,
    /// Remove manifests no tag, index or subject keeps.
    pub collect_untagged: bool,
    /// Remove referrers whose subject is gone.
    pub collect_orphan_referrers: bool,
    /// List what would go, remove nothing.
    pub dry_run: bool,
    /// Review everything first, not only what changed (after a policy change: what the old
    /// policy kept is not queued any more).
    pub requeue: bool,
}

/// A blob in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GcBlob {
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

/// A manifest in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GcManifest {
    /// Its repository.
    pub repository: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

/// What a pass removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Blobs, in digest order.
    pub blobs: Vec<GcBlob>,
    /// Manifests, in the order they were pushed.
    pub manifests: Vec<GcManifest>,
    /// Bytes of blob storage freed (each stored blob once, however many repositories linked
    /// it).
    pub bytes_freed: u64,
}

impl Registry {
    /// Runs one garbage-collection pass. Safe alongside any traffic and any number of other
    /// passes (on other replicas too).
    #[tracing::instrument(skip(self))]
    pub async fn collect_garbage(&self, options: &GcOptions) -> RegistryResult<GcReport> {
        if options.requeue {
            self.meta.gc_requeue_all().await?;
        }
        let now = now_ms();
        let cutoff = now.saturating_sub(millis(options.review_delay));
        let policy = GcPolicy {
            collect_untagged: options.collect_untagged,
            collect_orphan_referrers: options.collect_orphan_referrers,
            history_since_ms: now.saturating_sub(millis(options.tag_history)),
        };
        let blobs = self.blob_candidates(cutoff).await?;
        let manifests = self.manifest_candidates(cutoff, policy).await?;
        let mut report = GcReport {
            dry_run: options.dry_run,
            ..GcReport::default()
        };
        if options.dry_run {
            for b in blobs {
                report.add_blob(&b.digest, b.size);
            }
            for m in manifests {
                report.add_manifest(&m);
            }
            return Ok(report);
        }
        self.finish_deletions().await?;
        self.meta
            .gc_prune_tag_history(policy.history_since_ms)
            .await?;
        // Removals run REMOVALS_IN_FLIGHT at a time, each still its own re-checking
        // transaction: SQLite's writer then commits many with one fsync, and one removal's
        // round trips overlap another's (3.5x the throughput of one at a time, BENCHMARKS.md).
        // `buffered` keeps the candidates' order in the report.
        let mut removals = futures_util::stream::iter(blobs)
            .map(|b| async move {
                let Some(gone) = self.meta.gc_collect_blob(&b.digest, cutoff).await? else {
                    return RegistryResult::Ok(None);
                };
                self.blobs
                    .delete(&gone.digest, gone.location.as_deref())
                    .await?;
                self.meta.gc_forget_deletion(gone.id).await?;
                Ok(Some(gone))
            })
            .buffered(REMOVALS_IN_FLIGHT);
        while let Some(gone) = removals.try_next().await? {
            if let Some(gone) = gone {
                report.add_blob(&gone.digest, gone.size);
            }
        }
        for m in manifests {
            if self.meta.gc_collect_manifest(m.id, cutoff, policy).await? {
                report.add_manifest(&m);
            }
        }
        self.meta.gc_drop_kept_reviews(cutoff, policy).await?;
        tracing::info!(
            blobs = report.blobs.len(),
            manifests = report.manifests.len(),
            bytes_freed = report.bytes_freed,
            "garbage collected"
        );
        Ok(report)
    }

    async fn blob_candidates(&self, cutoff: i64) -> RegistryResult<Vec<BlobCandidate>> {
        let mut all: Vec<BlobCandidate> = Vec::new();
        loop {
            let after = all.last().map(|b| b.digest.to_string()).unwrap_or_default();
            let page = self.meta.gc_blob_candidates(cutoff, &after, PAGE).await?;
            let done = page.len() < PAGE as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    async fn manifest_candidates(
        &self,
        cutoff: i64,
        policy: GcPolicy,
    ) -> RegistryResult<Vec<ManifestCandidate>> {
        let mut all: Vec<ManifestCandidate> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m.id);
            let page = self
                .meta
                .gc_manifest_candidates(cutoff, policy, after, PAGE)
                .await?;
            let done = page.len() < PAGE as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Deletes the bytes of blobs whose rows an interrupted pass already removed.
    async fn finish_deletions(&self) -> RegistryResult<()> {
        loop {
            let pending = self.meta.gc_pending_deletions(PAGE).await?;
            let done = pending.len() < PAGE as usize;
            for gone in pending {
                self.blobs
                    .delete(&gone.digest, gone.location.as_deref())
                    .await?;
                self.meta.gc_forget_deletion(gone.id).await?;
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// A duration in stored milliseconds.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl GcReport {
    fn add_blob(&mut self, digest: &Digest, size: u64) {
        self.bytes_freed += size;
        self.blobs.push(GcBlob {
            digest: digest.to_string(),
            size,
        });
    }

    fn add_manifest(&mut self, m: &ManifestCandidate) {
        self.manifests.push(GcManifest {
            repository: m.repository.clone(),
            digest: m.digest.to_string(),
            size: m.size,
        });
    }
}
