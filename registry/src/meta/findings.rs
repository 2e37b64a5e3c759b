//! What matching needs from the metadata database: the advisory database's generation, the
//! manifests whose findings are behind it, their stored inventories, and the findings and
//! summaries written back. See migrations/*/0022_findings.sql.
//!
//! The findings themselves are computed by `berth_scan::matching` (in
//! [`crate::service::findings`]); this module stores them. Writes are fenced by the
//! generation: findings matched at generation `g` replace only findings of an older one, so
//! replicas catching up at once never go back.

use async_trait::async_trait;
use serde::Serialize;

use super::advisories::AdvisoryPackage;
use super::scans::{StoredOs, StoredPackage};
use super::{MetaError, MetaResult};

/// Findings per severity, and how many a fixed version is known for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FindingSummary {
    /// Critical findings.
    pub critical: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Scored 0.
    pub none: u64,
    /// Without a score or a label (Debian's and Alpine's records).
    pub unknown: u64,
    /// Findings with a fixed version.
    pub fixable: u64,
    /// All findings.
    pub total: u64,
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFinding {
    /// The package as found.
    pub package: String,
    /// Its package manager (`dpkg`, `cargo`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The installed version.
    pub installed: String,
    /// The OSV ecosystem it was matched in (`Debian:12`).
    pub ecosystem: String,
    /// The name it was matched by (the source package, for Debian).
    pub matched_name: String,
    /// The advisory's id.
    pub advisory: String,
    /// Its aliases (CVE ids).
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: Option<String>,
    /// The severity level (`berth_scan::osv::Level::as_str`).
    pub severity: String,
    /// The CVSS base score.
    pub score: Option<f64>,
    /// The lowest fixed version above the installed one.
    pub fixed: Option<String>,
    /// Each affected range's fix.
    pub fixed_versions: Vec<String>,
    /// Whether a fixed version is known.
    pub fixable: bool,
    /// The files the package was found in.
    pub paths: Vec<String>,
}

/// A `scan_findings` row as read, its columns in [`FINDING_COLUMNS`]' order.
pub(crate) type FindingRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<f64>,
    Option<String>,
    String,
    i64,
    String,
);

/// The columns a [`FindingRow`] is read from.
pub(crate) const FINDING_COLUMNS: &str = "package, type, installed, ecosystem, matched_name, \
     advisory_id, aliases, summary, severity, score, fixed, fixed_versions, fixable, paths";

/// A stored finding from its row (its lists are stored as JSON arrays).
pub(crate) fn finding_of(r: FindingRow) -> MetaResult<StoredFinding> {
    let list = |text: &str, what: &str| -> MetaResult<Vec<String>> {
        serde_json::from_str(text).map_err(|e| MetaError::Corrupt {
            table: "scan_findings",
            reason: format!("{what}: {e}"),
        })
    };
    Ok(StoredFinding {
        aliases: list(&r.6, "aliases")?,
        fixed_versions: list(&r.11, "fixed_versions")?,
        paths: list(&r.13, "paths")?,
        package: r.0,
        kind: r.1,
        installed: r.2,
        ecosystem: r.3,
        matched_name: r.4,
        advisory: r.5,
        summary: r.7,
        severity: r.8,
        score: r.9,
        fixed: r.10,
        fixable: r.12 != 0,
    })
}

/// A stored finding as its row, with its lists as JSON arrays: how it is written, and what
/// a new match is compared with to keep rows that did not change.
pub(crate) fn row_of(f: &StoredFinding) -> FindingRow {
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    (
        f.package.clone(),
        f.kind.clone(),
        f.installed.clone(),
        f.ecosystem.clone(),
        f.matched_name.clone(),
        f.advisory.clone(),
        list(&f.aliases),
        f.summary.clone(),
        f.severity.clone(),
        f.score,
        f.fixed.clone(),
        list(&f.fixed_versions),
        i64::from(f.fixable),
        list(&f.paths),
    )
}

/// What [`FindingStore::findings_store`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FindingsStored {
    /// Nothing: findings of the same generation or a later one are stored already (another
    /// replica), or the inventory is gone or not done.
    Fenced,
    /// Stored; these are the findings they replaced (none the first time).
    Replaced(Vec<StoredFinding>),
}

/// A manifest's findings as last matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchRecord {
    /// The advisory database generation they were matched at.
    pub generation: i64,
    /// When (Unix ms).
    pub matched_at: i64,
    /// The counts.
    pub summary: FindingSummary,
}

/// A manifest behind the advisory database: its findings are older than the generation
/// (or it was never matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchDue {
    /// The manifest's row id.
    pub manifest_id: i64,
    /// The generation its findings were matched at, if ever.
    pub matched_generation: Option<i64>,
}

/// A done inventory, as matching reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInventory {
    /// The repository.
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// The operating system.
    pub os: Option<StoredOs>,
    /// The packages.
    pub packages: Vec<StoredPackage>,
}

/// A done inventory's manifest and key, read without its packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHead {
    /// The repository.
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// [`inventory_key`](super::scans::inventory_key) of the inventory; `None` for one stored
    /// before keys were.
    pub key: Option<String>,
}

/// Findings to store for a manifest.
#[derive(Debug, Clone)]
pub struct NewFindings {
    /// The generation read before the advisories were.
    pub generation: i64,
    /// Now (Unix ms).
    pub matched_at: i64,
    /// The inventory's packages as OSV names them (what a later import is compared with).
    pub targets: Vec<AdvisoryPackage>,
    /// [`targets_key`] of `targets`: when the stored targets have this key, they are left
    /// alone unread.
    pub targets_key: String,
    /// The findings, in order.
    pub findings: Vec<StoredFinding>,
    /// Their counts.
    pub summary: FindingSummary,
}

/// The findings queries.
#[async_trait]
pub trait FindingStore {
    /// The advisory database's generation.
    async fn vulndb_generation(&self) -> MetaResult<i64>;

    /// Up to `limit` done inventories whose findings are older than `generation`, never
    /// matched ones first.
    async fn findings_due(&self, generation: i64, limit: u32) -> MetaResult<Vec<MatchDue>>;

    /// Whether a record written after generation `since` names one of the manifest's targets
    /// or one of its findings' advisories: only then can its findings have changed.
    async fn findings_touched(&self, manifest_id: i64, since: i64) -> MetaResult<bool>;

    /// Marks the manifest's findings, matched at `from`, as current at `to` (nothing that
    /// could change them was written in between); false when they are not at `from` any more.
    async fn findings_advance(&self, manifest_id: i64, from: i64, to: i64) -> MetaResult<bool>;

    /// The manifest and key of a done inventory.
    async fn inventory_head(&self, manifest_id: i64) -> MetaResult<Option<InventoryHead>>;

    /// The done inventory of a manifest.
    async fn inventory_of(&self, manifest_id: i64) -> MetaResult<Option<StoredInventory>>;

    /// Replaces the manifest's findings, targets and summary, unless they were matched at
    /// `new.generation` or later already (another replica) or the inventory is gone or not
    /// done. Rows that stay the same are kept: only targets that came or went are written,
    /// and the findings only when they changed (after an import most images' targets, and
    /// many images' findings, are what they were).
    async fn findings_store(
        &self,
        manifest_id: i64,
        new: &NewFindings,
    ) -> MetaResult<FindingsStored>;

    /// The manifest's summary, if it was matched.
    async fn findings_match(&self, manifest_id: i64) -> MetaResult<Option<MatchRecord>>;

    /// The manifest's findings, in order.
    async fn findings_of(&self, manifest_id: i64) -> MetaResult<Vec<StoredFinding>>;

    /// The manifest row id of `digest` in `repository`, if it has a scan row.
    async fn scan_manifest_id(&self, repository: &str, digest: &str) -> MetaResult<Option<i64>>;

    /// Findings per severity over every matched manifest, for metrics.
    async fn findings_totals(&self) -> MetaResult<FindingSummary>;
}

/// The key of a set of targets, as stored in `scans.targets_key`: the SHA-256 of the
/// targets, sorted and without duplicates (the table holds them as a set).
pub fn targets_key(targets: &[AdvisoryPackage]) -> String {
    use sha2::Digest as _;
    let set: std::collections::BTreeSet<(&str, &str, &str)> = targets
        .iter()
        .map(|t| (t.ecosystem.as_str(), t.release.as_str(), t.name.as_str()))
        .collect();
    let mut hash = sha2::Sha256::new();
    for (ecosystem, release, name) in set {
        // Each field ends in a NUL, which no name holds, so fields cannot run into each other.
        for field in [ecosystem, release, name] {
            hash.update(field.as_bytes());
            hash.update([0]);
        }
    }
    hex::encode(hash.finalize())
}
