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
//! x509         certificate chains up to trusted roots, at a given time
//! notation     notation (Notary Project) signatures: manifests, X.509 trust stores, identities
//! jws, cose    notation's JWS and COSE envelopes
//! ```
//!
//! Depends on nothing else of berth's.

pub mod cose;
pub mod cosign;
pub mod jws;
pub mod key;
pub mod notation;
pub mod payload;
pub mod policy;
pub mod verify;
pub mod x509;

pub use cosign::{CosignSignature, SignatureManifestError, cosign_signature_tag};
pub use key::{KeyError, KeyId, PublicKey};
pub use notation::{NotationSignature, NotationTrust, NotationVerdict, verify_notation};
pub use payload::{PayloadError, SimpleSigning};
pub use policy::{Mode, Policies, Policy, PolicyConfig, PolicyError};
pub use verify::{Verdict, verify_cosign};
