//! File operations of the local backend, run on blocking threads so the async runtime never
//! waits on disk I/O, and never while waiting on a client (the blocking threads are few and
//! shared: see [`append`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use sha2::Digest as _;
use tokio::sync::mpsc;

use super::{AppendError, BlobError};
use crate::domain::{Algorithm, Digest, UploadHasher};

/// Bytes read from disk per chunk when serving a blob.
const READ_CHUNK: usize = 128 * 1024;
/// Chunks read ahead of a download: one overlaps the disk with the network, more would only
/// hold memory for a client that reads slowly or not at all.
const READ_AHEAD: usize = 1;
/// Chunks in flight between the network task and the disk thread; bounds memory per request.
const QUEUE_DEPTH: usize = 8;

/// Bytes written between background flushes of an upload file, so the final `fsync` of a
/// large upload finds most bytes already on disk instead of flushing the whole blob after
/// the last byte arrives. (Linux would otherwise keep up to 10% of RAM dirty.)
const FLUSH_EVERY: u64 = 4 * 1024 * 1024;

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// Appends `body` at `offset` to the file at `path` while hashing it; see
/// [`super::BlobStore::append_upload`].
///
/// Hashing happens here on the network task and writing on blocking threads, so the two run
/// in parallel on separate cores. A blocking thread is taken per batch of chunks, never
/// while waiting for the client: the runtime has at most 512 of them, and a few hundred
/// clients that stall mid-upload would otherwise hold them all and stall every disk
/// operation of the process.
pub(super) async fn append<S, E>(
    path: PathBuf,
    offset: u64,
    mut body: S,
    hasher: &mut UploadHasher,
) -> Result<u64, AppendError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
{
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_DEPTH);
    let writer = tokio::spawn(write_chunks(path, offset, rx));
    let mut body_error = None;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                hasher.update(&chunk);
                if tx.send(chunk).await.is_err() {
                    break; // The writer failed; its error is reported below.
                }
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(BlobError::from)?
        .map_err(BlobError::from)?;
    match body_error {
        Some(e) => Err(AppendError::Body(e)),
        None => Ok(written),
    }
}

/// Writes the chunks `rx` delivers at `offset` of the file at `path`, a batch at a time, and
/// syncs the file; returns the bytes written. One flush at a time runs in the background
/// every [`FLUSH_EVERY`] bytes.
async fn write_chunks(
    path: PathBuf,
    offset: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<u64> {
    let mut file = blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(file)
    })
    .await?;
    let mut flushing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    let mut written = 0u64;
    let mut unflushed = 0u64;
    let mut batch = Vec::with_capacity(QUEUE_DEPTH);
    while rx.recv_many(&mut batch, QUEUE_DEPTH).await > 0 {
        let chunks = std::mem::take(&mut batch);
        let n: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        file = blocking(move || {
            for chunk in &chunks {
                file.write_all(chunk)?;
            }
            Ok(file)
        })
        .await?;
        written += n;
        unflushed += n;
        // A flush still running when the next is due covers that one's bytes too, mostly.
        if unflushed >= FLUSH_EVERY && flushing.as_ref().is_none_or(|f| f.is_finished()) {
            if let Some(done) = flushing.take() {
                done.await.map_err(std::io::Error::other)??;
            }
            let copy = file.try_clone()?;
            flushing = Some(tokio::task::spawn_blocking(move || copy.sync_data()));
            unflushed = 0;
        }
    }
    if let Some(flush) = flushing {
        flush.await.map_err(std::io::Error::other)??;
    }
    blocking(move || file.sync_data()).await?;
    Ok(written)
}

/// Truncates the upload file to `len` (creating it if absent, for empty blobs) and syncs it,
/// so exactly the verified bytes are renamed into place.
pub(super) fn seal(path: &Path, len: u64) -> Result<(), BlobError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() != len {
        file.set_len(len)?;
    }
    file.sync_all()?;
    Ok(())
}

/// Hashes the first `len` bytes of a file.
pub(super) fn hash_file(path: &Path, len: u64, algorithm: Algorithm) -> std::io::Result<Digest> {
    let mut reader = File::open(path)?.take(len);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut sha256 = sha2::Sha256::new();
    let mut sha512 = sha2::Sha512::new();
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match algorithm {
            Algorithm::Sha256 => sha256.update(&buf[..n]),
            Algorithm::Sha512 => sha512.update(&buf[..n]),
        }
    }
    let hex = match algorithm {
        Algorithm::Sha256 => hex::encode(sha256.finalize()),
        Algorithm::Sha512 => hex::encode(sha512.finalize()),
    };
    Digest::parse(&format!("{}:{hex}", algorithm.as_str()))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Streams `range` of an open file in large chunks, each read on a blocking thread, a few
/// chunks ahead of the client. Waiting for a slow client holds no thread (see [`append`]).
pub(super) fn read_file_range(
    file: File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, BlobError>> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, BlobError>>(READ_AHEAD);
    let file = Arc::new(file);
    tokio::spawn(async move {
        let mut at = range.start;
        while at < range.end {
            let want = (range.end - at).min(READ_CHUNK as u64);
            let from = file.clone();
            let item = blocking(move || {
                let mut file = &*from;
                file.seek(SeekFrom::Start(at))?;
                // `read_to_end` fills spare capacity without zeroing it first.
                let mut buf = Vec::with_capacity(want as usize);
                match file.take(want).read_to_end(&mut buf)? {
                    0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
                    _ => Ok(Bytes::from(buf)),
                }
            })
            .await
            .map_err(BlobError::from);
            let failed = item.is_err();
            if let Ok(chunk) = &item {
                at += chunk.len() as u64;
            }
            // A closed channel means the client went away: stop reading.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
