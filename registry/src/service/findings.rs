//! Findings: each image's stored inventory matched against the advisory database, and kept
//! matched as the database changes, without reading a layer again.
//!
//! When a scan worker stores an inventory it matches it at once ([`Registry::match_manifest`]).
//! When an import (`berth vulndb update`, from any process) writes records, it bumps the
//! advisory database's generation; every replica's idle scan workers then catch the
//! manifests up to it ([`Registry::catch_up_findings`]): a manifest whose targets (its
//! packages as OSV names them) and findings no record written since its generation names is
//! only stamped with the new generation, one `UPDATE`; the others are matched again from
//! their stored packages. Within a round, manifests of one inventory (equal
//! `scans.inventory_key`: images of one base) are read and matched once, and targets whose
//! key (`scans.targets_key`) is unchanged are neither read nor written. A generation, rather than a queued job per manifest, because an
//! import from a one-shot command needs no server to queue anything, a replica that dies
//! mid-way leaves nothing claimed, and the writes are fenced by it (findings matched at `g`
//! never replace findings of `g` or later), so replicas catching up at once agree.
//!
//! The conversion between stored rows and `berth_scan`'s types is here, shared with
//! `berth scan` (which matches an inventory it read itself).
//!
//! Depends on `meta` (inventories, advisories, findings) and `berth_scan::matching`; never on
//! `blob`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};

use berth_scan::inventory::{OsRelease, Package, PackageType, SourcePackage};
use berth_scan::matching::{Finding, Findings, Target, Threshold, match_packages, targets};
use berth_scan::osv::{Level, Record};
use berth_scan::sbom::Purl;

use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, Reference, RepoName};
use crate::meta::advisories::AdvisoryPackage;
use crate::meta::events::{Action, HookEvent, Origin};
use crate::meta::findings::{
    FindingSummary, FindingsStored, MatchRecord, NewFindings, StoredFinding, StoredInventory,
    targets_key,
};
use crate::meta::scans::{ScanStatus, StoredOs, StoredPackage, inventory_key};
use crate::meta::{MetaResult, MetaStore, now_ms};

/// Manifests one catch-up round looks at.
const CATCH_UP_BATCH: u32 = 64;

/// Manifests of a round matched at once: their reads overlap on the read connections, and
/// their writes share the writer's commits (one `fsync` for several).
const CATCH_UP_CONCURRENCY: usize = 4;

/// Packages whose advisory lookups one round remembers at most (a few MiB); beyond it
/// further packages are looked up without being remembered.
const REMEMBERED_PACKAGES: usize = 100_000;

/// Inventories whose match one round remembers at most: a round looks at
/// [`CATCH_UP_BATCH`] manifests, and images of one base share one inventory.
const REMEMBERED_INVENTORIES: usize = CATCH_UP_BATCH as usize;

/// A package as stored in an inventory.
pub fn stored_package(p: &Package, os: Option<&OsRelease>) -> StoredPackage {
    StoredPackage {
        kind: kind_name(p.kind),
        name: p.name.clone(),
        version: p.version.clone(),
        source_name: p.source.as_ref().map(|s| s.name.clone()),
        source_version: p.source.as_ref().and_then(|s| s.version.clone()),
        arch: p.arch.clone(),
        path: p.path.clone(),
        purl: Purl::of_package(p, os).to_string(),
    }
}

/// The operating system as stored.
pub fn stored_os(os: &OsRelease) -> StoredOs {
    StoredOs {
        id: os.id.clone(),
        version: os.version_id.clone(),
        name: os.pretty_name.clone(),
    }
}

/// A stored package as `berth_scan` models it; `None` for a type this build does not know.
pub fn package_of(p: &StoredPackage) -> Option<Package> {
    let kind: PackageType =
        serde_json::from_value(serde_json::Value::String(p.kind.clone())).ok()?;
    Some(Package {
        kind,
        name: p.name.clone(),
        version: p.version.clone(),
        source: p.source_name.as_ref().map(|name| SourcePackage {
            name: name.clone(),
            version: p.source_version.clone(),
        }),
        arch: p.arch.clone(),
        path: p.path.clone(),
    })
}

/// A stored operating system as `berth_scan` models it (what matching reads of it: `ID`,
/// `VERSION_ID`).
pub fn os_of(os: &StoredOs) -> OsRelease {
    OsRelease {
        id: os.id.clone(),
        version_id: os.version.clone(),
        pretty_name: os.name.clone(),
        ..OsRelease::default()
    }
}

/// A package type's stored name (`dpkg`).
fn kind_name(kind: PackageType) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A target as the advisory database indexes packages.
fn advisory_package(t: Target) -> AdvisoryPackage {
    AdvisoryPackage {
        ecosystem: t.ecosystem,
        release: t.release,
        name: t.name,
    }
}

/// Matches `packages` on `os` against the stored advisories: the targets looked up and the
/// findings. A stored record that no longer parses is logged and left out.
pub async fn match_inventory(
    meta: &dyn MetaStore,
    packages: &[Package],
    os: Option<&OsRelease>,
) -> MetaResult<(Vec<AdvisoryPackage>, Findings)> {
    let wanted: Vec<AdvisoryPackage> = targets(packages, os)
        .into_iter()
        .map(advisory_package)
        .collect();
    let mut records = Vec::new();
    for candidate in meta.advisories_for(&wanted).await? {
        match Record::from_json(candidate.record.as_bytes()) {
            Ok(r) => records.push(r),
            Err(e) => {
                tracing::warn!(advisory = %candidate.id, error = %e, "stored advisory skipped");
            }
        }
    }
    Ok((wanted, match_packages(packages, os, &records)))
}

/// What matching one inventory gave: the same for every manifest of that inventory.
struct Matched {
    targets: Vec<AdvisoryPackage>,
    targets_key: String,
    findings: Vec<StoredFinding>,
    summary: FindingSummary,
    /// The inventory's packages, for the event.
    packages: usize,
}

/// Matches a stored inventory with the advisories of `lookups`.
async fn match_stored(
    meta: &dyn MetaStore,
    inventory: &StoredInventory,
    lookups: &AdvisoryLookups,
) -> MetaResult<Matched> {
    let os = inventory.os.as_ref().map(os_of);
    let packages: Vec<Package> = inventory.packages.iter().filter_map(package_of).collect();
    let targets: Vec<AdvisoryPackage> = targets(&packages, os.as_ref())
        .into_iter()
        .map(advisory_package)
        .collect();
    let records = lookups.records_for(meta, &targets).await?;
    let found = match_packages(&packages, os.as_ref(), &records);
    let findings: Vec<StoredFinding> = found.findings.iter().map(stored_finding).collect();
    Ok(Matched {
        targets_key: targets_key(&targets),
        summary: summary_of(&findings),
        targets,
        findings,
        packages: inventory.packages.len(),
    })
}

/// Advisory lookups remembered for one catch-up round. The images of a hub share most of
/// their packages (1,000 images of one base share all of them), so each package is looked up
/// and each record parsed once a round instead of once an image. Only for one round: a record
/// imported later is found by the next round, whose generation covers it.
#[derive(Default)]
struct AdvisoryLookups {
    inner: Mutex<Lookups>,
}

#[derive(Default)]
struct Lookups {
    /// Per inventory key, what matching it gave (at most [`REMEMBERED_INVENTORIES`]).
    matched: HashMap<String, Arc<Matched>>,
    /// Per package looked up, the ids of the records found for it (none: no record).
    by_package: HashMap<AdvisoryPackage, Vec<Arc<str>>>,
    /// The records of those ids, parsed; `None` for one that does not parse (logged once).
    records: HashMap<Arc<str>, Option<Arc<Record>>>,
}

impl AdvisoryLookups {
    /// The records that name any of `wanted`, each once, by id (as
    /// [`AdvisoryStore::advisories_for`](crate::meta::advisories::AdvisoryStore::advisories_for)
    /// finds them); packages not looked up yet this round are looked up now.
    async fn records_for(
        &self,
        meta: &dyn MetaStore,
        wanted: &[AdvisoryPackage],
    ) -> MetaResult<Vec<Record>> {
        let mut out: BTreeMap<Arc<str>, Arc<Record>> = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let lookups = self.lock();
            for package in wanted {
                match lookups.by_package.get(package) {
                    Some(ids) => {
                        for id in ids {
                            if let Some(Some(record)) = lookups.records.get(id) {
                                out.insert(id.clone(), record.clone());
                            }
                        }
                    }
                    None => missing.push(package.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out.into_values().map(|r| Record::clone(&r)).collect());
        }
        let found = meta.advisories_by_package(&missing).await?;
        let mut lookups = self.lock();
        let remember = lookups.by_package.len() + missing.len() <= REMEMBERED_PACKAGES;
        if remember {
            for package in &missing {
                lookups.by_package.entry(package.clone()).or_default();
            }
        }
        for hit in found {
            let id: Arc<str> = Arc::from(hit.id.as_str());
            let record = match lookups.records.get(&id) {
                Some(parsed) => parsed.clone(),
                None => {
                    let parsed = match Record::from_json(hit.record.as_bytes()) {
                        Ok(r) => Some(Arc::new(r)),
                        Err(e) => {
                            tracing::warn!(advisory = %hit.id, error = %e, "stored advisory skipped");
                            None
                        }
                    };
                    if remember {
                        lookups.records.insert(id.clone(), parsed.clone());
                    }
                    parsed
                }
            };
            if remember
                && let Some(ids) = lookups.by_package.get_mut(&hit.package)
                && !ids.contains(&id)
            {
                ids.push(id.clone());
            }
            if let Some(record) = record {
                out.insert(id, record);
            }
        }
        Ok(out.into_values().map(|r| Record::clone(&r)).collect())
    }

    /// What matching the inventory of `key` gave earlier this round.
    fn matched(&self, key: &str) -> Option<Arc<Matched>> {
        self.lock().matched.get(key).cloned()
    }

    /// Remembers what matching the inventory of `key` gave, while there is room.
    fn remember_match(&self, key: String, matched: Arc<Matched>) {
        let mut lookups = self.lock();
        if lookups.matched.len() < REMEMBERED_INVENTORIES {
            lookups.matched.insert(key, matched);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lookups> {
        // Nothing panics while holding it; a poisoned map is still a valid map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A finding as stored.
pub fn stored_finding(f: &Finding) -> StoredFinding {
    StoredFinding {
        package: f.package.clone(),
        kind: kind_name(f.kind),
        installed: f.installed.clone(),
        ecosystem: f.ecosystem.clone(),
        matched_name: f.matched_name.clone(),
        advisory: f.advisory.clone(),
        aliases: f.aliases.clone(),
        summary: f.summary.clone(),
        severity: f.severity.as_str().to_owned(),
        score: f.score,
        fixed: f.fixed.clone(),
        fixed_versions: f.fixed_versions.clone(),
        fixable: f.fixable,
        paths: f.paths.clone(),
    }
}

/// A stored severity as a level (`unknown` for anything else).
pub fn level_of(severity: &str) -> Level {
    serde_json::from_value(serde_json::Value::String(severity.to_owned())).unwrap_or(Level::Unknown)
}

/// The counts of `findings`.
pub fn summary_of(findings: &[StoredFinding]) -> FindingSummary {
    let mut s = FindingSummary::default();
    for f in findings {
        match level_of(&f.severity) {
            Level::Critical => s.critical += 1,
            Level::High => s.high += 1,
            Level::Medium => s.medium += 1,
            Level::Low => s.low += 1,
            Level::None => s.none += 1,
            Level::Unknown => s.unknown += 1,
        }
        if f.fixable {
            s.fixable += 1;
        }
    }
    s.total = findings.len() as u64;
    s
}

/// Why a manifest was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its inventory was just stored.
    Inventory,
    /// The advisory database changed.
    Advisories,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Advisories => "advisories",
        }
    }
}

/// Which findings the API shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FindingFilter {
    /// Only findings at or above this severity.
    pub severity: Option<Threshold>,
    /// Only findings with (true) or without (false) a fixed version.
    pub fixable: Option<bool>,
}

impl FindingFilter {
    /// Whether the filter keeps `f`.
    pub fn keeps(&self, f: &StoredFinding) -> bool {
        self.severity
            .is_none_or(|t| t.met_by(level_of(&f.severity)))
            && self.fixable.is_none_or(|want| f.fixable == want)
    }
}

/// Where a manifest's findings stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingStatus {
    /// Matched.
    Done,
    /// Inventory or matching still to come.
    Pending,
    /// The inventory failed.
    Failed,
    /// Not inventoried (an index, an artifact, pushed while scanning was off).
    NotScanned,
}

impl FindingStatus {
    /// As the API says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::NotScanned => "not_scanned",
        }
    }
}

/// A manifest's findings, as the JSON API shows them.
#[derive(Debug, Clone)]
pub struct ManifestFindings {
    /// The manifest's digest (the reference resolved).
    pub digest: Digest,
    /// Where they stand.
    pub status: FindingStatus,
    /// The last match, if any.
    pub matched: Option<MatchRecord>,
    /// The findings the filter kept.
    pub findings: Vec<StoredFinding>,
}

impl Registry {
    /// Matches the stored inventory of manifest `manifest_id` against the advisory database
    /// and stores the findings (unless a replica stored them at this generation already);
    /// announces `scan.completed` when they are new or changed. Returns whether it stored.
    #[tracing::instrument(skip(self))]
    pub async fn match_manifest(&self, manifest_id: i64, trigger: Trigger) -> RegistryResult<bool> {
        // Read before the advisories: what is stored is at least as new as the generation.
        let generation = self.meta.vulndb_generation().await?;
        self.match_at(
            manifest_id,
            trigger,
            generation,
            &AdvisoryLookups::default(),
        )
        .await
    }

    /// [`Registry::match_manifest`] at `generation`, read before any advisory in `lookups`.
    async fn match_at(
        &self,
        manifest_id: i64,
        trigger: Trigger,
        generation: i64,
        lookups: &AdvisoryLookups,
    ) -> RegistryResult<bool> {
        let Some(head) = self.meta.inventory_head(manifest_id).await? else {
            return Ok(false);
        };
        let matched = match head.key.as_deref().and_then(|key| lookups.matched(key)) {
            Some(matched) => matched,
            None => {
                let Some(inventory) = self.meta.inventory_of(manifest_id).await? else {
                    return Ok(false);
                };
                let matched = Arc::new(match_stored(&*self.meta, &inventory, lookups).await?);
                // Under the key of what was read, whatever the head said a moment before.
                let key = inventory_key(inventory.os.as_ref(), &inventory.packages);
                lookups.remember_match(key, matched.clone());
                matched
            }
        };
        let new = NewFindings {
            generation,
            matched_at: now_ms(),
            targets: matched.targets.clone(),
            targets_key: matched.targets_key.clone(),
            findings: matched.findings.clone(),
            summary: matched.summary,
        };
        let summary = new.summary;
        let previous = match self.meta.findings_store(manifest_id, &new).await? {
            FindingsStored::Fenced => return Ok(false),
            FindingsStored::Replaced(previous) => previous,
        };
        tracing::info!(repository = %head.repository, digest = %head.digest,
            generation, findings = summary.total, trigger = trigger.as_str(), "findings matched");
        let changed = match trigger {
            Trigger::Inventory => true,
            Trigger::Advisories => keys(&previous) != keys(&new.findings),
        };
        if changed && let Ok(repo) = RepoName::parse(&head.repository) {
            let mut event = self.event(
                Action::ScanCompleted,
                &Origin::system("scanner"),
                &repo,
                Some(HookEvent::Scan),
            );
            event.digest = Some(head.digest.clone());
            event.detail = Some(serde_json::json!({
                "trigger": trigger.as_str(),
                "generation": generation,
                "packages": matched.packages,
                "summary": summary,
            }));
            self.meta.record_event(&event, 0).await?;
        }
        Ok(true)
    }

    /// One round of catching the stored findings up to the advisory database's generation:
    /// manifests never matched are matched, the others matched again only when a record
    /// written since names one of their packages or findings. Returns how many manifests it
    /// looked at (0: all are current).
    pub async fn catch_up_findings(&self) -> RegistryResult<usize> {
        let generation = self.meta.vulndb_generation().await?;
        let due = self.meta.findings_due(generation, CATCH_UP_BATCH).await?;
        let lookups = AdvisoryLookups::default();
        let lookups = &lookups;
        futures_util::stream::iter(due.iter().cloned())
            .map(|d| async move {
                match d.matched_generation {
                    Some(from) if !self.meta.findings_touched(d.manifest_id, from).await? => {
                        self.meta
                            .findings_advance(d.manifest_id, from, generation)
                            .await?;
                    }
                    Some(_) => {
                        self.match_at(d.manifest_id, Trigger::Advisories, generation, lookups)
                            .await?;
                    }
                    None => {
                        self.match_at(d.manifest_id, Trigger::Inventory, generation, lookups)
                            .await?;
                    }
                }
                Ok::<_, RegistryError>(())
            })
            .buffer_unordered(CATCH_UP_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(due.len())
    }

    /// The findings of the manifest `reference` names in `repo`, filtered.
    #[tracing::instrument(skip(self))]
    pub async fn findings_for(
        &self,
        repo: &RepoName,
        reference: &Reference,
        filter: FindingFilter,
    ) -> RegistryResult<ManifestFindings> {
        let Some(manifest) = self.meta.manifest(repo, reference, false).await? else {
            return Err(self.not_found(repo, RegistryError::ManifestUnknown).await);
        };
        let digest = manifest.digest;
        let id = self
            .meta
            .scan_manifest_id(repo.as_str(), &digest.to_string())
            .await?;
        let matched = match id {
            Some(id) => self.meta.findings_match(id).await?,
            None => None,
        };
        let (status, findings) = match (id, &matched) {
            (None, _) => (FindingStatus::NotScanned, Vec::new()),
            (Some(id), Some(_)) => (FindingStatus::Done, self.meta.findings_of(id).await?),
            (Some(_), None) => {
                let scan = self
                    .meta
                    .scan_of(repo.as_str(), &digest.to_string())
                    .await?;
                let status = match scan.map(|s| s.status) {
                    Some(ScanStatus::Failed) => FindingStatus::Failed,
                    None => FindingStatus::NotScanned,
                    Some(_) => FindingStatus::Pending,
                };
                (status, Vec::new())
            }
        };
        let findings = findings.into_iter().filter(|f| filter.keeps(f)).collect();
        Ok(ManifestFindings {
            digest,
            status,
            matched,
            findings,
        })
    }

    /// The last match of manifest `digest` in `repo`, if any (the summary the SBOM answer
    /// shows).
    pub(crate) async fn match_of(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Option<MatchRecord>> {
        let Some(id) = self
            .meta
            .scan_manifest_id(repo.as_str(), &digest.to_string())
            .await?
        else {
            return Ok(None);
        };
        Ok(self.meta.findings_match(id).await?)
    }

    /// Findings per severity over every matched manifest.
    pub async fn findings_totals(&self) -> RegistryResult<FindingSummary> {
        Ok(self.meta.findings_totals().await?)
    }
}

/// What tells two sets of findings apart for announcing a change.
fn keys(findings: &[StoredFinding]) -> BTreeSet<(&str, &str, &str, &str)> {
    findings
        .iter()
        .map(|f| {
            (
                f.package.as_str(),
                f.installed.as_str(),
                f.advisory.as_str(),
                f.severity.as_str(),
            )
        })
        .collect()
}
