//! berth's image scanning, with no external scanner.
//!
//! - [`inventory`]: the packages an image holds (its SBOM), read once from its layers as they
//!   stream by, with whiteouts applied, so a file deleted by a later layer does not count.
//! - [`version`]: each ecosystem's own version order (dpkg, apk, rpm, SemVer, Go, PEP 440, Maven),
//!   which advisories' ranges are evaluated in.
//! - [`osv`]: advisories in the OSV format, evaluated against an installed version, and their
//!   severities.
//! - [`matching`]: an inventory's packages named as OSV names them, matched against advisory
//!   records: findings with severity and fixed version; allowlists and severity thresholds.
//! - [`policy`]: `[[scan.policy]]` tables: per-scope CVE allowlists with expiry and the
//!   `prevent_vulnerable` threshold, and the one rule judging findings against them.
//! - [`sbom`]: an inventory as a CycloneDX 1.6 or SPDX 2.3 JSON document, each package named by
//!   its package URL.
//!
//! This crate does no network I/O and touches none of berth's databases: the registry feeds it
//! layer streams and stores what it returns (an image's own rpm SQLite file is read from a
//! private temporary copy). It depends on nothing else of berth.

pub mod inventory;
pub mod matching;
pub mod osv;
pub mod policy;
pub mod sbom;
pub mod version;
