//! [`MetaStore`] on embedded SQLite.
//!
//! SQLite allows one writer at a time, so every write goes to the single write connection
//! owned by the group-commit [`Writer`] (writes queue in-process instead of failing with
//! `SQLITE_BUSY`, and concurrent writes share one fsync), while reads go through a separate
//! read-only pool that WAL mode lets run alongside the writer. `synchronous = FULL` makes a
//! committed batch durable before any of its callers hears back.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};

use super::cache::ManifestCache;
use super::writer::Writer;
use super::{
    LeaseToken, ManifestRecord, MetaError, MetaResult, MetaStore, NewManifest, PageQuery,
    PutManifestError, ReferrerRecord, UploadRecord, now_ms,
};
use crate::domain::{Digest, MediaType, Reference, RepoName, Tag, UploadId};

/// Metadata in a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    read: SqlitePool,
    manifests: Arc<ManifestCache>,
}

/// A write job for the [`Writer`], as a boxed future borrowing the write connection.
type WriteFuture<'c, T, E = MetaError> = BoxFuture<'c, Result<T, E>>;

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
        let mut conn = base.clone().create_if_missing(true).connect().await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&mut conn)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self {
            writer: Writer::start(conn),
            read,
            manifests: Arc::new(ManifestCache::new()),
        })
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
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .run(move |conn: &mut SqliteConnection| -> WriteFuture<'_, ()> {
                Box::pin(async move {
                    let repo_id = ensure_repository(conn, &repo).await?;
                    link(conn, repo_id, &digest, size).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> MetaResult<Option<u64>> {
        let (repo, digest, from) = (repo.clone(), digest.clone(), from.cloned());
        self.writer
            .run(move |conn: &mut SqliteConnection| -> WriteFuture<'_, Option<u64>> {
                Box::pin(async move {
                    let size: Option<i64> = match &from {
                        Some(from) => {
                            sqlx::query_scalar(
                                "SELECT b.size FROM repository_blobs rb
                                 JOIN repositories r ON r.id = rb.repository_id
                                 JOIN blobs b ON b.digest = rb.digest
                                 WHERE r.name = $1 AND rb.digest = $2",
                            )
                            .bind(from.as_str())
                            .bind(digest.to_string())
                            .fetch_optional(&mut *conn)
                            .await?
                        }
                        None => {
                            sqlx::query_scalar(
                                "SELECT b.size FROM blobs b WHERE b.digest = $1
                                 AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
                            )
                            .bind(digest.to_string())
                            .fetch_optional(&mut *conn)
                            .await?
                        }
                    };
                    let Some(size) = size else {
                        return Ok(None);
                    };
                    let size = uint(size, "blobs")?;
                    let repo_id = ensure_repository(conn, &repo).await?;
                    link(conn, repo_id, &digest, size).await?;
                    Ok(Some(size))
                })
            })
            .await
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let (repo, digest) = (repo.clone(), digest.to_string());
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "DELETE FROM repository_blobs
                         WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
                           AND digest = $2",
                        )
                        .bind(repo.as_str())
                        .bind(digest)
                        .execute(conn)
                        .await?;
                        Ok(done.rows_affected() > 0)
                    })
                },
            )
            .await
    }

    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()> {
        let upload = upload.clone();
        self.writer
            .run(move |conn: &mut SqliteConnection| -> WriteFuture<'_, ()> {
                Box::pin(async move {
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
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .await
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
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, Option<LeaseToken>> {
                    Box::pin(async move {
                        let now = now_ms();
                        let token = LeaseToken::new_random();
                        let done = sqlx::query(
                            "UPDATE uploads SET lease_owner = $3, lease_until = $4
                         WHERE id = $1 AND received_bytes = $2
                           AND (lease_owner IS NULL OR lease_until < $5)",
                        )
                        .bind(id.to_string())
                        .bind(int(received))
                        .bind(token.0)
                        .bind(now.saturating_add(int(lease_ms)))
                        .bind(now)
                        .execute(conn)
                        .await?;
                        Ok((done.rows_affected() == 1).then_some(token))
                    })
                },
            )
            .await
    }

    async fn renew_upload_lease(
        &self,
        id: UploadId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> MetaResult<bool> {
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query(
                        "UPDATE uploads SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
                    )
                    .bind(id.to_string())
                    .bind(token.0)
                    .bind(now_ms().saturating_add(int(lease_ms)))
                    .execute(conn)
                    .await?;
                        Ok(done.rows_affected() == 1)
                    })
                },
            )
            .await
    }

    async fn release_upload(&self, id: UploadId, token: LeaseToken) -> MetaResult<()> {
        self.writer
            .run(move |conn: &mut SqliteConnection| -> WriteFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE uploads SET lease_owner = NULL, lease_until = 0
                         WHERE id = $1 AND lease_owner = $2",
                    )
                    .bind(id.to_string())
                    .bind(token.0)
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn advance_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        from: u64,
        to: u64,
        hash_state: &[u8],
        release: bool,
    ) -> MetaResult<bool> {
        let hash_state = hash_state.to_vec();
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query(
                        "UPDATE uploads SET received_bytes = $4, hash_state = $5, updated_at = $6,
                             lease_owner = CASE WHEN $7 = 1 THEN NULL ELSE lease_owner END,
                             lease_until = CASE WHEN $7 = 1 THEN 0 ELSE lease_until END
                         WHERE id = $1 AND lease_owner = $2 AND received_bytes = $3",
                    )
                    .bind(id.to_string())
                    .bind(token.0)
                    .bind(int(from))
                    .bind(int(to))
                    .bind(hash_state)
                    .bind(now_ms())
                    .bind(i64::from(release))
                    .execute(conn)
                    .await?;
                        Ok(done.rows_affected() == 1)
                    })
                },
            )
            .await
    }

    async fn delete_upload(&self, id: UploadId) -> MetaResult<bool> {
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                            .bind(id.to_string())
                            .execute(conn)
                            .await?;
                        Ok(done.rows_affected() > 0)
                    })
                },
            )
            .await
    }

    async fn complete_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> MetaResult<bool> {
        let (repo, digest) = (repo.clone(), digest.clone());
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done =
                            sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_owner = $2")
                                .bind(id.to_string())
                                .bind(token.0)
                                .execute(&mut *conn)
                                .await?;
                        if done.rows_affected() != 1 {
                            return Ok(false);
                        }
                        let repo_id = ensure_repository(conn, &repo).await?;
                        link(conn, repo_id, &digest, size).await?;
                        Ok(true)
                    })
                },
            )
            .await
    }

    async fn put_manifest(&self, m: NewManifest) -> Result<(), PutManifestError> {
        self.writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, (), PutManifestError> {
                    Box::pin(async move { insert_manifest(conn, &m).await })
                },
            )
            .await
    }

    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        _content: bool,
    ) -> MetaResult<Option<ManifestRecord>> {
        // Always read the bytes: manifests are small, and a cached row then serves GET and
        // HEAD alike.
        let key = reference.to_string();
        if let Some(hit) = self.manifests.get(repo.as_str(), &key) {
            return Ok(Some(hit));
        }
        let generation = self.manifests.generation();
        let row: Option<(String, String, i64, Vec<u8>)> = match reference {
            Reference::Tag(tag) => {
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
            Reference::Digest(d) => {
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
        };
        let Some((d, media_type, size, content)) = row else {
            return Ok(None);
        };
        let record = ManifestRecord {
            digest: digest(&d, "manifests")?,
            media_type,
            size: uint(size, "manifests")?,
            content: content.into(),
        };
        self.manifests
            .insert(generation, repo.as_str(), &key, &record);
        Ok(Some(record))
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let (repo, digest) = (repo.clone(), digest.to_string());
        let result = self
            .writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "DELETE FROM manifests
                         WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
                           AND digest = $2",
                        )
                        .bind(repo.as_str())
                        .bind(digest)
                        .execute(conn)
                        .await?;
                        Ok(done.rows_affected() > 0)
                    })
                },
            )
            .await;
        self.manifests.invalidate();
        result
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<bool> {
        let (repo, tag) = (repo.clone(), tag.clone());
        let result = self
            .writer
            .run(
                move |conn: &mut SqliteConnection| -> WriteFuture<'_, bool> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "DELETE FROM tags
                         WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
                           AND name = $2",
                        )
                        .bind(repo.as_str())
                        .bind(tag.as_str())
                        .execute(conn)
                        .await?;
                        Ok(done.rows_affected() > 0)
                    })
                },
            )
            .await;
        self.manifests.invalidate();
        result
    }

    async fn tags(&self, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>> {
        // One query: a repository without matching tags yields a single row with a NULL tag,
        // an unknown repository yields no row at all.
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT t.name FROM repositories r
             LEFT JOIN tags t ON t.repository_id = r.id AND t.name > $2
             WHERE r.name = $1 ORDER BY t.name LIMIT $3",
        )
        .bind(repo.as_str())
        .bind(page.last.unwrap_or(""))
        .bind(i64::from(page.limit.max(1)))
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut tags: Vec<String> = rows.into_iter().flatten().collect();
        tags.truncate(page.limit as usize);
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

/// Stores a manifest after checking its references, inside the writer's savepoint.
async fn insert_manifest(
    conn: &mut SqliteConnection,
    m: &NewManifest,
) -> Result<(), PutManifestError> {
    let repo_id = ensure_repository(conn, &m.repository).await?;

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
        .fetch_optional(&mut *conn)
        .await?;
        check_reference(&mut missing, &blob.digest, blob.size, size)?;
    }
    for child in &m.parsed.children {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2",
        )
        .bind(repo_id)
        .bind(child.digest.to_string())
        .fetch_optional(&mut *conn)
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
    .bind(m.content.as_ref())
    .bind(m.parsed.artifact_type.as_ref().map(MediaType::as_str))
    .bind(m.parsed.subject.as_ref().map(Digest::to_string))
    .bind(annotations)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await?;
    for blob in &m.parsed.blobs {
        sqlx::query(
            "INSERT INTO manifest_blobs (manifest_id, digest) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
        )
        .bind(manifest_id)
        .bind(blob.digest.to_string())
        .execute(&mut *conn)
        .await?;
    }
    for child in &m.parsed.children {
        sqlx::query(
            "INSERT INTO manifest_children (parent_id, child_digest) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
        )
        .bind(manifest_id)
        .bind(child.digest.to_string())
        .execute(&mut *conn)
        .await?;
    }
    for tag in &m.tags {
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
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
