//! The SQL of [`HistoryStore`](super::history::HistoryStore), for SQLite and PostgreSQL.
//! Changes are recorded by `sql.rs` (`record_tag_change`, `set_tag`) inside the transactions
//! that make them.

/// Defines the tag history query functions over `&mut $conn`.
macro_rules! history_queries {
    ($conn:ty) => {
        use $crate::domain::{Digest, RepoName, Tag};
        use $crate::meta::MetaResult;
        use $crate::meta::history::{HistoryQuery, Restored, TagChange};
        use $crate::meta::sql::digest;

        fn optional_digest(d: Option<String>) -> MetaResult<Option<Digest>> {
            d.map(|d| digest(&d, "tag_history")).transpose()
        }

        pub(super) async fn tag_history(conn: &mut $conn, repo: &RepoName, q: HistoryQuery<'_>) -> MetaResult<Option<Vec<TagChange>>> {
            let repo_id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(repo.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            let Some(repo_id) = repo_id else {
                return Ok(None);
            };
            type Row = (i64, String, Option<String>, Option<String>, i64);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, tag, old_digest, new_digest, changed_at FROM tag_history
                 WHERE repository_id = $1 AND ($2 IS NULL OR tag = $2) AND changed_at >= $3 AND id < $4
                 ORDER BY id DESC LIMIT $5",
            )
            .bind(repo_id)
            .bind(q.tag.map(Tag::as_str))
            .bind(q.since_ms)
            .bind(q.before_id.unwrap_or(i64::MAX))
            .bind(i64::from(q.limit))
            .fetch_all(conn)
            .await?;
            rows.into_iter()
                .map(|(id, tag, old, new, changed_at)| {
                    Ok(TagChange { id, tag, old_digest: optional_digest(old)?, new_digest: optional_digest(new)?, changed_at })
                })
                .collect::<MetaResult<Vec<_>>>()
                .map(Some)
        }

        pub(super) async fn restore_tag(conn: &mut $conn, repo: &RepoName, tag: &Tag, wanted: Option<&Digest>, since: i64, event: &$crate::meta::events::Event) -> MetaResult<Restored> {
            let repo_id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(repo.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            let Some(repo_id) = repo_id else {
                return Ok(Restored::NotInHistory);
            };
            let current: Option<String> = sqlx::query_scalar(
                "SELECT m.digest FROM tags t JOIN manifests m ON m.id = t.manifest_id
                 WHERE t.repository_id = $1 AND t.name = $2",
            )
            .bind(repo_id)
            .bind(tag.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let target: Option<String> = match wanted {
                Some(d) => sqlx::query_scalar(
                    "SELECT $3 FROM tag_history
                     WHERE repository_id = $1 AND tag = $2 AND changed_at >= $4
                       AND (old_digest = $3 OR new_digest = $3)
                     LIMIT 1",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .bind(d.to_string())
                .bind(since)
                .fetch_optional(&mut *conn)
                .await?,
                None => sqlx::query_scalar(
                    "SELECT old_digest FROM tag_history
                     WHERE repository_id = $1 AND tag = $2 AND changed_at >= $3
                       AND old_digest IS NOT NULL AND old_digest <> $4
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .bind(since)
                .bind(current.as_deref().unwrap_or(""))
                .fetch_optional(&mut *conn)
                .await?,
            };
            let Some(target) = target else {
                return Ok(Restored::NotInHistory);
            };
            let target_digest = digest(&target, "tag_history")?;
            if current.as_deref() == Some(target.as_str()) {
                return Ok(Restored::Unchanged(target_digest));
            }
            let manifest: Option<i64> =
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(&target)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(manifest) = manifest else {
                return Ok(Restored::ManifestGone(target_digest));
            };
            super::q::set_tag(conn, repo_id, tag.as_str(), manifest, &target).await?;
            super::manifests_written(conn).await?;
            let mut event = event.clone();
            event.digest = Some(target.clone());
            event.detail = Some(serde_json::json!({"previous": current}));
            super::q::record_event(conn, &event).await?;
            Ok(Restored::Moved {
                digest: target_digest,
                previous: optional_digest(current)?,
            })
        }
    };
}

/// Implements [`HistoryStore`](super::history::HistoryStore) for a store with the
/// `account_read` and `account_write` runners and the manifest cache hooks (see
/// `impl_gc_store`).
macro_rules! impl_history_store {
    ($store:ty, $conn:ty) => {
        mod hq {
            $crate::meta::history_sql::history_queries!($conn);
        }

        #[async_trait::async_trait]
        impl $crate::meta::history::HistoryStore for $store {
            async fn tag_history(
                &self,
                repo: &$crate::domain::RepoName,
                query: $crate::meta::history::HistoryQuery<'_>,
            ) -> $crate::meta::MetaResult<Option<Vec<$crate::meta::history::TagChange>>> {
                let tag = query.tag.cloned();
                let (since, before, limit) = (query.since_ms, query.before_id, query.limit);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, tag], |c| hq::tag_history(
                    c,
                    &repo,
                    $crate::meta::history::HistoryQuery { tag: tag.as_ref(), since_ms: since, before_id: before, limit },
                ))
            }
            async fn restore_tag(
                &self,
                repo: &$crate::domain::RepoName,
                tag: &$crate::domain::Tag,
                digest: Option<&$crate::domain::Digest>,
                since_ms: i64,
                event: &$crate::meta::events::Event,
            ) -> $crate::meta::MetaResult<$crate::meta::history::Restored> {
                let digest = digest.cloned();
                let restored = $crate::meta::account_sql::run_owned!($conn; self.account_write, [repo, tag, digest, event], |c| hq::restore_tag(c, &repo, &tag, digest.as_ref(), since_ms, &event));
                self.manifests_changed();
                restored
            }
        }
    };
}

pub(crate) use history_queries;
pub(crate) use impl_history_store;
