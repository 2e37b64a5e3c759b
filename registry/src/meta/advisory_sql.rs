//! The SQL of [`AdvisoryStore`](super::advisories::AdvisoryStore), for SQLite and PostgreSQL.

/// Defines the advisory query functions over `&mut $conn`.
macro_rules! advisory_queries {
    ($conn:ty) => {
        use $crate::meta::MetaResult;
        use $crate::meta::advisories::{
            AdvisoryCounts, AdvisoryPackage, AdvisorySource, CandidateAdvisory, NewAdvisory,
            PACKAGES_PER_LOOKUP, PACKAGES_PER_QUERY, PackageAdvisory, StoredAdvisory,
            UpsertCounts,
        };

        /// A stored count (never negative) as a count.
        fn count(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        /// A count as stored.
        fn stored(n: u64) -> i64 {
            i64::try_from(n).unwrap_or(i64::MAX)
        }

        pub(super) async fn upsert(
            conn: &mut $conn,
            source: &str,
            batch: &[NewAdvisory],
            now: i64,
        ) -> MetaResult<UpsertCounts> {
            let mut counts = UpsertCounts::default();
            // The generation this transaction's records are stamped with, taken when the
            // first record is written (see migrations/*/0022_findings.sql).
            let mut generation: Option<i64> = None;
            for a in batch {
                let old: Option<i64> =
                    sqlx::query_scalar("SELECT modified_ms FROM advisories WHERE id = $1")
                        .bind(&a.id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match old {
                    Some(old) if old >= a.modified_ms => {
                        counts.unchanged += 1;
                        continue;
                    }
                    Some(_) => counts.updated += 1,
                    None => counts.new += 1,
                }
                let stamp = match generation {
                    Some(g) => g,
                    None => {
                        let g: i64 = sqlx::query_scalar(
                            "UPDATE vulndb_generation SET value = value + 1 WHERE id = 1 RETURNING value",
                        )
                        .fetch_one(&mut *conn)
                        .await?;
                        *generation.insert(g)
                    }
                };
                let aliases = serde_json::to_string(&a.aliases).unwrap_or_else(|_| "[]".into());
                sqlx::query(
                    "INSERT INTO advisories (id, modified, modified_ms, published, withdrawn,
                         summary, aliases, severity, score, record, source, imported_at, generation)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (id) DO UPDATE SET modified = excluded.modified,
                         modified_ms = excluded.modified_ms, published = excluded.published,
                         withdrawn = excluded.withdrawn, summary = excluded.summary,
                         aliases = excluded.aliases, severity = excluded.severity,
                         score = excluded.score, record = excluded.record,
                         source = excluded.source, imported_at = excluded.imported_at,
                         generation = excluded.generation",
                )
                .bind(&a.id)
                .bind(&a.modified)
                .bind(a.modified_ms)
                .bind(a.published.as_deref())
                .bind(a.withdrawn.as_deref())
                .bind(a.summary.as_deref())
                .bind(aliases)
                .bind(&a.severity)
                .bind(a.score)
                .bind(&a.record)
                .bind(source)
                .bind(now)
                .bind(stamp)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM advisory_packages WHERE advisory_id = $1")
                    .bind(&a.id)
                    .execute(&mut *conn)
                    .await?;
                for p in &a.packages {
                    sqlx::query(
                        "INSERT INTO advisory_packages (advisory_id, ecosystem, ecosystem_release, name)
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(&a.id)
                    .bind(&p.ecosystem)
                    .bind(&p.release)
                    .bind(&p.name)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(counts)
        }

        pub(super) async fn advisory(
            conn: &mut $conn,
            id: &str,
        ) -> MetaResult<Option<StoredAdvisory>> {
            type Row = (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
                String,
                Option<f64>,
                String,
                i64,
                String,
            );
            let row: Option<Row> = sqlx::query_as(
                "SELECT id, modified, published, withdrawn, summary, aliases, severity, score,
                     source, imported_at, record
                 FROM advisories WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(conn)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let aliases = serde_json::from_str(&row.5).map_err(|e| {
                $crate::meta::MetaError::Corrupt {
                    table: "advisories",
                    reason: format!("aliases of {}: {e}", row.0),
                }
            })?;
            Ok(Some(StoredAdvisory {
                id: row.0,
                modified: row.1,
                published: row.2,
                withdrawn: row.3,
                summary: row.4,
                aliases,
                severity: row.6,
                score: row.7,
                source: row.8,
                imported_at: row.9,
                record: row.10,
            }))
        }

        pub(super) async fn candidates(
            conn: &mut $conn,
            packages: &[AdvisoryPackage],
        ) -> MetaResult<Vec<CandidateAdvisory>> {
            let mut found = std::collections::BTreeMap::new();
            for chunk in packages.chunks(PACKAGES_PER_QUERY) {
                // Only placeholders are formatted in; every value is bound.
                let mut sql = String::from(
                    "SELECT DISTINCT a.id, a.record FROM advisory_packages p
                     JOIN advisories a ON a.id = p.advisory_id
                     WHERE a.withdrawn IS NULL AND (",
                );
                for i in 0..chunk.len() {
                    let n = i * 3;
                    if i > 0 {
                        sql.push_str(" OR ");
                    }
                    sql.push_str(&format!(
                        "(p.ecosystem = ${} AND p.name = ${} AND {})",
                        n + 1,
                        n + 2,
                        $crate::meta::advisories::release_applies_sql(
                            "p.ecosystem_release",
                            &format!("${}", n + 3)
                        )
                    ));
                }
                sql.push(')');
                let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
                for p in chunk {
                    query = query.bind(&p.ecosystem).bind(&p.name).bind(&p.release);
                }
                for (id, record) in query.fetch_all(&mut *conn).await? {
                    found.insert(id, record);
                }
            }
            Ok(found
                .into_iter()
                .map(|(id, record)| CandidateAdvisory { id, record })
                .collect())
        }

        pub(super) async fn by_package(
            conn: &mut $conn,
            packages: &[AdvisoryPackage],
        ) -> MetaResult<Vec<PackageAdvisory>> {
            let mut found = Vec::new();
            for chunk in packages.chunks(PACKAGES_PER_LOOKUP) {
                // The packages as a table joined to the `(ecosystem, name)` index: each row
                // found says which package it was found for. Only placeholders are formatted
                // in; every value is bound. Releases are compared as in `advisories_for`.
                let sql = $crate::meta::sql::values_sql(
                    "WITH wanted (ecosystem, ecosystem_release, name) AS (VALUES ",
                    3,
                    chunk.len(),
                    &format!(
                        ") SELECT w.ecosystem, w.ecosystem_release, w.name, a.id, a.record
                         FROM wanted w
                         JOIN advisory_packages p ON p.ecosystem = w.ecosystem AND p.name = w.name
                             AND {}
                         JOIN advisories a ON a.id = p.advisory_id
                         WHERE a.withdrawn IS NULL",
                        $crate::meta::advisories::release_applies_sql(
                            "p.ecosystem_release",
                            "w.ecosystem_release"
                        )
                    ),
                );
                let mut query = sqlx::query_as::<_, (String, String, String, String, String)>(
                    sqlx::AssertSqlSafe(sql),
                );
                for p in chunk {
                    query = query.bind(&p.ecosystem).bind(&p.release).bind(&p.name);
                }
                for (ecosystem, release, name, id, record) in query.fetch_all(&mut *conn).await? {
                    found.push(PackageAdvisory {
                        package: AdvisoryPackage { ecosystem, release, name },
                        id,
                        record,
                    });
                }
            }
            Ok(found)
        }

        pub(super) async fn counts(conn: &mut $conn) -> MetaResult<AdvisoryCounts> {
            let (advisories, withdrawn): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COUNT(withdrawn) FROM advisories",
            )
            .fetch_one(&mut *conn)
            .await?;
            let packages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM advisory_packages")
                .fetch_one(&mut *conn)
                .await?;
            Ok(AdvisoryCounts {
                advisories: count(advisories),
                withdrawn: count(withdrawn),
                packages: count(packages),
            })
        }

        type SourceRow = (
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        );

        const SOURCE_COLUMNS: &str = "source, ecosystems, etag, last_modified, checked_at,
            imported_at, records, new, updated, unchanged, malformed";

        fn source_of(r: SourceRow) -> AdvisorySource {
            AdvisorySource {
                source: r.0,
                ecosystems: r.1,
                etag: r.2,
                last_modified: r.3,
                checked_at: r.4,
                imported_at: r.5,
                records: count(r.6),
                new: count(r.7),
                updated: count(r.8),
                unchanged: count(r.9),
                malformed: count(r.10),
            }
        }

        pub(super) async fn source(
            conn: &mut $conn,
            source: &str,
        ) -> MetaResult<Option<AdvisorySource>> {
            let sql = format!("SELECT {SOURCE_COLUMNS} FROM advisory_sources WHERE source = $1");
            let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(source)
                .fetch_optional(conn)
                .await?;
            Ok(row.map(source_of))
        }

        pub(super) async fn sources(conn: &mut $conn) -> MetaResult<Vec<AdvisorySource>> {
            let sql = format!("SELECT {SOURCE_COLUMNS} FROM advisory_sources ORDER BY source");
            let rows: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(conn)
                .await?;
            Ok(rows.into_iter().map(source_of).collect())
        }

        pub(super) async fn save_source(conn: &mut $conn, s: &AdvisorySource) -> MetaResult<()> {
            sqlx::query(
                "INSERT INTO advisory_sources (source, ecosystems, etag, last_modified,
                     checked_at, imported_at, records, new, updated, unchanged, malformed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (source) DO UPDATE SET ecosystems = excluded.ecosystems,
                     etag = excluded.etag, last_modified = excluded.last_modified,
                     checked_at = excluded.checked_at, imported_at = excluded.imported_at,
                     records = excluded.records, new = excluded.new, updated = excluded.updated,
                     unchanged = excluded.unchanged, malformed = excluded.malformed",
            )
            .bind(&s.source)
            .bind(&s.ecosystems)
            .bind(s.etag.as_deref())
            .bind(s.last_modified.as_deref())
            .bind(s.checked_at)
            .bind(s.imported_at)
            .bind(stored(s.records))
            .bind(stored(s.new))
            .bind(stored(s.updated))
            .bind(stored(s.unchanged))
            .bind(stored(s.malformed))
            .execute(conn)
            .await?;
            Ok(())
        }
    };
}

/// Implements [`AdvisoryStore`](super::advisories::AdvisoryStore) for `$store` over `$conn`.
macro_rules! impl_advisory_store {
    ($store:ty, $conn:ty) => {
        mod vq {
            $crate::meta::advisory_sql::advisory_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::advisories::AdvisoryStore for $store {
            async fn advisories_upsert(
                &self,
                source: &str,
                batch: &[$crate::meta::advisories::NewAdvisory],
                now: i64,
            ) -> $crate::meta::MetaResult<$crate::meta::advisories::UpsertCounts> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [source, batch],
                    |c| vq::upsert(c, &source, &batch, now))
            }
            async fn advisory(
                &self,
                id: &str,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::advisories::StoredAdvisory>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [id], |c| vq::advisory(c, &id))
            }
            async fn advisory_counts(
                &self,
            ) -> $crate::meta::MetaResult<$crate::meta::advisories::AdvisoryCounts> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| vq::counts(c))
            }
            async fn advisory_source(
                &self,
                source: &str,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::advisories::AdvisorySource>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [source], |c| vq::source(c, &source))
            }
            async fn advisory_sources(
                &self,
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::advisories::AdvisorySource>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| vq::sources(c))
            }
            async fn advisory_save_source(
                &self,
                source: &$crate::meta::advisories::AdvisorySource,
            ) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [source], |c| vq::save_source(c, &source))
            }
            async fn advisories_for(
                &self,
                packages: &[$crate::meta::advisories::AdvisoryPackage],
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::advisories::CandidateAdvisory>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [packages], |c| vq::candidates(c, &packages))
            }
            async fn advisories_by_package(
                &self,
                packages: &[$crate::meta::advisories::AdvisoryPackage],
            ) -> $crate::meta::MetaResult<Vec<$crate::meta::advisories::PackageAdvisory>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [packages], |c| vq::by_package(c, &packages))
            }
        }
    };
}

pub(crate) use advisory_queries;
pub(crate) use impl_advisory_store;
