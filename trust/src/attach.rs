//! Writing signatures as cosign writes them (cosign `specs/SIGNATURE_SPEC.md`), for
//! `berth sign`: the simple-signing payload, one layer per signature, and the two manifests
//! that carry it:
//!
//! - an OCI 1.1 referrer: `subject` = the signed manifest, `artifactType` =
//!   [`SIGNATURE_ARTIFACT_TYPE`], the empty config, one layer;
//! - the manifest tagged `sha256-<hex>.sig`, which older clients read: the layers of the
//!   manifest already there (other signers' signatures stay), plus the new one, with a config
//!   listing the layers as cosign's does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::cosign::{
    MAX_SIGNATURES, SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING_MEDIA_TYPE,
};
use crate::payload::COSIGN_TYPE;

/// The media type of the manifests written.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI empty descriptor's media type (image-spec 1.1 `manifest.md`, "Guidance for an
/// Empty Descriptor"), the config of artifact manifests.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty descriptor's content: `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Why the `.sig` manifest cannot take another signature.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The existing manifest is not a JSON image manifest.
    #[error("the existing signature manifest is not a JSON image manifest: {0}")]
    Existing(String),
    /// It already holds as many signatures as verifiers read.
    #[error(
        "the signature manifest already holds {0} signatures (verifiers read at most {MAX_SIGNATURES})"
    )]
    Full(usize),
}

/// A manifest (or config) to push: its bytes and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The bytes, exactly as pushed.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

impl Blob {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        let digest = sha256(&bytes);
        Self { bytes, digest }
    }
}

/// A signature manifest to push with the config blob it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    /// The manifest.
    pub manifest: Blob,
    /// Its config blob.
    pub config: Blob,
}

/// The manifest a signature is made for: the OCI descriptor of its `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One signature: the payload blob and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The payload blob (push it to the repository).
    pub payload: Blob,
    /// The raw signature over the payload.
    pub signature: Vec<u8>,
}

impl SignatureLayer {
    fn descriptor(&self) -> Value {
        json!({
            "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
            "digest": self.payload.digest,
            "size": self.payload.bytes.len(),
            "annotations": {SIGNATURE_ANNOTATION: STANDARD.encode(&self.signature)},
        })
    }
}

/// cosign's simple-signing payload for manifest `digest` of repository `docker_reference`
/// (`registry/repository`, no tag). Keys are written in cosign's order (serde_json sorts
/// them: `critical` { `identity`, `image`, `type` }, `optional`).
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Blob {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_TYPE,
        },
        "optional": null,
    });
    Blob::new(payload.to_string().into_bytes())
}

/// The referrer manifest carrying `layer`, with `subject` as its subject.
pub fn referrer_manifest(subject: &Subject, layer: &SignatureLayer) -> SignatureManifest {
    let config = Blob::new(EMPTY_CONFIG.to_vec());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config.digest, "size": config.bytes.len()},
        "layers": [layer.descriptor()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    });
    SignatureManifest {
        manifest: Blob::new(manifest.to_string().into_bytes()),
        config,
    }
}

/// The `sha256-<hex>.sig` manifest with `layer` added to `existing` (the manifest under that
/// tag now, if any). `Ok(None)`: the same signature is already there. Every other layer is
/// kept as it is.
pub fn tag_manifest(
    existing: Option<&[u8]>,
    layer: &SignatureLayer,
) -> Result<Option<SignatureManifest>, AttachError> {
    let mut layers: Vec<Value> = match existing {
        None => Vec::new(),
        Some(bytes) => {
            let manifest: Value =
                serde_json::from_slice(bytes).map_err(|e| AttachError::Existing(e.to_string()))?;
            match manifest.get("layers") {
                None => Vec::new(),
                Some(Value::Array(layers)) => layers.clone(),
                Some(_) => return Err(AttachError::Existing("`layers` is not a list".into())),
            }
        }
    };
    let new = layer.descriptor();
    let same = |l: &Value| {
        l.get("digest") == new.get("digest")
            && l.pointer("/annotations/dev.cosignproject.cosign~1signature")
                == new.pointer("/annotations/dev.cosignproject.cosign~1signature")
    };
    if layers.iter().any(same) {
        return Ok(None);
    }
    if layers.len() >= MAX_SIGNATURES {
        return Err(AttachError::Full(layers.len()));
    }
    layers.push(new);
    // As cosign's: an image config whose rootfs lists the layers.
    let diff_ids: Vec<&Value> = layers.iter().filter_map(|l| l.get("digest")).collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = Blob::new(config.to_string().into_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.bytes.len()},
        "layers": layers,
    });
    Ok(Some(SignatureManifest {
        manifest: Blob::new(manifest.to_string().into_bytes()),
        config,
    }))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::CosignSignature;
    use crate::payload::SimpleSigning;
    use crate::sign::SigningKey;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn layer(key: &SigningKey) -> SignatureLayer {
        let payload = simple_signing_payload("localhost:5000/team/app", DIGEST);
        let signature = key.sign(&payload.bytes);
        SignatureLayer { payload, signature }
    }

    #[test]
    fn the_payload_is_cosigns_byte_for_byte() {
        let p = simple_signing_payload("localhost:5000/team/app", DIGEST);
        assert_eq!(
            String::from_utf8(p.bytes.clone()).expect("utf8"),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/team/app"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        let parsed = SimpleSigning::parse(&p.bytes).expect("parse");
        assert_eq!(parsed.manifest_digest, DIGEST);
    }

    #[test]
    fn signatures_written_are_read_back_and_verify() {
        let key = SigningKey::generate_p256().expect("key");
        let layer = layer(&key);
        let subject = Subject {
            media_type: OCI_MANIFEST.into(),
            digest: DIGEST.into(),
            size: 512,
        };
        let referrer = referrer_manifest(&subject, &layer);
        let m: Value = serde_json::from_slice(&referrer.manifest.bytes).expect("json");
        assert_eq!(m["artifactType"], SIGNATURE_ARTIFACT_TYPE);
        assert_eq!(m["subject"]["digest"], DIGEST);
        assert_eq!(
            referrer.config.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sigs = CosignSignature::from_manifest(&referrer.manifest.bytes).expect("sigs");
        assert_eq!(
            crate::verify_cosign(
                &sigs[0],
                &layer.payload.bytes,
                DIGEST,
                std::slice::from_ref(key.public_key())
            ),
            crate::Verdict::Verified {
                key: key.public_key().id().clone()
            }
        );
    }

    #[test]
    fn the_tag_manifest_keeps_other_signers_dedups_and_is_bounded() {
        let a = SigningKey::generate_p256().expect("key");
        let b = SigningKey::generate_p256().expect("key");
        let first = tag_manifest(None, &layer(&a)).expect("ok").expect("new");
        let second = tag_manifest(Some(&first.manifest.bytes), &layer(&b))
            .expect("ok")
            .expect("new");
        let sigs = CosignSignature::from_manifest(&second.manifest.bytes).expect("sigs");
        assert_eq!(sigs.len(), 2, "the first signer's signature stays");
        let config: Value = serde_json::from_slice(&second.config.bytes).expect("json");
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(2)
        );
        // ECDSA signatures here are deterministic (RFC 6979): signing again adds nothing.
        assert_eq!(
            tag_manifest(Some(&second.manifest.bytes), &layer(&a)).expect("ok"),
            None
        );
        let mut full = second.manifest.bytes.clone();
        for _ in 0..MAX_SIGNATURES {
            let k = SigningKey::generate_p256().expect("key");
            match tag_manifest(Some(&full), &layer(&k)) {
                Ok(Some(m)) => full = m.manifest.bytes,
                Err(AttachError::Full(n)) => {
                    assert_eq!(n, MAX_SIGNATURES);
                    return;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("never full");
    }
}
