//! [`MetaStore`] on embedded SQLite.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection
//! (transactions queue in-process instead of failing with `SQLITE_BUSY`), and reads go through
//! a separate read-only pool that WAL mode lets run alongside the writer. `synchronous = FULL`
//! makes a committed transaction durable before the call returns.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use super::{
    LeaseToken, ManifestRecord, MetaError, MetaResult, MetaStore, NewManifest, PageQuery,
    PutManifestError, ReferrerRecord, UploadRecord, now_ms,
};
use crate::domain::{Digest, MediaType, Reference, RepoName, Tag, UploadId};

/// Metadata in a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, applies migrations, and
    /// returns a store with `readers` read connections.
    pub async fn open(path: &Path, readers: u32) -> MetaResult<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { write, read })
    }

    /// Begins a write transaction that takes the write lock at once, so its reads and writes
    /// see one consistent state.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }
}

fn int(v: u64) -> i64 {
    // Sizes and offsets are far below 2^63; saturate rather than wrap if one ever is not.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64, table: &'static str) -> MetaResult<u64> {
    u64::try_from(v).map_err(|_| MetaError::Corrupt {
        table,
        reason: format!("negative size {v}"),
    })
}

fn digest(s: &str, table: &'static str) -> MetaResult<Digest> {
    Digest::from_str(s).map_err(|e| MetaError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

/// Returns the id of `name`, creating the repository row if needed.
async fn ensure_repository(conn: &mut SqliteConnection, name: &RepoName) -> sqlx::Result<i64> {
    // DO UPDATE (not DO NOTHING) so RETURNING yields the id of an existing row too.
    sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
    )
    .bind(name.as_str())
    .bind(now_ms())
    .fetch_one(conn)
    .await
}

async fn link(
    conn: &mut SqliteConnection,
    repo_id: i64,
    digest: &Digest,
    size: u64,
) -> sqlx::Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest.to_string())
    .bind(int(size))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (repository_id, digest) DO NOTHING",
    )
    .bind(repo_id)
    .bind(digest.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn upload_record(row: (String, String, i64, Vec<u8>)) -> MetaResult<UploadRecord> {
    let corrupt = |reason: String| MetaError::Corrupt {
        table: "uploads",
        reason,
    };
    Ok(UploadRecord {
        id: UploadId::parse(&row.0).map_err(|e| corrupt(e.to_string()))?,
        repository: RepoName::parse(&row.1).map_err(|e| corrupt(e.to_string()))?,
        received: uint(row.2, "uploads")?,
        hash_state: row.3,
    })
}

#[async_trait]
impl MetaStore for SqliteStore {
    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(repo.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(found.is_some())
    }

    async fn blob_in_repository(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
             JOIN repositories r ON r.id = rb.repository_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        size.map(|s| uint(s, "blobs")).transpose()
    }

    async fn blob_anywhere(&self, digest: &Digest) -> MetaResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blobs b WHERE b.digest = $1
             AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
        )
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        size.map(|s| uint(s, "blobs")).transpose()
    }

    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> MetaResult<()> {
        let mut tx = self.begin().await?;
        let repo_id = ensure_repository(&mut tx, repo).await?;
        link(&mut tx, repo_id, digest, size).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> MetaResult<Option<u64>> {
        let mut tx = self.begin().await?;
        let size: Option<i64> = match from {
            Some(from) => {
                sqlx::query_scalar(
                    "SELECT b.size FROM repository_blobs rb
                     JOIN repositories r ON r.id = rb.repository_id
                     JOIN blobs b ON b.digest = rb.digest
                     WHERE r.name = $1 AND rb.digest = $2",
                )
                .bind(from.as_str())
                .bind(digest.to_string())
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT b.size FROM blobs b WHERE b.digest = $1
                     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
                )
                .bind(digest.to_string())
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(size) = size else {
            return Ok(None);
        };
        let size = uint(size, "blobs")?;
        let repo_id = ensure_repository(&mut tx, repo).await?;
        link(&mut tx, repo_id, digest, size).await?;
        tx.commit().await?;
        Ok(Some(size))
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM repository_blobs
             WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO uploads
             (id, repository, received_bytes, hash_state, lease_owner, lease_until,
              created_at, updated_at)
             VALUES ($1, $2, $3, $4, NULL, 0, $5, $5)",
        )
        .bind(upload.id.to_string())
        .bind(upload.repository.as_str())
        .bind(int(upload.received))
        .bind(&upload.hash_state)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn upload(&self, id: UploadId) -> MetaResult<Option<UploadRecord>> {
        let row: Option<(String, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, repository, received_bytes, hash_state FROM uploads WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.map(upload_record).transpose()
    }

    async fn lease_upload(
        &self,
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
        .execute(&self.write)
        .await?;
        Ok((done.rows_affected() == 1).then_some(token))
    }

    async fn renew_upload_lease(
        &self,
        id: UploadId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> MetaResult<bool> {
        let done =
            sqlx::query("UPDATE uploads SET lease_until = $3 WHERE id = $1 AND lease_owner = $2")
                .bind(id.to_string())
                .bind(token.0)
                .bind(now_ms().saturating_add(int(lease_ms)))
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_upload(&self, id: UploadId, token: LeaseToken) -> MetaResult<()> {
        sqlx::query(
            "UPDATE uploads SET lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id.to_string())
        .bind(token.0)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn advance_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        from: u64,
        to: u64,
        hash_state: &[u8],
    ) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET received_bytes = $4, hash_state = $5, updated_at = $6
             WHERE id = $1 AND lease_owner = $2 AND received_bytes = $3",
        )
        .bind(id.to_string())
        .bind(token.0)
        .bind(int(from))
        .bind(int(to))
        .bind(hash_state)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_upload(&self, id: UploadId) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn complete_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_owner = $2")
            .bind(id.to_string())
            .bind(token.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let repo_id = ensure_repository(&mut tx, repo).await?;
        link(&mut tx, repo_id, digest, size).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_manifest(&self, m: NewManifest<'_>) -> Result<(), PutManifestError> {
        let mut tx = self.begin().await?;
        let repo_id = ensure_repository(&mut tx, m.repository).await?;

        // Check references inside the transaction, so a concurrent delete cannot slip between
        // the check and the insert.
        let mut missing = Vec::new();
        for blob in &m.parsed.blobs {
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repository_id = $1 AND rb.digest = $2",
            )
            .bind(repo_id)
            .bind(blob.digest.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            check_reference(&mut missing, &blob.digest, blob.size, size)?;
        }
        for child in &m.parsed.children {
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2",
            )
            .bind(repo_id)
            .bind(child.digest.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            check_reference(&mut missing, &child.digest, child.size, size)?;
        }
        if !missing.is_empty() {
            return Err(PutManifestError::Missing(missing));
        }

        let annotations = (!m.parsed.annotations.is_empty())
            .then(|| serde_json::to_string(&m.parsed.annotations))
            .transpose()
            .map_err(|e| MetaError::Corrupt {
                table: "manifests",
                reason: e.to_string(),
            })?;
        let manifest_id: i64 = sqlx::query_scalar(
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
        .bind(m.content)
        .bind(m.parsed.artifact_type.as_ref().map(MediaType::as_str))
        .bind(m.parsed.subject.as_ref().map(Digest::to_string))
        .bind(annotations)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        for blob in &m.parsed.blobs {
            sqlx::query(
                "INSERT INTO manifest_blobs (manifest_id, digest) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(manifest_id)
            .bind(blob.digest.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for child in &m.parsed.children {
            sqlx::query(
                "INSERT INTO manifest_children (parent_id, child_digest) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(manifest_id)
            .bind(child.digest.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for tag in m.tags {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_id, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository_id, name)
                 DO UPDATE SET manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
            )
            .bind(repo_id)
            .bind(tag.as_str())
            .bind(manifest_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
    ) -> MetaResult<Option<ManifestRecord>> {
        // `content` chooses between two fixed statements; HEAD requests skip the bytes.
        let row: Option<(String, String, i64, Vec<u8>)> = match (reference, content) {
            (Reference::Tag(tag), true) => {
                sqlx::query_as(
                    "SELECT m.digest, m.media_type, m.size, m.content FROM tags t
                     JOIN repositories r ON r.id = t.repository_id
                     JOIN manifests m ON m.id = t.manifest_id
                     WHERE r.name = $1 AND t.name = $2",
                )
                .bind(repo.as_str())
                .bind(tag.as_str())
                .fetch_optional(&self.read)
                .await?
            }
            (Reference::Tag(tag), false) => {
                sqlx::query_as(
                    "SELECT m.digest, m.media_type, m.size, X'' FROM tags t
                     JOIN repositories r ON r.id = t.repository_id
                     JOIN manifests m ON m.id = t.manifest_id
                     WHERE r.name = $1 AND t.name = $2",
                )
                .bind(repo.as_str())
                .bind(tag.as_str())
                .fetch_optional(&self.read)
                .await?
            }
            (Reference::Digest(d), true) => {
                sqlx::query_as(
                    "SELECT m.digest, m.media_type, m.size, m.content FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id
                     WHERE r.name = $1 AND m.digest = $2",
                )
                .bind(repo.as_str())
                .bind(d.to_string())
                .fetch_optional(&self.read)
                .await?
            }
            (Reference::Digest(d), false) => {
                sqlx::query_as(
                    "SELECT m.digest, m.media_type, m.size, X'' FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id
                     WHERE r.name = $1 AND m.digest = $2",
                )
                .bind(repo.as_str())
                .bind(d.to_string())
                .fetch_optional(&self.read)
                .await?
            }
        };
        row.map(|(d, media_type, size, content)| {
            Ok(ManifestRecord {
                digest: digest(&d, "manifests")?,
                media_type,
                size: uint(size, "manifests")?,
                content,
            })
        })
        .transpose()
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM manifests
             WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<bool> {
        let done = sqlx::query(
            "DELETE FROM tags
             WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tags(&self, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>> {
        let mut conn = self.read.acquire().await?;
        let repo_id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(repo.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(page.last.unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(tags))
    }

    async fn repositories(&self, page: PageQuery<'_>) -> MetaResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
        )
        .bind(page.last.unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_all(&self.read)
        .await?)
    }

    async fn referrers(
        &self,
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
        .fetch_all(&self.read)
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
}

/// Records `digest` as missing, or fails on a size mismatch.
fn check_reference(
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
