//! SBOM documents of an image's [`Inventory`]: CycloneDX 1.6 JSON ([`cyclonedx()`]) and SPDX
//! 2.3 JSON ([`spdx()`]), each package named by its package URL ([`purl`]).
//!
//! The documents are deterministic: the same inventory of the same image ([`Subject`]: its
//! repository and manifest digest) at the same creation time gives the same bytes. The
//! CycloneDX `serialNumber` and the SPDX `documentNamespace` are derived from the repository
//! and the digest, and every package's `bom-ref` / `SPDXID` from its purl and the path it was
//! found at, so a document stored as a referrer can be made again and compared.
//!
//! Attached to the image as OCI referrers (image-spec 1.1 `artifactType`), a document is one
//! layer whose media type is also the artifact type, the types IANA registered for the formats:
//! [`Format::media_type`]. These are what `trivy referrer put`, `oras attach --artifact-type` in
//! the formats' own guides, and Trivy's `--sbom-sources oci` discovery use. (Docker BuildKit
//! attaches SBOMs as in-toto attestations instead, and Harbor as its own
//! `application/vnd.goharbor.harbor.sbom.v1`; neither is a document type.)
//!
//! Dependency direction: this module reads the [`crate::inventory`] model and writes JSON; it
//! does no I/O.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::inventory::{Inventory, Package};

mod cyclonedx;
pub mod purl;
mod spdx;

pub use cyclonedx::cyclonedx;
pub use purl::Purl;
pub use spdx::spdx;

/// berth's version, written into documents as their creating tool's.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where SPDX document namespaces of berth's documents live. SPDX 2.3 clause 6.5 asks for a
/// unique absolute URI that need not resolve; `.invalid` (RFC 2606) says it never will.
pub const SPDX_NAMESPACE_BASE: &str = "https://berth.invalid/spdx";

/// An SBOM format berth writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CycloneDX 1.6, JSON.
    CycloneDx,
    /// SPDX 2.3, JSON.
    Spdx,
}

impl Format {
    /// Both formats.
    pub const ALL: [Format; 2] = [Format::CycloneDx, Format::Spdx];

    /// The media type of the document: the referrer manifest's `artifactType` and its one
    /// layer's `mediaType`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::CycloneDx => "application/vnd.cyclonedx+json",
            Format::Spdx => "application/spdx+json",
        }
    }

    /// The document for `inventory` of `subject` in this format.
    pub fn document(self, inventory: &Inventory, subject: &Subject) -> serde_json::Value {
        match self {
            Format::CycloneDx => cyclonedx(inventory, subject),
            Format::Spdx => spdx(inventory, subject),
        }
    }
}

/// Why a [`Subject`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SbomError {
    /// The repository is not an OCI repository name.
    #[error("{0:?} is not a repository name")]
    Repository(String),
    /// The digest is not `algorithm:encoded` as the OCI image spec's descriptor.md says.
    #[error("{0:?} is not a digest")]
    Digest(String),
}

/// The image a document describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    repository: String,
    digest: String,
    registry: Option<String>,
    created: SystemTime,
}

impl Subject {
    /// The image `digest` (its manifest's) in `repository`, described at `created`.
    pub fn new(
        repository: impl Into<String>,
        digest: impl Into<String>,
        created: SystemTime,
    ) -> Result<Self, SbomError> {
        let (repository, digest) = (repository.into(), digest.into());
        // distribution-spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`;
        // the character set is checked here, the registry checked the rest when it took the push.
        let repository_ok = !repository.is_empty()
            && repository.len() <= 4096
            && repository
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'))
            && repository.split('/').all(|s| !s.is_empty());
        if !repository_ok {
            return Err(SbomError::Repository(repository));
        }
        // image-spec descriptor.md: `algorithm ":" encoded`, algorithm
        // `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`.
        let digest_ok = digest.len() <= 1024
            && digest.split_once(':').is_some_and(|(algorithm, encoded)| {
                !algorithm.is_empty()
                    && algorithm.split(['+', '.', '_', '-']).all(|c| {
                        !c.is_empty() && c.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
                    })
                    && !encoded.is_empty()
                    && encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
            });
        if !digest_ok {
            return Err(SbomError::Digest(digest));
        }
        Ok(Subject {
            repository,
            digest,
            registry: None,
            created,
        })
    }

    /// The same image, with the registry host that serves it (`registry.example:5000`), for
    /// the image's purl `repository_url`.
    pub fn with_registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into()).filter(|r| !r.is_empty());
        self
    }

    /// The repository.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The manifest digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The image's purl.
    pub fn purl(&self) -> Purl {
        Purl::of_image(&self.repository, &self.digest, self.registry.as_deref())
    }

    /// When the document was made, as `YYYY-MM-DDThh:mm:ssZ` (SPDX 2.3 clause 6.9 requires
    /// this form; it is also an RFC 3339 `date-time`, which CycloneDX asks for).
    pub fn created(&self) -> String {
        timestamp(self.created)
    }

    /// A name-based UUID (RFC 9562 layout, version 5, from SHA-256 rather than SHA-1) of this
    /// image and `purpose`.
    fn uuid(&self, purpose: &str) -> String {
        let hash = Sha256::new()
            .chain_update(purpose)
            .chain_update([0])
            .chain_update(&self.repository)
            .chain_update([0])
            .chain_update(&self.digest)
            .finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&hash[..16]);
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex = hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

/// A package of a document: its purl, and an id unique in the document, made from the purl
/// and the path so that it is the same in every document of the same image.
struct Entry<'a> {
    package: &'a Package,
    purl: String,
    /// `[A-Za-z0-9.-]+`: usable as a CycloneDX `bom-ref` and, prefixed, as an SPDX id.
    id: String,
}

/// The inventory's packages with their purls and ids.
fn entries(inventory: &Inventory) -> Vec<Entry<'_>> {
    let mut seen = HashSet::new();
    inventory
        .packages
        .iter()
        .map(|package| {
            let purl = Purl::of_package(package, inventory.os.as_ref()).to_string();
            let hash = Sha256::new()
                .chain_update(&purl)
                .chain_update([0])
                .chain_update(&package.path)
                .finalize();
            let base = format!("{}-{}", cyclonedx::kind(package.kind), hex(&hash[..8]));
            // Two packages of one purl at one path differ only in their source package: they
            // still get ids of their own.
            let mut id = base.clone();
            let mut n = 1;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{base}-{n}");
            }
            Entry { package, purl, id }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `t` as `YYYY-MM-DDThh:mm:ssZ` in UTC; before 1970 is 1970.
fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let at = |secs| timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn subjects_are_checked_and_ids_are_stable() {
        let digest = format!("sha256:{}", "0".repeat(64));
        assert!(Subject::new("team/app", &digest, UNIX_EPOCH).is_ok());
        for bad in ["", "Team/app", "team//app", "/app", "a b"] {
            assert_eq!(
                Subject::new(bad, &digest, UNIX_EPOCH),
                Err(SbomError::Repository(bad.into()))
            );
        }
        for bad in [
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:abc",
            "sha256:a/b",
            "sha256+:ab",
        ] {
            assert_eq!(
                Subject::new("app", bad, UNIX_EPOCH),
                Err(SbomError::Digest(bad.into()))
            );
        }
        let a = Subject::new("team/app", &digest, UNIX_EPOCH).expect("valid");
        let uuid = a.uuid("cyclonedx");
        assert_eq!(uuid, a.clone().uuid("cyclonedx"));
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        let b = Subject::new("team/other", &digest, UNIX_EPOCH).expect("valid");
        assert_ne!(uuid, b.uuid("cyclonedx"));
        assert_ne!(uuid, a.uuid("spdx"));
    }
}
