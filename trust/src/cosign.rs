//! Signature manifests as cosign writes them (cosign `specs/SIGNATURE_SPEC.md`).
//!
//! cosign stores the signatures of manifest `sha256:<hex>` in an OCI image manifest tagged
//! `sha256-<hex>.sig` in the same repository, or, with OCI 1.1 referrers, in a manifest whose
//! `subject` is the signed manifest and whose `artifactType` is
//! `application/vnd.dev.cosign.artifact.sig.v1+json`. Each layer is one signature: the layer
//! blob is the signed payload (simple signing, see [`crate::payload`]) and the layer's
//! annotations carry the signature (base64) and, for keyless signing, the certificate, its
//! chain and the transparency-log bundle.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The `artifactType` of a cosign signature manifest pushed as a referrer.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation holding the signing certificate (PEM), for keyless signatures.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The annotation holding the certificate chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The annotation holding the transparency-log bundle (JSON).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// At most this many signatures of one signature manifest are looked at: a manifest with
/// thousands of layers must not turn one verification into thousands.
pub const MAX_SIGNATURES: usize = 32;
/// The largest payload blob a verifier reads (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

/// The tag cosign gives the signatures of `digest` (`sha256:<hex>` → `sha256-<hex>.sig`).
pub fn cosign_signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Why a manifest is not a usable signature manifest.
#[derive(Debug, thiserror::Error)]
pub enum SignatureManifestError {
    /// Not a JSON image manifest.
    #[error("the signature manifest is not a JSON image manifest: {0}")]
    Json(String),
    /// No layer is a simple-signing payload.
    #[error("the manifest holds no cosign signature")]
    Empty,
}

/// One cosign signature: the payload it covers and what the layer's annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignSignature {
    /// The payload blob's digest (`sha256:<hex>`), as the layer declares it.
    pub payload_digest: String,
    /// The payload blob's declared size.
    pub payload_size: u64,
    /// The raw signature; `None` when the annotation is missing or not base64 (such a
    /// signature verifies against nothing but is still reported).
    pub signature: Option<Vec<u8>>,
    /// The signing certificate (PEM), for keyless signatures.
    pub certificate: Option<String>,
    /// The certificate chain (PEM).
    pub chain: Option<String>,
    /// The transparency-log bundle (JSON).
    pub bundle: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl CosignSignature {
    /// The signatures a signature manifest holds (at most [`MAX_SIGNATURES`]), in layer order.
    pub fn from_manifest(bytes: &[u8]) -> Result<Vec<Self>, SignatureManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| SignatureManifestError::Json(e.to_string()))?;
        let signatures: Vec<Self> = manifest
            .layers
            .into_iter()
            .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
            .take(MAX_SIGNATURES)
            .map(|mut l| Self {
                payload_digest: l.digest,
                payload_size: l.size,
                signature: l
                    .annotations
                    .get(SIGNATURE_ANNOTATION)
                    .and_then(|s| STANDARD.decode(s.trim()).ok()),
                certificate: l.annotations.remove(CERTIFICATE_ANNOTATION),
                chain: l.annotations.remove(CHAIN_ANNOTATION),
                bundle: l.annotations.remove(BUNDLE_ANNOTATION),
            })
            .collect();
        if signatures.is_empty() {
            return Err(SignatureManifestError::Empty);
        }
        Ok(signatures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_scheme_is_cosigns() {
        assert_eq!(cosign_signature_tag("sha256:abc123"), "sha256-abc123.sig");
    }

    #[test]
    fn reads_each_signature_layer_and_skips_others() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:aa", "size": 2},
            "layers": [
                {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": "sha256:01", "size": 250,
                 "annotations": {SIGNATURE_ANNOTATION: "c2lnbmF0dXJl"}},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:02", "size": 9},
                {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": "sha256:03", "size": 251,
                 "annotations": {SIGNATURE_ANNOTATION: "%%%", CERTIFICATE_ANNOTATION: "-----BEGIN CERTIFICATE-----"}}
            ]
        });
        let sigs = CosignSignature::from_manifest(manifest.to_string().as_bytes()).expect("sigs");
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0].payload_digest, "sha256:01");
        assert_eq!(sigs[0].signature.as_deref(), Some(&b"signature"[..]));
        assert_eq!(
            sigs[1].signature, None,
            "bad base64 verifies against nothing"
        );
        assert!(sigs[1].certificate.is_some());
    }

    #[test]
    fn huge_and_empty_manifests_are_bounded_or_refused() {
        let layer = serde_json::json!({"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": "sha256:01", "size": 1});
        let many = serde_json::json!({"layers": vec![layer; 10_000]});
        let sigs = CosignSignature::from_manifest(many.to_string().as_bytes()).expect("sigs");
        assert_eq!(sigs.len(), MAX_SIGNATURES);
        assert!(matches!(
            CosignSignature::from_manifest(br#"{"layers":[]}"#),
            Err(SignatureManifestError::Empty)
        ));
        assert!(matches!(
            CosignSignature::from_manifest(b"[1,2"),
            Err(SignatureManifestError::Json(_))
        ));
    }
}
