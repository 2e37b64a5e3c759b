//! Repository names, tags, references and upload session ids.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

/// Longest repository name accepted. The distribution spec lets registries limit names; clients
/// commonly cap `host/name` at 255 characters, so nothing longer could be pulled anyway.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name, tag or reference did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The repository name does not match the spec grammar.
    #[error(
        "invalid repository name {0:?}: names are lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'"
    )]
    Repository(String),
    /// The repository name is longer than [`MAX_NAME_LEN`].
    #[error("repository name is {0} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    /// The tag does not match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    #[error("invalid tag {0:?}: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    Tag(String),
    /// The upload id is not one this registry hands out.
    #[error("invalid upload id {0:?}")]
    UploadId(String),
}

/// A repository name as the distribution spec defines it:
///
/// ```text
/// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
/// ```
///
/// Any number of `/`-separated components is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// Parses and validates a repository name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(s.len()));
        }
        if s.split('/').all(valid_component) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Repository(truncate_for_message(s)))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this repository is `scope` or lies under `scope/` (a namespace, or a
    /// repository with nested ones): the scope of policies.
    pub fn is_within(&self, scope: &str) -> bool {
        let name = self.0.as_str();
        name == scope
            || (name.starts_with(scope) && name.as_bytes().get(scope.len()) == Some(&b'/'))
    }

    /// The first path component, which names the namespace that owns the repository.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        // A separator must be followed by an alphanumeric (the last byte is alnum, checked above).
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parses and validates a tag.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        let rest_ok = b[1.min(b.len())..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if first_ok && rest_ok && b.len() <= 128 {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Tag(truncate_for_message(s)))
        }
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable content digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a reference: anything containing `:` must be a digest, anything else a tag.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Ok(Self::Digest(Digest::parse(s)?))
        } else {
            Ok(Self::Tag(Tag::parse(s)?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// Why a reference did not parse: a bad tag or a bad digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Not a valid tag.
    #[error(transparent)]
    Tag(#[from] NameError),
    /// Looked like a digest but was not a valid one.
    #[error(transparent)]
    Digest(#[from] super::DigestError),
}

/// The id of an upload session: a random UUID, printed in its hyphenated lowercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(uuid::Uuid);

impl UploadId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses an id from a URL. Only the canonical hyphenated form is accepted, so each session
    /// has exactly one URL.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match uuid::Uuid::try_parse(s) {
            Ok(u) if u.hyphenated().to_string() == s => Ok(Self(u)),
            _ => Err(NameError::UploadId(truncate_for_message(s))),
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Keeps error messages short when a client sends a huge bogus value.
fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "a/b/c/d/e/f/g/h/i/j/k",
            "my-app",
            "my--app",
            "my__app",
            "my_app.v2",
            "0",
            "a.b_c__d-e---f",
        ] {
            assert!(RepoName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a/../b", "..", "a/./b", "-a", "a-", "a___b", "a_.b",
            "a..b", "a b", "a%2eb", "a/B", "ä",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn repository_names_have_a_length_limit() {
        let long = "a".repeat(MAX_NAME_LEN);
        assert!(RepoName::parse(&long).is_ok());
        assert_eq!(
            RepoName::parse(&format!("{long}a")),
            Err(NameError::TooLong(MAX_NAME_LEN + 1))
        );
    }

    #[test]
    fn namespace_is_the_first_component() {
        assert_eq!(RepoName::parse("team/app/x").unwrap().namespace(), "team");
        assert_eq!(RepoName::parse("solo").unwrap().namespace(), "solo");
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        let max = format!("a{}", "b".repeat(127));
        for ok in ["latest", "v1.0.0", "_x", "A-b_c.d", max.as_str()] {
            assert!(Tag::parse(ok).is_ok(), "{ok} should be valid");
        }
        let too_long = format!("a{}", "b".repeat(128));
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", too_long.as_str()] {
            assert!(Tag::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Ok(Reference::Digest(_))));
        assert!(matches!(
            Reference::parse("sha256:zz"),
            Err(ReferenceError::Digest(_))
        ));
    }

    #[test]
    fn upload_ids_round_trip_only_in_canonical_form() {
        let id = UploadId::new_random();
        assert_eq!(UploadId::parse(&id.to_string()), Ok(id));
        assert!(UploadId::parse(&id.to_string().to_uppercase()).is_err());
        assert!(UploadId::parse("../../etc").is_err());
    }
}
