//! Pull-through caching: namespaces that mirror an upstream registry (`[[proxy.upstream]]`).
//!
//! A pull of `NAMESPACE/REPO` that misses locally fetches `REPO` from the upstream, stores it
//! through the same paths as a push (bytes verified against their digest before anything
//! names them) and serves it; later pulls are local. Tags are asked about again once they
//! are older than the namespace's TTL (a `HEAD` compares digests; only a new manifest is
//! fetched), and while the upstream fails, whatever is cached is served. Cached content is
//! ordinary content: tags, history, garbage collection and the web UI see it like any other.
//!
//! A manifest is stored before the blobs and child manifests it references (those are fetched
//! when a client first asks for them), so cached manifests are recorded with references on
//! demand. Pushes into a mirrored namespace are refused; deletes are allowed (they evict).
//!
//! Depends on `upstream` for the HTTP client and on the rest of `service` for storing.

mod blobs;
mod manifests;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{ProxyConfig, UpstreamConfig};
use crate::domain::{RepoName, Tag};
use crate::telemetry::error_chain;
use crate::upstream::{Credentials, Upstream, UpstreamError, UpstreamSetupError};

use super::RegistryError;

/// Tags whose last upstream check is remembered, per namespace; the oldest are forgotten
/// (and simply checked again on their next pull).
const CHECKED_TAGS: usize = 10_000;

/// Why the configured upstreams could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A `password_file` could not be read.
    #[error("cannot read the password file {path} of upstream {namespace}")]
    PasswordFile {
        /// The namespace of the upstream.
        namespace: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The client could not be built.
    #[error("upstream {namespace}")]
    Setup {
        /// The namespace of the upstream.
        namespace: String,
        /// Why.
        #[source]
        source: UpstreamSetupError,
    },
}

/// One mirrored namespace.
#[derive(Debug)]
pub struct Mirror {
    namespace: String,
    upstream: Upstream,
    /// Upstream repository names admitted; empty admits all.
    repositories: Vec<glob::Pattern>,
    ttl: Duration,
    /// When each cached tag was last found current upstream (or last found the upstream
    /// failing, so a dead upstream costs one timeout per tag and TTL, not one per pull).
    checked: Mutex<lru::LruCache<(RepoName, Tag), Instant>>,
}

impl Mirror {
    fn open(c: &UpstreamConfig) -> Result<Self, MirrorError> {
        let password = if c.password_file.is_empty() {
            c.password.0.clone()
        } else {
            let path = PathBuf::from(&c.password_file);
            let text =
                std::fs::read_to_string(&path).map_err(|source| MirrorError::PasswordFile {
                    namespace: c.namespace.clone(),
                    path,
                    source,
                })?;
            text.lines().next().unwrap_or_default().to_owned()
        };
        let credentials = (!c.username.is_empty()).then(|| Credentials {
            username: c.username.clone(),
            password,
        });
        let upstream = Upstream::new(
            &c.url,
            credentials,
            Duration::from_secs(c.timeout_secs.max(1)),
        )
        .map_err(|source| MirrorError::Setup {
            namespace: c.namespace.clone(),
            source,
        })?;
        Ok(Self {
            namespace: c.namespace.clone(),
            upstream,
            // Validated with the configuration; an invalid pattern could only admit nothing.
            repositories: c
                .repositories
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            ttl: Duration::from_secs(c.manifest_ttl_secs),
            checked: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(CHECKED_TAGS).unwrap_or(NonZeroUsize::MIN),
            )),
        })
    }

    /// Whether the upstream repository `name` may be mirrored. Patterns match like paths:
    /// `*` stays within a component, `**` spans several.
    fn admits(&self, name: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.repositories.is_empty()
            || self
                .repositories
                .iter()
                .any(|p| p.matches_with(name, options))
    }

    /// Whether `tag` of `repo` was checked upstream within the TTL.
    fn is_fresh(&self, repo: &RepoName, tag: &Tag) -> bool {
        let Ok(mut checked) = self.checked.lock() else {
            return false;
        };
        checked
            .get(&(repo.clone(), tag.clone()))
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Records that `tag` of `repo` was just checked upstream.
    fn mark_checked(&self, repo: &RepoName, tag: &Tag) {
        if let Ok(mut checked) = self.checked.lock() {
            checked.put((repo.clone(), tag.clone()), Instant::now());
        }
    }
}

/// Where a pull that misses locally may be answered from.
enum Source<'a> {
    /// Nowhere else: the repository is not in a mirrored namespace.
    Local,
    /// The upstream, under the upstream's repository name.
    Upstream(&'a Mirror, RepoName),
    /// Nowhere: the namespace is mirrored but this repository is not admitted.
    Refused(&'a Mirror),
}

/// The mirrored namespaces (none by default).
#[derive(Debug, Default)]
pub struct Mirrors(Vec<Mirror>);

impl Mirrors {
    /// Sets up a client per configured upstream (reading password files now, so a missing
    /// one stops the start rather than the first pull).
    pub fn open(config: &ProxyConfig) -> Result<Self, MirrorError> {
        config
            .upstream
            .iter()
            .map(Mirror::open)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The mirror whose namespace holds `repo` (the namespace itself included).
    fn covering(&self, repo: &str) -> Option<&Mirror> {
        let namespace = repo.split('/').next().unwrap_or(repo);
        self.0.iter().find(|m| m.namespace == namespace)
    }

    /// Whether `repo` lies in a mirrored namespace, where content arrives on demand.
    pub fn covers(&self, repo: &str) -> bool {
        self.covering(repo).is_some()
    }

    fn source(&self, repo: &RepoName) -> Source<'_> {
        let Some(mirror) = self.covering(repo.as_str()) else {
            return Source::Local;
        };
        let upstream_name = repo
            .as_str()
            .strip_prefix(mirror.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| RepoName::parse(rest).ok());
        match upstream_name {
            Some(name) if mirror.admits(name.as_str()) => Source::Upstream(mirror, name),
            _ => Source::Refused(mirror),
        }
    }

    /// Refuses pushes (and mounts) into a mirrored namespace: its content comes from the
    /// upstream, and a pushed tag would be overwritten by the next revalidation.
    pub(super) fn refuse_push(&self, repo: &RepoName) -> Result<(), RegistryError> {
        match self.covering(repo.as_str()) {
            Some(m) => Err(RegistryError::Denied(format!(
                "{} is a pull-through cache of another registry: pushes are not accepted here",
                m.namespace
            ))),
            None => Ok(()),
        }
    }
}

/// The error for a repository a mirror does not admit.
fn not_admitted(repo: &RepoName, mirror: &Mirror) -> RegistryError {
    RegistryError::Denied(format!(
        "{repo} is not mirrored: the pull-through cache {} admits only some upstream repositories",
        mirror.namespace
    ))
}

/// An upstream failure as the client sees it: `missing` when the upstream has no such
/// content, else a gateway error (the cause is logged, with the upstream's URL).
fn upstream_failure(mirror: &Mirror, e: UpstreamError, missing: RegistryError) -> RegistryError {
    match e {
        UpstreamError::NotFound => missing,
        e => {
            tracing::warn!(upstream = mirror.upstream.url(), error = %error_chain(&e), "upstream request failed");
            RegistryError::Upstream(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirrors(patterns: &[&str]) -> Mirrors {
        let config: ProxyConfig = toml::from_str(&format!(
            "[[upstream]]\nnamespace = \"hub\"\nurl = \"http://127.0.0.1:1\"\nrepositories = {patterns:?}\n\
             [[upstream]]\nnamespace = \"quay\"\nurl = \"https://quay.example\"\n"
        ))
        .unwrap();
        Mirrors::open(&config).unwrap()
    }

    fn source_name(m: &Mirrors, repo: &str) -> Result<Option<String>, ()> {
        match m.source(&RepoName::parse(repo).unwrap()) {
            Source::Local => Ok(None),
            Source::Upstream(_, name) => Ok(Some(name.as_str().to_owned())),
            Source::Refused(_) => Err(()),
        }
    }

    #[test]
    fn maps_local_names_to_upstream_names() {
        let m = mirrors(&[]);
        assert_eq!(
            source_name(&m, "hub/library/busybox"),
            Ok(Some("library/busybox".into()))
        );
        assert_eq!(source_name(&m, "quay/a/b/c"), Ok(Some("a/b/c".into())));
        assert_eq!(source_name(&m, "team/app"), Ok(None));
        // A prefix of the namespace is another namespace.
        assert_eq!(source_name(&m, "hubx/app"), Ok(None));
        // The namespace itself names no upstream repository.
        assert_eq!(source_name(&m, "hub"), Err(()));
        assert!(m.covers("hub") && m.covers("hub/x") && !m.covers("hubx"));
    }

    #[test]
    fn patterns_admit_upstream_repositories_like_paths() {
        let m = mirrors(&["library/*", "org/**"]);
        assert!(source_name(&m, "hub/library/busybox").is_ok());
        assert!(
            source_name(&m, "hub/library/a/b").is_err(),
            "* stays in a component"
        );
        assert!(source_name(&m, "hub/org/a").is_ok());
        assert!(source_name(&m, "hub/org/a/b/c").is_ok());
        assert!(source_name(&m, "hub/other/busybox").is_err());
        // Another namespace has its own (empty: admit all) patterns.
        assert!(source_name(&m, "quay/other/busybox").is_ok());
    }

    #[test]
    fn pushes_into_a_mirrored_namespace_are_denied() {
        let m = mirrors(&[]);
        let denied = m.refuse_push(&RepoName::parse("hub/library/busybox").unwrap());
        assert!(
            matches!(&denied, Err(RegistryError::Denied(msg)) if msg.contains("pull-through cache")),
            "{denied:?}"
        );
        assert!(m.refuse_push(&RepoName::parse("team/app").unwrap()).is_ok());
    }

    #[test]
    fn tags_stay_fresh_for_the_ttl() {
        let mut m = mirrors(&[]);
        let repo = RepoName::parse("hub/library/busybox").unwrap();
        let tag = Tag::parse("latest").unwrap();
        let hub = &mut m.0[0];
        assert!(!hub.is_fresh(&repo, &tag));
        hub.mark_checked(&repo, &tag);
        assert!(hub.is_fresh(&repo, &tag));
        hub.ttl = Duration::ZERO;
        assert!(
            !hub.is_fresh(&repo, &tag),
            "a zero TTL checks on every pull"
        );
    }

    #[test]
    fn a_missing_password_file_stops_the_start() {
        let config: ProxyConfig = toml::from_str(
            "[[upstream]]\nnamespace = \"hub\"\nurl = \"https://h.example\"\n\
             username = \"u\"\npassword_file = \"/nonexistent/berth-password\"\n",
        )
        .unwrap();
        let e = Mirrors::open(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/berth-password"), "{e}");
    }
}
