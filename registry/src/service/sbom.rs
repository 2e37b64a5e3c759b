//! berth's SBOM of an image as an OCI 1.1 referrer, and the stored inventory as the JSON API
//! shows it.
//!
//! The SBOM is an artifact manifest (image-spec 1.1 "Guidelines for Artifact Usage": empty
//! config, `artifactType` the document's media type, one layer holding the document) whose
//! `subject` is the image, stored through the normal blob and manifest path, so the referrers
//! API, `oras discover`, replication, quotas and garbage collection (a referrer lives as long as
//! its subject) treat it like any pushed referrer. Its annotation `dev.berth.sbom.generator =
//! berth` marks it as berth's: a new scan replaces berth's earlier SBOMs of the image, and
//! never touches SBOMs a client pushed.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::json;

use super::manifests::Writer;
use super::{Registry, RegistryError, RegistryResult};
use crate::domain::{Digest, MediaType, OCI_MANIFEST, Reference, RepoName};
use crate::meta::events::Origin;
use crate::meta::scans::ScanRecord;
use crate::meta::{ManifestRecord, PageQuery};

/// The annotation that marks berth's own SBOM referrers.
pub const GENERATOR_ANNOTATION: &str = "dev.berth.sbom.generator";

/// The OCI empty descriptor's media type and content (image-spec 1.1, manifest.md).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONTENT: &[u8] = b"{}";

/// Who stores berth's SBOMs, as the audit log and webhooks see it.
fn scanner() -> Origin {
    Origin::system("scanner")
}

/// Why berth's SBOM could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The image cannot be named in a document.
    #[error("the image cannot be named in an SBOM")]
    Subject(#[from] berth_scan::sbom::SbomError),
    /// Storing the referrer failed (a quota, storage).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A manifest's inventory, as the JSON API shows it.
#[derive(Debug, Clone)]
pub struct ManifestSbom {
    /// The manifest's digest (the reference resolved).
    pub digest: Digest,
    /// Its job and inventory, if it was queued for one.
    pub scan: Option<ScanRecord>,
    /// Its findings' last match, if it was matched.
    pub matched: Option<crate::meta::findings::MatchRecord>,
}

impl Registry {
    /// Pushes the SBOM of `inventory` as a referrer of `subject` in `repo` and removes berth's
    /// earlier SBOMs of it; returns the referrer's digest.
    pub(super) async fn attach_sbom(
        &self,
        repo: &RepoName,
        subject: &Digest,
        manifest: &ManifestRecord,
        inventory: &berth_scan::inventory::Inventory,
    ) -> Result<Digest, AttachError> {
        let format = self.limits.scan.format;
        let about =
            berth_scan::sbom::Subject::new(repo.as_str(), subject.to_string(), SystemTime::now())?;
        let document = format.document(inventory, &about).to_string().into_bytes();
        let by = scanner();
        let document_digest = Digest::sha256_of(&document);
        let empty_digest = Digest::sha256_of(EMPTY_CONTENT);
        self.store_blob(repo, &empty_digest, one_chunk(EMPTY_CONTENT.to_vec()))
            .await?;
        self.store_blob(repo, &document_digest, one_chunk(document.clone()))
            .await?;
        let mut annotations = BTreeMap::new();
        annotations.insert("org.opencontainers.image.created", about.created());
        annotations.insert(GENERATOR_ANNOTATION, "berth".to_owned());
        let referrer = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": format.media_type(),
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty_digest.to_string(), "size": EMPTY_CONTENT.len()},
            "layers": [{"mediaType": format.media_type(), "digest": document_digest.to_string(), "size": document.len()}],
            "subject": {"mediaType": manifest.media_type, "digest": subject.to_string(), "size": manifest.size},
            "annotations": annotations,
        });
        let bytes = bytes::Bytes::from(referrer.to_string().into_bytes());
        let digest = Digest::sha256_of(&bytes);
        self.store_manifest(
            repo,
            &Reference::Digest(digest.clone()),
            Some(OCI_MANIFEST),
            bytes,
            Vec::new(),
            Writer::Client(&by),
        )
        .await?;
        self.remove_earlier_sboms(repo, subject, &digest, &by)
            .await?;
        Ok(digest)
    }

    /// Deletes berth's SBOM referrers of `subject` other than `keep`.
    async fn remove_earlier_sboms(
        &self,
        repo: &RepoName,
        subject: &Digest,
        keep: &Digest,
        by: &Origin,
    ) -> RegistryResult<()> {
        let artifact_type = MediaType::parse(self.limits.scan.format.media_type());
        let mut last: Option<String> = None;
        loop {
            let page = self
                .meta
                .referrers(
                    repo,
                    subject,
                    artifact_type.as_ref(),
                    PageQuery {
                        last: last.as_deref(),
                        limit: 100,
                    },
                )
                .await?;
            let Some(end) = page.last() else { break };
            last = Some(end.digest.to_string());
            for r in &page {
                let ours = r
                    .annotations
                    .as_deref()
                    .and_then(|a| serde_json::from_str::<BTreeMap<String, String>>(a).ok())
                    .is_some_and(|a| a.get(GENERATOR_ANNOTATION).is_some_and(|g| g == "berth"));
                if ours && &r.digest != keep {
                    self.delete_manifest(repo, &Reference::Digest(r.digest.clone()), by)
                        .await?;
                }
            }
            if page.len() < 100 {
                break;
            }
        }
        Ok(())
    }

    /// Inventory jobs by status.
    pub async fn scan_counts(&self) -> RegistryResult<crate::meta::scans::ScanCounts> {
        Ok(self.meta.scan_counts().await?)
    }

    /// The inventory of the manifest `reference` names in `repo`.
    #[tracing::instrument(skip(self))]
    pub async fn sbom_of(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<ManifestSbom> {
        let Some(manifest) = self.meta.manifest(repo, reference, false).await? else {
            return Err(self.not_found(repo, RegistryError::ManifestUnknown).await);
        };
        let scan = self
            .meta
            .scan_of(repo.as_str(), &manifest.digest.to_string())
            .await?;
        let matched = match &scan {
            Some(_) => self.match_of(repo, &manifest.digest).await?,
            None => None,
        };
        Ok(ManifestSbom {
            digest: manifest.digest,
            scan,
            matched,
        })
    }
}

/// `bytes` as a request body.
fn one_chunk(bytes: Vec<u8>) -> super::ByteStream {
    Box::pin(futures_util::stream::once(async move {
        Ok(bytes::Bytes::from(bytes))
    }))
}
