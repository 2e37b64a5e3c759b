//! The SQL of [`BrowseStore`](super::browse::BrowseStore), for SQLite and PostgreSQL.
//!
//! Name filters compare `LOWER(name)` with `LIKE ... ESCAPE '\'`, which both databases read
//! the same way (SQLite's `LIKE` alone would ignore case and PostgreSQL's would not).

/// Implements `BrowseStore` for `$store`, whose `account_read` runs a closure over a read
/// connection `&mut $conn`.
macro_rules! impl_browse_store {
    ($store:ty, $conn:ty) => {
        mod bq {
            use $crate::domain::{Digest, RepoName};
            use $crate::meta::browse::{
                contains_pattern, placeholders, ManifestDetail, RepoSummary, TagHit, TagOrder,
                TagPage, TagQuery, TagRow,
            };
            use $crate::meta::sql::{ManifestRow, digest, manifest_record as record, uint};
            use $crate::meta::{ManifestRecord, MetaResult};

            pub(in $crate::meta) async fn tag_pushes_before(c: &mut $conn, before: i64, limit: u32) -> MetaResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT r.name, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
                     WHERE t.updated_at < $1 ORDER BY t.updated_at DESC LIMIT $2",
                ).bind(before).bind(i64::from(limit)).fetch_all(c).await?)
            }

            pub(in $crate::meta) async fn repository_summaries(c: &mut $conn, names: &[String]) -> MetaResult<Vec<RepoSummary>> {
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT r.name, COUNT(t.name), MAX(t.updated_at) FROM repositories r
                     LEFT JOIN tags t ON t.repository_id = r.id
                     WHERE r.name IN ({}) GROUP BY r.name ORDER BY r.name",
                    placeholders(1, names.len())
                );
                let mut q = sqlx::query_as::<_, (String, i64, Option<i64>)>(sqlx::AssertSqlSafe(sql));
                for n in names {
                    q = q.bind(n);
                }
                q.fetch_all(c).await?
                    .into_iter()
                    .map(|(name, tags, pushed_at)| Ok(RepoSummary { name, tags: uint(tags, "tags")?, pushed_at }))
                    .collect()
            }

            pub(in $crate::meta) async fn tag_page(c: &mut $conn, repo: &RepoName, query: TagQuery<'_>) -> MetaResult<Option<TagPage>> {
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                    .bind(repo.as_str()).fetch_optional(&mut *c).await?;
                let Some(id) = id else { return Ok(None) };
                let pattern = contains_pattern(query.contains);
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM tags WHERE repository_id = $1 AND LOWER(name) LIKE $2 ESCAPE '\\'",
                ).bind(id).bind(&pattern).fetch_one(&mut *c).await?;
                let order = match query.order {
                    TagOrder::Name => "t.name",
                    TagOrder::Newest => "t.updated_at DESC, t.name",
                };
                let sql = format!(
                    "SELECT t.name, t.updated_at, m.digest, m.media_type, m.size, m.content
                     FROM tags t JOIN manifests m ON m.id = t.manifest_id
                     WHERE t.repository_id = $1 AND LOWER(t.name) LIKE $2 ESCAPE '\\'
                     ORDER BY {order} LIMIT $3 OFFSET $4"
                );
                let rows: Vec<(String, i64, String, String, i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id).bind(&pattern).bind(i64::from(query.limit))
                    .bind(i64::try_from(query.offset).unwrap_or(i64::MAX))
                    .fetch_all(c).await?;
                let rows = rows.into_iter()
                    .map(|(name, pushed_at, d, media_type, size, content)| {
                        Ok(TagRow { name, pushed_at, manifest: record((d, media_type, size, content))? })
                    })
                    .collect::<MetaResult<Vec<_>>>()?;
                Ok(Some(TagPage { total: uint(total, "tags")?, rows }))
            }

            pub(in $crate::meta) async fn manifests_in(c: &mut $conn, repo: &RepoName, digests: &[Digest]) -> MetaResult<Vec<ManifestRecord>> {
                if digests.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT m.digest, m.media_type, m.size, m.content FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id
                     WHERE r.name = $1 AND m.digest IN ({})",
                    placeholders(2, digests.len())
                );
                let mut q = sqlx::query_as::<_, ManifestRow>(sqlx::AssertSqlSafe(sql)).bind(repo.as_str());
                for d in digests {
                    q = q.bind(d.to_string());
                }
                q.fetch_all(c).await?.into_iter().map(record).collect()
            }

            pub(in $crate::meta) async fn manifest_detail(c: &mut $conn, repo: &RepoName, d: &Digest) -> MetaResult<Option<ManifestDetail>> {
                let row: Option<(i64, i64, String, String, i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT m.id, m.created_at, m.digest, m.media_type, m.size, m.content FROM manifests m
                     JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2",
                ).bind(repo.as_str()).bind(d.to_string()).fetch_optional(&mut *c).await?;
                let Some((id, pushed_at, dg, media_type, size, content)) = row else { return Ok(None) };
                let tags: Vec<String> = sqlx::query_scalar("SELECT name FROM tags WHERE manifest_id = $1 ORDER BY name")
                    .bind(id).fetch_all(&mut *c).await?;
                let parents: Vec<String> = sqlx::query_scalar(
                    "SELECT p.digest FROM manifest_children mc JOIN manifests p ON p.id = mc.parent_id
                     JOIN repositories r ON r.id = p.repository_id
                     WHERE r.name = $1 AND mc.child_digest = $2 ORDER BY p.digest",
                ).bind(repo.as_str()).bind(d.to_string()).fetch_all(&mut *c).await?;
                Ok(Some(ManifestDetail {
                    record: record((dg, media_type, size, content))?,
                    pushed_at,
                    tags,
                    parents: parents.iter().map(|p| digest(p, "manifests")).collect::<MetaResult<_>>()?,
                }))
            }

            pub(in $crate::meta) async fn search_repositories(c: &mut $conn, contains: &str, after: &str, limit: u32) -> MetaResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT name FROM repositories WHERE name > $1 AND LOWER(name) LIKE $2 ESCAPE '\\'
                     ORDER BY name LIMIT $3",
                ).bind(after).bind(contains_pattern(contains)).bind(i64::from(limit)).fetch_all(c).await?)
            }

            pub(in $crate::meta) async fn search_tags(c: &mut $conn, contains: &str, after: (&str, &str), limit: u32) -> MetaResult<Vec<TagHit>> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT r.name, t.name, m.digest, t.updated_at FROM tags t
                     JOIN repositories r ON r.id = t.repository_id JOIN manifests m ON m.id = t.manifest_id
                     WHERE (r.name > $1 OR (r.name = $1 AND t.name > $2)) AND LOWER(t.name) LIKE $3 ESCAPE '\\'
                     ORDER BY r.name, t.name LIMIT $4",
                ).bind(after.0).bind(after.1).bind(contains_pattern(contains)).bind(i64::from(limit)).fetch_all(c).await?;
                Ok(rows.into_iter().map(|(repository, tag, digest, pushed_at)| TagHit { repository, tag, digest, pushed_at }).collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::browse::BrowseStore for $store {
            async fn tag_pushes_before(&self, before: i64, limit: u32) -> $crate::meta::MetaResult<Vec<(String, i64)>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| bq::tag_pushes_before(c, before, limit))
            }
            async fn repository_summaries(&self, names: &[String]) -> $crate::meta::MetaResult<Vec<$crate::meta::browse::RepoSummary>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [names], |c| bq::repository_summaries(c, &names))
            }
            async fn tag_page(&self, repo: &$crate::domain::RepoName, query: $crate::meta::browse::TagQuery<'_>) -> $crate::meta::MetaResult<Option<$crate::meta::browse::TagPage>> {
                let contains = query.contains.to_owned();
                let (order, offset, limit) = (query.order, query.offset, query.limit);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, contains], |c| bq::tag_page(c, &repo, $crate::meta::browse::TagQuery { contains: &contains, order, offset, limit }))
            }
            async fn manifests_in(&self, repo: &$crate::domain::RepoName, digests: &[$crate::domain::Digest]) -> $crate::meta::MetaResult<Vec<$crate::meta::ManifestRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, digests], |c| bq::manifests_in(c, &repo, &digests))
            }
            async fn manifest_detail(&self, repo: &$crate::domain::RepoName, digest: &$crate::domain::Digest) -> $crate::meta::MetaResult<Option<$crate::meta::browse::ManifestDetail>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [repo, digest], |c| bq::manifest_detail(c, &repo, &digest))
            }
            async fn search_repositories(&self, contains: &str, after: &str, limit: u32) -> $crate::meta::MetaResult<Vec<String>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [contains, after], |c| bq::search_repositories(c, &contains, &after, limit))
            }
            async fn search_tags(&self, contains: &str, after: (&str, &str), limit: u32) -> $crate::meta::MetaResult<Vec<$crate::meta::browse::TagHit>> {
                let (repo, tag) = after;
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [contains, repo, tag], |c| bq::search_tags(c, &contains, (&repo, &tag), limit))
            }
        }
    };
}

pub(crate) use impl_browse_store;
