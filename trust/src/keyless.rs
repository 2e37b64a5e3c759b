//! Keyless cosign signatures (cosign `specs/SIGNATURE_SPEC.md`, "Keyless"): the simple-signing
//! payload is signed with a short-lived key whose certificate Fulcio issued to an OIDC
//! identity, and the signature was recorded in Rekor. The layer's annotations carry the
//! certificate (`dev.sigstore.cosign/certificate`), its chain (`.../chain`) and Rekor's
//! promise (`.../bundle`: `{"SignedEntryTimestamp", "Payload": {body, integratedTime,
//! logIndex, logID}}`).
//!
//! Verified offline against a [`TrustedRoot`], in this order: Rekor's signed entry timestamp
//! (which makes the integrated time trustworthy), the certificate chain to a CA of the trusted
//! root at that time (the chain annotation is not trusted: the CA's own chain is used), the
//! signature with the certificate's key, the identity, that the log entry records this very
//! signature and certificate, and finally the manifest digest in the payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::cosign::CosignSignature;
use crate::identity::{Identity, Signer, match_identity};
use crate::key::{KeyId, PublicKey};
use crate::payload::SimpleSigning;
use crate::policy::Policy;
use crate::rekor::{self, Entry, Expected};
use crate::trusted_root::TrustedRoot;
use crate::verify::Verdict;
use crate::x509::{Cert, ChainError, verify_chain};

/// The largest Rekor bundle annotation read.
const MAX_BUNDLE_BYTES: usize = 128 * 1024;

/// A policy's keyless trust: the trusted root and who may sign.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// The CAs and logs.
    pub root: TrustedRoot,
    /// The identities allowed to sign.
    pub identities: Vec<Identity>,
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Why a keyless signature fails: `Untrusted` (no certificate, or one from a CA the trusted
/// root does not name) or `Invalid` (with the reason: a wrong identity says which it was).
pub(crate) enum Failure {
    Untrusted,
    Invalid(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Invalid(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Self {
        Failure::Invalid(reason.to_owned())
    }
}

impl KeyId {
    /// The "key id" of a keyless signer: its identity, for verdicts and caches.
    pub fn keyless(signer: &Signer) -> Self {
        KeyId::from_text(format!("keyless:{} {}", signer.issuer, signer.subject))
    }
}

/// Checks a cosign signature under `policy`: keylessly when it carries a certificate and the
/// policy has keyless trust, against the policy's keys otherwise.
pub fn verify_for_policy(
    signature: &CosignSignature,
    payload: &[u8],
    subject: &str,
    policy: &Policy,
) -> Verdict {
    match &policy.keyless {
        Some(keyless) if signature.certificate.is_some() => {
            verify_keyless(signature, payload, subject, keyless)
        }
        _ => crate::verify::verify_cosign(signature, payload, subject, &policy.keys),
    }
}

/// Checks a cosign signature carrying a certificate against `keyless`, for manifest
/// `subject`. A signature without certificate or Rekor bundle is [`Verdict::Untrusted`].
pub fn verify_keyless(
    signature: &CosignSignature,
    payload: &[u8],
    subject: &str,
    keyless: &Keyless,
) -> Verdict {
    match check(signature, payload, subject, keyless) {
        Ok(signer) => Verdict::Verified {
            key: KeyId::keyless(&signer),
        },
        Err(Failure::Untrusted) => Verdict::Untrusted,
        Err(Failure::Invalid(reason)) => Verdict::Invalid { reason },
    }
}

fn check(
    signature: &CosignSignature,
    payload: &[u8],
    subject: &str,
    keyless: &Keyless,
) -> Result<Signer, Failure> {
    let digest = Sha256::digest(payload);
    let actual = format!("sha256:{}", hex::encode(digest));
    if actual != signature.payload_digest {
        return Err(format!(
            "the payload's digest is {actual}, not the {} its layer names",
            signature.payload_digest
        )
        .into());
    }
    let (Some(sig), Some(cert_pem), Some(bundle)) = (
        signature.signature.as_deref(),
        signature.certificate.as_deref(),
        signature.bundle.as_deref(),
    ) else {
        return Err(Failure::Untrusted);
    };
    let leaf = Cert::from_pem_chain(cert_pem)
        .map_err(|e| format!("signing certificate: {e}"))?
        .swap_remove(0);
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err("the Rekor bundle is too large".into());
    }
    let bundle: RekorBundle =
        serde_json::from_str(bundle).map_err(|e| format!("Rekor bundle: {e}"))?;
    let set = STANDARD
        .decode(&bundle.set)
        .map_err(|e| format!("Rekor bundle: {e}"))?;
    let entry = Entry {
        body_b64: &bundle.payload.body,
        integrated_time: bundle.payload.integrated_time,
        log_index: bundle.payload.log_index,
        log_id: &bundle.payload.log_id,
    };
    rekor::verify_set(&keyless.root, &entry, &set)?;
    let at = u64::try_from(entry.integrated_time).map_err(|_| "negative integrated time")?;
    let signer = certified_signer(&leaf, at, keyless)?;
    let key = PublicKey::from_der(&leaf.public_key_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("signing certificate: {e}"))?;
    if !key.verifies(payload, sig) {
        return Err("the signature does not verify with its certificate's key".into());
    }
    let body = STANDARD
        .decode(entry.body_b64)
        .map_err(|e| format!("Rekor entry: {e}"))?;
    rekor::check_body(
        &body,
        &Expected {
            signature: sig,
            verifier_der: leaf.der(),
            sha256: digest.into(),
        },
    )?;
    match SimpleSigning::parse(payload) {
        Err(e) => Err(e.to_string().into()),
        Ok(p) if p.manifest_digest != subject => Err(format!(
            "the signature is for manifest {}, not {subject}",
            p.manifest_digest
        )
        .into()),
        Ok(_) => Ok(signer),
    }
}

/// Checks that `leaf` chains to a CA of the trusted root in service at `at` and names an
/// allowed identity.
pub(crate) fn certified_signer(leaf: &Cert, at: u64, keyless: &Keyless) -> Result<Signer, Failure> {
    let mut last = None;
    for ca in keyless
        .root
        .certificate_authorities
        .iter()
        .filter(|ca| ca.valid_for.contains(at))
    {
        match verify_chain(leaf, &ca.intermediates, std::slice::from_ref(&ca.root), at) {
            Ok(_) => {
                return match_identity(leaf, &keyless.identities).map_err(Failure::Invalid);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        None | Some(ChainError::Untrusted(_)) => Err(Failure::Untrusted),
        Some(e) => Err(Failure::Invalid(e.to_string())),
    }
}
