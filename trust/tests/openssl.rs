//! Interoperability: signatures made by an independent implementation (the openssl command,
//! as a team's signing scripts or KMS exports produce them) verify with berth's keys, and
//! altered ones do not.

use std::path::Path;
use std::process::Command;

use berth_trust::{KeyError, PublicKey};

/// openssl signing file `msg` with SHA-256 into `sig` (ECDSA: DER; RSA: PKCS#1 v1.5).
const DGST: &[&str] = &["dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "msg"];

/// Runs openssl in `dir`, or says why the test cannot run (a failure under `CI=true`).
fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) if out.status.success() => Some(()),
        Ok(out) => panic!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("openssl is required in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no openssl ({e})");
            None
        }
    }
}

/// Makes a key pair of `genpkey` arguments, signs file `msg` (holding `message`) into file
/// `sig` with the openssl arguments `sign`, and returns
/// (public key PEM, signature).
fn openssl_signature(genpkey: &[&str], sign: &[&str], message: &[u8]) -> Option<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("msg"), message).expect("write");
    let mut args = vec!["genpkey", "-out", "key.pem"];
    args.extend_from_slice(genpkey);
    openssl(dir.path(), &args)?;
    openssl(
        dir.path(),
        &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    )?;
    openssl(dir.path(), sign)?;
    Some((
        std::fs::read_to_string(dir.path().join("pub.pem")).expect("pub"),
        std::fs::read(dir.path().join("sig")).expect("sig"),
    ))
}

fn check(genpkey: &[&str], sign: &[&str], algorithm: &str) {
    let message = br#"{"critical":{"type":"cosign container image signature"}}"#;
    let Some((pem, sig)) = openssl_signature(genpkey, sign, message) else {
        return;
    };
    let key = PublicKey::from_pem(&pem).expect("openssl's public key");
    assert_eq!(key.algorithm(), algorithm);
    assert!(
        key.verifies(message, &sig),
        "{algorithm}: openssl's signature"
    );
    let mut altered = message.to_vec();
    altered[3] ^= 1;
    assert!(
        !key.verifies(&altered, &sig),
        "{algorithm}: another message"
    );
    let mut bad = sig.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(
        !key.verifies(message, &bad),
        "{algorithm}: an altered signature"
    );
}

#[test]
fn ecdsa_p256_signatures_from_openssl_verify() {
    check(
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        DGST,
        "ecdsa-p256",
    );
}

#[test]
fn ed25519_signatures_from_openssl_verify() {
    check(
        &["-algorithm", "ED25519"],
        &[
            "pkeyutl", "-sign", "-rawin", "-inkey", "key.pem", "-in", "msg", "-out", "sig",
        ],
        "ed25519",
    );
}

#[test]
fn rsa_pkcs1_signatures_from_openssl_verify() {
    check(
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        DGST,
        "rsa",
    );
}

#[test]
fn short_rsa_and_other_curves_are_refused_by_name() {
    let message = b"m";
    if let Some((pem, _)) = openssl_signature(
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        DGST,
        message,
    ) {
        assert!(matches!(
            PublicKey::from_pem(&pem),
            Err(KeyError::WeakRsa(1024))
        ));
    }
    if let Some((pem, _)) = openssl_signature(
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &["dgst", "-sha384", "-sign", "key.pem", "-out", "sig", "msg"],
        message,
    ) {
        assert!(matches!(
            PublicKey::from_pem(&pem),
            Err(KeyError::Unsupported)
        ));
    }
}
