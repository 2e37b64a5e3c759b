//! cosign's encrypted private keys (`cosign generate-key-pair` writes them to `cosign.key`).
//!
//! The PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, or `ENCRYPTED COSIGN PRIVATE KEY` from
//! cosign before 2.0) holds JSON in the format of go-tuf's and go-securesystemslib's
//! `encrypted` package:
//!
//! ```json
//! {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": "<base64>"},
//!  "cipher": {"name": "nacl/secretbox", "nonce": "<base64>"},
//!  "ciphertext": "<base64>"}
//! ```
//!
//! The key is scrypt(password, salt, N, r, p) of 32 bytes; the ciphertext is NaCl's secretbox
//! (XSalsa20-Poly1305) of the PKCS#8 DER private key. Both primitives come from RustCrypto.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use p256::elliptic_curve::zeroize::Zeroizing;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};

/// The PEM label cosign 2.x writes.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label cosign 1.x wrote.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// The scrypt parameters cosign writes (go-securesystemslib's defaults).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The largest `N` accepted from a key file: a hostile file must not make berth spend
/// gigabytes (memory is 128 · r · N bytes; 2^16 with r = 8 is 64 MiB).
const MAX_LOG_N: u8 = 16;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// Why an encrypted key could not be opened or made.
#[derive(Debug, thiserror::Error)]
pub enum EncryptedKeyError {
    /// Not the JSON document cosign writes.
    #[error("the encrypted key is not cosign's format: {0}")]
    Format(String),
    /// A KDF or cipher this format does not use, or parameters out of bounds.
    #[error("the encrypted key uses {0}, which berth does not accept")]
    Unsupported(String),
    /// The box did not open: the password is wrong (or the file was altered).
    #[error("wrong password for the encrypted private key (or the key file is damaged)")]
    WrongPassword,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

fn derive(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; KEY_LEN]>, EncryptedKeyError> {
    let params = scrypt::Params::new(log_n, r, p, KEY_LEN)
        .map_err(|e| EncryptedKeyError::Unsupported(format!("scrypt parameters ({e})")))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|e| EncryptedKeyError::Unsupported(format!("scrypt output ({e})")))?;
    Ok(key)
}

/// Opens the JSON `sealed` (the PEM block's bytes) with `password`: the PKCS#8 DER inside.
pub fn decrypt(sealed: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, EncryptedKeyError> {
    let sealed: Sealed =
        serde_json::from_slice(sealed).map_err(|e| EncryptedKeyError::Format(e.to_string()))?;
    if sealed.kdf.name != "scrypt" {
        return Err(EncryptedKeyError::Unsupported(format!(
            "key derivation {:?}",
            sealed.kdf.name
        )));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(EncryptedKeyError::Unsupported(format!(
            "cipher {:?}",
            sealed.cipher.name
        )));
    }
    let ScryptParams { n, r, p } = sealed.kdf.params;
    if !n.is_power_of_two() || !(2..=1 << MAX_LOG_N).contains(&n) || !(1..=8).contains(&r) || p != 1
    {
        return Err(EncryptedKeyError::Unsupported(format!(
            "scrypt N={n}, r={r}, p={p} (at most N=2^{MAX_LOG_N}, r=8, p=1)"
        )));
    }
    let b64 = |what: &str, s: &str| {
        STANDARD
            .decode(s)
            .map_err(|e| EncryptedKeyError::Format(format!("{what}: {e}")))
    };
    let salt = b64("salt", &sealed.kdf.salt)?;
    let nonce = b64("nonce", &sealed.cipher.nonce)?;
    let ciphertext = b64("ciphertext", &sealed.ciphertext)?;
    let nonce: [u8; NONCE_LEN] = nonce.as_slice().try_into().map_err(|_| {
        EncryptedKeyError::Format(format!(
            "the nonce has {} bytes, not {NONCE_LEN}",
            nonce.len()
        ))
    })?;
    let key = derive(password, &salt, n.trailing_zeros() as u8, r, p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&crypto_secretbox::Key::from(*key));
    cipher
        .decrypt(&crypto_secretbox::Nonce::from(nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| EncryptedKeyError::WrongPassword)
}

/// Seals `plaintext` (a PKCS#8 DER private key) with `password` as cosign does: a fresh salt
/// and nonce, scrypt N=32768, r=8, p=1. Returns the JSON for the PEM block.
pub fn encrypt(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, EncryptedKeyError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut nonce);
    let key = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&crypto_secretbox::Key::from(*key));
    let ciphertext = cipher
        .encrypt(&crypto_secretbox::Nonce::from(nonce), plaintext)
        .map_err(|_| EncryptedKeyError::Format("the key could not be sealed".into()))?;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                n: 1 << SCRYPT_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    };
    serde_json::to_vec(&sealed).map_err(|e| EncryptedKeyError::Format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_with_their_password_only() {
        let sealed = encrypt(b"pkcs8 bytes", b"correct horse").expect("seal");
        let json: serde_json::Value = serde_json::from_slice(&sealed).expect("json");
        assert_eq!(json["kdf"]["params"]["N"], 32768);
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            decrypt(&sealed, b"correct horse").expect("open").as_slice(),
            b"pkcs8 bytes"
        );
        assert!(matches!(
            decrypt(&sealed, b"wrong"),
            Err(EncryptedKeyError::WrongPassword)
        ));
    }

    #[test]
    fn hostile_parameters_are_refused_before_any_work() {
        let sealed = encrypt(b"x", b"pw").expect("seal");
        let mut json: serde_json::Value = serde_json::from_slice(&sealed).expect("json");
        json["kdf"]["params"]["N"] = serde_json::json!(1u64 << 30);
        let err = decrypt(json.to_string().as_bytes(), b"pw").expect_err("too costly");
        assert!(err.to_string().contains("N=1073741824"), "{err}");
        json["kdf"]["params"]["N"] = serde_json::json!(32768);
        json["kdf"]["name"] = serde_json::json!("pbkdf2");
        assert!(matches!(
            decrypt(json.to_string().as_bytes(), b"pw"),
            Err(EncryptedKeyError::Unsupported(_))
        ));
        assert!(matches!(
            decrypt(b"{}", b"pw"),
            Err(EncryptedKeyError::Format(_))
        ));
    }
}
