//! Writing sigstore bundles as `cosign sign --new-bundle-format --key` writes them, for `berth
//! sign --new-bundle-format`:
//!
//! - the signed content is an in-toto v1 statement (DSSE payload type
//!   `application/vnd.in-toto+json`) whose single subject is the manifest digest and whose
//!   predicate type is cosign's [`COSIGN_SIGN_PREDICATE_TYPE`], with an empty predicate;
//! - the bundle (v0.3) holds that DSSE envelope and, as verification material, the hint cosign
//!   computes for a key: base64 of the SHA-256 of its DER public key. There are no transparency
//!   log entries: berth has no log, as `cosign sign --tlog-upload=false` has none;
//! - it goes to the registry as an OCI 1.1 referrer of the manifest whose artifact type and
//!   single layer have the bundle's media type, with the annotations cosign puts on it.
//!
//! What [`crate::bundle`] reads back, and what sigstore's verifiers (sigstore-go, sigstore-js)
//! accept with the public key as trust material and no log.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::attach::{
    Blob, EMPTY_CONFIG, EMPTY_MEDIA_TYPE, OCI_MANIFEST, SignatureManifest, Subject,
};
use crate::bundle::{BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, pae};
use crate::sign::SigningKey;

/// The predicate type of the statements `cosign sign --new-bundle-format` signs (cosign
/// `pkg/types/predicate.go`).
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The in-toto statement type (in-toto attestation framework v1).
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The referrer annotation naming what the bundle holds.
pub const CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// The referrer annotation naming the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The OCI annotation of the referrer's creation time (RFC 3339).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The statement, with its fields in the order cosign's protobuf JSON writes them.
#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'a str,
    subject: [StatementSubject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct StatementSubject<'a> {
    digest: std::collections::BTreeMap<&'a str, &'a str>,
    /// cosign's `-a key=value` annotations; berth adds none (cosign writes `{}` then too).
    annotations: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bundle<'a> {
    media_type: &'a str,
    verification_material: Material,
    dsse_envelope: Envelope<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    public_key: KeyHint,
}

#[derive(Serialize)]
struct KeyHint {
    hint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    payload: String,
    payload_type: &'a str,
    signatures: [EnvelopeSignature; 1],
}

#[derive(Serialize)]
struct EnvelopeSignature {
    sig: String,
}

/// The in-toto statement cosign signs for manifest `digest` (`ALGORITHM:HEX`).
pub fn statement(digest: &str) -> Vec<u8> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [StatementSubject {
            digest: [(algorithm, hex)].into_iter().collect(),
            annotations: serde_json::Map::new(),
        }],
        predicate_type: COSIGN_SIGN_PREDICATE_TYPE,
        predicate: serde_json::Map::new(),
    };
    // Serializing plain strings and maps cannot fail.
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// The hint cosign and sigstore-go give a key in a bundle: base64 of the SHA-256 of its DER
/// SubjectPublicKeyInfo (the same bytes as berth's key id, another spelling).
pub fn key_hint(public_der: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(public_der))
}

/// A sigstore bundle v0.3 in which `key` signs (DSSE) the statement naming `digest`.
pub fn dsse_bundle(key: &SigningKey, digest: &str) -> Blob {
    let payload = statement(digest);
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE,
        verification_material: Material {
            public_key: KeyHint {
                hint: key_hint(key.public_key_der()),
            },
        },
        dsse_envelope: Envelope {
            payload: STANDARD.encode(&payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE,
            signatures: [EnvelopeSignature {
                sig: STANDARD.encode(signature),
            }],
        },
    };
    Blob::new(serde_json::to_vec(&bundle).unwrap_or_default())
}

/// The referrer manifest carrying `bundle` for `subject`, as cosign's `WriteReferrer` writes
/// it (the empty config, whose descriptor repeats the artifact type as cosign's does), made at
/// `created` (RFC 3339).
pub fn bundle_referrer(subject: &Subject, bundle: &Blob, created: &str) -> SignatureManifest {
    let config = Blob::new(EMPTY_CONFIG.to_vec());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "artifactType": BUNDLE_MEDIA_TYPE,
            "digest": config.digest,
            "size": config.bytes.len(),
        },
        "layers": [{
            "mediaType": BUNDLE_MEDIA_TYPE,
            "digest": bundle.digest,
            "size": bundle.bytes.len(),
        }],
        "annotations": {
            CREATED_ANNOTATION: created,
            CONTENT_ANNOTATION: "dsse-envelope",
            PREDICATE_TYPE_ANNOTATION: COSIGN_SIGN_PREDICATE_TYPE,
        },
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    });
    SignatureManifest {
        manifest: Blob::new(manifest.to_string().into_bytes()),
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{bundle_layers, verify_bundle};
    use crate::verify::Verdict;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn the_statement_is_cosigns() {
        assert_eq!(
            String::from_utf8(statement(DIGEST)).expect("utf8"),
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}"#
        );
    }

    #[test]
    fn bundles_written_verify_with_the_key_for_their_manifest_only() {
        let key = SigningKey::generate_p256().expect("key");
        let stranger = SigningKey::generate_p256().expect("key");
        let bundle = dsse_bundle(&key, DIGEST);
        let json: serde_json::Value = serde_json::from_slice(&bundle.bytes).expect("json");
        assert_eq!(json["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(
            json["verificationMaterial"]["publicKey"]["hint"],
            STANDARD.encode(
                hex::decode(&key.public_key().id().as_str()["sha256:".len()..]).expect("hex")
            ),
            "the hint is the key id, in base64"
        );
        assert!(json["verificationMaterial"].get("tlogEntries").is_none());
        let public = std::slice::from_ref(key.public_key());
        assert_eq!(
            verify_bundle(&bundle.bytes, DIGEST, public, None),
            Verdict::Verified {
                key: key.public_key().id().clone()
            }
        );
        assert_eq!(
            verify_bundle(
                &bundle.bytes,
                DIGEST,
                std::slice::from_ref(stranger.public_key()),
                None
            ),
            Verdict::Untrusted
        );
        assert!(matches!(
            verify_bundle(&bundle.bytes, OTHER, public, None),
            Verdict::Invalid { .. }
        ));
    }

    #[test]
    fn the_referrer_is_cosigns_and_is_found_by_its_layer() {
        let key = SigningKey::generate_p256().expect("key");
        let bundle = dsse_bundle(&key, DIGEST);
        let subject = Subject {
            media_type: OCI_MANIFEST.into(),
            digest: DIGEST.into(),
            size: 512,
        };
        let referrer = bundle_referrer(&subject, &bundle, "2026-12-04T18:00:00Z");
        let m: serde_json::Value = serde_json::from_slice(&referrer.manifest.bytes).expect("json");
        assert_eq!(m["artifactType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(m["subject"]["digest"], DIGEST);
        assert_eq!(m["annotations"][CONTENT_ANNOTATION], "dsse-envelope");
        assert_eq!(
            m["annotations"][PREDICATE_TYPE_ANNOTATION],
            COSIGN_SIGN_PREDICATE_TYPE
        );
        let layers = bundle_layers(&referrer.manifest.bytes);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].digest, bundle.digest);
        assert_eq!(layers[0].size, bundle.bytes.len() as u64);
    }
}
