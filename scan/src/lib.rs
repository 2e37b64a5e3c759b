//! berth's image scanning, with no external scanner.
//!
//! - [`inventory`]: the packages an image holds (its SBOM), read once from its layers as they
//!   stream by, with whiteouts applied, so a file deleted by a later layer does not count.
//! - [`version`]: each ecosystem's own version order (dpkg, apk, rpm, SemVer, Go, PEP 440, Maven),
//!   which advisories' ranges are evaluated in.
//! - [`osv`]: advisories in the OSV format, evaluated against an installed version, and their
//!   severities.
//!
//! This crate does no network or SQL I/O: the registry feeds it layer streams and stores what it
//! returns. It depends on nothing else of berth.

pub mod inventory;
pub mod osv;
pub mod version;
