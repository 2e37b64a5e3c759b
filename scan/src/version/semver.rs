//! Semantic Versioning 2.0.0 (crates.io, npm, OSV `SEMVER` ranges): `MAJOR.MINOR.PATCH`,
//! an optional `-pre.release` and optional `+build` metadata, ordered by the specification's
//! precedence (clause 11):
//! - major, minor and patch compare numerically;
//! - a pre-release is older than its release (`1.0.0-rc.1` < `1.0.0`);
//! - pre-release identifiers compare left to right: numeric ones by value, others as ASCII
//!   strings, numeric before alphanumeric, and a shorter list first when all else is equal;
//! - build metadata does not count (`1.0.0+a` equals `1.0.0+b` here).
//!
//! Parsing is strict (clauses 2, 9 and 10): no leading zeros in numbers, no empty identifiers.
//! Numbers are kept as digit strings, so any length compares correctly.

use std::cmp::Ordering;

use super::{Scheme, VersionError, cmp_digits, precheck};

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identifier {
    Numeric(String),
    Alphanumeric(String),
}

impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Numeric(a), Self::Numeric(b)) => cmp_digits(a, b),
            (Self::Numeric(_), Self::Alphanumeric(_)) => Ordering::Less,
            (Self::Alphanumeric(_), Self::Numeric(_)) => Ordering::Greater,
            (Self::Alphanumeric(a), Self::Alphanumeric(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed SemVer 2.0.0 version. Equality is precedence: build metadata is ignored.
#[derive(Debug, Clone)]
pub struct Version {
    core: [String; 3],
    pre: Vec<Identifier>,
    build: String,
}

impl Version {
    /// Parses a strict SemVer 2.0.0 version (no leading `v`).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        Self::parse_in(Scheme::SemVer, s)
    }

    /// Parses, naming `scheme` in errors (Go versions are SemVer underneath).
    pub(crate) fn parse_in(scheme: Scheme, s: &str) -> Result<Self, VersionError> {
        precheck(scheme, s)?;
        let invalid = |reason| VersionError::invalid(scheme, s, reason);
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => {
                if !build
                    .split('.')
                    .all(|id| !id.is_empty() && id.bytes().all(identifier_byte))
                {
                    return Err(invalid("invalid build metadata"));
                }
                (rest, build)
            }
            None => (s, ""),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut numbers = core.split('.');
        let mut next = || -> Result<String, VersionError> {
            let n = numbers
                .next()
                .ok_or_else(|| invalid("needs MAJOR.MINOR.PATCH"))?;
            if !is_number(n) {
                return Err(invalid(
                    "MAJOR, MINOR and PATCH must be numbers without leading zeros",
                ));
            }
            Ok(n.to_owned())
        };
        let core_numbers = [next()?, next()?, next()?];
        if numbers.next().is_some() {
            return Err(invalid("more than MAJOR.MINOR.PATCH"));
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.bytes().all(identifier_byte) {
                        Err(invalid("invalid pre-release identifier"))
                    } else if id.bytes().all(|b| b.is_ascii_digit()) {
                        if is_number(id) {
                            Ok(Identifier::Numeric(id.to_owned()))
                        } else {
                            Err(invalid(
                                "numeric pre-release identifier with a leading zero",
                            ))
                        }
                    } else {
                        Ok(Identifier::Alphanumeric(id.to_owned()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            core: core_numbers,
            pre,
            build: build.to_owned(),
        })
    }

    /// Whether this is a pre-release (has a `-` part).
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The major version, as written.
    pub fn major(&self) -> &str {
        &self.core[0]
    }

    /// The build metadata, without `+` (empty when absent).
    pub fn build(&self) -> &str {
        &self.build
    }

    /// The pre-release identifiers, as written.
    pub fn pre(&self) -> impl Iterator<Item = &str> {
        self.pre.iter().map(|id| match id {
            Identifier::Numeric(s) | Identifier::Alphanumeric(s) => s.as_str(),
        })
    }
}

fn identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A numeric identifier: digits, and no leading zero unless it is `0`.
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let core = self
            .core
            .iter()
            .zip(&other.core)
            .map(|(a, b)| cmp_digits(a, b));
        for ordering in core {
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// The precedence examples of SemVer 2.0.0 clause 11, each newer than the one before.
    #[test]
    fn spec_precedence_examples() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for b in &ordered[i + 1..] {
                assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
                assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
            }
        }
    }

    #[test]
    fn build_metadata_is_ignored_and_numbers_have_no_width() {
        assert_eq!(v("1.0.0+20130313144700"), v("1.0.0+exp.sha.5114f85"));
        assert_eq!(v("1.0.0-beta+exp.sha.5114f85").build(), "exp.sha.5114f85");
        assert!(v("1.0.0-x-y-z.--").is_prerelease());
        assert!(v("10.0.0") > v("9.99.99"));
        assert!(v("1.0.0-rc.10") > v("1.0.0-rc.9"));
        let big = format!("{}.0.0", "9".repeat(100));
        assert!(v(&big) > v("1.0.0"));
    }

    #[test]
    fn semver_refuses_what_the_grammar_refuses() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "v1.2.3",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+a..b",
            "1.2.3-a_b",
            "1.2.3-é",
            " 1.2.3",
            "1.2.-3",
            "-1.2.3",
            "1.2.3++",
            "a.b.c",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            Version::parse("1.2.3-0a").is_ok(),
            "alphanumeric may start with 0"
        );
    }
}
