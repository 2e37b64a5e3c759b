//! rpm versions: `[epoch:]version[-release]` (EVR), ordered as rpm's `rpmvercmp` orders them.
//!
//! The epoch is compared as a number (absent means 0), then the version, then the release, each
//! with `rpmvercmp`:
//! - characters other than ASCII letters, digits, `~` and `^` only separate segments;
//! - `~` sorts before everything, even the end (`1.0~rc1` < `1.0`);
//! - `^` sorts after the end but before anything else (`1.0` < `1.0^git1` < `1.0.1`);
//! - a digit segment is newer than a letter segment; digit segments compare by value, letter
//!   segments as strings;
//! - when one side runs out, the side with a segment left is newer.
//!
//! rpm itself ignores the release when either side has none; that is not a total order, so an
//! absent release sorts here as the empty one, before every other release.

use std::cmp::Ordering;

use super::{Scheme, VersionError, cmp_digits, precheck};

const SCHEME: Scheme = Scheme::Rpm;

/// A parsed rpm EVR. Equality is the order's: `1.0-1` equals `0:1.0-1` and `1_0-1`.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: String,
    version: String,
    release: String,
}

impl Version {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        precheck(SCHEME, s)?;
        let (epoch, rest) = match s.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VersionError::invalid(SCHEME, s, "epoch is not a number"));
                }
                (epoch, rest)
            }
            None => ("0", s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((_, "")) => {
                return Err(VersionError::invalid(SCHEME, s, "empty release after '-'"));
            }
            Some((version, release)) => (version, release),
            None => (rest, ""),
        };
        if version.is_empty() {
            return Err(VersionError::invalid(SCHEME, s, "empty version"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._+~^".contains(&b);
        if !version.bytes().all(allowed) || !release.bytes().all(allowed) {
            return Err(VersionError::invalid(SCHEME, s, "invalid character"));
        }
        Ok(Self {
            epoch: epoch.to_owned(),
            version: version.to_owned(),
            release: release.to_owned(),
        })
    }

    /// The version without epoch and release.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The release (empty when absent).
    pub fn release(&self) -> &str {
        &self.release
    }
}

/// rpm's `rpmvercmp`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.get(i).is_some_and(separator) {
            i += 1;
        }
        while b.get(j).is_some_and(separator) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let len_a = a[i..].iter().take_while(|c| class(c)).count();
        let len_b = b[j..].iter().take_while(|c| class(c)).count();
        if len_b == 0 {
            // Segments of different kinds: the number is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (seg_a, seg_b) = (&a[i..i + len_a], &b[j..j + len_b]);
        let ordering = if numeric {
            // Digits are ASCII, so both are valid UTF-8.
            cmp_digits(
                std::str::from_utf8(seg_a).unwrap_or_default(),
                std::str::from_utf8(seg_b).unwrap_or_default(),
            )
        } else {
            seg_a.cmp(seg_b)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        i += len_a;
        j += len_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (false, _) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.epoch, &other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| rpmvercmp(&self.release, &other.release))
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

    /// rpm's `tests/rpmvercmp.at`, as (a, b, rpmvercmp(a, b)).
    #[test]
    fn rpmvercmp_cases() {
        let cases: &[(&str, &str, i8)] = &[
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1a", "2.0.1a", 0),
            ("2.0.1a", "2.0.1", 1),
            ("5.5p1", "5.5p1", 0),
            ("5.5p1", "5.5p2", -1),
            ("5.5p10", "5.5p10", 0),
            ("5.5p1", "5.5p10", -1),
            ("10xyz", "10.1xyz", -1),
            ("xyz10", "xyz10", 0),
            ("xyz10", "xyz10.1", -1),
            ("xyz.4", "xyz.4", 0),
            ("xyz.4", "8", -1),
            ("xyz.4", "2", -1),
            ("5.5p2", "5.6p1", -1),
            ("5.6p1", "6.5p1", -1),
            ("6.0.rc1", "6.0", 1),
            ("10b2", "10a1", 1),
            ("10a2", "10b2", -1),
            ("1.0aa", "1.0aa", 0),
            ("1.0a", "1.0aa", -1),
            ("10.0001", "10.0001", 0),
            ("10.0001", "10.1", 0),
            ("10.0001", "10.0039", -1),
            ("4.999.9", "5.0", -1),
            ("20101121", "20101121", 0),
            ("20101121", "20101122", -1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", 0),
            ("a", "a", 0),
            ("a+", "a+", 0),
            ("a+", "a_", 0),
            ("+a", "+a", 0),
            ("+a", "_a", 0),
            ("+_", "+_", 0),
            ("_+", "+_", 0),
            ("+", "_", 0),
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc1~git123", "1.0~rc1~git123", 0),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0^", "1.0^", 0),
            ("1.0^", "1.0", 1),
            ("1.0^git1", "1.0^git1", 0),
            ("1.0^git1", "1.0", 1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git1", "1.01", -1),
            ("1.0^20160101", "1.0^20160101", 0),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0^20160101^git1", "1.0^20160101^git1", 0),
            ("1.0^20160102", "1.0^20160101^git1", 1),
            ("1.0~rc1^git1", "1.0~rc1^git1", 0),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0^git1~pre", "1.0^git1~pre", 0),
            ("1.0^git1", "1.0^git1~pre", 1),
        ];
        for &(a, b, want) in cases {
            let want = want.cmp(&0);
            assert_eq!(rpmvercmp(a, b), want, "rpmvercmp({a}, {b})");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "rpmvercmp({b}, {a})");
        }
    }

    #[test]
    fn evr_order() {
        let v = |s: &str| Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let cases = [
            ("1:1.0-1", "2.0-1", Ordering::Greater),
            ("0:1.0-1", "1.0-1", Ordering::Equal),
            ("3.0.7-18.el9_2", "1:3.0.7-16.el9", Ordering::Less),
            ("1:3.0.7-24.el9", "1:3.0.7-18.el9_2", Ordering::Greater),
            ("1.2.11-40.el9", "1.2.11-41.el9", Ordering::Less),
            ("2.34-60.el9", "2.34-60.el9_2.7", Ordering::Less),
            ("1.0", "1.0-1", Ordering::Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(v(a).cmp(&v(b)), want, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{b} vs {a}");
        }
        let parsed = v("1:3.0.7-18.el9_2");
        assert_eq!((parsed.version(), parsed.release()), ("3.0.7", "18.el9_2"));
    }

    #[test]
    fn rpm_refuses_garbage() {
        for bad in [
            "", ":1.0", "a:1.0", "1.0-", "-1", "1:", "1.0 -1", "1.0-1/2", "1:2:3", "1.0é",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
