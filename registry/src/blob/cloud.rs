//! Upload staging on cloud object stores: bytes stream into multipart-upload parts of a fixed
//! size; fewer than a part's worth are returned as pending bytes for the caller to persist and
//! hand back with the next chunk. Memory per request is bounded by the part size.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{AppendError, BlobError, BlobLocation, Multipart, Stage, StorageKey};
use crate::domain::{UploadHasher, UploadId};

/// Streams `body` after `stage`'s pending bytes into parts; see
/// [`super::BlobStore::append_upload`].
pub(super) async fn append<S, E>(
    store: &dyn MultipartStore,
    id: UploadId,
    stage: &Stage,
    part_size: usize,
    mut body: S,
    hasher: &mut UploadHasher,
) -> Result<(u64, Stage), AppendError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
{
    let mut next = stage.clone();
    let result = fill_parts(store, id, &mut next, part_size, &mut body, hasher).await;
    if result.is_err() && stage.multipart.is_none() {
        // A multipart upload this call started is recorded nowhere yet: abort it now.
        // (Parts added to an existing one are simply sent again by the next request.)
        let _ = discard(store, id, &next).await;
    }
    result.map(|written| (written, next))
}

async fn fill_parts<S, E>(
    store: &dyn MultipartStore,
    id: UploadId,
    stage: &mut Stage,
    part_size: usize,
    body: &mut S,
    hasher: &mut UploadHasher,
) -> Result<u64, AppendError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
{
    let mut buf = BytesMut::with_capacity(part_size.min(stage.pending.len() + (1 << 20)));
    buf.extend_from_slice(&stage.pending);
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(AppendError::Body)?;
        hasher.update(&chunk);
        written += chunk.len() as u64;
        buf.extend_from_slice(&chunk);
        while buf.len() >= part_size {
            let part = buf.split_to(part_size).freeze();
            put_part(store, id, stage, part).await?;
        }
    }
    stage.pending = buf.freeze();
    Ok(written)
}

/// Sends one part, starting the multipart upload with the first one.
async fn put_part(
    store: &dyn MultipartStore,
    id: UploadId,
    stage: &mut Stage,
    part: Bytes,
) -> Result<(), BlobError> {
    let path = StorageKey::Assembled(id).path();
    let multipart = match &mut stage.multipart {
        Some(m) => m,
        None => stage.multipart.insert(Multipart {
            id: store.create_multipart(&path).await?,
            parts: Vec::new(),
        }),
    };
    let index = multipart.parts.len();
    let PartId { content_id } = store
        .put_part(&path, &multipart.id, index, PutPayload::from_bytes(part))
        .await?;
    multipart.parts.push(content_id);
    Ok(())
}

/// Stores a verified upload: small uploads (never more than pending bytes) go to the
/// canonical key in one request; others get their last part and are assembled in place.
pub(super) async fn commit(
    objects: &dyn ObjectStore,
    store: &dyn MultipartStore,
    id: UploadId,
    mut stage: Stage,
) -> Result<BlobLocation, BlobError> {
    if stage.multipart.is_none() {
        // Small enough for one request; still a key of its own (see the module's layout).
        let path = StorageKey::Assembled(id).path();
        objects
            .put(&path, PutPayload::from_bytes(stage.pending))
            .await?;
        return Ok(Some(path.to_string()));
    }
    let pending = std::mem::take(&mut stage.pending);
    if !pending.is_empty() {
        // The last part may be smaller than the store's minimum part size.
        put_part(store, id, &mut stage, pending).await?;
    }
    let Some(multipart) = stage.multipart else {
        return Err(BlobError::Unsupported("multipart upload vanished"));
    };
    let path = StorageKey::Assembled(id).path();
    let parts = multipart
        .parts
        .into_iter()
        .map(|content_id| PartId { content_id })
        .collect();
    store
        .complete_multipart(&path, &multipart.id, parts)
        .await?;
    Ok(Some(path.to_string()))
}

/// Aborts the multipart upload of a session, if it started one.
pub(super) async fn discard(
    store: &dyn MultipartStore,
    id: UploadId,
    stage: &Stage,
) -> Result<(), BlobError> {
    let Some(m) = &stage.multipart else {
        return Ok(());
    };
    match store
        .abort_multipart(&StorageKey::Assembled(id).path(), &m.id)
        .await
    {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
