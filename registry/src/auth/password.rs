//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes, OWASP's
//! recommendation). Hashing takes tens of milliseconds on purpose, so callers run it on the
//! blocking pool.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest accepted password.
pub const MIN_LEN: usize = 8;
/// Longest accepted password (argon2 accepts more, but nobody types it and it costs time).
pub const MAX_LEN: usize = 1024;

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("passwords have {MIN_LEN} to {MAX_LEN} characters")]
    Length,
    /// The hasher failed (no randomness for the salt).
    #[error("cannot hash the password")]
    Hash,
}

/// Hashes a new password into a PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if !(MIN_LEN..=MAX_LEN).contains(&password.chars().count()) {
        return Err(PasswordError::Length);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches the stored hash. With no hash (unknown user, organization), a
/// fixed hash is checked instead, so the answer takes as long either way and response times
/// do not reveal which names exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    let argon = Argon2::default();
    match stored.and_then(|s| PasswordHash::new(s).ok()) {
        Some(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
        None => {
            if let Some(parsed) = DUMMY.as_deref().and_then(|d| PasswordHash::new(d).ok()) {
                let _ = argon.verify_password(password.as_bytes(), &parsed);
            }
            false
        }
    }
}

/// The hash of a password nobody knows, with the default parameters, made on first use.
static DUMMY: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no account has this password")
        .ok()
        .map(|h| h.to_string())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_reject_other_passwords() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&h)));
        assert!(!verify("correct horsf", Some(&h)));
        assert!(!verify("correct horse", None));
        assert!(!verify("anything", Some("not a hash")));
        assert!(matches!(hash("short"), Err(PasswordError::Length)));
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_the_same() {
        assert!(
            DUMMY
                .as_deref()
                .is_some_and(|d| PasswordHash::new(d).is_ok())
        );
    }
}
