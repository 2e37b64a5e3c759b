//! Signature checks on the machine that runs containers: `berth pull` and `berth run` verify
//! an image against the local trust policy file (`/etc/berth/policy.toml`, the
//! `[[trust.policy]]` tables of the hub's configuration, with scopes that name a registry:
//! `registry.example.com/team`) before any layer is unpacked and before anything runs.
//!
//! Signatures are found as cosign stores them (the `sha256-<hex>.sig` tag, OCI 1.1 referrers
//! of cosign's artifact type, and referrers holding a sigstore bundle) and, where the policy
//! has a notation trust store, as notation stores them (referrers of notation's artifact
//! type), and verified by [`berth_trust`], keyless ones offline against the policy's trusted
//! root. A pull records the
//! key set it verified under in the image's record, so `berth run` of an image already in the
//! store verifies nothing again unless the policy's keys changed; an image that came from an
//! enforcing scope without a verification under the current keys is checked again at the
//! registry before it runs.

use std::path::{Path, PathBuf};

use berth_trust::bundle::{BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES, bundle_layers};
use berth_trust::cosign::{MAX_PAYLOAD_BYTES, MAX_SIGNATURES, SIGNATURE_ARTIFACT_TYPE};
use berth_trust::notation::{self, NotationSignature, NotationVerdict};
use berth_trust::{CosignSignature, Mode, Policies, Policy, PolicyConfig, Verdict};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};

use crate::store::ImageRecord;
use sha2::{Digest as _, Sha256};

/// The policy file read when none is named.
pub const DEFAULT_POLICY_FILE: &str = "/etc/berth/policy.toml";

/// Signature manifests fetched per image at most.
const MAX_SIGNATURE_MANIFESTS: usize = 16;

/// Media types a signature manifest is fetched as.
const SIGNATURE_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Media types the signed manifest is fetched as, to compare with a notation payload.
const SUBJECT_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Why an image may not be used, or the policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The policy file is unreadable or invalid.
    #[error("trust policy file {path}: {reason}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An enforcing policy covers the image and no trusted key signed it.
    #[error(
        "{image} is refused by trust policy {scope:?}: {why} (--insecure-skip-verify uses it anyway)"
    )]
    Refused {
        /// The image.
        image: String,
        /// The policy's scope.
        scope: String,
        /// Why.
        why: String,
    },
}

/// A verification as the store records it with an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The policy key set it holds for.
    pub keyset: String,
    /// The key that signed the image (`sha256:...`), or the notation identity
    /// (`x509.subject: ...`).
    pub key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    trust: TrustSection,
    /// `[[scan.policy]]` tables, read by [`crate::vuln_check`].
    #[serde(default)]
    #[expect(dead_code, reason = "read by vuln_check, accepted here")]
    scan: toml::Table,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustSection {
    #[serde(default)]
    policy: Vec<PolicyConfig>,
}

/// The local trust policies, or none.
#[derive(Debug, Clone, Default)]
pub struct TrustCheck {
    policies: Policies,
    skip: bool,
}

impl TrustCheck {
    /// Reads the policy file `path`, or [`DEFAULT_POLICY_FILE`] if it exists when `path` is
    /// `None`. With `skip` (`--insecure-skip-verify`) nothing is refused, and every image a
    /// policy would have checked is reported on standard error.
    pub fn load(path: Option<&Path>, skip: bool) -> Result<Self, VerifyError> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_POLICY_FILE).exists() => PathBuf::from(DEFAULT_POLICY_FILE),
            None => {
                return Ok(Self {
                    policies: Policies::default(),
                    skip,
                });
            }
        };
        let bad = |reason: String| VerifyError::Policy {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let file: PolicyFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("/"));
        let policies = Policies::load(&file.trust.policy, base).map_err(|e| bad(e.to_string()))?;
        Ok(Self { policies, skip })
    }

    /// The policy covering images from `source` (`registry/repository`).
    fn policy(&self, source: &str) -> Option<&Policy> {
        self.policies.for_name(source)
    }

    /// Whether a stored image may run as it is: it was made here, no policy enforces where it
    /// came from, or it was verified under the policy's current keys.
    pub fn admits(&self, record: &ImageRecord) -> bool {
        if record.local {
            return true;
        }
        self.admits_stored(record.source.as_deref(), record.verified.as_ref())
    }

    /// Whether an image pulled from `source` with `verified` may run as it is.
    fn admits_stored(&self, source: Option<&str>, verified: Option<&Verified>) -> bool {
        let Some(policy) = source.and_then(|s| self.policy(s)) else {
            return true;
        };
        policy.mode == Mode::Audit
            || self.skip
            || verified.is_some_and(|v| v.keyset == policy.keyset())
    }

    /// Checks manifest `digest` of `reference` at its registry. `Ok(None)`: no policy covers
    /// it, or it is unverified where a policy only audits or `--insecure-skip-verify` was
    /// given (said on standard error).
    pub async fn check(
        &self,
        client: &Client,
        reference: &Reference,
        auth: &RegistryAuth,
        digest: &str,
    ) -> Result<Option<Verified>, VerifyError> {
        let source = format!("{}/{}", reference.registry(), reference.repository());
        let Some(policy) = self.policy(&source) else {
            return Ok(None);
        };
        let outcome = verify(client, reference, auth, digest, policy).await;
        let why = match outcome {
            Ok(key) => {
                return Ok(Some(Verified {
                    keyset: policy.keyset().to_owned(),
                    key,
                }));
            }
            Err(why) => why,
        };
        let image = format!("{source}@{digest}");
        if policy.mode == Mode::Audit {
            eprintln!(
                "warning: {image} is not verified ({why}); trust policy {:?} only audits",
                policy.scope
            );
            return Ok(None);
        }
        if self.skip {
            eprintln!(
                "WARNING: {image} is not verified ({why}); trust policy {:?} enforces, but --insecure-skip-verify was given",
                policy.scope
            );
            return Ok(None);
        }
        Err(VerifyError::Refused {
            image,
            scope: policy.scope.clone(),
            why,
        })
    }
}

impl TrustCheck {
    /// The policy covering images from `source` (`registry/repository`), for `berth verify`.
    pub fn policy_for(&self, source: &str) -> Option<&Policy> {
        self.policy(source)
    }
}

/// `berth verify`: finds the signatures of manifest `digest` of `reference` and verifies them
/// against `policy`'s keys, whatever its mode; the id of the key that verified, or why none.
pub async fn verify_image(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
    digest: &str,
    policy: &Policy,
) -> Result<String, String> {
    verify(client, reference, auth, digest, policy).await
}

/// Finds and verifies the signatures of `digest`; returns the trusted key, or why none.
async fn verify(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
    digest: &str,
    policy: &Policy,
) -> Result<String, String> {
    let registry = reference.registry().to_owned();
    let repository = reference.repository().to_owned();
    let mut manifests = Vec::new();
    let tag = Reference::with_tag(
        registry.clone(),
        repository.clone(),
        berth_trust::cosign_signature_tag(digest),
    );
    if let Ok((bytes, _)) = client.pull_manifest_raw(&tag, auth, SIGNATURE_ACCEPT).await {
        manifests.push(bytes.to_vec());
    }
    let subject = Reference::with_digest(registry.clone(), repository.clone(), digest.to_owned());
    for artifact_type in [SIGNATURE_ARTIFACT_TYPE, BUNDLE_MEDIA_TYPE] {
        manifests.extend(referrers(client, &subject, auth, artifact_type).await);
    }
    let notation_manifests = match policy.notation {
        Some(_) => referrers(client, &subject, auth, notation::SIGNATURE_ARTIFACT_TYPE).await,
        None => Vec::new(),
    };
    if manifests.is_empty() && notation_manifests.is_empty() {
        return Err("the image has no signature".into());
    }
    let mut invalid = None;
    for manifest in &manifests {
        for layer in bundle_layers(manifest) {
            let mut bytes = Vec::new();
            if layer.size > MAX_BUNDLE_BYTES
                || client
                    .pull_blob(&subject, layer.digest.as_str(), &mut bytes)
                    .await
                    .is_err()
                || bytes.len() as u64 > MAX_BUNDLE_BYTES
                || sha256(&bytes) != layer.digest
            {
                continue;
            }
            match berth_trust::verify_bundle(&bytes, digest, &policy.keys, policy.keyless.as_ref())
            {
                Verdict::Verified { key } => return Ok(key.to_string()),
                Verdict::Invalid { reason } => {
                    invalid.get_or_insert(reason);
                }
                Verdict::Untrusted => {}
            }
        }
        let Ok(signatures) = CosignSignature::from_manifest(manifest) else {
            continue;
        };
        for signature in signatures.iter().take(MAX_SIGNATURES) {
            if signature.payload_size > MAX_PAYLOAD_BYTES {
                continue;
            }
            let mut payload = Vec::new();
            let fetched = client
                .pull_blob(&subject, signature.payload_digest.as_str(), &mut payload)
                .await;
            if fetched.is_err() || payload.len() as u64 > MAX_PAYLOAD_BYTES {
                continue;
            }
            match berth_trust::verify_for_policy(signature, &payload, digest, policy) {
                Verdict::Verified { key } => return Ok(key.to_string()),
                Verdict::Invalid { reason } => {
                    invalid.get_or_insert(reason);
                }
                Verdict::Untrusted => {}
            }
        }
    }
    let mut untrusted = None;
    if let Some(trust) = &policy.notation
        && !notation_manifests.is_empty()
    {
        let (bytes, _) = client
            .pull_manifest_raw(&subject, auth, SUBJECT_ACCEPT)
            .await
            .map_err(|e| format!("the image manifest could not be read again: {e}"))?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let target = notation::Target {
            digest,
            media_type: &media_type,
            size: bytes.len() as u64,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for manifest in &notation_manifests {
            let envelopes = NotationSignature::from_manifest(manifest).unwrap_or_default();
            for envelope in envelopes {
                if envelope.size > notation::MAX_ENVELOPE_BYTES {
                    continue;
                }
                let mut bytes = Vec::new();
                let fetched = client
                    .pull_blob(&subject, envelope.digest.as_str(), &mut bytes)
                    .await;
                if fetched.is_err() || bytes.len() as u64 > notation::MAX_ENVELOPE_BYTES {
                    continue;
                }
                match berth_trust::verify_notation(&envelope, &bytes, target, trust, now) {
                    NotationVerdict::Verified { identity, .. } => return Ok(identity),
                    NotationVerdict::Invalid { reason } => {
                        invalid.get_or_insert(reason);
                    }
                    NotationVerdict::Untrusted { reason } => {
                        untrusted.get_or_insert(reason);
                    }
                }
            }
        }
    }
    Err(invalid
        .or(untrusted)
        .unwrap_or_else(|| "no signature was made by a key the policy trusts".into()))
}

/// The signature manifests among the referrers of `subject` with `artifact_type`, each
/// checked against its digest.
async fn referrers(
    client: &Client,
    subject: &Reference,
    auth: &RegistryAuth,
    artifact_type: &str,
) -> Vec<Vec<u8>> {
    let mut manifests = Vec::new();
    let Ok(index) = client.pull_referrers(subject, Some(artifact_type)).await else {
        return manifests;
    };
    for entry in index.manifests.iter().take(MAX_SIGNATURE_MANIFESTS) {
        let by_digest = Reference::with_digest(
            subject.registry().to_owned(),
            subject.repository().to_owned(),
            entry.digest.clone(),
        );
        if let Ok((bytes, _)) = client
            .pull_manifest_raw(&by_digest, auth, SIGNATURE_ACCEPT)
            .await
            && sha256(&bytes) == entry.digest
        {
            manifests.push(bytes.to_vec());
        }
    }
    manifests
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_no_policy_and_bad_files_say_where() {
        let dir = tempfile::tempdir().expect("dir");
        let check = TrustCheck::load(None, false);
        assert!(check.is_ok() || Path::new(DEFAULT_POLICY_FILE).exists());
        let missing = dir.path().join("policy.toml");
        let err = TrustCheck::load(Some(&missing), false).expect_err("a named file must exist");
        assert!(err.to_string().contains("policy.toml"), "{err}");
        std::fs::write(
            &missing,
            "[[trust.policy]]\nscope = \"r.example/team\"\nmode = \"enforce\"\n",
        )
        .expect("write");
        let err = TrustCheck::load(Some(&missing), false).expect_err("enforce needs keys");
        assert!(err.to_string().contains("needs at least one key"), "{err}");
        std::fs::write(&missing, "[trust]\nunknown = 1\n").expect("write");
        assert!(TrustCheck::load(Some(&missing), false).is_err());
    }

    /// A P-256 public key (any will do: nothing is signed here).
    const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnwBoc1a9gXASZkzi1A8oSKW9XPuR
C9PybqpSkfBW/SxwCYxKtx4qa02/K6MBTF200bmZ46x0QqyX5zDEa2Z3lQ==
-----END PUBLIC KEY-----
";

    #[test]
    fn stored_images_run_when_verified_under_the_current_keys() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("team.pub"), KEY).expect("key");
        let file = dir.path().join("policy.toml");
        std::fs::write(
            &file,
            "[[trust.policy]]\nscope = \"r.example/team\"\nmode = \"enforce\"\nkeys = [\"team.pub\"]\n\n\
             [[trust.policy]]\nscope = \"r.example/team/sandbox\"\nmode = \"audit\"\nkeys = [\"team.pub\"]\n",
        )
        .expect("write");
        let check =
            TrustCheck::load(Some(&file), false).expect("policy (key path relative to the file)");
        let keyset = check
            .policy("r.example/team/app")
            .expect("policy")
            .keyset()
            .to_owned();
        let current = Verified {
            keyset,
            key: "k".into(),
        };
        let stale = Verified {
            keyset: "sha256:old".into(),
            key: "k".into(),
        };
        assert!(check.admits_stored(Some("r.example/team/app"), Some(&current)));
        assert!(!check.admits_stored(Some("r.example/team/app"), Some(&stale)));
        assert!(!check.admits_stored(Some("r.example/team/app"), None));
        // Audit-only scopes, other registries and images made here are not held back.
        assert!(check.admits_stored(Some("r.example/team/sandbox/app"), None));
        assert!(check.admits_stored(Some("other.example/team/app"), None));
        assert!(check.admits_stored(None, None));
        // --insecure-skip-verify admits anything.
        let skip = TrustCheck::load(Some(&file), true).expect("policy");
        assert!(skip.admits_stored(Some("r.example/team/app"), None));
    }
}
