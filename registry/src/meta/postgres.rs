//! [`MetaStore`] on PostgreSQL, for several replicas sharing one database.
//!
//! Every write runs in a `SERIALIZABLE` transaction, so the check-then-write sequences in
//! `sql.rs` (a manifest's references, an upload's lease) behave exactly as under SQLite's
//! single writer; a transaction that loses a serialization conflict is retried. Nothing is
//! cached in process memory: another replica may change anything at any time.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

use super::events::Event;
use super::{
    BlobInfo, LeaseToken, ManifestRecord, MetaError, MetaResult, MetaStore, NewManifest, PageQuery,
    PutManifestError, ReferrerRecord, UploadProgress, UploadRecord,
};
use crate::domain::{Digest, MediaType, Reference, RepoName, Tag, UploadId};

mod q {
    super::super::sql::queries!(sqlx::PgConnection);
}

/// Attempts of a write transaction that keeps losing serialization conflicts.
const MAX_ATTEMPTS: u32 = 40;

/// Metadata in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Errors that may wrap a database error worth retrying.
pub(super) trait Retryable {
    /// Whether the transaction lost a serialization conflict or a deadlock and may be rerun.
    fn retryable(&self) -> bool;
}

fn retryable(e: &sqlx::Error) -> bool {
    // 40001 serialization_failure, 40P01 deadlock_detected.
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

impl Retryable for MetaError {
    fn retryable(&self) -> bool {
        matches!(self, MetaError::Database(e) if retryable(e))
    }
}

impl Retryable for PutManifestError {
    fn retryable(&self) -> bool {
        matches!(self, PutManifestError::Meta(e) if e.retryable())
    }
}

/// Runs `$body` (an async block over `$conn: &mut PgConnection`) in a serializable
/// transaction, retried on conflicts. The listed variables are cloned for each attempt, since
/// the transaction's future may only borrow the connection.
macro_rules! write {
    ($self:ident, [$($var:ident),*] |$conn:ident| $body:expr) => {
        $self
            .write(|$conn: &mut PgConnection| -> BoxFuture<'_, _> {
                $(let $var = $var.to_owned();)*
                Box::pin(async move { $body })
            })
            .await
    };
}

impl PostgresStore {
    /// Connects to `url`, applies migrations when `migrate` is set (under PostgreSQL's
    /// advisory lock, so replicas starting together do not race) and returns a store with up to `connections`
    /// connections.
    pub async fn open(url: &str, connections: u32, migrate: bool) -> MetaResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        if migrate {
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        }
        Ok(Self { pool })
    }

    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<MetaError> + Retryable,
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await.map_err(MetaError::from)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .execute(&mut *tx)
                .await
                .map_err(MetaError::from)?;
            let error = match f(&mut tx).await {
                Ok(value) => match tx.commit().await {
                    Ok(()) => return Ok(value),
                    Err(e) => E::from(MetaError::from(e)),
                },
                Err(e) => e, // Dropping `tx` rolls it back.
            };
            if !error.retryable() || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            // Back off exponentially with jitter (1 ms, 2 ms, 4 ms ... capped at 256 ms, times
            // a random factor in [0.5, 1.5)), so many writers contending for the same rows
            // spread out instead of colliding again in lockstep.
            let base = 1u64 << attempt.min(8);
            let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65536.0;
            tokio::time::sleep(Duration::from_micros(
                (base as f64 * 1000.0 * jitter) as u64,
            ))
            .await;
        }
    }
}

impl PostgresStore {
    /// Runs `f` on a pooled connection (for the account queries).
    async fn account_read<T, F>(&self, f: F) -> MetaResult<T>
    where
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, MetaResult<T>>,
    {
        let mut conn = self.pool.acquire().await?;
        f(&mut conn).await
    }

    /// Runs `f` in a serializable transaction, retried on conflicts (for the account queries).
    async fn account_write<T, F>(&self, f: F) -> MetaResult<T>
    where
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, MetaResult<T>>,
    {
        self.write(f).await
    }
}

/// Nothing to record: PostgreSQL replicas cache no manifests.
async fn manifests_written(_conn: &mut PgConnection) -> sqlx::Result<()> {
    Ok(())
}

impl PostgresStore {
    /// Nothing is cached: every replica reads manifests from the database.
    fn manifests_changed(&self) {}
}

super::account_sql::impl_account_store!(PostgresStore, sqlx::PgConnection);
// Replicas collecting at once skip the review another one is working on instead of
// conflicting with it (and retrying) item after item.
super::gc_sql::impl_gc_store!(
    PostgresStore,
    sqlx::PgConnection,
    " FOR UPDATE OF g SKIP LOCKED"
);
super::history_sql::impl_history_store!(PostgresStore, sqlx::PgConnection);
super::usage_sql::impl_usage_store!(PostgresStore, sqlx::PgConnection);
super::scrub_sql::impl_scrub_store!(PostgresStore, sqlx::PgConnection);
super::retention_sql::impl_retention_store!(PostgresStore, sqlx::PgConnection);
super::immutable_rules::impl_immutable_rule_store!(PostgresStore, sqlx::PgConnection);
super::org_retention::impl_org_retention_store!(PostgresStore, sqlx::PgConnection);
super::org_webhooks::impl_org_webhook_store!(PostgresStore, sqlx::PgConnection);
super::quotas::impl_quota_store!(PostgresStore, sqlx::PgConnection);
super::maintenance::impl_maintenance_store!(PostgresStore, sqlx::PgConnection);
super::cve_allowlist::impl_cve_allowlist_store!(PostgresStore, sqlx::PgConnection);
super::browse_sql::impl_browse_store!(PostgresStore, sqlx::PgConnection);
super::trust_sql::impl_trust_store!(PostgresStore, sqlx::PgConnection);
super::advisory_sql::impl_advisory_store!(PostgresStore, sqlx::PgConnection);

super::finding_sql::impl_finding_store!(PostgresStore, sqlx::PgConnection);
super::scan_views::impl_scan_view_store!(PostgresStore, sqlx::PgConnection);
// Replicas claiming at once each take a different job.
super::scan_sql::impl_scan_store!(PostgresStore, sqlx::PgConnection, " FOR UPDATE SKIP LOCKED");
// Replicas delivering at once each take different due deliveries.
super::audit_sql::impl_audit_store!(
    PostgresStore,
    sqlx::PgConnection,
    " FOR UPDATE SKIP LOCKED",
    "CAST(detail AS jsonb)"
);

#[async_trait]
impl MetaStore for PostgresStore {
    async fn ping(&self) -> MetaResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool> {
        q::repository_exists(&mut *self.pool.acquire().await?, repo).await
    }

    async fn blob_in_repository(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<BlobInfo>> {
        q::blob_in_repository(&mut *self.pool.acquire().await?, repo, digest).await
    }

    async fn blob_stored(&self, digest: &Digest) -> MetaResult<Option<BlobInfo>> {
        q::blob_stored(&mut *self.pool.acquire().await?, digest).await
    }

    async fn blob_anywhere(&self, digest: &Digest) -> MetaResult<Option<u64>> {
        q::blob_anywhere(&mut *self.pool.acquire().await?, digest).await
    }

    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        location: Option<&str>,
    ) -> MetaResult<bool> {
        let location = location.map(str::to_owned);
        write!(
            self,
            [repo, digest, location]
                | conn
                | q::link_blob(conn, &repo, &digest, size, location.as_deref()).await
        )
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> MetaResult<Option<u64>> {
        let from = from.cloned();
        write!(
            self,
            [repo, digest, from] | conn | q::mount_blob(conn, &repo, &digest, from.as_ref()).await
        )
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool> {
        write!(
            self,
            [repo, digest] | conn | q::unlink_blob(conn, &repo, &digest).await
        )
    }

    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()> {
        write!(
            self,
            [upload] | conn | q::create_upload(conn, &upload).await
        )
    }

    async fn upload(&self, id: UploadId) -> MetaResult<Option<UploadRecord>> {
        q::upload(&mut *self.pool.acquire().await?, id).await
    }

    async fn lease_upload(
        &self,
        id: UploadId,
        received: u64,
        lease_ms: u64,
    ) -> MetaResult<Option<LeaseToken>> {
        write!(
            self,
            [] | conn | q::lease_upload(conn, id, received, lease_ms).await
        )
    }

    async fn renew_upload_lease(
        &self,
        id: UploadId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> MetaResult<bool> {
        write!(
            self,
            [] | conn | q::renew_upload_lease(conn, id, token, lease_ms).await
        )
    }

    async fn release_upload(&self, id: UploadId, token: LeaseToken) -> MetaResult<()> {
        write!(self, [] | conn | q::release_upload(conn, id, token).await)
    }

    async fn advance_upload(
        &self,
        id: UploadId,
        token: LeaseToken,
        from: u64,
        progress: &UploadProgress,
        release: bool,
    ) -> MetaResult<bool> {
        write!(
            self,
            [progress] | conn | q::advance_upload(conn, id, token, from, &progress, release).await
        )
    }

    async fn delete_upload(&self, id: UploadId) -> MetaResult<bool> {
        write!(self, [] | conn | q::delete_upload(conn, id).await)
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
        let location = location.map(str::to_owned);
        write!(
            self,
            [repo, digest, location]
                | conn
                | q::complete_upload(conn, id, token, &repo, &digest, size, location.as_deref())
                    .await
        )
    }

    async fn take_expired_uploads(
        &self,
        idle_since_ms: i64,
        limit: u32,
    ) -> MetaResult<Vec<UploadRecord>> {
        write!(
            self,
            [] | conn | q::take_expired_uploads(conn, idle_since_ms, limit).await
        )
    }

    async fn put_manifest(&self, m: NewManifest) -> Result<(), PutManifestError> {
        write!(self, [m] | conn | q::put_manifest(conn, &m).await)
    }

    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        _content: bool,
    ) -> MetaResult<Option<ManifestRecord>> {
        let mut conn = self.pool.acquire().await?;
        match reference {
            Reference::Tag(tag) => q::manifest_by_tag(&mut conn, repo, tag).await,
            Reference::Digest(d) => q::manifest_by_digest(&mut conn, repo, d).await,
        }
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        event: &Event,
    ) -> MetaResult<bool> {
        write!(
            self,
            [repo, digest, event] | conn | q::delete_manifest(conn, &repo, &digest, &event).await
        )
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, event: &Event) -> MetaResult<bool> {
        write!(
            self,
            [repo, tag, event] | conn | q::delete_tag(conn, &repo, &tag, None, &event).await
        )
    }

    async fn tags(&self, repo: &RepoName, page: PageQuery<'_>) -> MetaResult<Option<Vec<String>>> {
        q::tags(&mut *self.pool.acquire().await?, repo, page).await
    }

    async fn repositories(&self, page: PageQuery<'_>) -> MetaResult<Vec<String>> {
        q::repositories(&mut *self.pool.acquire().await?, page).await
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
        page: PageQuery<'_>,
    ) -> MetaResult<Vec<ReferrerRecord>> {
        q::referrers(
            &mut *self.pool.acquire().await?,
            repo,
            subject,
            artifact_type,
            page,
        )
        .await
    }
}
