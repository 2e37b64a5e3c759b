//! Tag lists, the catalog and the referrers API, all paginated in byte order.

use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, MediaType, RepoName};
use crate::meta::PageQuery;

/// One page of a sorted listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub more: bool,
}

/// An entry of the referrers listing.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations (a JSON object).
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Asks for one item more than the page holds, to learn whether another page follows.
fn over_fetch(limit: Option<u32>) -> u32 {
    limit.map_or(u32::MAX, |n| n.saturating_add(1))
}

fn page<T>(mut items: Vec<T>, limit: Option<u32>) -> Page<T> {
    let more = limit.is_some_and(|n| items.len() > n as usize);
    if let Some(n) = limit {
        items.truncate(n as usize);
    }
    Page { items, more }
}

impl Registry {
    /// Tags of `repo` after `last`, at most `limit` (all when `None`).
    #[tracing::instrument(skip(self))]
    pub async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> RegistryResult<Page<String>> {
        let query = PageQuery {
            last,
            limit: over_fetch(limit),
        };
        match self.meta.tags(repo, query).await? {
            Some(tags) => Ok(page(tags, limit)),
            None => Err(RegistryError::NameUnknown(repo.clone())),
        }
    }

    /// Repository names after `last`, at most `limit` (all when `None`).
    #[tracing::instrument(skip(self))]
    pub async fn catalog(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> RegistryResult<Page<String>> {
        let query = PageQuery {
            last,
            limit: over_fetch(limit),
        };
        Ok(page(self.meta.repositories(query).await?, limit))
    }

    /// Like [`Registry::catalog`], listing only repositories that are public or for which
    /// `readable` holds. Scans the catalog in chunks until the page is full, so a caller who
    /// may read little of a large hub costs more than one query, never more memory.
    #[tracing::instrument(skip(self, readable))]
    pub async fn catalog_readable(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
        readable: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> RegistryResult<Page<String>> {
        const CHUNK: u32 = 500;
        let want = usize::try_from(over_fetch(limit)).unwrap_or(usize::MAX);
        let mut cursor = last.unwrap_or("").to_owned();
        let mut items = Vec::new();
        loop {
            let chunk = self
                .meta
                .repositories(PageQuery {
                    last: Some(&cursor),
                    limit: CHUNK,
                })
                .await?;
            let Some(end) = chunk.last().cloned() else {
                break;
            };
            let public = self.meta.public_between(&cursor, Some(&end)).await?;
            for name in chunk.iter() {
                if readable(name) || public.binary_search(name).is_ok() {
                    items.push(name.clone());
                    if items.len() >= want {
                        return Ok(page(items, limit));
                    }
                }
            }
            if chunk.len() < CHUNK as usize {
                break;
            }
            cursor = end;
        }
        Ok(page(items, limit))
    }

    /// Manifests of `repo` whose subject is `subject`, one page after `last`.
    #[tracing::instrument(skip(self))]
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&MediaType>,
        last: Option<&str>,
    ) -> RegistryResult<Page<Referrer>> {
        let limit = Some(self.limits.referrers_page_size.max(1));
        let query = PageQuery {
            last,
            limit: over_fetch(limit),
        };
        let rows = self
            .meta
            .referrers(repo, subject, artifact_type, query)
            .await?;
        let items = rows
            .into_iter()
            .map(|r| Referrer {
                digest: r.digest,
                media_type: r.media_type,
                size: r.size,
                artifact_type: r.artifact_type,
                // Stored by us as a JSON object; anything else is dropped rather than served.
                annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
            })
            .collect();
        Ok(page(items, limit))
    }
}
