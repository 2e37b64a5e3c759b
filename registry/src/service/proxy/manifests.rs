//! Manifests through a pull-through cache: by digest, local or fetched once (content never
//! changes); by tag, revalidated upstream after the TTL, the cached copy served while the
//! upstream fails.

use super::{Mirror, Source, not_admitted, upstream_failure};
use crate::domain::{Digest, Reference, RepoName, Tag};
use crate::service::manifests::Writer;
use crate::service::{Registry, RegistryError, RegistryResult, StoredManifest};
use crate::telemetry::error_chain;
use crate::upstream::UpstreamError;

/// Whether a local read found nothing (so an upstream may have it).
fn is_miss<T>(r: &RegistryResult<T>) -> bool {
    matches!(
        r,
        Err(RegistryError::ManifestUnknown | RegistryError::NameUnknown(_))
    )
}

impl Registry {
    /// Reads a manifest for a client's pull: like [`Registry::manifest`], but in a mirrored
    /// namespace a missing manifest, or a tag older than the TTL, is fetched from the upstream
    /// first. When the upstream fails, the cached copy is served (with a warning logged).
    #[tracing::instrument(skip(self))]
    pub async fn pull_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
    ) -> RegistryResult<StoredManifest> {
        let (mirror, name) = match self.mirrors.source(repo) {
            Source::Local => return self.manifest(repo, reference, content).await,
            Source::Refused(mirror) => {
                let local = self.manifest(repo, reference, content).await;
                return if is_miss(&local) {
                    Err(not_admitted(repo, mirror))
                } else {
                    local
                };
            }
            Source::Upstream(mirror, name) => (mirror, name),
        };
        match reference {
            Reference::Digest(_) => {
                let local = self.manifest(repo, reference, content).await;
                if !is_miss(&local) {
                    return local;
                }
                self.fetch_manifest(mirror, &name, repo, reference).await?;
            }
            Reference::Tag(tag) => {
                if mirror.is_fresh(repo, tag) {
                    let local = self.manifest(repo, reference, content).await;
                    if !is_miss(&local) {
                        return local;
                    }
                }
                if let Err(e) = self.revalidate(mirror, &name, repo, tag).await {
                    let cached = self.manifest(repo, reference, content).await;
                    if is_miss(&cached) {
                        return Err(e);
                    }
                    tracing::warn!(
                        repository = %repo,
                        %tag,
                        upstream = mirror.upstream.url(),
                        error = %error_chain(&e),
                        "cannot revalidate a cached tag upstream; serving the cached manifest"
                    );
                    mirror.mark_checked(repo, tag);
                    return cached;
                }
            }
        }
        self.manifest(repo, reference, content).await
    }

    /// Brings `tag` of `repo` up to date with the upstream: a `HEAD` when a copy is cached
    /// (nothing more if the digest is unchanged), else, or when it changed, a fetch.
    async fn revalidate(
        &self,
        mirror: &Mirror,
        name: &RepoName,
        repo: &RepoName,
        tag: &Tag,
    ) -> RegistryResult<()> {
        let reference = Reference::Tag(tag.clone());
        let cached = self.meta.manifest(repo, &reference, false).await?;
        if let Some(cached) = cached {
            let current = mirror
                .upstream
                .manifest_digest(name, &reference)
                .await
                .map_err(|e| upstream_failure(mirror, e, RegistryError::ManifestUnknown))?;
            if current.as_ref() == Some(&cached.digest) {
                mirror.mark_checked(repo, tag);
                return Ok(());
            }
        }
        self.fetch_manifest(mirror, name, repo, &reference).await?;
        mirror.mark_checked(repo, tag);
        Ok(())
    }

    /// Fetches a manifest from the upstream, checks its digest (the one asked for, or the
    /// one the upstream announced) and stores it under `reference`.
    async fn fetch_manifest(
        &self,
        mirror: &Mirror,
        name: &RepoName,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<()> {
        let fetched = mirror
            .upstream
            .manifest(name, reference, self.limits.max_manifest_bytes)
            .await
            .map_err(|e| upstream_failure(mirror, e, RegistryError::ManifestUnknown))?;
        if let Reference::Digest(expected) = reference {
            let actual = Digest::compute(expected.algorithm(), &fetched.content);
            if &actual != expected {
                let e = UpstreamError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                };
                return Err(upstream_failure(mirror, e, RegistryError::ManifestUnknown));
            }
        }
        let stored = self
            .store_manifest(
                repo,
                reference,
                fetched.media_type.as_deref(),
                fetched.content,
                Vec::new(),
                Writer::Mirror,
            )
            .await?;
        tracing::info!(
            repository = %repo,
            %reference,
            digest = %stored.digest,
            upstream = mirror.upstream.url(),
            "cached a manifest from the upstream"
        );
        Ok(())
    }
}
