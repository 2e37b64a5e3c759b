//! The registry's vocabulary: repository names, tags, digests, references, upload ids and
//! manifests, each parsed once at the edge and carried typed down to storage.
//!
//! This module depends on nothing else in the crate and on no HTTP, SQL or storage crate, so a
//! newcomer can read it first and know the whole model.

mod digest;
mod manifest;
mod name;

pub use digest::{Algorithm, Digest, DigestError, HashStateError, UploadHasher};
pub use manifest::{
    DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, DescriptorRef, ManifestError, ManifestKind,
    MediaType, OCI_INDEX, OCI_MANIFEST, ParsedManifest,
};
pub use name::{MAX_NAME_LEN, NameError, Reference, ReferenceError, RepoName, Tag, UploadId};

/// Bytes for people: `1.5 MiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
