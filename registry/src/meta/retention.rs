//! What retention policies need from the metadata database: the tags of a scope with when
//! they were pushed and pulled, pull times recorded in batches, and deletes that only happen
//! if the tag did not move since it was judged.

use async_trait::async_trait;

use super::MetaResult;
use crate::domain::{RepoName, Tag};

/// A tag as retention judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagAge {
    /// Its repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest it points at.
    pub digest: String,
    /// When it was last pushed (moved), Unix ms.
    pub pushed_at: i64,
    /// When it was last pulled, if ever recorded.
    pub pulled_at: Option<i64>,
}

/// The retention queries.
#[async_trait]
pub trait RetentionStore {
    /// Every tag of the repositories in `scope` (a repository, or a namespace and everything
    /// under it; `None`: all), by repository, newest push first.
    async fn retention_tags(&self, scope: Option<&str>) -> MetaResult<Vec<TagAge>>;

    /// Records pulls at `at` (Unix ms): by tag, or by digest (every tag on that manifest).
    async fn record_pulls(&self, pulls: &[(String, String)], at: i64) -> MetaResult<()>;

    /// Deletes `tag` if it was last pushed at `pushed_at` (else it moved since: kept),
    /// recording `event`.
    async fn retention_delete_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        pushed_at: i64,
        event: &super::events::Event,
    ) -> MetaResult<bool>;
}
