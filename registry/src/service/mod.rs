//! The rules of the registry: verify digests, link blobs, run upload sessions, validate and
//! tag manifests, list, mount and delete.
//!
//! This is the only layer that touches both metadata ([`MetaStore`]) and blob bytes
//! ([`BlobStore`]); it depends on `domain`, `meta`, `blob` and (for pull-through caches)
//! `upstream`, never on HTTP handling. Handlers call one method here per request.
//!
//! Ordering rules that keep the store consistent through a crash at any moment:
//! - blob bytes are renamed into place (verified, synced) under a key of their own *before*
//!   any row names them, so no row ever points at missing bytes; bytes without a row (a crash
//!   between the two steps) are harmless, never served, and left for a storage scrub;
//! - garbage collection removes a blob's row before its bytes, through a tombstone (see
//!   [`gc`]), so no row ever points at deleted bytes either;
//! - an upload's offset is advanced in SQL only after its bytes are synced, and bytes past the
//!   recorded offset are discarded by the next write.

pub mod accounts;
pub mod admissions;
mod audit;
mod blobs;
pub mod browse;
pub mod findings;
pub mod gc;
pub mod history;
pub mod identity;
pub mod immutable;
pub mod keys;
mod listing;
pub mod maintenance;
mod manifests;
pub mod org_retention;
pub mod org_webhooks;
pub mod proxy;
pub mod quota;
pub mod retention;
pub mod sbom;
pub mod scan_views;
pub mod scanner;
pub mod scrub;
pub mod sign_ins;
pub mod trust;
mod uploads;
pub mod usage;
pub mod vuln_policy;
pub mod vulndb;
pub mod vulndb_refresh;
pub mod webhook_targets;
pub mod webhooks;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::blob::{BlobError, BlobStore};
use crate::domain::{Digest, HashStateError, ManifestError, RepoName};
use crate::meta::{MetaError, MetaStore};

pub use audit::PolicyRecord;
pub use blobs::{BlobContent, ByteRange};
pub use listing::{Page, Referrer};
pub use manifests::{ManifestPushed, StoredManifest};
pub use uploads::{ChunkRange, UploadStarted, UploadState};

/// A request body as the service consumes it.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Limits and tunables of the service.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// Referrers listed per page.
    pub referrers_page_size: u32,
    /// How long a request may hold an upload session before another may take it over, in ms.
    pub upload_lease_ms: u64,
    /// How long a request body may stall before the request is abandoned.
    pub body_idle_timeout: std::time::Duration,
    /// How long moved and deleted tags can be restored.
    pub tag_history: std::time::Duration,
    /// Tags that may not move or go.
    pub immutable: immutable::ImmutableTags,
    /// The configuration's retention policies (organizations' own are read from SQL).
    pub retention: Vec<crate::config::RetentionPolicy>,
    /// What namespaces and repositories may hold.
    pub quotas: quota::Quotas,
    /// The webhooks that hear of pushes and deletes.
    pub webhooks: webhooks::Webhooks,
    /// Which keys must sign the images of each scope.
    pub trust: trust::TrustPolicies,
    /// Inventories of pushed images.
    pub scan: scanner::ScanSettings,
    /// Which findings each scope accepts, and above which severity it refuses pulls.
    pub vuln: vuln_policy::VulnPolicies,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 * 1024 * 1024,
            referrers_page_size: 1000,
            upload_lease_ms: 60_000,
            body_idle_timeout: std::time::Duration::from_secs(60),
            tag_history: std::time::Duration::from_secs(14 * 24 * 60 * 60),
            immutable: immutable::ImmutableTags::default(),
            retention: Vec::new(),
            quotas: quota::Quotas::default(),
            webhooks: webhooks::Webhooks::default(),
            trust: trust::TrustPolicies::default(),
            scan: scanner::ScanSettings::default(),
            vuln: vuln_policy::VulnPolicies::default(),
        }
    }
}

/// What went wrong, in the registry's terms. The API layer maps each variant to a spec error
/// code and HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository does not exist.
    #[error("repository {0} is not known to this registry")]
    NameUnknown(RepoName),
    /// The blob is not in the repository.
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(Digest),
    /// No such upload session in this repository.
    #[error("upload session is not known to this repository")]
    UploadUnknown,
    /// A chunk did not start where the upload stands.
    #[error("chunk starts at byte {start} but the upload has received {received} bytes")]
    UploadOutOfOrder {
        /// Where the chunk claimed to start.
        start: u64,
        /// Bytes received so far.
        received: u64,
    },
    /// Another request is writing to the same upload session.
    #[error("another request is writing to this upload session")]
    UploadBusy {
        /// Bytes received so far.
        received: u64,
    },
    /// A requested byte range lies outside the blob.
    #[error("requested range is not satisfiable: the blob is {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's size.
        size: u64,
    },
    /// A length the client declared does not match what it sent.
    #[error("{0}")]
    SizeInvalid(String),
    /// The uploaded content does not have the digest the client named.
    #[error("content digest is {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client named.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The manifest is malformed or inconsistent.
    #[error(transparent)]
    ManifestInvalid(#[from] ManifestError),
    /// A manifest descriptor's size disagrees with the stored content.
    #[error(
        "descriptor for {digest} declares {declared} bytes but the stored content has {actual}"
    )]
    ManifestSizeMismatch {
        /// The referenced content.
        digest: Digest,
        /// The size the manifest declares.
        declared: u64,
        /// The size stored.
        actual: u64,
    },
    /// The manifest is larger than the configured limit.
    #[error("manifest exceeds the limit of {limit} bytes")]
    ManifestTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The manifest references blobs or manifests missing from the repository.
    #[error("manifest references {} blob(s) or manifest(s) unknown to the repository", .0.len())]
    ManifestBlobUnknown(Vec<Digest>),
    /// No manifest under this tag or digest.
    #[error("manifest unknown to this repository")]
    ManifestUnknown,
    /// A rule forbids the change; the message names it.
    #[error("{0}")]
    Denied(String),
    /// No webhook of this name is configured.
    #[error("no webhook named {0:?} is configured")]
    WebhookUnknown(String),
    /// A tag restore found nothing to restore.
    #[error("{0}")]
    RestoreImpossible(String),
    /// The request body ended early or could not be read.
    #[error("the request body could not be read completely")]
    BodyIncomplete(#[source] std::io::Error),
    /// The metadata database failed.
    #[error("metadata database failure")]
    Meta(#[from] MetaError),
    /// Blob storage failed.
    #[error("blob storage failure")]
    Blob(#[from] BlobError),
    /// A stored upload hash state is unreadable.
    #[error("upload state failure")]
    HashState(#[from] HashStateError),
    /// The upstream of a pull-through cache failed, and nothing was cached to serve instead.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
}

/// Result of registry operations.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// The registry: metadata and blob storage, and the rules that bind them.
#[derive(Clone)]
pub struct Registry {
    meta: Arc<dyn MetaStore>,
    blobs: BlobStore,
    limits: Limits,
    /// Platforms read from image configs for display, by config digest (configs never change).
    platforms: Arc<browse::PlatformCache>,
    /// Tags pulled and not yet recorded (for retention's "pulled within" rules).
    pulls: Arc<retention::PullLog>,
    /// Namespaces that are pull-through caches of other registries.
    mirrors: Arc<proxy::Mirrors>,
    /// Pulls a trust policy admitted in the last seconds (the hot path of enforcing policies).
    admissions: Arc<admissions::Admissions>,
    /// Blob reads this process started (pulls, inventories): what tells that matching
    /// reads no layer.
    blob_reads: Arc<std::sync::atomic::AtomicU64>,
}

impl Registry {
    /// A registry over the given stores.
    pub fn new(meta: Arc<dyn MetaStore>, blobs: BlobStore, limits: Limits) -> Self {
        Self {
            meta,
            blobs,
            limits,
            platforms: Arc::new(browse::PlatformCache::default()),
            pulls: Arc::new(retention::PullLog::default()),
            mirrors: Arc::new(proxy::Mirrors::default()),
            admissions: Arc::new(admissions::Admissions::default()),
            blob_reads: Arc::default(),
        }
    }

    /// Blob reads this process started.
    pub fn blob_reads(&self) -> u64 {
        self.blob_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This registry with `mirrors` as its pull-through caches.
    pub fn with_mirrors(mut self, mirrors: proxy::Mirrors) -> Self {
        self.mirrors = Arc::new(mirrors);
        self
    }

    /// The configured limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The accounts half of the metadata store.
    pub fn account_store(&self) -> Arc<dyn crate::meta::AccountStore> {
        self.meta.clone()
    }

    /// Checks that the database and blob storage answer; the error names which one does not
    /// (the cause is logged).
    pub async fn ping(&self) -> Result<(), &'static str> {
        if let Err(e) = self.meta.ping().await {
            tracing::warn!(error = %e, "readiness: database does not answer");
            return Err("database unreachable");
        }
        if let Err(e) = self.blobs.ping().await {
            tracing::warn!(error = %e, "readiness: blob storage does not answer");
            return Err("blob storage unreachable");
        }
        Ok(())
    }

    /// Chooses the error for a missing item: `NAME_UNKNOWN` when the whole repository is
    /// missing, `missing` otherwise. Only runs on the miss path.
    async fn not_found(&self, repo: &RepoName, missing: RegistryError) -> RegistryError {
        match self.meta.repository_exists(repo).await {
            Ok(true) => missing,
            Ok(false) => RegistryError::NameUnknown(repo.clone()),
            Err(e) => e.into(),
        }
    }
}
