//! Image inventories in the background: every replica's scan workers take jobs from the
//! queue in SQL ([`crate::meta::scans`]), stream each layer of the image from blob storage
//! through `berth_scan`'s walker (whiteouts applied, memory bounded by its [`Limits`]), store
//! the packages, and attach the SBOM as an OCI referrer ([`super::sbom`]).
//!
//! Jobs are queued when an image manifest is stored ([`is_image`]): not for indexes (each
//! platform's manifest has its own job), referrers, artifacts or attestation manifests (no
//! file system layer), nor for manifests a pull-through cache stores. A job is claimed with a
//! lease that the worker renews while it works; a replica that dies leaves the job to another
//! once the lease runs out, and a worker that is stopped (SIGTERM) gives its job back. A
//! failed attempt (storage unreachable, the walk crashed) is retried up to `max_attempts`
//! claims. Hostile layers are not failures: the walker stops at its bounds and the inventory
//! lists why, with whatever it found.
//!
//! Depends on `meta` (the queue, the inventories), `blob` (layer bytes) and `berth_scan`.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use berth_scan::inventory::{Inventory, LayerBlob, Limits, Walker, default_cataloguers};

use super::findings::{Trigger, stored_os, stored_package};
use super::{Registry, RegistryError};
use crate::blob::{BlobError, BlobSource};
use crate::domain::{Digest, ManifestKind, ParsedManifest, Reference, RepoName};
use crate::meta::now_ms;
use crate::meta::scans::{ScanJob, ScanOutcome};
use crate::telemetry::error_chain;

/// `[scan]` as the service uses it.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Queue an inventory of every image manifest pushed.
    pub enabled: bool,
    /// The SBOM format attached.
    pub format: berth_scan::sbom::Format,
    /// A claim's lease.
    pub lease: Duration,
    /// Claims of a job before it is given up.
    pub max_attempts: u32,
    /// How often an idle worker looks for jobs.
    pub poll: Duration,
    /// The longest one inventory may take.
    pub timeout: Duration,
    /// Uncompressed layer bytes one inventory reads at most.
    pub max_unpacked_bytes: u64,
}

impl Default for ScanSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            format: berth_scan::sbom::Format::CycloneDx,
            lease: Duration::from_secs(300),
            max_attempts: 3,
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(1800),
            max_unpacked_bytes: Limits::default().max_bytes,
        }
    }
}

/// The layers of an image manifest, as far as an inventory needs them.
#[derive(Deserialize)]
struct ImageLayers {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
}

/// Whether a manifest is an image to inventory: an image manifest without a subject, with at
/// least one file system layer (so not an artifact, a signature or an attestation manifest,
/// whose layers are documents). A layer of a file system type berth cannot read (encrypted,
/// a future compression) still makes an image: its inventory says why the layer was skipped.
pub(crate) fn is_image(parsed: &ParsedManifest, content: &[u8]) -> bool {
    const FILE_SYSTEM_LAYERS: [&str; 2] = [
        "application/vnd.oci.image.layer.",
        "application/vnd.docker.image.rootfs.",
    ];
    parsed.kind == ManifestKind::Image
        && parsed.subject.is_none()
        && serde_json::from_slice::<ImageLayers>(content).is_ok_and(|m| {
            m.layers.iter().any(|l| {
                FILE_SYSTEM_LAYERS
                    .iter()
                    .any(|prefix| l.media_type.starts_with(prefix))
            })
        })
}

/// How a job ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Inventoried (perhaps with problems).
    Done,
    /// An attempt failed and the job is queued again.
    Retried,
    /// Given up.
    Failed,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the manifest is gone")]
    ManifestGone,
    #[error("the manifest does not parse: {0}")]
    Manifest(String),
    #[error("the inventory stopped unexpectedly: {0}")]
    Crashed(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Registry {
    /// The scan settings.
    pub fn scan_settings(&self) -> &ScanSettings {
        &self.limits.scan
    }

    /// Takes and runs jobs until `stop` turns true; a job in progress then is given back to
    /// the queue. `ended` hears of each job's end and how long its inventory took. With
    /// `catch_up`, an idle worker also matches stored inventories again after an advisory
    /// import: one worker per process does (two would match the same manifests at once, the
    /// second's work thrown away by the generation fence).
    pub async fn scan_forever(
        &self,
        mut stop: watch::Receiver<bool>,
        catch_up: bool,
        ended: impl Fn(ScanEnd, Duration) + Send + Sync,
    ) {
        let settings = self.limits.scan.clone();
        let lease_ms = u64::try_from(settings.lease.as_millis()).unwrap_or(u64::MAX);
        while !*stop.borrow() {
            let job = match self
                .meta
                .scan_claim(now_ms(), lease_ms, settings.max_attempts)
                .await
            {
                Ok(Some(job)) => job,
                Ok(None) => {
                    // Idle: catch the findings up with the advisory database first.
                    if catch_up {
                        match self.catch_up_findings().await {
                            Ok(0) => {}
                            Ok(_) => continue,
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot match stored inventories");
                            }
                        }
                    }
                    let _ = tokio::time::timeout(settings.poll, stop.changed()).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a scan job");
                    let _ = tokio::time::timeout(settings.poll, stop.changed()).await;
                    continue;
                }
            };
            let started = Instant::now();
            let work = self.run_job(&job);
            tokio::pin!(work);
            let mut renew = tokio::time::interval(settings.lease / 3);
            renew.tick().await;
            let result = loop {
                tokio::select! {
                    r = &mut work => break Some(r),
                    _ = renew.tick() => {
                        let until = now_ms().saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
                        match self.meta.scan_renew(&job, until).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!(digest = %job.digest, "lost the lease of a scan job; leaving it");
                                break None;
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot renew a scan job's lease"),
                        }
                    }
                    _ = stop.changed() => {
                        if let Err(e) = self.meta.scan_release(&job).await {
                            tracing::warn!(error = %e, "cannot give a scan job back; it is retried after its lease");
                        } else {
                            tracing::info!(repository = %job.repository, digest = %job.digest, "stopping: scan job given back to the queue");
                        }
                        return;
                    }
                }
            };
            let Some(result) = result else { continue };
            let end = match result {
                Ok(outcome) => match self.meta.scan_done(&job, &outcome).await {
                    Ok(stored) => {
                        tracing::info!(repository = %job.repository, digest = %job.digest,
                            packages = outcome.packages.len(), duration_ms = outcome.duration_ms,
                            "image inventoried");
                        // Matched at once; if this fails, the catch-up matches it later.
                        if stored
                            && let Err(e) = self
                                .match_manifest(job.manifest_id, Trigger::Inventory)
                                .await
                        {
                            tracing::warn!(error = %e, digest = %job.digest, "cannot match an inventory");
                        }
                        ScanEnd::Done
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot store an inventory");
                        continue;
                    }
                },
                Err(e) => {
                    let give_up = job.attempts >= settings.max_attempts;
                    let reason = error_chain(&e);
                    tracing::warn!(repository = %job.repository, digest = %job.digest,
                        attempt = job.attempts, give_up, reason = %reason, "scan attempt failed");
                    if let Err(e) = self.meta.scan_failed(&job, &reason, give_up).await {
                        tracing::warn!(error = %e, "cannot record a failed scan");
                    }
                    if give_up {
                        ScanEnd::Failed
                    } else {
                        ScanEnd::Retried
                    }
                }
            };
            ended(end, started.elapsed());
        }
    }

    /// One attempt at a job: the inventory, stored SBOM referrer included.
    async fn run_job(&self, job: &ScanJob) -> Result<ScanOutcome, AttemptError> {
        let started = Instant::now();
        let repo =
            RepoName::parse(&job.repository).map_err(|e| AttemptError::Manifest(e.to_string()))?;
        let digest =
            Digest::parse(&job.digest).map_err(|e| AttemptError::Manifest(e.to_string()))?;
        let manifest = self
            .meta
            .manifest(&repo, &Reference::Digest(digest.clone()), true)
            .await
            .map_err(RegistryError::from)?
            .ok_or(AttemptError::ManifestGone)?;
        let layers: ImageLayers = serde_json::from_slice(&manifest.content)
            .map_err(|e| AttemptError::Manifest(e.to_string()))?;
        let inventory = self.walk(&repo, layers.layers).await?;
        let mut problems = inventory.errors.clone();
        let sbom_digest = match self
            .attach_sbom(&repo, &digest, &manifest, &inventory)
            .await
        {
            Ok(d) => Some(d.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, %digest, "cannot attach the SBOM referrer");
                problems.push(berth_scan::inventory::InventoryError {
                    layer: 0,
                    path: None,
                    message: format!("the SBOM referrer was not stored: {}", error_chain(&e)),
                });
                None
            }
        };
        let os = inventory.os.as_ref();
        Ok(ScanOutcome {
            os: os.map(stored_os),
            packages: inventory
                .packages
                .iter()
                .map(|p| stored_package(p, os))
                .collect(),
            problems: serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into()),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            sbom_digest,
        })
    }

    /// Walks `layers` of an image in `repo` on a blocking thread, streaming each from blob
    /// storage in turn.
    async fn walk(&self, repo: &RepoName, layers: Vec<Layer>) -> Result<Inventory, AttemptError> {
        let limits = Limits {
            max_bytes: self.limits.scan.max_unpacked_bytes,
            deadline: Some(Instant::now() + self.limits.scan.timeout),
            ..Limits::default()
        };
        let (registry, repo) = (self.clone(), repo.clone());
        let handle = tokio::runtime::Handle::current();
        // When this future is dropped (the worker stopping), the blocking walk stops at its
        // next read instead of running on and holding up the process's exit.
        let stopped = Arc::new(AtomicBool::new(false));
        let _stop_walk = StopOnDrop(stopped.clone());
        tokio::task::spawn_blocking(move || {
            let cataloguers = default_cataloguers();
            // A layer the store cannot give fails the attempt (it is tried again later), as
            // a blob gone or a storage error is not a problem of the image's.
            let failed: std::sync::Mutex<Option<AttemptError>> = std::sync::Mutex::new(None);
            let blobs = layers
                .into_iter()
                .map(|layer| {
                    let (registry, repo, handle) = (&registry, &repo, &handle);
                    let (stopped, failed) = (stopped.clone(), &failed);
                    let media_type = layer.media_type.clone();
                    let open = move || -> Result<Box<dyn Read + Send>, String> {
                        if stopped.load(Ordering::Relaxed) {
                            return Err("not read: the scan worker stopped".into());
                        }
                        let source = handle
                            .block_on(registry.layer_source(repo, &layer.digest))
                            .map_err(|e| {
                                let message = format!("not read: {e}");
                                let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
                                failed.get_or_insert(e);
                                message
                            })?;
                        layer_reader(source, handle, stopped.clone())
                            .map_err(|e| format!("not read: {e}"))
                    };
                    LayerBlob {
                        media_type,
                        open: Box::new(open),
                    }
                })
                .collect();
            let mut walker = Walker::new(&cataloguers, limits);
            walker.add_layers(blobs);
            let failed = failed.lock().unwrap_or_else(|e| e.into_inner()).take();
            match failed {
                Some(e) => Err(e),
                None => Ok(walker.finish()),
            }
        })
        .await
        .map_err(|e| AttemptError::Crashed(e.to_string()))?
    }

    /// The bytes of layer `digest` of `repo`.
    async fn layer_source(
        &self,
        repo: &RepoName,
        digest: &str,
    ) -> Result<BlobSource, AttemptError> {
        let digest = Digest::parse(digest)
            .map_err(|e| AttemptError::Manifest(format!("layer {digest:?}: {e}")))?;
        Ok(self.blob_source(repo, &digest).await?)
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Chunks of a remote layer read ahead of the walk: enough that decompression does not wait
/// for the network chunk by chunk, few enough that a walk holds a constant, small amount of
/// memory (a chunk is what the store's HTTP client hands over, well under a MiB).
const READ_AHEAD_CHUNKS: usize = 16;

/// A reader of a layer for the blocking walk. A local file is read in place, in the walk's
/// own large reads; a remote stream is pulled by a task of its own into a bounded channel, so
/// the network and the decompression overlap.
fn layer_reader(
    source: BlobSource,
    handle: &tokio::runtime::Handle,
    stopped: Arc<AtomicBool>,
) -> std::io::Result<Box<dyn Read + Send>> {
    match source {
        BlobSource::File(mut file, range) => {
            file.seek(SeekFrom::Start(range.start))?;
            Ok(Box::new(Stoppable {
                inner: file.take(range.end - range.start),
                stopped,
            }))
        }
        BlobSource::Stream(mut stream) => {
            let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
            handle.spawn(async move {
                while let Some(item) = stream.next().await {
                    let failed = item.is_err();
                    // A closed channel means the walk is done with this layer: stop reading.
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
            });
            Ok(Box::new(Stoppable {
                inner: ChannelRead {
                    rx,
                    chunk: Bytes::new(),
                },
                stopped,
            }))
        }
    }
}

/// A reader that fails once the walk's owner gave up on it, so the blocking walk ends at its
/// next read instead of holding up the process's exit.
struct Stoppable<R> {
    inner: R,
    stopped: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the scan worker stopped"));
        }
        self.inner.read(out)
    }
}

/// The chunks a read-ahead task sends, as a blocking reader.
struct ChannelRead {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, BlobError>>,
    chunk: Bytes,
}

impl Read for ChannelRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
