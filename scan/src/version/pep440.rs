//! Python versions (PyPI) by PEP 440: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`.
//!
//! Parsing accepts every spelling PEP 440's normalisation section allows and reduces it to the
//! canonical form ([`Version`]'s `Display`): case does not matter, a leading `v` and surrounding
//! whitespace are dropped, `alpha`/`beta`/`c`/`pre`/`preview` mean `a`/`b`/`rc`/`rc`/`rc`,
//! `rev`/`r` mean `post`, `1.0-1` means `1.0.post1`, separators (`.`, `-`, `_`) before
//! pre-release, post-release and development parts are optional, a missing number is 0, and
//! `-`/`_` in a local version mean `.`. So `1.0RC1` == `1.0rc1` == `1.0-c.1`.
//!
//! The order is PEP 440's: epoch, then the release with trailing zeros ignored (`1.0` == `1`),
//! then `.devN` of a plain release < pre-releases (`a` < `b` < `rc`) < the release <
//! post-releases, a development release just before what it develops
//! (`1.0a1.dev1` < `1.0a1`), and a local version after the same public version
//! (`1.0` < `1.0+local`; local segments compare numerically when both are numbers, a word
//! before a number).

use std::cmp::Ordering;
use std::fmt;

use super::{Scheme, VersionError, cmp_digits, precheck};

const SCHEME: Scheme = Scheme::Pep440;

/// A pre-release phase, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Alpha,
    Beta,
    Rc,
}

/// One segment of a local version label.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Local {
    Number(String),
    Word(String),
}

impl Ord for Local {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => cmp_digits(a, b),
            (Self::Word(_), Self::Number(_)) => Ordering::Less,
            (Self::Number(_), Self::Word(_)) => Ordering::Greater,
            (Self::Word(a), Self::Word(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Local {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed PEP 440 version. Equality is the order's: `1.0` equals `1.0.0` and `1.0RC1`
/// equals `1.0rc1`.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: String,
    release: Vec<String>,
    pre: Option<(Phase, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<Local>,
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let found = self.peek() == Some(c);
        self.at += usize::from(found);
        found
    }

    fn eat_separator(&mut self) {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.at += 1;
        }
    }

    fn digits(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.b[start..self.at]).into_owned())
    }

    /// The first of `words` the input continues with (list longer spellings first).
    fn word<'w>(&mut self, words: &[&'w str]) -> Option<&'w str> {
        let rest = self.b.get(self.at..).unwrap_or_default();
        let word = words.iter().find(|w| rest.starts_with(w.as_bytes()))?;
        self.at += word.len();
        Some(word)
    }

    /// An optional separator and number after a pre, post or dev word; 0 when absent. A
    /// separator not followed by a number is left for the next part.
    fn implicit_number(&mut self) -> String {
        let start = self.at;
        self.eat_separator();
        self.digits().unwrap_or_else(|| {
            self.at = start;
            "0".to_owned()
        })
    }

    /// `[sep]word[[sep]N]` for one of `words`, or nothing (and nothing consumed).
    fn part<'w>(&mut self, words: &[&'w str]) -> Option<(&'w str, String)> {
        let start = self.at;
        self.eat_separator();
        match self.word(words) {
            Some(word) => Some((word, self.implicit_number())),
            None => {
                self.at = start;
                None
            }
        }
    }
}

impl Version {
    /// Parses any spelling PEP 440 allows.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let trimmed = s.trim();
        precheck(SCHEME, trimmed)?;
        let lower = trimmed.to_ascii_lowercase();
        let invalid = |reason| VersionError::invalid(SCHEME, trimmed, reason);
        let mut c = Cursor {
            b: lower.as_bytes(),
            at: 0,
        };
        c.eat(b'v');
        let first = c
            .digits()
            .ok_or_else(|| invalid("does not start with a number"))?;
        let (epoch, first) = if c.eat(b'!') {
            (
                first,
                c.digits()
                    .ok_or_else(|| invalid("no release after the epoch"))?,
            )
        } else {
            ("0".to_owned(), first)
        };
        let mut release = vec![first];
        while c.peek() == Some(b'.') && c.b.get(c.at + 1).is_some_and(u8::is_ascii_digit) {
            c.at += 1;
            release.extend(c.digits());
        }
        let pre = c
            .part(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"])
            .map(|(word, n)| {
                let phase = match word {
                    "alpha" | "a" => Phase::Alpha,
                    "beta" | "b" => Phase::Beta,
                    _ => Phase::Rc,
                };
                (phase, n)
            });
        let post = if c.peek() == Some(b'-') && c.b.get(c.at + 1).is_some_and(u8::is_ascii_digit) {
            c.at += 1;
            c.digits()
        } else {
            c.part(&["post", "rev", "r"]).map(|(_, n)| n)
        };
        let dev = c.part(&["dev"]).map(|(_, n)| n);
        let mut local = Vec::new();
        if c.eat(b'+') {
            let label = lower.get(c.at..).unwrap_or_default();
            for segment in label.split(['.', '-', '_']) {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(invalid("invalid local version label"));
                }
                local.push(if segment.bytes().all(|b| b.is_ascii_digit()) {
                    Local::Number(segment.to_owned())
                } else {
                    Local::Word(segment.to_owned())
                });
            }
            c.at = c.b.len();
        }
        if c.at != c.b.len() {
            return Err(invalid("unexpected characters"));
        }
        Ok(Self {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Whether this is a pre-release or development release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The release numbers without trailing zeros, for comparing.
    fn release_key(&self) -> &[String] {
        let len = self
            .release
            .iter()
            .rposition(|n| !n.trim_start_matches('0').is_empty())
            .map_or(0, |i| i + 1);
        &self.release[..len]
    }
}

/// Where the pre-release part sorts: a `.devN` of a plain release before every pre-release,
/// a plain release or post-release after them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey<'a> {
    DevOnly,
    Pre(Phase, Number<'a>),
    Release,
}

/// A number compared by value.
#[derive(Debug, PartialEq, Eq)]
struct Number<'a>(&'a str);

impl Ord for Number<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.0, other.0)
    }
}

impl PartialOrd for Number<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Version {
    fn pre_key(&self) -> PreKey<'_> {
        match (&self.pre, &self.post, &self.dev) {
            (Some((phase, n)), _, _) => PreKey::Pre(*phase, Number(n)),
            (None, None, Some(_)) => PreKey::DevOnly,
            (None, _, _) => PreKey::Release,
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.epoch, &other.epoch)
            .then_with(|| {
                let (a, b) = (self.release_key(), other.release_key());
                a.iter().map(|n| Number(n)).cmp(b.iter().map(|n| Number(n)))
            })
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            // No post-release sorts first.
            .then_with(|| {
                self.post
                    .as_deref()
                    .map(Number)
                    .cmp(&other.post.as_deref().map(Number))
            })
            // No development release sorts last.
            .then_with(|| match (self.dev.as_deref(), other.dev.as_deref()) {
                (Some(a), Some(b)) => cmp_digits(a, b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| self.local.cmp(&other.local))
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

/// The canonical form: numbers without leading zeros, `a`/`b`/`rc`, `.postN`, `.devN`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |s: &str| match s.trim_start_matches('0') {
            "" => "0".to_owned(),
            s => s.to_owned(),
        };
        if n(&self.epoch) != "0" {
            write!(f, "{}!", n(&self.epoch))?;
        }
        let release: Vec<String> = self.release.iter().map(|r| n(r)).collect();
        f.write_str(&release.join("."))?;
        if let Some((phase, number)) = &self.pre {
            let phase = match phase {
                Phase::Alpha => "a",
                Phase::Beta => "b",
                Phase::Rc => "rc",
            };
            write!(f, "{phase}{}", n(number))?;
        }
        if let Some(post) = &self.post {
            write!(f, ".post{}", n(post))?;
        }
        if let Some(dev) = &self.dev {
            write!(f, ".dev{}", n(dev))?;
        }
        for (i, segment) in self.local.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "." })?;
            match segment {
                Local::Number(s) | Local::Word(s) => f.write_str(s)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// PEP 440's normalisation examples (and `packaging`'s test spellings).
    #[test]
    fn normalisation() {
        let cases = [
            ("1.0RC1", "1.0rc1"),
            ("1.1RC1", "1.1rc1"),
            ("1.0a", "1.0a0"),
            ("1.0.a.1", "1.0a1"),
            ("1.0-a1", "1.0a1"),
            ("1.0_alpha1", "1.0a1"),
            ("1.0beta2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0preview1", "1.0rc1"),
            ("1.0-c.1", "1.0rc1"),
            ("1.0-post1", "1.0.post1"),
            ("1.0post", "1.0.post0"),
            ("1.0.rev1", "1.0.post1"),
            ("1.0r1", "1.0.post1"),
            ("1.0-1", "1.0.post1"),
            ("1.0-dev", "1.0.dev0"),
            ("1.0dev2", "1.0.dev2"),
            ("1.0+ubuntu-1", "1.0+ubuntu.1"),
            ("1.0+Ubuntu_1", "1.0+ubuntu.1"),
            ("v1.0", "1.0"),
            ("  1.0\n", "1.0"),
            ("1!1.0", "1!1.0"),
            ("0!1.0", "1.0"),
            ("007", "7"),
            ("1.01", "1.1"),
            ("1.0a.post1", "1.0a0.post1"),
            ("1.0.post1.dev2", "1.0.post1.dev2"),
        ];
        for (spelling, canonical) in cases {
            assert_eq!(v(spelling).to_string(), canonical, "{spelling}");
            assert_eq!(v(spelling), v(canonical), "{spelling}");
        }
    }

    /// PEP 440's summary of permitted suffixes and relative ordering, each newer than the
    /// one before.
    #[test]
    fn order() {
        let ordered = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for b in &ordered[i + 1..] {
                assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
                assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
            }
        }
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v("1.0.0"), v("1"));
        assert!(v("1.0+1.5") < v("1.0+1.10"));
        assert!(v("1.0+abc") < v("1.0+abc.1"));
        assert!(v("2.0.0.dev1").is_prerelease());
    }

    #[test]
    fn pep440_refuses_garbage() {
        for bad in [
            "",
            "v",
            "1.",
            "1..0",
            ".1",
            "1.0-",
            "1.0+",
            "1.0+a..b",
            "1.0+a+b",
            "1.0abc",
            "1.0.post1.post2",
            "1.0-a-b",
            "!1.0",
            "1!",
            "1.0 1",
            "french toast",
            "1.0_",
            "1.0.x",
            "1.0é",
            "1.0dev1a1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
