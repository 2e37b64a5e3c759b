//! cosign's signed payload, the "simple signing" format of containers/image
//! (`docs/containers-signature.5.md`): a small JSON document naming the manifest digest that
//! was signed. The signature covers these exact bytes, so they are parsed only after the
//! signature over them verified, and never re-serialized.

use serde::Deserialize;

/// The `critical.type` cosign writes.
pub const COSIGN_TYPE: &str = "cosign container image signature";
/// The `critical.type` containers/image (podman, skopeo) writes.
pub const ATOMIC_TYPE: &str = "atomic container signature";

/// Why a payload is not a simple-signing payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the right shape.
    #[error("the signed payload is not a simple-signing document: {0}")]
    Json(String),
    /// Another kind of document.
    #[error("the signed payload has type {0:?}, not a container image signature")]
    Type(String),
}

/// The fields a verifier acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// The digest of the signed manifest, as written (`sha256:<hex>`).
    pub manifest_digest: String,
    /// The image reference the signer named (informational; berth binds signatures to
    /// digests, not names).
    pub docker_reference: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    #[serde(default)]
    identity: Option<Identity>,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: Option<String>,
}

impl SimpleSigning {
    /// Reads a payload's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        if raw.critical.kind != COSIGN_TYPE && raw.critical.kind != ATOMIC_TYPE {
            return Err(PayloadError::Type(raw.critical.kind));
        }
        Ok(Self {
            manifest_digest: raw.critical.image.digest,
            docker_reference: raw.critical.identity.and_then(|i| i.reference),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_payload_cosign_writes() {
        // As `cosign sign` 2.x writes it (field order and the `optional` member included).
        let bytes = br#"{"critical":{"identity":{"docker-reference":"localhost:5000/team/app"},"image":{"docker-manifest-digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"},"type":"cosign container image signature"},"optional":{"creator":"ci"}}"#;
        let p = SimpleSigning::parse(bytes).expect("payload");
        assert_eq!(
            p.manifest_digest,
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
        );
        assert_eq!(
            p.docker_reference.as_deref(),
            Some("localhost:5000/team/app")
        );
    }

    #[test]
    fn other_documents_are_refused() {
        let other = br#"{"critical":{"image":{"docker-manifest-digest":"sha256:00"},"type":"something else"}}"#;
        assert!(matches!(
            SimpleSigning::parse(other),
            Err(PayloadError::Type(_))
        ));
        assert!(matches!(
            SimpleSigning::parse(b"{"),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            SimpleSigning::parse(br#"{"critical":{"type":"cosign container image signature"}}"#),
            Err(PayloadError::Json(_))
        ));
    }
}
