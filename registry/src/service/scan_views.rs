//! Scan results as the web UI shows them: a severity summary per tag (an index's platforms
//! combined), a manifest's findings a page at a time, and its inventory's packages with the
//! SBOM referrers beside it.
//!
//! Depends on `meta` (the reads of [`crate::meta::scan_views`]) and the findings' status rules
//! of [`super::findings`]; never on `blob`.

use std::collections::HashMap;

use super::findings::{FindingFilter, FindingStatus};
use super::vuln_policy::PageMarks;
use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, Reference, RepoName};
use crate::meta::findings::{FindingSummary, MatchRecord, StoredFinding};
use crate::meta::scan_views::{FindingQuery, ScanSummaryRow, severity_rank};
use crate::meta::scans::{ScanRecord, ScanStatus, StoredPackage};

/// Where a tag's scan results stand, as its summary shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanState {
    /// Nothing of it was inventoried (scanning off when pushed, an artifact).
    NotScanned,
    /// Inventory or matching still to come.
    Pending,
    /// The inventory failed.
    Failed,
    /// Matched: the counts hold.
    Matched,
}

/// The severity summary of a manifest: its own scan, or its platforms' scans combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanBadge {
    /// For an index, how many of its platforms were queued for a scan.
    pub platforms: Option<u32>,
    /// Scans matched (their counts are summed in `summary`).
    pub matched: u32,
    /// Scans still to be inventoried or matched.
    pub pending: u32,
    /// Scans that failed.
    pub failed: u32,
    /// The counts of the matched scans, summed.
    pub summary: FindingSummary,
}

impl ScanBadge {
    /// Where it stands: matched when any scan is (the others are said beside the counts).
    pub fn state(&self) -> ScanState {
        if self.matched > 0 {
            ScanState::Matched
        } else if self.pending > 0 {
            ScanState::Pending
        } else if self.failed > 0 {
            ScanState::Failed
        } else {
            ScanState::NotScanned
        }
    }

    fn add(&mut self, row: &ScanSummaryRow) {
        match row.status.as_deref() {
            None => {}
            Some("failed") => self.failed += 1,
            Some(_) if row.matched_generation.is_some() => {
                self.matched += 1;
                let (s, r) = (&mut self.summary, &row.summary);
                s.critical += r.critical;
                s.high += r.high;
                s.medium += r.medium;
                s.low += r.low;
                s.none += r.none;
                s.unknown += r.unknown;
                s.fixable += r.fixable;
                s.total += r.total;
            }
            Some(_) => self.pending += 1,
        }
    }
}

/// Combines the summary rows of `digests` (in order): a manifest's own scan if it has one,
/// else the scans of its platforms.
fn badges(digests: &[Digest], rows: &[ScanSummaryRow]) -> Vec<ScanBadge> {
    let mut own: HashMap<&str, &ScanSummaryRow> = HashMap::new();
    let mut children: HashMap<&str, Vec<&ScanSummaryRow>> = HashMap::new();
    for r in rows {
        if r.via_child {
            children.entry(r.digest.as_str()).or_default().push(r);
        } else {
            own.insert(r.digest.as_str(), r);
        }
    }
    digests
        .iter()
        .map(|d| {
            let d = d.to_string();
            let mut badge = ScanBadge::default();
            match own.get(d.as_str()) {
                Some(r) if r.status.is_some() => badge.add(r),
                _ => {
                    let platforms = children.get(d.as_str()).map(Vec::as_slice).unwrap_or(&[]);
                    let scanned = platforms.iter().filter(|r| r.status.is_some()).count();
                    if scanned > 0 {
                        badge.platforms = Some(u32::try_from(scanned).unwrap_or(u32::MAX));
                        for r in platforms {
                            badge.add(r);
                        }
                    }
                }
            }
            badge
        })
        .collect()
}

/// A page of a manifest's findings.
#[derive(Debug, Clone)]
pub struct FindingsView {
    /// Where the manifest's findings stand.
    pub status: FindingStatus,
    /// Why the inventory failed, when it did.
    pub reason: Option<String>,
    /// The last match: the advisory database generation and time, the counts.
    pub matched: Option<MatchRecord>,
    /// Findings the filter keeps, in all.
    pub total: u64,
    /// This page of them, most severe first, then by package.
    pub findings: Vec<StoredFinding>,
    /// What the allowlist and the vulnerability policy say of them.
    pub marks: PageMarks,
}

/// A page of a manifest's packages and its SBOMs.
#[derive(Debug, Clone)]
pub struct PackagesView {
    /// Its job and inventory (without packages), if it was queued.
    pub scan: Option<ScanRecord>,
    /// Packages in all.
    pub total: u64,
    /// This page of them, in inventory order.
    pub packages: Vec<StoredPackage>,
    /// SBOM referrers of the manifest: berth's and any a client pushed.
    pub sboms: Vec<SbomReferrer>,
}

/// An SBOM that refers to a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomReferrer {
    /// The referrer manifest.
    pub digest: Digest,
    /// Its artifact type (`application/spdx+json`).
    pub artifact_type: String,
    /// Whether berth made it.
    pub berth: bool,
}

/// Whether an artifact type is an SBOM's: SPDX, CycloneDX or Syft, in any encoding.
fn is_sbom(artifact_type: &str) -> bool {
    let t = artifact_type.to_ascii_lowercase();
    ["spdx", "cyclonedx", "syft", "sbom"]
        .iter()
        .any(|k| t.contains(k))
}

impl Registry {
    /// The severity summaries of `digests` in `repo`, in order, read in one query per
    /// hundred digests.
    pub async fn scan_badges(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> RegistryResult<Vec<ScanBadge>> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = digests.iter().map(ToString::to_string).collect();
        let rows = self.meta.scan_summaries(repo.as_str(), &names).await?;
        Ok(badges(digests, &rows))
    }

    /// The scan row id of a manifest that exists in `repo`: 404 when the manifest does not.
    async fn scan_row(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<Option<i64>> {
        let reference = Reference::Digest(digest.clone());
        if self.meta.manifest(repo, &reference, false).await?.is_none() {
            return Err(self.not_found(repo, RegistryError::ManifestUnknown).await);
        }
        Ok(self
            .meta
            .scan_manifest_id(repo.as_str(), &digest.to_string())
            .await?)
    }

    /// A page of the findings of manifest `digest` in `repo` that `filter` keeps.
    #[tracing::instrument(skip(self))]
    pub async fn findings_view(
        &self,
        repo: &RepoName,
        digest: &Digest,
        filter: FindingFilter,
        offset: u64,
        limit: u32,
    ) -> RegistryResult<FindingsView> {
        let mut view = FindingsView {
            status: FindingStatus::NotScanned,
            reason: None,
            matched: None,
            total: 0,
            findings: Vec::new(),
            marks: PageMarks::default(),
        };
        let Some(id) = self.scan_row(repo, digest).await? else {
            return Ok(view);
        };
        let head = self.meta.scan_head(id).await?;
        view.matched = self.meta.findings_match(id).await?;
        view.reason = head.as_ref().and_then(|h| h.reason.clone());
        view.status = match (&view.matched, head.map(|h| h.status)) {
            (Some(_), _) => FindingStatus::Done,
            (None, Some(ScanStatus::Failed)) => FindingStatus::Failed,
            (None, None) => FindingStatus::NotScanned,
            (None, Some(_)) => FindingStatus::Pending,
        };
        if view.status == FindingStatus::Done {
            let query = FindingQuery {
                min_rank: filter.severity.map_or(0, |t| severity_rank(t.0)),
                fixable: filter.fixable,
                offset,
                limit,
            };
            (view.total, view.findings) = self.meta.findings_page(id, query).await?;
            view.marks = self.page_marks(repo, id, &view.findings).await?;
        }
        Ok(view)
    }

    /// A page of the packages of manifest `digest` in `repo`, and its SBOM referrers.
    #[tracing::instrument(skip(self))]
    pub async fn packages_view(
        &self,
        repo: &RepoName,
        digest: &Digest,
        offset: u64,
        limit: u32,
    ) -> RegistryResult<PackagesView> {
        let id = self.scan_row(repo, digest).await?;
        let mut view = PackagesView {
            scan: None,
            total: 0,
            packages: Vec::new(),
            sboms: Vec::new(),
        };
        if let Some(id) = id {
            view.scan = self.meta.scan_head(id).await?;
            if view
                .scan
                .as_ref()
                .is_some_and(|s| s.status == ScanStatus::Done)
            {
                (view.total, view.packages) = self.meta.packages_page(id, offset, limit).await?;
            }
        }
        let referrers = self.referrers(repo, digest, None, None).await?;
        view.sboms = referrers
            .items
            .into_iter()
            .filter_map(|r| {
                let artifact_type = r.artifact_type.filter(|t| is_sbom(t))?;
                let berth = r
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(super::sbom::GENERATOR_ANNOTATION))
                    .is_some_and(|g| g == "berth");
                Some(SbomReferrer {
                    digest: r.digest,
                    artifact_type,
                    berth,
                })
            })
            .collect();
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        digest: &str,
        via_child: bool,
        status: Option<&str>,
        matched: bool,
        high: u64,
    ) -> ScanSummaryRow {
        ScanSummaryRow {
            digest: digest.into(),
            via_child,
            status: status.map(str::to_owned),
            matched_generation: matched.then_some(3),
            matched_at: matched.then_some(1),
            summary: FindingSummary {
                high,
                total: high,
                ..FindingSummary::default()
            },
        }
    }

    #[test]
    fn an_index_combines_its_platforms_and_an_image_shows_its_own() {
        let d = |c: char| {
            Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
        };
        let (image, index, artifact, pending) = (d('a'), d('b'), d('c'), d('e'));
        let (i, x, art, p) = (
            image.to_string(),
            index.to_string(),
            artifact.to_string(),
            pending.to_string(),
        );
        let rows = vec![
            row(&i, false, Some("done"), true, 2),
            row(&x, false, None, false, 0),
            row(&x, true, Some("done"), true, 1),
            row(&x, true, Some("done"), true, 4),
            row(&x, true, Some("failed"), false, 0),
            row(&x, true, None, false, 0),
            row(&art, false, None, false, 0),
            row(&p, false, Some("done"), false, 0),
        ];
        let b = badges(&[image, index, artifact, pending], &rows);
        assert_eq!(
            (b[0].state(), b[0].summary.high, b[0].platforms),
            (ScanState::Matched, 2, None)
        );
        assert_eq!(
            (b[1].state(), b[1].summary.high, b[1].summary.total),
            (ScanState::Matched, 5, 5)
        );
        assert_eq!((b[1].platforms, b[1].matched, b[1].failed), (Some(3), 2, 1));
        assert_eq!(b[2].state(), ScanState::NotScanned);
        assert_eq!(
            b[3].state(),
            ScanState::Pending,
            "inventoried, not matched yet"
        );
    }

    #[test]
    fn sbom_types_are_recognised() {
        assert!(is_sbom("application/spdx+json"));
        assert!(is_sbom("application/vnd.cyclonedx+json"));
        assert!(is_sbom("application/vnd.syft+json"));
        assert!(!is_sbom("application/vnd.dev.cosign.artifact.sig.v1+json"));
    }
}
