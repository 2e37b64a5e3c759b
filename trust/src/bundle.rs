//! Sigstore bundles v0.3 (sigstore protobuf-specs `dev.sigstore.bundle.v1.Bundle`, media
//! type `application/vnd.dev.sigstore.bundle.v0.3+json`), as `cosign sign
//! --new-bundle-format` attaches them to an image: an OCI 1.1 referrer whose artifact type and
//! single layer have the bundle's media type.
//!
//! A bundle holds one signature and what verifies it:
//! - the signature: a `messageSignature` (a signature over the manifest, with its SHA-256) or
//!   a `dsseEnvelope` (DSSE, signed over its pre-authentication encoding) whose payload is an
//!   in-toto statement naming the manifest among its subjects;
//! - the verification material: a `publicKey` hint (verified against the policy's keys; the
//!   transparency log is not consulted, as for key-based cosign signatures) or a
//!   `certificate` (keyless: verified as [`crate::keyless`] does, with the integrated time of
//!   a `tlogEntries` entry whose inclusion promise the log signed, and its inclusion proof and
//!   checkpoint when present).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::identity::Signer;
use crate::key::{KeyId, PublicKey};
use crate::keyless::{Failure, Keyless, certified_signer};
use crate::rekor::{self, Entry, Expected, InclusionProof};
use crate::verify::Verdict;
use crate::x509::Cert;

/// The media type of a bundle v0.3 (also the referrer's artifact type and layer type).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The largest bundle read (sigstore's are a few KiB).
pub const MAX_BUNDLE_BYTES: u64 = 256 * 1024;
/// The DSSE payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Entries and signatures looked at per bundle.
const MAX_ENTRIES: usize = 8;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Material,
    message_signature: Option<MessageSignature>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    public_key: Option<serde::de::IgnoredAny>,
    certificate: Option<RawBytes>,
    x509_certificate_chain: Option<Chain>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
}

#[derive(Deserialize)]
struct Chain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    log_index: Int,
    log_id: LogId,
    integrated_time: Int,
    inclusion_promise: Option<Promise>,
    inclusion_proof: Option<Proof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    log_index: Int,
    root_hash: String,
    tree_size: Int,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Checkpoint,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

/// protobuf JSON writes 64-bit integers as strings; some writers use numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn get(&self) -> Result<i64, String> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(s) => s.parse().map_err(|_| format!("not an integer: {s:?}")),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<StatementSubject>,
}

#[derive(Deserialize)]
struct StatementSubject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// What was signed, and how to check a signature over it.
struct Signed {
    /// The bytes a key verifies (DSSE: the PAE) or, for a message signature, `None`.
    message: Option<Vec<u8>>,
    /// SHA-256 of what the log entry records (message digest, or DSSE payload).
    logged_sha256: [u8; 32],
    /// The manifest digests the signed content names.
    subjects: Vec<String>,
    signatures: Vec<Vec<u8>>,
}

impl Signed {
    fn verified_by(&self, key: &PublicKey, signature: &[u8]) -> bool {
        match &self.message {
            Some(message) => key.verifies(message, signature),
            None => key.verifies_digest(&self.logged_sha256, signature),
        }
    }
}

/// DSSE's pre-authentication encoding (DSSE `protocol.md`).
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what}: {e}"))
}

fn signed_content(bundle: &Bundle) -> Result<Signed, String> {
    match (&bundle.message_signature, &bundle.dsse_envelope) {
        (Some(m), None) => {
            if m.message_digest.algorithm != "SHA2_256" {
                return Err(format!(
                    "message digests of {:?} are not supported",
                    m.message_digest.algorithm
                ));
            }
            let digest = <[u8; 32]>::try_from(b64(&m.message_digest.digest, "message digest")?)
                .map_err(|_| "the message digest is not 32 bytes")?;
            Ok(Signed {
                message: None,
                logged_sha256: digest,
                subjects: vec![format!("sha256:{}", hex::encode(digest))],
                signatures: vec![b64(&m.signature, "signature")?],
            })
        }
        (None, Some(e)) => {
            let payload = b64(&e.payload, "DSSE payload")?;
            let signatures = e
                .signatures
                .iter()
                .take(MAX_ENTRIES)
                .map(|s| b64(&s.sig, "DSSE signature"))
                .collect::<Result<_, _>>()?;
            Ok(Signed {
                message: Some(pae(&e.payload_type, &payload)),
                logged_sha256: Sha256::digest(&payload).into(),
                subjects: statement_subjects(&e.payload_type, &payload)?,
                signatures,
            })
        }
        _ => Err("a bundle holds exactly one of messageSignature or dsseEnvelope".into()),
    }
}

/// The `sha256:` digests an in-toto statement names.
fn statement_subjects(payload_type: &str, payload: &[u8]) -> Result<Vec<String>, String> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "DSSE payloads of type {payload_type:?} are not supported"
        ));
    }
    let statement: Statement =
        serde_json::from_slice(payload).map_err(|e| format!("in-toto statement: {e}"))?;
    if !statement.kind.starts_with("https://in-toto.io/Statement/") {
        return Err(format!("not an in-toto statement: {:?}", statement.kind));
    }
    Ok(statement
        .subject
        .iter()
        .take(64)
        .filter_map(|s| s.digest.get("sha256"))
        .map(|hex| format!("sha256:{}", hex.to_ascii_lowercase()))
        .collect())
}

/// A layer of a referrer manifest that holds a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLayer {
    /// The blob's digest, as declared.
    pub digest: String,
    /// The blob's declared size.
    pub size: u64,
}

/// The bundle layers of a manifest as cosign `--new-bundle-format` pushes it (at most
/// [`MAX_ENTRIES`]); empty when the manifest holds none.
pub fn bundle_layers(manifest: &[u8]) -> Vec<BundleLayer> {
    #[derive(Deserialize)]
    struct Manifest {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layer {
        media_type: String,
        digest: String,
        size: u64,
    }
    let Ok(m) = serde_json::from_slice::<Manifest>(manifest) else {
        return Vec::new();
    };
    m.layers
        .into_iter()
        .filter(|l| l.media_type == BUNDLE_MEDIA_TYPE)
        .take(MAX_ENTRIES)
        .map(|l| BundleLayer {
            digest: l.digest,
            size: l.size,
        })
        .collect()
}

/// Checks the sigstore bundle `bytes` for manifest `subject` against the policy's `keys` and,
/// if it has keyless trust, `keyless`.
pub fn verify_bundle(
    bytes: &[u8],
    subject: &str,
    keys: &[PublicKey],
    keyless: Option<&Keyless>,
) -> Verdict {
    match check(bytes, subject, keys, keyless) {
        Ok(key) => Verdict::Verified { key },
        Err(Failure::Untrusted) => Verdict::Untrusted,
        Err(Failure::Invalid(reason)) => Verdict::Invalid { reason },
    }
}

fn check(
    bytes: &[u8],
    subject: &str,
    keys: &[PublicKey],
    keyless: Option<&Keyless>,
) -> Result<KeyId, Failure> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(format!(
            "a bundle of {} bytes exceeds {MAX_BUNDLE_BYTES}",
            bytes.len()
        )
        .into());
    }
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("sigstore bundle: {e}"))?;
    if bundle.media_type != BUNDLE_MEDIA_TYPE {
        return Err(format!(
            "bundles of media type {:?} are not supported",
            bundle.media_type
        )
        .into());
    }
    let signed = signed_content(&bundle)?;
    let material = &bundle.verification_material;
    let leaf = match (&material.certificate, &material.x509_certificate_chain) {
        (Some(c), _) => Some(c),
        (None, Some(chain)) => chain.certificates.first(),
        (None, None) => None,
    };
    let key = match leaf {
        None if material.public_key.is_some() => {
            let Some((key, _)) = keys.iter().find_map(|k| {
                signed
                    .signatures
                    .iter()
                    .find(|s| signed.verified_by(k, s))
                    .map(|s| (k, s))
            }) else {
                return Err(Failure::Untrusted);
            };
            key.id().clone()
        }
        None => return Err("the bundle has neither a public key nor a certificate".into()),
        Some(leaf) => {
            let Some(keyless) = keyless else {
                return Err(Failure::Untrusted);
            };
            let leaf = Cert::from_der(&b64(&leaf.raw_bytes, "certificate")?)
                .map_err(|e| format!("signing certificate: {e}"))?;
            KeyId::keyless(&keyless_signer(&leaf, &signed, material, keyless)?)
        }
    };
    if !signed.subjects.iter().any(|s| s == subject) {
        return Err(format!(
            "the bundle signs {}, not {subject}",
            signed
                .subjects
                .first()
                .map_or("no manifest", String::as_str)
        )
        .into());
    }
    Ok(key)
}

/// Verifies a keyless bundle's signature: log entry, certificate at its integrated time,
/// signature with the certificate's key, identity.
fn keyless_signer(
    leaf: &Cert,
    signed: &Signed,
    material: &Material,
    keyless: &Keyless,
) -> Result<Signer, Failure> {
    let key = PublicKey::from_der(&leaf.public_key_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("signing certificate: {e}"))?;
    let Some(signature) = signed
        .signatures
        .iter()
        .find(|s| signed.verified_by(&key, s))
    else {
        return Err("the signature does not verify with its certificate's key".into());
    };
    let mut why =
        String::from("the bundle has no transparency-log entry with an inclusion promise");
    for entry in material.tlog_entries.iter().take(MAX_ENTRIES) {
        match check_entry(entry, leaf, signature, signed, keyless) {
            Ok(at) => return certified_signer(leaf, at, keyless),
            Err(e) => why = e,
        }
    }
    Err(Failure::Invalid(why))
}

/// Checks one log entry; returns its (promised) integrated time.
fn check_entry(
    entry: &TlogEntry,
    leaf: &Cert,
    signature: &[u8],
    signed: &Signed,
    keyless: &Keyless,
) -> Result<u64, String> {
    let Some(promise) = &entry.inclusion_promise else {
        return Err(
            "a transparency-log entry has no inclusion promise (its integrated time is not signed)"
                .into(),
        );
    };
    let log_id = hex::encode(b64(&entry.log_id.key_id, "log id")?);
    let e = Entry {
        body_b64: &entry.canonicalized_body,
        integrated_time: entry.integrated_time.get()?,
        log_index: entry.log_index.get()?,
        log_id: &log_id,
    };
    let log = rekor::verify_set(
        &keyless.root,
        &e,
        &b64(&promise.signed_entry_timestamp, "signed entry timestamp")?,
    )?;
    let body = b64(&entry.canonicalized_body, "log entry body")?;
    if let Some(proof) = &entry.inclusion_proof {
        let to_u64 = |i: &Int| {
            i.get()
                .and_then(|v| u64::try_from(v).map_err(|e| e.to_string()))
        };
        let hashes = proof
            .hashes
            .iter()
            .take(65)
            .map(|h| b64(h, "inclusion proof"))
            .collect::<Result<_, _>>()?;
        rekor::verify_inclusion(
            log,
            &body,
            &InclusionProof {
                log_index: to_u64(&proof.log_index)?,
                tree_size: to_u64(&proof.tree_size)?,
                root_hash: b64(&proof.root_hash, "root hash")?,
                hashes,
                checkpoint: &proof.checkpoint.envelope,
            },
        )?;
    }
    rekor::check_body(
        &body,
        &Expected {
            signature,
            verifier_der: leaf.der(),
            sha256: signed.logged_sha256,
        },
    )?;
    u64::try_from(e.integrated_time).map_err(|_| "negative integrated time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_layers_are_found_by_media_type() {
        let manifest = serde_json::json!({"layers": [
            {"mediaType": BUNDLE_MEDIA_TYPE, "digest": "sha256:01", "size": 10},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:02", "size": 9},
        ]});
        assert_eq!(
            bundle_layers(manifest.to_string().as_bytes()),
            vec![BundleLayer {
                digest: "sha256:01".into(),
                size: 10
            }]
        );
        assert!(bundle_layers(b"[").is_empty());
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn malformed_bundles_fail_fast_without_panicking() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let big = vec![b' '; MAX_BUNDLE_BYTES as usize + 1];
        for bad in [
            &b"garbage"[..],
            deep.as_bytes(),
            &big,
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
            br#"{"mediaType":"x","verificationMaterial":{}}"#,
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":""}}"#,
        ] {
            assert!(matches!(
                verify_bundle(bad, "sha256:00", &[], None),
                Verdict::Invalid { .. }
            ));
        }
    }
}
