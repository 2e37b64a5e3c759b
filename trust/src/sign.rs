//! Private keys that sign, as cosign signs with them (`berth sign`, `berth key generate`).
//!
//! Accepted key files:
//! - cosign's encrypted keys (`ENCRYPTED SIGSTORE PRIVATE KEY`, `ENCRYPTED COSIGN PRIVATE
//!   KEY`; see [`crate::encrypted`]), which hold a PKCS#8 key;
//! - plain PKCS#8 PEM (`PRIVATE KEY`), as `openssl genpkey` writes it.
//!
//! Signatures are what [`crate::key::PublicKey::verifies`] checks: ECDSA P-256 DER over the
//! SHA-256 of the message, Ed25519 over the message, RSA PKCS#1 v1.5 with SHA-256.

use std::fmt;

use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};

use crate::encrypted::{self, EncryptedKeyError};
use crate::key::{KeyError, PublicKey};

/// The label of a plain PKCS#8 private key.
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// The smallest RSA key berth signs with (as it verifies).
const MIN_RSA_BITS: usize = 2048;
/// Key files larger than this are not keys.
const MAX_KEY_FILE: usize = 64 * 1024;

/// Why a private key could not be read, or a pair made.
#[derive(Debug, thiserror::Error)]
pub enum SignKeyError {
    /// Not PEM, or a PEM block that is no private key.
    #[error(
        "not a private key: expected cosign's ENCRYPTED SIGSTORE PRIVATE KEY or a PKCS#8 PRIVATE KEY PEM ({0})"
    )]
    Pem(String),
    /// The key is encrypted and no password was given.
    #[error("the private key is encrypted: set COSIGN_PASSWORD or type the password")]
    PasswordNeeded,
    /// The encrypted key could not be opened.
    #[error(transparent)]
    Encrypted(#[from] EncryptedKeyError),
    /// A PKCS#8 key of another algorithm, or a short RSA key.
    #[error(
        "unsupported private key: berth signs with ECDSA P-256, Ed25519 and RSA (2048 bits or more) keys"
    )]
    Unsupported,
    /// Its public half is not a key berth verifies with.
    #[error(transparent)]
    Public(#[from] KeyError),
}

enum Kind {
    EcdsaP256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha2_010::Sha256>>),
}

/// A private key that signs.
pub struct SigningKey {
    kind: Kind,
    public: PublicKey,
    public_der: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Whether the PEM text is one of cosign's encrypted keys (a password is needed).
pub fn is_encrypted(pem_text: &str) -> bool {
    pem_text.contains(encrypted::SIGSTORE_LABEL) || pem_text.contains(encrypted::COSIGN_LABEL)
}

impl SigningKey {
    /// Reads a key file's text; `password` opens an encrypted one.
    pub fn from_pem(pem_text: &str, password: Option<&[u8]>) -> Result<Self, SignKeyError> {
        if pem_text.len() > MAX_KEY_FILE {
            return Err(SignKeyError::Pem("the file is too large".into()));
        }
        let (label, bytes) = pem::decode_vec(pem_text.trim().as_bytes())
            .map_err(|e| SignKeyError::Pem(e.to_string()))?;
        let bytes = Zeroizing::new(bytes);
        match label {
            encrypted::SIGSTORE_LABEL | encrypted::COSIGN_LABEL => {
                let password = password.ok_or(SignKeyError::PasswordNeeded)?;
                let der = encrypted::decrypt(&bytes, password)?;
                Self::from_pkcs8_der(&der)
            }
            PKCS8_LABEL => Self::from_pkcs8_der(&bytes),
            other => Err(SignKeyError::Pem(format!("the block is a {other:?}"))),
        }
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignKeyError> {
        let kind = if let Ok(key) = p256::SecretKey::from_pkcs8_der(der) {
            Kind::EcdsaP256(key.into())
        } else if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            Kind::Ed25519(key)
        } else if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            use rsa::traits::PublicKeyParts as _;
            if key.size() * 8 < MIN_RSA_BITS {
                return Err(SignKeyError::Unsupported);
            }
            Kind::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
        } else {
            return Err(SignKeyError::Unsupported);
        };
        let public_der = match &kind {
            Kind::EcdsaP256(k) => k.verifying_key().to_public_key_der(),
            Kind::Ed25519(k) => k.verifying_key().to_public_key_der(),
            Kind::Rsa(k) => rsa::RsaPublicKey::from(k.as_ref().as_ref()).to_public_key_der(),
        }
        .map_err(|e| SignKeyError::Pem(e.to_string()))?
        .into_vec();
        let public = PublicKey::from_der(&public_der)?;
        Ok(Self {
            kind,
            public,
            public_der,
        })
    }

    /// A new ECDSA P-256 key, the kind `cosign generate-key-pair` makes.
    pub fn generate_p256() -> Result<Self, SignKeyError> {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| SignKeyError::Pem(e.to_string()))?;
        Self::from_pkcs8_der(der.as_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public half as DER (SubjectPublicKeyInfo).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The public half as PEM (`PUBLIC KEY`), as cosign writes `cosign.pub`.
    pub fn public_key_pem(&self) -> Result<String, SignKeyError> {
        pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.public_der)
            .map_err(|e| SignKeyError::Pem(e.to_string()))
    }

    /// The private key sealed with `password` in cosign's format (PEM
    /// `ENCRYPTED SIGSTORE PRIVATE KEY`), as cosign writes `cosign.key`.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, SignKeyError> {
        let der = match &self.kind {
            Kind::EcdsaP256(k) => p256::SecretKey::from(k).to_pkcs8_der(),
            Kind::Ed25519(k) => k.to_pkcs8_der(),
            Kind::Rsa(k) => k.as_ref().as_ref().to_pkcs8_der(),
        }
        .map_err(|e| SignKeyError::Pem(e.to_string()))?;
        let sealed = encrypted::encrypt(der.as_bytes(), password)?;
        pem::encode_string(encrypted::SIGSTORE_LABEL, LineEnding::LF, &sealed)
            .map_err(|e| SignKeyError::Pem(e.to_string()))
    }

    /// Signs `message` as cosign does with this kind of key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.kind {
            Kind::EcdsaP256(k) => {
                let sig: p256::ecdsa::DerSignature = k.sign(message);
                sig.to_vec()
            }
            Kind::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            Kind::Rsa(k) => k.sign(message).to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_cosigns_format_and_verify() {
        let key = SigningKey::generate_p256().expect("key");
        let sealed = key.to_encrypted_pem(b"pw").expect("seal");
        assert!(sealed.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert!(is_encrypted(&sealed));
        let opened = SigningKey::from_pem(&sealed, Some(b"pw")).expect("open");
        assert_eq!(opened.public_key().id(), key.public_key().id());
        let public = PublicKey::from_pem(&key.public_key_pem().expect("pem")).expect("public");
        assert_eq!(public.id(), key.public_key().id());
        let sig = opened.sign(b"payload");
        assert!(public.verifies(b"payload", &sig));
        assert!(!public.verifies(b"other", &sig));
        assert!(matches!(
            SigningKey::from_pem(&sealed, None),
            Err(SignKeyError::PasswordNeeded)
        ));
        let err = SigningKey::from_pem(&sealed, Some(b"nope")).expect_err("wrong password");
        assert!(err.to_string().contains("wrong password"), "{err}");
        // cosign 1.x's label opens too.
        let legacy = sealed.replace("SIGSTORE", "COSIGN");
        assert!(SigningKey::from_pem(&legacy, Some(b"pw")).is_ok());
    }

    #[test]
    fn plain_pkcs8_ed25519_keys_sign() {
        let mut secret = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        let dalek = ed25519_dalek::SigningKey::from_bytes(&secret);
        let pem = dalek.to_pkcs8_pem(LineEnding::LF).expect("pem");
        let key = SigningKey::from_pem(&pem, None).expect("key");
        assert_eq!(key.public_key().algorithm(), "ed25519");
        assert!(key.public_key().verifies(b"m", &key.sign(b"m")));
    }

    #[test]
    fn public_keys_and_garbage_are_not_private_keys() {
        let key = SigningKey::generate_p256().expect("key");
        let err =
            SigningKey::from_pem(&key.public_key_pem().expect("pem"), None).expect_err("public");
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        assert!(matches!(
            SigningKey::from_pem("hello", None),
            Err(SignKeyError::Pem(_))
        ));
    }
}
