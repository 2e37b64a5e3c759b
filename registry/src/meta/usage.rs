//! Storage accounting: what repositories and namespaces hold, counting each stored blob once
//! however many repositories (or layers of one image) use it.

use async_trait::async_trait;

use super::MetaResult;

/// What one repository holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepositoryUsage {
    /// The repository.
    pub repository: String,
    /// Distinct blobs linked into it (layers, configs, uploads not yet collected).
    pub blobs: u64,
    /// Their bytes, each blob once.
    pub blob_bytes: u64,
    /// Bytes of the blobs no other repository links: what removing it would free.
    pub exclusive_bytes: u64,
    /// Manifests stored in it.
    pub manifests: u64,
    /// Their bytes.
    pub manifest_bytes: u64,
}

/// What a namespace (or the whole registry) holds, each stored blob counted once.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsageTotal {
    /// Repositories.
    pub repositories: u64,
    /// Distinct blobs.
    pub blobs: u64,
    /// Their bytes, each blob once.
    pub blob_bytes: u64,
    /// Manifests.
    pub manifests: u64,
    /// Their bytes.
    pub manifest_bytes: u64,
}

/// The upload sessions open in the whole registry (on every replica).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadSessions {
    /// Sessions started and neither finished, cancelled nor expired.
    pub sessions: u64,
    /// Bytes they have received so far.
    pub received_bytes: u64,
}

/// The storage accounting queries. `scope` is a repository or namespace name: the
/// repository itself and every repository under `scope/`; `None` is the whole registry.
#[async_trait]
pub trait UsageStore {
    /// Each repository in scope, in name order.
    async fn repository_usage(&self, scope: Option<&str>) -> MetaResult<Vec<RepositoryUsage>>;

    /// The scope's total, each blob once.
    async fn usage_total(&self, scope: Option<&str>) -> MetaResult<UsageTotal>;

    /// The open upload sessions.
    async fn upload_sessions(&self) -> MetaResult<UploadSessions>;

    /// What quotas count in `scope`: its blob bytes (each blob once) and repositories.
    async fn quota_usage(&self, scope: &str) -> MetaResult<QuotaUsage>;

    /// Whether a repository in `scope` holds blob `digest` (so linking it adds no bytes).
    async fn scope_has_blob(&self, scope: &str, digest: &str) -> MetaResult<bool>;
}

/// The two figures quotas limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuotaUsage {
    /// Blob bytes, each blob once.
    pub blob_bytes: u64,
    /// Repositories.
    pub repositories: u64,
}
