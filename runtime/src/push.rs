//! `push`: uploads an image from the store. Blobs the registry already has are skipped
//! (`HEAD`); a blob that came from another repository of the same registry is mounted
//! (`POST ?mount=&from=`) rather than uploaded; the rest stream from disk in chunks. The
//! manifest goes last, byte for byte as stored, so its digest is unchanged.

use futures_util::TryStreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};

use crate::store::{Store, StoreError};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The image is not in the store.
    #[error("no such image: {0}")]
    NoImage(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] OciDistributionError),
    /// The stored manifest is not JSON.
    #[error("the stored manifest is damaged: {0}")]
    Manifest(String),
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The manifest digest.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// Pushes the store's image `name` to `target`.
pub async fn push(
    store: &Store,
    name: &str,
    target: &Reference,
    auth: &RegistryAuth,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Pushed, PushError> {
    let record = store
        .image(name)?
        .ok_or_else(|| PushError::NoImage(name.to_owned()))?;
    let client = crate::pull::client_for(target);
    client.auth(target, auth, RegistryOperation::Push).await?;
    // Mount only within one registry, from a repository other than the target.
    let mount_from = record.source.as_deref().and_then(|s| {
        let (registry, repository) = s.split_once('/')?;
        (registry == target.resolve_registry() && repository != target.repository()).then(|| {
            Reference::with_tag(registry.to_owned(), repository.to_owned(), "latest".into())
        })
    });
    let mut pushed = Pushed::default();
    for digest in record.layers.iter().chain(std::iter::once(&record.config)) {
        let short = &crate::store::digest_hex(digest)?[..12];
        if client.blob_exists(target, digest).await? {
            progress(&format!("{short}: already exists"));
            pushed.skipped += 1;
            continue;
        }
        if let Some(from) = &mount_from
            && client.mount_blob(target, from, digest).await.is_ok()
        {
            progress(&format!("{short}: mounted from {}", from.repository()));
            pushed.mounted += 1;
            continue;
        }
        let path = store.blob_path(digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(OciDistributionError::IoError)?;
        let size = file
            .metadata()
            .await
            .map_err(OciDistributionError::IoError)?
            .len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
            .map_err(OciDistributionError::IoError);
        client
            .push_blob_stream(target, stream, digest, Some(size))
            .await?;
        progress(&format!("{short}: pushed {size} bytes"));
        pushed.uploaded += 1;
    }
    let bytes = store.read_blob(&record.manifest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| PushError::Manifest(e.to_string()))?["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let content_type = media_type
        .parse()
        .map_err(|_| PushError::Manifest(format!("bad media type {media_type:?}")))?;
    client
        .push_manifest_raw(target, bytes, content_type)
        .await?;
    pushed.digest = record.manifest;
    Ok(pushed)
}
