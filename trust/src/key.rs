//! Public keys a trust policy names, in the PEM form `cosign generate-key-pair` and openssl
//! write (`-----BEGIN PUBLIC KEY-----`, an X.509 SubjectPublicKeyInfo).
//!
//! Each key verifies as cosign signs with it:
//! - ECDSA P-256: an ASN.1 DER signature over the SHA-256 of the message (cosign's default);
//! - Ed25519: a 64-byte signature over the message itself (RFC 8032, strict verification);
//! - RSA: PKCS#1 v1.5 over the SHA-256 of the message (sigstore's RSA verifier).

use std::fmt;

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use p256::pkcs8::der::{Decode as _, Document};
use sha2::{Digest as _, Sha256};
use signature_impl::Verifier as _;

// `signature` is re-exported by p256 (through ecdsa); the traits are the same for all three.
use p256::ecdsa::signature as signature_impl;

/// The smallest RSA modulus a policy may trust: 2048 bits, as NIST SP 800-131A requires.
const MIN_RSA_BITS: usize = 2048;

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or not a `PUBLIC KEY` block.
    #[error("not a PEM public key (expected -----BEGIN PUBLIC KEY-----): {0}")]
    Pem(String),
    /// A public key of an algorithm berth does not verify.
    #[error(
        "unsupported public key: berth verifies ECDSA P-256, Ed25519 and RSA (2048 bits or more) keys"
    )]
    Unsupported,
    /// An RSA key too short to trust.
    #[error("RSA key of {0} bits is too short; at least {MIN_RSA_BITS} bits are required")]
    WeakRsa(usize),
}

/// A key's id: `sha256:` and the hex SHA-256 of its SubjectPublicKeyInfo (DER). Stable
/// whatever the PEM's line breaks, so verdicts cached by key id survive a reformatted file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// An id that is not a key's digest (keyless signers, see [`crate::keyless`]).
    pub(crate) fn from_text(text: String) -> Self {
        Self(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone)]
enum Kind {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::pkcs1v15::VerifyingKey<sha2_010::Sha256>),
}

/// A public key that verifies signatures.
#[derive(Clone)]
pub struct PublicKey {
    id: KeyId,
    kind: Kind,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("id", &self.id)
            .finish()
    }
}

impl PublicKey {
    /// Reads one PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) =
            Document::from_pem(pem.trim()).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Pem(format!("the block is a {label:?}")));
        }
        Self::from_der(der.as_bytes())
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let id = KeyId(format!("sha256:{}", hex::encode(Sha256::digest(der))));
        let kind = if let Ok(key) = p256::PublicKey::from_public_key_der(der) {
            Kind::EcdsaP256(key.into())
        } else if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            Kind::Ed25519(key)
        } else if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(der) {
            use rsa::traits::PublicKeyParts as _;
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(KeyError::WeakRsa(bits));
            }
            Kind::Rsa(rsa::pkcs1v15::VerifyingKey::new(key))
        } else {
            // A DER that is not even a SubjectPublicKeyInfo says so; a well-formed one of
            // another algorithm (P-384, DSA...) is unsupported.
            return match p256::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der) {
                Ok(_) => Err(KeyError::Unsupported),
                Err(e) => Err(KeyError::Pem(e.to_string())),
            };
        };
        Ok(Self { id, kind })
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The algorithm, for people: `ecdsa-p256`, `ed25519` or `rsa`.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            Kind::EcdsaP256(_) => "ecdsa-p256",
            Kind::Ed25519(_) => "ed25519",
            Kind::Rsa(_) => "rsa",
        }
    }

    /// Whether `signature` is this key's signature of a message whose SHA-256 is `digest`
    /// (a sigstore bundle's message signature carries only the digest). Ed25519 signs the
    /// message itself, so it never verifies a digest.
    pub fn verifies_digest(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match &self.kind {
            Kind::EcdsaP256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok()),
            Kind::Ed25519(_) => false,
            Kind::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok()),
        }
    }

    /// Whether `signature` is this key's signature of `message`. Malformed signatures are
    /// simply not valid.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.kind {
            Kind::EcdsaP256(key) => p256::ecdsa::DerSignature::from_bytes(signature)
                .ok()
                .and_then(|sig| p256::ecdsa::Signature::try_from(sig).ok())
                .is_some_and(|sig| key.verify(message, &sig).is_ok()),
            Kind::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            Kind::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    use p256::ecdsa::signature::Signer as _;

    fn p256_pair() -> (p256::ecdsa::SigningKey, String) {
        let signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pem = signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("pem");
        (signing, pem)
    }

    #[test]
    fn ecdsa_p256_verifies_der_signatures_of_the_message() {
        let (signing, pem) = p256_pair();
        let key = PublicKey::from_pem(&pem).expect("key");
        assert_eq!(key.algorithm(), "ecdsa-p256");
        let sig: p256::ecdsa::DerSignature = signing.sign(b"payload");
        assert!(key.verifies(b"payload", sig.as_bytes()));
        assert!(!key.verifies(b"payload!", sig.as_bytes()));
        assert!(!key.verifies(b"payload", &sig.as_bytes()[1..]));
        assert!(!key.verifies(b"payload", b""));
    }

    #[test]
    fn ed25519_verifies_and_refuses_another_message() {
        let mut secret = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        let signing = ed25519_dalek::SigningKey::from_bytes(&secret);
        let pem = signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("pem");
        let key = PublicKey::from_pem(&pem).expect("key");
        assert_eq!(key.algorithm(), "ed25519");
        let sig = signing.sign(b"payload");
        assert!(key.verifies(b"payload", &sig.to_bytes()));
        assert!(!key.verifies(b"other", &sig.to_bytes()));
        assert!(!key.verifies(b"payload", &[0u8; 10]));
    }

    #[test]
    fn key_ids_ignore_pem_formatting_and_differ_per_key() {
        let (_, pem) = p256_pair();
        let (_, other) = p256_pair();
        let a = PublicKey::from_pem(&pem).expect("key");
        let reflowed = format!("\n\n{}\n", pem.replace('\n', "\r\n"));
        let b = PublicKey::from_pem(&reflowed).expect("key");
        assert_eq!(a.id(), b.id());
        assert!(a.id().as_str().starts_with("sha256:"));
        assert_ne!(a.id(), PublicKey::from_pem(&other).expect("key").id());
    }

    #[test]
    fn garbage_and_private_keys_are_refused_with_a_reason() {
        assert!(matches!(
            PublicKey::from_pem("not a key"),
            Err(KeyError::Pem(_))
        ));
        let signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        use p256::pkcs8::EncodePrivateKey as _;
        let private = signing.to_pkcs8_pem(Default::default()).expect("pem");
        let err = PublicKey::from_pem(&private).expect_err("a private key is no public key");
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
