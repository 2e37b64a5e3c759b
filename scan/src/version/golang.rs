//! Go module versions: SemVer 2.0.0 with a leading `v` (`go.mod`, build information), which
//! OSV writes without the `v`. Both spellings are accepted and ordered by SemVer precedence.
//!
//! - Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`,
//!   `v1.2.4-0.20191109021931-daa7c04131f5`) are SemVer pre-releases built so that precedence
//!   orders them by commit time, after the tag they descend from and before the next one.
//! - `+incompatible` marks a major version 2 or later of a module without a `go.mod`; as build
//!   metadata it does not count in the order. No other build metadata is valid in Go.
//! - Toolchain versions, as the standard library's version in a binary's build information
//!   (`go1.21.5`, `go1.22rc1`, `go1.19beta2`, `go1.20`), are read as the SemVer versions
//!   govulncheck gives them (`1.21.5`, `1.22.0-rc.1`, `1.19.0-beta.2`, `1.20.0`); anything after
//!   a space (`go1.22.1 X:boringcrypto`) is ignored.

use super::semver;
use super::{Scheme, VersionError, precheck};

const SCHEME: Scheme = Scheme::Go;

/// A parsed Go version. Equality is SemVer precedence (`+incompatible` is ignored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(semver::Version);

impl Version {
    /// Parses a module version (`v1.2.3`, `1.2.3`, `v2.0.0+incompatible`) or a toolchain
    /// version (`go1.21.5`).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        if let Some(toolchain) = s.strip_prefix("go") {
            let toolchain = toolchain.split(' ').next().unwrap_or_default();
            return parse_toolchain(s, toolchain);
        }
        precheck(SCHEME, s)?;
        let version = semver::Version::parse_in(SCHEME, s.strip_prefix('v').unwrap_or(s))?;
        match version.build() {
            "" => {}
            "incompatible" if version.major().len() > 1 || version.major() >= "2" => {}
            "incompatible" => {
                return Err(VersionError::invalid(
                    SCHEME,
                    s,
                    "+incompatible needs major version 2 or later",
                ));
            }
            _ => {
                return Err(VersionError::invalid(
                    SCHEME,
                    s,
                    "build metadata other than +incompatible",
                ));
            }
        }
        Ok(Self(version))
    }

    /// Whether this is a pseudo-version: a pre-release naming a commit time (14 digits) and a
    /// 12-digit commit hash, directly after `X.0.0-` or after a `0.` identifier.
    pub fn is_pseudo(&self) -> bool {
        let pre: Vec<&str> = self.0.pre().collect();
        let Some((last, before)) = pre.split_last() else {
            return false;
        };
        let Some((time, hash)) = last.split_once('-') else {
            return false;
        };
        let shaped = time.len() == 14
            && time.bytes().all(|b| b.is_ascii_digit())
            && hash.len() == 12
            && hash.bytes().all(|b| b.is_ascii_alphanumeric());
        shaped && (before.last() == Some(&"0") || before.is_empty())
    }

    /// Whether the version carries `+incompatible`.
    pub fn is_incompatible(&self) -> bool {
        self.0.build() == "incompatible"
    }
}

/// Reads `1.21.5`, `1.21`, `1`, `1.22rc1` or `1.19beta2` (the part after `go`).
fn parse_toolchain(original: &str, s: &str) -> Result<Version, VersionError> {
    precheck(SCHEME, s)?;
    let invalid = |reason| VersionError::invalid(SCHEME, original, reason);
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (numbers, pre) = s.split_at(split);
    let mut parts: Vec<&str> = numbers.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("not a Go toolchain version"));
    }
    parts.resize(3, "0");
    let mut semver = parts.join(".");
    if !pre.is_empty() {
        let kind = ["rc", "beta", "alpha"]
            .into_iter()
            .find(|k| pre.starts_with(k));
        let Some(kind) = kind else {
            return Err(invalid("unknown toolchain pre-release"));
        };
        let n = &pre[kind.len()..];
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("toolchain pre-release without a number"));
        }
        semver = format!("{semver}-{kind}.{n}");
    }
    semver::Version::parse_in(SCHEME, &semver)
        .map(Version)
        .map_err(|_| invalid("not a Go toolchain version"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn go_order_with_pseudo_versions() {
        // Each newer than the one before (golang.org/ref/mod#pseudo-versions).
        let ordered = [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20200101000000-000000000000",
            "v0.1.0",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-pre",
            "v1.2.4-pre.0.20191109021931-daa7c04131f5",
            "v1.2.4",
            "v2.0.0+incompatible",
            "v2.1.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(v(pair[0]).cmp(&v(pair[1])), Ordering::Less, "{pair:?}");
        }
        assert_eq!(v("v1.2.3"), v("1.2.3"), "OSV writes Go versions without v");
        assert_eq!(v("v2.0.0+incompatible"), v("2.0.0"));
        assert!(v("v2.0.0+incompatible").is_incompatible());
    }

    #[test]
    fn pseudo_versions_are_recognised() {
        for pseudo in [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-pre.0.20191109021931-daa7c04131f5",
            "v3.0.1-0.20210101000000-abcdefabcdef+incompatible",
        ] {
            assert!(v(pseudo).is_pseudo(), "{pseudo}");
        }
        for tagged in [
            "v1.2.3",
            "v1.2.4-pre",
            "v1.2.4-rc.1",
            "v0.0.0-2019-daa7c04131f5",
        ] {
            assert!(!v(tagged).is_pseudo(), "{tagged}");
        }
    }

    #[test]
    fn toolchain_versions_read_as_govulncheck_does() {
        let cases = [
            ("go1.21.5", "1.21.5"),
            ("go1.20", "1.20.0"),
            ("go1", "1.0.0"),
            ("go1.22rc1", "1.22.0-rc.1"),
            ("go1.19beta2", "1.19.0-beta.2"),
            ("go1.22.1 X:boringcrypto", "1.22.1"),
        ];
        for (toolchain, semver) in cases {
            assert_eq!(v(toolchain), v(semver), "{toolchain}");
        }
        assert!(v("go1.22rc1") < v("go1.22.0"));
        assert!(v("go1.21.10") > v("go1.21.9"));
    }

    #[test]
    fn go_refuses_garbage() {
        for bad in [
            "",
            "v",
            "v1",
            "v1.2",
            "vv1.2.3",
            "V1.2.3",
            "v1.2.3+build",
            "v1.0.0+incompatible",
            "v1.2.3 ",
            "go",
            "go1.",
            "go1.2.3.4",
            "go1.21x1",
            "gorc1",
            "(devel)",
            "go1.21rc",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Version::parse("v10.0.0+incompatible").is_ok());
    }
}
