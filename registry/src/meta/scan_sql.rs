//! The SQL of [`ScanStore`](super::scans::ScanStore), for SQLite and PostgreSQL.

/// Defines the scan queue's query functions over `&mut $conn`; `$claim` locks the row a
/// claim takes (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas claim different jobs).
macro_rules! scan_queries {
    ($conn:ty, $claim:literal) => {
        use $crate::meta::scans::{
            ScanCounts, ScanJob, ScanOutcome, ScanRecord, ScanStatus, StoredOs, StoredPackage,
        };
        use $crate::meta::{LeaseToken, MetaError, MetaResult, now_ms};

        fn corrupt(reason: String) -> MetaError {
            MetaError::Corrupt { table: "scans", reason }
        }

        fn count(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        pub(super) async fn claim(
            conn: &mut $conn,
            now: i64,
            lease_ms: u64,
            max_attempts: u32,
        ) -> MetaResult<Option<ScanJob>> {
            // A worker that died on a job's last attempt leaves it running: give it up.
            sqlx::query(
                "UPDATE scans SET status = 'failed', lease_owner = NULL, finished_at = $1,
                     reason = 'the worker running its last attempt stopped before it finished'
                 WHERE status = 'running' AND lease_until < $1 AND attempts >= $2",
            )
            .bind(now)
            .bind(i64::from(max_attempts))
            .execute(&mut *conn)
            .await?;
            let token = LeaseToken::new_random();
            let until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
            let claimed: Option<(i64, i64)> = sqlx::query_as(concat!(
                "UPDATE scans SET status = 'running', attempts = attempts + 1, lease_owner = $1,
                     lease_until = $2, started_at = $3
                 WHERE manifest_id = (
                     SELECT manifest_id FROM scans
                     WHERE (status = 'queued' OR (status = 'running' AND lease_until < $3))
                       AND attempts < $4
                     ORDER BY queued_at, manifest_id LIMIT 1",
                $claim,
                ")
                 RETURNING manifest_id, attempts"
            ))
            .bind(token.0)
            .bind(until)
            .bind(now)
            .bind(i64::from(max_attempts))
            .fetch_optional(&mut *conn)
            .await?;
            let Some((manifest_id, attempts)) = claimed else {
                return Ok(None);
            };
            let (repository, digest): (String, String) = sqlx::query_as(
                "SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 WHERE m.id = $1",
            )
            .bind(manifest_id)
            .fetch_one(&mut *conn)
            .await?;
            Ok(Some(ScanJob {
                manifest_id,
                repository,
                digest,
                attempts: u32::try_from(attempts).map_err(|_| corrupt(format!("attempts {attempts}")))?,
                token,
            }))
        }

        pub(super) async fn renew(conn: &mut $conn, job: &ScanJob, until: i64) -> MetaResult<bool> {
            let n = sqlx::query(
                "UPDATE scans SET lease_until = $3
                 WHERE manifest_id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .bind(job.manifest_id)
            .bind(job.token.0)
            .bind(until)
            .execute(conn)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        pub(super) async fn done(conn: &mut $conn, job: &ScanJob, o: &ScanOutcome) -> MetaResult<bool> {
            let os = o.os.as_ref();
            let n = sqlx::query(
                "UPDATE scans SET status = 'done', lease_owner = NULL, lease_until = 0,
                     finished_at = $3, duration_ms = $4, reason = NULL, os_id = $5,
                     os_version = $6, os_name = $7, problems = $8, sbom_digest = $9,
                     matched_generation = NULL, inventory_key = $10
                 WHERE manifest_id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .bind(job.manifest_id)
            .bind(job.token.0)
            .bind(now_ms())
            .bind(i64::try_from(o.duration_ms).unwrap_or(i64::MAX))
            .bind(os.map(|os| os.id.as_str()))
            .bind(os.and_then(|os| os.version.as_deref()))
            .bind(os.and_then(|os| os.name.as_deref()))
            .bind(&o.problems)
            .bind(o.sbom_digest.as_deref())
            .bind($crate::meta::scans::inventory_key(os, &o.packages))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM scan_packages WHERE manifest_id = $1")
                .bind(job.manifest_id)
                .execute(&mut *conn)
                .await?;
            let numbered: Vec<_> = o.packages.iter().enumerate().collect();
            for chunk in numbered.chunks($crate::meta::sql::rows_per_insert(10)) {
                let sql = $crate::meta::sql::values_sql(
                    "INSERT INTO scan_packages (manifest_id, seq, type, name, version, source_name,
                         source_version, arch, path, purl) VALUES ",
                    10,
                    chunk.len(),
                    "",
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (seq, p) in chunk {
                    query = query
                        .bind(job.manifest_id)
                        .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                        .bind(&p.kind)
                        .bind(&p.name)
                        .bind(&p.version)
                        .bind(p.source_name.as_deref())
                        .bind(p.source_version.as_deref())
                        .bind(p.arch.as_deref())
                        .bind(&p.path)
                        .bind(&p.purl);
                }
                query.execute(&mut *conn).await?;
            }
            Ok(true)
        }

        pub(super) async fn failed(conn: &mut $conn, job: &ScanJob, reason: &str, give_up: bool) -> MetaResult<bool> {
            let (status, finished) = if give_up { ("failed", Some(now_ms())) } else { ("queued", None) };
            let n = sqlx::query(
                "UPDATE scans SET status = $3, lease_owner = NULL, lease_until = 0, reason = $4,
                     finished_at = $5
                 WHERE manifest_id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .bind(job.manifest_id)
            .bind(job.token.0)
            .bind(status)
            .bind(reason)
            .bind(finished)
            .execute(conn)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        pub(super) async fn release(conn: &mut $conn, job: &ScanJob) -> MetaResult<bool> {
            let n = sqlx::query(
                "UPDATE scans SET status = 'queued', lease_owner = NULL, lease_until = 0,
                     attempts = attempts - 1
                 WHERE manifest_id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .bind(job.manifest_id)
            .bind(job.token.0)
            .execute(conn)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        pub(super) async fn requeue(conn: &mut $conn, repository: &str, digest: &str, now: i64) -> MetaResult<bool> {
            let n = sqlx::query(
                "UPDATE scans SET status = 'queued', attempts = 0, lease_owner = NULL,
                     lease_until = 0, queued_at = $3, reason = NULL
                 WHERE manifest_id = (SELECT m.id FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id
                     WHERE r.name = $1 AND m.digest = $2)",
            )
            .bind(repository)
            .bind(digest)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        type ScanRow = (i64, String, i64, i64, Option<i64>, Option<i64>, Option<String>,
                        Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
        type PackageRow = (String, String, String, Option<String>, Option<String>, Option<String>,
                           String, String);

        pub(super) async fn of(conn: &mut $conn, repository: &str, digest: &str) -> MetaResult<Option<ScanRecord>> {
            let row: Option<ScanRow> = sqlx::query_as(
                "SELECT s.manifest_id, s.status, s.attempts, s.queued_at, s.finished_at,
                        s.duration_ms, s.reason, s.os_id, s.os_version, s.os_name, s.problems,
                        s.sbom_digest
                 FROM scans s JOIN manifests m ON m.id = s.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repository)
            .bind(digest)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(r) = row else {
                return Ok(None);
            };
            let packages: Vec<PackageRow> = sqlx::query_as(
                "SELECT type, name, version, source_name, source_version, arch, path, purl
                 FROM scan_packages WHERE manifest_id = $1 ORDER BY seq",
            )
            .bind(r.0)
            .fetch_all(&mut *conn)
            .await?;
            let status = ScanStatus::parse(&r.1).ok_or_else(|| corrupt(format!("status {:?}", r.1)))?;
            Ok(Some(ScanRecord {
                status,
                attempts: u32::try_from(r.2).map_err(|_| corrupt(format!("attempts {}", r.2)))?,
                queued_at: r.3,
                finished_at: r.4,
                duration_ms: r.5.map(count),
                reason: r.6,
                os: r.7.map(|id| StoredOs { id, version: r.8, name: r.9 }),
                problems: r.10,
                sbom_digest: r.11,
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

        pub(super) async fn counts(conn: &mut $conn) -> MetaResult<ScanCounts> {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM scans GROUP BY status")
                    .fetch_all(conn)
                    .await?;
            let mut c = ScanCounts::default();
            for (status, n) in rows {
                match ScanStatus::parse(&status) {
                    Some(ScanStatus::Queued) => c.queued = count(n),
                    Some(ScanStatus::Running) => c.running = count(n),
                    Some(ScanStatus::Done) => c.done = count(n),
                    Some(ScanStatus::Failed) => c.failed = count(n),
                    None => return Err(corrupt(format!("status {status:?}"))),
                }
            }
            Ok(c)
        }
    };
}

/// Implements [`ScanStore`](super::scans::ScanStore) for `$store` over `$conn`; `$claim` as
/// in [`scan_queries`].
macro_rules! impl_scan_store {
    ($store:ty, $conn:ty, $claim:literal) => {
        mod scq {
            $crate::meta::scan_sql::scan_queries!($conn, $claim);
        }

        #[async_trait::async_trait]
        impl $crate::meta::scans::ScanStore for $store {
            async fn scan_claim(
                &self,
                now: i64,
                lease_ms: u64,
                max_attempts: u32,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::scans::ScanJob>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [],
                    |c| scq::claim(c, now, lease_ms, max_attempts))
            }
            async fn scan_renew(
                &self,
                job: &$crate::meta::scans::ScanJob,
                until: i64,
            ) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [job], |c| scq::renew(c, &job, until))
            }
            async fn scan_done(
                &self,
                job: &$crate::meta::scans::ScanJob,
                outcome: &$crate::meta::scans::ScanOutcome,
            ) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [job, outcome],
                    |c| scq::done(c, &job, &outcome))
            }
            async fn scan_failed(
                &self,
                job: &$crate::meta::scans::ScanJob,
                reason: &str,
                give_up: bool,
            ) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [job, reason],
                    |c| scq::failed(c, &job, &reason, give_up))
            }
            async fn scan_release(
                &self,
                job: &$crate::meta::scans::ScanJob,
            ) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [job], |c| scq::release(c, &job))
            }
            async fn scan_requeue(
                &self,
                repository: &str,
                digest: &str,
                now: i64,
            ) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [repository, digest],
                    |c| scq::requeue(c, &repository, &digest, now))
            }
            async fn scan_of(
                &self,
                repository: &str,
                digest: &str,
            ) -> $crate::meta::MetaResult<Option<$crate::meta::scans::ScanRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repository, digest],
                    |c| scq::of(c, &repository, &digest))
            }
            async fn scan_counts(&self) -> $crate::meta::MetaResult<$crate::meta::scans::ScanCounts> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| scq::counts(c))
            }
        }
    };
}

pub(crate) use impl_scan_store;
pub(crate) use scan_queries;
