//! Signature checks: what the `[[trust.policy]]` covering a repository says about a manifest,
//! and refusing pulls an enforcing policy forbids.
//!
//! Signatures are found as cosign writes them (see [`berth_trust::cosign`]): referrers of the
//! manifest with cosign's signature artifact type, and the manifest tagged `sha256-<hex>.sig`;
//! and, where the policy has a notation trust store, as notation writes them (see
//! [`berth_trust::notation`]): referrers with notation's artifact type, JWS or COSE envelopes.
//! notation certificates and signatures expire, so a verdict reached with notation signatures
//! is reached again after [`NOTATION_RECHECK_SECS`].
//! The verdict is cached in SQL per manifest and key set, together with the signatures it was
//! reached with; a pull reads two rows and verifies nothing unless a key or a signature
//! changed since (see migrations/*/0016_trust.sql).
//!
//! What an enforcing policy refuses: pulls of container images (manifests with filesystem
//! layers) and indexes that no trusted key signed. A platform manifest pulled by digest passes
//! when an index of the repository that lists it is verified, since signing the index is how
//! multi-platform images are signed. Artifacts (signatures, SBOMs, attestations, charts) are
//! not refused: clients must fetch signatures to check them, and none of them runs. Blobs are
//! not refused either: without a manifest nobody can run them.

use std::sync::Arc;

use berth_trust::cosign::{MAX_PAYLOAD_BYTES, SIGNATURE_ARTIFACT_TYPE};
use berth_trust::notation::{self, NotationSignature, NotationVerdict};
use berth_trust::{CosignSignature, Mode, Policies, Policy, Verdict, cosign_signature_tag};
use futures_util::TryStreamExt as _;
use serde::Serialize;

use super::{Registry, RegistryError, RegistryResult, StoredManifest};
use crate::domain::{Digest, Reference, RepoName};
use crate::meta::events::Origin;
use crate::meta::now_ms;
use crate::meta::trust::StoredVerdict;

/// Signature manifests looked at per manifest: more is an attack, not a team's practice.
const MAX_SIGNATURE_MANIFESTS: u32 = 16;
/// Indexes looked at when a platform manifest is pulled by digest.
const MAX_PARENTS: u32 = 8;
/// How long a verdict reached with notation signatures is reused: their certificates must be
/// valid at verification time, and their expiry passes.
pub const NOTATION_RECHECK_SECS: u64 = 3600;

/// The registry's trust policies.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicies(Arc<Policies>);

impl TrustPolicies {
    /// Policies read from `[[trust.policy]]`.
    pub fn new(policies: Policies) -> Self {
        Self(Arc::new(policies))
    }

    /// The policy covering `repo`.
    pub fn for_repository(&self, repo: &RepoName) -> Option<&Policy> {
        self.0.for_name(repo.as_str())
    }
}

/// A manifest's standing under its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Signed by a key the policy trusts.
    Verified,
    /// No signature at all.
    Unsigned,
    /// Signed, but by no key the policy trusts (or altered).
    Untrusted,
    /// A trusted key's signature that is broken or meant for another manifest.
    Invalid,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::Unsigned => "unsigned",
            Status::Untrusted => "untrusted",
            Status::Invalid => "invalid",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "verified" => Status::Verified,
            "unsigned" => Status::Unsigned,
            "untrusted" => Status::Untrusted,
            // Anything unreadable is no vouching.
            _ => Status::Invalid,
        }
    }
}

/// What the policy covering a repository says about one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustStatus {
    /// The policy's scope.
    pub policy: String,
    /// `audit` or `enforce`.
    pub mode: Mode,
    /// The verdict.
    pub status: Status,
    /// The trusted key that signed it (`sha256:` of the public key), when verified by a key.
    pub key: Option<String>,
    /// The notation identity that signed it (`x509.subject: CN=...`), when verified by one.
    pub identity: Option<String>,
    /// Why, for people.
    pub detail: String,
    /// When the verdict was reached (Unix ms).
    pub checked_at: i64,
}

impl Registry {
    /// What the policy covering `repo` says about manifest `digest`; `None` when no policy
    /// covers the repository.
    pub async fn trust_status(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> RegistryResult<Option<TrustStatus>> {
        let Some(policy) = self.limits.trust.for_repository(repo) else {
            return Ok(None);
        };
        let v = self.verdict(repo, digest, policy).await?;
        let (key, identity) = match v.key_id {
            Some(id) if id.starts_with(NOTATION_IDENTITY) => (None, Some(id)),
            other => (other, None),
        };
        Ok(Some(TrustStatus {
            policy: policy.scope.clone(),
            mode: policy.mode,
            status: Status::parse(&v.status),
            key,
            identity,
            detail: v.detail,
            checked_at: v.checked_at,
        }))
    }

    /// The digest `reference` names in `repo` and what the policy covering `repo` says about
    /// it (`None`: no policy covers the repository). Looking is not pulling: nothing is
    /// refused or counted as a pull.
    pub async fn trust_status_of(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> RegistryResult<(Digest, Option<TrustStatus>)> {
        let Some(m) = self.meta.manifest(repo, reference, false).await? else {
            return Err(self.not_found(repo, RegistryError::ManifestUnknown).await);
        };
        let status = self.trust_status(repo, &m.digest).await?;
        Ok((m.digest, status))
    }

    /// Serves a manifest pull as [`Registry::pull_manifest`] does, unless the policy covering
    /// `repo` enforces signatures and no trusted key vouches for the manifest: then `DENIED`,
    /// naming the policy.
    pub async fn pull_manifest_as(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content: bool,
        by: &Origin,
    ) -> RegistryResult<StoredManifest> {
        let policy = self
            .limits
            .trust
            .for_repository(repo)
            .filter(|p| p.mode == Mode::Enforce && !(p.exempt_robots && by.is_robot()));
        let Some(policy) = policy else {
            return self.pull_manifest(repo, reference, content).await;
        };
        // The decision reads the manifest's layers, so the bytes are loaded even for HEAD.
        let mut m = self.pull_manifest(repo, reference, true).await?;
        if is_runnable(&m.content) {
            self.admit(repo, &m.digest, policy).await?;
        }
        if !content {
            m.content = bytes::Bytes::new();
        }
        Ok(m)
    }

    async fn admit(&self, repo: &RepoName, digest: &Digest, policy: &Policy) -> RegistryResult<()> {
        let own = self.verdict(repo, digest, policy).await?;
        if own.status == Status::Verified.as_str() {
            return Ok(());
        }
        for parent in self.meta.trust_parents(repo, digest, MAX_PARENTS).await? {
            if self.verdict(repo, &parent, policy).await?.status == Status::Verified.as_str() {
                return Ok(());
            }
        }
        Err(RegistryError::Denied(format!(
            "pull refused by trust policy {:?}: {}",
            policy.scope, own.detail
        )))
    }

    /// The cached verdict on `digest`, or a new one when the keys or signatures changed.
    async fn verdict(
        &self,
        repo: &RepoName,
        digest: &Digest,
        policy: &Policy,
    ) -> RegistryResult<StoredVerdict> {
        let tag = cosign_signature_tag(&digest.to_string());
        let signatures = self
            .meta
            .trust_signatures(
                repo,
                digest,
                SIGNATURE_ARTIFACT_TYPE,
                &tag,
                MAX_SIGNATURE_MANIFESTS,
            )
            .await?;
        let notation_signatures = match policy.notation {
            // No tag holds notation signatures: the empty name matches none.
            Some(_) => {
                self.meta
                    .trust_signatures(
                        repo,
                        digest,
                        notation::SIGNATURE_ARTIFACT_TYPE,
                        "",
                        MAX_SIGNATURE_MANIFESTS,
                    )
                    .await?
            }
            None => Vec::new(),
        };
        let mut fingerprint = signatures
            .iter()
            .chain(&notation_signatures)
            .map(Digest::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if !notation_signatures.is_empty() {
            fingerprint.push_str(&format!(";t={}", unix_now() / NOTATION_RECHECK_SECS));
        }
        if let Some(cached) = self
            .meta
            .trust_verdict(repo, digest, policy.keyset())
            .await?
            && cached.signatures == fingerprint
        {
            return Ok(cached);
        }
        let (status, key_id, detail) = self
            .check(repo, digest, &signatures, &notation_signatures, policy)
            .await?;
        let verdict = StoredVerdict {
            signatures: fingerprint,
            status: status.as_str().to_owned(),
            key_id,
            detail,
            checked_at: now_ms(),
        };
        tracing::info!(repository = %repo, %digest, status = %verdict.status, detail = %verdict.detail, "signature check");
        self.meta
            .trust_save_verdict(repo, digest, policy.keyset(), &verdict)
            .await?;
        Ok(verdict)
    }

    /// Verifies every signature of `digest` found in `signatures` against the policy's keys,
    /// and those in `notation_signatures` against its notation trust store.
    async fn check(
        &self,
        repo: &RepoName,
        digest: &Digest,
        signatures: &[Digest],
        notation_signatures: &[Digest],
        policy: &Policy,
    ) -> RegistryResult<(Status, Option<String>, String)> {
        if signatures.is_empty() && notation_signatures.is_empty() {
            return Ok((
                Status::Unsigned,
                None,
                "the manifest has no signature".into(),
            ));
        }
        let subject = digest.to_string();
        let mut invalid = None;
        for sig_manifest in signatures {
            let Some(record) = self
                .meta
                .manifest(repo, &Reference::Digest(sig_manifest.clone()), true)
                .await?
            else {
                continue;
            };
            let found = match CosignSignature::from_manifest(&record.content) {
                Ok(found) => found,
                Err(e) => {
                    invalid
                        .get_or_insert_with(|| format!("signature manifest {sig_manifest}: {e}"));
                    continue;
                }
            };
            for signature in found {
                let payload = match self.read_payload(repo, &signature).await {
                    Ok(payload) => payload,
                    Err(why) => {
                        invalid.get_or_insert(why);
                        continue;
                    }
                };
                match berth_trust::verify_cosign(&signature, &payload, &subject, &policy.keys) {
                    Verdict::Verified { key } => {
                        return Ok((
                            Status::Verified,
                            Some(key.to_string()),
                            format!("signed with trusted key {key}"),
                        ));
                    }
                    Verdict::Invalid { reason } => {
                        invalid.get_or_insert(reason);
                    }
                    Verdict::Untrusted => {}
                }
            }
        }
        let mut untrusted = None;
        if let Some(verified) = self
            .check_notation(
                repo,
                digest,
                notation_signatures,
                policy,
                &mut invalid,
                &mut untrusted,
            )
            .await?
        {
            return Ok(verified);
        }
        Ok(match invalid {
            Some(reason) => (Status::Invalid, None, reason),
            None => (
                Status::Untrusted,
                None,
                untrusted
                    .unwrap_or_else(|| "no signature was made by a key the policy trusts".into()),
            ),
        })
    }

    /// Verifies the notation signatures of `digest`; the verdict when one verifies, else the
    /// first reason one is invalid or untrusted.
    async fn check_notation(
        &self,
        repo: &RepoName,
        digest: &Digest,
        signatures: &[Digest],
        policy: &Policy,
        invalid: &mut Option<String>,
        untrusted: &mut Option<String>,
    ) -> RegistryResult<Option<(Status, Option<String>, String)>> {
        let Some(trust) = &policy.notation else {
            return Ok(None);
        };
        if signatures.is_empty() {
            return Ok(None);
        }
        let Some(subject) = self
            .meta
            .manifest(repo, &Reference::Digest(digest.clone()), false)
            .await?
        else {
            return Ok(None);
        };
        let subject_digest = digest.to_string();
        let target = notation::Target {
            digest: &subject_digest,
            media_type: &subject.media_type,
            size: subject.size,
        };
        let now = unix_now();
        for sig_manifest in signatures {
            let Some(record) = self
                .meta
                .manifest(repo, &Reference::Digest(sig_manifest.clone()), true)
                .await?
            else {
                continue;
            };
            let envelopes = match NotationSignature::from_manifest(&record.content) {
                Ok(found) => found,
                Err(e) => {
                    invalid
                        .get_or_insert_with(|| format!("signature manifest {sig_manifest}: {e}"));
                    continue;
                }
            };
            for envelope in envelopes {
                let bytes = match self
                    .read_limited(
                        repo,
                        &envelope.digest,
                        envelope.size,
                        notation::MAX_ENVELOPE_BYTES,
                        "notation envelope",
                    )
                    .await
                {
                    Ok(bytes) => bytes,
                    Err(why) => {
                        invalid.get_or_insert(why);
                        continue;
                    }
                };
                match berth_trust::verify_notation(&envelope, &bytes, target, trust, now) {
                    NotationVerdict::Verified {
                        identity,
                        trusted_as,
                    } => {
                        let detail = format!(
                            "signed by notation identity {identity:?} (trusted as {trusted_as:?})"
                        );
                        return Ok(Some((Status::Verified, Some(identity), detail)));
                    }
                    NotationVerdict::Invalid { reason } => {
                        invalid.get_or_insert(reason);
                    }
                    NotationVerdict::Untrusted { reason } => {
                        untrusted.get_or_insert(reason);
                    }
                }
            }
        }
        Ok(None)
    }

    /// The payload blob a signature covers, if it is in the repository and of a sane size.
    async fn read_payload(
        &self,
        repo: &RepoName,
        signature: &CosignSignature,
    ) -> Result<Vec<u8>, String> {
        self.read_limited(
            repo,
            &signature.payload_digest,
            signature.payload_size,
            MAX_PAYLOAD_BYTES,
            "signature payload",
        )
        .await
    }

    /// The blob `digest` (declared `size` bytes), if it is in the repository and at most `max`
    /// bytes; `what` names it in reasons.
    async fn read_limited(
        &self,
        repo: &RepoName,
        digest: &str,
        size: u64,
        max: u64,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        let digest = Digest::parse(digest).map_err(|e| format!("{what} digest: {e}"))?;
        if size > max {
            return Err(format!("{what} of {size} bytes exceeds {max}"));
        }
        let content = match self.read_blob(repo, &digest, None).await {
            Ok(content) => content,
            Err(RegistryError::BlobUnknown(_) | RegistryError::NameUnknown(_)) => {
                return Err(format!("{what} {digest} is not in the repository"));
            }
            Err(e) => {
                tracing::warn!(%digest, error = %e, "signature blob unreadable");
                return Err(format!("{what} {digest} could not be read"));
            }
        };
        if content.size > max {
            return Err(format!("{what} of {} bytes exceeds {max}", content.size));
        }
        content
            .read
            .stream
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .map_err(|e| {
                tracing::warn!(%digest, error = %e, "signature blob unreadable");
                format!("{what} {digest} could not be read")
            })
    }
}

/// How a notation identity starts, as stored in place of a key id.
const NOTATION_IDENTITY: &str = "x509.subject:";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a manifest is something a runtime runs: an index, or an image manifest with at
/// least one filesystem layer. Unparseable bytes count as runnable (refused, not waved through).
fn is_runnable(content: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Shape {
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        layers: Vec<Layer>,
    }
    #[derive(serde::Deserialize)]
    struct Layer {
        #[serde(rename = "mediaType", default)]
        media_type: String,
    }
    let Ok(shape) = serde_json::from_slice::<Shape>(content) else {
        return true;
    };
    shape.manifests.is_some()
        || shape.layers.iter().any(|l| {
            l.media_type.starts_with("application/vnd.oci.image.layer.")
                || l.media_type
                    .starts_with("application/vnd.docker.image.rootfs.")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_indexes_are_runnable_artifacts_are_not() {
        let image = br#"{"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]}"#;
        let docker =
            br#"{"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip"}]}"#;
        let index = br#"{"manifests":[]}"#;
        let signature =
            br#"{"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}"#;
        let chart =
            br#"{"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip"}]}"#;
        assert!(is_runnable(image));
        assert!(is_runnable(docker));
        assert!(is_runnable(index));
        assert!(is_runnable(b"not json"));
        assert!(!is_runnable(signature));
        assert!(!is_runnable(chart));
    }
}
