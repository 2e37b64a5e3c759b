//! The SQL of [`FindingStore`](super::findings::FindingStore), for SQLite and PostgreSQL.

/// Defines the findings query functions over `&mut $conn`.
macro_rules! finding_queries {
    ($conn:ty) => {
        use $crate::meta::findings::{
            FindingRow, FindingSummary, FindingsStored, InventoryHead, MatchDue, MatchRecord,
            NewFindings, StoredFinding, StoredInventory, finding_of, row_of,
        };
        use $crate::meta::scans::{StoredOs, StoredPackage};
        use $crate::meta::MetaResult;

        fn count(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        fn stored(n: u64) -> i64 {
            i64::try_from(n).unwrap_or(i64::MAX)
        }

        use $crate::meta::sql::{rows_per_insert, values_sql};


        pub(super) async fn generation(conn: &mut $conn) -> MetaResult<i64> {
            Ok(sqlx::query_scalar("SELECT value FROM vulndb_generation WHERE id = 1")
                .fetch_one(conn)
                .await?)
        }

        pub(super) async fn due(conn: &mut $conn, generation: i64, limit: u32) -> MetaResult<Vec<MatchDue>> {
            let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
                "SELECT manifest_id, matched_generation FROM scans
                 WHERE status = 'done' AND (matched_generation IS NULL OR matched_generation < $1)
                 ORDER BY matched_generation IS NOT NULL, manifest_id LIMIT $2",
            )
            .bind(generation)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(manifest_id, matched_generation)| MatchDue { manifest_id, matched_generation })
                .collect())
        }

        pub(super) async fn touched(conn: &mut $conn, manifest_id: i64, since: i64) -> MetaResult<bool> {
            // Only column names are formatted in.
            let sql = format!(
                "SELECT t.manifest_id FROM scan_targets t
                 JOIN advisory_packages p ON p.ecosystem = t.ecosystem AND p.name = t.name
                     AND {}
                 JOIN advisories a ON a.id = p.advisory_id
                 WHERE t.manifest_id = $1 AND a.generation > $2
                 UNION ALL
                 SELECT f.manifest_id FROM scan_findings f JOIN advisories a ON a.id = f.advisory_id
                 WHERE f.manifest_id = $1 AND a.generation > $2
                 LIMIT 1",
                $crate::meta::advisories::release_applies_sql(
                    "p.ecosystem_release",
                    "t.ecosystem_release"
                )
            );
            let hit: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(manifest_id)
            .bind(since)
            .fetch_optional(conn)
            .await?;
            Ok(hit.is_some())
        }

        pub(super) async fn advance(conn: &mut $conn, manifest_id: i64, from: i64, to: i64) -> MetaResult<bool> {
            let n = sqlx::query(
                "UPDATE scans SET matched_generation = $3
                 WHERE manifest_id = $1 AND matched_generation = $2",
            )
            .bind(manifest_id)
            .bind(from)
            .bind(to)
            .execute(conn)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        pub(super) async fn head(conn: &mut $conn, manifest_id: i64) -> MetaResult<Option<InventoryHead>> {
            let row: Option<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT r.name, m.digest, s.inventory_key
                 FROM scans s JOIN manifests m ON m.id = s.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE s.manifest_id = $1 AND s.status = 'done'",
            )
            .bind(manifest_id)
            .fetch_optional(conn)
            .await?;
            Ok(row.map(|(repository, digest, key)| InventoryHead { repository, digest, key }))
        }

        type PackageRow = (String, String, String, Option<String>, Option<String>, Option<String>,
                           String, String);

        pub(super) async fn inventory(conn: &mut $conn, manifest_id: i64) -> MetaResult<Option<StoredInventory>> {
            let row: Option<(String, String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT r.name, m.digest, s.os_id, s.os_version, s.os_name
                 FROM scans s JOIN manifests m ON m.id = s.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE s.manifest_id = $1 AND s.status = 'done'",
            )
            .bind(manifest_id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((repository, digest, os_id, os_version, os_name)) = row else {
                return Ok(None);
            };
            let packages: Vec<PackageRow> = sqlx::query_as(
                "SELECT type, name, version, source_name, source_version, arch, path, purl
                 FROM scan_packages WHERE manifest_id = $1 ORDER BY seq",
            )
            .bind(manifest_id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(Some(StoredInventory {
                repository,
                digest,
                os: os_id.map(|id| StoredOs { id, version: os_version, name: os_name }),
                packages: packages
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
                    .collect(),
            }))
        }

        pub(super) async fn store(conn: &mut $conn, manifest_id: i64, new: &NewFindings) -> MetaResult<FindingsStored> {
            let s = &new.summary;
            // Read before the update below writes the new key.
            let targets_key: Option<Option<String>> =
                sqlx::query_scalar("SELECT targets_key FROM scans WHERE manifest_id = $1")
                    .bind(manifest_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let n = sqlx::query(
                "UPDATE scans SET matched_generation = $2, matched_at = $3, findings_critical = $4,
                     findings_high = $5, findings_medium = $6, findings_low = $7,
                     findings_none = $8, findings_unknown = $9, findings_fixable = $10,
                     targets_key = $11
                 WHERE manifest_id = $1 AND status = 'done'
                   AND (matched_generation IS NULL OR matched_generation < $2)",
            )
            .bind(manifest_id)
            .bind(new.generation)
            .bind(new.matched_at)
            .bind(stored(s.critical))
            .bind(stored(s.high))
            .bind(stored(s.medium))
            .bind(stored(s.low))
            .bind(stored(s.none))
            .bind(stored(s.unknown))
            .bind(stored(s.fixable))
            .bind(&new.targets_key)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(FindingsStored::Fenced);
            }
            if targets_key.flatten().as_deref() != Some(new.targets_key.as_str()) {
                store_targets(conn, manifest_id, new).await?;
            }
            let previous: Vec<FindingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM scan_findings WHERE manifest_id = $1 ORDER BY seq",
                $crate::meta::findings::FINDING_COLUMNS
            )))
            .bind(manifest_id)
            .fetch_all(&mut *conn)
            .await?;
            let previous: Vec<StoredFinding> =
                previous.into_iter().map(finding_of).collect::<MetaResult<_>>()?;
            if previous != new.findings {
                sqlx::query("DELETE FROM scan_findings WHERE manifest_id = $1")
                    .bind(manifest_id)
                    .execute(&mut *conn)
                    .await?;
                let rows: Vec<FindingRow> = new.findings.iter().map(row_of).collect();
                insert_findings(conn, manifest_id, &rows).await?;
            }
            Ok(FindingsStored::Replaced(previous))
        }

        /// Brings the manifest's stored targets to `new.targets`, writing only the difference:
        /// targets follow from the packages, which a new match of the same inventory keeps.
        async fn store_targets(conn: &mut $conn, manifest_id: i64, new: &NewFindings) -> MetaResult<()> {
            use std::collections::BTreeSet;
            let old: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT ecosystem, ecosystem_release, name FROM scan_targets WHERE manifest_id = $1",
            )
            .bind(manifest_id)
            .fetch_all(&mut *conn)
            .await?;
            let old: BTreeSet<(&str, &str, &str)> =
                old.iter().map(|(e, r, n)| (e.as_str(), r.as_str(), n.as_str())).collect();
            let wanted: BTreeSet<(&str, &str, &str)> = new
                .targets
                .iter()
                .map(|t| (t.ecosystem.as_str(), t.release.as_str(), t.name.as_str()))
                .collect();
            let gone: Vec<_> = old.difference(&wanted).collect();
            let mut added: Vec<_> = wanted.difference(&old).collect();
            if gone.len() > TARGETS_DELETED_ONE_BY_ONE {
                // Mostly different (a new inventory): cheaper to write them all again.
                sqlx::query("DELETE FROM scan_targets WHERE manifest_id = $1")
                    .bind(manifest_id)
                    .execute(&mut *conn)
                    .await?;
                added = wanted.iter().collect();
            } else {
                for (ecosystem, release, name) in gone {
                    sqlx::query(
                        "DELETE FROM scan_targets WHERE manifest_id = $1 AND ecosystem = $2
                             AND ecosystem_release = $3 AND name = $4",
                    )
                    .bind(manifest_id)
                    .bind(*ecosystem)
                    .bind(*release)
                    .bind(*name)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            // Many rows per statement: an image has hundreds of targets, and matching 1,000
            // images again after an import wrote them one statement each for most of its time.
            for chunk in added.chunks(rows_per_insert(4)) {
                let sql = values_sql(
                    "INSERT INTO scan_targets (manifest_id, ecosystem, ecosystem_release, name) VALUES ",
                    4,
                    chunk.len(),
                    " ON CONFLICT DO NOTHING",
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (ecosystem, release, name) in chunk {
                    query = query.bind(manifest_id).bind(*ecosystem).bind(*release).bind(*name);
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Targets that went away deleted one statement each; beyond this many, all of them
        /// are deleted and written again.
        const TARGETS_DELETED_ONE_BY_ONE: usize = 16;

        async fn insert_findings(conn: &mut $conn, manifest_id: i64, rows: &[FindingRow]) -> MetaResult<()> {
            let numbered: Vec<_> = rows.iter().enumerate().collect();
            for chunk in numbered.chunks(rows_per_insert(16)) {
                let sql = values_sql(
                    "INSERT INTO scan_findings (manifest_id, seq, package, type, installed,
                         ecosystem, matched_name, advisory_id, aliases, summary, severity, score,
                         fixed, fixed_versions, fixable, paths) VALUES ",
                    16,
                    chunk.len(),
                    "",
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (seq, r) in chunk {
                    query = query
                        .bind(manifest_id)
                        .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                        .bind(&r.0)
                        .bind(&r.1)
                        .bind(&r.2)
                        .bind(&r.3)
                        .bind(&r.4)
                        .bind(&r.5)
                        .bind(&r.6)
                        .bind(r.7.as_deref())
                        .bind(&r.8)
                        .bind(r.9)
                        .bind(r.10.as_deref())
                        .bind(&r.11)
                        .bind(r.12)
                        .bind(&r.13);
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        }

        type SummaryRow = (i64, i64, i64, i64, i64, i64, i64);

        fn summary_of(r: SummaryRow) -> FindingSummary {
            let mut s = FindingSummary {
                critical: count(r.0),
                high: count(r.1),
                medium: count(r.2),
                low: count(r.3),
                none: count(r.4),
                unknown: count(r.5),
                fixable: count(r.6),
                total: 0,
            };
            s.total = s.critical + s.high + s.medium + s.low + s.none + s.unknown;
            s
        }

        pub(super) async fn matched(conn: &mut $conn, manifest_id: i64) -> MetaResult<Option<MatchRecord>> {
            let row: Option<(Option<i64>, Option<i64>, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT matched_generation, matched_at, findings_critical, findings_high,
                     findings_medium, findings_low, findings_none, findings_unknown, findings_fixable
                 FROM scans WHERE manifest_id = $1",
            )
            .bind(manifest_id)
            .fetch_optional(conn)
            .await?;
            Ok(row.and_then(|r| {
                Some(MatchRecord {
                    generation: r.0?,
                    matched_at: r.1.unwrap_or(0),
                    summary: summary_of((r.2, r.3, r.4, r.5, r.6, r.7, r.8)),
                })
            }))
        }


        pub(super) async fn findings(conn: &mut $conn, manifest_id: i64) -> MetaResult<Vec<StoredFinding>> {
            let rows: Vec<$crate::meta::findings::FindingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM scan_findings WHERE manifest_id = $1 ORDER BY seq",
                $crate::meta::findings::FINDING_COLUMNS
            )))
            .bind(manifest_id)
            .fetch_all(conn)
            .await?;
            rows.into_iter().map(finding_of).collect()
        }

        pub(super) async fn manifest_id(conn: &mut $conn, repository: &str, digest: &str) -> MetaResult<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT s.manifest_id FROM scans s JOIN manifests m ON m.id = s.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repository)
            .bind(digest)
            .fetch_optional(conn)
            .await?)
        }

        pub(super) async fn totals(conn: &mut $conn) -> MetaResult<FindingSummary> {
            let r: (Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
                sqlx::query_as(
                    "SELECT CAST(SUM(findings_critical) AS BIGINT), CAST(SUM(findings_high) AS BIGINT), CAST(SUM(findings_medium) AS BIGINT),
                         CAST(SUM(findings_low) AS BIGINT), CAST(SUM(findings_none) AS BIGINT), CAST(SUM(findings_unknown) AS BIGINT),
                         CAST(SUM(findings_fixable) AS BIGINT)
                     FROM scans WHERE matched_generation IS NOT NULL",
                )
                .fetch_one(conn)
                .await?;
            let z = |v: Option<i64>| v.unwrap_or(0);
            Ok(summary_of((z(r.0), z(r.1), z(r.2), z(r.3), z(r.4), z(r.5), z(r.6))))
        }
    };
}

/// Implements [`FindingStore`](super::findings::FindingStore) for `$store` over `$conn`.
macro_rules! impl_finding_store {
    ($store:ty, $conn:ty) => {
        mod fq {
            $crate::meta::finding_sql::finding_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::findings::FindingStore for $store {
            async fn vulndb_generation(&self) -> $crate::meta::MetaResult<i64> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::generation(c))
            }
            async fn findings_due(
                &self,
                generation: i64,
                limit: u32,
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::findings::MatchDue>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::due(c, generation, limit))
            }
            async fn findings_touched(&self, manifest_id: i64, since: i64) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::touched(c, manifest_id, since))
            }
            async fn findings_advance(&self, manifest_id: i64, from: i64, to: i64) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| fq::advance(c, manifest_id, from, to))
            }
            async fn inventory_head(
                &self,
                manifest_id: i64,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::findings::InventoryHead>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::head(c, manifest_id))
            }
            async fn inventory_of(
                &self,
                manifest_id: i64,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::findings::StoredInventory>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::inventory(c, manifest_id))
            }
            async fn findings_store(
                &self,
                manifest_id: i64,
                new: &$crate::meta::findings::NewFindings,
            ) -> $crate::meta::MetaResult<$crate::meta::findings::FindingsStored> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [new], |c| fq::store(c, manifest_id, &new))
            }
            async fn findings_match(
                &self,
                manifest_id: i64,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::findings::MatchRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::matched(c, manifest_id))
            }
            async fn findings_of(
                &self,
                manifest_id: i64,
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::findings::StoredFinding>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::findings(c, manifest_id))
            }
            async fn scan_manifest_id(
                &self,
                repository: &str,
                digest: &str,
            ) -> $crate::meta::MetaResult<Option<i64>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repository, digest],
                    |c| fq::manifest_id(c, &repository, &digest))
            }
            async fn findings_totals(&self) -> $crate::meta::MetaResult<$crate::meta::findings::FindingSummary> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| fq::totals(c))
            }
        }
    };
}

pub(crate) use finding_queries;
pub(crate) use impl_finding_store;
