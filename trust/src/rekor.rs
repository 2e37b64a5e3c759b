//! Transparency-log evidence, checked offline with the log's key from the trusted root
//! (Rekor `pkg/api`, `openapi.yaml`; RFC 9162 §2.1 for the Merkle tree; the signed-note
//! format of `golang.org/x/mod/sumdb/note` for checkpoints):
//!
//! - a SignedEntryTimestamp (inclusion promise): the log's ECDSA signature over the canonical
//!   JSON (RFC 8785) of `{body, integratedTime, logID, logIndex}`; it is what makes the
//!   integrated time, the time keyless certificates are checked at, trustworthy;
//! - an inclusion proof: the entry's leaf hash, hashed up an audit path, gives the root hash
//!   of a checkpoint the log signed;
//! - the entry's body, which must be about this signature: a `hashedrekord` (signature,
//!   certificate, SHA-256 of the signed bytes) or a `dsse` entry (payload hash, signatures).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::trusted_root::{Tlog, TrustedRoot};

/// The longest audit path read (a tree of 2^64 leaves needs 64).
const MAX_PROOF_HASHES: usize = 64;
/// The largest entry body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A log entry's fields the promise covers.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The entry's body, base64, as the log returns it.
    pub body_b64: &'a str,
    /// When the log integrated it (Unix seconds).
    pub integrated_time: i64,
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id, hex.
    pub log_id: &'a str,
}

/// Checks the log's SignedEntryTimestamp `set` over `entry`; returns the log.
pub fn verify_set<'r>(
    root: &'r TrustedRoot,
    entry: &Entry<'_>,
    set: &[u8],
) -> Result<&'r Tlog, String> {
    let at = u64::try_from(entry.integrated_time).map_err(|_| "negative integrated time")?;
    let log = root.tlog(entry.log_id, at).ok_or_else(|| {
        format!(
            "the transparency log {} is not in the trusted root (at that time)",
            entry.log_id
        )
    })?;
    // Written in sorted key order: the canonical form whatever serde_json's map is.
    let canonical = format!(
        r#"{{"body":{},"integratedTime":{},"logID":{},"logIndex":{}}}"#,
        serde_json::Value::from(entry.body_b64),
        entry.integrated_time,
        serde_json::Value::from(entry.log_id),
        entry.log_index
    );
    if !log.key.verifies(canonical.as_bytes(), set) {
        return Err("the transparency log's signed entry timestamp does not verify".into());
    }
    Ok(log)
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
fn root_from_proof(index: u64, size: u64, leaf: [u8; 32], proof: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let node = |l: &[u8], r: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    let (mut fn_, mut sn, mut r) = (index, size - 1, leaf);
    for p in proof {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// An inclusion proof as bundles carry it.
#[derive(Debug, Clone)]
pub struct InclusionProof<'a> {
    /// The entry's index in this tree.
    pub log_index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The tree's root hash.
    pub root_hash: Vec<u8>,
    /// The audit path.
    pub hashes: Vec<Vec<u8>>,
    /// The signed checkpoint (a signed note).
    pub checkpoint: &'a str,
}

/// Checks that `body` (the entry's bytes) is in the tree `proof` names, and that `log` signed
/// that tree's checkpoint.
pub fn verify_inclusion(log: &Tlog, body: &[u8], proof: &InclusionProof<'_>) -> Result<(), String> {
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err("the inclusion proof is too long".into());
    }
    let mut path = Vec::with_capacity(proof.hashes.len());
    for h in &proof.hashes {
        path.push(
            <[u8; 32]>::try_from(h.as_slice())
                .map_err(|_| "an inclusion proof hash is not 32 bytes")?,
        );
    }
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let computed = root_from_proof(
        proof.log_index,
        proof.tree_size,
        leaf.finalize().into(),
        &path,
    )
    .ok_or("the inclusion proof does not fit the tree")?;
    if computed.as_slice() != proof.root_hash.as_slice() {
        return Err("the inclusion proof does not lead to the tree's root hash".into());
    }
    // The checkpoint: origin, size, base64 root hash, optional lines, a blank line, then
    // signature lines "— <name> <base64(4-byte key hint || signature)>".
    let Some(split) = proof.checkpoint.find("\n\n") else {
        return Err("the checkpoint is not a signed note".into());
    };
    let (text, signatures) = proof.checkpoint.split_at(split + 1);
    let mut lines = text.lines();
    let (_origin, size, root) = (lines.next(), lines.next(), lines.next());
    if size.and_then(|s| s.parse::<u64>().ok()) != Some(proof.tree_size)
        || root.and_then(|r| STANDARD.decode(r).ok()).as_deref() != Some(proof.root_hash.as_slice())
    {
        return Err("the checkpoint is for another tree than the inclusion proof".into());
    }
    let signed = signatures.lines().skip(1).any(|line| {
        line.strip_prefix("\u{2014} ")
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, sig)| STANDARD.decode(sig).ok())
            .is_some_and(|sig| sig.len() > 4 && log.key.verifies(text.as_bytes(), &sig[4..]))
    });
    if !signed {
        return Err("the checkpoint is not signed by the transparency log".into());
    }
    Ok(())
}

/// A signature and its verifier (base64 PEM) as a log entry records them.
type LoggedSignature = (Option<String>, Option<String>);

#[derive(Deserialize)]
struct Body {
    kind: String,
    spec: serde_json::Value,
}

/// What a log entry must say about the signature it records.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The signature bytes.
    pub signature: &'a [u8],
    /// The verifier: the signing certificate's DER, or the public key's DER.
    pub verifier_der: &'a [u8],
    /// For `hashedrekord`: the SHA-256 of the signed bytes. For `dsse`: of the payload.
    pub sha256: [u8; 32],
}

/// Checks that the entry body `body` (decoded) records `expected`.
pub fn check_body(body: &[u8], expected: &Expected<'_>) -> Result<(), String> {
    if body.len() > MAX_BODY_BYTES {
        return Err("the log entry is too large".into());
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("log entry: {e}"))?;
    let str_at = |v: &serde_json::Value, path: &str| {
        v.pointer(path).and_then(|s| s.as_str()).map(str::to_owned)
    };
    let hex_hash = hex::encode(expected.sha256);
    let (hash_path, sigs): (&str, Vec<LoggedSignature>) = match body.kind.as_str() {
        "hashedrekord" => (
            "/data/hash/value",
            vec![(
                str_at(&body.spec, "/signature/content"),
                str_at(&body.spec, "/signature/publicKey/content"),
            )],
        ),
        "dsse" => (
            "/payloadHash/value",
            body.spec
                .pointer("/signatures")
                .and_then(|s| s.as_array())
                .map(|a| {
                    a.iter()
                        .take(16)
                        .map(|s| (str_at(s, "/signature"), str_at(s, "/verifier")))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        other => return Err(format!("log entries of kind {other:?} are not supported")),
    };
    if str_at(&body.spec, hash_path).as_deref() != Some(hex_hash.as_str()) {
        return Err("the log entry is about other content".into());
    }
    let matches = sigs.iter().any(|(sig, verifier)| {
        sig.as_deref()
            .and_then(|s| STANDARD.decode(s).ok())
            .as_deref()
            == Some(expected.signature)
            && verifier
                .as_deref()
                .and_then(|v| STANDARD.decode(v).ok())
                .and_then(|pem| pem_der(&pem))
                .as_deref()
                == Some(expected.verifier_der)
    });
    if !matches {
        return Err("the log entry records another signature or signer".into());
    }
    Ok(())
}

/// The DER of a single PEM block (certificate or public key).
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let (_, doc) = x509_cert::der::Document::from_pem(text.trim()).ok()?;
    Some(doc.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8, i]);
        h.finalize().into()
    }

    fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    }

    #[test]
    fn inclusion_proofs_of_a_five_leaf_tree() {
        // RFC 9162 §2.1.1: MTH of 5 leaves = node(node(node(0,1),node(2,3)), 4).
        let l: Vec<[u8; 32]> = (0..5).map(leaf).collect();
        let n01 = node(&l[0], &l[1]);
        let n23 = node(&l[2], &l[3]);
        let n0123 = node(&n01, &n23);
        let root = node(&n0123, &l[4]);
        assert_eq!(root_from_proof(4, 5, l[4], &[n0123]), Some(root));
        assert_eq!(root_from_proof(2, 5, l[2], &[l[3], n01, l[4]]), Some(root));
        assert_eq!(root_from_proof(0, 5, l[0], &[l[1], n23, l[4]]), Some(root));
        assert_ne!(root_from_proof(1, 5, l[2], &[l[3], n01, l[4]]), Some(root));
        assert_eq!(root_from_proof(5, 5, l[4], &[n0123]), None);
        assert_eq!(root_from_proof(4, 5, l[4], &[n0123, n0123]), None);
    }
}
