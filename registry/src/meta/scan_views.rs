//! What the web UI reads of inventories and findings: the summaries of a page of tags in one
//! query (an index's platforms included), and findings and packages a page at a time, filtered
//! and counted in SQL, so an image with thousands of findings costs one bounded read per page.
//!
//! The tables are those of migrations/*/0019_scans.sql and 0022_findings.sql; nothing here
//! writes. Findings are stored most severe first, then by package (`seq`), which is the order
//! the pages show.

use async_trait::async_trait;

use super::MetaResult;
use super::findings::{FindingSummary, StoredFinding};
use super::scans::{ScanRecord, StoredPackage};

/// Digests one summary query names at most (its placeholders stay well under every
/// backend's limit).
pub const SUMMARY_DIGESTS_PER_QUERY: usize = 100;

/// The scan of one manifest as a summary row: the manifest asked for, or (`via_child`) one of
/// the platforms of that index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummaryRow {
    /// The digest asked for (the index, for a platform's row).
    pub digest: String,
    /// Whether the row is one of the index's platforms.
    pub via_child: bool,
    /// The job's status (`queued`, `running`, `done`, `failed`); `None`: never queued.
    pub status: Option<String>,
    /// The generation its findings were matched at, if they were.
    pub matched_generation: Option<i64>,
    /// When (Unix ms).
    pub matched_at: Option<i64>,
    /// The counts of the last match (zero before it).
    pub summary: FindingSummary,
}

/// Which findings a page shows, and which of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingQuery {
    /// Only findings at this rank or above ([`severity_rank`]); 0 for all.
    pub min_rank: i64,
    /// Only findings with (true) or without (false) a fixed version.
    pub fixable: Option<bool>,
    /// Matching findings to skip.
    pub offset: u64,
    /// Findings to return at most.
    pub limit: u32,
}

/// A severity's rank, as the filter compares it: unknown 0, none 1, low 2, medium 3, high 4,
/// critical 5 (the order of `berth_scan::osv::Level`).
pub fn severity_rank(level: berth_scan::osv::Level) -> i64 {
    use berth_scan::osv::Level;
    match level {
        Level::Unknown => 0,
        Level::None => 1,
        Level::Low => 2,
        Level::Medium => 3,
        Level::High => 4,
        Level::Critical => 5,
    }
}

/// The UI's reads of scans.
#[async_trait]
pub trait ScanViewStore {
    /// The scan rows of `digests` in `repository`, and of the platforms of those that are
    /// indexes, in one query per [`SUMMARY_DIGESTS_PER_QUERY`] digests. Digests not in the
    /// repository have no rows.
    async fn scan_summaries(
        &self,
        repository: &str,
        digests: &[String],
    ) -> MetaResult<Vec<ScanSummaryRow>>;

    /// The job of a manifest without its packages (`packages` is empty).
    async fn scan_head(&self, manifest_id: i64) -> MetaResult<Option<ScanRecord>>;

    /// How many of the manifest's findings `query` keeps, and its page of them, most severe
    /// first.
    async fn findings_page(
        &self,
        manifest_id: i64,
        query: FindingQuery,
    ) -> MetaResult<(u64, Vec<StoredFinding>)>;

    /// How many packages the manifest's inventory has, and `limit` of them from `offset`, in
    /// inventory order.
    async fn packages_page(
        &self,
        manifest_id: i64,
        offset: u64,
        limit: u32,
    ) -> MetaResult<(u64, Vec<StoredPackage>)>;
}

/// Implements [`ScanViewStore`] for `$store` over `$conn`.
macro_rules! impl_scan_view_store {
    ($store:ty, $conn:ty) => {
        mod svq {
            use $crate::meta::findings::{FindingSummary, StoredFinding};
            use $crate::meta::scan_views::{FindingQuery, ScanSummaryRow};
            use $crate::meta::scans::{ScanRecord, ScanStatus, StoredOs, StoredPackage};
            use $crate::meta::{MetaError, MetaResult};

            fn count(n: Option<i64>) -> u64 {
                n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
            }


            /// The columns of a summary row after the digest and `via_child`.
            const COLUMNS: &str = "s.status, s.matched_generation, s.matched_at,
                s.findings_critical, s.findings_high, s.findings_medium, s.findings_low,
                s.findings_none, s.findings_unknown, s.findings_fixable";

            type SummaryRow = (String, i64, Option<String>, Option<i64>, Option<i64>, Option<i64>,
                               Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>,
                               Option<i64>);

            pub(super) async fn summaries(
                conn: &mut $conn,
                repository: &str,
                digests: &[String],
            ) -> MetaResult<Vec<ScanSummaryRow>> {
                let mut out = Vec::new();
                for chunk in digests.chunks($crate::meta::scan_views::SUMMARY_DIGESTS_PER_QUERY) {
                    // Only placeholders are formatted in; every value is bound.
                    let list = (0..chunk.len())
                        .map(|i| format!("${}", i + 2))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "SELECT m.digest, CAST(0 AS BIGINT), {COLUMNS}
                         FROM manifests m JOIN repositories r ON r.id = m.repository_id
                         LEFT JOIN scans s ON s.manifest_id = m.id
                         WHERE r.name = $1 AND m.digest IN ({list})
                         UNION ALL
                         SELECT m.digest, CAST(1 AS BIGINT), {COLUMNS}
                         FROM manifests m JOIN repositories r ON r.id = m.repository_id
                         JOIN manifest_children mc ON mc.parent_id = m.id
                         JOIN manifests c ON c.repository_id = m.repository_id
                             AND c.digest = mc.child_digest
                         LEFT JOIN scans s ON s.manifest_id = c.id
                         WHERE r.name = $1 AND m.digest IN ({list})"
                    );
                    let mut query = sqlx::query_as::<_, SummaryRow>(sqlx::AssertSqlSafe(sql))
                        .bind(repository);
                    for d in chunk {
                        query = query.bind(d);
                    }
                    for r in query.fetch_all(&mut *conn).await? {
                        let mut summary = FindingSummary {
                            critical: count(r.5),
                            high: count(r.6),
                            medium: count(r.7),
                            low: count(r.8),
                            none: count(r.9),
                            unknown: count(r.10),
                            fixable: count(r.11),
                            total: 0,
                        };
                        summary.total = summary.critical + summary.high + summary.medium
                            + summary.low + summary.none + summary.unknown;
                        out.push(ScanSummaryRow {
                            digest: r.0,
                            via_child: r.1 != 0,
                            status: r.2,
                            matched_generation: r.3,
                            matched_at: r.4,
                            summary,
                        });
                    }
                }
                Ok(out)
            }

            type HeadRow = (String, i64, i64, Option<i64>, Option<i64>, Option<String>,
                            Option<String>, Option<String>, Option<String>, Option<String>,
                            Option<String>);

            pub(super) async fn head(conn: &mut $conn, manifest_id: i64) -> MetaResult<Option<ScanRecord>> {
                let row: Option<HeadRow> = sqlx::query_as(
                    "SELECT status, attempts, queued_at, finished_at, duration_ms, reason, os_id,
                         os_version, os_name, problems, sbom_digest
                     FROM scans WHERE manifest_id = $1",
                )
                .bind(manifest_id)
                .fetch_optional(conn)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let status = ScanStatus::parse(&r.0).ok_or_else(|| MetaError::Corrupt {
                    table: "scans",
                    reason: format!("status {:?}", r.0),
                })?;
                Ok(Some(ScanRecord {
                    status,
                    attempts: u32::try_from(r.1).unwrap_or(u32::MAX),
                    queued_at: r.2,
                    finished_at: r.3,
                    duration_ms: r.4.and_then(|d| u64::try_from(d).ok()),
                    reason: r.5,
                    os: r.6.map(|id| StoredOs { id, version: r.7, name: r.8 }),
                    problems: r.9,
                    sbom_digest: r.10,
                    packages: Vec::new(),
                }))
            }

            /// The filter of the findings queries: `$1` manifest, `$2` least rank, `$3`
            /// fixable (or NULL).
            const FINDINGS_WHERE: &str = "WHERE manifest_id = $1
                AND (CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3
                     WHEN 'low' THEN 2 WHEN 'none' THEN 1 ELSE 0 END) >= $2
                AND ($3 IS NULL OR fixable = $3)";


            pub(super) async fn findings(
                conn: &mut $conn,
                manifest_id: i64,
                q: FindingQuery,
            ) -> MetaResult<(u64, Vec<StoredFinding>)> {
                let fixable = q.fixable.map(i64::from);
                let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM scan_findings {FINDINGS_WHERE}"
                )))
                .bind(manifest_id)
                .bind(q.min_rank)
                .bind(fixable)
                .fetch_one(&mut *conn)
                .await?;
                let rows: Vec<$crate::meta::findings::FindingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM scan_findings {FINDINGS_WHERE} ORDER BY seq LIMIT $4 OFFSET $5",
                    $crate::meta::findings::FINDING_COLUMNS
                )))
                .bind(manifest_id)
                .bind(q.min_rank)
                .bind(fixable)
                .bind(i64::from(q.limit))
                .bind(i64::try_from(q.offset).unwrap_or(i64::MAX))
                .fetch_all(&mut *conn)
                .await?;
                let findings = rows
                    .into_iter()
                    .map($crate::meta::findings::finding_of)
                    .collect::<MetaResult<Vec<_>>>()?;
                Ok((count(Some(total)), findings))
            }

            type PackageRow = (String, String, String, Option<String>, Option<String>, Option<String>,
                               String, String);

            pub(super) async fn packages(
                conn: &mut $conn,
                manifest_id: i64,
                offset: u64,
                limit: u32,
            ) -> MetaResult<(u64, Vec<StoredPackage>)> {
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scan_packages WHERE manifest_id = $1")
                    .bind(manifest_id)
                    .fetch_one(&mut *conn)
                    .await?;
                let rows: Vec<PackageRow> = sqlx::query_as(
                    "SELECT type, name, version, source_name, source_version, arch, path, purl
                     FROM scan_packages WHERE manifest_id = $1 ORDER BY seq LIMIT $2 OFFSET $3",
                )
                .bind(manifest_id)
                .bind(i64::from(limit))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(&mut *conn)
                .await?;
                let packages = rows
                    .into_iter()
                    .map(|p| StoredPackage {
                        kind: p.0,
                        name: p.1,
                        version: p.2,
                        source_name: p.3,
                        source_version: p.4,
                        arch: p.5,
                        path: p.6,
                        purl: p.7,
                    })
                    .collect();
                Ok((count(Some(total)), packages))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::scan_views::ScanViewStore for $store {
            async fn scan_summaries(
                &self,
                repository: &str,
                digests: &[String],
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::scan_views::ScanSummaryRow>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repository, digests],
                    |c| svq::summaries(c, &repository, &digests))
            }
            async fn scan_head(
                &self,
                manifest_id: i64,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::scans::ScanRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| svq::head(c, manifest_id))
            }
            async fn findings_page(
                &self,
                manifest_id: i64,
                query: $crate::meta::scan_views::FindingQuery,
            ) -> $crate::meta::MetaResult<(u64, Vec<$crate::meta::findings::StoredFinding>)> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| svq::findings(c, manifest_id, query))
            }
            async fn packages_page(
                &self,
                manifest_id: i64,
                offset: u64,
                limit: u32,
            ) -> $crate::meta::MetaResult<(u64, Vec<$crate::meta::scans::StoredPackage>)> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| svq::packages(c, manifest_id, offset, limit))
            }
        }
    };
}

pub(crate) use impl_scan_view_store;
