//! Deciding whether a signature vouches for a manifest.
//!
//! The order matters: the payload's bytes must be the ones the layer names, the signature must
//! verify over those bytes with a trusted key, and only then is the payload read and its
//! manifest digest compared with the manifest being checked. A signature that verifies but
//! names another manifest (copied from a sibling image) vouches for nothing here.

use sha2::{Digest as _, Sha256};

use crate::cosign::CosignSignature;
use crate::key::{KeyId, PublicKey};
use crate::payload::SimpleSigning;

/// What one signature says about one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Made by this trusted key, over this manifest.
    Verified {
        /// The key that verified it.
        key: KeyId,
    },
    /// No trusted key verifies it: signed by a key the policy does not name, or altered.
    Untrusted,
    /// Verified by a trusted key but broken or meant for something else.
    Invalid {
        /// Why, for people.
        reason: String,
    },
}

/// Checks cosign signature `signature`, whose payload blob is `payload`, against `keys`, for
/// the manifest `subject` (`sha256:<hex>`).
pub fn verify_cosign(
    signature: &CosignSignature,
    payload: &[u8],
    subject: &str,
    keys: &[PublicKey],
) -> Verdict {
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(payload)));
    if actual != signature.payload_digest {
        return Verdict::Invalid {
            reason: format!(
                "the payload's digest is {actual}, not the {} its layer names",
                signature.payload_digest
            ),
        };
    }
    let Some(sig) = signature.signature.as_deref() else {
        return Verdict::Untrusted;
    };
    let Some(key) = keys.iter().find(|k| k.verifies(payload, sig)) else {
        return Verdict::Untrusted;
    };
    match SimpleSigning::parse(payload) {
        Err(e) => Verdict::Invalid {
            reason: e.to_string(),
        },
        Ok(p) if p.manifest_digest != subject => Verdict::Invalid {
            reason: format!(
                "the signature is for manifest {}, not {subject}",
                p.manifest_digest
            ),
        },
        Ok(_) => Verdict::Verified {
            key: key.id().clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    const SUBJECT: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn payload(digest: &str) -> Vec<u8> {
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"r/x"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
    }

    fn signed(key: &p256::ecdsa::SigningKey, payload: &[u8]) -> CosignSignature {
        let sig: p256::ecdsa::DerSignature = key.sign(payload);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
        let manifest = serde_json::json!({"layers": [{
            "mediaType": crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
            "digest": format!("sha256:{}", hex::encode(Sha256::digest(payload))),
            "size": payload.len(),
            "annotations": {crate::cosign::SIGNATURE_ANNOTATION: b64},
        }]});
        CosignSignature::from_manifest(manifest.to_string().as_bytes())
            .expect("manifest")
            .remove(0)
    }

    fn pair() -> (p256::ecdsa::SigningKey, PublicKey) {
        let signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pem = signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("pem");
        (signing, PublicKey::from_pem(&pem).expect("key"))
    }

    #[test]
    fn a_trusted_key_over_this_manifest_verifies() {
        let (signing, key) = pair();
        let (_, other) = pair();
        let p = payload(SUBJECT);
        let sig = signed(&signing, &p);
        assert_eq!(
            verify_cosign(&sig, &p, SUBJECT, &[other.clone(), key.clone()]),
            Verdict::Verified {
                key: key.id().clone()
            }
        );
        assert_eq!(
            verify_cosign(&sig, &p, SUBJECT, &[other]),
            Verdict::Untrusted
        );
        assert_eq!(verify_cosign(&sig, &p, SUBJECT, &[]), Verdict::Untrusted);
    }

    #[test]
    fn a_signature_of_another_manifest_is_invalid_here() {
        let (signing, key) = pair();
        let elsewhere = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let p = payload(elsewhere);
        let sig = signed(&signing, &p);
        assert!(matches!(
            verify_cosign(&sig, &p, SUBJECT, &[key]),
            Verdict::Invalid { reason } if reason.contains(elsewhere)
        ));
    }

    #[test]
    fn a_tampered_payload_is_caught_by_its_digest_and_by_the_signature() {
        let (signing, key) = pair();
        let p = payload(SUBJECT);
        let sig = signed(&signing, &p);
        let mut tampered = p.clone();
        tampered[20] ^= 1;
        assert!(matches!(
            verify_cosign(&sig, &tampered, SUBJECT, std::slice::from_ref(&key)),
            Verdict::Invalid { .. }
        ));
        // Even with the layer's digest rewritten to match, the signature no longer holds.
        let mut forged = sig.clone();
        forged.payload_digest = format!("sha256:{}", hex::encode(Sha256::digest(&tampered)));
        assert_eq!(
            verify_cosign(&forged, &tampered, SUBJECT, &[key]),
            Verdict::Untrusted
        );
    }
}
