//! Reads behind the web UI: recent activity, repository summaries, sorted and filtered tag
//! pages with their manifests, and name search. Read-only; written once for both databases
//! in `browse_sql`.

use async_trait::async_trait;

use super::{ManifestRecord, MetaResult};
use crate::domain::{Digest, RepoName};

/// A repository with its tag count and latest tag push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    /// Repository name.
    pub name: String,
    /// Number of tags.
    pub tags: u64,
    /// When a tag was last pushed or moved (Unix ms), if it has tags.
    pub pushed_at: Option<i64>,
}

/// How a tag page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagOrder {
    /// By name, in byte order.
    #[default]
    Name,
    /// Most recently pushed first.
    Newest,
}

/// Which tags of a repository to list.
#[derive(Debug, Clone, Copy)]
pub struct TagQuery<'a> {
    /// Only tags whose lower-cased name contains this (already lower-case; empty for all).
    pub contains: &'a str,
    /// The order.
    pub order: TagOrder,
    /// Matching tags to skip.
    pub offset: u64,
    /// Tags to return at most.
    pub limit: u32,
}

/// A tag with the manifest it points at.
#[derive(Debug, Clone)]
pub struct TagRow {
    /// Tag name.
    pub name: String,
    /// The manifest, with its content.
    pub manifest: ManifestRecord,
    /// When the tag was pushed or last moved (Unix ms).
    pub pushed_at: i64,
}

/// One page of tags and how many tags match in all.
#[derive(Debug, Clone)]
pub struct TagPage {
    /// Tags matching the query's filter.
    pub total: u64,
    /// The page.
    pub rows: Vec<TagRow>,
}

/// A tag found by search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHit {
    /// Repository name.
    pub repository: String,
    /// Tag name.
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
    /// When the tag was pushed or last moved (Unix ms).
    pub pushed_at: i64,
}

/// A manifest with where it stands in its repository.
#[derive(Debug, Clone)]
pub struct ManifestDetail {
    /// The manifest, with its content.
    pub record: ManifestRecord,
    /// When it was first pushed (Unix ms).
    pub pushed_at: i64,
    /// Tags pointing at it, by name.
    pub tags: Vec<String>,
    /// Indexes in the repository that list it.
    pub parents: Vec<Digest>,
}

/// The UI's read queries. Each method is one read of a consistent snapshot or less; none
/// writes.
#[async_trait]
pub trait BrowseStore: Send + Sync + 'static {
    /// `(repository, pushed_at)` of tag pushes older than `before` (Unix ms), newest first;
    /// a repository appears once per tag, so callers fold duplicates.
    async fn tag_pushes_before(&self, before: i64, limit: u32) -> MetaResult<Vec<(String, i64)>>;

    /// Summaries of the named repositories that exist, in byte order.
    async fn repository_summaries(&self, names: &[String]) -> MetaResult<Vec<RepoSummary>>;

    /// A page of a repository's tags with their manifests; `None` when the repository does not
    /// exist.
    async fn tag_page(&self, repo: &RepoName, query: TagQuery<'_>) -> MetaResult<Option<TagPage>>;

    /// The manifests of `repo` among `digests`, with their content, in no particular order.
    async fn manifests_in(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> MetaResult<Vec<ManifestRecord>>;

    /// A manifest of `repo` by digest with its tags and parent indexes.
    async fn manifest_detail(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestDetail>>;

    /// Repository names after `after` whose name contains `contains` (lower-case), in byte
    /// order.
    async fn search_repositories(
        &self,
        contains: &str,
        after: &str,
        limit: u32,
    ) -> MetaResult<Vec<String>>;

    /// Tags after `(repository, tag)` whose lower-cased name contains `contains`, ordered by
    /// repository and tag.
    async fn search_tags(
        &self,
        contains: &str,
        after: (&str, &str),
        limit: u32,
    ) -> MetaResult<Vec<TagHit>>;
}

/// `%text%` for `LIKE ... ESCAPE '\'`, with the pattern characters of `text` escaped.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// `$first, $first+1, ...` for `n` bind parameters of an `IN` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("v1"), "%v1%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}
