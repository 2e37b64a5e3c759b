//! What the web UI shows: repository lists filtered by who may read them, tag pages with
//! sizes and platforms, images down to their layers and config, and search.
//!
//! Manifests are read leniently here: they were validated when pushed, and a page should
//! show what it can of an unusual one rather than fail.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::{Page, Referrer, Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, RepoName};
use crate::meta::browse::{RepoSummary, TagHit, TagOrder, TagQuery};
use crate::meta::{ManifestRecord, PageQuery};

/// Decides which private repositories a caller may read (public ones are added by the
/// service).
pub type Readable<'a> = &'a (dyn Fn(&str) -> bool + Send + Sync);

/// Largest image config read for display; bigger configs are linked, not parsed.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A descriptor as the UI shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// Digest (as written in the manifest).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries).
    pub platform: Option<Platform>,
    /// Artifact type.
    pub artifact_type: Option<String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Platform {
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub architecture: String,
    /// CPU variant.
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// BuildKit stores attestations as index entries with platform `unknown/unknown`.
    fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

/// A manifest or index read for display.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManifestView {
    /// Its `mediaType` field.
    pub media_type: Option<String>,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Config (image manifests).
    pub config: Option<Descriptor>,
    /// Layers (image manifests).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    pub subject: Option<Descriptor>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

impl ManifestView {
    fn parse(content: &[u8]) -> Self {
        serde_json::from_slice(content).unwrap_or_default()
    }

    /// Whether this is an index (it lists manifests rather than layers).
    pub fn is_index(&self) -> bool {
        self.config.is_none() && !self.manifests.is_empty()
            || self
                .media_type
                .as_deref()
                .is_some_and(|m| m.contains("index") || m.contains("manifest.list"))
    }

    /// Compressed size of an image: config plus layers.
    pub fn image_size(&self) -> u64 {
        self.config.as_ref().map_or(0, |c| c.size) + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// The platforms an index offers, attestations left out.
    pub fn platforms(&self) -> Vec<Platform> {
        self.manifests
            .iter()
            .filter_map(|m| m.platform.clone())
            .filter(|p| !p.is_unknown())
            .collect()
    }
}

/// Platforms of image configs by config digest, so a tag page reads each config once per
/// process: configs are content-addressed and never change, so entries never go stale.
pub struct PlatformCache(std::sync::Mutex<lru::LruCache<Digest, Option<Platform>>>);

impl Default for PlatformCache {
    fn default() -> Self {
        Self(std::sync::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(16_384).unwrap_or(std::num::NonZeroUsize::MIN),
        )))
    }
}

impl PlatformCache {
    fn get(&self, digest: &Digest) -> Option<Option<Platform>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    fn put(&self, digest: Digest, platform: Option<Platform>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(digest, platform);
    }
}

/// A tag as the repository page lists it.
#[derive(Debug, Clone)]
pub struct TagView {
    /// Tag name.
    pub name: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// Whether it is an index.
    pub index: bool,
    /// Compressed size: of the image, or the smallest and largest platform of an index.
    pub size: (u64, u64),
    /// Platforms of an index, or the one of an image (when its config says).
    pub platforms: Vec<Platform>,
    /// When the tag was pushed or last moved (Unix ms).
    pub pushed_at: i64,
}

/// A page of tags and how many match in all.
#[derive(Debug, Clone)]
pub struct TagList {
    /// Tags matching the filter.
    pub total: u64,
    /// This page.
    pub tags: Vec<TagView>,
}

/// An image's config as the image page shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConfigView {
    /// Creation time as written by the builder.
    pub created: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Architecture.
    pub architecture: Option<String>,
    /// CPU variant.
    pub variant: Option<String>,
    /// The run configuration.
    pub config: RunConfig,
    /// Build history.
    pub history: Vec<History>,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Default command.
    pub cmd: Option<Vec<String>>,
    /// Environment.
    pub env: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Exposed ports.
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Stop signal.
    pub stop_signal: Option<String>,
}

/// One history entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct History {
    /// When.
    pub created: Option<String>,
    /// The build step.
    pub created_by: Option<String>,
    /// A comment.
    pub comment: Option<String>,
    /// Whether the step left no layer.
    pub empty_layer: bool,
}

/// An index entry with the size of the image it points at.
#[derive(Debug, Clone)]
pub struct ChildView {
    /// The entry.
    pub descriptor: Descriptor,
    /// Compressed size of the image, when the child is stored here.
    pub image_size: Option<u64>,
}

/// Everything the image page shows.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// The manifest's digest.
    pub digest: Digest,
    /// Media type it is served with.
    pub media_type: String,
    /// Size of the manifest itself.
    pub manifest_size: u64,
    /// When it was first pushed (Unix ms).
    pub pushed_at: i64,
    /// Tags pointing at it.
    pub tags: Vec<String>,
    /// Indexes listing it.
    pub parents: Vec<Digest>,
    /// The parsed manifest.
    pub manifest: ManifestView,
    /// For an index: its entries.
    pub children: Vec<ChildView>,
    /// For an image: its config, when small enough and readable.
    pub config: Option<ConfigView>,
    /// Referrers (signatures, SBOMs, attestations), first page.
    pub referrers: Page<Referrer>,
    /// The manifest as stored, pretty-printed when it is JSON.
    pub raw: String,
}

/// Whether a config descriptor is an image config small enough to read for display
/// (artifacts carry other configs, often the empty one).
fn is_image_config(c: &Descriptor) -> bool {
    c.size <= MAX_CONFIG_BYTES
        && (c.media_type.contains("image.config") || c.media_type.contains("container.image"))
}

/// A search result page.
#[derive(Debug, Clone, Default)]
pub struct SearchResults {
    /// Matching repositories (readable ones).
    pub repositories: Vec<String>,
    /// Matching tags of readable repositories.
    pub tags: Vec<TagHit>,
    /// Whether more repositories matched than shown.
    pub more_repositories: bool,
    /// Whether more tags matched than shown.
    pub more_tags: bool,
}

impl Registry {
    /// Up to `limit` readable repositories by most recent tag push.
    pub async fn recent_repositories(
        &self,
        limit: usize,
        readable: Readable<'_>,
    ) -> RegistryResult<Vec<RepoSummary>> {
        // Walks pushes newest first; a hub where the caller may read little is scanned for a
        // bounded number of pushes rather than to the end.
        const CHUNK: u32 = 500;
        const MAX_CHUNKS: usize = 20;
        let mut seen = HashSet::new();
        let mut names = Vec::new();
        let mut before = i64::MAX;
        for _ in 0..MAX_CHUNKS {
            let pushes = self.meta.tag_pushes_before(before, CHUNK).await?;
            let Some(&(_, last)) = pushes.last() else {
                break;
            };
            let fresh: Vec<String> = pushes
                .iter()
                .filter(|(name, _)| seen.insert(name.clone()))
                .map(|(name, _)| name.clone())
                .collect();
            names.extend(self.readable_among(fresh, readable).await?);
            if names.len() >= limit || pushes.len() < CHUNK as usize {
                break;
            }
            // The next chunk starts strictly before this one's last millisecond: pushes of that
            // same millisecond that did not fit are skipped. At worst a repository pushed in
            // that very millisecond (among more than a chunk of pushes) misses this list.
            before = last;
        }
        names.truncate(limit);
        let mut summaries = self.meta.repository_summaries(&names).await?;
        summaries.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then(a.name.cmp(&b.name)));
        Ok(summaries)
    }

    async fn may_read(&self, name: &str, readable: Readable<'_>) -> RegistryResult<bool> {
        Ok(readable(name) || self.meta.is_public(name).await?)
    }

    /// The names among `names` the caller may read, in the same order; the public status of
    /// the others is looked up in one query.
    async fn readable_among(
        &self,
        names: Vec<String>,
        readable: Readable<'_>,
    ) -> RegistryResult<Vec<String>> {
        let unknown: Vec<String> = names.iter().filter(|n| !readable(n)).cloned().collect();
        let public = if unknown.is_empty() {
            Vec::new()
        } else {
            self.meta.public_among(&unknown).await?
        };
        Ok(names
            .into_iter()
            .filter(|n| readable(n) || public.binary_search(n).is_ok())
            .collect())
    }

    /// Whether `repo` exists and the caller may read it (so pages can answer 404 for both).
    pub async fn readable_repository(
        &self,
        repo: &RepoName,
        readable: Readable<'_>,
    ) -> RegistryResult<bool> {
        Ok(self.may_read(repo.as_str(), readable).await?
            && self.meta.repository_exists(repo).await?)
    }

    /// A page of readable repositories in name order after `last`, with summaries; only
    /// those named `prefix` or under `prefix/` when a prefix is given.
    pub async fn repository_page(
        &self,
        prefix: Option<&str>,
        last: Option<&str>,
        limit: u32,
        readable: Readable<'_>,
    ) -> RegistryResult<Page<RepoSummary>> {
        let mut names = Vec::new();
        let start;
        let mut cursor = match (prefix, last) {
            (_, Some(last)) => last,
            (Some(p), None) => {
                // The repository named exactly like the namespace sorts before `p/...`.
                if let Ok(name) = RepoName::parse(p)
                    && self.readable_repository(&name, readable).await?
                {
                    names.push(p.to_owned());
                }
                start = format!("{p}/");
                &start
            }
            (None, None) => "",
        };
        let under = prefix.map(|p| format!("{p}/"));
        let want = limit as usize + 1;
        let mut owned_cursor;
        'scan: loop {
            const CHUNK: u32 = 500;
            let chunk = self
                .meta
                .repositories(PageQuery {
                    last: Some(cursor),
                    limit: CHUNK,
                })
                .await?;
            let Some(end) = chunk.last().cloned() else {
                break;
            };
            let public = self.meta.public_between(cursor, Some(&end)).await?;
            for name in &chunk {
                if under
                    .as_ref()
                    .is_some_and(|u| !name.starts_with(u.as_str()))
                {
                    break 'scan;
                }
                if readable(name) || public.binary_search(name).is_ok() {
                    names.push(name.clone());
                    if names.len() >= want {
                        break 'scan;
                    }
                }
            }
            if chunk.len() < CHUNK as usize {
                break;
            }
            owned_cursor = end;
            cursor = &owned_cursor;
        }
        let more = names.len() > limit as usize;
        names.truncate(limit as usize);
        let items = self.meta.repository_summaries(&names).await?;
        Ok(Page { items, more })
    }

    /// A page of `repo`'s tags, filtered by a case-insensitive substring, with each tag's
    /// size and platforms.
    pub async fn tag_list(
        &self,
        repo: &RepoName,
        contains: &str,
        order: TagOrder,
        offset: u64,
        limit: u32,
    ) -> RegistryResult<TagList> {
        let contains = contains.to_lowercase();
        let query = TagQuery {
            contains: &contains,
            order,
            offset,
            limit,
        };
        let Some(page) = self.meta.tag_page(repo, query).await? else {
            return Err(RegistryError::NameUnknown(repo.clone()));
        };
        let views: Vec<(ManifestView, _)> = page
            .rows
            .into_iter()
            .map(|row| (ManifestView::parse(&row.manifest.content), row))
            .collect();
        // One query for every child manifest of every index on the page.
        let children: Vec<Digest> = views
            .iter()
            .filter(|(v, _)| v.is_index())
            .flat_map(|(v, _)| v.manifests.iter().filter_map(|m| m.digest.parse().ok()))
            .collect::<HashSet<Digest>>()
            .into_iter()
            .collect();
        let sizes = self.image_sizes(repo, &children).await?;
        let configs: Vec<Descriptor> = views
            .iter()
            .filter(|(v, _)| !v.is_index())
            .filter_map(|(v, _)| v.config.clone())
            .collect();
        let image_platforms = self.config_platforms(repo, &configs).await;
        let tags = views
            .into_iter()
            .map(|(view, row)| {
                let index = view.is_index();
                let size = if index {
                    let per_platform: Vec<u64> = view
                        .manifests
                        .iter()
                        .filter(|m| !m.platform.as_ref().is_some_and(Platform::is_unknown))
                        .filter_map(|m| sizes.get(&m.digest).copied())
                        .collect();
                    (
                        per_platform.iter().copied().min().unwrap_or(0),
                        per_platform.iter().copied().max().unwrap_or(0),
                    )
                } else {
                    let s = view.image_size();
                    (s, s)
                };
                TagView {
                    name: row.name,
                    digest: row.manifest.digest,
                    media_type: row.manifest.media_type,
                    index,
                    size,
                    platforms: if index {
                        view.platforms()
                    } else {
                        view.config
                            .as_ref()
                            .and_then(|c| image_platforms.get(&c.digest).cloned().flatten())
                            .into_iter()
                            .collect()
                    },
                    pushed_at: row.pushed_at,
                }
            })
            .collect();
        Ok(TagList {
            total: page.total,
            tags,
        })
    }

    /// The platform each image config names (`None` for configs that are not image configs
    /// or cannot be read), by digest string; read concurrently and cached.
    async fn config_platforms(
        &self,
        repo: &RepoName,
        configs: &[Descriptor],
    ) -> HashMap<String, Option<Platform>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for c in configs {
            let Ok(digest) = c.digest.parse::<Digest>() else {
                continue;
            };
            match self.platforms.get(&digest) {
                Some(p) => {
                    found.insert(c.digest.clone(), p);
                }
                None if is_image_config(c) => missing.push((digest, c.clone())),
                None => {
                    found.insert(c.digest.clone(), None);
                }
            }
        }
        missing.sort_by_key(|m| m.0.to_string());
        missing.dedup_by(|a, b| a.0 == b.0);
        let read: Vec<(Digest, Option<Platform>)> = futures_util::stream::iter(missing)
            .map(|(digest, c)| async move {
                let platform = self.read_config(repo, &c).await.and_then(|cfg| {
                    Some(Platform {
                        os: cfg.os?,
                        architecture: cfg.architecture?,
                        variant: cfg.variant,
                    })
                });
                (digest, platform)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (digest, platform) in read {
            self.platforms.put(digest.clone(), platform.clone());
            found.insert(digest.to_string(), platform);
        }
        found
    }

    /// Compressed image sizes of the given manifests of `repo`, by digest string.
    async fn image_sizes(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> RegistryResult<HashMap<String, u64>> {
        let mut sizes = HashMap::new();
        for chunk in digests.chunks(200) {
            for record in self.meta.manifests_in(repo, chunk).await? {
                let view = ManifestView::parse(&record.content);
                sizes.insert(record.digest.to_string(), view.image_size());
            }
        }
        Ok(sizes)
    }

    /// Everything about one manifest of `repo`.
    pub async fn image(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<ImageView> {
        let Some(detail) = self.meta.manifest_detail(repo, digest).await? else {
            return Err(self.not_found(repo, RegistryError::ManifestUnknown).await);
        };
        let ManifestRecord {
            digest,
            media_type,
            content,
            size,
        } = detail.record;
        let manifest = ManifestView::parse(&content);
        let mut children = Vec::new();
        if manifest.is_index() {
            let digests: Vec<Digest> = manifest
                .manifests
                .iter()
                .filter_map(|m| m.digest.parse().ok())
                .collect();
            let sizes = self.image_sizes(repo, &digests).await?;
            children = manifest
                .manifests
                .iter()
                .map(|d| ChildView {
                    descriptor: d.clone(),
                    image_size: sizes.get(&d.digest).copied(),
                })
                .collect();
        }
        let config = match &manifest.config {
            Some(c)
                if c.size <= MAX_CONFIG_BYTES
                    && (c.media_type.contains("image.config")
                        || c.media_type.contains("container.image")) =>
            {
                self.read_config(repo, c).await
            }
            _ => None,
        };
        let referrers = self.referrers(repo, &digest, None, None).await?;
        let raw = match serde_json::from_slice::<serde_json::Value>(&content) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(&content).into_owned(),
        };
        Ok(ImageView {
            digest,
            media_type,
            manifest_size: size,
            pushed_at: detail.pushed_at,
            tags: detail.tags,
            parents: detail.parents,
            manifest,
            children,
            config,
            referrers,
            raw,
        })
    }

    /// Reads and parses an image config; `None` (logged) when it cannot be had.
    async fn read_config(&self, repo: &RepoName, config: &Descriptor) -> Option<ConfigView> {
        let digest: Digest = config.digest.parse().ok()?;
        let read = match self.read_blob(repo, &digest, None).await {
            Ok(content) if content.size <= MAX_CONFIG_BYTES => content.read,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "image config unreadable for display");
                return None;
            }
        };
        let bytes: Vec<u8> = read
            .stream
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Repositories and tags whose names contain `query` (case-insensitive), among those the
    /// caller may read; at most `limit` of each.
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
        readable: Readable<'_>,
    ) -> RegistryResult<SearchResults> {
        const CHUNK: u32 = 200;
        const MAX_CHUNKS: usize = 10;
        let q = query.to_lowercase();
        let mut out = SearchResults::default();
        let mut after = String::new();
        for _ in 0..MAX_CHUNKS {
            let names = self.meta.search_repositories(&q, &after, CHUNK).await?;
            for name in self.readable_among(names.clone(), readable).await? {
                if out.repositories.len() == limit {
                    out.more_repositories = true;
                    break;
                }
                out.repositories.push(name);
            }
            match names.last() {
                Some(last) if names.len() == CHUNK as usize && !out.more_repositories => {
                    after = last.clone();
                }
                _ => break,
            }
        }
        let mut after = (String::new(), String::new());
        let mut verdicts: HashMap<String, bool> = HashMap::new();
        for _ in 0..MAX_CHUNKS {
            let hits = self
                .meta
                .search_tags(&q, (&after.0, &after.1), CHUNK)
                .await?;
            let unjudged: Vec<String> = hits
                .iter()
                .map(|h| h.repository.clone())
                .filter(|r| !verdicts.contains_key(r))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let allowed = self.readable_among(unjudged.clone(), readable).await?;
            for r in unjudged {
                let ok = allowed.binary_search(&r).is_ok();
                verdicts.insert(r, ok);
            }
            for hit in &hits {
                if verdicts.get(&hit.repository) == Some(&true) {
                    if out.tags.len() == limit {
                        out.more_tags = true;
                        break;
                    }
                    out.tags.push(hit.clone());
                }
            }
            match hits.last() {
                Some(last) if hits.len() == CHUNK as usize && !out.more_tags => {
                    after = (last.repository.clone(), last.tag.clone());
                }
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_list_platforms_without_attestations() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,
               "platform":{"os":"linux","architecture":"arm","variant":"v7"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,
               "platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let v = ManifestView::parse(index);
        assert!(v.is_index());
        let p: Vec<String> = v.platforms().iter().map(ToString::to_string).collect();
        assert_eq!(p, ["linux/arm/v7"]);
    }

    #[test]
    fn image_size_is_config_plus_layers() {
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:aa","size":10},
            "layers":[{"mediaType":"y","digest":"sha256:bb","size":100},{"mediaType":"y","digest":"sha256:cc","size":5}]}"#;
        let v = ManifestView::parse(image);
        assert!(!v.is_index());
        assert_eq!(v.image_size(), 115);
        // Garbage shows as an empty manifest rather than an error.
        assert_eq!(ManifestView::parse(b"not json").image_size(), 0);
    }
}
