//! The SQL of [`RetentionStore`](super::retention::RetentionStore), for SQLite and
//! PostgreSQL.

/// Defines the retention query functions over `&mut $conn`.
macro_rules! retention_queries {
    ($conn:ty) => {
        use $crate::meta::MetaResult;
        use $crate::meta::retention::TagAge;

        pub(super) async fn tags(conn: &mut $conn, scope: Option<&str>) -> MetaResult<Vec<TagAge>> {
            let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT r.name, t.name, m.digest, t.updated_at, t.pulled_at FROM tags t
                 JOIN repositories r ON r.id = t.repository_id
                 JOIN manifests m ON m.id = t.manifest_id
                 WHERE ",
                $crate::meta::usage_sql::in_scope!(),
                " ORDER BY r.name, t.updated_at DESC, t.name"
            ))
            .bind(scope)
            .fetch_all(conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(repository, tag, digest, pushed_at, pulled_at)| TagAge { repository, tag, digest, pushed_at, pulled_at })
                .collect())
        }

        pub(super) async fn delete_tag(conn: &mut $conn, repo: &$crate::domain::RepoName, tag: &$crate::domain::Tag, pushed_at: i64, event: &$crate::meta::events::Event) -> MetaResult<bool> {
            let deleted = super::q::delete_tag(conn, repo, tag, Some(pushed_at), event).await?;
            super::manifests_written(conn).await?;
            Ok(deleted)
        }

        pub(super) async fn record_pulls(conn: &mut $conn, pulls: &[(String, String)], at: i64) -> MetaResult<()> {
            for (repo, reference) in pulls {
                if reference.contains(':') {
                    sqlx::query(
                        "UPDATE tags SET pulled_at = $3 WHERE manifest_id IN (
                             SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
                             WHERE r.name = $1 AND m.digest = $2)",
                    )
                    .bind(repo)
                    .bind(reference)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                } else {
                    sqlx::query(
                        "UPDATE tags SET pulled_at = $3
                         WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2",
                    )
                    .bind(repo)
                    .bind(reference)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(())
        }
    };
}

/// Implements [`RetentionStore`](super::retention::RetentionStore) for a store with the
/// `account_read` and `account_write` runners and the manifest cache hooks (see
/// `impl_gc_store`).
macro_rules! impl_retention_store {
    ($store:ty, $conn:ty) => {
        mod rq {
            $crate::meta::retention_sql::retention_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::retention::RetentionStore for $store {
            async fn retention_tags(&self, scope: Option<&str>) -> $crate::meta::MetaResult<Vec<$crate::meta::retention::TagAge>> {
                let scope = scope.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [scope], |c| rq::tags(c, scope.as_deref()))
            }
            async fn record_pulls(&self, pulls: &[(String, String)], at: i64) -> $crate::meta::MetaResult<()> {
                let pulls = pulls.to_vec();
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [pulls], |c| rq::record_pulls(c, &pulls, at))
            }
            async fn retention_delete_tag(&self, repo: &$crate::domain::RepoName, tag: &$crate::domain::Tag, pushed_at: i64, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<bool> {
                let deleted = $crate::meta::account_sql::run_owned!($conn; self.account_write, [repo, tag, event], |c| rq::delete_tag(c, &repo, &tag, pushed_at, &event));
                self.manifests_changed();
                deleted
            }
        }
    };
}

pub(crate) use impl_retention_store;
pub(crate) use retention_queries;
