//! What garbage collection needs from the metadata database: the due entries of the review
//! queues, and the removals, each one transaction that checks again what it removes.
//!
//! The queues are fed by every change that may leave something unreferenced, in that change's
//! own transaction (`sql.rs`: links, unlinks, deleted manifests, moved and deleted tags,
//! manifests pushed by digest). An entry is due once its newest event is older than the
//! collector's review delay. A blob is kept while any manifest refers to it; a manifest while
//! a tag points at it or pointed at it within the tag history window, an index of its repository
//! lists it, or (by policy) it is untagged or refers to a subject that is still there. Whatever a removal takes away is queued in turn.

use async_trait::async_trait;

use super::MetaResult;
use crate::domain::Digest;

/// What the collector may remove besides blobs no manifest uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Remove manifests that no tag, index or subject keeps (`false`: untagged manifests stay,
    /// as in Distribution, so pulls by digest keep working).
    pub collect_untagged: bool,
    /// Remove referrers (signatures, SBOMs) whose subject is gone (`false`: keep them).
    pub collect_orphan_referrers: bool,
    /// A manifest a tag pointed at since this time (Unix ms) stays, so the tag can be
    /// restored from its history.
    pub history_since_ms: i64,
}

/// A blob the collector would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCandidate {
    /// Its digest.
    pub digest: Digest,
    /// Its size: the bytes freed (each stored blob is counted once, whatever links it).
    pub size: u64,
}

/// A manifest the collector would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestCandidate {
    /// Its row.
    pub id: i64,
    /// Its repository.
    pub repository: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// Stored bytes whose row is gone: to delete, then to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDeletion {
    /// The tombstone's row.
    pub id: i64,
    /// The blob's digest.
    pub digest: Digest,
    /// Where its bytes are (`None`: the canonical key).
    pub location: Option<String>,
    /// Its size.
    pub size: u64,
}

/// The garbage collector's queries.
#[async_trait]
pub trait GcStore {
    /// Due blobs that no manifest refers to, in digest order after `after`.
    async fn gc_blob_candidates(
        &self,
        cutoff_ms: i64,
        after: &str,
        limit: u32,
    ) -> MetaResult<Vec<BlobCandidate>>;

    /// Due manifests that nothing keeps under `policy`, in row order after `after`.
    async fn gc_manifest_candidates(
        &self,
        cutoff_ms: i64,
        policy: GcPolicy,
        after: i64,
        limit: u32,
    ) -> MetaResult<Vec<ManifestCandidate>>;

    /// Removes blob `digest` if it is still due and unreferenced: its links, its row, its
    /// review, and records a tombstone for its bytes, in one transaction. `None` when it was
    /// kept (a manifest, upload or mount claimed it since).
    async fn gc_collect_blob(
        &self,
        digest: &Digest,
        cutoff_ms: i64,
    ) -> MetaResult<Option<BlobDeletion>>;

    /// Removes manifest `id` if it is still due and kept by nothing, queueing what it
    /// referenced for review; returns whether it was removed.
    async fn gc_collect_manifest(
        &self,
        id: i64,
        cutoff_ms: i64,
        policy: GcPolicy,
    ) -> MetaResult<bool>;

    /// Drops the due reviews of blobs and manifests that are kept: reviewed, nothing to do.
    async fn gc_drop_kept_reviews(&self, cutoff_ms: i64, policy: GcPolicy) -> MetaResult<()>;

    /// Forgets tag history older than `before_ms` and queues the manifests it kept for
    /// review; returns how many entries went.
    async fn gc_prune_tag_history(&self, before_ms: i64) -> MetaResult<u64>;

    /// Queues every manifest and blob for review (as of when it was stored), for a policy
    /// that changed: reviews of what the old policy kept were dropped.
    async fn gc_requeue_all(&self) -> MetaResult<()>;

    /// Tombstones whose bytes may not be deleted yet (a collector stopped between the two
    /// steps), oldest first.
    async fn gc_pending_deletions(&self, limit: u32) -> MetaResult<Vec<BlobDeletion>>;

    /// Forgets a tombstone once its bytes are deleted.
    async fn gc_forget_deletion(&self, id: i64) -> MetaResult<()>;
}
