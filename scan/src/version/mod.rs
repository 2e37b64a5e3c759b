//! Version order per ecosystem: the rules each package manager itself uses to decide whether an
//! installed version is before an advisory's fixed version.
//!
//! One module per scheme, each with a `Version` type whose `parse` returns a typed
//! [`VersionError`] on garbage (never a panic) and whose `Ord` is the scheme's total order:
//!
//! | module | used by | rules |
//! | --- | --- | --- |
//! | [`dpkg`] | Debian, Ubuntu | Debian Policy 5.6.12 |
//! | [`apk`] | Alpine | apk-tools' version rules |
//! | [`rpm`] | Red Hat, Rocky Linux, AlmaLinux | rpmvercmp |
//! | [`semver`] | crates.io, npm | SemVer 2.0.0 precedence |
//! | [`golang`] | Go | SemVer with `v`, pseudo-versions, `+incompatible` |
//! | [`pep440`] | PyPI | PEP 440 |
//! | [`maven`] | Maven | Maven's `ComparableVersion` |
//!
//! [`Ecosystem`] maps an OSV ecosystem name (`Debian:12`, `Alpine:v3.19`, `PyPI`) to its scheme.
//! Every parser refuses strings longer than [`MAX_LEN`] bytes, so comparing is linear in a small
//! bound whatever a database or an advisory holds. Numbers are compared as digit strings, never
//! converted, so no component overflows.
//!
//! This module depends on nothing else of the crate.

use std::cmp::Ordering;
use std::fmt;

pub mod apk;
pub mod dpkg;
pub mod golang;
pub mod maven;
pub mod pep440;
pub mod rpm;
pub mod semver;

/// The longest version string any parser accepts, in bytes. Real versions are far shorter (the
/// longest in Debian's archive are about 80 bytes); the bound keeps hostile input cheap.
pub const MAX_LEN: usize = 256;

/// A version scheme: one package manager's syntax and order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian's dpkg.
    Dpkg,
    /// Alpine's apk-tools.
    Apk,
    /// rpm.
    Rpm,
    /// Semantic Versioning 2.0.0.
    SemVer,
    /// Go modules.
    Go,
    /// Python's PEP 440.
    Pep440,
    /// Maven's `ComparableVersion`.
    Maven,
}

impl Scheme {
    /// The scheme's name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpkg => "dpkg",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::SemVer => "SemVer",
            Self::Go => "Go",
            Self::Pep440 => "PEP 440",
            Self::Maven => "Maven",
        }
    }

    /// Compares two version strings in this scheme; an error names the one that does not parse.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(match self {
            Self::Dpkg => dpkg::Version::parse(a)?.cmp(&dpkg::Version::parse(b)?),
            Self::Apk => apk::Version::parse(a)?.cmp(&apk::Version::parse(b)?),
            Self::Rpm => rpm::Version::parse(a)?.cmp(&rpm::Version::parse(b)?),
            Self::SemVer => semver::Version::parse(a)?.cmp(&semver::Version::parse(b)?),
            Self::Go => golang::Version::parse(a)?.cmp(&golang::Version::parse(b)?),
            Self::Pep440 => pep440::Version::parse(a)?.cmp(&pep440::Version::parse(b)?),
            Self::Maven => maven::Version::parse(a)?.cmp(&maven::Version::parse(b)?),
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a version of a scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The string is empty (or only whitespace).
    #[error("empty {scheme} version")]
    Empty {
        /// The scheme it was parsed in.
        scheme: Scheme,
    },
    /// The string is longer than [`MAX_LEN`].
    #[error("{scheme} version is {len} bytes, longer than {MAX_LEN}")]
    TooLong {
        /// The scheme it was parsed in.
        scheme: Scheme,
        /// Its length in bytes.
        len: usize,
    },
    /// The string breaks the scheme's grammar.
    #[error("invalid {scheme} version {version:?}: {reason}")]
    Invalid {
        /// The scheme it was parsed in.
        scheme: Scheme,
        /// The offending string (at most [`MAX_LEN`] bytes, so safe to log).
        version: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

impl VersionError {
    pub(crate) fn invalid(scheme: Scheme, version: &str, reason: &'static str) -> Self {
        Self::Invalid {
            scheme,
            version: version.to_owned(),
            reason,
        }
    }
}

/// The checks every parser starts with: not empty, not longer than [`MAX_LEN`], and no
/// whitespace or control characters inside (`trim` first where a scheme allows them around).
pub(crate) fn precheck(scheme: Scheme, s: &str) -> Result<(), VersionError> {
    if s.len() > MAX_LEN {
        return Err(VersionError::TooLong {
            scheme,
            len: s.len(),
        });
    }
    if s.is_empty() {
        return Err(VersionError::Empty { scheme });
    }
    if s.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(VersionError::invalid(
            scheme,
            s,
            "contains whitespace or control characters",
        ));
    }
    Ok(())
}

/// Compares two runs of ASCII digits by value, whatever their length: leading zeros are
/// ignored, then the longer is larger, then the first differing digit decides.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The ecosystems OSV publishes advisories for that berth matches, by OSV's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    /// `Debian` (`Debian:12`).
    Debian,
    /// `Ubuntu` (`Ubuntu:22.04:LTS`).
    Ubuntu,
    /// `Alpine` (`Alpine:v3.19`).
    Alpine,
    /// `Red Hat` (`Red Hat:enterprise_linux:9::baseos`).
    RedHat,
    /// `Rocky Linux` (`Rocky Linux:9`).
    RockyLinux,
    /// `AlmaLinux` (`AlmaLinux:9`).
    AlmaLinux,
    /// `crates.io`.
    CratesIo,
    /// `npm`.
    Npm,
    /// `PyPI`.
    PyPi,
    /// `Go`.
    Go,
    /// `Maven`.
    Maven,
}

/// An OSV ecosystem string split into the ecosystem and its release, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcosystemRelease {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// What follows the first `:`, such as `12` in `Debian:12` or `v3.19` in `Alpine:v3.19`.
    pub release: Option<String>,
}

/// An ecosystem name berth does not match advisories for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported OSV ecosystem {0:?}")]
pub struct UnknownEcosystem(pub String);

impl Ecosystem {
    const ALL: [Self; 11] = [
        Self::Debian,
        Self::Ubuntu,
        Self::Alpine,
        Self::RedHat,
        Self::RockyLinux,
        Self::AlmaLinux,
        Self::CratesIo,
        Self::Npm,
        Self::PyPi,
        Self::Go,
        Self::Maven,
    ];

    /// OSV's name for the ecosystem, without a release.
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::Debian => "Debian",
            Self::Ubuntu => "Ubuntu",
            Self::Alpine => "Alpine",
            Self::RedHat => "Red Hat",
            Self::RockyLinux => "Rocky Linux",
            Self::AlmaLinux => "AlmaLinux",
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::PyPi => "PyPI",
            Self::Go => "Go",
            Self::Maven => "Maven",
        }
    }

    /// The version scheme of the ecosystem's `ECOSYSTEM` ranges and package versions.
    pub fn scheme(self) -> Scheme {
        match self {
            Self::Debian | Self::Ubuntu => Scheme::Dpkg,
            Self::Alpine => Scheme::Apk,
            Self::RedHat | Self::RockyLinux | Self::AlmaLinux => Scheme::Rpm,
            Self::CratesIo | Self::Npm => Scheme::SemVer,
            Self::PyPi => Scheme::Pep440,
            Self::Go => Scheme::Go,
            Self::Maven => Scheme::Maven,
        }
    }

    /// Whether a record's package in release `theirs` of this ecosystem applies to a package
    /// whose release is `ours` (both what follows the ecosystem's first `:`).
    ///
    /// Exact, except for Red Hat, whose OSV releases are product streams (a CPE without its
    /// `cpe:/[oa]:redhat:` prefix, OSV schema "Affected package": `enterprise_linux:9::baseos`,
    /// `enterprise_linux:9::appstream`, `enterprise_linux:10.1`, `rhel_eus:9.4::baseos`): an
    /// image names only `enterprise_linux:<major>` (see `matching::target`), and every stream
    /// of it applies, that is `theirs` equal to `ours` or continuing it with `:` or `.`.
    /// Extended-support streams (`rhel_eus`, `rhel_aus`, `rhel_e4s`) and layered products
    /// (`openshift:4.16::el9`) continue another name and do not apply: a standard RHEL or UBI
    /// image takes its updates from the main stream.
    pub fn release_applies(self, theirs: &str, ours: &str) -> bool {
        if theirs == ours {
            return true;
        }
        match self {
            Self::RedHat if !ours.is_empty() => theirs
                .strip_prefix(ours)
                .is_some_and(|rest| rest.starts_with([':', '.'])),
            _ => false,
        }
    }

    /// Parses an OSV `affected[].package.ecosystem` value. The name before the first `:` must
    /// match exactly (OSV names are case-sensitive); the rest is the release.
    pub fn parse_osv(value: &str) -> Result<EcosystemRelease, UnknownEcosystem> {
        let (name, release) = match value.split_once(':') {
            Some((name, release)) => (name, Some(release)),
            None => (value, None),
        };
        let ecosystem = Self::ALL
            .into_iter()
            .find(|e| e.osv_name() == name)
            .ok_or_else(|| UnknownEcosystem(value.chars().take(64).collect()))?;
        Ok(EcosystemRelease {
            ecosystem,
            release: release.map(str::to_owned),
        })
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_names_map_to_schemes_with_their_release() {
        let cases = [
            ("Debian:12", Ecosystem::Debian, Some("12"), Scheme::Dpkg),
            ("Debian", Ecosystem::Debian, None, Scheme::Dpkg),
            (
                "Ubuntu:22.04:LTS",
                Ecosystem::Ubuntu,
                Some("22.04:LTS"),
                Scheme::Dpkg,
            ),
            (
                "Alpine:v3.19",
                Ecosystem::Alpine,
                Some("v3.19"),
                Scheme::Apk,
            ),
            (
                "Rocky Linux:9",
                Ecosystem::RockyLinux,
                Some("9"),
                Scheme::Rpm,
            ),
            ("AlmaLinux:8", Ecosystem::AlmaLinux, Some("8"), Scheme::Rpm),
            (
                "Red Hat:enterprise_linux:9::baseos",
                Ecosystem::RedHat,
                Some("enterprise_linux:9::baseos"),
                Scheme::Rpm,
            ),
            ("crates.io", Ecosystem::CratesIo, None, Scheme::SemVer),
            ("npm", Ecosystem::Npm, None, Scheme::SemVer),
            ("PyPI", Ecosystem::PyPi, None, Scheme::Pep440),
            ("Go", Ecosystem::Go, None, Scheme::Go),
            ("Maven", Ecosystem::Maven, None, Scheme::Maven),
        ];
        for (name, ecosystem, release, scheme) in cases {
            let parsed = Ecosystem::parse_osv(name).expect(name);
            assert_eq!(parsed.ecosystem, ecosystem, "{name}");
            assert_eq!(parsed.release.as_deref(), release, "{name}");
            assert_eq!(parsed.ecosystem.scheme(), scheme, "{name}");
        }
        for name in ["debian:12", "", "Hex", "Packagist", ":12", "PyPi"] {
            assert!(Ecosystem::parse_osv(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn red_hat_streams_apply_to_their_major_release_only() {
        let ours = "enterprise_linux:9";
        for theirs in [
            "enterprise_linux:9",
            "enterprise_linux:9::baseos",
            "enterprise_linux:9::appstream",
            "enterprise_linux:9::crb",
        ] {
            assert!(Ecosystem::RedHat.release_applies(theirs, ours), "{theirs}");
        }
        for theirs in [
            "enterprise_linux:8::baseos",
            "enterprise_linux:90::baseos",
            "enterprise_linux:10.1",
            "enterprise_linux_ai:9::baseos",
            "rhel_eus:9.4::baseos",
            "openshift:4.16::el9",
            "",
        ] {
            assert!(!Ecosystem::RedHat.release_applies(theirs, ours), "{theirs}");
        }
        // RHEL 10's streams carry the minor release.
        assert!(Ecosystem::RedHat.release_applies("enterprise_linux:10.1", "enterprise_linux:10"));
        assert!(!Ecosystem::RedHat.release_applies("enterprise_linux:1", ""));
        // Other ecosystems compare releases exactly.
        assert!(Ecosystem::Debian.release_applies("12", "12"));
        assert!(!Ecosystem::Debian.release_applies("12.1", "12"));
        assert!(!Ecosystem::Ubuntu.release_applies("22.04:LTS", "22.04"));
    }

    #[test]
    fn digit_runs_compare_by_value_at_any_length() {
        assert_eq!(cmp_digits("0010", "10"), Ordering::Equal);
        assert_eq!(cmp_digits("9", "10"), Ordering::Less);
        assert_eq!(cmp_digits("", "0"), Ordering::Equal);
        let big = "9".repeat(100);
        assert_eq!(cmp_digits(&big, &format!("1{big}")), Ordering::Less);
    }

    #[test]
    fn schemes_compare_strings_and_name_the_bad_one() {
        assert_eq!(Scheme::Dpkg.compare("1.0-1", "1.0-2"), Ok(Ordering::Less));
        assert_eq!(
            Scheme::Pep440.compare("1.0RC1", "1.0rc1"),
            Ok(Ordering::Equal)
        );
        let err = Scheme::SemVer
            .compare("1.0.0", "1.0")
            .expect_err("1.0 is not SemVer");
        assert!(matches!(err, VersionError::Invalid { ref version, .. } if version == "1.0"));
        assert!(matches!(
            Scheme::Rpm.compare(&"1".repeat(MAX_LEN + 1), "1"),
            Err(VersionError::TooLong { .. })
        ));
    }

    /// Pseudo-random strings over each scheme's alphabet (a fixed-seed generator, so failures
    /// reproduce): parsing never panics, and what parses is ordered consistently (antisymmetric,
    /// and sorting agrees with every pairwise comparison, which a non-transitive order breaks).
    ///
    /// Maven's `ComparableVersion` is not transitive on odd strings (this test found `.` sorted
    /// before `0a09~t~` although `0a09~t~` < `.`), so for Maven only antisymmetry is checked,
    /// and OSV evaluation never sorts versions (see `osv::evaluate_in`).
    #[test]
    fn generated_versions_parse_without_panic_and_order_consistently() {
        let alphabet = b"0123456789.-+~^_:!abcprvgtdelfhmsxzABRCV";
        let mut state: u64 = 0x5eed_1234_abcd_0001;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let schemes = [
            Scheme::Dpkg,
            Scheme::Apk,
            Scheme::Rpm,
            Scheme::SemVer,
            Scheme::Go,
            Scheme::Pep440,
            Scheme::Maven,
        ];
        for scheme in schemes {
            let mut accepted = Vec::new();
            for _ in 0..10_000 {
                let len = 1 + next() % 12;
                let s: String = (0..len)
                    .map(|_| char::from(alphabet[next() % alphabet.len()]))
                    .collect();
                if scheme.compare(&s, &s).is_ok() {
                    accepted.push(s);
                }
            }
            // Well-formed versions too, so every scheme has plenty to order.
            for _ in 0..300 {
                let s = format!("{}.{}.{}", next() % 3, next() % 12, next() % 3);
                accepted.push(s);
            }
            let mut sorted = accepted.clone();
            let transitive = scheme != Scheme::Maven;
            if transitive {
                sorted.sort_by(|a, b| scheme.compare(a, b).unwrap_or(Ordering::Equal));
            }
            for (i, a) in sorted.iter().enumerate().step_by(7) {
                for b in sorted.iter().skip(i + 1).step_by(13) {
                    let ab = scheme.compare(a, b).unwrap_or(Ordering::Equal);
                    if transitive {
                        assert_ne!(ab, Ordering::Greater, "{scheme}: {a:?} sorted before {b:?}");
                    }
                    assert_eq!(
                        scheme.compare(b, a).map(Ordering::reverse),
                        Ok(ab),
                        "{scheme}: {a:?} {b:?}"
                    );
                }
            }
        }
    }

    /// Odd input for every scheme: each parse returns (Ok or a typed error) without panicking,
    /// and every accepted version compares equal to itself.
    #[test]
    fn odd_strings_never_panic_in_any_scheme() {
        let long = "1.".repeat(MAX_LEN);
        let deep = "1-".repeat(MAX_LEN / 2 - 1) + "1";
        let odd = [
            "",
            " ",
            "\0",
            "-",
            ":",
            "~",
            "^",
            ".",
            "..",
            "+",
            "_",
            "!",
            "v",
            "0",
            "00",
            "1!",
            "1!!2",
            "::::",
            "1:",
            ":1",
            "-1",
            "1-",
            "1..2",
            "1.2.",
            "é",
            "1.0é",
            "1\u{202e}0",
            "99999999999999999999999999999999",
            "1_",
            "1_a",
            "1.0-r",
            "1.0~",
            "1.0^",
            "1+",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-+",
            "v1",
            "go1",
            "go",
            "1-a-",
            "1-.1",
            "1..-",
            long.as_str(),
            deep.as_str(),
        ];
        let schemes = [
            Scheme::Dpkg,
            Scheme::Apk,
            Scheme::Rpm,
            Scheme::SemVer,
            Scheme::Go,
            Scheme::Pep440,
            Scheme::Maven,
        ];
        for scheme in schemes {
            for s in odd {
                if let Ok(ordering) = scheme.compare(s, s) {
                    assert_eq!(ordering, Ordering::Equal, "{scheme}: {s:?}");
                }
            }
        }
    }
}
