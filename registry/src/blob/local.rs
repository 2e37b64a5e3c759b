//! File operations of the local backend, run on blocking threads so the async runtime never
//! waits on disk I/O.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use sha2::Digest as _;
use tokio::sync::mpsc;

use super::{AppendError, BlobError};
use crate::domain::{Algorithm, Digest, UploadHasher};

/// Bytes read from disk per chunk when serving a blob.
const READ_CHUNK: usize = 256 * 1024;
/// Chunks in flight between the network task and the disk thread; bounds memory per request.
const QUEUE_DEPTH: usize = 8;

/// Bytes written between background flushes of an upload file.
const FLUSH_EVERY: u64 = 4 * 1024 * 1024;

/// Flushes a file to disk on its own thread while the writer keeps writing, so the final
/// `fsync` of a large upload finds most bytes already on disk instead of flushing the whole
/// blob after the last byte arrives. (Linux would otherwise keep up to 10% of RAM dirty.)
struct Flusher {
    kick: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Flusher {
    fn start(file: File) -> Self {
        // A depth of one coalesces kicks that arrive while a flush is running.
        let (kick, kicks) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::spawn(move || {
            while kicks.recv().is_ok() {
                file.sync_data()?;
            }
            Ok(())
        });
        Self { kick, thread }
    }

    fn kick(&self) {
        let _ = self.kick.try_send(());
    }

    fn finish(self) -> std::io::Result<()> {
        drop(self.kick);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("flusher thread panicked")))
    }
}

/// Appends `body` at `offset` to the file at `path` while hashing it; see
/// [`super::BlobStore::append_upload`].
pub(super) async fn append<S, E>(
    path: PathBuf,
    offset: u64,
    mut body: S,
    hasher: &mut UploadHasher,
) -> Result<u64, AppendError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
{
    // Hashing happens here on the network task and writing on a blocking thread, so the two
    // run in parallel on separate cores.
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_DEPTH);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
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
        // Started on the first flush only: small uploads never pay for the thread.
        let mut flusher: Option<Flusher> = None;
        let mut written = 0u64;
        let mut unflushed = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
            unflushed += chunk.len() as u64;
            if unflushed >= FLUSH_EVERY {
                match &flusher {
                    Some(f) => f.kick(),
                    None => {
                        let f = Flusher::start(file.try_clone()?);
                        f.kick();
                        flusher = Some(f);
                    }
                }
                unflushed = 0;
            }
        }
        if let Some(f) = flusher {
            f.finish()?;
        }
        file.sync_data()?;
        Ok(written)
    });
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

/// Streams `range` of an open file from a blocking thread in large chunks.
pub(super) fn read_file_range(
    mut file: File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, BlobError>> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, BlobError>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(Err(e.into()));
            return;
        }
        let mut remaining = range.end - range.start;
        while remaining > 0 {
            let want = remaining.min(READ_CHUNK as u64);
            // `read_to_end` fills spare capacity without zeroing it first.
            let mut buf = Vec::with_capacity(want as usize);
            let item = match (&mut file).take(want).read_to_end(&mut buf) {
                Ok(0) => Err(BlobError::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    remaining -= n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e.into()),
            };
            let failed = item.is_err();
            // A closed channel means the client went away: stop reading.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
