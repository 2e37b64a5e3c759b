//! Content-addressed blob bytes in object storage, and the bytes of uploads in progress.
//!
//! Depends on `domain` only. Every key the registry writes is a [`StorageKey`]; the layout of
//! the store (a local directory, or a bucket) is:
//!
//! ```text
//! <root>/
//! ├── blobs/
//! │   ├── sha256/<first two hex digits>/<64 hex digits>    verified blob bytes stored by earlier
//! │   └── sha512/<first two hex digits>/<128 hex digits>   versions, never rewritten
//! ├── data/<upload id>                                     verified blob bytes, one key per
//! │                                                        stored copy (the upload that wrote it)
//! └── uploads/<upload id>                                  local directory only: bytes received
//!                                                          by an upload session so far
//! ```
//!
//! A blob key is only written with bytes whose digest was verified, and the database names a
//! blob only after its bytes are stored, so a reader never sees a partial or wrong blob. Every
//! stored copy has a key of its own, never reused: garbage collection deletes a key only after
//! the row naming it is gone, and no later upload can be given that key again, so a blob pushed
//! while its previous copy is being collected is never lost.
//!
//! Two backends keep upload bytes differently. The local directory appends to a plain file
//! (`object_store`'s `LocalFileSystem` cannot append across requests) and renames it into place,
//! atomically and synced. Cloud stores (S3, GCS, Azure) stream bytes into multipart-upload
//! parts; less than a part is carried between requests in the database as the session's
//! pending bytes, so memory per request stays bounded by the part size and any replica can
//! continue any session.

mod cloud;
mod local;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::domain::{Algorithm, Digest, UploadHasher, UploadId};

/// A key in the blob store; one `match` maps each to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKey<'a> {
    /// The verified bytes of a blob, at its canonical key.
    Blob(&'a Digest),
    /// A verified blob assembled by a cloud multipart upload.
    Assembled(UploadId),
    /// The bytes received so far by an upload session (local directory).
    Upload(UploadId),
}

impl StorageKey<'_> {
    /// The object path of this key.
    pub fn path(&self) -> ObjectPath {
        match self {
            Self::Blob(d) => {
                ObjectPath::from_iter(["blobs", d.algorithm().as_str(), &d.hex()[..2], d.hex()])
            }
            Self::Assembled(id) => ObjectPath::from_iter(["data", &id.to_string()]),
            Self::Upload(id) => ObjectPath::from_iter(["uploads", &id.to_string()]),
        }
    }
}

/// Where a stored blob's bytes are, as the database records it: `None` for the canonical
/// key, or the key of an assembled upload.
pub type BlobLocation = Option<String>;

fn location_path(digest: &Digest, location: Option<&str>) -> Result<ObjectPath, BlobError> {
    match location {
        None => Ok(StorageKey::Blob(digest).path()),
        Some(key) => copy_path(key),
    }
}

/// The path of a copy at `data/<upload id>`. Only keys this module wrote are accepted back,
/// so a damaged row cannot point reads (or deletes) anywhere else in the bucket.
fn copy_path(key: &str) -> Result<ObjectPath, BlobError> {
    key.strip_prefix("data/")
        .and_then(|id| UploadId::parse(id).ok())
        .map(|id| StorageKey::Assembled(id).path())
        .ok_or_else(|| BlobError::BadLocation(key.to_owned()))
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
    /// A recorded location is not one this registry writes.
    #[error("invalid blob location {0:?}")]
    BadLocation(String),
    /// A session's recorded multipart state does not parse.
    #[error("invalid upload staging state")]
    BadStaging(#[source] serde_json::Error),
    /// The operation needs bytes this backend does not keep (re-hashing a cloud upload).
    #[error("{0}")]
    Unsupported(&'static str),
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

/// The bytes of a whole blob for a reader on a blocking thread (an inventory's layer walk).
pub enum BlobSource {
    /// A local file, read in place: the blob is `range` of it. Reading it directly on the
    /// reader's thread saves a hand-off to another thread and back for every chunk.
    File(std::fs::File, Range<u64>),
    /// The bytes from a remote store, as a stream.
    Stream(BoxStream<'static, Result<Bytes, BlobError>>),
}

/// A stored copy of blob bytes, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCopy {
    /// Its location (`data/<upload id>`).
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, Unix ms.
    pub written_at: i64,
}

/// A cloud multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multipart {
    /// The store's multipart upload id.
    pub id: String,
    /// The ETag (content id) of each part sent, in order.
    pub parts: Vec<String>,
}

/// What an upload session has staged besides the bytes in its file or parts: the multipart
/// upload (cloud stores) and the pending bytes not yet sent as a part. Empty for the local
/// directory. Persisted with the session, so any replica can continue it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage {
    /// The multipart upload, once its first part was sent.
    pub multipart: Option<Multipart>,
    /// Received bytes not yet sent as a part (fewer than one part).
    pub pending: Bytes,
}

impl Stage {
    /// Restores a stage from its stored form.
    pub fn from_record(multipart: Option<&str>, pending: Vec<u8>) -> Result<Self, BlobError> {
        Ok(Self {
            multipart: multipart
                .map(serde_json::from_str)
                .transpose()
                .map_err(BlobError::BadStaging)?,
            pending: pending.into(),
        })
    }

    /// The multipart state as stored (JSON), if any.
    pub fn multipart_record(&self) -> Option<String> {
        self.multipart
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok())
    }
}

/// Where a backend keeps the bytes of uploads in progress.
#[derive(Clone)]
enum Staging {
    /// A file per session under the local directory.
    Local(Arc<LocalFileSystem>),
    /// Multipart uploads on a cloud store.
    Multipart {
        store: Arc<dyn MultipartStore>,
        part_size: usize,
    },
}

/// Blob bytes over an [`ObjectStore`].
#[derive(Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    staging: Staging,
    redirect: Option<(Arc<dyn Signer>, Duration)>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("objects", &self.objects.to_string())
            .finish_non_exhaustive()
    }
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
            staging: Staging::Local(fs),
            redirect: None,
        })
    }

    /// A store on a cloud object store (S3 and compatible, GCS, Azure) that also speaks its
    /// multipart API; uploads are sent in parts of `part_size` bytes.
    pub fn cloud<S>(store: Arc<S>, part_size: usize) -> Self
    where
        S: ObjectStore + MultipartStore,
    {
        Self {
            objects: store.clone(),
            staging: Staging::Multipart { store, part_size },
            redirect: None,
        }
    }

    /// Answers blob downloads with redirects to URLs presigned by `signer`, valid for `ttl`.
    pub fn with_redirects(mut self, signer: Arc<dyn Signer>, ttl: Duration) -> Self {
        self.redirect = Some((signer, ttl));
        self
    }

    /// Checks that the store answers (for readiness probes): a missing key is an answer.
    pub async fn ping(&self) -> Result<(), BlobError> {
        match self
            .objects
            .head(&ObjectPath::from("berth-readiness-probe"))
            .await
        {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn upload_file(local: &LocalFileSystem, id: UploadId) -> Result<PathBuf, BlobError> {
        Ok(local.path_to_filesystem(&StorageKey::Upload(id).path())?)
    }

    /// Whether blob downloads are answered with redirects to presigned URLs.
    pub fn redirects(&self) -> bool {
        self.redirect.is_some()
    }

    /// A presigned URL for `method` on the blob, when redirects are on.
    pub async fn redirect_url(
        &self,
        digest: &Digest,
        location: Option<&str>,
        method: http::Method,
    ) -> Result<Option<String>, BlobError> {
        let Some((signer, ttl)) = &self.redirect else {
            return Ok(None);
        };
        let path = location_path(digest, location)?;
        Ok(Some(
            signer.signed_url(method, &path, *ttl).await?.to_string(),
        ))
    }

    /// Reads a blob stored at `location`, or the byte range `range` of it (already checked
    /// against its size). Returns `None` when the bytes are missing from storage.
    pub async fn get(
        &self,
        digest: &Digest,
        location: Option<&str>,
        range: Option<Range<u64>>,
    ) -> Result<Option<BlobRead>, BlobError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let path = location_path(digest, location)?;
        let result = match self.objects.get_opts(&path, options).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, _) => local::read_file_range(file, range.clone()),
            GetResultPayload::Stream(s) => Box::pin(s.map_err(BlobError::from)),
        };
        Ok(Some(BlobRead { range, stream }))
    }

    /// The whole of a blob stored at `location`, for a blocking reader: a local file is handed
    /// over as it is, a remote object as a stream. `None` when the bytes are missing.
    pub async fn source(
        &self,
        digest: &Digest,
        location: Option<&str>,
    ) -> Result<Option<BlobSource>, BlobError> {
        let path = location_path(digest, location)?;
        let result = match self.objects.get_opts(&path, GetOptions::default()).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let range = result.range.clone();
        Ok(Some(match result.payload {
            GetResultPayload::File(file, _) => BlobSource::File(file, range),
            GetResultPayload::Stream(s) => BlobSource::Stream(Box::pin(s.map_err(BlobError::from))),
        }))
    }

    /// Appends `body` to upload `id`, which has `offset` bytes stored and `stage` staged,
    /// feeding every byte to `hasher`. Returns the number of bytes appended and the new stage.
    /// Bytes are durable when this returns (synced file, or parts the store acknowledged,
    /// plus pending bytes the caller records); bytes left past `offset` by an earlier
    /// interrupted append are discarded or overwritten.
    pub async fn append_upload<S, E>(
        &self,
        id: UploadId,
        offset: u64,
        stage: &Stage,
        body: S,
        hasher: &mut UploadHasher,
    ) -> Result<(u64, Stage), AppendError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    {
        match &self.staging {
            Staging::Local(fs) => {
                let path = Self::upload_file(fs, id)?;
                let written = local::append(path, offset, body, hasher).await?;
                Ok((written, Stage::default()))
            }
            Staging::Multipart { store, part_size } => {
                cloud::append(store.as_ref(), id, stage, *part_size, body, hasher).await
            }
        }
    }

    /// Makes the first `len` bytes of upload `id`, whose digest the caller verified, a stored
    /// copy of that blob under a key of its own. Atomic and durable: readers see either no
    /// blob or all of it. Returns where the bytes now are.
    pub async fn commit_upload(
        &self,
        id: UploadId,
        len: u64,
        stage: Stage,
    ) -> Result<BlobLocation, BlobError> {
        match &self.staging {
            Staging::Local(fs) => {
                let path = Self::upload_file(fs, id)?;
                tokio::task::spawn_blocking(move || local::seal(&path, len)).await??;
                let key = StorageKey::Assembled(id).path();
                self.objects
                    .rename(&StorageKey::Upload(id).path(), &key)
                    .await?;
                Ok(Some(key.to_string()))
            }
            Staging::Multipart { store, .. } => {
                cloud::commit(self.objects.as_ref(), store.as_ref(), id, stage).await
            }
        }
    }

    /// Computes the digest of the first `len` bytes of upload `id` with `algorithm`, for a
    /// client that names a different algorithm at the end of an upload than at its start.
    pub async fn hash_upload(
        &self,
        id: UploadId,
        len: u64,
        algorithm: Algorithm,
    ) -> Result<Digest, BlobError> {
        match &self.staging {
            Staging::Local(fs) => {
                let path = Self::upload_file(fs, id)?;
                Ok(
                    tokio::task::spawn_blocking(move || local::hash_file(&path, len, algorithm))
                        .await??,
                )
            }
            Staging::Multipart { .. } => Err(BlobError::Unsupported(
                "this upload was hashed as it arrived with another algorithm; start it with ?digest-algorithm= naming the digest's algorithm",
            )),
        }
    }

    /// Deletes the staged bytes of upload `id`: its file, or its multipart upload.
    pub async fn discard_upload(&self, id: UploadId, stage: &Stage) -> Result<(), BlobError> {
        match &self.staging {
            Staging::Local(_) => match self.objects.delete(&StorageKey::Upload(id).path()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Staging::Multipart { store, .. } => cloud::discard(store.as_ref(), id, stage).await,
        }
    }

    /// Every stored copy under `data/` (each upload's own key): its location as the database
    /// records it, its size and when it was written (Unix ms). For the orphan sweep.
    pub fn copies(&self) -> BoxStream<'static, Result<StoredCopy, BlobError>> {
        Box::pin(
            self.objects
                .list(Some(&ObjectPath::from("data")))
                .map_ok(|meta| StoredCopy {
                    location: meta.location.to_string(),
                    size: meta.size,
                    written_at: meta.last_modified.timestamp_millis(),
                })
                .map_err(BlobError::from),
        )
    }

    /// Deletes a stored copy no row names (the orphan sweep); gone already is fine.
    pub async fn delete_copy(&self, location: &str) -> Result<(), BlobError> {
        let path = copy_path(location)?;
        match self.objects.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the bytes of `digest` at `location` (a copy that turned out to duplicate a blob
    /// recorded meanwhile, or a blob garbage collection removed); gone already is not an error.
    pub async fn delete(&self, digest: &Digest, location: Option<&str>) -> Result<(), BlobError> {
        let path = location_path(digest, location)?;
        match self.objects.delete(&path).await {
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

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
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
        assert_eq!(
            StorageKey::Assembled(id).path().as_ref(),
            format!("data/{id}")
        );
    }

    #[test]
    fn only_locations_this_module_writes_are_read_back() {
        let id = UploadId::new_random();
        assert!(location_path(&d('a'), Some(&format!("data/{id}"))).is_ok());
        for bad in [
            "../etc/passwd",
            "data/../../x",
            "blobs/sha256/aa/x",
            "data/not-a-uuid",
        ] {
            assert!(location_path(&d('a'), Some(bad)).is_err(), "{bad}");
        }
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
    async fn local_upload_append_commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let id = UploadId::new_random();
        let mut hasher = UploadHasher::new(Algorithm::Sha256);
        let (n, stage) = store
            .append_upload(
                id,
                0,
                &Stage::default(),
                chunks(&[b"hello ", b"world"]),
                &mut hasher,
            )
            .await
            .unwrap();
        assert_eq!(n, 11);
        // A second append that fails midway leaves garbage past the offset...
        let bad = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"junk")),
            Err(std::io::Error::other("cut")),
        ]);
        let mut scratch = hasher.clone();
        assert!(matches!(
            store.append_upload(id, 11, &stage, bad, &mut scratch).await,
            Err(AppendError::Body(_))
        ));
        // ...which committing at the recorded length discards.
        let digest = hasher.finish();
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
        let location = store.commit_upload(id, 11, stage).await.unwrap();
        assert_eq!(location, Some(format!("data/{id}")), "a key of its own");
        let at = location.as_deref();
        let all = store.get(&digest, at, None).await.unwrap().unwrap();
        assert_eq!(read_all(all).await, b"hello world");
        let part = store.get(&digest, at, Some(6..11)).await.unwrap().unwrap();
        assert_eq!(part.range, 6..11);
        assert_eq!(read_all(part).await, b"world");
        assert!(store.get(&d('b'), None, None).await.unwrap().is_none());
        // Deleting a copy (garbage collection, a duplicate) is idempotent.
        store.delete(&digest, at).await.unwrap();
        assert!(store.get(&digest, at, None).await.unwrap().is_none());
        store.delete(&digest, at).await.unwrap();
    }

    #[tokio::test]
    async fn an_empty_local_upload_commits_an_empty_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let id = UploadId::new_random();
        let digest = Digest::sha256_of(b"");
        let location = store.commit_upload(id, 0, Stage::default()).await.unwrap();
        let read = store
            .get(&digest, location.as_deref(), None)
            .await
            .unwrap()
            .unwrap();
        assert!(read_all(read).await.is_empty());
    }

    #[tokio::test]
    async fn cloud_uploads_stream_into_parts_and_carry_the_rest_as_pending_bytes() {
        let memory = Arc::new(object_store::memory::InMemory::new());
        let store = BlobStore::cloud(memory, 4);
        let id = UploadId::new_random();
        let mut hasher = UploadHasher::new(Algorithm::Sha256);
        // 6 bytes: one 4-byte part, 2 pending.
        let (n, stage) = store
            .append_upload(
                id,
                0,
                &Stage::default(),
                chunks(&[b"abc", b"def"]),
                &mut hasher,
            )
            .await
            .unwrap();
        assert_eq!(n, 6);
        assert_eq!(stage.multipart.as_ref().map(|m| m.parts.len()), Some(1));
        assert_eq!(stage.pending.as_ref(), b"ef");
        // The stage survives its stored form, as it would between replicas.
        let stored =
            Stage::from_record(stage.multipart_record().as_deref(), stage.pending.to_vec())
                .unwrap();
        assert_eq!(stored, stage);
        let (n, stage) = store
            .append_upload(id, 6, &stored, chunks(&[b"ghijk"]), &mut hasher)
            .await
            .unwrap();
        assert_eq!(n, 5);
        assert_eq!(stage.multipart.as_ref().map(|m| m.parts.len()), Some(2));
        assert_eq!(stage.pending.as_ref(), b"ijk");
        let digest = hasher.finish();
        assert_eq!(digest, Digest::sha256_of(b"abcdefghijk"));
        let location = store.commit_upload(id, 11, stage).await.unwrap();
        assert_eq!(location, Some(format!("data/{id}")));
        let read = store
            .get(&digest, location.as_deref(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(read).await, b"abcdefghijk");
    }

    #[tokio::test]
    async fn small_cloud_uploads_are_one_put_under_a_key_of_their_own() {
        let memory = Arc::new(object_store::memory::InMemory::new());
        let store = BlobStore::cloud(memory, 1 << 20);
        let id = UploadId::new_random();
        let mut hasher = UploadHasher::new(Algorithm::Sha256);
        let (_, stage) = store
            .append_upload(id, 0, &Stage::default(), chunks(&[b"tiny"]), &mut hasher)
            .await
            .unwrap();
        assert!(stage.multipart.is_none());
        let digest = hasher.finish();
        let location = store.commit_upload(id, 4, stage).await.unwrap();
        assert_eq!(location, Some(format!("data/{id}")));
        let read = store
            .get(&digest, location.as_deref(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(read).await, b"tiny");
    }
}
