//! Secrets of access tokens and robot accounts: long random strings shown once, stored only
//! as their SHA-256 (they carry about 238 bits of entropy, so a slow hash adds nothing and a
//! fast one keeps every authentication cheap).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every secret starts with this, so secret scanners and humans recognise them, and a login
/// can tell a token from a password without hashing.
pub const PREFIX: &str = "berth_";
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LEN: usize = 40;

/// Why no secret could be made.
#[derive(Debug, thiserror::Error)]
#[error("the system has no randomness to make a secret")]
pub struct NoRandomness;

/// A fresh secret: the prefix and 40 base-62 characters.
pub fn generate() -> Result<String, NoRandomness> {
    let mut out = String::with_capacity(PREFIX.len() + LEN);
    out.push_str(PREFIX);
    while out.len() < PREFIX.len() + LEN {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|_| NoRandomness)?;
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if usize::from(b) < ALPHABET.len() * 4 && out.len() < PREFIX.len() + LEN {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Whether `s` has the shape of a secret (it may still be unknown).
pub fn looks_like_secret(s: &str) -> bool {
    s.len() == PREFIX.len() + LEN
        && s.starts_with(PREFIX)
        && s[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What is stored for a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_well_formed_and_hashed() {
        let a = generate().expect("secret");
        let b = generate().expect("secret");
        assert_ne!(a, b);
        assert!(looks_like_secret(&a), "{a}");
        assert!(!looks_like_secret("berth_short"));
        assert!(!looks_like_secret(
            "a password that is long enough to be 46 chars"
        ));
        assert_eq!(hash(&a).len(), 32);
        assert!(constant_time_eq(&hash(&a), &hash(&a)));
        assert!(!constant_time_eq(&hash(&a), &hash(&b)));
    }
}
