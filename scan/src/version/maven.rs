//! Maven versions, ordered as Maven 3's `ComparableVersion` orders them (the "Version Order
//! Specification" of the POM reference). Maven 4 reworked letter-digit combinations (`1.a1`);
//! the two agree on the versions advisories name.
//!
//! A version is split into items at `.`, at `-`, and where digits meet letters; a `-` or a
//! digit/letter transition starts a nested list, so `1-rc-2` is `[1, [rc, [2]]]`. Empty items
//! are `0`. At the end of each list, items that equal the release (`0`, the empty qualifier,
//! `ga`, `final`, `release`) are trimmed, so `1.0` == `1` == `1-0` == `1.0.0-ga`.
//!
//! Items compare as follows (a missing item compares like `0` / the release):
//! - numbers by value; a number is newer than a qualifier or a list;
//! - a list (what follows a `-`) is newer than a qualifier and older than a number, so
//!   `1-sp` < `1-1` < `1.1`;
//! - qualifiers: `alpha` < `beta` < `milestone` < `rc` = `cr` < `snapshot` < release < `sp`,
//!   then any other word, case-insensitively in ASCII order; `a1`, `b1`, `m1` (a single letter
//!   followed by a digit) mean `alpha1`, `beta1`, `milestone1`.

use std::cmp::Ordering;

use super::{Scheme, VersionError, cmp_digits, precheck};

const SCHEME: Scheme = Scheme::Maven;

/// The known qualifiers in order; the empty string is the release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

#[derive(Debug, Clone)]
enum Item {
    /// Digits without leading zeros (empty for 0).
    Int(String),
    /// A qualifier, lower-cased, with aliases resolved.
    Str(String),
    List(Vec<Item>),
}

impl Item {
    fn int(digits: &str) -> Self {
        Self::Int(digits.trim_start_matches('0').to_owned())
    }

    fn qualifier(value: &str, followed_by_digit: bool) -> Self {
        let value = match value {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Self::Str(value.to_owned())
    }

    fn is_null(&self) -> bool {
        match self {
            Self::Int(digits) => digits.is_empty(),
            Self::Str(qualifier) => qualifier.is_empty(),
            Self::List(items) => items.is_empty(),
        }
    }
}

/// Where a qualifier sorts: its index among the known ones, or after them by spelling.
fn qualifier_key(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

/// Compares an item with another or with nothing (the end of a shorter list).
fn cmp_item(a: &Item, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Item::Int(_), None) => {
            if a.is_null() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(x), Some(Item::Int(y))) => cmp_digits(x, y),
        (Item::Int(_), Some(_)) => Ordering::Greater,
        (Item::Str(x), None) => qualifier_key(x).cmp(&qualifier_key("")),
        (Item::Str(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::Str(x), Some(Item::Str(y))) => qualifier_key(x).cmp(&qualifier_key(y)),
        (Item::Str(_), Some(Item::List(_))) => Ordering::Less,
        (Item::List(items), None) => items
            .first()
            .map_or(Ordering::Equal, |first| cmp_item(first, None)),
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::List(x), Some(Item::List(y))) => cmp_lists(x, y),
    }
}

fn cmp_lists(x: &[Item], y: &[Item]) -> Ordering {
    for i in 0..x.len().max(y.len()) {
        let ordering = match (x.get(i), y.get(i)) {
            (Some(a), b) => cmp_item(a, b),
            (None, Some(b)) => cmp_item(b, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Drops trailing release-equivalent items, looking past nested lists as Maven does.
fn normalize(items: &mut Vec<Item>) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
}

/// A parsed Maven version. Equality is the order's: `1.0` equals `1` and `1-ga`.
#[derive(Debug, Clone)]
pub struct Version {
    items: Vec<Item>,
}

impl Version {
    /// Parses a version. Maven accepts any string; this refuses only the empty string,
    /// whitespace and control characters, and strings longer than [`super::MAX_LEN`].
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        precheck(SCHEME, s)?;
        let lower = s.to_ascii_lowercase();
        let b = lower.as_bytes();
        // The lists being filled, outermost first; each is the last item of the one before.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let push = |stack: &mut Vec<Vec<Item>>, item| {
            if let Some(list) = stack.last_mut() {
                list.push(item);
            }
        };
        let token = |start: usize, end: usize, digit: bool| {
            let text = lower.get(start..end).unwrap_or_default();
            if digit {
                Item::int(text)
            } else {
                Item::qualifier(text, false)
            }
        };
        let (mut digit, mut start) = (false, 0);
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'.' | b'-' => {
                    let item = if i == start {
                        Item::Int(String::new())
                    } else {
                        token(start, i, digit)
                    };
                    push(&mut stack, item);
                    start = i + 1;
                    if c == b'-' {
                        stack.push(Vec::new());
                    }
                }
                b'0'..=b'9' => {
                    if !digit && i > start {
                        let qualifier =
                            Item::qualifier(lower.get(start..i).unwrap_or_default(), true);
                        push(&mut stack, qualifier);
                        start = i;
                        stack.push(Vec::new());
                    }
                    digit = true;
                }
                _ => {
                    if digit && i > start {
                        push(&mut stack, token(start, i, true));
                        start = i;
                        stack.push(Vec::new());
                    }
                    digit = false;
                }
            }
        }
        if b.len() > start {
            push(&mut stack, token(start, b.len(), digit));
        }
        while stack.len() > 1 {
            let mut list = stack.pop().unwrap_or_default();
            normalize(&mut list);
            push(&mut stack, Item::List(list));
        }
        let mut items = stack.pop().unwrap_or_default();
        normalize(&mut items);
        Ok(Self { items })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_lists(&self.items, &other.items)
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

    fn assert_ascending(versions: &[&str]) {
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
                assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
            }
        }
    }

    /// `ComparableVersionTest.VERSIONS_QUALIFIER`.
    #[test]
    fn qualifier_order() {
        assert_ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    /// `ComparableVersionTest.VERSIONS_NUMBER`.
    #[test]
    fn number_order() {
        assert_ascending(&[
            "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b",
            "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11",
            "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ]);
    }

    /// `ComparableVersionTest.testVersionsEqual` and `testVersionComparing`. Maven 4 also makes
    /// `1.a` equal `1a` (its `CombinationItem`); Maven 3, as here, orders `1.a` < `1-a` = `1a`.
    #[test]
    fn equal_and_pairwise() {
        let equal = [
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1x", "1.0.0-x"),
            ("1ga", "1"),
            ("1release", "1"),
            ("1final", "1"),
            ("1cr", "1rc"),
            ("1a1", "1alpha1"),
            ("1b2", "1beta2"),
            ("1m3", "1milestone3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1B", "1b"),
            ("1M", "1m"),
            ("1Ga", "1"),
            ("1GA", "1"),
            ("1Final", "1"),
            ("1FinaL", "1"),
            ("1FINAL", "1"),
            ("1Cr", "1Rc"),
            ("1cR", "1rC"),
            ("1m3", "1Milestone3"),
            ("1m3", "1MileStone3"),
            ("1m3", "1MILESTONE3"),
            (
                "1-abcdefghijklmnopqrstuvwxyz",
                "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            ),
        ];
        for (a, b) in equal {
            assert_eq!(v(a), v(b), "{a} == {b}");
            assert_eq!(v(b), v(a), "{b} == {a}");
        }
        let less = [
            ("1", "2"),
            ("1.5", "2"),
            ("1", "2.5"),
            ("1.0", "1.1"),
            ("1.1", "1.2"),
            ("1.0.0", "1.1"),
            ("1.0.1", "1.1"),
            ("1.1", "1.2.0"),
            ("1.0-alpha-1", "1.0"),
            ("1.0-alpha-1", "1.0-alpha-2"),
            ("1.0-alpha-1", "1.0-beta-1"),
            ("1.0-beta-1", "1.0-SNAPSHOT"),
            ("1.0-SNAPSHOT", "1.0"),
            ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0.0", "1.0-1"),
            ("2.0-1", "2.0.1"),
            ("2.0.1-klm", "2.0.1-lmn"),
            ("2.0.1", "2.0.1-xyz"),
            ("2.0.1", "2.0.1-123"),
            ("2.0.1-xyz", "2.0.1-123"),
            // Real advisories: log4j-core and jackson-databind fixed versions.
            ("2.14.1", "2.15.0"),
            ("2.15.0-rc1", "2.15.0"),
            ("2.12.7", "2.12.7.1"),
            // An unknown qualifier is newer than the release: Maven's own (surprising) order.
            ("2.9.10.8", "2.10.0.pr1"),
            ("2.10.0", "2.10.0.pr1"),
        ];
        for (a, b) in less {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
            assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
        }
    }

    #[test]
    fn big_numbers_and_deep_lists() {
        let big = format!("1.{}", "9".repeat(200));
        assert!(v(&big) > v("1.9"));
        let deep = "1-".repeat(120) + "1";
        assert!(v(&deep) > v("1"));
        assert_eq!(v("1-0-0-0-0"), v("1"));
    }
}
