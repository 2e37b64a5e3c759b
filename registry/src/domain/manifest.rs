//! Manifest media types and the parts of a manifest the registry must understand: which blobs
//! and child manifests it references, its subject, artifact type and annotations.
//!
//! The registry stores and serves a manifest's exact bytes; it parses them only to validate and
//! to record references. Parsing is deliberately lenient about fields it does not need, so new
//! optional fields in future specs do not break pushes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::digest::{Digest, DigestError};

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Layer media types whose bytes live elsewhere (`urls`), which registries must not require.
const FOREIGN_LAYERS: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// A media type (`type/subtype`, RFC 6838 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaType(String);

impl MediaType {
    /// Parses a media type, ignoring parameters such as `; charset=utf-8`.
    pub fn parse(s: &str) -> Option<Self> {
        let essence = s.split(';').next().unwrap_or_default().trim();
        let (ty, sub) = essence.split_once('/')?;
        let restricted = |p: &str| {
            !p.is_empty()
                && p.len() <= 127
                && p.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                        )
                })
        };
        (restricted(ty) && restricted(sub)).then(|| Self(essence.to_ascii_lowercase()))
    }

    /// The media type as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a manifest describes one image (or artifact) or a list of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest: a config and layers.
    Image,
    /// An index or manifest list: child manifests.
    Index,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the expected shape.
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// `schemaVersion` is not 2.
    #[error("unsupported manifest schemaVersion {0}: only schema version 2 is supported")]
    SchemaVersion(i64),
    /// The media type is not a manifest type this registry stores.
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    /// The `Content-Type` header disagrees with the manifest's own `mediaType`.
    #[error("Content-Type {header:?} does not match the manifest mediaType {body:?}")]
    MediaTypeMismatch {
        /// The request's `Content-Type`.
        header: String,
        /// The manifest's `mediaType` field.
        body: String,
    },
    /// A required field is absent.
    #[error("manifest of type {media_type} lacks the required field {field:?}")]
    MissingField {
        /// The manifest's media type.
        media_type: String,
        /// The missing field.
        field: &'static str,
    },
    /// A descriptor is malformed.
    #[error("invalid descriptor in {field}: {reason}")]
    Descriptor {
        /// Where in the manifest.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A descriptor as far as the registry cares: what it points to and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorRef {
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The declared size in bytes.
    pub size: u64,
}

/// What the registry learns from a manifest's bytes.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    /// Image manifest or index.
    pub kind: ManifestKind,
    /// The media type the manifest is stored and served with.
    pub media_type: MediaType,
    /// Blobs that must exist in the repository: the config and every distributable layer.
    pub blobs: Vec<DescriptorRef>,
    /// Child manifests that must exist in the repository (indexes only).
    pub children: Vec<DescriptorRef>,
    /// The manifest this one refers to (OCI 1.1 `subject`), if any.
    pub subject: Option<Digest>,
    /// The artifact type shown in the referrers API: `artifactType`, else the config media type.
    pub artifact_type: Option<MediaType>,
    /// The manifest's annotations, shown in the referrers API.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
}

impl RawDescriptor {
    fn check(&self, field: &'static str) -> Result<DescriptorRef, ManifestError> {
        let bad = |reason: String| ManifestError::Descriptor { field, reason };
        let media_type = self
            .media_type
            .as_deref()
            .ok_or_else(|| bad("mediaType is missing".into()))?;
        MediaType::parse(media_type)
            .ok_or_else(|| bad(format!("mediaType {media_type:?} is not a media type")))?;
        let digest = self
            .digest
            .as_deref()
            .ok_or_else(|| bad("digest is missing".into()))?;
        let digest = Digest::parse(digest).map_err(|e: DigestError| bad(e.to_string()))?;
        let size = self.size.ok_or_else(|| bad("size is missing".into()))?;
        let size = u64::try_from(size).map_err(|_| bad(format!("size {size} is negative")))?;
        Ok(DescriptorRef { digest, size })
    }

    fn is_foreign(&self) -> bool {
        self.media_type
            .as_deref()
            .is_some_and(|m| FOREIGN_LAYERS.contains(&m))
    }
}

impl ParsedManifest {
    /// Parses manifest bytes sent with the given `Content-Type` (if any).
    ///
    /// The media type is the manifest's `mediaType` field; when it is absent the `Content-Type`
    /// decides. When both are present they must agree (OCI distribution spec, "Pushing
    /// Manifests": the `Content-Type` header must match the manifest's `mediaType`).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        let header = content_type.and_then(MediaType::parse);
        let body = raw
            .media_type
            .as_deref()
            .map(|m| {
                MediaType::parse(m).ok_or_else(|| ManifestError::UnsupportedMediaType(m.to_owned()))
            })
            .transpose()?;
        let media_type = match (header, body) {
            (Some(h), Some(b)) if h != b && !is_generic_json(&h) => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.0,
                    body: b.0,
                });
            }
            (_, Some(b)) => b,
            (Some(h), None) if !is_generic_json(&h) => h,
            // Neither says: infer the OCI type from the shape, as the image spec allows.
            _ if raw.manifests.is_some() => MediaType(OCI_INDEX.into()),
            _ => MediaType(OCI_MANIFEST.into()),
        };
        let kind = match media_type.as_str() {
            DOCKER_MANIFEST_V2 | OCI_MANIFEST => ManifestKind::Image,
            DOCKER_MANIFEST_LIST | OCI_INDEX => ManifestKind::Index,
            other => return Err(ManifestError::UnsupportedMediaType(other.to_owned())),
        };
        match raw.schema_version {
            Some(2) => {}
            Some(v) => return Err(ManifestError::SchemaVersion(v)),
            None => {
                return Err(ManifestError::MissingField {
                    media_type: media_type.0,
                    field: "schemaVersion",
                });
            }
        }
        let missing = |field| ManifestError::MissingField {
            media_type: media_type.0.clone(),
            field,
        };
        let (blobs, children, config_type) = match kind {
            ManifestKind::Image => {
                let config = raw.config.as_ref().ok_or_else(|| missing("config"))?;
                let mut blobs = vec![config.check("config")?];
                for layer in raw.layers.as_deref().unwrap_or_default() {
                    let layer_ref = layer.check("layers")?;
                    if !layer.is_foreign() {
                        blobs.push(layer_ref);
                    }
                }
                (blobs, Vec::new(), config.media_type.clone())
            }
            ManifestKind::Index => {
                let manifests = raw.manifests.as_ref().ok_or_else(|| missing("manifests"))?;
                let children = manifests
                    .iter()
                    .map(|m| m.check("manifests"))
                    .collect::<Result<_, _>>()?;
                (Vec::new(), children, None)
            }
        };
        let subject = raw
            .subject
            .as_ref()
            .map(|s| s.check("subject").map(|d| d.digest))
            .transpose()?;
        let artifact_type = match raw.artifact_type.as_deref() {
            Some(a) => Some(
                MediaType::parse(a).ok_or_else(|| ManifestError::Descriptor {
                    field: "artifactType",
                    reason: format!("{a:?} is not a media type"),
                })?,
            ),
            None => config_type.as_deref().and_then(MediaType::parse),
        };
        Ok(Self {
            kind,
            media_type,
            blobs,
            children,
            subject,
            artifact_type,
            annotations: raw.annotations,
        })
    }
}

/// `application/json` and friends say nothing about which manifest type a body is.
fn is_generic_json(m: &MediaType) -> bool {
    matches!(
        m.as_str(),
        "application/json" | "application/octet-stream" | "text/plain"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}}]{extra}}}"#,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn parses_an_image_manifest() {
        let m = ParsedManifest::parse(image("").as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(m.blobs[1].size, 10);
        assert_eq!(
            m.artifact_type.unwrap().as_str(),
            "application/vnd.oci.image.config.v1+json"
        );
        assert!(m.subject.is_none());
    }

    #[test]
    fn reads_subject_artifact_type_and_annotations() {
        let extra = format!(
            r#","artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}},"annotations":{{"k":"v"}}"#,
            d('c')
        );
        let m = ParsedManifest::parse(image(&extra).as_bytes(), None).unwrap();
        assert_eq!(m.subject.unwrap().to_string(), d('c'));
        assert_eq!(
            m.artifact_type.unwrap().as_str(),
            "application/vnd.example.sbom"
        );
        assert_eq!(m.annotations["k"], "v");
    }

    #[test]
    fn parses_an_index() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST_V2}","digest":"{}","size":7,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            d('e')
        );
        let m = ParsedManifest::parse(body.as_bytes(), Some(DOCKER_MANIFEST_LIST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.children.len(), 1);
        assert!(m.blobs.is_empty());
    }

    #[test]
    fn skips_foreign_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_V2}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":10,"urls":["https://example.com/x"]}}]}}"#,
            d('a'),
            d('b')
        );
        let m = ParsedManifest::parse(body.as_bytes(), None).unwrap();
        assert_eq!(m.blobs.len(), 1);
    }

    #[test]
    fn content_type_must_agree_with_media_type() {
        let err =
            ParsedManifest::parse(image("").as_bytes(), Some(DOCKER_MANIFEST_V2)).unwrap_err();
        assert!(matches!(err, ManifestError::MediaTypeMismatch { .. }));
        // Generic JSON says nothing, so the body decides.
        assert!(ParsedManifest::parse(image("").as_bytes(), Some("application/json")).is_ok());
    }

    #[test]
    fn refuses_bad_manifests() {
        let cases: Vec<(String, Option<&str>)> = vec![
            ("not json".into(), None),
            ("[]".into(), None),
            (r#"{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#.into(), None),
            (r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.into(), None),
            (r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.into(), None),
            (r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#.into(), None),
            (r#"{"schemaVersion":2,"mediaType":"application/x-unknown"}"#.into(), None),
            (r#"{"schemaVersion":2}"#.into(), Some("application/vnd.docker.distribution.manifest.v1+prettyjws")),
            (image("").replace("\"size\":10", "\"size\":-1"), None),
            (image("").replace(&d('b'), "sha256:nothex"), None),
            (image(r#","subject":{"digest":"sha256:x"}"#), None),
        ];
        for (body, ct) in cases {
            assert!(
                ParsedManifest::parse(body.as_bytes(), ct).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(
            MediaType::parse("Application/JSON; charset=utf-8")
                .unwrap()
                .as_str(),
            "application/json"
        );
        assert!(MediaType::parse("nonsense").is_none());
        assert!(MediaType::parse("a/b<script>").is_none());
    }
}
