//! Blobs through a pull-through cache. A blob missing locally is streamed from the upstream
//! to the client while the same bytes are stored through the push path, which verifies the
//! digest before the blob becomes visible. Memory per request stays constant: a few chunks
//! in flight between the upstream, the store and the client.
//!
//! The client's copy of the last chunk is held back until the stored bytes are verified, so
//! a client never receives a complete body that does not have the digest it asked for: on a
//! mismatch its response breaks off instead. A client that goes away, or stops reading for
//! the body idle timeout, does not stop the fetch: it is sent nothing more (its response
//! ends short of its `Content-Length`) and the blob is still stored, if it verifies, for the
//! next pull. Two clients pulling the same missing blob fetch it twice; the second copy is
//! dropped when it finds the first recorded.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Source, not_admitted, upstream_failure};
use crate::blob::{BlobError, BlobRead};
use crate::domain::{Digest, RepoName};
use crate::service::{BlobContent, ByteStream, Registry, RegistryError, RegistryResult};
use crate::telemetry::error_chain;

/// Chunks buffered between the upstream and a slow client (the store reads in step with
/// the client, so a slow client slows the fetch rather than growing a buffer).
const CHUNKS_IN_FLIGHT: usize = 8;

/// Whether a local read found nothing (so an upstream may have it).
fn is_miss<T>(r: &RegistryResult<T>) -> bool {
    matches!(
        r,
        Err(RegistryError::BlobUnknown(_) | RegistryError::NameUnknown(_))
    )
}

impl Registry {
    /// The storage redirect for a client's blob pull, as [`Registry::blob_redirect`]; `None`
    /// also when the blob is to be fetched from an upstream (it is served here then).
    pub async fn pull_blob_redirect(
        &self,
        repo: &RepoName,
        digest: &Digest,
        method: http::Method,
    ) -> RegistryResult<Option<String>> {
        let local = self.blob_redirect(repo, digest, method).await;
        match self.mirrors.source(repo) {
            Source::Upstream(..) if is_miss(&local) => Ok(None),
            _ => local,
        }
    }

    /// A blob's size for a client's `HEAD`; in a mirrored namespace a blob missing locally
    /// is looked up upstream (and not fetched: a `HEAD` stores nothing).
    pub async fn pull_blob_size(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<u64> {
        let local = self.blob_size(repo, digest).await;
        if !is_miss(&local) {
            return local;
        }
        match self.mirrors.source(repo) {
            Source::Local => local,
            Source::Refused(mirror) => Err(not_admitted(repo, mirror)),
            Source::Upstream(mirror, name) => {
                mirror.upstream.blob_size(&name, digest).await.map_err(|e| {
                    upstream_failure(mirror, e, RegistryError::BlobUnknown(digest.clone()))
                })
            }
        }
    }

    /// Reads a blob for a client's `GET`: like [`Registry::read_blob`], but in a mirrored
    /// namespace a blob missing locally is fetched from the upstream, stored and served at
    /// once (whole, even if a range was asked for).
    #[tracing::instrument(skip(self))]
    pub async fn pull_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<crate::service::ByteRange>,
    ) -> RegistryResult<BlobContent> {
        let local = self.read_blob(repo, digest, range).await;
        if !is_miss(&local) {
            return local;
        }
        let (mirror, name) = match self.mirrors.source(repo) {
            Source::Local => return local,
            Source::Refused(mirror) => return Err(not_admitted(repo, mirror)),
            Source::Upstream(mirror, name) => (mirror, name),
        };
        let fetched =
            mirror.upstream.blob(&name, digest).await.map_err(|e| {
                upstream_failure(mirror, e, RegistryError::BlobUnknown(digest.clone()))
            })?;
        let size = fetched.size;
        let (to_client, from_store) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let client = Client {
            sender: Some(to_client.clone()),
            patience: self.limits.body_idle_timeout,
            held: Arc::new(Mutex::new(None)),
        };
        let held = client.held.clone();
        let body = tee(fetched.stream, client);
        let registry = self.clone();
        let patience = self.limits.body_idle_timeout;
        let (repo, digest, upstream) = (
            repo.clone(),
            digest.clone(),
            mirror.upstream.url().to_owned(),
        );
        tokio::spawn(async move {
            let last = match registry.store_blob(&repo, &digest, body).await {
                Ok(()) => {
                    tracing::info!(repository = %repo, %digest, size, %upstream, "cached a blob from the upstream");
                    // `None` also when the client was given up on: it must not get a
                    // chunk after the gap its abandoned ones left.
                    held.lock().ok().and_then(|mut h| h.take()).map(Ok)
                }
                Err(e) => {
                    tracing::warn!(repository = %repo, %digest, %upstream, error = %error_chain(&e), "blob from the upstream not stored");
                    Some(Err(BlobError::Io(std::io::Error::other(
                        "the upstream blob could not be stored",
                    ))))
                }
            };
            if let Some(last) = last {
                // The client may be gone or stalled; the blob is stored either way.
                let _ = tokio::time::timeout(patience, to_client.send(last)).await;
            }
        });
        let stream = futures_util::stream::unfold(from_store, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(BlobContent {
            size,
            partial: false,
            read: BlobRead {
                range: 0..size,
                stream: Box::pin(stream),
            },
        })
    }
}

/// The client's side of a fetch.
struct Client {
    /// Where its chunks go; `None` once it has gone away or stopped reading.
    sender: Option<mpsc::Sender<Result<Bytes, BlobError>>>,
    /// How long a chunk may wait for the client to take it.
    patience: std::time::Duration,
    /// The last chunk, left here for after verification; cleared if the client was given up.
    held: Arc<Mutex<Option<Bytes>>>,
}

impl Client {
    async fn send(&mut self, chunk: Bytes) {
        let Some(sender) = &self.sender else {
            return;
        };
        match tokio::time::timeout(self.patience, sender.send(Ok(chunk))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => self.sender = None,
        }
    }
}

/// The upstream's bytes as the store reads them, each chunk but the newest also sent to the
/// client; the newest is left in `client.held` when the upstream ends (unless the client was
/// given up on).
fn tee(upstream: ByteStream, client: Client) -> ByteStream {
    struct Tee {
        upstream: ByteStream,
        client: Client,
        newest: Option<Bytes>,
    }
    let state = Tee {
        upstream,
        client,
        newest: None,
    };
    Box::pin(futures_util::stream::unfold(state, |mut t| async move {
        match t.upstream.next().await {
            Some(Ok(chunk)) => {
                if let Some(previous) = t.newest.replace(chunk.clone()) {
                    t.client.send(previous).await;
                }
                Some((Ok(chunk), t))
            }
            Some(Err(e)) => Some((Err(e), t)),
            None => {
                if t.client.sender.is_some()
                    && let Ok(mut held) = t.client.held.lock()
                {
                    *held = t.newest.take();
                }
                None
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> ByteStream {
        let items: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    fn client(tx: mpsc::Sender<Result<Bytes, BlobError>>) -> Client {
        Client {
            sender: Some(tx),
            patience: std::time::Duration::from_millis(100),
            held: Arc::new(Mutex::new(None)),
        }
    }

    #[tokio::test]
    async fn the_client_gets_every_chunk_but_the_last_until_the_store_is_done() {
        let (tx, mut rx) = mpsc::channel(8);
        let client = client(tx);
        let held = client.held.clone();
        let stored: Vec<Bytes> = tee(chunks(&["a", "b", "c"]), client)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(stored, ["a", "b", "c"]);
        let mut sent = Vec::new();
        while let Some(c) = rx.recv().await {
            sent.push(c.unwrap());
        }
        assert_eq!(sent, ["a", "b"]);
        assert_eq!(held.lock().unwrap().take(), Some(Bytes::from_static(b"c")));
    }

    #[tokio::test]
    async fn a_departed_client_does_not_stop_the_store() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let client = client(tx);
        let held = client.held.clone();
        let stored: Vec<Bytes> = tee(chunks(&["a", "b", "c", "d"]), client)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(stored.len(), 4);
        assert_eq!(held.lock().unwrap().take(), None, "nothing more for it");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_given_up_after_its_patience() {
        // Room for one chunk, never read: the second send waits, then gives up.
        let (tx, mut rx) = mpsc::channel(1);
        let client = client(tx);
        let held = client.held.clone();
        let stored: Vec<Bytes> = tee(chunks(&["a", "b", "c", "d"]), client)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(stored.len(), 4, "the store read everything");
        assert_eq!(held.lock().unwrap().take(), None);
        // What the client can still read is a prefix, then the end: never a gap.
        assert_eq!(rx.recv().await.unwrap().unwrap(), "a");
        assert!(rx.recv().await.is_none());
    }
}
