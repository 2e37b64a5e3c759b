//! Language package cataloguers: what application ecosystems (crates.io, npm, PyPI, Go modules,
//! Maven) installed into an image, read from lock files, package metadata and binaries.
//!
//! Each cataloguer here implements [`Cataloguer`] and is independent of the others, except that
//! executables are read once by [`binary::Executables`] for both Go build information and
//! `cargo auditable` dependency lists, so that a binary is spooled once, not twice. Shared here:
//! bounded reads (`read_to_limit`) and the spool that gives seekable access to a stream
//! ([`spool::Spool`]).
//!
//! Every reader is bounded (file size, entry counts, decompressed bytes, nesting depth) and turns
//! garbage into a [`CatalogError`], never a panic: the images come from anyone with push rights.
//! Dependency direction: this module uses only the model of [`super`] and the crates `serde_json`,
//! `toml`, `flate2` and `tempfile`.

use std::io::Read;

use super::{CatalogError, Cataloguer, FileInfo};

pub mod binary;
pub mod cargo;
mod elf;
pub mod golang;
pub mod java;
pub mod npm;
pub mod python;
pub mod spool;
pub mod zip;

/// The language cataloguers, in the order the walker should offer files to them.
pub fn cataloguers() -> Vec<Box<dyn Cataloguer>> {
    vec![
        Box::new(cargo::CargoLock),
        Box::new(npm::PackageLock),
        Box::new(npm::NodeModules),
        Box::new(python::Distributions),
        Box::new(java::Archives),
        Box::new(binary::Executables),
    ]
}

/// Reads all of `contents` when it is at most `limit` bytes; [`CatalogError::TooLarge`] when the
/// header already says more, or the stream turns out longer than it said.
pub(crate) fn read_to_limit(
    what: &'static str,
    file: &FileInfo<'_>,
    contents: &mut dyn Read,
    limit: u64,
) -> Result<Vec<u8>, CatalogError> {
    if file.size > limit {
        return Err(CatalogError::TooLarge { what, limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
    contents.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(CatalogError::TooLarge { what, limit });
    }
    Ok(buf)
}

/// A [`CatalogError::Malformed`] for `what`.
pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> CatalogError {
    CatalogError::Malformed {
        what,
        reason: reason.into(),
    }
}

/// The last component of a `/`-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
