//! X.509 certificate chains, as keyless signing uses them (RFC 5280 §6, the parts sigstore
//! needs): a leaf certificate, issued by intermediates, up to a root the trust material names.
//!
//! Each link is checked: the issuer's name is the certificate's issuer, the issuer's key
//! verifies the certificate's signature (ECDSA P-256/P-384 with SHA-256/384, RSA PKCS#1 v1.5,
//! Ed25519), every certificate is valid at the time given (for keyless signatures the time the
//! transparency log recorded the signature, not now: Fulcio certificates live ten minutes),
//! issuers are CAs (basicConstraints `cA`, keyUsage `keyCertSign`, path length), and the leaf is
//! a code-signing certificate (extKeyUsage `codeSigning`, keyUsage `digitalSignature`).
//! Chains are short: at most [`MAX_CHAIN`] certificates, each at most [`MAX_CERT_BYTES`].
//! The signatures themselves are RustCrypto's; nothing here is cryptography.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2_010::Digest as _;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

/// The most certificates a chain may have, leaf and root included.
pub const MAX_CHAIN: usize = 5;
/// The largest certificate read (DER). Fulcio's are about 1 KiB.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The most certificates one PEM bundle may hold.
pub const MAX_PEM_CERTS: usize = 8;

const MIN_RSA_BITS: usize = 2048;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-kp-codeSigning (RFC 5280 §4.2.1.12).
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions berth understands; an unknown critical one fails the certificate (RFC 5280
/// §4.2: "A certificate-using system MUST reject the certificate if it encounters a critical
/// extension it does not recognize").
const KNOWN_CRITICAL: &[ObjectIdentifier] = &[
    ObjectIdentifier::new_unwrap("2.5.29.15"), // keyUsage
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subjectAltName
    ObjectIdentifier::new_unwrap("2.5.29.19"), // basicConstraints
    ObjectIdentifier::new_unwrap("2.5.29.37"), // extKeyUsage
];

/// Why a certificate or chain is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Not a certificate (or too large, or too many).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A certificate is not valid at the time of the signature.
    #[error(
        "certificate {subject:?} is not valid at {at} (valid {not_before} to {not_after}, Unix seconds)"
    )]
    Expired {
        /// Whose.
        subject: String,
        /// The time checked.
        at: u64,
        /// Validity start.
        not_before: u64,
        /// Validity end.
        not_after: u64,
    },
    /// No trusted root (through the intermediates) issued the certificate.
    #[error("certificate {0:?} does not chain to a trusted root")]
    Untrusted(String),
    /// An issuer is not allowed to issue certificates.
    #[error("certificate {0:?} is not a CA")]
    NotCa(String),
    /// The leaf is not for code signing.
    #[error("certificate {0:?} is not a code-signing certificate")]
    NotCodeSigning(String),
    /// The chain is longer than [`MAX_CHAIN`] or a CA's path length allows.
    #[error("certificate chain too long")]
    TooLong,
    /// A critical extension berth does not know.
    #[error("certificate {subject:?} has an unknown critical extension {oid}")]
    UnknownCritical {
        /// Whose.
        subject: String,
        /// Which.
        oid: String,
    },
}

/// A parsed certificate with its DER.
#[derive(Debug, Clone)]
pub struct Cert {
    cert: Certificate,
    der: Vec<u8>,
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Cert {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, ChainError> {
        if der.len() > MAX_CERT_BYTES {
            return Err(ChainError::Malformed(format!(
                "a certificate of {} bytes exceeds {MAX_CERT_BYTES}",
                der.len()
            )));
        }
        let cert = Certificate::from_der(der).map_err(|e| ChainError::Malformed(e.to_string()))?;
        Ok(Self {
            cert,
            der: der.to_vec(),
        })
    }

    /// Reads one or more PEM `CERTIFICATE` blocks (at most [`MAX_PEM_CERTS`]).
    pub fn from_pem_chain(pem: &str) -> Result<Vec<Self>, ChainError> {
        const END: &str = "-----END CERTIFICATE-----";
        if pem.len() > MAX_PEM_CERTS * MAX_CERT_BYTES * 2 {
            return Err(ChainError::Malformed("the PEM text is too large".into()));
        }
        let mut certs = Vec::new();
        let mut rest = pem.trim();
        while !rest.is_empty() {
            if certs.len() == MAX_PEM_CERTS {
                return Err(ChainError::Malformed(format!(
                    "more than {MAX_PEM_CERTS} certificates"
                )));
            }
            let end = rest
                .find(END)
                .ok_or_else(|| ChainError::Malformed("no -----END CERTIFICATE-----".into()))?
                + END.len();
            let (label, doc) = x509_cert::der::Document::from_pem(&rest[..end])
                .map_err(|e| ChainError::Malformed(e.to_string()))?;
            if label != "CERTIFICATE" {
                return Err(ChainError::Malformed(format!("a {label:?} block")));
            }
            certs.push(Self::from_der(doc.as_bytes())?);
            rest = rest[end..].trim_start();
        }
        if certs.is_empty() {
            return Err(ChainError::Malformed("no certificate".into()));
        }
        Ok(certs)
    }

    /// The certificate's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, for people.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The subject public key info (DER), to verify what the certificate's key signed.
    pub fn public_key_der(&self) -> Result<Vec<u8>, ChainError> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| ChainError::Malformed(e.to_string()))
    }

    /// The subject alternative names that name a signer: URIs and e-mail addresses.
    pub fn san_identities(&self) -> Vec<String> {
        let Ok(Some((_, san))) = self.cert.tbs_certificate.get::<SubjectAltName>() else {
            return Vec::new();
        };
        san.0
            .iter()
            .filter_map(|name| match name {
                GeneralName::UniformResourceIdentifier(s) | GeneralName::Rfc822Name(s) => {
                    Some(s.to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// The raw value of the extension `oid`, if present once.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        let oid = ObjectIdentifier::new(oid).ok()?;
        let mut found = self
            .cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter(|e| e.extn_id == oid);
        let first = found.next()?;
        found.next().is_none().then(|| first.extn_value.as_bytes())
    }

    /// The validity window, in Unix seconds.
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    fn check_time(&self, at: u64) -> Result<(), ChainError> {
        let (not_before, not_after) = self.validity();
        if at < not_before || at > not_after {
            return Err(ChainError::Expired {
                subject: self.subject(),
                at,
                not_before,
                not_after,
            });
        }
        Ok(())
    }

    fn check_critical(&self) -> Result<(), ChainError> {
        for ext in self
            .cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
        {
            if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
                return Err(ChainError::UnknownCritical {
                    subject: self.subject(),
                    oid: ext.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    fn basic_constraints(&self) -> Result<Option<BasicConstraints>, ChainError> {
        self.cert
            .tbs_certificate
            .get::<BasicConstraints>()
            .map(|bc| bc.map(|(_, bc)| bc))
            .map_err(|e| ChainError::Malformed(e.to_string()))
    }

    fn key_usage(&self) -> Result<Option<KeyUsage>, ChainError> {
        self.cert
            .tbs_certificate
            .get::<KeyUsage>()
            .map(|ku| ku.map(|(_, ku)| ku))
            .map_err(|e| ChainError::Malformed(e.to_string()))
    }

    /// Whether this certificate may issue `depth` more CA certificates below it.
    fn check_ca(&self, cas_below: usize) -> Result<(), ChainError> {
        let bc = self.basic_constraints()?;
        let Some(bc) = bc.filter(|bc| bc.ca) else {
            return Err(ChainError::NotCa(self.subject()));
        };
        if bc
            .path_len_constraint
            .is_some_and(|max| cas_below > usize::from(max))
        {
            return Err(ChainError::TooLong);
        }
        if self.key_usage()?.is_some_and(|ku| !ku.key_cert_sign()) {
            return Err(ChainError::NotCa(self.subject()));
        }
        Ok(())
    }

    fn check_leaf(&self) -> Result<(), ChainError> {
        if self.basic_constraints()?.is_some_and(|bc| bc.ca) {
            return Err(ChainError::NotCodeSigning(self.subject()));
        }
        if self.key_usage()?.is_some_and(|ku| !ku.digital_signature()) {
            return Err(ChainError::NotCodeSigning(self.subject()));
        }
        let eku = self
            .cert
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .map_err(|e| ChainError::Malformed(e.to_string()))?;
        match eku {
            Some((_, eku)) if eku.0.contains(&CODE_SIGNING) => Ok(()),
            _ => Err(ChainError::NotCodeSigning(self.subject())),
        }
    }

    /// Whether `issuer` issued this certificate: names match and its key verifies the
    /// signature over the TBS certificate.
    fn issued_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return false;
        }
        let Ok(tbs) = self.cert.tbs_certificate.to_der() else {
            return false;
        };
        let Some(signature) = self.cert.signature.as_bytes() else {
            return false;
        };
        let Ok(spki) = issuer.public_key_der() else {
            return false;
        };
        verify_signature(&self.cert.signature_algorithm.oid, &spki, &tbs, signature)
    }
}

/// Whether `signature` by the key `spki` (DER SubjectPublicKeyInfo) over `message` verifies
/// under the X.509 signature algorithm `alg`.
fn verify_signature(alg: &ObjectIdentifier, spki: &[u8], message: &[u8], signature: &[u8]) -> bool {
    if *alg == ECDSA_SHA256 || *alg == ECDSA_SHA384 {
        let prehash = if *alg == ECDSA_SHA256 {
            sha2_010::Sha256::digest(message).to_vec()
        } else {
            sha2_010::Sha384::digest(message).to_vec()
        };
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
            return p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok());
        }
        if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) {
            return p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok());
        }
        return false;
    }
    if *alg == RSA_SHA256 || *alg == RSA_SHA384 || *alg == RSA_SHA512 {
        use rsa::traits::PublicKeyParts as _;
        let Ok(key) = rsa::RsaPublicKey::from_public_key_der(spki) else {
            return false;
        };
        if key.size() * 8 < MIN_RSA_BITS {
            return false;
        }
        let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
            return false;
        };
        return if *alg == RSA_SHA256 {
            rsa::pkcs1v15::VerifyingKey::<sha2_010::Sha256>::new(key)
                .verify(message, &sig)
                .is_ok()
        } else if *alg == RSA_SHA384 {
            rsa::pkcs1v15::VerifyingKey::<sha2_010::Sha384>::new(key)
                .verify(message, &sig)
                .is_ok()
        } else {
            rsa::pkcs1v15::VerifyingKey::<sha2_010::Sha512>::new(key)
                .verify(message, &sig)
                .is_ok()
        };
    }
    if *alg == ED25519 {
        return ed25519_dalek::VerifyingKey::from_public_key_der(spki).is_ok_and(|key| {
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
        });
    }
    false
}

/// Verifies that `leaf` chains to one of `roots` through `intermediates`, every certificate
/// valid at `at` (Unix seconds). Returns the chain, leaf first, root last.
pub fn verify_chain<'a>(
    leaf: &'a Cert,
    intermediates: &'a [Cert],
    roots: &'a [Cert],
    at: u64,
) -> Result<Vec<&'a Cert>, ChainError> {
    leaf.check_critical()?;
    leaf.check_time(at)?;
    leaf.check_leaf()?;
    let mut chain = vec![leaf];
    loop {
        let current = chain[chain.len() - 1];
        // CAs between the leaf and the issuer being looked for.
        let cas_below = chain.len() - 1;
        if let Some(root) = roots.iter().find(|r| current.issued_by(r)) {
            root.check_time(at)?;
            root.check_ca(cas_below)?;
            chain.push(root);
            if chain.len() > MAX_CHAIN {
                return Err(ChainError::TooLong);
            }
            return Ok(chain);
        }
        if chain.len() + 1 >= MAX_CHAIN {
            return Err(ChainError::Untrusted(leaf.subject()));
        }
        let Some(next) = intermediates
            .iter()
            .find(|c| !chain.contains(c) && current.issued_by(c))
        else {
            return Err(ChainError::Untrusted(leaf.subject()));
        };
        next.check_critical()?;
        next.check_time(at)?;
        next.check_ca(cas_below)?;
        chain.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_oversized_certificates_fail_fast() {
        assert!(matches!(
            Cert::from_der(b"not a certificate"),
            Err(ChainError::Malformed(_))
        ));
        assert!(matches!(
            Cert::from_der(&vec![0x30; MAX_CERT_BYTES + 1]),
            Err(ChainError::Malformed(_))
        ));
        let huge = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            "A".repeat(1 << 20)
        );
        assert!(Cert::from_pem_chain(&huge).is_err());
        assert!(Cert::from_pem_chain("").is_err());
        assert!(Cert::from_pem_chain("-----BEGIN CERTIFICATE-----\n").is_err());
    }
}
