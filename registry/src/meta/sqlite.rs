//! [`MetaStore`] on embedded SQLite.
//!
//! SQLite allows one writer at a time, so every write goes to the single write connection
//! owned by the group-commit [`Writer`] (writes queue in-process instead of failing with
//! `SQLITE_BUSY`, and concurrent writes share one fsync), while reads go through a separate
//! read-only pool that WAL mode lets run alongside the writer. `synchronous = FULL` makes a
//! committed batch durable before any of its callers hears back. A SQLite database serves one
//! process, so manifests can be cached in memory and invalidated on every write.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};

use super::cache::ManifestCache;
use super::events::Event;
use super::writer::Writer;
use super::{
    BlobInfo, LeaseToken, ManifestRecord, MetaResult, MetaStore, NewManifest, PageQuery,
    PutManifestError, ReferrerRecord, UploadProgress, UploadRecord,
};
use crate::domain::{Digest, MediaType, Reference, RepoName, Tag, UploadId};

mod q {
    super::super::sql::queries!(sqlx::SqliteConnection);
}

/// Metadata in a SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    read: SqlitePool,
    manifests: Arc<ManifestCache>,
}

/// Runs `$body` (an async block over `$conn: &mut SqliteConnection`) as one group-committed
/// write; the captured values must be owned.
macro_rules! write {
    ($self:ident, |$conn:ident| $body:expr) => {
        $self
            .writer
            .run(move |$conn: &mut SqliteConnection| -> BoxFuture<'_, _> {
                Box::pin(async move { $body })
            })
            .await
    };
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, applies migrations when
    /// `migrate` is set, and
    /// returns a store with `readers` read connections.
    pub async fn open(path: &Path, readers: u32, migrate: bool) -> MetaResult<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = base.clone().create_if_missing(true).connect().await?;
        if migrate {
            sqlx::migrate!("../migrations/sqlite")
                .run(&mut conn)
                .await?;
        }
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

impl SqliteStore {
    /// Runs `f` on a read connection (for the account queries).
    async fn account_read<T, F>(&self, f: F) -> MetaResult<T>
    where
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, MetaResult<T>>,
    {
        let mut conn = self.read.acquire().await?;
        f(&mut conn).await
    }

    /// Runs `f` as one group-committed write (for the account queries).
    async fn account_write<T, F>(&self, f: F) -> MetaResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, MetaResult<T>> + Send + 'static,
    {
        self.writer.run(f).await
    }
}

/// Bumps the database's manifest generation, inside a transaction that changed manifests or
/// tags (see migrations/sqlite/0005_gc.sql).
async fn manifests_written(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    sqlx::query("UPDATE manifest_generation SET value = value + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

impl SqliteStore {
    /// Manifests changed outside the `MetaStore` methods that invalidate the cache.
    fn manifests_changed(&self) {
        self.manifests.invalidate();
    }
}

super::account_sql::impl_account_store!(SqliteStore, sqlx::SqliteConnection);
// Writes run one at a time: nothing to claim.
super::gc_sql::impl_gc_store!(SqliteStore, sqlx::SqliteConnection, "");
super::history_sql::impl_history_store!(SqliteStore, sqlx::SqliteConnection);
super::usage_sql::impl_usage_store!(SqliteStore, sqlx::SqliteConnection);
super::scrub_sql::impl_scrub_store!(SqliteStore, sqlx::SqliteConnection);
super::retention_sql::impl_retention_store!(SqliteStore, sqlx::SqliteConnection);
super::immutable_rules::impl_immutable_rule_store!(SqliteStore, sqlx::SqliteConnection);
super::org_retention::impl_org_retention_store!(SqliteStore, sqlx::SqliteConnection);
super::org_webhooks::impl_org_webhook_store!(SqliteStore, sqlx::SqliteConnection);
super::quotas::impl_quota_store!(SqliteStore, sqlx::SqliteConnection);
super::maintenance::impl_maintenance_store!(SqliteStore, sqlx::SqliteConnection);
super::cve_allowlist::impl_cve_allowlist_store!(SqliteStore, sqlx::SqliteConnection);
super::browse_sql::impl_browse_store!(SqliteStore, sqlx::SqliteConnection);
super::trust_sql::impl_trust_store!(SqliteStore, sqlx::SqliteConnection);
super::advisory_sql::impl_advisory_store!(SqliteStore, sqlx::SqliteConnection);

super::finding_sql::impl_finding_store!(SqliteStore, sqlx::SqliteConnection);
super::scan_views::impl_scan_view_store!(SqliteStore, sqlx::SqliteConnection);
// Writes run one at a time: a claim's one `UPDATE ... RETURNING` is atomic as it is.
super::scan_sql::impl_scan_store!(SqliteStore, sqlx::SqliteConnection, "");
// One process: nothing to claim against.
super::audit_sql::impl_audit_store!(SqliteStore, sqlx::SqliteConnection, "", "detail");

#[async_trait]
impl MetaStore for SqliteStore {
    async fn ping(&self) -> MetaResult<()> {
        let mut c = self.read.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *c).await?;
        Ok(())
    }

    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool> {
        q::repository_exists(&mut *self.read.acquire().await?, repo).await
    }

    async fn blob_in_repository(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<BlobInfo>> {
        q::blob_in_repository(&mut *self.read.acquire().await?, repo, digest).await
    }

    async fn blob_stored(&self, digest: &Digest) -> MetaResult<Option<BlobInfo>> {
        q::blob_stored(&mut *self.read.acquire().await?, digest).await
    }

    async fn blob_anywhere(&self, digest: &Digest) -> MetaResult<Option<u64>> {
        q::blob_anywhere(&mut *self.read.acquire().await?, digest).await
    }

    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
    ) -> MetaResult<bool> {
        let (repo, digest, location) = (repo.clone(), digest.clone(), location.map(str::to_owned));
        write!(self, |conn| q::link_blob(
            conn,
            &repo,
            &digest,
            size,
            location.as_deref()
        )
        .await)
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> MetaResult<Option<u64>> {
        let (repo, digest, from) = (repo.clone(), digest.clone(), from.cloned());
        write!(self, |conn| q::mount_blob(
            conn,
            &repo,
            &digest,
            from.as_ref()
        )
        .await)
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        let (repo, digest) = (repo.clone(), digest.clone());
        write!(self, |conn| q::unlink_blob(conn, &repo, &digest).await)
    }

    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()> {
        let upload = upload.clone();
        write!(self, |conn| q::create_upload(conn, &upload).await)
    }

    async fn upload(&self, id: UploadId) -> MetaResult<Option<UploadRecord>> {
        q::upload(&mut *self.read.acquire().await?, id).await
    }

    async fn lease_upload(
        &self,
        id: UploadId,
        received: u64,
        lease_ms: u64,
    ) -> MetaResult<Option<LeaseToken>> {
        write!(self, |conn| q::lease_upload(conn, id, received, lease_ms)
            .await)
    }

    async fn renew_upload_lease(
        &self,
        id: UploadId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> MetaResult<bool> {
        write!(self, |conn| q::renew_upload_lease(
            conn, id, token, lease_ms
        )
        .await)
    }

    async fn release_upload(&self, id: UploadId, token: LeaseToken) -> MetaResult<()> {
        write!(self, |conn| q::release_upload(conn, id, token).await)
    }

    async fn advance_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        from: u64,
        progress: &UploadProgress,
        release: bool,
    ) -> MetaResult<bool> {
        let progress = progress.clone();
        write!(self, |conn| q::advance_upload(
            conn, id, token, from, &progress, release
        )
        .await)
    }

    async fn delete_upload(&self, id: UploadId) -> MetaResult<bool> {
        write!(self, |conn| q::delete_upload(conn, id).await)
    }

    async fn complete_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
    ) -> MetaResult<Option<bool>> {
        let (repo, digest, location) = (repo.clone(), digest.clone(), location.map(str::to_owned));
        write!(self, |conn| q::complete_upload(
            conn,
            id,
            token,
            &repo,
            &digest,
            size,
            location.as_deref()
        )
        .await)
    }

    async fn take_expired_uploads(
        &self,
        idle_since_ms: i64,
        limit: u32,
    ) -> MetaResult<Vec<UploadRecord>> {
        write!(self, |conn| q::take_expired_uploads(
            conn,
            idle_since_ms,
            limit
        )
        .await)
    }

    async fn put_manifest(&self, m: NewManifest) -> Result<(), PutManifestError> {
        let result = write!(self, |conn| {
            q::put_manifest(conn, &m).await?;
            manifests_written(conn).await?;
            Ok(())
        });
        self.manifests.invalidate();
        result
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
        // Another process (`berth gc`) may have changed manifests: its transactions bump the
        // database's generation, which empties the cache here.
        let changed: i64 = sqlx::query_scalar("SELECT value FROM manifest_generation WHERE id = 1")
            .fetch_one(&self.read)
            .await?;
        self.manifests.observe(changed);
        if let Some(hit) = self.manifests.get(repo.as_str(), &key) {
            return Ok(Some(hit));
        }
        let generation = self.manifests.generation();
        let mut conn = self.read.acquire().await?;
        let record = match reference {
            Reference::Tag(tag) => q::manifest_by_tag(&mut conn, repo, tag).await?,
            Reference::Digest(d) => q::manifest_by_digest(&mut conn, repo, d).await?,
        };
        if let Some(r) = &record {
            self.manifests.insert(generation, repo.as_str(), &key, r);
        }
        Ok(record)
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: &Event,
    ) -> MetaResult<bool> {
        let (repo, digest, event) = (repo.clone(), digest.clone(), event.clone());
        let result = write!(self, |conn| {
            let deleted = q::delete_manifest(conn, &repo, &digest, &event).await?;
            manifests_written(conn).await?;
            Ok(deleted)
        });
        self.manifests.invalidate();
        result
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, event: &Event) -> MetaResult<bool> {
        let (repo, tag, event) = (repo.clone(), tag.clone(), event.clone());
        let result = write!(self, |conn| {
            let deleted = q::delete_tag(conn, &repo, &tag, None, &event).await?;
            manifests_written(conn).await?;
            Ok(deleted)
        });
        self.manifests.invalidate();
        result
    }

    async fn tags(&self, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>> {
        q::tags(&mut *self.read.acquire().await?, repo, page).await
    }

    async fn repositories(&self, page: PageQuery<'_>) -> MetaResult<Vec<String>> {
        q::repositories(&mut *self.read.acquire().await?, page).await
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
        page: PageQuery<'_>,
    ) -> MetaResult<Vec<ReferrerRecord>> {
        q::referrers(
            &mut *self.read.acquire().await?,
            repo,
            subject,
            artifact_type,
            page,
        )
        .await
    }
}
