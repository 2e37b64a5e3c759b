//! The SQL of [`UsageStore`](super::usage::UsageStore), for SQLite and PostgreSQL.

/// Whether repository `r` is in the scope bound as `$1` (NULL: everything): a SQL literal.
macro_rules! in_scope {
    () => {
        "($1 IS NULL OR r.name = $1 OR substr(r.name, 1, length($1) + 1) = $1 || '/')"
    };
}

/// Defines the accounting query functions over `&mut $conn`.
macro_rules! usage_queries {
    ($conn:ty) => {
        use $crate::meta::MetaResult;
        use $crate::meta::sql::uint;
        use $crate::meta::usage::{QuotaUsage, RepositoryUsage, UploadSessions, UsageTotal};

        pub(super) async fn repository_usage(conn: &mut $conn, scope: Option<&str>) -> MetaResult<Vec<RepositoryUsage>> {
            // SUM of BIGINT is NUMERIC on PostgreSQL: cast back.
            type Row = (String, i64, i64, i64, i64, i64);
            let rows: Vec<Row> = sqlx::query_as(concat!(
                "SELECT r.name,
                    (SELECT COUNT(*) FROM repository_blobs rb WHERE rb.repository_id = r.id),
                    (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM repository_blobs rb
                     JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = r.id),
                    (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM repository_blobs rb
                     JOIN blobs b ON b.digest = rb.digest
                     WHERE rb.repository_id = r.id AND NOT EXISTS (
                         SELECT 1 FROM repository_blobs o WHERE o.digest = rb.digest AND o.repository_id <> r.id)),
                    (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id),
                    (SELECT CAST(COALESCE(SUM(m.size), 0) AS BIGINT) FROM manifests m WHERE m.repository_id = r.id)
                 FROM repositories r WHERE ",
                $crate::meta::usage_sql::in_scope!(),
                " ORDER BY r.name"
            ))
            .bind(scope)
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(repository, blobs, blob_bytes, exclusive, manifests, manifest_bytes)| {
                    Ok(RepositoryUsage {
                        repository,
                        blobs: uint(blobs, "repository_blobs")?,
                        blob_bytes: uint(blob_bytes, "blobs")?,
                        exclusive_bytes: uint(exclusive, "blobs")?,
                        manifests: uint(manifests, "manifests")?,
                        manifest_bytes: uint(manifest_bytes, "manifests")?,
                    })
                })
                .collect()
        }

        pub(super) async fn usage_total(conn: &mut $conn, scope: Option<&str>) -> MetaResult<UsageTotal> {
            let (repositories,): (i64,) = sqlx::query_as(concat!(
                "SELECT COUNT(*) FROM repositories r WHERE ",
                $crate::meta::usage_sql::in_scope!()
            ))
            .bind(scope)
            .fetch_one(&mut *conn)
            .await?;
            let (blobs, blob_bytes): (i64, i64) = sqlx::query_as(concat!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b
                 WHERE EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                               WHERE rb.digest = b.digest AND ",
                $crate::meta::usage_sql::in_scope!(),
                ")"
            ))
            .bind(scope)
            .fetch_one(&mut *conn)
            .await?;
            let (manifests, manifest_bytes): (i64, i64) = sqlx::query_as(concat!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(m.size), 0) AS BIGINT) FROM manifests m
                 JOIN repositories r ON r.id = m.repository_id WHERE ",
                $crate::meta::usage_sql::in_scope!()
            ))
            .bind(scope)
            .fetch_one(&mut *conn)
            .await?;
            Ok(UsageTotal {
                repositories: uint(repositories, "repositories")?,
                blobs: uint(blobs, "blobs")?,
                blob_bytes: uint(blob_bytes, "blobs")?,
                manifests: uint(manifests, "manifests")?,
                manifest_bytes: uint(manifest_bytes, "manifests")?,
            })
        }

        pub(super) async fn quota_usage(conn: &mut $conn, scope: &str) -> MetaResult<QuotaUsage> {
            let (repositories, blob_bytes): (i64, i64) = sqlx::query_as(concat!(
                "SELECT (SELECT COUNT(*) FROM repositories r WHERE ",
                $crate::meta::usage_sql::in_scope!(),
                "), (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b
                     WHERE EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                                   WHERE rb.digest = b.digest AND ",
                $crate::meta::usage_sql::in_scope!(),
                "))"
            ))
            .bind(scope)
            .fetch_one(conn)
            .await?;
            Ok(QuotaUsage {
                blob_bytes: uint(blob_bytes, "blobs")?,
                repositories: uint(repositories, "repositories")?,
            })
        }

        pub(super) async fn scope_has_blob(conn: &mut $conn, scope: &str, digest: &str) -> MetaResult<bool> {
            let found: Option<(i32,)> = sqlx::query_as(concat!(
                "SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                 WHERE rb.digest = $2 AND ",
                $crate::meta::usage_sql::in_scope!(),
                " LIMIT 1"
            ))
            .bind(scope)
            .bind(digest)
            .fetch_optional(conn)
            .await?;
            Ok(found.is_some())
        }

        pub(super) async fn upload_sessions(conn: &mut $conn) -> MetaResult<UploadSessions> {
            let (sessions, received): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(received_bytes), 0) AS BIGINT) FROM uploads",
            )
            .fetch_one(conn)
            .await?;
            Ok(UploadSessions {
                sessions: uint(sessions, "uploads")?,
                received_bytes: uint(received, "uploads")?,
            })
        }
    };
}

/// Implements [`UsageStore`](super::usage::UsageStore) for a store with the `account_read`
/// runner.
macro_rules! impl_usage_store {
    ($store:ty, $conn:ty) => {
        mod uq {
            $crate::meta::usage_sql::usage_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::usage::UsageStore for $store {
            async fn repository_usage(&self, scope: Option<&str>) -> $crate::meta::MetaResult<Vec<$crate::meta::usage::RepositoryUsage>> {
                let scope = scope.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [scope], |c| uq::repository_usage(c, scope.as_deref()))
            }
            async fn usage_total(&self, scope: Option<&str>) -> $crate::meta::MetaResult<$crate::meta::usage::UsageTotal> {
                let scope = scope.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [scope], |c| uq::usage_total(c, scope.as_deref()))
            }
            async fn quota_usage(&self, scope: &str) -> $crate::meta::MetaResult<$crate::meta::usage::QuotaUsage> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [scope], |c| uq::quota_usage(c, &scope))
            }
            async fn scope_has_blob(&self, scope: &str, digest: &str) -> $crate::meta::MetaResult<bool> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [scope, digest], |c| uq::scope_has_blob(c, &scope, &digest))
            }
            async fn upload_sessions(&self) -> $crate::meta::MetaResult<$crate::meta::usage::UploadSessions> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| uq::upload_sessions(c))
            }
        }
    };
}

pub(crate) use impl_usage_store;
pub(crate) use in_scope;
pub(crate) use usage_queries;
