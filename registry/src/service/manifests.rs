//! Pushing, reading and deleting manifests and tags.

use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, ParsedManifest, Reference, RepoName, Tag};
use crate::meta::events::{Action, HookEvent, Origin};
use crate::meta::{NewManifest, PutManifestError};

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its exact bytes (may be empty for a metadata-only read).
    pub content: bytes::Bytes,
}

/// The outcome of a manifest push.
#[derive(Debug, Clone)]
pub struct ManifestPushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its subject, which the response must echo in `OCI-Subject`.
    pub subject: Option<Digest>,
    /// The tags now pointing at it.
    pub tags: Vec<Tag>,
}

/// Who stores a manifest.
pub(crate) enum Writer<'a> {
    /// A client's push.
    Client(&'a Origin),
    /// A pull-through cache filling itself from its upstream: what the manifest references
    /// need not be stored yet (it is fetched when first asked for).
    Mirror,
}

impl Registry {
    /// Stores a manifest under `reference` (a tag, or the digest it must have) and any extra
    /// `tags`, after validating it and checking that everything it references is present.
    #[tracing::instrument(skip(self, content))]
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        content: bytes::Bytes,
        extra_tags: Vec<Tag>,
        by: &Origin,
    ) -> RegistryResult<ManifestPushed> {
        self.mirrors.refuse_push(repo)?;
        let tagging = matches!(reference, Reference::Tag(_)) || !extra_tags.is_empty();
        if tagging {
            self.admit_tag_push(repo, &content, by).await?;
        }
        let pushed = self
            .store_manifest(
                repo,
                reference,
                content_type,
                content,
                extra_tags,
                Writer::Client(by),
            )
            .await;
        // A signature may have come or moved (cosign's tag): admissions are checked afresh.
        self.admissions.forget_repository(repo);
        pushed
    }

    /// Validates and stores a manifest, as [`Registry::put_manifest`] describes; from a
    /// [`Writer::Mirror`], what it references need not be stored yet.
    pub(super) async fn store_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        content: bytes::Bytes,
        extra_tags: Vec<Tag>,
        writer: Writer<'_>,
    ) -> RegistryResult<ManifestPushed> {
        let client = matches!(writer, Writer::Client(_));
        let (by, references_on_demand) = match writer {
            Writer::Client(by) => (by.clone(), false),
            Writer::Mirror => (Origin::system("proxy"), true),
        };
        let by = &by;
        let limit = self.limits.max_manifest_bytes;
        if content.len() as u64 > limit {
            return Err(RegistryError::ManifestTooLarge { limit });
        }
        let parsed = ParsedManifest::parse(&content, content_type)?;
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = Digest::compute(expected.algorithm(), &content);
                if &actual != expected {
                    return Err(RegistryError::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&content),
        };
        let mut tags = extra_tags;
        if let Reference::Tag(t) = reference {
            tags.push(t.clone());
        }
        tags.sort();
        tags.dedup();
        let subject = parsed.subject.clone();
        let rules = if tags.is_empty() {
            super::immutable::ImmutableTags::default()
        } else {
            self.immutable_in(repo).await?
        };
        // Pull-through caches are not inventoried: their layers arrive when first pulled.
        let scan =
            self.limits.scan.enabled && client && super::scanner::is_image(&parsed, &content);
        let immutable: Vec<Tag> = tags
            .iter()
            .filter(|t| rules.rule_for(repo, t).is_some())
            .cloned()
            .collect();
        let mut event = self.event(Action::ManifestPush, by, repo, Some(HookEvent::Push));
        event.tag = tags.first().map(ToString::to_string);
        if tags.len() > 1 {
            event.detail =
                Some(serde_json::json!({"tags": tags.iter().map(Tag::as_str).collect::<Vec<_>>()}));
        }
        event.digest = Some(digest.to_string());
        event.media_type = Some(parsed.media_type.as_str().to_owned());
        event.size = Some(content.len() as u64);
        let stored = self
            .meta
            .put_manifest(NewManifest {
                repository: repo.clone(),
                digest: digest.clone(),
                content,
                parsed,
                tags: tags.clone(),
                immutable,
                event,
                references_on_demand,
                scan,
            })
            .await;
        match stored {
            Ok(()) => Ok(ManifestPushed {
                digest,
                subject,
                tags,
            }),
            Err(PutManifestError::Missing(digests)) => {
                Err(RegistryError::ManifestBlobUnknown(digests))
            }
            Err(PutManifestError::SizeMismatch {
                digest,
                declared,
                actual,
            }) => Err(RegistryError::ManifestSizeMismatch {
                digest,
                declared,
                actual,
            }),
            Err(PutManifestError::TagImmutable(tag)) => Err(RegistryError::Denied(format!(
                "{repo}:{tag} already exists and cannot be overwritten ({})",
                rules.rule_for(repo, &tag).unwrap_or_default()
            ))),
            Err(PutManifestError::Meta(e)) => Err(e.into()),
        }
    }

    /// Reads a manifest by tag or digest; `content = false` skips its bytes (for `HEAD`).
    #[tracing::instrument(skip(self))]
    pub async fn manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
    ) -> RegistryResult<StoredManifest> {
        match self.meta.manifest(repo, reference, content).await? {
            Some(m) => {
                self.note_pull(repo, reference);
                Ok(StoredManifest {
                    digest: m.digest,
                    media_type: m.media_type,
                    size: m.size,
                    content: m.content,
                })
            }
            None => Err(self.not_found(repo, RegistryError::ManifestUnknown).await),
        }
    }

    /// Deletes a manifest (by digest: the manifest and every tag on it) or a tag (by tag:
    /// only the tag).
    #[tracing::instrument(skip(self))]
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        by: &Origin,
    ) -> RegistryResult<()> {
        let deleted = match reference {
            Reference::Digest(d) => {
                self.refuse_immutable_on(repo, d).await?;
                let mut event =
                    self.event(Action::ManifestDelete, by, repo, Some(HookEvent::Delete));
                event.digest = Some(d.to_string());
                self.meta.delete_manifest(repo, d, &event).await?
            }
            Reference::Tag(t) => {
                if let Some(rule) = self.immutable_in(repo).await?.rule_for(repo, t)
                    && self.meta.manifest(repo, reference, false).await?.is_some()
                {
                    return Err(RegistryError::Denied(format!(
                        "{repo}:{t} cannot be deleted ({rule})"
                    )));
                }
                let mut event = self.event(Action::TagDelete, by, repo, Some(HookEvent::Delete));
                event.tag = Some(t.to_string());
                self.meta.delete_tag(repo, t, &event).await?
            }
        };
        // A signature may have gone: admissions in the repository are checked afresh.
        self.admissions.forget_repository(repo);
        if deleted {
            Ok(())
        } else {
            Err(self.not_found(repo, RegistryError::ManifestUnknown).await)
        }
    }

    /// Refuses to delete manifest `digest` while an immutable tag points at it.
    async fn refuse_immutable_on(&self, repo: &RepoName, digest: &Digest) -> RegistryResult<()> {
        let rules = self.immutable_in(repo).await?;
        if rules.is_empty() {
            return Ok(());
        }
        let digest = digest.to_string();
        for t in self.meta.retention_tags(Some(repo.as_str())).await? {
            if t.repository != repo.as_str() || t.digest != digest {
                continue;
            }
            let Ok(tag) = Tag::parse(&t.tag) else {
                continue;
            };
            if let Some(rule) = rules.rule_for(repo, &tag) {
                return Err(RegistryError::Denied(format!(
                    "{repo}@{digest} cannot be deleted: {repo}:{tag} points at it ({rule})"
                )));
            }
        }
        Ok(())
    }
}
