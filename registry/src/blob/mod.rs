//! Content-addressed blob bytes in object storage, and the bytes of uploads in progress.
//!
//! Depends on `domain` only. Every key the registry writes is a [`StorageKey`]; the layout of
//! the store is:
//!
//! ```text
//! <root>/
//! ├── blobs/
//! │   ├── sha256/<first two hex digits>/<64 hex digits>    verified blob bytes, never rewritten
//! │   └── sha512/<first two hex digits>/<128 hex digits>
//! └── uploads/<upload id>                                  bytes received by an upload session
//! ```
//!
//! A blob key is only ever written by renaming a fully received upload whose digest was
//! verified, so a reader never sees a partial or wrong blob under a digest. Renames on the local
//! filesystem are atomic and, with fsync on, durable before they return.
//!
//! `object_store`'s `LocalFileSystem` has no way to append to an object across requests, so the
//! local backend keeps upload bytes in a plain file at the upload key's path and appends to it
//! directly (the S3 backend will use multipart uploads instead).

mod local;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt};

use crate::domain::{Algorithm, Digest, UploadHasher, UploadId};

/// A key in the blob store; one `match` maps each to its path.
#[derive(Debug, Clone, Copy)]
pub enum StorageKey<'a> {
    /// The verified bytes of a blob.
    Blob(&'a Digest),
    /// The bytes received so far by an upload session.
    Upload(UploadId),
}

impl StorageKey<'_> {
    /// The object path of this key.
    pub fn path(&self) -> ObjectPath {
        match self {
            Self::Blob(d) => {
                ObjectPath::from_iter(["blobs", d.algorithm().as_str(), &d.hex()[..2], d.hex()])
            }
            Self::Upload(id) => ObjectPath::from_iter(["uploads", &id.to_string()]),
        }
    }
}

/// A failure of blob storage.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The object store failed.
    #[error("object store error")]
    ObjectStore(#[from] object_store::Error),
    /// A local file operation failed.
    #[error("blob storage I/O error")]
    Io(#[from] std::io::Error),
    /// A background storage task panicked or was cancelled.
    #[error("blob storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Why appending a request body to an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppendError<E> {
    /// Reading the request body failed (client disconnected, bad framing).
    #[error("reading the request body failed")]
    Body(#[source] E),
    /// Writing to storage failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
}

/// The bytes of a blob, or of a range of it, as a stream.
pub struct BlobRead {
    /// The byte range of the blob the stream carries.
    pub range: Range<u64>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, BlobError>>,
}

/// Blob bytes over an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    local: Arc<LocalFileSystem>,
}

impl BlobStore {
    /// A store in the local directory `root`, created if absent, with fsync on every write.
    pub fn local(root: &std::path::Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root)?;
        let fs = Arc::new(
            LocalFileSystem::new_with_prefix(root)?
                .with_fsync(true)
                .with_automatic_cleanup(false),
        );
        Ok(Self {
            objects: fs.clone(),
            local: fs,
        })
    }

    fn upload_file(&self, id: UploadId) -> Result<PathBuf, BlobError> {
        Ok(self
            .local
            .path_to_filesystem(&StorageKey::Upload(id).path())?)
    }

    /// Whether the verified bytes of `digest` are stored.
    pub async fn contains(&self, digest: &Digest) -> Result<bool, BlobError> {
        match self.objects.head(&StorageKey::Blob(digest).path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a blob, or the byte range `range` of it (already checked against its size).
    /// Returns `None` when the bytes are missing from storage.
    pub async fn get(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<Option<BlobRead>, BlobError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = match self
            .objects
            .get_opts(&StorageKey::Blob(digest).path(), options)
            .await
        {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, _) => local::read_file_range(file, range.clone()),
            GetResultPayload::Stream(s) => s.map_err(BlobError::from).boxed(),
        };
        Ok(Some(BlobRead { range, stream }))
    }

    /// Appends `body` to upload `id`, which has `offset` bytes stored, feeding every byte to
    /// `hasher`. Returns the number of bytes appended. Bytes are on disk (synced) when this
    /// returns; bytes past `offset` left by an earlier interrupted append are discarded first.
    pub async fn append_upload<S, E>(
        &self,
        id: UploadId,
        offset: u64,
        body: S,
        hasher: &mut UploadHasher,
    ) -> Result<u64, AppendError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    {
        let path = self.upload_file(id)?;
        local::append(path, offset, body, hasher).await
    }

    /// Makes the first `len` bytes of upload `id`, whose digest the caller verified, the
    /// stored bytes of `digest`. Atomic and durable: readers see either no blob or all of it.
    pub async fn commit_upload(
        &self,
        id: UploadId,
        len: u64,
        digest: &Digest,
    ) -> Result<(), BlobError> {
        let path = self.upload_file(id)?;
        tokio::task::spawn_blocking(move || local::seal(&path, len)).await??;
        self.objects
            .rename(
                &StorageKey::Upload(id).path(),
                &StorageKey::Blob(digest).path(),
            )
            .await?;
        Ok(())
    }

    /// Computes the digest of the first `len` bytes of upload `id` with `algorithm`, for a
    /// client that names a different algorithm at the end of an upload than at its start.
    pub async fn hash_upload(
        &self,
        id: UploadId,
        len: u64,
        algorithm: Algorithm,
    ) -> Result<Digest, BlobError> {
        let path = self.upload_file(id)?;
        Ok(tokio::task::spawn_blocking(move || local::hash_file(&path, len, algorithm)).await??)
    }

    /// Deletes the bytes of upload `id`, if any.
    pub async fn delete_upload(&self, id: UploadId) -> Result<(), BlobError> {
        match self.objects.delete(&StorageKey::Upload(id).path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn keys_map_to_the_documented_layout() {
        assert_eq!(
            StorageKey::Blob(&d('a')).path().as_ref(),
            format!("blobs/sha256/aa/{}", "a".repeat(64))
        );
        let id = UploadId::new_random();
        assert_eq!(
            StorageKey::Upload(id).path().as_ref(),
            format!("uploads/{id}")
        );
    }

    async fn read_all(read: BlobRead) -> Vec<u8> {
        read.stream
            .try_fold(Vec::new(), |mut acc, b| async move {
                acc.extend_from_slice(&b);
                Ok(acc)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn upload_append_commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let id = UploadId::new_random();
        let mut hasher = UploadHasher::new(Algorithm::Sha256);
        let chunks = vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ];
        let n = store
            .append_upload(id, 0, futures_util::stream::iter(chunks), &mut hasher)
            .await
            .unwrap();
        assert_eq!(n, 11);
        // A second append that fails midway leaves garbage past the offset...
        let bad = vec![
            Ok(Bytes::from_static(b"junk")),
            Err(std::io::Error::other("cut")),
        ];
        let mut scratch = hasher.clone();
        assert!(matches!(
            store
                .append_upload(id, 11, futures_util::stream::iter(bad), &mut scratch)
                .await,
            Err(AppendError::Body(_))
        ));
        // ...which committing at the recorded length discards.
        let digest = hasher.finish();
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
        assert!(!store.contains(&digest).await.unwrap());
        store.commit_upload(id, 11, &digest).await.unwrap();
        assert!(store.contains(&digest).await.unwrap());
        let all = store.get(&digest, None).await.unwrap().unwrap();
        assert_eq!(read_all(all).await, b"hello world");
        let part = store.get(&digest, Some(6..11)).await.unwrap().unwrap();
        assert_eq!(part.range, 6..11);
        assert_eq!(read_all(part).await, b"world");
        assert!(store.get(&d('b'), None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_empty_upload_commits_an_empty_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let id = UploadId::new_random();
        let digest = Digest::sha256_of(b"");
        store.commit_upload(id, 0, &digest).await.unwrap();
        let read = store.get(&digest, None).await.unwrap().unwrap();
        assert!(read_all(read).await.is_empty());
    }
}
