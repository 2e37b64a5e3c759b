//! The SQL of the metadata store, written once for SQLite and PostgreSQL.
//!
//! Both databases accept the same statements here (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, `CAST`), and the schemas in `migrations/` keep the column types compatible
//! (integers are 64-bit, byte strings are `BLOB`/`BYTEA`, text that is listed in order is
//! byte-ordered). [`queries!`] stamps out one module of functions per connection type, so the
//! stores differ only in how they run transactions.

use std::str::FromStr;

use super::{MetaError, MetaResult, PutManifestError, UploadRecord};
use crate::domain::{Digest, RepoName, UploadId};

/// Parameters one multi-row `INSERT` binds at most. SQLite finds each parameter's name by a
/// linear search, so binding `n` costs `n^2`: 1,600 parameters a statement made binding most
/// of the work of storing an inventory (measured with perf); a few hundred cost nothing.
const PARAMS_PER_INSERT: usize = 256;

/// Rows of `columns` values one multi-row `INSERT` writes.
pub(crate) fn rows_per_insert(columns: usize) -> usize {
    (PARAMS_PER_INSERT / columns.max(1)).max(1)
}

/// `head` followed by `rows` tuples of `columns` numbered placeholders (`($1, $2), ($3, $4)`),
/// then `tail`: one statement for many rows, where an inventory's hundreds of packages or a
/// match's targets written one statement each took most of the time. Only placeholders are
/// formatted in; every value is bound.
pub(crate) fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// A size or offset as stored (sizes are far below 2^63; saturate rather than wrap).
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored size or offset, which must not be negative.
pub(super) fn uint(v: i64, table: &'static str) -> MetaResult<u64> {
    u64::try_from(v).map_err(|_| MetaError::Corrupt {
        table,
        reason: format!("negative size {v}"),
    })
}

/// A stored digest, which must parse.
pub(super) fn digest(s: &str, table: &'static str) -> MetaResult<Digest> {
    Digest::from_str(s).map_err(|e| MetaError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

/// An upload row: id, repository, received bytes, hash state, staging, pending bytes.
pub(super) type UploadRow = (String, String, i64, Vec<u8>, Option<String>, Vec<u8>);

pub(super) fn upload_record(row: UploadRow) -> MetaResult<UploadRecord> {
    let corrupt = |reason: String| MetaError::Corrupt {
        table: "uploads",
        reason,
    };
    Ok(UploadRecord {
        id: UploadId::parse(&row.0).map_err(|e| corrupt(e.to_string()))?,
        repository: RepoName::parse(&row.1).map_err(|e| corrupt(e.to_string()))?,
        received: uint(row.2, "uploads")?,
        hash_state: row.3,
        staging: row.4,
        pending: row.5,
    })
}

/// A row of `manifests`: digest, media type, size, content.
pub(super) type ManifestRow = (String, String, i64, Vec<u8>);

/// A stored manifest row, checked.
pub(super) fn manifest_record(row: ManifestRow) -> MetaResult<super::ManifestRecord> {
    let (d, media_type, size, content) = row;
    Ok(super::ManifestRecord {
        digest: digest(&d, "manifests")?,
        media_type,
        size: uint(size, "manifests")?,
        content: content.into(),
    })
}

/// Records `digest` as missing, or fails on a size mismatch.
pub(super) fn check_reference(
    missing: &mut Vec<Digest>,
    digest: &Digest,
    declared: u64,
    stored: Option<i64>,
) -> Result<(), PutManifestError> {
    match stored {
        None => missing.push(digest.clone()),
        Some(actual) => {
            let actual = uint(actual, "blobs")?;
            if actual != declared {
                return Err(PutManifestError::SizeMismatch {
                    digest: digest.clone(),
                    declared,
                    actual,
                });
            }
        }
    }
    Ok(())
}

/// Defines the query functions over `&mut $conn`. Each function is one statement or a short
/// sequence that must run inside the caller's transaction.
macro_rules! queries {
    ($conn:ty) => {
        use $crate::domain::{Digest, MediaType, RepoName, Tag, UploadId};
        use $crate::meta::sql::{UploadRow, check_reference, digest, int, uint, upload_record};
        use $crate::meta::{
            BlobInfo, LeaseToken, ManifestRecord, MetaError, MetaResult, NewManifest, PageQuery,
            PutManifestError, ReferrerRecord, UploadProgress, UploadRecord, now_ms,
        };
        use $crate::meta::events::Event;

        /// Records `event` in the audit log and queues its webhook deliveries (see
        /// migrations/*/0009_audit_log.sql and 0010_webhooks.sql), inside the transaction of
        /// the change it describes. Returns the ids of the deliveries queued.
        pub(in $crate::meta) async fn record_event(conn: &mut $conn, event: &Event) -> sqlx::Result<Vec<i64>> {
            let id = uuid::Uuid::new_v4().to_string();
            let at = now_ms();
            sqlx::query(
                "INSERT INTO audit_log (event_id, at, action, actor, address, repository, tag, digest,
                                        media_type, size, target, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&id)
            .bind(at)
            .bind(event.action.as_str())
            .bind(&event.origin.actor)
            .bind(event.origin.address.as_deref())
            .bind(event.repository.as_deref())
            .bind(event.tag.as_deref())
            .bind(event.digest.as_deref())
            .bind(event.media_type.as_deref())
            .bind(event.size.map(int))
            .bind(event.target.as_deref())
            .bind(event.detail.as_ref().map(ToString::to_string))
            .execute(&mut *conn)
            .await?;
            let mut hooks = event.deliver_to.clone();
            // The hooks the repository's organization set for this event, in this transaction.
            if let (Some(kind), Some(repo)) = (event.hook, event.repository.as_deref()) {
                let namespace = repo.split('/').next().unwrap_or(repo);
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT h.id FROM org_webhooks h JOIN accounts a ON a.id = h.account_id
                     WHERE a.name = $1 AND h.events LIKE $2
                       AND (h.scope = $3 OR substr($3, 1, length(h.scope) + 1) = h.scope || '/')
                     ORDER BY h.id",
                )
                .bind(namespace)
                .bind(format!("%,{},%", $crate::meta::org_webhooks::event_name(kind)))
                .bind(repo)
                .fetch_all(&mut *conn)
                .await?;
                hooks.extend(ids.into_iter().map(|id| format!("{}{id}", $crate::meta::org_webhooks::HOOK_PREFIX)));
            }
            let mut deliveries = Vec::with_capacity(hooks.len());
            if hooks.is_empty() {
                return Ok(deliveries);
            }
            let payload = event.cloud_event(&id, at);
            for hook in &hooks {
                deliveries.push(sqlx::query_scalar(
                    "INSERT INTO webhook_deliveries (hook, event_id, event_type, payload, created_at, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                )
                .bind(hook)
                .bind(&id)
                .bind(event.action.cloud_event_type())
                .bind(&payload)
                .bind(at)
                .fetch_one(&mut *conn)
                .await?);
            }
            Ok(deliveries)
        }

        /// The id of `name`, creating the repository row if needed.
        pub(in $crate::meta) async fn ensure_repository(conn: &mut $conn, name: &RepoName) -> sqlx::Result<i64> {
            // Read first: writing the row when it exists (even a no-op update) would make every
            // concurrent push to the repository conflict with every other one under
            // PostgreSQL's serializable isolation.
            let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(id) = existing {
                return Ok(id);
            }
            let id = sqlx::query_scalar(
                "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(name.as_str())
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await?;
            // The first repository of a namespace no account owns makes it a namespace that
            // belongs to nobody, so an account created later under that name cannot claim it
            // (see migrations/sqlite/0011_namespaces.sql). Read first, as above.
            let namespace = name.namespace();
            let known: Option<i64> = sqlx::query_scalar("SELECT created_at FROM namespaces WHERE name = $1")
                .bind(namespace)
                .fetch_optional(&mut *conn)
                .await?;
            if known.is_none() {
                sqlx::query(
                    "INSERT INTO namespaces (name, owner_id, created_at) VALUES ($1, NULL, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(namespace)
                .bind(now_ms())
                .execute(conn)
                .await?;
            }
            Ok(id)
        }

        /// Queues a blob for a garbage-collection review: its newest event is now (see
        /// migrations/*/0005_gc.sql). Written in the transaction of the event itself.
        pub(in $crate::meta) async fn review_blob(conn: &mut $conn, digest: &str) -> sqlx::Result<()> {
            sqlx::query(
                "INSERT INTO gc_blob_reviews (digest, last_event_at) VALUES ($1, $2)
                 ON CONFLICT (digest) DO UPDATE SET last_event_at = excluded.last_event_at",
            )
            .bind(digest)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Queues a manifest for a garbage-collection review.
        pub(in $crate::meta) async fn review_manifest(conn: &mut $conn, manifest_id: i64) -> sqlx::Result<()> {
            sqlx::query(
                "INSERT INTO gc_manifest_reviews (manifest_id, last_event_at) VALUES ($1, $2)
                 ON CONFLICT (manifest_id) DO UPDATE SET last_event_at = excluded.last_event_at",
            )
            .bind(manifest_id)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Deletes manifest `id` (its tags, blob and child references go with it) and queues
        /// for review what may have lost its last reference: its blobs, its children, and the
        /// manifests that refer to it as their subject.
        pub(in $crate::meta) async fn drop_manifest(conn: &mut $conn, id: i64) -> sqlx::Result<bool> {
            let blobs: Vec<String> =
                sqlx::query_scalar("SELECT digest FROM manifest_blobs WHERE manifest_id = $1")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?;
            let related: Vec<i64> = sqlx::query_scalar(
                "SELECT c.id FROM manifests m
                 JOIN manifests c ON c.repository_id = m.repository_id
                 WHERE m.id = $1 AND c.id <> m.id
                   AND (c.subject_digest = m.digest
                        OR c.digest IN (SELECT child_digest FROM manifest_children WHERE parent_id = m.id))",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            // Its tags go with it: recorded, though a restore will find the manifest gone.
            let tagged: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT t.repository_id, t.name, m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id
                 WHERE t.manifest_id = $1",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            for (repo_id, tag, digest) in &tagged {
                record_tag_change(conn, *repo_id, tag, Some(digest), None).await?;
            }
            let done = sqlx::query("DELETE FROM manifests WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            for digest in &blobs {
                review_blob(conn, digest).await?;
            }
            for other in related {
                review_manifest(conn, other).await?;
            }
            Ok(true)
        }

        /// Records a change of tag `tag` in repository `repo_id` in its history (see
        /// migrations/*/0006_tag_history.sql).
        pub(in $crate::meta) async fn record_tag_change(
            conn: &mut $conn,
            repo_id: i64,
            tag: &str,
            old: Option<&str>,
            new: Option<&str>,
        ) -> sqlx::Result<()> {
            sqlx::query(
                "INSERT INTO tag_history (repository_id, tag, old_digest, new_digest, changed_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(repo_id)
            .bind(tag)
            .bind(old)
            .bind(new)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Points `tag` at manifest `manifest_id` (whose digest is `digest`); a move is recorded
        /// in the tag's history and the manifest it left is queued for review. Returns the
        /// digest the tag pointed at before, if it moved.
        pub(in $crate::meta) async fn set_tag(
            conn: &mut $conn,
            repo_id: i64,
            tag: &str,
            manifest_id: i64,
            digest: &str,
        ) -> sqlx::Result<Option<String>> {
            let previous: Option<(i64, String)> = sqlx::query_as(
                "SELECT t.manifest_id, m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id
                 WHERE t.repository_id = $1 AND t.name = $2",
            )
            .bind(repo_id)
            .bind(tag)
            .fetch_optional(&mut *conn)
            .await?;
            let moved = match &previous {
                Some((id, _)) if *id == manifest_id => false,
                Some((id, old)) => {
                    review_manifest(conn, *id).await?;
                    record_tag_change(conn, repo_id, tag, Some(old), Some(digest)).await?;
                    true
                }
                None => {
                    record_tag_change(conn, repo_id, tag, None, Some(digest)).await?;
                    false
                }
            };
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository_id, name)
                 DO UPDATE SET manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
            )
            .bind(repo_id)
            .bind(tag)
            .bind(manifest_id)
            .bind(now_ms())
            .execute(conn)
            .await?;
            Ok(previous.filter(|_| moved).map(|(_, old)| old))
        }

        /// A new copy of a quarantined blob (see migrations/*/0007_scrub.sql) repairs it: the
        /// row takes the copy's key, the damaged copy is deleted through a tombstone and the
        /// findings are closed. Returns whether it did (false: the blob was sound).
        async fn repair_quarantined(conn: &mut $conn, key: &str, location: &str, now: i64) -> sqlx::Result<bool> {
            let damaged: Option<(Option<String>, i64)> = sqlx::query_as(
                "SELECT storage_key, size FROM blobs WHERE digest = $1 AND quarantined_at IS NOT NULL",
            )
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((old_key, old_size)) = damaged else {
                return Ok(false);
            };
            sqlx::query("UPDATE blobs SET storage_key = $2, quarantined_at = NULL WHERE digest = $1")
                .bind(key)
                .bind(location)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO gc_blob_deletions (digest, storage_key, size, deleted_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(key)
            .bind(old_key)
            .bind(old_size)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE scrub_findings SET repaired_at = $2 WHERE digest = $1 AND repaired_at IS NULL")
                .bind(key)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Ok(true)
        }

        /// Records a stored blob (unless it already is) and links it into repository
        /// `repo_id`; returns whether the blob row is new.
        pub(in $crate::meta) async fn link(
            conn: &mut $conn,
            repo_id: i64,
            digest: &Digest,
            size: u64,
            location: Option<&str>,
        ) -> sqlx::Result<bool> {
            let now = now_ms();
            let key = digest.to_string();
            let mut inserted = sqlx::query(
                "INSERT INTO blobs (digest, size, storage_key, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&key)
            .bind(int(size))
            .bind(location)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            if !inserted && let Some(location) = location {
                inserted = repair_quarantined(conn, &key, location, now).await?;
            }
            sqlx::query(
                "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (repository_id, digest) DO NOTHING",
            )
            .bind(repo_id)
            .bind(&key)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            // A link alone does not keep a blob: if no manifest refers to it by the time the
            // review comes, it goes.
            review_blob(conn, &key).await?;
            Ok(inserted)
        }

        pub(in $crate::meta) async fn repository_exists(conn: &mut $conn, repo: &RepoName) -> MetaResult<bool> {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(repo.as_str())
                .fetch_optional(conn)
                .await?;
            Ok(found.is_some())
        }

        pub(in $crate::meta) async fn blob_in_repository(conn: &mut $conn, repo: &RepoName, digest: &Digest) -> MetaResult<Option<BlobInfo>> {
            let row: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT b.size, b.storage_key FROM repository_blobs rb
                 JOIN repositories r ON r.id = rb.repository_id
                 JOIN blobs b ON b.digest = rb.digest
                 WHERE r.name = $1 AND rb.digest = $2 AND b.quarantined_at IS NULL",
            )
            .bind(repo.as_str())
            .bind(digest.to_string())
            .fetch_optional(conn)
            .await?;
            row.map(|(size, location)| Ok(BlobInfo { size: uint(size, "blobs")?, location }))
                .transpose()
        }

        pub(in $crate::meta) async fn blob_stored(conn: &mut $conn, digest: &Digest) -> MetaResult<Option<BlobInfo>> {
            let row: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT size, storage_key FROM blobs WHERE digest = $1 AND quarantined_at IS NULL")
                    .bind(digest.to_string())
                    .fetch_optional(conn)
                    .await?;
            row.map(|(size, location)| Ok(BlobInfo { size: uint(size, "blobs")?, location }))
                .transpose()
        }

        pub(in $crate::meta) async fn blob_anywhere(conn: &mut $conn, digest: &Digest) -> MetaResult<Option<u64>> {
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT b.size FROM blobs b WHERE b.digest = $1 AND b.quarantined_at IS NULL
                 AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
            )
            .bind(digest.to_string())
            .fetch_optional(conn)
            .await?;
            size.map(|s| uint(s, "blobs")).transpose()
        }

        pub(in $crate::meta) async fn link_blob(
            conn: &mut $conn,
            repo: &RepoName,
            digest: &Digest,
            size: u64,
            location: Option<&str>,
        ) -> MetaResult<bool> {
            let repo_id = ensure_repository(conn, repo).await?;
            Ok(link(conn, repo_id, digest, size, location).await?)
        }

        pub(in $crate::meta) async fn mount_blob(
            conn: &mut $conn,
            repo: &RepoName,
            digest: &Digest,
            from: Option<&RepoName>,
        ) -> MetaResult<Option<u64>> {
            let size = match from {
                Some(from) => blob_in_repository(conn, from, digest).await?.map(|b| b.size),
                None => blob_anywhere(conn, digest).await?,
            };
            let Some(size) = size else {
                return Ok(None);
            };
            // The blob row exists, so its recorded location is kept.
            link_blob(conn, repo, digest, size, None).await?;
            Ok(Some(size))
        }

        pub(in $crate::meta) async fn unlink_blob(conn: &mut $conn, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
            let done = sqlx::query(
                "DELETE FROM repository_blobs
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2",
            )
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            review_blob(conn, &digest.to_string()).await?;
            Ok(true)
        }

        pub(in $crate::meta) async fn create_upload(conn: &mut $conn, upload: &UploadRecord) -> MetaResult<()> {
            let now = now_ms();
            sqlx::query(
                "INSERT INTO uploads
                 (id, repository, received_bytes, hash_state, staging, pending, lease_owner, lease_until,
                  created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, $7, $7)",
            )
            .bind(upload.id.to_string())
            .bind(upload.repository.as_str())
            .bind(int(upload.received))
            .bind(&upload.hash_state)
            .bind(upload.staging.as_deref())
            .bind(&upload.pending)
            .bind(now)
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(in $crate::meta) async fn upload(conn: &mut $conn, id: UploadId) -> MetaResult<Option<UploadRecord>> {
            let row: Option<UploadRow> = sqlx::query_as(
                "SELECT id, repository, received_bytes, hash_state, staging, pending FROM uploads WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_optional(conn)
            .await?;
            row.map(upload_record).transpose()
        }

        pub(in $crate::meta) async fn lease_upload(
            conn: &mut $conn,
            id: UploadId,
            received: u64,
            lease_ms: u64,
        ) -> MetaResult<Option<LeaseToken>> {
            let now = now_ms();
            let token = LeaseToken::new_random();
            let done = sqlx::query(
                "UPDATE uploads SET lease_owner = $3, lease_until = $4
                 WHERE id = $1 AND received_bytes = $2 AND (lease_owner IS NULL OR lease_until < $5)",
            )
            .bind(id.to_string())
            .bind(int(received))
            .bind(token.0)
            .bind(now.saturating_add(int(lease_ms)))
            .bind(now)
            .execute(conn)
            .await?;
            Ok((done.rows_affected() == 1).then_some(token))
        }

        pub(in $crate::meta) async fn renew_upload_lease(
            conn: &mut $conn,
            id: UploadId,
            token: LeaseToken,
            lease_ms: u64,
        ) -> MetaResult<bool> {
            let done = sqlx::query("UPDATE uploads SET lease_until = $3 WHERE id = $1 AND lease_owner = $2")
                .bind(id.to_string())
                .bind(token.0)
                .bind(now_ms().saturating_add(int(lease_ms)))
                .execute(conn)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn release_upload(conn: &mut $conn, id: UploadId, token: LeaseToken) -> MetaResult<()> {
            sqlx::query(
                "UPDATE uploads SET lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id.to_string())
            .bind(token.0)
            .execute(conn)
            .await?;
            Ok(())
        }

        pub(in $crate::meta) async fn advance_upload(
            conn: &mut $conn,
            id: UploadId,
            token: LeaseToken,
            from: u64,
            progress: &UploadProgress,
            release: bool,
        ) -> MetaResult<bool> {
            let done = sqlx::query(
                "UPDATE uploads SET received_bytes = $4, hash_state = $5, staging = $6, pending = $7,
                     updated_at = $8,
                     lease_owner = CASE WHEN $9 = 1 THEN NULL ELSE lease_owner END,
                     lease_until = CASE WHEN $9 = 1 THEN 0 ELSE lease_until END
                 WHERE id = $1 AND lease_owner = $2 AND received_bytes = $3",
            )
            .bind(id.to_string())
            .bind(token.0)
            .bind(int(from))
            .bind(int(progress.received))
            .bind(&progress.hash_state)
            .bind(progress.staging.as_deref())
            .bind(&progress.pending)
            .bind(now_ms())
            .bind(i64::from(release))
            .execute(conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(in $crate::meta) async fn delete_upload(conn: &mut $conn, id: UploadId) -> MetaResult<bool> {
            let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id.to_string())
                .execute(conn)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        pub(in $crate::meta) async fn complete_upload(
            conn: &mut $conn,
            id: UploadId,
            token: LeaseToken,
            repo: &RepoName,
            digest: &Digest,
            size: u64,
            location: Option<&str>,
        ) -> MetaResult<Option<bool>> {
            let done = sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_owner = $2")
                .bind(id.to_string())
                .bind(token.0)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            Ok(Some(link_blob(conn, repo, digest, size, location).await?))
        }

        pub(in $crate::meta) async fn take_expired_uploads(
            conn: &mut $conn,
            idle_since_ms: i64,
            limit: u32,
        ) -> MetaResult<Vec<UploadRecord>> {
            let rows: Vec<UploadRow> = sqlx::query_as(
                "DELETE FROM uploads WHERE id IN (
                     SELECT id FROM uploads
                     WHERE updated_at < $1 AND (lease_owner IS NULL OR lease_until < $2)
                     ORDER BY updated_at LIMIT $3)
                 RETURNING id, repository, received_bytes, hash_state, staging, pending",
            )
            .bind(idle_since_ms)
            .bind(now_ms())
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter().map(upload_record).collect()
        }

        /// Stores a manifest after checking its references, within the caller's transaction,
        /// so a concurrent delete cannot slip between the check and the insert.
        pub(in $crate::meta) async fn put_manifest(conn: &mut $conn, m: &NewManifest) -> Result<(), PutManifestError> {
            let repo_id = ensure_repository(conn, &m.repository).await?;
            let mut missing = Vec::new();
            for blob in &m.parsed.blobs {
                let size: Option<i64> = sqlx::query_scalar(
                    "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                     WHERE rb.repository_id = $1 AND rb.digest = $2 AND b.quarantined_at IS NULL",
                )
                .bind(repo_id)
                .bind(blob.digest.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                check_reference(&mut missing, &blob.digest, blob.size, size)?;
            }
            for child in &m.parsed.children {
                let size: Option<i64> =
                    sqlx::query_scalar("SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2")
                        .bind(repo_id)
                        .bind(child.digest.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                check_reference(&mut missing, &child.digest, child.size, size)?;
            }
            if !missing.is_empty() && !m.references_on_demand {
                return Err(PutManifestError::Missing(missing));
            }
            let annotations = (!m.parsed.annotations.is_empty())
                .then(|| serde_json::to_string(&m.parsed.annotations))
                .transpose()
                .map_err(|e| MetaError::Corrupt {
                    table: "manifests",
                    reason: e.to_string(),
                })?;
            // An existing manifest (the usual case when tagging) is only read, for the same
            // reason as in `ensure_repository`.
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(m.digest.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
            let manifest_id: i64 = if let Some(id) = existing { id } else { let id: i64 = sqlx::query_scalar(
                "INSERT INTO manifests (repository_id, digest, media_type, size, content,
                                        artifact_type, subject_digest, annotations, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (repository_id, digest) DO UPDATE SET digest = excluded.digest
                 RETURNING id",
            )
            .bind(repo_id)
            .bind(m.digest.to_string())
            .bind(m.parsed.media_type.as_str())
            .bind(int(m.content.len() as u64))
            .bind(m.content.as_ref())
            .bind(m.parsed.artifact_type.as_ref().map(MediaType::as_str))
            .bind(m.parsed.subject.as_ref().map(Digest::to_string))
            .bind(annotations)
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await?;
            if m.tags.is_empty() {
                // Pushed by digest (an index's child, a referrer): reviewed once the delay
                // has given its parent, subject or tag time to arrive.
                review_manifest(conn, id).await?;
            }
            id };
            if m.scan {
                // A re-push finds the job there (and leaves it), so each manifest has one.
                sqlx::query(
                    "INSERT INTO scans (manifest_id, status, queued_at) VALUES ($1, 'queued', $2)
                     ON CONFLICT (manifest_id) DO NOTHING",
                )
                .bind(manifest_id)
                .bind(now_ms())
                .execute(&mut *conn)
                .await?;
            }
            for blob in &m.parsed.blobs {
                sqlx::query("INSERT INTO manifest_blobs (manifest_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(manifest_id)
                    .bind(blob.digest.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            for child in &m.parsed.children {
                sqlx::query(
                    "INSERT INTO manifest_children (parent_id, child_digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(manifest_id)
                .bind(child.digest.to_string())
                .execute(&mut *conn)
                .await?;
            }
            for tag in &m.tags {
                if m.immutable.contains(tag) {
                    let current: Option<i64> = sqlx::query_scalar(
                        "SELECT manifest_id FROM tags WHERE repository_id = $1 AND name = $2",
                    )
                    .bind(repo_id)
                    .bind(tag.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                    if current.is_some_and(|c| c != manifest_id) {
                        return Err(PutManifestError::TagImmutable(tag.clone()));
                    }
                }
                set_tag(conn, repo_id, tag.as_str(), manifest_id, &m.digest.to_string()).await?;
            }
            record_event(conn, &m.event).await?;
            Ok(())
        }

        use $crate::meta::sql::{ManifestRow, manifest_record};

        pub(in $crate::meta) async fn manifest_by_tag(conn: &mut $conn, repo: &RepoName, tag: &Tag) -> MetaResult<Option<ManifestRecord>> {
            let row: Option<ManifestRow> = sqlx::query_as(
                "SELECT m.digest, m.media_type, m.size, m.content FROM tags t
                 JOIN repositories r ON r.id = t.repository_id
                 JOIN manifests m ON m.id = t.manifest_id
                 WHERE r.name = $1 AND t.name = $2",
            )
            .bind(repo.as_str())
            .bind(tag.as_str())
            .fetch_optional(conn)
            .await?;
            row.map(manifest_record).transpose()
        }

        pub(in $crate::meta) async fn manifest_by_digest(conn: &mut $conn, repo: &RepoName, d: &Digest) -> MetaResult<Option<ManifestRecord>> {
            let row: Option<ManifestRow> = sqlx::query_as(
                "SELECT m.digest, m.media_type, m.size, m.content FROM manifests m
                 JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repo.as_str())
            .bind(d.to_string())
            .fetch_optional(conn)
            .await?;
            row.map(manifest_record).transpose()
        }

        /// Deletes a manifest and records `event` (with the manifest's media type and size)
        /// if it existed.
        pub(in $crate::meta) async fn delete_manifest(conn: &mut $conn, repo: &RepoName, digest: &Digest, event: &Event) -> MetaResult<bool> {
            let found: Option<(i64, String, i64)> = sqlx::query_as(
                "SELECT m.id, m.media_type, m.size FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repo.as_str())
            .bind(digest.to_string())
            .fetch_optional(&mut *conn)
            .await?;
            let Some((id, media_type, size)) = found else {
                return Ok(false);
            };
            if !drop_manifest(conn, id).await? {
                return Ok(false);
            }
            let mut event = event.clone();
            event.media_type = Some(media_type);
            event.size = Some(uint(size, "manifests")?);
            record_event(conn, &event).await?;
            Ok(true)
        }

        /// Deletes a tag, recording it in the history and `event` (with the digest it pointed
        /// at) in the audit log; with `updated_at`, only if the tag was last pushed then (it
        /// did not move since the caller looked).
        pub(in $crate::meta) async fn delete_tag(conn: &mut $conn, repo: &RepoName, tag: &Tag, updated_at: Option<i64>, event: &Event) -> MetaResult<bool> {
            let deleted: Option<(i64, i64)> = sqlx::query_as(
                "DELETE FROM tags
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2
                   AND ($3 IS NULL OR updated_at = $3)
                 RETURNING repository_id, manifest_id",
            )
            .bind(repo.as_str())
            .bind(tag.as_str())
            .bind(updated_at)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((repo_id, id)) = deleted else {
                return Ok(false);
            };
            let old: String = sqlx::query_scalar("SELECT digest FROM manifests WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
            record_tag_change(conn, repo_id, tag.as_str(), Some(&old), None).await?;
            review_manifest(conn, id).await?;
            let mut event = event.clone();
            event.digest = Some(old);
            record_event(conn, &event).await?;
            Ok(true)
        }

        pub(in $crate::meta) async fn tags(conn: &mut $conn, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>> {
            // One query: a repository without matching tags yields a single row with a NULL
            // tag, an unknown repository yields no row at all.
            let rows: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT t.name FROM repositories r
                 LEFT JOIN tags t ON t.repository_id = r.id AND t.name > $2
                 WHERE r.name = $1 ORDER BY t.name LIMIT $3",
            )
            .bind(repo.as_str())
            .bind(page.last.unwrap_or(""))
            .bind(i64::from(page.limit.max(1)))
            .fetch_all(conn)
            .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut tags: Vec<String> = rows.into_iter().flatten().collect();
            tags.truncate(page.limit as usize);
            Ok(Some(tags))
        }

        pub(in $crate::meta) async fn repositories(conn: &mut $conn, page: PageQuery<'_>) -> MetaResult<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(page.last.unwrap_or(""))
                .bind(i64::from(page.limit))
                .fetch_all(conn)
                .await?)
        }

        pub(in $crate::meta) async fn referrers(
            conn: &mut $conn,
            repo: &RepoName,
            subject: &Digest,
            artifact_type: Option<&MediaType>,
            page: PageQuery<'_>,
        ) -> MetaResult<Vec<ReferrerRecord>> {
            type Row = (String, String, i64, Option<String>, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
                 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 WHERE r.name = $1 AND m.subject_digest = $2
                   AND ($3 IS NULL OR m.artifact_type = $3) AND m.digest > $4
                 ORDER BY m.digest LIMIT $5",
            )
            .bind(repo.as_str())
            .bind(subject.to_string())
            .bind(artifact_type.map(MediaType::as_str))
            .bind(page.last.unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(d, media_type, size, artifact_type, annotations)| {
                    Ok(ReferrerRecord {
                        digest: digest(&d, "manifests")?,
                        media_type,
                        size: uint(size, "manifests")?,
                        artifact_type,
                        annotations,
                    })
                })
                .collect()
        }
    };
}

pub(super) use queries;

#[cfg(test)]
mod tests {
    use super::values_sql;

    #[test]
    fn values_are_numbered_row_by_row() {
        assert_eq!(
            values_sql(
                "INSERT INTO t (a, b) VALUES ",
                2,
                3,
                " ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT DO NOTHING"
        );
        assert_eq!(values_sql("X ", 1, 1, ""), "X ($1)");
        assert_eq!(super::rows_per_insert(16), 16);
        assert_eq!(super::rows_per_insert(1000), 1);
    }
}
