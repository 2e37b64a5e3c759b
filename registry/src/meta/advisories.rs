//! What the advisory database needs from the metadata database: OSV records upserted in
//! batches, the sources they came from, and lookups. See migrations/*/0018_advisories.sql.
//!
//! The records themselves are read and judged by `berth_scan::osv`; this module stores what
//! the importer (`crate::service::vulndb`) extracted from them.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;

/// A package a record affects, as stored for lookups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdvisoryPackage {
    /// OSV's ecosystem name before the first `:` (`Debian`, `PyPI`).
    pub ecosystem: String,
    /// What follows the first `:` (`12`), or empty.
    pub release: String,
    /// The package name; PyPI names in PEP 503 normal form.
    pub name: String,
}

/// A record to store.
#[derive(Debug, Clone)]
pub struct NewAdvisory {
    /// The record's id.
    pub id: String,
    /// Its `modified` time as written.
    pub modified: String,
    /// The same time as Unix ms: what "newer" compares.
    pub modified_ms: i64,
    /// Its `published` time.
    pub published: Option<String>,
    /// Its `withdrawn` time.
    pub withdrawn: Option<String>,
    /// Its summary.
    pub summary: Option<String>,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its severity level (`berth_scan::osv::Level::as_str`).
    pub severity: String,
    /// Its CVSS base score, if one was scored.
    pub score: Option<f64>,
    /// The record's JSON, as published.
    pub record: String,
    /// The packages it affects, without repeats.
    pub packages: Vec<AdvisoryPackage>,
}

/// What an upsert did with each record of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UpsertCounts {
    /// Records whose id was not stored.
    pub new: u64,
    /// Stored records replaced by a newer `modified`.
    pub updated: u64,
    /// Records not newer than the stored one, left alone.
    pub unchanged: u64,
}

/// A source of records and its last complete import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdvisorySource {
    /// The URL, or the absolute path of a file or directory.
    pub source: String,
    /// The ecosystems its records named (base names, sorted, comma-separated).
    pub ecosystems: String,
    /// The HTTP `ETag` it was served with.
    pub etag: Option<String>,
    /// The HTTP `Last-Modified` it was served with.
    pub last_modified: Option<String>,
    /// When it was last checked (Unix ms), also when it had not changed.
    pub checked_at: i64,
    /// When it was last imported (Unix ms).
    pub imported_at: i64,
    /// Entries read in the last import.
    pub records: u64,
    /// Of those, new records.
    pub new: u64,
    /// Updated records.
    pub updated: u64,
    /// Records that were not newer than the stored ones.
    pub unchanged: u64,
    /// Entries that were not valid records, skipped.
    pub malformed: u64,
}

/// Totals of the advisory database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AdvisoryCounts {
    /// Records stored.
    pub advisories: u64,
    /// Of those, withdrawn ones.
    pub withdrawn: u64,
    /// (advisory, ecosystem, release, package) rows.
    pub packages: u64,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAdvisory {
    /// Its id.
    pub id: String,
    /// Its `modified` time.
    pub modified: String,
    /// Its `published` time.
    pub published: Option<String>,
    /// Its `withdrawn` time.
    pub withdrawn: Option<String>,
    /// Its summary.
    pub summary: Option<String>,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its severity level.
    pub severity: String,
    /// Its CVSS base score.
    pub score: Option<f64>,
    /// The source that last wrote it.
    pub source: String,
    /// When it was written (Unix ms).
    pub imported_at: i64,
    /// The record's JSON, as published.
    pub record: String,
}

/// A stored record found for a package, as [`AdvisoryStore::advisories_for`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateAdvisory {
    /// Its id.
    pub id: String,
    /// The record's JSON, as published: matching evaluates its ranges.
    pub record: String,
}

/// A stored record found for one of the packages looked up, as
/// [`AdvisoryStore::advisories_by_package`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageAdvisory {
    /// The package looked up, as it was given (its release, not the record's).
    pub package: AdvisoryPackage,
    /// The record's id.
    pub id: String,
    /// The record's JSON, as published.
    pub record: String,
}

/// Packages looked up per query by [`AdvisoryStore::advisories_by_package`]: three bound
/// parameters each, within the few hundred that SQLite binds cheaply (it finds each parameter
/// by a linear search; see `meta::sql`).
pub const PACKAGES_PER_LOOKUP: usize = 85;

/// Packages looked up per query by [`AdvisoryStore::advisories_for`]: three bound parameters
/// each, far below SQLite's 32766 and PostgreSQL's 65535, and an `OR` of this many index
/// lookups plans as one on both.
pub const PACKAGES_PER_QUERY: usize = 300;

/// The SQL condition that a stored package's release (the column or expression `stored`)
/// may apply to an image's release `wanted`: the same, none (`''`), or continuing it with `:`
/// or `.` (Red Hat's product streams: `enterprise_linux:9::baseos` under `enterprise_linux:9`).
///
/// A coarse filter, so that records already stored are found as they are: matching then
/// keeps only the releases `berth_scan::version::Ecosystem::release_applies` accepts (for
/// every ecosystem but Red Hat, the same one). Only column names and placeholders are
/// formatted in.
pub(crate) fn release_applies_sql(stored: &str, wanted: &str) -> String {
    format!(
        "({stored} IN ({wanted}, '') OR substr({stored}, 1, length({wanted}) + 1) \
         IN ({wanted} || ':', {wanted} || '.'))"
    )
}

/// The advisory database's queries.
#[async_trait]
pub trait AdvisoryStore {
    /// Stores the records of `batch` that are new or newer than the stored ones (replacing
    /// their packages), in one transaction; `source` and `now` are recorded on each row
    /// written.
    async fn advisories_upsert(
        &self,
        source: &str,
        batch: &[NewAdvisory],
        now: i64,
    ) -> MetaResult<UpsertCounts>;

    /// A stored record.
    async fn advisory(&self, id: &str) -> MetaResult<Option<StoredAdvisory>>;

    /// Totals.
    async fn advisory_counts(&self) -> MetaResult<AdvisoryCounts>;

    /// One source's last import.
    async fn advisory_source(&self, source: &str) -> MetaResult<Option<AdvisorySource>>;

    /// Every source, by name.
    async fn advisory_sources(&self) -> MetaResult<Vec<AdvisorySource>>;

    /// Records a source's import (replacing the row of the same source).
    async fn advisory_save_source(&self, source: &AdvisorySource) -> MetaResult<()>;

    /// The stored records, not withdrawn, that name any of `packages` in its ecosystem, in its
    /// release, a stream of it, or in none (a record for `Debian` without a release names
    /// every release; see [`release_applies_sql`]), each once, by id. One query per
    /// [`PACKAGES_PER_QUERY`] packages, over the `(ecosystem, name)` index.
    async fn advisories_for(
        &self,
        packages: &[AdvisoryPackage],
    ) -> MetaResult<Vec<CandidateAdvisory>>;

    /// What [`AdvisoryStore::advisories_for`] finds, with the package each record was found
    /// for: a record naming several of `packages` is listed once for each, so a caller can
    /// remember the answer per package (matching many images of one base looks each package
    /// up once). One query per [`PACKAGES_PER_LOOKUP`] packages.
    async fn advisories_by_package(
        &self,
        packages: &[AdvisoryPackage],
    ) -> MetaResult<Vec<PackageAdvisory>>;
}
