//! Metadata in SQL: repositories, blob links, manifests, tags, references and upload sessions.
//!
//! [`MetaStore`] is the one seam between the registry's rules (`service`) and a database. It
//! depends only on `domain`; SQLite is the embedded default ([`SqliteStore`]). Every piece of
//! state a second replica would need lives here or in object storage, never in process memory.
//!
//! Each method is one transaction, so a crash at any moment leaves either the state before or
//! the state after it.

mod account_sql;
pub mod accounts;
pub mod advisories;
mod advisory_sql;
pub mod audit;
mod audit_sql;
pub mod browse;
mod browse_sql;
mod cache;
pub mod cve_allowlist;
pub mod events;
mod finding_sql;
pub mod findings;
pub mod gc;
mod gc_sql;
pub mod history;
mod history_sql;
pub mod immutable_rules;
pub mod maintenance;
pub mod org_retention;
pub mod org_webhooks;
mod postgres;
pub mod quotas;
pub mod retention;
mod retention_sql;
mod scan_sql;
pub mod scan_views;
pub mod scans;
pub mod scrub;
mod scrub_sql;
mod sql;
mod sqlite;
pub mod trust;
mod trust_sql;
pub mod usage;
mod usage_sql;
mod writer;

use async_trait::async_trait;

use crate::domain::{Digest, MediaType, ParsedManifest, Reference, RepoName, Tag, UploadId};

pub use accounts::AccountStore;
pub use advisories::AdvisoryStore;
pub use audit::AuditStore;
pub use browse::BrowseStore;
pub use cve_allowlist::CveAllowlistStore;
pub use findings::FindingStore;
pub use gc::GcStore;
pub use history::HistoryStore;
pub use immutable_rules::ImmutableRuleStore;
pub use maintenance::MaintenanceStore;
pub use org_retention::OrgRetentionStore;
pub use org_webhooks::OrgWebhookStore;
pub use postgres::PostgresStore;
pub use quotas::QuotaStore;
pub use retention::RetentionStore;
pub use scan_views::ScanViewStore;
pub use scans::ScanStore;
pub use scrub::ScrubStore;
pub use sqlite::SqliteStore;
pub use trust::TrustStore;
pub use usage::UsageStore;

/// A failure of the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database refused or failed a query.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Committing a batch of writes failed; every write in the batch was rolled back.
    #[error("database commit failed")]
    Commit(#[source] std::sync::Arc<sqlx::Error>),
    /// A write was not run: the writer has stopped, or the batch it was in failed to start.
    #[error("the database write could not be run")]
    WriteNotRun,
    /// A stored value does not parse: the database was edited by hand or is damaged.
    #[error("corrupt row in table {table}: {reason}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What did not parse.
        reason: String,
    },
}

/// Result of metadata operations.
pub type MetaResult<T> = Result<T, MetaError>;

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    /// Its digest.
    pub digest: Digest,
    /// The media type it is served with.
    pub media_type: String,
    /// Its exact bytes; may be empty when only metadata was asked for.
    pub content: bytes::Bytes,
    /// The length of its bytes.
    pub size: u64,
}

/// One entry of a referrers listing.
#[derive(Debug, Clone)]
pub struct ReferrerRecord {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type (or config media type).
    pub artifact_type: Option<String>,
    /// Its annotations as a JSON object, if it had any.
    pub annotations: Option<String>,
}

/// An upload session as stored.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    /// The session id.
    pub id: UploadId,
    /// The repository the upload was started in.
    pub repository: RepoName,
    /// How many bytes have been received and stored so far.
    pub received: u64,
    /// The serialized hash state after those bytes.
    pub hash_state: Vec<u8>,
    /// Blob storage's multipart state for the session (opaque JSON), if any.
    pub staging: Option<String>,
    /// Received bytes blob storage has not stored yet (less than one part).
    pub pending: Vec<u8>,
}

/// Progress to record on an upload session.
#[derive(Debug, Clone)]
pub struct UploadProgress {
    /// Bytes received so far.
    pub received: u64,
    /// Hash state after them.
    pub hash_state: Vec<u8>,
    /// Blob storage's multipart state.
    pub staging: Option<String>,
    /// Bytes not yet stored by blob storage.
    pub pending: Vec<u8>,
}

/// A blob as linked into a repository: its size and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Size in bytes.
    pub size: u64,
    /// Storage location; `None` for the canonical key.
    pub location: Option<String>,
}

/// Identifies the holder of an upload session's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseToken(pub i64);

impl LeaseToken {
    /// A fresh random token.
    pub fn new_random() -> Self {
        let (hi, _) = uuid::Uuid::new_v4().as_u64_pair();
        // Reinterpreting the random bits as i64 keeps all 64 bits of randomness.
        Self(i64::from_ne_bytes(hi.to_ne_bytes()))
    }
}

/// A manifest to store, with what the service learnt from it.
#[derive(Debug, Clone)]
pub struct NewManifest {
    /// The repository to store it in (created if absent).
    pub repository: RepoName,
    /// Its digest, already verified against `content`.
    pub digest: Digest,
    /// Its exact bytes.
    pub content: bytes::Bytes,
    /// What it references.
    pub parsed: ParsedManifest,
    /// Tags to point at it.
    pub tags: Vec<Tag>,
    /// Those of `tags` that may not be moved from another manifest.
    pub immutable: Vec<Tag>,
    /// The push, as the audit log records it and webhooks hear of it.
    pub event: events::Event,
    /// Store it even if blobs or child manifests it references are missing from the
    /// repository (a manifest pulled through from an upstream registry, whose references
    /// are fetched when first asked for). Sizes of those present are still checked.
    pub references_on_demand: bool,
    /// Queue an inventory of it (an image manifest, with scanning on): at most one job per
    /// manifest, however often it is pushed.
    pub scan: bool,
}

/// Why a manifest could not be stored: its references do not hold in the repository.
#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    /// Referenced blobs or child manifests are not in the repository.
    #[error("manifest references content unknown to the repository")]
    Missing(Vec<Digest>),
    /// A descriptor's size disagrees with the stored content's size.
    #[error(
        "descriptor for {digest} declares {declared} bytes but the stored content has {actual}"
    )]
    SizeMismatch {
        /// The referenced content.
        digest: Digest,
        /// The size the manifest declares.
        declared: u64,
        /// The size stored.
        actual: u64,
    },
    /// An immutable tag already points at another manifest.
    #[error("tag {0} is immutable")]
    TagImmutable(Tag),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        Self::Meta(e.into())
    }
}

/// A page request for a sorted listing: items after `last`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    /// Exclusive lower bound.
    pub last: Option<&'a str>,
    /// Maximum number of items.
    pub limit: u32,
}

/// The metadata database.
///
/// Implementations must make each method atomic and durable when it returns.
#[async_trait]
pub trait MetaStore:
    AccountStore
    + AdvisoryStore
    + AuditStore
    + BrowseStore
    + CveAllowlistStore
    + FindingStore
    + GcStore
    + HistoryStore
    + ImmutableRuleStore
    + MaintenanceStore
    + OrgRetentionStore
    + OrgWebhookStore
    + QuotaStore
    + RetentionStore
    + ScanStore
    + ScanViewStore
    + ScrubStore
    + TrustStore
    + UsageStore
    + Send
    + Sync
    + 'static
{
    /// Checks that the database answers (for readiness probes).
    async fn ping(&self) -> MetaResult<()>;

    /// Whether the repository exists.
    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool>;

    /// A blob's size and location, if it is linked into `repo`.
    async fn blob_in_repository(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<BlobInfo>>;

    /// A blob's size and location if its bytes are recorded at all, linked or not.
    async fn blob_stored(&self, digest: &Digest) -> MetaResult<Option<BlobInfo>>;

    /// The size of a blob if it is linked into any repository.
    async fn blob_anywhere(&self, digest: &Digest) -> MetaResult<Option<u64>>;

    /// Records a stored, verified blob at `location` and links it into `repo`, creating the
    /// repository. Returns false when the blob was already recorded (at its first location,
    /// which is kept; the caller may delete the bytes at `location`).
    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
    ) -> MetaResult<bool>;

    /// Links a blob already linked into `from` into `repo`; returns its size, or `None` when
    /// `from` does not have it. `from = None` mounts from any repository.
    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> MetaResult<Option<u64>>;

    /// Removes a blob's link from `repo`; returns whether there was one.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool>;

    /// Creates an upload session.
    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()>;

    /// Reads an upload session.
    async fn upload(&self, id: UploadId) -> MetaResult<Option<UploadRecord>>;

    /// Takes the session for writing for `lease_ms`, if it is free (or its lease expired) and
    /// has received exactly `received` bytes. The returned token fences every later write.
    async fn lease_upload(
        &self,
        id: UploadId,
        received: u64,
        lease_ms: u64,
    ) -> MetaResult<Option<LeaseToken>>;

    /// Extends a lease; returns false when the lease is no longer held by `token`.
    async fn renew_upload_lease(
        &self,
        id: UploadId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> MetaResult<bool>;

    /// Frees a lease held by `token`.
    async fn release_upload(&self, id: UploadId, token: LeaseToken) -> MetaResult<()>;

    /// Records progress from `from` bytes, if `token` still holds the lease, and frees the
    /// lease in the same write when `release` is set.
    async fn advance_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        from: u64,
        progress: &UploadProgress,
        release: bool,
    ) -> MetaResult<bool>;

    /// Deletes an upload session; returns whether it existed.
    async fn delete_upload(&self, id: UploadId) -> MetaResult<bool>;

    /// Deletes the session held by `token` and links its now stored, verified blob (at
    /// `location`) into `repo`, atomically. Returns `None` (and changes nothing) when the lease
    /// was lost, else what [`MetaStore::link_blob`] returns.
    async fn complete_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
    ) -> MetaResult<Option<bool>>;

    /// Deletes and returns up to `limit` sessions idle since before `idle_since_ms` whose
    /// lease is free, for their staged bytes to be discarded.
    async fn take_expired_uploads(
        &self,
        idle_since_ms: i64,
        limit: u32,
    ) -> MetaResult<Vec<UploadRecord>>;

    /// Stores a manifest and its tags after checking that everything it references is in the
    /// repository, atomically.
    async fn put_manifest(&self, manifest: NewManifest) -> Result<(), PutManifestError>;

    /// Reads a manifest by tag or digest; with `content = false` the bytes are not loaded.
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
    ) -> MetaResult<Option<ManifestRecord>>;

    /// Deletes a manifest, its tags and its references, recording `event`; returns whether
    /// it existed.
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: &events::Event,
    ) -> MetaResult<bool>;

    /// Deletes a tag only, recording `event`; returns whether it existed.
    async fn delete_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        event: &events::Event,
    ) -> MetaResult<bool>;

    /// Tags of a repository in byte order, or `None` when the repository does not exist.
    async fn tags(&self, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>>;

    /// Repository names in byte order.
    async fn repositories(&self, page: PageQuery<'_>) -> MetaResult<Vec<String>>;

    /// Manifests in `repo` whose subject is `subject`, in digest order, optionally only those
    /// of one artifact type.
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
        page: PageQuery<'_>,
    ) -> MetaResult<Vec<ReferrerRecord>>;
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh SQLite store holding organization `acme` and user `alice` (the organization rule
/// stores' tests start there), and the directory it lives in.
#[cfg(test)]
pub(crate) async fn acme_store() -> (tempfile::TempDir, SqliteStore) {
    use accounts::{AccountKind, AccountStore, NamespaceClaim};
    use events::{Action, Event, Origin};
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("meta.db"), 2, true)
        .await
        .expect("db");
    let create = Event::new(Action::OrgCreate, &Origin::system("test"));
    for (name, kind) in [("acme", AccountKind::Org), ("alice", AccountKind::User)] {
        store
            .create_account(name, kind, None, false, NamespaceClaim::New, &create)
            .await
            .expect("account");
    }
    (dir, store)
}
