//! Alpine package versions, ordered as apk-tools orders them.
//!
//! The grammar (apk-tools `src/version.c`): `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`,
//! where a suffix is one of the pre-release suffixes `alpha`, `beta`, `pre`, `rc` or the
//! post-release suffixes `cvs`, `svn`, `git`, `hg`, `p`; `hash` is lower-case hex.
//!
//! Two versions are compared token by token while their tokens are of the same kind:
//! - the first number, suffix numbers and the revision by value;
//! - later numbers by value, unless either starts with `0`, then as strings (`1.05` < `1.1`,
//!   the Gentoo rule);
//! - letters and hashes as strings, suffixes in the order listed above.
//!
//! When the versions reach tokens of different kinds, a pre-release suffix makes its version
//! older; otherwise the version whose token comes earlier in the order number, letter, suffix,
//! suffix number, hash, revision, end is newer:
//! `1.0_alpha` < `1.0_rc1` < `1.0` < `1.0-r1` < `1.0_p1` < `1.0a` < `1.0.1`.

use std::cmp::Ordering;

use super::{Scheme, VersionError, cmp_digits, precheck};

const SCHEME: Scheme = Scheme::Apk;

/// The kinds of token, in the order that decides between versions of different shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// The suffixes in their order; those before `None` are pre-releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    None,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

impl Suffix {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "alpha" => Self::Alpha,
            "beta" => Self::Beta,
            "pre" => Self::Pre,
            "rc" => Self::Rc,
            "cvs" => Self::Cvs,
            "svn" => Self::Svn,
            "git" => Self::Git,
            "hg" => Self::Hg,
            "p" => Self::P,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    /// The token's text, as a range of the version string.
    start: usize,
    end: usize,
    suffix: Suffix,
}

/// A parsed Alpine version. Equality is the order's: `1.0-r0` equals `1.0-r00`.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    tokens: Vec<Token>,
}

impl Version {
    /// Parses a version; anything `apk version --check` refuses is an error.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        precheck(SCHEME, s)?;
        let tokens = tokenize(s).map_err(|reason| VersionError::invalid(SCHEME, s, reason))?;
        Ok(Self {
            text: s.to_owned(),
            tokens,
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn value(&self, token: &Token) -> &str {
        self.text.get(token.start..token.end).unwrap_or_default()
    }
}

fn digits(b: &[u8], from: usize) -> usize {
    from + b
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

fn tokenize(s: &str) -> Result<Vec<Token>, &'static str> {
    let b = s.as_bytes();
    let mut tokens = Vec::new();
    let mut at = digits(b, 0);
    if at == 0 {
        return Err("does not start with a number");
    }
    let mut last = Token {
        kind: Kind::InitialDigit,
        start: 0,
        end: at,
        suffix: Suffix::None,
    };
    tokens.push(last);
    while let Some(&c) = b.get(at) {
        let token = match c {
            b'a'..=b'z' => {
                if last.kind > Kind::Digit {
                    return Err("a letter may only follow a number");
                }
                at += 1;
                Token {
                    kind: Kind::Letter,
                    start: at - 1,
                    end: at,
                    suffix: Suffix::None,
                }
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if last.kind > Kind::Digit {
                        return Err("a dot may only follow a number");
                    }
                    at += 1;
                }
                let kind = match last.kind {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => return Err("a number in the wrong place"),
                };
                let end = digits(b, at);
                if end == at {
                    return Err("a dot must be followed by a number");
                }
                let token = Token {
                    kind,
                    start: at,
                    end,
                    suffix: Suffix::None,
                };
                at = end;
                token
            }
            b'_' => {
                if last.kind > Kind::SuffixNo {
                    return Err("a suffix in the wrong place");
                }
                let start = at + 1;
                let end = start
                    + b.get(start..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|c| c.is_ascii_lowercase())
                        .count();
                let suffix =
                    Suffix::parse(s.get(start..end).unwrap_or_default()).ok_or("unknown suffix")?;
                at = end;
                Token {
                    kind: Kind::Suffix,
                    start,
                    end,
                    suffix,
                }
            }
            b'~' => {
                if last.kind >= Kind::CommitHash {
                    return Err("a commit hash in the wrong place");
                }
                let start = at + 1;
                let end = start
                    + b.get(start..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                        .count();
                if end == start {
                    return Err("empty commit hash");
                }
                at = end;
                Token {
                    kind: Kind::CommitHash,
                    start,
                    end,
                    suffix: Suffix::None,
                }
            }
            b'-' => {
                if last.kind >= Kind::RevisionNo || b.get(at + 1) != Some(&b'r') {
                    return Err("only a final -rN may follow a hyphen");
                }
                let start = at + 2;
                let end = digits(b, start);
                if end == start {
                    return Err("empty revision");
                }
                at = end;
                Token {
                    kind: Kind::RevisionNo,
                    start,
                    end,
                    suffix: Suffix::None,
                }
            }
            _ => return Err("invalid character"),
        };
        tokens.push(token);
        last = token;
    }
    Ok(tokens)
}

fn cmp_tokens(a: &Version, ta: &Token, b: &Version, tb: &Token) -> Ordering {
    let (va, vb) = (a.value(ta), b.value(tb));
    match ta.kind {
        Kind::Digit if va.starts_with('0') || vb.starts_with('0') => va.cmp(vb),
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNo | Kind::RevisionNo => cmp_digits(va, vb),
        Kind::Suffix => ta.suffix.cmp(&tb.suffix),
        Kind::Letter | Kind::CommitHash | Kind::End => va.cmp(vb),
    }
}

const END: Token = Token {
    kind: Kind::End,
    start: 0,
    end: 0,
    suffix: Suffix::None,
};

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut i = 0;
        let (ta, tb) = loop {
            let ta = self.tokens.get(i).unwrap_or(&END);
            let tb = other.tokens.get(i).unwrap_or(&END);
            if ta.kind != tb.kind || ta.kind == Kind::End {
                break (ta, tb);
            }
            let ordering = cmp_tokens(self, ta, other, tb);
            if ordering != Ordering::Equal {
                return ordering;
            }
            i += 1;
        };
        if ta.kind == tb.kind {
            return Ordering::Equal;
        }
        // The longer one is newer, unless what it has more of is a pre-release suffix.
        if ta.kind == Kind::Suffix && ta.suffix < Suffix::None {
            return Ordering::Less;
        }
        if tb.kind == Kind::Suffix && tb.suffix < Suffix::None {
            return Ordering::Greater;
        }
        tb.kind.cmp(&ta.kind)
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

    /// Cases from apk-tools' `test/unit/version.data`.
    #[test]
    fn apk_order() {
        let cases = "
            2.34 > 0.1.0_alpha
            0.1.0_alpha = 0.1.0_alpha
            0.1.0_alpha < 0.1.3_alpha
            0.1.0_alpha2 > 0.1.0_alpha
            0.1.0_alpha < 2.2.39-r1
            1.0.4-r3 < 1.0.4-r4
            1.1 > 1.1_alpha1
            1.2.1 > 1.2
            1.3_alpha2 < 1.3_alpha3
            0.7.0 < 0.8_beta1
            3.10.18-r1 > 2.3.0b-r1
            2.3.0b-r1 < 2.3.0b-r2
            0.12.3 > 0.12
            0.13_beta5 > 0.9.12
            1.2.11 < 1.2.12.1
            3.1_p16 < 3.1_p17
            1.06-r6 < 006
            006 > 1.0.0
            1.2.2-r1 > 1.2.2
            20050718-r1 < 20050718-r2
            2.01.01_alpha10 > 0.94
            1.0 > 0.99.3.20040818
            4.2.52_p2-r1 < 4.2.52_p4-r2
            2.18.3-r10 > 1.05-r18
            20060720 > 3.0.20060720
            2.5.1-r8 < 2.5.1a-r1
            1.3.5-r10 > 1.3.5-r8
            20040401 > 2.0.0_rc3-r1
            3.0.0-r2 < 021109-r3
            0.9.16-r1 < 3.9_pre20060124
            0.10.0 < 0.10.1_rc1
            0.10.0-r1 > 0.10.0
            1.0-r1 > 0.15.1b
            2.1_pre20 < 2.1_pre26
            02.08.01b < 4.77
            1.6d > 1.2.07.8
            1.2.07.8 < 1.2.12.04
            0.59s-r11 < 0.65
            0.20070118 < 0.20070207_rc1
            4.5_p1-r1 > 4.5_p1
            0.9.8c-r1 < 0.9.8d
            1.7 < 1.7b
            1.8.5 < 1.8.5_p2
            1.4.9-r2 < 2.9.11_pre20051101-r2
            2.9.11_pre20051101-r3 > 2.9.11_pre20051101
            1.6.8_p12-r1 > 1.6.8_p9-r2
            0.9.28-r2 < 0.9.28.1
            0.9.28.1 < 087-r1
            104-r11 > 104-r9
            2.12r-r4 < 2.12r-r5
            7.0.17 < 7.0.174
            1.3-r0 < 1.3.1-r0
            1.3_pre1-r1 < 1.3.2
            1.0_p10-r0 > 1.0_p9-r0
            0.1.0_alpha_pre2 < 0.1.0_alpha
            1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
            1.0~1234 < 1.0~2345
            1.0~1234-r1 < 1.0~2345-r0
            1.0~1234-r1 > 1.0~1234-r0
        ";
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.split(' ');
            let (a, op, b) = (parts.next(), parts.next(), parts.next());
            let (Some(a), Some(op), Some(b)) = (a, op, b) else {
                panic!("bad case {line}")
            };
            let want = match op {
                "<" => Ordering::Less,
                ">" => Ordering::Greater,
                _ => Ordering::Equal,
            };
            assert_eq!(v(a).cmp(&v(b)), want, "{line}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{line} reversed");
        }
    }

    /// Validity cases from `version.data` (`apk version --check`).
    #[test]
    fn apk_validity() {
        for good in [
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
            "1.0-r0",
            "6b-r7",
        ] {
            assert!(Version::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234xbcd",
            "0.1_foobar",
            "0.1_foobar1",
            "0.1-pre1.1",
            "0.1-r",
            "0.1-r2_pre1",
            "0.1-r2_p3_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            ".1",
            "a",
            "_pre1",
            "-r1",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
            "1.",
            "1..2",
            "1.0-R1",
            "1.0 ",
            "1.0A",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn apk_shapes_order_as_documented() {
        let ordered = [
            "1.0_alpha",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_p1",
            "1.0a",
            "1.0.1",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(v(pair[0]).cmp(&v(pair[1])), Ordering::Less, "{pair:?}");
        }
        assert_eq!(v("1.0-r0"), v("1.0-r00"));
        // The Gentoo rule: a later number with a leading zero compares as a string.
        assert!(v("1.05") < v("1.1"));
        assert!(v("1.010") > v("1.01"));
        assert!(v("05") > v("1"), "but not the first number");
        let huge = format!("1.{}", "9".repeat(200));
        assert!(v(&huge) > v("1.9"));
    }
}
