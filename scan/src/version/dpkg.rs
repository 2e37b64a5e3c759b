//! Debian package versions: `[epoch:]upstream_version[-debian_revision]`, ordered as Debian
//! Policy 5.6.12 says and dpkg does.
//!
//! - The epoch is a small unsigned integer (dpkg refuses one above `INT_MAX`); absent means 0.
//! - The revision is what follows the last `-`; without one, the revision is empty.
//! - Upstream version and revision are compared by alternating non-digit and digit runs.
//!   Non-digit runs compare character by character where `~` sorts before everything, even the
//!   end of the string, then the end, then letters, then all other characters (by ASCII).
//!   Digit runs compare numerically (`00` = `0`).
//!
//! dpkg only warns about an upstream version that does not start with a digit, so it is
//! accepted here and ordered like any other; characters the policy does not allow are errors.

use std::cmp::Ordering;

use super::{Scheme, VersionError, cmp_digits, precheck};

const SCHEME: Scheme = Scheme::Dpkg;

/// A parsed Debian version. Equality is the order's: `1.0-00` equals `1.0-0`.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u32,
    upstream: String,
    revision: String,
}

impl Version {
    /// Parses a version as dpkg does, trimming surrounding whitespace.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let trimmed = s.trim();
        precheck(SCHEME, trimmed)?;
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => (parse_epoch(trimmed, epoch)?, rest),
            None => (0, trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError::invalid(
                SCHEME,
                trimmed,
                "empty upstream version",
            ));
        }
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
        {
            return Err(VersionError::invalid(
                SCHEME,
                trimmed,
                "invalid character in upstream version",
            ));
        }
        if !revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
        {
            return Err(VersionError::invalid(
                SCHEME,
                trimmed,
                "invalid character in revision",
            ));
        }
        Ok(Self {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision (empty when absent).
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

fn parse_epoch(version: &str, epoch: &str) -> Result<u32, VersionError> {
    if epoch.is_empty() {
        return Err(VersionError::invalid(SCHEME, version, "empty epoch"));
    }
    if !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionError::invalid(
            SCHEME,
            version,
            "epoch is not a number",
        ));
    }
    // dpkg keeps the epoch in an int and refuses larger values.
    epoch
        .parse::<u32>()
        .ok()
        .filter(|&e| i32::try_from(e).is_ok())
        .ok_or_else(|| VersionError::invalid(SCHEME, version, "epoch is too large"))
}

/// The weight of one character in a non-digit run: `~` first, then the end of the run, then
/// letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: the order of upstream versions and of revisions.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit run, character by character.
        while a.get(i).is_some_and(|c| !c.is_ascii_digit())
            || b.get(j).is_some_and(|c| !c.is_ascii_digit())
        {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // The digit run, by value.
        let da = digit_run(a, i);
        let db = digit_run(b, j);
        let ordering = cmp_digits(da, db);
        if ordering != Ordering::Equal {
            return ordering;
        }
        i += da.len();
        j += db.len();
    }
    Ordering::Equal
}

fn digit_run(s: &[u8], from: usize) -> &str {
    let rest = s.get(from..).unwrap_or_default();
    let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    // Digits are ASCII, so the run is valid UTF-8.
    std::str::from_utf8(&rest[..len]).unwrap_or_default()
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
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

    /// Parse and compare cases from dpkg's `lib/dpkg/t/t-version.c`, as (epoch, upstream,
    /// revision) triples.
    #[test]
    fn dpkg_parse_cases() {
        let cases = [
            ("0", 0, "0", ""),
            ("0:0", 0, "0", ""),
            ("0:0-", 0, "0", ""),
            ("0:0-0", 0, "0", "0"),
            ("0:0.0-0.0", 0, "0.0", "0.0"),
            ("1:0", 1, "0", ""),
            ("5:1", 5, "1", ""),
            ("0:0-0-0", 0, "0-0", "0"),
            ("0:0-0-0-0", 0, "0-0-0", "0"),
            ("0:0:0-0", 0, "0:0", "0"),
            ("0:0:0:0-0", 0, "0:0:0", "0"),
            ("0:0:0-0-0", 0, "0:0-0", "0"),
            ("0:0-0:0-0", 0, "0-0:0", "0"),
            ("0:09azAZ.-+~:-0", 0, "09azAZ.-+~:", "0"),
            ("0:0-azAZ09.+~", 0, "0", "azAZ09.+~"),
            ("  \t0:0-1", 0, "0", "1"),
            ("0:0-1\t  ", 0, "0", "1"),
            ("\t  0:0-1  \t", 0, "0", "1"),
        ];
        for (s, epoch, upstream, revision) in cases {
            let parsed = v(s);
            assert_eq!(
                (parsed.epoch(), parsed.upstream(), parsed.revision()),
                (epoch, upstream, revision),
                "{s:?}"
            );
        }
    }

    /// Refusals from `t-version.c`; "does not start with a digit" is only a warning in dpkg and
    /// is accepted here.
    #[test]
    fn dpkg_refuses_what_dpkg_refuses() {
        let bad = [
            "",
            "  ",
            "0:",
            "0:0 0-1",
            "-1:0-1",
            "999999999999999999999999:0-1",
            "2147483648:0",
            "a:0-0",
            "A:0-0",
            "-0",
            "0:-0",
            "0:0-0:0",
        ];
        for s in bad {
            assert!(Version::parse(s).is_err(), "{s:?} accepted");
        }
        for c in "!#@$%&/|\\<>()[]{};,_=*^'".chars() {
            let s = format!("0:0{c}-0");
            assert!(Version::parse(&s).is_err(), "{s:?} accepted");
        }
        for c in "!#@$%&/|\\<>()[]{}:;,_=*^'".chars() {
            let s = format!("0:0-0{c}");
            assert!(Version::parse(&s).is_err(), "{s:?} accepted");
        }
        assert_eq!(v("0:abc3-0").upstream(), "abc3");
        assert_eq!(v("2147483647:1").epoch(), 2_147_483_647);
    }

    #[test]
    fn dpkg_order() {
        use Ordering::{Equal as E, Greater as G, Less as L};
        let cases = [
            // t-version.c
            ("0-0", "0-0", E),
            ("0-00", "00-0", E),
            ("1:2-3", "1:2-3", E),
            ("0:0-0", "1:0-0", L),
            ("0:a-0", "0:b-0", L),
            ("0:0-a", "0:0-b", L),
            ("1-1", "2-1", L),
            ("1-1", "1-2", L),
            // Debian Policy 5.6.12: ~ before everything, even the end.
            ("1.0~rc1", "1.0", L),
            ("1.0~~", "1.0~~a", L),
            ("1.0~~a", "1.0~", L),
            ("1.0~", "1.0", L),
            ("1.0", "1.0a", L),
            ("1.0a", "1.0+", L),
            ("1.0+", "1.0.", L),
            ("1.0", "1.0.0", L),
            ("1.0-1", "1.0-1~bpo1", G),
            ("1.2.13.dfsg-1", "1:1.2.13.dfsg-1", L),
            ("1.2.11.dfsg-2+deb11u2", "1.2.11.dfsg-2+deb11u1", G),
            ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", G),
            ("3.0.11-1~deb12u2", "3.0.11-1", L),
            ("3.0.9-1", "3.0.11-1~deb12u1", L),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", L),
            ("10", "9", G),
            ("1.01", "1.1", E),
        ];
        for (a, b, want) in cases {
            assert_eq!(v(a).cmp(&v(b)), want, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn long_digit_runs_do_not_overflow() {
        let a = format!("1.{}-1", "9".repeat(200));
        let b = format!("1.1{}-1", "0".repeat(200));
        assert_eq!(v(&a).cmp(&v(&b)), Ordering::Less);
    }
}
