//! Notary Project (notation) signatures: signature manifests, their envelopes, and the
//! `notary.x509` trust policy (notaryproject specs: signature-specification.md,
//! signature-envelope-jws.md, trust-store-trust-policy.md).
//!
//! A notation signature is an OCI manifest whose `artifactType` (or config media type) is
//! [`SIGNATURE_ARTIFACT_TYPE`], pushed as a referrer of the signed manifest, with one layer:
//! the envelope, JWS ([`JWS_MEDIA_TYPE`], see [`crate::jws`]) or COSE ([`COSE_MEDIA_TYPE`],
//! see [`crate::cose`]). The envelope carries the
//! payload (the signed manifest's descriptor), the signing certificate chain (leaf first) and
//! signed attributes (signing scheme, signing time, expiry).
//!
//! Verification follows the trust policy spec's order for the `notary.x509` scheme:
//! integrity (the leaf's key verifies the signature over the envelope's signed bytes, with an
//! algorithm that fits the key), authenticity (the chain leads to a certificate of the policy's
//! trust store, every certificate valid at the signing time and, since `notary.x509` has no
//! authentic signing time, at verification time too; the leaf is a code-signing certificate
//! whose subject matches a trusted identity), expiry (`io.cncf.notary.expiry` not passed), and
//! only then the payload: its `targetArtifact` must be this manifest (digest, media type,
//! size). Revocation (OCSP, CRL) is not checked: berth verifies offline.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::ObjectIdentifier;

use crate::cosign::SignatureManifestError;
use crate::x509::{Cert, ChainError, verify_chain};

/// The artifact type of notation signature manifests.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The media type of a JWS envelope layer.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// The media type of a COSE envelope layer.
pub const COSE_MEDIA_TYPE: &str = "application/cose";
/// The payload content type every envelope must declare.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The largest envelope read. notation's are a few KiB (three certificates and a signature);
/// anything much larger is an attack on the verifier.
pub const MAX_ENVELOPE_BYTES: u64 = 64 * 1024;
/// Envelope layers read per signature manifest (notation writes exactly one).
pub const MAX_ENVELOPES: usize = 4;
/// Trust store certificates read, all files together.
pub const MAX_STORE_CERTS: usize = 64;

/// One envelope layer of a notation signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationSignature {
    /// [`JWS_MEDIA_TYPE`] or [`COSE_MEDIA_TYPE`].
    pub media_type: String,
    /// The envelope blob's digest.
    pub digest: String,
    /// The envelope blob's size.
    pub size: u64,
}

impl NotationSignature {
    /// The envelope layers of a notation signature manifest. Layers of other media types are
    /// skipped; a manifest that is not a notation signature holds none.
    pub fn from_manifest(manifest: &[u8]) -> Result<Vec<Self>, SignatureManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Manifest {
            artifact_type: Option<String>,
            config: Option<Descriptor>,
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Descriptor {
            media_type: String,
            #[serde(default)]
            digest: String,
            #[serde(default)]
            size: u64,
        }
        let m: Manifest = serde_json::from_slice(manifest)
            .map_err(|e| SignatureManifestError::Json(e.to_string()))?;
        let kind = m
            .artifact_type
            .as_deref()
            .or(m.config.as_ref().map(|c| c.media_type.as_str()));
        if kind != Some(SIGNATURE_ARTIFACT_TYPE) {
            return Ok(Vec::new());
        }
        Ok(m.layers
            .into_iter()
            .filter(|l| l.media_type == JWS_MEDIA_TYPE || l.media_type == COSE_MEDIA_TYPE)
            .take(MAX_ENVELOPES)
            .map(|l| Self {
                media_type: l.media_type,
                digest: l.digest,
                size: l.size,
            })
            .collect())
    }
}

/// The signature algorithms notation signs with (signature-specification.md, "Algorithm
/// Selection"), each bound to one key type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256, RSA 2048-bit keys.
    Ps256,
    /// RSASSA-PSS with SHA-384, RSA 3072-bit keys.
    Ps384,
    /// RSASSA-PSS with SHA-512, RSA 4096-bit keys.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
}

impl Algorithm {
    /// The JWS name (`PS256`...); anything else (`none`, `HS256`, `RS256`...) is refused.
    pub fn from_jws(name: &str) -> Option<Self> {
        Some(match name {
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            _ => return None,
        })
    }

    /// Whether the key `spki` (DER) made `signature` over `message` with this algorithm.
    /// ECDSA signatures are the fixed-size `r || s` both JWS and COSE use.
    fn verifies(self, spki: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String> {
        use p256::ecdsa::signature::Verifier as _;
        use p256::pkcs8::DecodePublicKey as _;
        let wrong_key = || format!("the signing certificate's key does not fit {self:?}");
        let bad = || "the signature does not verify with the signing certificate's key".to_owned();
        match self {
            Self::Es256 => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki)
                    .map_err(|_| wrong_key())?;
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify(message, &sig).map_err(|_| bad())
            }
            Self::Es384 => {
                let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki)
                    .map_err(|_| wrong_key())?;
                let sig = p384::ecdsa::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify(message, &sig).map_err(|_| bad())
            }
            Self::Es512 => {
                let key = p521::PublicKey::from_public_key_der(spki)
                    .ok()
                    .and_then(|k| p521::ecdsa::VerifyingKey::from_affine(*k.as_affine()).ok())
                    .ok_or_else(wrong_key)?;
                let sig = p521::ecdsa::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify(message, &sig).map_err(|_| bad())
            }
            Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                use rsa::traits::PublicKeyParts as _;
                let key = rsa::RsaPublicKey::from_public_key_der(spki).map_err(|_| wrong_key())?;
                let bits = match self {
                    Self::Ps256 => 2048,
                    Self::Ps384 => 3072,
                    _ => 4096,
                };
                if key.size() * 8 != bits {
                    return Err(format!(
                        "{self:?} needs an RSA {bits}-bit key, the certificate's has {} bits",
                        key.size() * 8
                    ));
                }
                let sig = rsa::pss::Signature::try_from(signature).map_err(|_| bad())?;
                let ok = match self {
                    Self::Ps256 => rsa::pss::VerifyingKey::<sha2_010::Sha256>::new(key)
                        .verify(message, &sig)
                        .is_ok(),
                    Self::Ps384 => rsa::pss::VerifyingKey::<sha2_010::Sha384>::new(key)
                        .verify(message, &sig)
                        .is_ok(),
                    _ => rsa::pss::VerifyingKey::<sha2_010::Sha512>::new(key)
                        .verify(message, &sig)
                        .is_ok(),
                };
                ok.then_some(()).ok_or_else(bad)
            }
        }
    }
}

/// What an envelope says, once its format's own rules (header names, critical attributes,
/// signing scheme) are checked: the same for JWS and COSE.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The signature algorithm.
    pub algorithm: Algorithm,
    /// The bytes the signature covers.
    pub signed: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// The certificate chain, leaf first.
    pub certs: Vec<Cert>,
    /// `io.cncf.notary.signingTime` (Unix seconds).
    pub signing_time: u64,
    /// `io.cncf.notary.expiry` (Unix seconds), if any.
    pub expiry: Option<u64>,
    /// The payload (JSON, `targetArtifact`).
    pub payload: Vec<u8>,
}

/// The manifest a signature must be about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `sha256:<hex>`.
    pub digest: &'a str,
    /// Its media type.
    pub media_type: &'a str,
    /// Its size in bytes.
    pub size: u64,
}

/// What one notation signature says about one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotationVerdict {
    /// Signed by a trusted identity, over this manifest.
    Verified {
        /// The signer: `x509.subject: ` and the leaf certificate's subject.
        identity: String,
        /// The trusted identity of the policy it matched, as configured.
        trusted_as: String,
    },
    /// Not signed by anyone the policy trusts (chain to another root, another identity).
    Untrusted {
        /// Why, for people.
        reason: String,
    },
    /// Broken, expired, of an unsupported kind, or meant for another manifest.
    Invalid {
        /// Why, for people.
        reason: String,
    },
}

/// A trusted identity of a policy (trust-store-trust-policy.md, `trustedIdentities`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// `*`: any leaf the trust store's CAs issued.
    Any,
    /// `x509.subject: C=US, O=Acme, CN=release`: these attributes must all be in the leaf's
    /// subject, with these values.
    Subject {
        written: String,
        attributes: Vec<(ObjectIdentifier, String)>,
    },
}

/// Why a policy's notation trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NotationTrustError {
    /// The trust store could not be read.
    #[error("notation trust store {path}: {reason}")]
    Store {
        /// The file or directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// A trusted identity is not `*` nor `x509.subject: <DN>`.
    #[error("notation identity {identity:?}: {reason}")]
    Identity {
        /// As written.
        identity: String,
        /// Why.
        reason: String,
    },
}

/// A policy's notation trust: the trust store's certificates and the trusted identities.
#[derive(Debug, Clone)]
pub struct NotationTrust {
    roots: Vec<Cert>,
    identities: Vec<Identity>,
    id: String,
}

impl NotationTrust {
    /// Reads the trust store `store` (a PEM file, or a directory of PEM files: its regular
    /// files, not its subdirectories) and parses `identities`.
    pub fn load(store: &Path, identities: &[String]) -> Result<Self, NotationTrustError> {
        let bad = |reason: String| NotationTrustError::Store {
            path: store.display().to_string(),
            reason,
        };
        let mut files = Vec::new();
        let meta = std::fs::metadata(store).map_err(|e| bad(e.to_string()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(store).map_err(|e| bad(e.to_string()))? {
                let entry = entry.map_err(|e| bad(e.to_string()))?;
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    files.push(entry.path());
                }
            }
            files.sort();
        } else {
            files.push(store.to_owned());
        }
        let mut roots = Vec::new();
        for file in &files {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| bad(format!("{}: {e}", file.display())))?;
            let certs =
                Cert::from_pem_chain(&pem).map_err(|e| bad(format!("{}: {e}", file.display())))?;
            roots.extend(certs);
            if roots.len() > MAX_STORE_CERTS {
                return Err(bad(format!("more than {MAX_STORE_CERTS} certificates")));
            }
        }
        if roots.is_empty() {
            return Err(bad("no certificate".into()));
        }
        Self::new(roots, identities)
    }

    /// Trust in `roots` for `identities`.
    pub fn new(roots: Vec<Cert>, identities: &[String]) -> Result<Self, NotationTrustError> {
        if identities.is_empty() {
            return Err(NotationTrustError::Identity {
                identity: String::new(),
                reason: "a trust store needs notation_identities (\"*\" trusts any identity its CAs certify, and must be written)".into(),
            });
        }
        let identities = identities
            .iter()
            .map(|i| parse_identity(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut parts: Vec<String> = roots
            .iter()
            .map(|c| format!("ca:{}", hex::encode(Sha256::digest(c.der()))))
            .collect();
        parts.sort();
        parts.extend(identities.iter().map(|i| match i {
            Identity::Any => "identity:*".to_owned(),
            Identity::Subject { attributes, .. } => format!(
                "identity:{}",
                attributes
                    .iter()
                    .map(|(oid, v)| format!("{oid}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }));
        let id = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(parts.join("\n").as_bytes()))
        );
        Ok(Self {
            roots,
            identities,
            id,
        })
    }

    /// An id of the trust store's certificates and the identities: part of the policy's key
    /// set, so cached verdicts are not reused once either changes.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn trusted_identity(&self, leaf: &Cert) -> Option<String> {
        let subject = subject_attributes(leaf);
        self.identities.iter().find_map(|i| match i {
            Identity::Any => Some("*".to_owned()),
            Identity::Subject {
                written,
                attributes,
            } => attributes
                .iter()
                .all(|a| subject.contains(a))
                .then(|| written.clone()),
        })
    }
}

/// The distinguished-name attributes notation's identities name (RFC 4514 §3 and the
/// `ST`, `L`... names Go's pkix prints).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("S", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("CN", "2.5.4.3"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("STREET", "2.5.4.9"),
    ("POSTALCODE", "2.5.4.17"),
    ("E", "1.2.840.113549.1.9.1"),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
];

fn parse_identity(written: &str) -> Result<Identity, NotationTrustError> {
    let bad = |reason: &str| NotationTrustError::Identity {
        identity: written.to_owned(),
        reason: reason.to_owned(),
    };
    if written.trim() == "*" {
        return Ok(Identity::Any);
    }
    let Some((kind, dn)) = written.split_once(':') else {
        return Err(bad(
            "expected \"*\" or \"x509.subject: <distinguished name>\"",
        ));
    };
    if kind.trim() != "x509.subject" {
        return Err(bad("the only identity type is x509.subject"));
    }
    let mut attributes: Vec<(ObjectIdentifier, String)> = Vec::new();
    for part in split_unescaped(dn) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(bad("each attribute is NAME=value"));
        };
        let name = name.trim().to_ascii_uppercase();
        let Some((_, oid)) = ATTRIBUTES.iter().find(|(n, _)| *n == name) else {
            return Err(bad(
                "unknown attribute (C, ST, L, O, OU, CN, SERIALNUMBER, STREET, POSTALCODE, E)",
            ));
        };
        let oid = ObjectIdentifier::new_unwrap(oid);
        if attributes.iter().any(|(o, _)| *o == oid) {
            return Err(bad("an attribute appears twice"));
        }
        attributes.push((oid, unescape(value.trim())));
    }
    if attributes.is_empty() {
        return Err(bad("the distinguished name is empty"));
    }
    Ok(Identity::Subject {
        written: written.trim().to_owned(),
        attributes,
    })
}

/// Splits a DN at `,` and `+` not escaped with `\`.
fn split_unescaped(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '+' {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The leaf's subject attributes with string values.
fn subject_attributes(cert: &Cert) -> Vec<(ObjectIdentifier, String)> {
    let Ok(parsed) = x509_cert::Certificate::from_der(cert.der()) else {
        return Vec::new();
    };
    parsed
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter_map(|atv| {
            let text = std::str::from_utf8(atv.value.value()).ok()?;
            Some((atv.oid, text.to_owned()))
        })
        .collect()
}

/// The signed payload (signature-specification.md, "Payload").
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    target_artifact: TargetArtifact,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetArtifact {
    media_type: String,
    digest: String,
    size: u64,
}

/// Checks the envelope `bytes` of `signature` for `target` under `trust`, at `now` (Unix
/// seconds).
pub fn verify_notation(
    signature: &NotationSignature,
    bytes: &[u8],
    target: Target<'_>,
    trust: &NotationTrust,
    now: u64,
) -> NotationVerdict {
    let invalid = |reason: String| NotationVerdict::Invalid { reason };
    if bytes.len() as u64 > MAX_ENVELOPE_BYTES {
        return invalid(format!(
            "notation envelope of {} bytes exceeds {MAX_ENVELOPE_BYTES}",
            bytes.len()
        ));
    }
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if actual != signature.digest {
        return invalid(format!(
            "the notation envelope's digest is {actual}, not the {} its layer names",
            signature.digest
        ));
    }
    let envelope = match signature.media_type.as_str() {
        JWS_MEDIA_TYPE => crate::jws::parse(bytes),
        COSE_MEDIA_TYPE => crate::cose::parse(bytes),
        other => Err(format!(
            "notation envelopes of type {other} are not supported"
        )),
    };
    match envelope {
        Ok(envelope) => verify_envelope(&envelope, target, trust, now),
        Err(reason) => invalid(format!("notation envelope: {reason}")),
    }
}

/// The checks after parsing, common to every envelope format.
pub fn verify_envelope(
    envelope: &Envelope,
    target: Target<'_>,
    trust: &NotationTrust,
    now: u64,
) -> NotationVerdict {
    let invalid = |reason: String| NotationVerdict::Invalid { reason };
    let Some(leaf) = envelope.certs.first() else {
        return invalid("the envelope has no certificate".into());
    };
    // Integrity.
    let spki = match leaf.public_key_der() {
        Ok(spki) => spki,
        Err(e) => return invalid(e.to_string()),
    };
    if let Err(reason) = envelope
        .algorithm
        .verifies(&spki, &envelope.signed, &envelope.signature)
    {
        return invalid(reason);
    }
    // Authenticity: the chain at the signing time, and (no authentic signing time in
    // notary.x509) at verification time.
    let intermediates = &envelope.certs[1..];
    for at in [envelope.signing_time, now] {
        match verify_chain(leaf, intermediates, &trust.roots, at) {
            Ok(_) => {}
            Err(ChainError::Untrusted(subject)) => {
                return NotationVerdict::Untrusted {
                    reason: format!(
                        "the signing certificate {subject:?} does not chain to the policy's notation trust store"
                    ),
                };
            }
            Err(e) => return invalid(e.to_string()),
        }
    }
    let Some(trusted_as) = trust.trusted_identity(leaf) else {
        return NotationVerdict::Untrusted {
            reason: format!(
                "the signer {:?} is none of the policy's notation identities",
                leaf.subject()
            ),
        };
    };
    // Expiry.
    if let Some(expiry) = envelope.expiry
        && now > expiry
    {
        return invalid(format!(
            "the notation signature expired (io.cncf.notary.expiry {expiry}, now {now}, Unix seconds)"
        ));
    }
    // The payload names this manifest.
    let payload: Payload = match serde_json::from_slice(&envelope.payload) {
        Ok(p) => p,
        Err(e) => return invalid(format!("notation payload: {e}")),
    };
    let t = payload.target_artifact;
    if t.digest != target.digest {
        return invalid(format!(
            "the notation signature is for manifest {}, not {}",
            t.digest, target.digest
        ));
    }
    if t.media_type != target.media_type || t.size != target.size {
        return invalid(format!(
            "the notation signature's target is a {} of {} bytes, the manifest a {} of {}",
            t.media_type, t.size, target.media_type, target.size
        ));
    }
    NotationVerdict::Verified {
        identity: format!("x509.subject: {}", leaf.subject()),
        trusted_as,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_as_notation_writes_them() {
        let i = parse_identity("x509.subject: C=US, ST=WA, O=Acme\\, Inc., CN=release").unwrap();
        let Identity::Subject { attributes, .. } = i else {
            panic!("a subject");
        };
        assert_eq!(attributes.len(), 4);
        assert_eq!(attributes[2].1, "Acme, Inc.");
        assert_eq!(parse_identity(" * ").unwrap(), Identity::Any);
        for bad in [
            "CN=release",
            "x509.san: x",
            "x509.subject: ",
            "x509.subject: C=US, C=DE",
            "x509.subject: XX=1",
            "x509.subject: CN",
        ] {
            assert!(parse_identity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_notation_signature_manifests_have_envelopes() {
        let m = |kind: &str| {
            serde_json::json!({
                "artifactType": kind,
                "layers": [
                    {"mediaType": JWS_MEDIA_TYPE, "digest": "sha256:aa", "size": 3},
                    {"mediaType": "text/plain", "digest": "sha256:bb", "size": 3}
                ]
            })
            .to_string()
        };
        let found =
            NotationSignature::from_manifest(m(SIGNATURE_ARTIFACT_TYPE).as_bytes()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, "sha256:aa");
        assert!(
            NotationSignature::from_manifest(m("application/x").as_bytes())
                .unwrap()
                .is_empty()
        );
        // notation before OCI 1.1 artifact types: the config's media type says it.
        let old = serde_json::json!({
            "config": {"mediaType": SIGNATURE_ARTIFACT_TYPE, "digest": "sha256:cc", "size": 2},
            "layers": [{"mediaType": COSE_MEDIA_TYPE, "digest": "sha256:aa", "size": 3}]
        });
        assert_eq!(
            NotationSignature::from_manifest(old.to_string().as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert!(NotationSignature::from_manifest(b"[").is_err());
    }
}

/// The signed attributes notation's envelopes carry, by the names both envelope formats use
/// (JWS protected header keys, COSE protected header text labels).
pub(crate) mod attributes {
    pub(crate) const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
    pub(crate) const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
    pub(crate) const EXPIRY: &str = "io.cncf.notary.expiry";
    pub(crate) const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
    pub(crate) const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
    pub(crate) const VERIFICATION_PLUGIN_MIN_VERSION: &str =
        "io.cncf.notary.verificationPluginMinVersion";

    /// The signed attributes that may be critical, and that must be when present.
    pub(crate) const CRITICAL: &[&str] = &[
        SIGNING_SCHEME,
        EXPIRY,
        AUTHENTIC_SIGNING_TIME,
        VERIFICATION_PLUGIN,
        VERIFICATION_PLUGIN_MIN_VERSION,
    ];
}
