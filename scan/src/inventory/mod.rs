//! The packages of an image (its software bill of materials), read from its layers.
//!
//! A layer walker streams each layer's tar once, in order from the base, and offers every
//! regular file to the [`Cataloguer`]s; the files they want are read (bounded), and what they
//! find is kept by path. Whiteouts of later layers remove what lower layers contributed, so the
//! result describes the image's final file system.
//!
//! - [`walker`]: the layer walk ([`Inventory::from_layers`], [`Walker`]), its [`Limits`], and
//!   the whiteout and path rules.
//! - [`os_release`]: the image's operating system.
//! - [`dpkg`], [`apk`], [`rpm`]: the OS package databases.
//! - [`lang`]: language ecosystems' lock files, manifests and binaries.
//!
//! Dependency direction: the walker drives the cataloguers through the [`Cataloguer`] trait
//! and knows none of them; cataloguers know only the model below and the file they are given.

use std::io::Read;

pub mod apk;
pub mod dpkg;
pub mod lang;
mod layer;
mod lines;
pub mod os_release;
mod paths;
pub mod rpm;
pub mod spool;
mod tar;
pub mod walker;

pub use layer::Compression;
pub use os_release::OsRelease;
pub use walker::{Inventory, InventoryError, LayerBlob, Limits, Walker};

/// The cataloguers an inventory runs by default: the OS package databases, then the language
/// ecosystems ([`lang::cataloguers`]).
pub fn default_cataloguers() -> Vec<Box<dyn Cataloguer>> {
    let mut all: Vec<Box<dyn Cataloguer>> = vec![
        Box::new(dpkg::Dpkg),
        Box::new(apk::Apk),
        Box::new(rpm::RpmSqlite),
        Box::new(rpm::RpmLegacy),
    ];
    all.extend(lang::cataloguers());
    all
}

/// Reads all of `contents`, at most `limit` bytes: a cataloguer's bound on what it holds in
/// memory. Beyond it, [`CatalogError::TooLarge`] without reading further.
pub fn read_bounded(
    contents: &mut dyn Read,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, CatalogError> {
    let mut buf = Vec::new();
    contents
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(CatalogError::TooLarge { what, limit });
    }
    Ok(buf)
}

/// The package manager a package was found through. With the image's operating system
/// (`/etc/os-release`), it names the advisory ecosystem: dpkg on Debian 12 is OSV's `Debian:12`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    /// Debian and Ubuntu packages (`/var/lib/dpkg/status`, `status.d/`).
    Dpkg,
    /// Alpine packages (`/lib/apk/db/installed`).
    Apk,
    /// RHEL, Fedora, Rocky and Alma packages (the rpm database).
    Rpm,
    /// Rust crates (`Cargo.lock`, binaries built with `cargo auditable`).
    Cargo,
    /// JavaScript packages (`package-lock.json`, `node_modules/*/package.json`).
    Npm,
    /// Python distributions (`*.dist-info/METADATA`).
    Pypi,
    /// Go modules (a Go binary's build information).
    Golang,
    /// Java artifacts (`META-INF/maven/**/pom.properties` inside jars).
    Maven,
}

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// How it was installed.
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// Its name as its ecosystem spells it (Maven: `group:artifact`; Go: the module path).
    pub name: String,
    /// Its installed version, exactly as recorded (dpkg: with epoch and revision).
    pub version: String,
    /// The source package it was built from, where the ecosystem has one (dpkg `Source:`, apk
    /// `o:`, rpm `SOURCERPM`): OS advisories name source packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    /// The architecture it was built for, as its package manager names it (dpkg `amd64`, apk
    /// and rpm `x86_64`, `noarch`), where the package database records one: it goes into the
    /// package URL, and tells a multi-arch `libc6:amd64` from `libc6:i386`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The file it was found in, as an absolute path in the image.
    pub path: String,
}

/// The source package a binary package was built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourcePackage {
    /// The source package's name.
    pub name: String,
    /// Its version, when it differs from the binary package's (dpkg `Source: name (version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Why a cataloguer could not read a file. The walker records it and goes on: one malformed
/// database never stops an inventory.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not in the format its name promises.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read ("dpkg status", "Cargo.lock").
        what: &'static str,
        /// What was wrong, for the operator.
        reason: String,
    },
    /// The file is larger than this cataloguer reads.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
}

/// A regular file of a layer, as offered to the cataloguers.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo<'a> {
    /// Its absolute path in the image, normalised (`/var/lib/dpkg/status`).
    pub path: &'a str,
    /// Its size in bytes, as the tar header says.
    pub size: u64,
    /// Whether any execute bit is set (binaries that may carry build information).
    pub executable: bool,
}

/// Finds one kind of package in the files of an image.
///
/// The walker asks [`Cataloguer::wants`] for every regular file, cheaply, from its header alone;
/// only wanted files are read. A cataloguer bounds what it reads itself and returns
/// [`CatalogError::TooLarge`] beyond its bound.
pub trait Cataloguer: Send + Sync {
    /// A short name for logs and SBOM tool metadata ("dpkg", "cargo-lock").
    fn name(&self) -> &'static str;
    /// Whether this cataloguer reads the file.
    fn wants(&self, file: &FileInfo<'_>) -> bool;
    /// The packages the file records. `contents` yields the file's bytes, `file.size` of them.
    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError>;
}
