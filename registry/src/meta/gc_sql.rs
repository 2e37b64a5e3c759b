//! The SQL of [`GcStore`](super::gc::GcStore), for SQLite and PostgreSQL.

/// Whether manifest `m` is kept by nothing, with the policy flags (1 keeps, 0 does not) in
/// the placeholders numbered `$untagged` and `$referrers`, and in `$history` the time from
/// which a tag history entry keeps the manifest a tag left: a SQL text literal.
macro_rules! unkept_manifest {
    ($untagged:literal, $referrers:literal, $history:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
             AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests p ON p.id = c.parent_id
                             WHERE p.repository_id = m.repository_id AND c.child_digest = m.digest)
             AND NOT (m.subject_digest IS NULL AND $", $untagged, " = 1)
             AND NOT (m.subject_digest IS NOT NULL AND ($", $referrers, " = 1 OR EXISTS (
                 SELECT 1 FROM manifests s
                 WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest)))
             AND NOT EXISTS (SELECT 1 FROM tag_history h
                             WHERE h.repository_id = m.repository_id AND h.old_digest = m.digest
                               AND h.changed_at >= $", $history, ")"
        )
    };
}

/// The policy as the predicate's parameters: (keep untagged, keep orphan referrers, history
/// kept since).
pub(super) fn keep_flags(policy: super::gc::GcPolicy) -> (i64, i64, i64) {
    (
        i64::from(!policy.collect_untagged),
        i64::from(!policy.collect_orphan_referrers),
        policy.history_since_ms,
    )
}

/// Defines the garbage-collection query functions over `&mut $conn`.
macro_rules! gc_queries {
    ($conn:ty, $claim:literal) => {
        use $crate::meta::gc::{BlobCandidate, BlobDeletion, GcPolicy, ManifestCandidate};
        use $crate::meta::gc_sql::keep_flags;
        use $crate::meta::sql::{digest, uint};
        use $crate::meta::{MetaResult, now_ms};
        use $crate::domain::Digest;

        pub(super) async fn blob_candidates(conn: &mut $conn, cutoff: i64, after: &str, limit: u32) -> MetaResult<Vec<BlobCandidate>> {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT g.digest, b.size FROM gc_blob_reviews g JOIN blobs b ON b.digest = g.digest
                 WHERE g.last_event_at < $1 AND g.digest > $2
                   AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = g.digest)
                 ORDER BY g.digest LIMIT $3",
            )
            .bind(cutoff)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(d, size)| Ok(BlobCandidate { digest: digest(&d, "blobs")?, size: uint(size, "blobs")? }))
                .collect()
        }

        pub(super) async fn manifest_candidates(conn: &mut $conn, cutoff: i64, policy: GcPolicy, after: i64, limit: u32) -> MetaResult<Vec<ManifestCandidate>> {
            let (untagged, referrers, history) = keep_flags(policy);
            let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(concat!(
                "SELECT m.id, r.name, m.digest, m.size FROM gc_manifest_reviews g
                 JOIN manifests m ON m.id = g.manifest_id
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE g.last_event_at < $1 AND g.manifest_id > $2 AND ",
                $crate::meta::gc_sql::unkept_manifest!("4", "5", "6"),
                " ORDER BY g.manifest_id LIMIT $3"
            ))
            .bind(cutoff)
            .bind(after)
            .bind(i64::from(limit))
            .bind(untagged)
            .bind(referrers)
            .bind(history)
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(id, repository, d, size)| {
                    Ok(ManifestCandidate { id, repository, digest: digest(&d, "manifests")?, size: uint(size, "manifests")? })
                })
                .collect()
        }

        pub(super) async fn collect_blob(conn: &mut $conn, d: &Digest, cutoff: i64) -> MetaResult<Option<BlobDeletion>> {
            let key = d.to_string();
            let due: Option<i64> = sqlx::query_scalar(concat!(
                "SELECT g.last_event_at FROM gc_blob_reviews g WHERE g.digest = $1 AND g.last_event_at < $2",
                $claim
            ))
            .bind(&key)
            .bind(cutoff)
            .fetch_optional(&mut *conn)
            .await?;
            if due.is_none() {
                // Not due (a new link, unlink or deletion touched it since), or reviewed.
                return Ok(None);
            }
            let referenced: Option<i64> =
                sqlx::query_scalar("SELECT manifest_id FROM manifest_blobs WHERE digest = $1 LIMIT 1")
                    .bind(&key)
                    .fetch_optional(&mut *conn)
                    .await?;
            let blob: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT size, storage_key FROM blobs WHERE digest = $1")
                    .bind(&key)
                    .fetch_optional(&mut *conn)
                    .await?;
            sqlx::query("DELETE FROM gc_blob_reviews WHERE digest = $1")
                .bind(&key)
                .execute(&mut *conn)
                .await?;
            let (Some((size, location)), None) = (blob, referenced) else {
                return Ok(None);
            };
            sqlx::query("DELETE FROM repository_blobs WHERE digest = $1")
                .bind(&key)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM blobs WHERE digest = $1")
                .bind(&key)
                .execute(&mut *conn)
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO gc_blob_deletions (digest, storage_key, size, deleted_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&key)
            .bind(location.as_deref())
            .bind(size)
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await?;
            Ok(Some(BlobDeletion { id, digest: d.clone(), location, size: uint(size, "blobs")? }))
        }

        pub(super) async fn collect_manifest(conn: &mut $conn, id: i64, cutoff: i64, policy: GcPolicy) -> MetaResult<bool> {
            let (untagged, referrers, history) = keep_flags(policy);
            let unkept: Option<i64> = sqlx::query_scalar(concat!(
                "SELECT m.id FROM gc_manifest_reviews g JOIN manifests m ON m.id = g.manifest_id
                 WHERE g.manifest_id = $1 AND g.last_event_at < $2 AND ",
                $crate::meta::gc_sql::unkept_manifest!("3", "4", "5"),
                $claim
            ))
            .bind(id)
            .bind(cutoff)
            .bind(untagged)
            .bind(referrers)
            .bind(history)
            .fetch_optional(&mut *conn)
            .await?;
            if unkept.is_none() {
                return Ok(false);
            }
            let removed = super::q::drop_manifest(conn, id).await?;
            super::manifests_written(conn).await?;
            Ok(removed)
        }

        pub(super) async fn drop_kept_reviews(conn: &mut $conn, cutoff: i64, policy: GcPolicy) -> MetaResult<()> {
            sqlx::query(
                "DELETE FROM gc_blob_reviews WHERE last_event_at < $1
                 AND (EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = gc_blob_reviews.digest)
                      OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = gc_blob_reviews.digest))",
            )
            .bind(cutoff)
            .execute(&mut *conn)
            .await?;
            let (untagged, referrers, history) = keep_flags(policy);
            sqlx::query(concat!(
                "DELETE FROM gc_manifest_reviews WHERE last_event_at < $1
                 AND EXISTS (SELECT 1 FROM manifests m
                             WHERE m.id = gc_manifest_reviews.manifest_id AND NOT (",
                $crate::meta::gc_sql::unkept_manifest!("2", "3", "4"),
                "))"
            ))
            .bind(cutoff)
            .bind(untagged)
            .bind(referrers)
            .bind(history)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(super) async fn prune_tag_history(conn: &mut $conn, before: i64) -> MetaResult<u64> {
            // The manifests the expired entries kept are queued for review, from now, so not
            // in the pass that pruned (it removes what its dry run listed); a review already
            // queued is left as it is, due or not, for the same reason.
            sqlx::query(
                "INSERT INTO gc_manifest_reviews (manifest_id, last_event_at)
                 SELECT DISTINCT m.id, CAST($2 AS BIGINT) FROM tag_history h
                 JOIN manifests m ON m.repository_id = h.repository_id AND m.digest = h.old_digest
                 WHERE h.changed_at < $1
                 ON CONFLICT (manifest_id) DO NOTHING",
            )
            .bind(before)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query("DELETE FROM tag_history WHERE changed_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn requeue_all(conn: &mut $conn) -> MetaResult<()> {
            // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
            sqlx::query(
                "INSERT INTO gc_manifest_reviews (manifest_id, last_event_at)
                 SELECT id, created_at FROM manifests WHERE true ON CONFLICT (manifest_id) DO NOTHING",
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO gc_blob_reviews (digest, last_event_at)
                 SELECT digest, created_at FROM blobs WHERE true ON CONFLICT (digest) DO NOTHING",
            )
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(super) async fn pending_deletions(conn: &mut $conn, limit: u32) -> MetaResult<Vec<BlobDeletion>> {
            let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
                "SELECT id, digest, storage_key, size FROM gc_blob_deletions ORDER BY id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(id, d, location, size)| {
                    Ok(BlobDeletion { id, digest: digest(&d, "gc_blob_deletions")?, location, size: uint(size, "gc_blob_deletions")? })
                })
                .collect()
        }

        pub(super) async fn forget_deletion(conn: &mut $conn, id: i64) -> MetaResult<()> {
            sqlx::query("DELETE FROM gc_blob_deletions WHERE id = $1")
                .bind(id)
                .execute(conn)
                .await?;
            Ok(())
        }
    };
}

/// Implements [`GcStore`](super::gc::GcStore) for a store with the `account_read` and
/// `account_write` runners, a `manifests_changed` hook (the SQLite store's manifest cache) and
/// a `manifests_written` function of its module (the SQLite database's manifest generation).
/// `$claim` ends the statement that reads a review in a removal's transaction: how a
/// collector claims it (PostgreSQL: `FOR UPDATE ... SKIP LOCKED`, so concurrent passes share
/// the work rather than conflict on it).
macro_rules! impl_gc_store {
    ($store:ty, $conn:ty, $claim:literal) => {
        mod gq {
            $crate::meta::gc_sql::gc_queries!($conn, $claim);
        }

        #[async_trait::async_trait]
        impl $crate::meta::gc::GcStore for $store {
            async fn gc_blob_candidates(&self, cutoff_ms: i64, after: &str, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::gc::BlobCandidate>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [after], |c| gq::blob_candidates(c, cutoff_ms, &after, limit))
            }
            async fn gc_manifest_candidates(&self, cutoff_ms: i64, policy: $crate::meta::gc::GcPolicy, after: i64, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::gc::ManifestCandidate>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| gq::manifest_candidates(c, cutoff_ms, policy, after, limit))
            }
            async fn gc_collect_blob(&self, digest: &$crate::domain::Digest, cutoff_ms: i64) -> $crate::meta::MetaResult<Option<$crate::meta::gc::BlobDeletion>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [digest], |c| gq::collect_blob(c, &digest, cutoff_ms))
            }
            async fn gc_collect_manifest(&self, id: i64, cutoff_ms: i64, policy: $crate::meta::gc::GcPolicy) -> $crate::meta::MetaResult<bool> {
                let removed = $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| gq::collect_manifest(c, id, cutoff_ms, policy));
                self.manifests_changed();
                removed
            }
            async fn gc_drop_kept_reviews(&self, cutoff_ms: i64, policy: $crate::meta::gc::GcPolicy) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| gq::drop_kept_reviews(c, cutoff_ms, policy))
            }
            async fn gc_prune_tag_history(&self, before_ms: i64) -> $crate::meta::MetaResult<u64> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| gq::prune_tag_history(c, before_ms))
            }
            async fn gc_requeue_all(&self) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| gq::requeue_all(c))
            }
            async fn gc_pending_deletions(&self, limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::gc::BlobDeletion>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| gq::pending_deletions(c, limit))
            }
            async fn gc_forget_deletion(&self, id: i64) -> $crate::meta::MetaResult<()> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [], |c| gq::forget_deletion(c, id))
            }
        }
    };
}

pub(crate) use gc_queries;
pub(crate) use impl_gc_store;
pub(crate) use unkept_manifest;
