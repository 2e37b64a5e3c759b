//! Who may do what: accounts, credentials, registry tokens and the permission rules.
//!
//! Pure rules and cryptography, no I/O: `access` computes what a principal may do on a
//! repository from the grants `meta` stores; `password` and `secret` check credentials;
//! `jwt` issues and verifies Docker registry tokens with the keys `keys` says are in use
//! (and publishes as a JWKS); `scope` parses the token protocol's
//! scopes; `throttle` slows down password guessing. `service::accounts` ties them to the
//! database and `api::auth` to HTTP.

pub mod access;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod scope;
pub mod secret;
pub mod throttle;

pub use access::{Action, Actions, Grants, Principal, Role};
pub use scope::{AccessEntry, ScopeRequest, TokenScope};

/// A user, organization, team or token name that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid name {0:?}: names are 1 to 64 lowercase letters and digits, separated by single '.', '_' or '-'"
)]
pub struct InvalidName(pub String);

/// The name of a user, organization or team: one repository path component
/// (`[a-z0-9]+([._-][a-z0-9]+)*`), at most 64 characters, so a user's or organization's name
/// is also the namespace its repositories live under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName(String);

impl AccountName {
    /// Longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let bytes = s.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && bytes.iter().enumerate().all(|(i, &b)| {
                alnum(b)
                    || (matches!(b, b'.' | b'_' | b'-')
                        && i > 0
                        && i + 1 < bytes.len()
                        && alnum(bytes[i - 1])
                        && alnum(bytes[i + 1]))
            });
        if !ok {
            return Err(InvalidName(s.chars().take(80).collect()));
        }
        Ok(Self(s.to_owned()))
    }

    /// A name read back from the database, validated when it was stored.
    pub fn stored(name: String) -> Self {
        Self(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_single_path_components() {
        for ok in ["alice", "a", "team-1", "a.b_c", "x0"] {
            assert!(AccountName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "a/b",
            "-a",
            "a-",
            "a--b",
            "a+b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(AccountName::parse(bad).is_err(), "{bad}");
        }
    }
}
