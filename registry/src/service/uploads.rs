//! Upload sessions: start, stream chunks, report status, complete with a verified digest,
//! cancel; and single-request monolithic uploads.
//!
//! While a request writes to a session it holds a lease recorded in SQL (renewed in the
//! background), so two requests can never interleave bytes in one session, on one replica or
//! several. The lease value doubles as a fencing token: a request whose lease was taken over
//! cannot record progress.

use std::sync::Arc;
use std::time::Duration;

use super::{ByteStream, Registry, RegistryError, RegistryResult};
use crate::blob::{AppendError, BlobLocation, Stage};
use crate::domain::{Algorithm, Digest, RepoName, UploadHasher, UploadId};
use crate::meta::{LeaseToken, MetaStore, UploadProgress, UploadRecord};

/// A new upload session.
#[derive(Debug, Clone)]
pub struct UploadStarted {
    /// Its id.
    pub id: UploadId,
}

/// Where an upload session stands.
#[derive(Debug, Clone, Copy)]
pub struct UploadState {
    /// Its id.
    pub id: UploadId,
    /// Bytes received so far.
    pub received: u64,
}

/// A chunk's declared position: `Content-Range: <start>-<end>` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
}

impl ChunkRange {
    fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

/// A held session lease, renewed in the background until dropped.
struct Lease {
    token: LeaseToken,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn keep(meta: Arc<dyn MetaStore>, id: UploadId, token: LeaseToken, lease_ms: u64) -> Self {
        let period = Duration::from_millis((lease_ms / 3).max(1));
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match meta.renew_upload_lease(id, token, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return, // Released or taken over: nothing left to keep.
                    Err(e) => tracing::warn!(error = %e, %id, "could not renew upload lease"),
                }
            }
        });
        Self { token, renewer }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Renewal is idempotent and fenced by the token, so stopping at any point is safe.
        self.renewer.abort();
    }
}

impl Registry {
    /// Starts an upload session in `repo` that will hash with `algorithm`.
    #[tracing::instrument(skip(self))]
    pub async fn start_upload(
        &self,
        repo: &RepoName,
        algorithm: Algorithm,
    ) -> RegistryResult<UploadStarted> {
        self.mirrors.refuse_push(repo)?;
        self.quota_admits_writes(repo).await?;
        let id = UploadId::new_random();
        self.meta
            .create_upload(&UploadRecord {
                id,
                repository: repo.clone(),
                received: 0,
                hash_state: UploadHasher::new(algorithm).save(),
                staging: None,
                pending: Vec::new(),
            })
            .await?;
        Ok(UploadStarted { id })
    }

    async fn session(&self, repo: &RepoName, id: UploadId) -> RegistryResult<UploadRecord> {
        match self.meta.upload(id).await? {
            Some(rec) if &rec.repository == repo => Ok(rec),
            _ => Err(RegistryError::UploadUnknown),
        }
    }

    /// Where upload `id` of `repo` stands.
    #[tracing::instrument(skip(self))]
    pub async fn upload_status(
        &self,
        repo: &RepoName,
        id: UploadId,
    ) -> RegistryResult<UploadState> {
        let rec = self.session(repo, id).await?;
        Ok(UploadState {
            id,
            received: rec.received,
        })
    }

    /// Appends a chunk (or a whole streamed body when `range` is `None`) to an upload.
    #[tracing::instrument(skip(self, body))]
    pub async fn upload_chunk(
        &self,
        repo: &RepoName,
        id: UploadId,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> RegistryResult<UploadState> {
        let rec = self.session(repo, id).await?;
        let lease = self.lease(&rec, range).await?;
        // Progress and release are one write on success.
        match self.append(&rec, &lease, range, body).await {
            Ok(received) => Ok(UploadState { id, received }),
            Err(e) => {
                self.meta.release_upload(id, lease.token).await?;
                Err(e)
            }
        }
    }

    /// Takes the session's lease after checking that a chunk starting at `range` fits.
    async fn lease(&self, rec: &UploadRecord, range: Option<ChunkRange>) -> RegistryResult<Lease> {
        if let Some(r) = range
            && r.start != rec.received
        {
            return Err(RegistryError::UploadOutOfOrder {
                start: r.start,
                received: rec.received,
            });
        }
        let lease_ms = self.limits.upload_lease_ms;
        match self
            .meta
            .lease_upload(rec.id, rec.received, lease_ms)
            .await?
        {
            Some(token) => Ok(Lease::keep(self.meta.clone(), rec.id, token, lease_ms)),
            None => Err(RegistryError::UploadBusy {
                received: rec.received,
            }),
        }
    }

    /// Appends `body` while holding `lease`, then records the progress and frees the lease in
    /// one write; returns the new offset.
    async fn append(
        &self,
        rec: &UploadRecord,
        lease: &Lease,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> RegistryResult<u64> {
        let stage = Stage::from_record(rec.staging.as_deref(), rec.pending.clone())?;
        let (to, hasher, stage) = self.write_bytes(rec, &stage, range, body).await?;
        let progress = UploadProgress {
            received: to,
            hash_state: hasher.save(),
            staging: stage.multipart_record(),
            pending: stage.pending.to_vec(),
        };
        let recorded = self
            .meta
            .advance_upload(rec.id, lease.token, rec.received, &progress, true)
            .await?;
        if !recorded {
            // The lease expired and another request took the session over.
            return Err(RegistryError::UploadBusy {
                received: rec.received,
            });
        }
        Ok(to)
    }

    /// Stores `body` after the session's bytes (the caller holds the lease) without
    /// recording progress; returns the new length, hasher and stage.
    async fn write_bytes(
        &self,
        rec: &UploadRecord,
        stage: &Stage,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> RegistryResult<(u64, UploadHasher, Stage)> {
        let mut hasher = UploadHasher::restore(&rec.hash_state)?;
        let (written, stage) = self
            .blobs
            .append_upload(rec.id, rec.received, stage, body, &mut hasher)
            .await
            .map_err(append_error)?;
        if let Some(r) = range
            && written != r.len()
        {
            return Err(RegistryError::SizeInvalid(format!(
                "Content-Range {}-{} announces {} bytes but the body had {written}",
                r.start,
                r.end,
                r.len()
            )));
        }
        Ok((rec.received + written, hasher, stage))
    }

    /// Completes an upload: appends the optional last chunk, verifies the digest of all bytes
    /// and makes the blob visible in `repo`. On a digest mismatch the session and its bytes
    /// are discarded and nothing is stored. The lease is held throughout, so no other request
    /// can write to the bytes being verified and moved.
    #[tracing::instrument(skip(self, body))]
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: UploadId,
        digest: &Digest,
        range: Option<ChunkRange>,
        body: Option<ByteStream>,
    ) -> RegistryResult<()> {
        let rec = self.session(repo, id).await?;
        let lease = self.lease(&rec, range).await?;
        let result = self
            .finish_leased(repo, &rec, &lease, digest, range, body)
            .await;
        if result.is_err() {
            self.meta.release_upload(id, lease.token).await?;
        }
        result
    }

    async fn finish_leased(
        &self,
        repo: &RepoName,
        rec: &UploadRecord,
        lease: &Lease,
        digest: &Digest,
        range: Option<ChunkRange>,
        body: Option<ByteStream>,
    ) -> RegistryResult<()> {
        let stage = Stage::from_record(rec.staging.as_deref(), rec.pending.clone())?;
        // The last chunk's progress is not recorded separately: the session either completes
        // below or fails, and bytes past the recorded offset are discarded by the next write.
        let (size, hasher, stage) = match body {
            Some(body) => self.write_bytes(rec, &stage, range, body).await?,
            None => (rec.received, UploadHasher::restore(&rec.hash_state)?, stage),
        };
        let actual = if hasher.algorithm() == digest.algorithm() {
            hasher.finish()
        } else {
            self.blobs
                .hash_upload(rec.id, size, digest.algorithm())
                .await?
        };
        if &actual != digest {
            self.meta.delete_upload(rec.id).await?;
            self.blobs.discard_upload(rec.id, &stage).await?;
            return Err(RegistryError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        if let Err(e) = self.quota_admits_blob(repo, digest, size).await {
            self.meta.delete_upload(rec.id).await?;
            self.blobs.discard_upload(rec.id, &stage).await?;
            return Err(e);
        }
        let location = self.blobs.commit_upload(rec.id, size, stage).await?;
        let new_blob = match self
            .meta
            .complete_upload(rec.id, lease.token, repo, digest, size, location.as_deref())
            .await?
        {
            Some(new_blob) => new_blob,
            // The session was taken over meanwhile, but the verified bytes are in place:
            // link the blob anyway.
            None => {
                self.meta
                    .link_blob(repo, digest, size, location.as_deref())
                    .await?
            }
        };
        self.drop_duplicate(digest, location, new_blob).await
    }

    /// Deletes our copy when the blob was already recorded (its first copy is kept). Our copy
    /// always went to a key of its own, even when the blob looked stored already: a copy that
    /// is being garbage-collected must never be the one a new push relies on.
    async fn drop_duplicate(
        &self,
        digest: &Digest,
        location: BlobLocation,
        new_blob: bool,
    ) -> RegistryResult<()> {
        if !new_blob {
            self.blobs.delete(digest, location.as_deref()).await?;
        }
        Ok(())
    }

    /// Stores a whole blob sent in one request (`POST ?digest=`), verifying its digest.
    #[tracing::instrument(skip(self, body))]
    pub async fn upload_monolithic(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> RegistryResult<()> {
        self.mirrors.refuse_push(repo)?;
        self.store_blob(repo, digest, body).await
    }

    /// Stores the blob `body` in `repo` if its bytes have `digest`; nothing is recorded
    /// otherwise (a push's single request, or a blob pulled through from an upstream).
    pub(super) async fn store_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> RegistryResult<()> {
        // No session row: if the process dies mid-request, the bytes are an orphan upload
        // file (or multipart upload) that no row names, and the client simply retries.
        let id = UploadId::new_random();
        let mut hasher = UploadHasher::new(digest.algorithm());
        let (size, stage) = match self
            .blobs
            .append_upload(id, 0, &Stage::default(), body, &mut hasher)
            .await
        {
            Ok(done) => done,
            Err(e) => {
                self.blobs.discard_upload(id, &Stage::default()).await?;
                return Err(append_error(e));
            }
        };
        let actual = hasher.finish();
        if &actual != digest {
            self.blobs.discard_upload(id, &stage).await?;
            return Err(RegistryError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        if let Err(e) = self.quota_admits_blob(repo, digest, size).await {
            self.blobs.discard_upload(id, &stage).await?;
            return Err(e);
        }
        let location = self.blobs.commit_upload(id, size, stage).await?;
        let new_blob = self
            .meta
            .link_blob(repo, digest, size, location.as_deref())
            .await?;
        self.drop_duplicate(digest, location, new_blob).await
    }

    /// Cancels an upload session and discards its bytes.
    #[tracing::instrument(skip(self))]
    pub async fn cancel_upload(&self, repo: &RepoName, id: UploadId) -> RegistryResult<()> {
        let rec = self.session(repo, id).await?;
        self.meta.delete_upload(id).await?;
        let stage = Stage::from_record(rec.staging.as_deref(), Vec::new())?;
        self.blobs.discard_upload(id, &stage).await?;
        Ok(())
    }

    /// Deletes upload sessions idle for longer than `ttl` and discards their bytes; returns
    /// how many. Safe to run on every replica at once: each session is taken by one.
    pub async fn expire_uploads(&self, ttl: Duration) -> RegistryResult<usize> {
        let cutoff = crate::meta::now_ms()
            .saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let mut total = 0;
        loop {
            let expired = self.meta.take_expired_uploads(cutoff, 100).await?;
            let n = expired.len();
            for rec in expired {
                let stage = Stage::from_record(rec.staging.as_deref(), Vec::new())?;
                if let Err(e) = self.blobs.discard_upload(rec.id, &stage).await {
                    tracing::warn!(error = %e, id = %rec.id, "could not discard the bytes of an expired upload");
                }
            }
            total += n;
            if n < 100 {
                return Ok(total);
            }
        }
    }
}

fn append_error(e: AppendError<std::io::Error>) -> RegistryError {
    match e {
        AppendError::Body(e) => RegistryError::BodyIncomplete(e),
        AppendError::Storage(e) => e.into(),
    }
}
