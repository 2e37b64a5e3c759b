//! What signature checks need from the metadata database: the signature manifests of a
//! manifest, the indexes that list it, and cached verdicts. See migrations/*/0016_trust.sql.

use async_trait::async_trait;

use super::MetaResult;
use crate::domain::{Digest, RepoName};

/// A verdict as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVerdict {
    /// The signature manifests it was reached with (their digests, sorted, comma-separated).
    pub signatures: String,
    /// `verified`, `unsigned`, `untrusted` or `invalid`.
    pub status: String,
    /// The key that verified the manifest, for `verified`.
    pub key_id: Option<String>,
    /// Why, for people.
    pub detail: String,
    /// When it was reached (Unix ms).
    pub checked_at: i64,
}

/// The signature checks' queries.
#[async_trait]
pub trait TrustStore {
    /// The digests of the signature manifests of `digest` in `repo`: referrers of artifact type
    /// `artifact_type`, and the manifest tagged `tag` (cosign's tag scheme), in digest order, at
    /// most `limit`.
    async fn trust_signatures(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: &str,
        tag: &str,
        limit: u32,
    ) -> MetaResult<Vec<Digest>>;

    /// The indexes of `repo` that list `digest` among their manifests, at most `limit`.
    async fn trust_parents(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> MetaResult<Vec<Digest>>;

    /// The cached verdict on `digest` in `repo` under key set `keyset`.
    async fn trust_verdict(
        &self,
        repo: &RepoName,
        digest: &Digest,
        keyset: &str,
    ) -> MetaResult<Option<StoredVerdict>>;

    /// Caches a verdict (replacing the one under the same key set). Nothing is stored when the
    /// manifest was deleted meanwhile.
    async fn trust_save_verdict(
        &self,
        repo: &RepoName,
        digest: &Digest,
        keyset: &str,
        verdict: &StoredVerdict,
    ) -> MetaResult<()>;
}
