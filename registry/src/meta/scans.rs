//! What image inventories need from the metadata database: the job queue every replica's scan
//! workers share, and the inventories they store. See migrations/*/0019_scans.sql.
//!
//! A job is queued in the transaction that stores an image manifest (`NewManifest::scan`), at
//! most once per manifest. A worker claims one with a lease (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`, so replicas claim different jobs; SQLite: one atomic `UPDATE ... RETURNING`); every
//! later write of the job is fenced by the lease's token, so a worker that lost its lease (it
//! stalled, another took the job over) changes nothing. Jobs and inventories go with their
//! manifest.

use async_trait::async_trait;
use serde::Serialize;

use super::{LeaseToken, MetaResult};

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanJob {
    /// The manifest's row id (the job's key).
    pub manifest_id: i64,
    /// The repository it is in.
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// Fences every write of the job.
    pub token: LeaseToken,
}

/// A package as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPackage {
    /// Its package manager (`dpkg`, `npm`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its installed version.
    pub version: String,
    /// The source package it was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// The source package's version, where it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Its architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The file it was found in.
    pub path: String,
    /// Its package URL.
    pub purl: String,
}

/// The image's operating system as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoredOs {
    /// os-release `ID`.
    pub id: String,
    /// `VERSION_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A finished inventory, to store.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// The operating system, if the image has an os-release file.
    pub os: Option<StoredOs>,
    /// The packages.
    pub packages: Vec<StoredPackage>,
    /// The inventory's problems, a JSON array (`[]` for none).
    pub problems: String,
    /// How long the inventory took.
    pub duration_ms: u64,
    /// The SBOM referrer pushed for it.
    pub sbom_digest: Option<String>,
}

/// The key of an inventory: the SHA-256 of its operating system and packages, as stored in
/// `scans.inventory_key`. Equal keys mean equal inventories, which match alike.
pub fn inventory_key(os: Option<&StoredOs>, packages: &[StoredPackage]) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    // JSON of derived `Serialize` is the same for the same values; it cannot fail.
    let _ = serde_json::to_writer(HashWriter(&mut hash), &(os, packages));
    hex::encode(hash.finalize())
}

/// Feeds what is written into a hash.
struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// Inventoried.
    Done,
    /// Given up; `reason` says why.
    Failed,
}

impl ScanStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// From its stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A manifest's job and, once done, its inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    /// Where it stands.
    pub status: ScanStatus,
    /// Claims so far.
    pub attempts: u32,
    /// When it was queued (Unix ms).
    pub queued_at: i64,
    /// When it was done or given up (Unix ms).
    pub finished_at: Option<i64>,
    /// How long the inventory took.
    pub duration_ms: Option<u64>,
    /// Why it failed (or why the last attempt failed, while queued again).
    pub reason: Option<String>,
    /// The operating system.
    pub os: Option<StoredOs>,
    /// The inventory's problems, a JSON array.
    pub problems: Option<String>,
    /// The SBOM referrer berth pushed.
    pub sbom_digest: Option<String>,
    /// The packages, in inventory order.
    pub packages: Vec<StoredPackage>,
}

/// Jobs by status, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Waiting.
    pub queued: u64,
    /// Held by a worker.
    pub running: u64,
    /// Inventoried.
    pub done: u64,
    /// Given up.
    pub failed: u64,
}

/// The scan queue's queries.
#[async_trait]
pub trait ScanStore {
    /// Claims the oldest job that is queued, or running under an expired lease, with fewer
    /// than `max_attempts` claims, until `now + lease_ms`. Jobs whose lease expired on their
    /// last attempt are marked failed first.
    async fn scan_claim(
        &self,
        now: i64,
        lease_ms: u64,
        max_attempts: u32,
    ) -> MetaResult<Option<ScanJob>>;

    /// Extends a held lease to `until`; false when `job` no longer holds it.
    async fn scan_renew(&self, job: &ScanJob, until: i64) -> MetaResult<bool>;

    /// Stores the inventory and marks the job done, if it still holds its lease.
    async fn scan_done(&self, job: &ScanJob, outcome: &ScanOutcome) -> MetaResult<bool>;

    /// Records a failed attempt: queued again (with `reason`) unless `give_up`, then failed.
    async fn scan_failed(&self, job: &ScanJob, reason: &str, give_up: bool) -> MetaResult<bool>;

    /// Gives a job back unfinished (a worker stopping): queued, this claim not counted.
    async fn scan_release(&self, job: &ScanJob) -> MetaResult<bool>;

    /// Queues manifest `digest` of `repository` again, whatever its state; false when it
    /// has no job.
    async fn scan_requeue(&self, repository: &str, digest: &str, now: i64) -> MetaResult<bool>;

    /// The job and inventory of manifest `digest` in `repository`.
    async fn scan_of(&self, repository: &str, digest: &str) -> MetaResult<Option<ScanRecord>>;

    /// Jobs by status.
    async fn scan_counts(&self) -> MetaResult<ScanCounts>;
}
