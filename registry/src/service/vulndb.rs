//! The advisory database's import (`berth vulndb update`): OSV records from an URL or a path
//! into SQL ([`crate::meta::advisories`]), incrementally.
//!
//! A source is OSV's per-ecosystem `all.zip` (served at
//! `https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip`), a directory of
//! record files, or one record file; `berth_scan::osv::archive` reads all three. An URL is
//! downloaded to a temporary file first, streamed and bounded ([`MAX_DOWNLOAD_BYTES`]), and
//! asked for conditionally with the validators of its last import, so an unchanged archive
//! costs one request. Records are read on a blocking thread and written in batches of
//! [`BATCH`], each one transaction; a record replaces the stored one only when its `modified`
//! time is newer. So a crash leaves whole batches, and a re-run skips them and completes the
//! rest. An entry that is not a valid record is logged with its name, counted and skipped.
//!
//! Depends on `meta` and `berth_scan::osv`; no blob storage.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_scan::osv::archive::{ArchiveError, Records};
use berth_scan::osv::{self, Level, Record};

use crate::meta::advisories::{AdvisoryPackage, AdvisorySource, NewAdvisory, UpsertCounts};
use crate::meta::{MetaError, MetaStore, now_ms};

/// The largest archive downloaded. OSV's largest ecosystem archives are a few hundred MB.
pub const MAX_DOWNLOAD_BYTES: u64 = 4 << 30;

/// Records per transaction.
pub const BATCH: usize = 500;

/// How long a download may stall (connect, or between two reads).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A zip archive, a directory of records or a record file.
    Path(PathBuf),
}

impl Source {
    /// An URL when `s` starts with `http://` or `https://`, else a path (made absolute, so
    /// the same source is recorded under the same name from any working directory).
    pub fn parse(s: &str) -> Self {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Self::Url(s.to_owned());
        }
        let path = PathBuf::from(s);
        Self::Path(std::path::absolute(&path).unwrap_or(path))
    }

    /// The name the source is recorded under.
    pub fn name(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::Path(path) => path.display().to_string(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// The source's recorded name.
    pub source: String,
    /// The server answered that the archive had not changed since the last import: nothing
    /// was read.
    pub not_modified: bool,
    /// Entries read.
    pub records: u64,
    /// New records.
    pub new: u64,
    /// Records newer than the stored ones.
    pub updated: u64,
    /// Records not newer than the stored ones.
    pub unchanged: u64,
    /// Entries that were not valid records.
    pub malformed: u64,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest_tls::Error),
    /// The download failed.
    #[error("downloading {url}")]
    Download {
        /// The URL.
        url: String,
        /// The failure.
        #[source]
        source: reqwest_tls::Error,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The archive is larger than [`MAX_DOWNLOAD_BYTES`].
    #[error("{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// The temporary file failed.
    #[error("writing the downloaded archive")]
    Spool(#[source] std::io::Error),
    /// The source cannot be read as records.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The reading thread failed.
    #[error("the record reader stopped")]
    Reader,
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// Imports advisories into the metadata database.
#[derive(Clone)]
pub struct VulnDb {
    meta: Arc<dyn MetaStore>,
    http: reqwest_tls::Client,
}

impl std::fmt::Debug for VulnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnDb").finish_non_exhaustive()
    }
}

/// A downloaded archive, or nothing new.
enum Fetched {
    NotModified,
    File {
        file: tempfile::NamedTempFile,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

impl VulnDb {
    /// An importer writing to `meta`.
    pub fn new(meta: Arc<dyn MetaStore>) -> Result<Self, VulnDbError> {
        // reqwest's TLS is rustls without a bundled provider (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest_tls::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(STALL_TIMEOUT)
            .read_timeout(STALL_TIMEOUT)
            .build()
            .map_err(VulnDbError::Client)?;
        Ok(Self { meta, http })
    }

    /// Imports the records of `source`.
    #[tracing::instrument(skip(self), fields(source = %source.name()))]
    pub async fn import(&self, source: &Source) -> Result<ImportReport, VulnDbError> {
        let name = source.name();
        let checked_at = now_ms();
        let previous = self.meta.advisory_source(&name).await?;
        let (path, _download, etag, last_modified) = match source {
            Source::Path(path) => (path.clone(), None, None, None),
            Source::Url(url) => match self.download(url, previous.as_ref()).await? {
                Fetched::NotModified => {
                    let mut row = previous.unwrap_or_default();
                    row.checked_at = checked_at;
                    self.meta.advisory_save_source(&row).await?;
                    tracing::info!("not modified since the last import");
                    return Ok(ImportReport {
                        source: name,
                        not_modified: true,
                        ..ImportReport::default()
                    });
                }
                Fetched::File {
                    file,
                    etag,
                    last_modified,
                } => (file.path().to_owned(), Some(file), etag, last_modified),
            },
        };
        let (report, ecosystems) = self.import_path(&name, &path).await?;
        self.meta
            .advisory_save_source(&AdvisorySource {
                source: name,
                ecosystems: ecosystems.into_iter().collect::<Vec<_>>().join(","),
                etag,
                last_modified,
                checked_at,
                imported_at: now_ms(),
                records: report.records,
                new: report.new,
                updated: report.updated,
                unchanged: report.unchanged,
                malformed: report.malformed,
            })
            .await?;
        tracing::info!(
            records = report.records,
            new = report.new,
            updated = report.updated,
            unchanged = report.unchanged,
            malformed = report.malformed,
            "advisories imported"
        );
        Ok(report)
    }

    /// Downloads `url` to a temporary file, conditionally on the last import's validators.
    async fn download(
        &self,
        url: &str,
        previous: Option<&AdvisorySource>,
    ) -> Result<Fetched, VulnDbError> {
        let failed = |source| VulnDbError::Download {
            url: url.to_owned(),
            source,
        };
        let mut request = self.http.get(url);
        if let Some(previous) = previous {
            if let Some(etag) = &previous.etag {
                request = request.header(http::header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = &previous.last_modified {
                request = request.header(http::header::IF_MODIFIED_SINCE, date);
            }
        }
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        if status == http::StatusCode::NOT_MODIFIED && previous.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(VulnDbError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let too_large = || VulnDbError::TooLarge {
            url: url.to_owned(),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOWNLOAD_BYTES)
        {
            return Err(too_large());
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(http::header::ETAG);
        let last_modified = header(http::header::LAST_MODIFIED);
        let mut file = tempfile::NamedTempFile::new().map_err(VulnDbError::Spool)?;
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            written += chunk.len() as u64;
            if written > MAX_DOWNLOAD_BYTES {
                return Err(too_large());
            }
            file.write_all(&chunk).map_err(VulnDbError::Spool)?;
        }
        file.as_file().sync_all().map_err(VulnDbError::Spool)?;
        Ok(Fetched::File {
            file,
            etag,
            last_modified,
        })
    }

    /// Reads the records at `path` on a blocking thread and writes them in batches.
    async fn import_path(
        &self,
        name: &str,
        path: &Path,
    ) -> Result<(ImportReport, BTreeSet<String>), VulnDbError> {
        let records = {
            let path = path.to_owned();
            tokio::task::spawn_blocking(move || Records::open(&path))
                .await
                .map_err(|_| VulnDbError::Reader)??
        };
        // Two batches in flight at most: one being written, one being read.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(1);
        let source = name.to_owned();
        let reader = tokio::task::spawn_blocking(move || read_batches(&source, records, &tx));
        let mut report = ImportReport {
            source: name.to_owned(),
            ..ImportReport::default()
        };
        let mut ecosystems = BTreeSet::new();
        while let Some(batch) = rx.recv().await {
            report.records += batch.read;
            report.malformed += batch.malformed;
            ecosystems.extend(batch.ecosystems);
            if batch.advisories.is_empty() {
                continue;
            }
            let UpsertCounts {
                new,
                updated,
                unchanged,
            } = self
                .meta
                .advisories_upsert(name, &batch.advisories, now_ms())
                .await?;
            report.new += new;
            report.updated += updated;
            report.unchanged += unchanged;
        }
        reader.await.map_err(|_| VulnDbError::Reader)?;
        Ok((report, ecosystems))
    }
}

/// Records read from a source, ready to write.
#[derive(Debug, Default)]
struct Batch {
    advisories: Vec<NewAdvisory>,
    read: u64,
    malformed: u64,
    ecosystems: BTreeSet<String>,
}

/// Reads every entry of `records` (from `source`) and sends them to `tx` in batches of
/// [`BATCH`].
fn read_batches(source: &str, records: Records, tx: &tokio::sync::mpsc::Sender<Batch>) {
    let mut batch = Batch::default();
    for entry in records {
        batch.read += 1;
        match entry
            .record
            .map_err(|e| e.to_string())
            .and_then(|(record, json)| advisory(&record, json))
        {
            Ok(advisory) => {
                batch
                    .ecosystems
                    .extend(advisory.packages.iter().map(|p| p.ecosystem.clone()));
                batch.advisories.push(advisory);
            }
            Err(error) => {
                tracing::warn!(source, entry = %entry.name, %error, "skipping a malformed advisory");
                batch.malformed += 1;
            }
        }
        if batch.advisories.len() >= BATCH && tx.blocking_send(std::mem::take(&mut batch)).is_err()
        {
            return; // The writer stopped (an error): nothing more to read for.
        }
    }
    let _ = tx.blocking_send(batch);
}

/// What is stored of `record`: its times, summary, aliases, severity, the packages it affects,
/// and its JSON.
fn advisory(record: &Record, json: String) -> Result<NewAdvisory, String> {
    let modified_ms = chrono::DateTime::parse_from_rfc3339(record.modified.trim())
        .map_err(|e| format!("{}: modified {:?}: {e}", record.id, record.modified))?
        .timestamp_millis();
    let packages: BTreeSet<(String, String, String)> = record
        .affected
        .iter()
        .filter_map(|a| a.package.as_ref())
        .map(|p| {
            let (ecosystem, release) = p.ecosystem.split_once(':').unwrap_or((&p.ecosystem, ""));
            let name = if ecosystem == "PyPI" {
                osv::pep503_name(&p.name)
            } else {
                p.name.clone()
            };
            (ecosystem.to_owned(), release.to_owned(), name)
        })
        .collect();
    // The record's own severity, else the highest any affected package is given (Debian's
    // urgency, for one, is per package).
    let severity = std::iter::once(osv::severity(record, None))
        .chain(
            record
                .affected
                .iter()
                .map(|a| osv::severity(record, Some(a))),
        )
        .reduce(|best, s| {
            if (s.level, s.score.unwrap_or(-1.0)) > (best.level, best.score.unwrap_or(-1.0)) {
                s
            } else {
                best
            }
        })
        .map_or((Level::Unknown, None), |s| (s.level, s.score));
    Ok(NewAdvisory {
        id: record.id.clone(),
        modified: record.modified.clone(),
        modified_ms,
        published: record.published.clone(),
        withdrawn: record.withdrawn.clone(),
        summary: record.summary.clone(),
        aliases: record.aliases.clone(),
        severity: severity.0.as_str().to_owned(),
        score: severity.1,
        record: json,
        packages: packages
            .into_iter()
            .map(|(ecosystem, release, name)| AdvisoryPackage {
                ecosystem,
                release,
                name,
            })
            .collect(),
    })
}
