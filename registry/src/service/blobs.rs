//! Reading, checking and deleting blobs, and cross-repository mounts.

use std::ops::Range;

use super::{Registry, RegistryError, RegistryResult};
use crate::blob::BlobRead;
use crate::domain::{Digest, RepoName};
use crate::meta::BlobInfo;

/// A requested byte range (`Range: bytes=...`), resolved against the blob's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (inclusive) or `bytes=a-`.
    From {
        /// First byte.
        start: u64,
        /// Last byte, inclusive; `None` for "to the end".
        end: Option<u64>,
    },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range selected in a blob of `size` bytes, or `None` when unsatisfiable
    /// (RFC 9110 §14.1.1: the first position is past the end, or nothing is selected).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        let r = match self {
            Self::From { start, end } => start..end.map_or(size, |e| e.saturating_add(1).min(size)),
            Self::Suffix(n) => size.saturating_sub(n)..size,
        };
        (r.start < r.end).then_some(r)
    }
}

/// A blob to send: its total size and the bytes of the requested range.
pub struct BlobContent {
    /// The blob's full size.
    pub size: u64,
    /// Whether `read` holds the requested range (`206`); false for the whole blob, also sent
    /// when a range was asked for but could not be honoured (RFC 9110 §14.2 allows that).
    pub partial: bool,
    /// The bytes, possibly of a sub-range.
    pub read: BlobRead,
}

impl Registry {
    /// The size of a blob in `repo`.
    #[tracing::instrument(skip(self))]
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<u64> {
        Ok(self.blob_info(repo, digest).await?.size)
    }

    async fn blob_info(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<BlobInfo> {
        match self.meta.blob_in_repository(repo, digest).await? {
            Some(info) => Ok(info),
            None => Err(self
                .not_found(repo, RegistryError::BlobUnknown(digest.clone()))
                .await),
        }
    }

    /// A short-lived URL to fetch the blob from storage directly (with `method`), when
    /// redirects are on; `None` means serve it here.
    #[tracing::instrument(skip(self))]
    pub async fn blob_redirect(
        &self,
        repo: &RepoName,
        digest: &Digest,
        method: http::Method,
    ) -> RegistryResult<Option<String>> {
        if !self.blobs.redirects() {
            return Ok(None);
        }
        let info = self.blob_info(repo, digest).await?;
        Ok(self
            .blobs
            .redirect_url(digest, info.location.as_deref(), method)
            .await?)
    }

    /// Reads a blob of `repo`, or the byte range `range` of it.
    #[tracing::instrument(skip(self))]
    pub async fn read_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> RegistryResult<BlobContent> {
        let BlobInfo { size, location } = self.blob_info(repo, digest).await?;
        let range = range
            .map(|r| {
                r.resolve(size)
                    .ok_or(RegistryError::RangeNotSatisfiable { size })
            })
            .transpose()?;
        let partial = range.is_some();
        self.blob_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.blobs.get(digest, location.as_deref(), range).await? {
            Some(read) => Ok(BlobContent {
                size,
                partial,
                read,
            }),
            None => {
                // A row without bytes: storage was damaged outside berth. Report the blob as
                // unknown so clients re-push it, and leave a trace for the operator.
                tracing::error!(%digest, "blob is recorded in the database but missing from storage");
                Err(RegistryError::BlobUnknown(digest.clone()))
            }
        }
    }

    /// The whole of a blob of `repo`, for a reader on a blocking thread (see
    /// [`BlobSource`](crate::blob::BlobSource)).
    #[tracing::instrument(skip(self))]
    pub(crate) async fn blob_source(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<crate::blob::BlobSource> {
        let BlobInfo { location, .. } = self.blob_info(repo, digest).await?;
        self.blob_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.blobs.source(digest, location.as_deref()).await? {
            Some(source) => Ok(source),
            None => {
                tracing::error!(%digest, "blob is recorded in the database but missing from storage");
                Err(RegistryError::BlobUnknown(digest.clone()))
            }
        }
    }

    /// Removes a blob from `repo`. The bytes stay while other repositories link them.
    #[tracing::instrument(skip(self))]
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<()> {
        if self.meta.unlink_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(self
                .not_found(repo, RegistryError::BlobUnknown(digest.clone()))
                .await)
        }
    }

    /// Links a blob into `repo` from `from` (or, without `from`, from any repository that has
    /// it). Returns the blob's size, or `None` when it cannot be mounted.
    #[tracing::instrument(skip(self))]
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> RegistryResult<Option<u64>> {
        self.mirrors.refuse_push(repo)?;
        if self.quota_covers(repo).await?
            && let Some(size) = self.meta.blob_anywhere(digest).await?
        {
            self.quota_admits_blob(repo, digest, size).await?;
        }
        Ok(self.meta.mount_blob(repo, digest, from).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_blob_size() {
        let from = |start, end| ByteRange::From { start, end };
        assert_eq!(from(0, Some(9)).resolve(100), Some(0..10));
        assert_eq!(from(90, Some(200)).resolve(100), Some(90..100));
        assert_eq!(from(5, None).resolve(100), Some(5..100));
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(200).resolve(100), Some(0..100));
        assert_eq!(from(100, None).resolve(100), None);
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(from(0, None).resolve(0), None);
    }
}
