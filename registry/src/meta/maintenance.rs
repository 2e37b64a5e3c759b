//! What the maintenance page and API read about the background passes: the record of
//! garbage-collection passes (see migrations/*/0027_gc_passes.sql), how far the current scrub
//! round has got, and the scrub's open findings with when each was found. The SQL for SQLite
//! and PostgreSQL.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;
use super::scrub::Finding;

/// Passes kept in `gc_passes`; older rows are deleted as new ones come.
pub const GC_PASSES_KEPT: i64 = 100;

/// What ran a garbage-collection pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GcRunner {
    /// `berth serve`, on its schedule.
    Serve,
    /// `berth gc`, from the command line.
    Cli,
}

impl GcRunner {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            GcRunner::Serve => "serve",
            GcRunner::Cli => "cli",
        }
    }
}

/// One garbage-collection pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GcPass {
    /// Its row (0 until stored).
    pub id: i64,
    /// When it started, Unix ms.
    pub started_at: i64,
    /// When it finished (or failed), Unix ms.
    pub finished_at: i64,
    /// What ran it.
    pub run_by: GcRunner,
    /// Manifests it removed.
    pub manifests_removed: u64,
    /// Blobs it removed.
    pub blobs_removed: u64,
    /// Bytes of blob storage it freed.
    pub bytes_freed: u64,
    /// Why it failed, if it did (what it removed before failing is not counted).
    pub error: Option<String>,
}

/// How far the current scrub round has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScrubProgress {
    /// When the round started, Unix ms (`None`: no round in progress).
    pub round_started_at: Option<i64>,
    /// Blobs checked in this round.
    pub blobs_checked: u64,
    /// Blobs stored.
    pub blobs_total: u64,
    /// Manifests checked in this round.
    pub manifests_checked: u64,
    /// Manifests stored.
    pub manifests_total: u64,
    /// When the round's position was last saved, Unix ms (0: never).
    pub updated_at: i64,
}

/// A scrub finding not repaired yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenFinding {
    /// Its row.
    pub id: i64,
    /// When a scrub found it, Unix ms.
    pub found_at: i64,
    /// What was found.
    #[serde(flatten)]
    pub finding: Finding,
}

/// The queries.
#[async_trait]
pub trait MaintenanceStore {
    /// Records a pass, keeping only the newest [`GC_PASSES_KEPT`].
    async fn record_gc_pass(&self, pass: &GcPass) -> MetaResult<()>;

    /// The newest `limit` passes, newest first.
    async fn gc_passes(&self, limit: u32) -> MetaResult<Vec<GcPass>>;

    /// Where the scrub round stands, counted.
    async fn scrub_progress(&self) -> MetaResult<ScrubProgress>;

    /// Findings not repaired yet, oldest first, at most `limit`.
    async fn open_scrub_findings(&self, limit: u32) -> MetaResult<Vec<OpenFinding>>;
}

/// Implements [`MaintenanceStore`] for a store with the `account_read` and `account_write`
/// runners (see `impl_account_store`).
macro_rules! impl_maintenance_store {
    ($store:ty, $conn:ty) => {
        mod mtq {
            use $crate::meta::maintenance::{GC_PASSES_KEPT, GcPass, GcRunner, OpenFinding, ScrubProgress};
            use $crate::meta::scrub::{BLOBS_DONE, Finding, Problem};
            use $crate::meta::{MetaError, MetaResult};

            fn count(v: i64) -> u64 {
                u64::try_from(v).unwrap_or(0)
            }

            fn signed(v: u64) -> i64 {
                i64::try_from(v).unwrap_or(i64::MAX)
            }

            pub(super) async fn record(c: &mut $conn, p: &GcPass) -> MetaResult<()> {
                sqlx::query(
                    "INSERT INTO gc_passes (started_at, finished_at, run_by, manifests_removed,
                         blobs_removed, bytes_freed, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(p.started_at)
                .bind(p.finished_at)
                .bind(p.run_by.as_str())
                .bind(signed(p.manifests_removed))
                .bind(signed(p.blobs_removed))
                .bind(signed(p.bytes_freed))
                .bind(p.error.as_deref())
                .execute(&mut *c)
                .await?;
                sqlx::query(
                    "DELETE FROM gc_passes WHERE id <= (SELECT id FROM gc_passes ORDER BY id DESC
                         LIMIT 1 OFFSET $1)",
                )
                .bind(GC_PASSES_KEPT)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            pub(super) async fn passes(c: &mut $conn, limit: u32) -> MetaResult<Vec<GcPass>> {
                type Row = (i64, i64, i64, String, i64, i64, i64, Option<String>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, started_at, finished_at, run_by, manifests_removed, blobs_removed,
                            bytes_freed, error
                     FROM gc_passes ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
                rows.into_iter()
                    .map(|(id, started_at, finished_at, run_by, manifests, blobs, bytes, error)| {
                        let run_by = match run_by.as_str() {
                            "serve" => GcRunner::Serve,
                            "cli" => GcRunner::Cli,
                            other => {
                                return Err(MetaError::Corrupt {
                                    table: "gc_passes",
                                    reason: format!("unknown runner {other:?}"),
                                });
                            }
                        };
                        Ok(GcPass {
                            id,
                            started_at,
                            finished_at,
                            run_by,
                            manifests_removed: count(manifests),
                            blobs_removed: count(blobs),
                            bytes_freed: count(bytes),
                            error,
                        })
                    })
                    .collect()
            }

            pub(super) async fn progress(c: &mut $conn) -> MetaResult<ScrubProgress> {
                let (blob, manifest, started, updated): (String, i64, i64, i64) = sqlx::query_as(
                    "SELECT blob_cursor, manifest_cursor, round_started_at, updated_at
                     FROM scrub_progress WHERE id = 1",
                )
                .fetch_one(&mut *c)
                .await?;
                let blobs_total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs").fetch_one(&mut *c).await?;
                // The scrub walks blobs in the database's digest order: count the same way.
                let blobs_checked: i64 = if blob == BLOBS_DONE {
                    blobs_total
                } else {
                    sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE digest <= $1")
                        .bind(&blob)
                        .fetch_one(&mut *c)
                        .await?
                };
                let manifests_total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM manifests").fetch_one(&mut *c).await?;
                let manifests_checked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests WHERE id <= $1")
                    .bind(manifest)
                    .fetch_one(&mut *c)
                    .await?;
                Ok(ScrubProgress {
                    round_started_at: (started != 0).then_some(started),
                    blobs_checked: count(blobs_checked),
                    blobs_total: count(blobs_total),
                    manifests_checked: count(manifests_checked),
                    manifests_total: count(manifests_total),
                    updated_at: updated,
                })
            }

            pub(super) async fn open_findings(c: &mut $conn, limit: u32) -> MetaResult<Vec<OpenFinding>> {
                type Row = (i64, i64, String, String, Option<String>, Option<String>, String);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, found_at, problem, digest, repository, storage_key, detail
                     FROM scrub_findings WHERE repaired_at IS NULL ORDER BY id LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
                rows.into_iter()
                    .map(|(id, found_at, problem, digest, repository, storage_key, detail)| {
                        let problem = [Problem::Missing, Problem::Corrupt, Problem::ManifestCorrupt, Problem::DanglingReference]
                            .into_iter()
                            .find(|p| p.as_str() == problem)
                            .ok_or_else(|| MetaError::Corrupt {
                                table: "scrub_findings",
                                reason: format!("unknown problem {problem:?}"),
                            })?;
                        Ok(OpenFinding {
                            id,
                            found_at,
                            finding: Finding { problem, digest, repository, storage_key, detail },
                        })
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::maintenance::MaintenanceStore for $store {
            async fn record_gc_pass(&self, pass: &$crate::meta::maintenance::GcPass) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [pass], |c| mtq::record(c, &pass))
            }
            async fn gc_passes(&self, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::maintenance::GcPass>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| mtq::passes(c, limit))
            }
            async fn scrub_progress(&self) -> $crate::meta::MetaResult<$crate::meta::maintenance::ScrubProgress> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| mtq::progress(c))
            }
            async fn open_scrub_findings(&self, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::maintenance::OpenFinding>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| mtq::open_findings(c, limit))
            }
        }
    };
}

pub(crate) use impl_maintenance_store;

#[cfg(test)]
mod tests {
    use super::*;

    /// Passes are listed newest first and only the newest [`GC_PASSES_KEPT`] stay.
    #[tokio::test]
    async fn gc_passes_are_recorded_and_bounded() {
        let (_dir, store) = crate::meta::acme_store().await;
        for i in 0..(GC_PASSES_KEPT + 5) {
            store
                .record_gc_pass(&GcPass {
                    id: 0,
                    started_at: i,
                    finished_at: i + 1,
                    run_by: if i % 2 == 0 {
                        GcRunner::Serve
                    } else {
                        GcRunner::Cli
                    },
                    manifests_removed: 1,
                    blobs_removed: 2,
                    bytes_freed: u64::try_from(i).unwrap(),
                    error: (i == GC_PASSES_KEPT + 4).then(|| "storage failed".to_owned()),
                })
                .await
                .expect("record");
        }
        let passes = store.gc_passes(1000).await.expect("list");
        assert_eq!(passes.len(), usize::try_from(GC_PASSES_KEPT).unwrap());
        assert_eq!(passes[0].started_at, GC_PASSES_KEPT + 4);
        assert_eq!(passes[0].error.as_deref(), Some("storage failed"));
        assert_eq!(passes[0].run_by, GcRunner::Serve);
        assert_eq!(passes.last().map(|p| p.started_at), Some(5));
        assert_eq!(store.gc_passes(3).await.expect("three").len(), 3);
    }

    /// An empty registry has checked nothing and has no round in progress.
    #[tokio::test]
    async fn scrub_progress_starts_empty() {
        let (_dir, store) = crate::meta::acme_store().await;
        assert_eq!(
            store.scrub_progress().await.expect("progress"),
            ScrubProgress::default()
        );
        assert!(
            store
                .open_scrub_findings(10)
                .await
                .expect("open")
                .is_empty()
        );
    }
}
