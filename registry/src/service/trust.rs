//! Signature checks: what the `[[trust.policy]]` covering a repository says about a manifest,
//! and refusing pulls an enforcing policy forbids.
//!
//! Signatures are found as cosign writes them (see [`berth_trust::cosign`]): referrers of the
//! manifest with cosign's signature artifact type, the manifest tagged `sha256-<hex>.sig`, and
//! referrers holding a sigstore bundle (`cosign sign --new-bundle-format`, see
//! [`berth_trust::bundle`]). Keyless signatures are checked offline against the policy's
//! trusted root and identities. Where the policy has a notation trust store, signatures are
//! also found as notation writes them (see [`berth_trust::notation`]): referrers with
//! notation's artifact type, JWS or COSE envelopes. notation certificates and signatures
//! expire, so a verdict reached with notation signatures is reached again after
//! [`NOTATION_RECHECK_SECS`].
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
use std::sync::atomic::{AtomicU64, Ordering};

use berth_trust::bundle::{BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES, bundle_layers};
use berth_trust::cosign::{MAX_PAYLOAD_BYTES, SIGNATURE_ARTIFACT_TYPE};
use berth_trust::notation::{self, NotationSignature, NotationVerdict};
use berth_trust::{CosignSignature, Mode, Policies, Policy, Verdict, cosign_signature_tag};
use futures_util::TryStreamExt as _;
use serde::Serialize;

use super::{Registry, RegistryError, RegistryResult, StoredManifest};
use crate::domain::{Digest, Reference, RepoName};
use crate::meta::events::{Action, HookEvent, Origin};
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
pub struct TrustPolicies(Arc<Policies>, Arc<TrustCounters>);

/// What this process decided since it started, for `/metrics`
/// (`berth_trust_verdicts_total`, `berth_trust_refusals_total`).
#[derive(Debug, Default)]
pub struct TrustCounters {
    verdicts: [AtomicU64; 4],
    refused_pulls: AtomicU64,
    refused_tag_pushes: AtomicU64,
}

/// A reading of [`TrustCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustCounts {
    /// Verdicts reached (not read from the cache), by status, in [`Status::ALL`] order.
    pub verdicts: [u64; 4],
    /// Pulls an enforcing policy refused.
    pub refused_pulls: u64,
    /// Tag pushes an enforcing policy refused.
    pub refused_tag_pushes: u64,
}

impl TrustCounters {
    fn verdict(&self, status: Status) {
        let i = Status::ALL.iter().position(|s| *s == status).unwrap_or(0);
        self.verdicts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> TrustCounts {
        TrustCounts {
            verdicts: self.verdicts.each_ref().map(|c| c.load(Ordering::Relaxed)),
            refused_pulls: self.refused_pulls.load(Ordering::Relaxed),
            refused_tag_pushes: self.refused_tag_pushes.load(Ordering::Relaxed),
        }
    }
}

impl TrustPolicies {
    /// Policies read from `[[trust.policy]]`.
    pub fn new(policies: Policies) -> Self {
        Self(Arc::new(policies), Arc::default())
    }

    /// What this process decided since it started.
    pub fn counts(&self) -> TrustCounts {
        self.1.read()
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
    /// Every status, in a fixed order (the metrics' label values).
    pub const ALL: [Status; 4] = [
        Status::Verified,
        Status::Unsigned,
        Status::Untrusted,
        Status::Invalid,
    ];

    /// The name shown and stored.
    pub fn as_str(self) -> &'static str {
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
    /// The verdicts this process reached and the requests it refused, for `/metrics`.
    pub fn trust_counts(&self) -> TrustCounts {
        self.limits.trust.counts()
    }

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
    /// `repo` enforces signatures and no trusted key vouches for the manifest: then a `GET` is
    /// `DENIED`, naming the policy (a `HEAD`, `content == false`, is answered). The
    /// vulnerability policies judge what this serves ([`Registry::pull_manifest_as`]).
    pub(super) async fn pull_manifest_trusted(
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
        // HEAD is answered whatever the verdict, as Harbor does: it serves no content, and it is
        // how cosign, notation and `berth sign` resolve a tag to the digest they sign. A pull
        // still needs the GET that is refused (containerd HEADs the tag, then GETs the digest).
        let Some(policy) = policy.filter(|_| content) else {
            return self.pull_manifest(repo, reference, content).await;
        };
        let m = self.pull_manifest(repo, reference, true).await?;
        // The hot path: a manifest admitted lately is served without being parsed or checked.
        if self.admissions.admitted(repo, &m.digest, policy.keyset()) {
            return Ok(m);
        }
        if is_runnable(&m.content) {
            self.admit(repo, &m.digest, policy).await?;
        } else {
            // An artifact is never refused, and its bytes never change: nothing to parse again.
            self.admissions.remember(repo, &m.digest, policy.keyset());
        }
        Ok(m)
    }

    /// Refuses a push of tags onto `content` where the policy covering `repo` enforces
    /// signatures with `require_signature_for_tags` and no trusted key signed the manifest
    /// (issue 19, item 4: sign before tagging). The manifest must already be in the
    /// repository (pushed by digest) with its signature; artifacts (signatures themselves,
    /// charts, SBOMs) are tagged freely, as they are pulled freely.
    pub(super) async fn admit_tag_push(
        &self,
        repo: &RepoName,
        content: &[u8],
        by: &Origin,
    ) -> RegistryResult<()> {
        let policy = self.limits.trust.for_repository(repo).filter(|p| {
            p.mode == Mode::Enforce
                && p.require_signature_for_tags
                && !(p.exempt_robots && by.is_robot())
        });
        let Some(policy) = policy else {
            return Ok(());
        };
        if !is_runnable(content) {
            return Ok(());
        }
        let digest = Digest::sha256_of(content);
        let refused = |why: &str| {
            self.limits
                .trust
                .1
                .refused_tag_pushes
                .fetch_add(1, Ordering::Relaxed);
            RegistryError::Denied(format!(
                "tag push refused by trust policy {:?}: {why}; push the manifest by digest, sign it, then tag it",
                policy.scope
            ))
        };
        if self
            .meta
            .manifest(repo, &Reference::Digest(digest.clone()), false)
            .await?
            .is_none()
        {
            return Err(refused(&format!("manifest {digest} is not signed")));
        }
        let verdict = self.verdict(repo, &digest, policy).await?;
        if verdict.status == Status::Verified.as_str() {
            return Ok(());
        }
        Err(refused(&verdict.detail))
    }

    /// Admits a pull of `digest` if a trusted key vouches for it or for an index of the
    /// repository listing it, and remembers the admission; refuses it otherwise (a refusal is
    /// never remembered).
    async fn admit(&self, repo: &RepoName, digest: &Digest, policy: &Policy) -> RegistryResult<()> {
        let own = self.verdict(repo, digest, policy).await?;
        if own.status == Status::Verified.as_str() {
            self.admissions.remember(repo, digest, policy.keyset());
            return Ok(());
        }
        for parent in self.meta.trust_parents(repo, digest, MAX_PARENTS).await? {
            if self.verdict(repo, &parent, policy).await?.status == Status::Verified.as_str() {
                self.admissions.remember(repo, digest, policy.keyset());
                return Ok(());
            }
        }
        self.limits
            .trust
            .1
            .refused_pulls
            .fetch_add(1, Ordering::Relaxed);
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
        let mut signatures = self
            .meta
            .trust_signatures(
                repo,
                digest,
                SIGNATURE_ARTIFACT_TYPE,
                &tag,
                MAX_SIGNATURE_MANIFESTS,
            )
            .await?;
        // Sigstore bundles are referrers of their own artifact type.
        let bundles = self
            .meta
            .trust_signatures(
                repo,
                digest,
                BUNDLE_MEDIA_TYPE,
                &tag,
                MAX_SIGNATURE_MANIFESTS,
            )
            .await?;
        signatures.extend(bundles);
        signatures.sort();
        signatures.dedup();
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
        let previous = match self
            .meta
            .trust_verdict(repo, digest, policy.keyset())
            .await?
        {
            Some(cached) if cached.signatures == fingerprint => return Ok(cached),
            other => other.map(|c| c.status),
        };
        let (status, key_id, detail) = self
            .check(repo, digest, &signatures, &notation_signatures, policy)
            .await?;
        self.limits.trust.1.verdict(status);
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
        if previous.as_deref() != Some(verdict.status.as_str()) {
            self.announce_verdict(repo, digest, policy, previous, &verdict)
                .await?;
        }
        Ok(verdict)
    }

    /// Records a `trust.verdict` event (audit log, and the webhooks subscribed to `trust`):
    /// a manifest's verdict under a policy's key set was reached for the first time, or
    /// changed. Replicas reaching the same verdict at the same instant may both announce it
    /// (webhook receivers get events at least once anyway).
    async fn announce_verdict(
        &self,
        repo: &RepoName,
        digest: &Digest,
        policy: &Policy,
        previous: Option<String>,
        verdict: &StoredVerdict,
    ) -> RegistryResult<()> {
        let mut event = self.event(
            Action::TrustVerdict,
            &Origin::system("trust"),
            repo,
            Some(HookEvent::Trust),
        );
        event.digest = Some(digest.to_string());
        event.detail = Some(serde_json::json!({
            "policy": policy.scope,
            "mode": policy.mode,
            "status": verdict.status,
            "previous": previous,
            "key": verdict.key_id,
            "detail": verdict.detail,
        }));
        self.meta.record_event(&event, 0).await?;
        Ok(())
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
            let layers = bundle_layers(&record.content);
            for layer in &layers {
                let verdict = match self
                    .read_limited(
                        repo,
                        &layer.digest,
                        layer.size,
                        MAX_BUNDLE_BYTES,
                        "sigstore bundle",
                    )
                    .await
                {
                    Ok(bytes) => berth_trust::verify_bundle(
                        &bytes,
                        &subject,
                        &policy.keys,
                        policy.keyless.as_ref(),
                    ),
                    Err(why) => Verdict::Invalid { reason: why },
                };
                match verdict {
                    Verdict::Verified { key } => return Ok(verified(&key)),
                    Verdict::Invalid { reason } => {
                        invalid.get_or_insert(reason);
                    }
                    Verdict::Untrusted => {}
                }
            }
            let found = match CosignSignature::from_manifest(&record.content) {
                Ok(found) => found,
                Err(_) if !layers.is_empty() => continue,
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
                match berth_trust::verify_for_policy(&signature, &payload, &subject, policy) {
                    Verdict::Verified { key } => return Ok(verified(&key)),
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

/// The verdict of a verified signature: by a key (`sha256:...`) or a keyless identity.
fn verified(key: &berth_trust::KeyId) -> (Status, Option<String>, String) {
    let detail = match key.as_str().strip_prefix("keyless:") {
        Some(identity) => format!("signed keylessly by trusted identity {identity}"),
        None => format!("signed with trusted key {key}"),
    };
    (Status::Verified, Some(key.to_string()), detail)
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
