//! Scrub: re-hashes every stored blob and checks every manifest and its references,
//! incrementally (a pass may stop after a number of items) and resumably (the round's cursor
//! is in the database, so the next pass, here or on another replica, continues from it).
//!
//! A blob whose bytes are missing or wrong is quarantined: requests stop being served from
//! it (clients get `BLOB_UNKNOWN` rather than bad bytes, and push it again), and the next
//! upload of the same content repairs it (see `link` in `meta/sql.rs`). Manifests whose
//! bytes do not match their digest, or that reference what cannot be served, are reported.

use futures_util::TryStreamExt;
use serde::Serialize;

use super::{Registry, RegistryResult};
use crate::domain::{Digest, UploadHasher};
use crate::meta::now_ms;
use crate::meta::scrub::{BLOBS_DONE, Finding, Problem, ScrubBlob, ScrubCursor};

/// Items read per query.
const PAGE: u32 = 100;

/// How a pass runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubOptions {
    /// Check at most this many blobs and manifests, then stop (the next pass resumes).
    pub limit: Option<u64>,
    /// Start a new round from the first blob instead of resuming.
    pub restart: bool,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Manifests checked.
    pub manifests_checked: u64,
    /// Problems found by this pass (each recorded once).
    pub findings: Vec<Finding>,
    /// Whether the pass finished a round (every blob and manifest checked); the next pass
    /// starts a new one.
    pub round_complete: bool,
}

/// What an orphan sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrphanReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Stored copies listed.
    pub copies_checked: u64,
    /// The orphans' locations.
    pub orphans: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
}

impl Registry {
    /// Runs one scrub pass.
    #[tracing::instrument(skip(self))]
    pub async fn scrub(&self, options: &ScrubOptions) -> RegistryResult<ScrubReport> {
        let mut cursor = if options.restart {
            ScrubCursor::start()
        } else {
            self.meta.scrub_cursor().await?
        };
        if cursor.round_started_at == 0 {
            cursor.round_started_at = now_ms();
        }
        let mut budget = options.limit.unwrap_or(u64::MAX);
        // Manifests with open findings: closed when they check out fine.
        let mut flagged: std::collections::HashSet<(String, String)> = self
            .meta
            .scrub_open_findings(10_000)
            .await?
            .into_iter()
            .filter_map(|(_, f)| Some((f.repository?, f.digest)))
            .collect();
        let mut report = ScrubReport::default();
        while cursor.blob != BLOBS_DONE && budget > 0 {
            let take = u32::try_from(budget.min(u64::from(PAGE))).unwrap_or(PAGE);
            let page = self.meta.scrub_blobs(&cursor.blob, take).await?;
            if page.is_empty() {
                cursor.blob = BLOBS_DONE.to_owned();
            }
            for blob in page {
                budget -= 1;
                report.blobs_checked += 1;
                if let Some(finding) = self.check_blob(&blob, &mut report).await?
                    && self.meta.scrub_quarantine(&blob, &finding).await?
                {
                    tracing::warn!(digest = %blob.digest, problem = finding.problem.as_str(), "blob quarantined");
                    report.findings.push(finding);
                }
                cursor.blob = blob.digest.to_string();
            }
            self.meta.scrub_save_cursor(&cursor).await?;
        }
        while cursor.blob == BLOBS_DONE && budget > 0 {
            let take = u32::try_from(budget.min(u64::from(PAGE))).unwrap_or(PAGE);
            let page = self.meta.scrub_manifests(cursor.manifest, take).await?;
            let Some(upto) = page.last().map(|m| m.id) else {
                // The round is complete: the next pass starts a new one.
                report.round_complete = true;
                self.meta.scrub_close_stale().await?;
                cursor = ScrubCursor::start();
                self.meta.scrub_save_cursor(&cursor).await?;
                break;
            };
            let dangling = self.meta.scrub_dangling(cursor.manifest, upto).await?;
            for m in &page {
                budget -= 1;
                report.manifests_checked += 1;
                let mut found = Vec::new();
                match m.digest.parse::<Digest>() {
                    Ok(d) if Digest::compute(d.algorithm(), &m.content) == d => {}
                    Ok(d) => found.push((
                        Problem::ManifestCorrupt,
                        format!(
                            "stored bytes hash to {}",
                            Digest::compute(d.algorithm(), &m.content)
                        ),
                    )),
                    Err(e) => found.push((Problem::ManifestCorrupt, e.to_string())),
                }
                // In a pull-through cache, references arrive when first pulled.
                let on_demand = self.mirrors.covers(&m.repository);
                for r in dangling
                    .iter()
                    .filter(|r| r.manifest_id == m.id && !on_demand)
                {
                    let what = if r.child { "child manifest" } else { "blob" };
                    found.push((
                        Problem::DanglingReference,
                        format!("references {what} {}, which cannot be served", r.digest),
                    ));
                }
                if found.is_empty() && flagged.remove(&(m.repository.clone(), m.digest.clone())) {
                    self.meta.scrub_resolve(&m.repository, &m.digest).await?;
                }
                for (problem, detail) in found {
                    let finding = Finding {
                        problem,
                        digest: m.digest.clone(),
                        repository: Some(m.repository.clone()),
                        storage_key: None,
                        detail,
                    };
                    if self.meta.scrub_record(&finding).await? {
                        tracing::warn!(repository = %m.repository, digest = %m.digest, problem = problem.as_str(), "manifest problem");
                        report.findings.push(finding);
                    }
                }
            }
            cursor.manifest = upto;
            self.meta.scrub_save_cursor(&cursor).await?;
        }
        tracing::info!(
            blobs = report.blobs_checked,
            bytes = report.bytes_checked,
            manifests = report.manifests_checked,
            findings = report.findings.len(),
            round_complete = report.round_complete,
            "scrub pass done"
        );
        Ok(report)
    }

    /// Deletes (or, dry, lists) stored copies no blob, tombstone or upload session claims
    /// and older than `min_age`: the bytes of uploads whose process died between storing
    /// them and recording them. Younger copies may be an upload finishing right now.
    #[tracing::instrument(skip(self))]
    pub async fn sweep_orphans(
        &self,
        min_age: std::time::Duration,
        dry_run: bool,
    ) -> RegistryResult<OrphanReport> {
        let cutoff =
            now_ms().saturating_sub(i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX));
        let mut report = OrphanReport {
            dry_run,
            ..OrphanReport::default()
        };
        let mut copies = self.blobs.copies();
        while let Some(copy) = copies.try_next().await? {
            report.copies_checked += 1;
            if copy.written_at >= cutoff || self.meta.scrub_copy_referenced(&copy.location).await? {
                continue;
            }
            if !dry_run {
                self.blobs.delete_copy(&copy.location).await?;
            }
            report.bytes += copy.size;
            report.orphans.push(copy.location);
        }
        tracing::info!(
            orphans = report.orphans.len(),
            bytes = report.bytes,
            dry_run,
            "orphan sweep done"
        );
        Ok(report)
    }

    /// Problems found by scrubs and not repaired yet, oldest first.
    pub async fn scrub_findings(&self) -> RegistryResult<Vec<Finding>> {
        let open = self.meta.scrub_open_findings(10_000).await?;
        Ok(open.into_iter().map(|(_, f)| f).collect())
    }

    /// Reads a blob's bytes through its hash; the problem, if any.
    async fn check_blob(
        &self,
        blob: &ScrubBlob,
        report: &mut ScrubReport,
    ) -> RegistryResult<Option<Finding>> {
        let finding = |problem, detail: String| Finding {
            problem,
            digest: blob.digest.to_string(),
            repository: None,
            storage_key: blob.location.clone(),
            detail,
        };
        let Some(read) = self
            .blobs
            .get(&blob.digest, blob.location.as_deref(), None)
            .await?
        else {
            return Ok(Some(finding(
                Problem::Missing,
                "no bytes in storage".to_owned(),
            )));
        };
        let mut hasher = UploadHasher::new(blob.digest.algorithm());
        let mut size = 0u64;
        let mut stream = read.stream;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        report.bytes_checked += size;
        let actual = hasher.finish();
        Ok(if size != blob.size {
            Some(finding(
                Problem::Corrupt,
                format!("{size} bytes stored, {} recorded", blob.size),
            ))
        } else if actual != blob.digest {
            Some(finding(
                Problem::Corrupt,
                format!("stored bytes hash to {actual}"),
            ))
        } else {
            None
        })
    }
}
