//! What a scrub needs from the metadata database: the blobs and manifests to check in a
//! stable order, where the current round stands (so a scrub resumes where the last one
//! stopped), quarantine, and the record of findings. See migrations/*/0007_scrub.sql.

use async_trait::async_trait;

use super::MetaResult;
use crate::domain::Digest;

/// The blob cursor once every blob of the round is checked: sorts after every digest
/// (algorithms are lowercase letters), so the manifests' turn comes next.
pub const BLOBS_DONE: &str = "~";

/// Where a scrub round stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubCursor {
    /// Blobs up to this digest are checked ([`BLOBS_DONE`]: all of them).
    pub blob: String,
    /// Manifests up to this row are checked.
    pub manifest: i64,
    /// When the round started (Unix ms; 0: no round in progress).
    pub round_started_at: i64,
}

impl ScrubCursor {
    /// A round not started.
    pub fn start() -> Self {
        Self {
            blob: String::new(),
            manifest: 0,
            round_started_at: 0,
        }
    }
}

/// A stored blob to re-hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its recorded size.
    pub size: u64,
    /// Where its bytes are (`None`: the canonical key).
    pub location: Option<String>,
}

/// A stored manifest to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubManifest {
    /// Its row.
    pub id: i64,
    /// Its repository.
    pub repository: String,
    /// Its recorded digest (as stored: checked against `content`).
    pub digest: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// A reference a manifest makes that cannot be served: a blob without a usable row, or a
/// child manifest missing from its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingReference {
    /// The manifest's row.
    pub manifest_id: i64,
    /// What it references.
    pub digest: String,
    /// Whether it is a child manifest (else a blob).
    pub child: bool,
}

/// What a scrub found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A blob's bytes are not in storage.
    Missing,
    /// A blob's bytes do not hash to its digest, or have another size.
    Corrupt,
    /// A manifest's stored bytes do not hash to its digest.
    ManifestCorrupt,
    /// A manifest references a blob or child that cannot be served.
    DanglingReference,
}

impl Problem {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Corrupt => "corrupt",
            Self::ManifestCorrupt => "manifest_corrupt",
            Self::DanglingReference => "dangling_reference",
        }
    }
}

/// A finding to record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What is wrong.
    pub problem: Problem,
    /// The blob or manifest concerned.
    pub digest: String,
    /// The manifest's repository (manifest problems).
    pub repository: Option<String>,
    /// Where the damaged bytes are (blob problems; `None`: the canonical key).
    pub storage_key: Option<String>,
    /// What exactly was found.
    pub detail: String,
}

/// The scrub's queries.
#[async_trait]
pub trait ScrubStore {
    /// Where the current round stands.
    async fn scrub_cursor(&self) -> MetaResult<ScrubCursor>;

    /// Records where the round stands.
    async fn scrub_save_cursor(&self, cursor: &ScrubCursor) -> MetaResult<()>;

    /// Blobs not quarantined, in digest order after `after`.
    async fn scrub_blobs(&self, after: &str, limit: u32) -> MetaResult<Vec<ScrubBlob>>;

    /// Manifests in row order after `after`.
    async fn scrub_manifests(&self, after: i64, limit: u32) -> MetaResult<Vec<ScrubManifest>>;

    /// References of the manifests with rows in `(after, upto]` that cannot be served.
    async fn scrub_dangling(&self, after: i64, upto: i64) -> MetaResult<Vec<DanglingReference>>;

    /// Quarantines a blob whose bytes at `blob.location` are bad and records the finding, in
    /// one transaction; false (nothing done) when the row changed meanwhile (removed, or
    /// repaired with another copy).
    async fn scrub_quarantine(&self, blob: &ScrubBlob, finding: &Finding) -> MetaResult<bool>;

    /// Records a manifest finding unless the same problem is already open for it.
    async fn scrub_record(&self, finding: &Finding) -> MetaResult<bool>;

    /// Closes the open findings of a manifest that checked out fine.
    async fn scrub_resolve(&self, repository: &str, digest: &str) -> MetaResult<()>;

    /// Closes the open findings about blobs and manifests that are gone (collected or
    /// deleted since).
    async fn scrub_close_stale(&self) -> MetaResult<()>;

    /// Whether the stored copy at `location` (`data/<upload id>`) is some blob's, awaits
    /// deletion, or belongs to an upload session still open.
    async fn scrub_copy_referenced(&self, location: &str) -> MetaResult<bool>;

    /// Findings not repaired yet, oldest first.
    async fn scrub_open_findings(&self, limit: u32) -> MetaResult<Vec<(i64, Finding)>>;
}
