//! berth's image signatures: what a signature of a manifest looks like in a registry, and
//! whether it was made by a key a team trusts.
//!
//! This crate has no I/O. The registry (which finds signature manifests through the referrers
//! API and cosign's tag scheme) and the runtime (which checks images before it unpacks them)
//! fetch the bytes and hand them here:
//!
//! ```text
//! key          public keys a policy trusts (PEM: ECDSA P-256, Ed25519, RSA) and their ids
//! payload      cosign's "simple signing" payload: which manifest digest was signed
//! cosign       signature manifests as cosign writes them: one layer per signature
//! verify       a signature, its payload and the keys → a verdict naming the key
//! policy       `[[trust.policy]]`: which keys a scope trusts, audit or enforce
//! sign         private keys that sign (cosign's encrypted keys, PKCS#8) and new key pairs
//! encrypted    cosign's encrypted private key format (scrypt + NaCl secretbox)
//! attach       payloads and signature manifests as cosign writes them, for `berth sign`
//!
//! x509         certificate chains: links, validity at a time, CA and code-signing checks
//! trusted_root sigstore's trusted_root.json: Fulcio CAs and Rekor keys, with their windows
//! identity     `[[trust.policy.identity]]`: OIDC issuer and subject of a Fulcio certificate
//! rekor        transparency-log evidence: signed entry timestamps, inclusion proofs, bodies
//! keyless      keyless cosign signatures (certificate + Rekor bundle annotations)
//! bundle       sigstore bundles v0.3 (message signatures and DSSE), keyed or keyless
//! bundle_sign  bundles as `cosign sign --new-bundle-format --key` writes them, for `berth sign`
//! notation     notation (Notary Project) signatures: manifests, X.509 trust stores, identities
//! jws, cose    notation's JWS and COSE envelopes
//! ```
//!
//! Depends on nothing else of berth's.

pub mod attach;
pub mod bundle;
pub mod bundle_sign;
pub mod cose;
pub mod cosign;
pub mod encrypted;
pub mod identity;
pub mod jws;
pub mod key;
pub mod keyless;
pub mod notation;
pub mod payload;
pub mod policy;
pub mod rekor;
pub mod sign;
pub mod trusted_root;
pub mod verify;
pub mod x509;

pub use bundle::{BUNDLE_MEDIA_TYPE, verify_bundle};
pub use cosign::{CosignSignature, SignatureManifestError, cosign_signature_tag};
pub use key::{KeyError, KeyId, PublicKey};
pub use keyless::{Keyless, verify_for_policy, verify_keyless};
pub use notation::{NotationSignature, NotationTrust, NotationVerdict, verify_notation};
pub use payload::{PayloadError, SimpleSigning};
pub use policy::{Mode, Policies, Policy, PolicyConfig, PolicyError};
pub use sign::{SignKeyError, SigningKey};
pub use trusted_root::TrustedRoot;
pub use verify::{Verdict, verify_cosign};
