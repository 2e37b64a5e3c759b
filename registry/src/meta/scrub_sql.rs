//! The SQL of [`ScrubStore`](super::scrub::ScrubStore), for SQLite and PostgreSQL.

/// Defines the scrub query functions over `&mut $conn`.
macro_rules! scrub_queries {
    ($conn:ty) => {
        use $crate::meta::scrub::{DanglingReference, Finding, Problem, ScrubBlob, ScrubCursor, ScrubManifest};
        use $crate::meta::sql::{digest, uint};
        use $crate::meta::{MetaError, MetaResult, now_ms};

        pub(super) async fn cursor(conn: &mut $conn) -> MetaResult<ScrubCursor> {
            let (blob, manifest, round_started_at): (String, i64, i64) = sqlx::query_as(
                "SELECT blob_cursor, manifest_cursor, round_started_at FROM scrub_progress WHERE id = 1",
            )
            .fetch_one(conn)
            .await?;
            Ok(ScrubCursor { blob, manifest, round_started_at })
        }

        pub(super) async fn save_cursor(conn: &mut $conn, c: &ScrubCursor) -> MetaResult<()> {
            sqlx::query(
                "UPDATE scrub_progress SET blob_cursor = $1, manifest_cursor = $2, round_started_at = $3,
                     updated_at = $4 WHERE id = 1",
            )
            .bind(&c.blob)
            .bind(c.manifest)
            .bind(c.round_started_at)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(super) async fn blobs(conn: &mut $conn, after: &str, limit: u32) -> MetaResult<Vec<ScrubBlob>> {
            let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
                "SELECT digest, size, storage_key FROM blobs
                 WHERE digest > $1 AND quarantined_at IS NULL ORDER BY digest LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(d, size, location)| Ok(ScrubBlob { digest: digest(&d, "blobs")?, size: uint(size, "blobs")?, location }))
                .collect()
        }

        pub(super) async fn manifests(conn: &mut $conn, after: i64, limit: u32) -> MetaResult<Vec<ScrubManifest>> {
            let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT m.id, r.name, m.digest, m.content FROM manifests m
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE m.id > $1 ORDER BY m.id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, repository, digest, content)| ScrubManifest { id, repository, digest, content })
                .collect())
        }

        pub(super) async fn dangling(conn: &mut $conn, after: i64, upto: i64) -> MetaResult<Vec<DanglingReference>> {
            let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                "SELECT mb.manifest_id, mb.digest, CAST(0 AS BIGINT) FROM manifest_blobs mb
                 WHERE mb.manifest_id > $1 AND mb.manifest_id <= $2
                   AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = mb.digest AND b.quarantined_at IS NULL)
                 UNION ALL
                 SELECT c.parent_id, c.child_digest, CAST(1 AS BIGINT) FROM manifest_children c
                 JOIN manifests p ON p.id = c.parent_id
                 WHERE c.parent_id > $1 AND c.parent_id <= $2
                   AND NOT EXISTS (SELECT 1 FROM manifests m
                                   WHERE m.repository_id = p.repository_id AND m.digest = c.child_digest)
                 ORDER BY 1, 2",
            )
            .bind(after)
            .bind(upto)
            .fetch_all(conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(manifest_id, digest, child)| DanglingReference { manifest_id, digest, child: child == 1 })
                .collect())
        }

        async fn insert_finding(conn: &mut $conn, f: &Finding) -> sqlx::Result<()> {
            sqlx::query(
                "INSERT INTO scrub_findings (problem, digest, repository, storage_key, detail, found_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(f.problem.as_str())
            .bind(&f.digest)
            .bind(f.repository.as_deref())
            .bind(f.storage_key.as_deref())
            .bind(&f.detail)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(super) async fn quarantine(conn: &mut $conn, blob: &ScrubBlob, f: &Finding) -> MetaResult<bool> {
            let done = sqlx::query(
                "UPDATE blobs SET quarantined_at = $3
                 WHERE digest = $1 AND COALESCE(storage_key, '') = COALESCE($2, '') AND quarantined_at IS NULL",
            )
            .bind(blob.digest.to_string())
            .bind(blob.location.as_deref())
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_finding(conn, f).await?;
            Ok(true)
        }

        pub(super) async fn record(conn: &mut $conn, f: &Finding) -> MetaResult<bool> {
            let open: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM scrub_findings
                 WHERE digest = $1 AND problem = $2 AND COALESCE(repository, '') = COALESCE($3, '')
                   AND detail = $4 AND repaired_at IS NULL",
            )
            .bind(&f.digest)
            .bind(f.problem.as_str())
            .bind(f.repository.as_deref())
            .bind(&f.detail)
            .fetch_optional(&mut *conn)
            .await?;
            if open.is_some() {
                return Ok(false);
            }
            insert_finding(conn, f).await?;
            Ok(true)
        }

        pub(super) async fn resolve(conn: &mut $conn, repository: &str, digest: &str) -> MetaResult<()> {
            sqlx::query(
                "UPDATE scrub_findings SET repaired_at = $3
                 WHERE repository = $1 AND digest = $2 AND repaired_at IS NULL",
            )
            .bind(repository)
            .bind(digest)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(super) async fn close_stale(conn: &mut $conn) -> MetaResult<()> {
            sqlx::query(
                "UPDATE scrub_findings SET repaired_at = $1
                 WHERE repaired_at IS NULL AND (
                     (repository IS NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = scrub_findings.digest))
                  OR (repository IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                         WHERE r.name = scrub_findings.repository AND m.digest = scrub_findings.digest)))",
            )
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(super) async fn copy_referenced(conn: &mut $conn, location: &str) -> MetaResult<bool> {
            let upload = location.strip_prefix("data/").unwrap_or(location);
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM blobs WHERE storage_key = $1
                 UNION ALL SELECT CAST(1 AS BIGINT) FROM gc_blob_deletions WHERE storage_key = $1
                 UNION ALL SELECT CAST(1 AS BIGINT) FROM uploads WHERE id = $2
                 LIMIT 1",
            )
            .bind(location)
            .bind(upload)
            .fetch_optional(conn)
            .await?;
            Ok(found.is_some())
        }

        pub(super) async fn open_findings(conn: &mut $conn, limit: u32) -> MetaResult<Vec<(i64, Finding)>> {
            type Row = (i64, String, String, Option<String>, Option<String>, String);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, problem, digest, repository, storage_key, detail FROM scrub_findings
                 WHERE repaired_at IS NULL ORDER BY id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(id, problem, digest, repository, storage_key, detail)| {
                    let problem = match problem.as_str() {
                        "missing" => Problem::Missing,
                        "corrupt" => Problem::Corrupt,
                        "manifest_corrupt" => Problem::ManifestCorrupt,
                        "dangling_reference" => Problem::DanglingReference,
                        other => {
                            return Err(MetaError::Corrupt { table: "scrub_findings", reason: format!("unknown problem {other:?}") })
                        }
                    };
                    Ok((id, Finding { problem, digest, repository, storage_key, detail }))
                })
                .collect()
        }
    };
}

/// Implements [`ScrubStore`](super::scrub::ScrubStore) for a store with the `account_read`
/// and `account_write` runners.
macro_rules! impl_scrub_store {
    ($store:ty, $conn:ty) => {
        mod sq {
            $crate::meta::scrub_sql::scrub_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::scrub::ScrubStore for $store {
            async fn scrub_cursor(&self) -> $crate::meta::MetaResult<$crate::meta::scrub::ScrubCursor> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| sq::cursor(c))
            }
            async fn scrub_save_cursor(&self, cursor: &$crate::meta::scrub::ScrubCursor) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [cursor], |c| sq::save_cursor(c, &cursor))
            }
            async fn scrub_blobs(&self, after: &str, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::scrub::ScrubBlob>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [after], |c| sq::blobs(c, &after, limit))
            }
            async fn scrub_manifests(&self, after: i64, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::scrub::ScrubManifest>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| sq::manifests(c, after, limit))
            }
            async fn scrub_dangling(&self, after: i64, upto: i64) -> $crate::meta::MetaResult<Vec<$crate::meta::scrub::DanglingReference>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| sq::dangling(c, after, upto))
            }
            async fn scrub_quarantine(&self, blob: &$crate::meta::scrub::ScrubBlob, finding: &$crate::meta::scrub::Finding) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [blob, finding], |c| sq::quarantine(c, &blob, &finding))
            }
            async fn scrub_record(&self, finding: &$crate::meta::scrub::Finding) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [finding], |c| sq::record(c, &finding))
            }
            async fn scrub_resolve(&self, repository: &str, digest: &str) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [repository, digest], |c| sq::resolve(c, &repository, &digest))
            }
            async fn scrub_close_stale(&self) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| sq::close_stale(c))
            }
            async fn scrub_copy_referenced(&self, location: &str) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [location], |c| sq::copy_referenced(c, &location))
            }
            async fn scrub_open_findings(&self, limit: u32) -> $crate::meta::MetaResult<Vec<(i64, $crate::meta::scrub::Finding)>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| sq::open_findings(c, limit))
            }
        }
    };
}

pub(crate) use impl_scrub_store;
pub(crate) use scrub_queries;
