//! Keyless cosign signatures and sigstore bundles, made by an independent implementation
//! (tests/e2e/fake_sigstore.py: openssl for the CA, certificates and signatures, Python for
//! the Rekor entries and bundles) and verified offline by berth; and each forgery refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_trust::identity::{Identity, IdentityConfig};
use berth_trust::x509::{Cert, ChainError, verify_chain};
use berth_trust::{CosignSignature, Keyless, PublicKey, TrustedRoot, Verdict, verify_bundle};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const SUBJECT: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
const ELSEWHERE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/fake_sigstore.py")
}

/// A private sigstore (CA, log, trusted root) in a temporary directory, or `None` when
/// python3 or openssl is missing outside CI.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let tools = Command::new("openssl").arg("version").output().is_ok()
            && Command::new("python3").arg("--version").output().is_ok();
        if !tools {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "python3 and openssl are required in CI"
            );
            eprintln!("skipped: no python3 or openssl");
            return None;
        }
        run(&["init", dir.path().to_str().expect("path")]);
        Some(Self { dir })
    }

    fn root(&self) -> TrustedRoot {
        TrustedRoot::from_json(
            &std::fs::read(self.dir.path().join("trusted_root.json")).expect("root"),
        )
        .expect("trusted root")
    }

    fn keyless(&self, identities: &[(&str, Option<&str>, Option<&str>)]) -> Keyless {
        Keyless {
            root: self.root(),
            identities: identities
                .iter()
                .map(|(issuer, subject, regex)| {
                    Identity::new(&IdentityConfig {
                        issuer: (*issuer).into(),
                        subject: subject.map(str::to_owned),
                        subject_regex: regex.map(str::to_owned),
                    })
                    .expect("identity")
                })
                .collect(),
        }
    }

    fn acme(&self) -> Keyless {
        self.keyless(&[(ISSUER, None, Some("^https://github.com/acme/"))])
    }

    /// `fake_sigstore.py sign` with `args`, its JSON output.
    fn sign(&self, args: &[&str]) -> Value {
        let mut all = vec!["sign", self.dir.path().to_str().expect("path")];
        all.extend_from_slice(args);
        serde_json::from_slice(&run(&all)).expect("json")
    }
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "fake_sigstore.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The cosign signature (as berth reads it from a manifest) and payload `signed` describes.
fn cosign(signed: &Value) -> (CosignSignature, Vec<u8>) {
    let payload = STANDARD
        .decode(signed["payload"].as_str().expect("payload"))
        .expect("b64");
    let manifest = json!({"layers": [{
        "mediaType": berth_trust::cosign::SIMPLE_SIGNING_MEDIA_TYPE,
        "digest": format!("sha256:{}", hex::encode(Sha256::digest(&payload))),
        "size": payload.len(),
        "annotations": {
            berth_trust::cosign::SIGNATURE_ANNOTATION: signed["signature"],
            berth_trust::cosign::CERTIFICATE_ANNOTATION: signed["certificate"],
            berth_trust::cosign::CHAIN_ANNOTATION: signed["chain"],
            berth_trust::cosign::BUNDLE_ANNOTATION: signed["bundle"],
        },
    }]});
    let sig = CosignSignature::from_manifest(manifest.to_string().as_bytes())
        .expect("manifest")
        .remove(0);
    (sig, payload)
}

fn keyless_verdict(fake: &Fake, keyless: &Keyless, args: &[&str]) -> Verdict {
    let mut all = vec!["--digest", SUBJECT];
    all.extend_from_slice(args);
    let (sig, payload) = cosign(&fake.sign(&all));
    berth_trust::verify_keyless(&sig, &payload, SUBJECT, keyless)
}

fn assert_invalid(verdict: Verdict, expect: &str) {
    match verdict {
        Verdict::Invalid { reason } => assert!(reason.contains(expect), "{reason}"),
        other => panic!("expected invalid ({expect}), got {other:?}"),
    }
}

fn assert_keyless_verified(verdict: Verdict, subject: &str) {
    match verdict {
        Verdict::Verified { key } => {
            assert_eq!(key.as_str(), format!("keyless:{ISSUER} {subject}"));
        }
        other => panic!("expected verified, got {other:?}"),
    }
}

#[test]
fn a_keyless_signature_verifies_at_the_logs_time_though_its_certificate_expired_since() {
    let Some(fake) = Fake::new() else { return };
    // The certificate lived ten minutes in 2024; Rekor integrated the signature in them.
    assert_keyless_verified(keyless_verdict(&fake, &fake.acme(), &[]), WORKFLOW);
    // An exact subject, and an e-mail SAN under the deprecated V1 issuer extension.
    let exact = fake.keyless(&[(ISSUER, Some(WORKFLOW), None)]);
    assert_keyless_verified(keyless_verdict(&fake, &exact, &[]), WORKFLOW);
    let mail = fake.keyless(&[("https://accounts.example", Some("dev@acme.example"), None)]);
    let verdict = keyless_verdict(
        &fake,
        &mail,
        &[
            "--issuer",
            "https://accounts.example",
            "--issuer-v1",
            "--subject",
            "dev@acme.example",
        ],
    );
    assert!(
        matches!(&verdict, Verdict::Verified { key } if key.as_str().ends_with("dev@acme.example")),
        "{verdict:?}"
    );
}

#[test]
fn a_valid_keyless_signature_over_another_digest_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let (sig, payload) = cosign(&fake.sign(&["--digest", ELSEWHERE]));
    assert_invalid(
        berth_trust::verify_keyless(&sig, &payload, SUBJECT, &fake.acme()),
        ELSEWHERE,
    );
}

#[test]
fn a_tampered_keyless_payload_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let (mut sig, payload) = cosign(&fake.sign(&["--digest", SUBJECT]));
    let mut tampered = payload.clone();
    tampered[15] ^= 1;
    assert_invalid(
        berth_trust::verify_keyless(&sig, &tampered, SUBJECT, &fake.acme()),
        "digest",
    );
    // With the layer's digest rewritten to match, the signature no longer holds.
    sig.payload_digest = format!("sha256:{}", hex::encode(Sha256::digest(&tampered)));
    assert_invalid(
        berth_trust::verify_keyless(&sig, &tampered, SUBJECT, &fake.acme()),
        "does not verify",
    );
}

#[test]
fn a_certificate_outside_its_validity_at_the_integrated_time_is_refused() {
    let Some(fake) = Fake::new() else { return };
    // 2024-01-01T00:13:20Z: three minutes after the certificate ended.
    assert_invalid(
        keyless_verdict(&fake, &fake.acme(), &["--integrated-time", "1704068000"]),
        "not valid at 1704068000",
    );
    // And before it began.
    assert_invalid(
        keyless_verdict(&fake, &fake.acme(), &["--integrated-time", "1704067000"]),
        "not valid at",
    );
}

#[test]
fn the_wrong_issuer_is_refused() {
    let Some(fake) = Fake::new() else { return };
    assert_invalid(
        keyless_verdict(
            &fake,
            &fake.acme(),
            &["--issuer", "https://accounts.google.com"],
        ),
        "issuer https://accounts.google.com",
    );
}

#[test]
fn the_wrong_subject_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let evil = "https://github.com/acmeevil/app/.github/workflows/release.yml@refs/heads/main";
    assert_invalid(
        keyless_verdict(&fake, &fake.acme(), &["--subject", evil]),
        evil,
    );
}

#[test]
fn a_chain_to_an_untrusted_root_is_refused() {
    let (Some(trusted), Some(other)) = (Fake::new(), Fake::new()) else {
        return;
    };
    // Signed under another CA whose log the policy does trust: the chain decides.
    let mut keyless = other.acme();
    keyless.root.certificate_authorities = trusted.root().certificate_authorities;
    assert_eq!(keyless_verdict(&other, &keyless, &[]), Verdict::Untrusted);
    // Entirely another sigstore: its log is unknown.
    assert_invalid(
        keyless_verdict(&other, &trusted.acme(), &[]),
        "not in the trusted root",
    );
}

#[test]
fn a_bad_signed_entry_timestamp_is_refused() {
    let Some(fake) = Fake::new() else { return };
    assert_invalid(
        keyless_verdict(&fake, &fake.acme(), &["--tamper-set"]),
        "signed entry timestamp does not verify",
    );
}

#[test]
fn a_log_entry_about_another_signature_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let (mut sig, payload) = cosign(&fake.sign(&["--digest", SUBJECT]));
    // Another signature's genuine Rekor promise, pasted onto this one.
    let (other, _) = cosign(&fake.sign(&["--digest", SUBJECT]));
    sig.bundle = other.bundle;
    assert_invalid(
        berth_trust::verify_keyless(&sig, &payload, SUBJECT, &fake.acme()),
        "another signature or signer",
    );
}

#[test]
fn keyless_bundles_verify_as_message_signatures_and_dsse() {
    let Some(fake) = Fake::new() else { return };
    let keyless = fake.acme();
    for form in ["message", "dsse"] {
        let bundle = fake.sign(&["--digest", SUBJECT, "--form", form]);
        assert_keyless_verified(
            verify_bundle(bundle.to_string().as_bytes(), SUBJECT, &[], Some(&keyless)),
            WORKFLOW,
        );
        // The same bundle for another manifest vouches for nothing there.
        assert_invalid(
            verify_bundle(
                bundle.to_string().as_bytes(),
                ELSEWHERE,
                &[],
                Some(&keyless),
            ),
            "not sha256:1111",
        );
        // Only the promise (no inclusion proof) is enough; only a proof is not (the time is
        // not signed).
        let promise = fake.sign(&["--digest", SUBJECT, "--form", form, "--no-proof"]);
        assert!(matches!(
            verify_bundle(promise.to_string().as_bytes(), SUBJECT, &[], Some(&keyless)),
            Verdict::Verified { .. }
        ));
        let proof = fake.sign(&["--digest", SUBJECT, "--form", form, "--no-promise"]);
        assert_invalid(
            verify_bundle(proof.to_string().as_bytes(), SUBJECT, &[], Some(&keyless)),
            "no inclusion promise",
        );
        // Without keyless trust in the policy, a certificate vouches for nothing.
        assert_eq!(
            verify_bundle(bundle.to_string().as_bytes(), SUBJECT, &[], None),
            Verdict::Untrusted
        );
    }
}

#[test]
fn a_bundle_whose_dsse_subject_points_elsewhere_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let bundle = fake.sign(&[
        "--digest",
        SUBJECT,
        "--form",
        "dsse",
        "--statement-digest",
        ELSEWHERE,
    ]);
    assert_invalid(
        verify_bundle(
            bundle.to_string().as_bytes(),
            SUBJECT,
            &[],
            Some(&fake.acme()),
        ),
        ELSEWHERE,
    );
}

#[test]
fn a_bundle_with_a_broken_inclusion_proof_or_checkpoint_is_refused() {
    let Some(fake) = Fake::new() else { return };
    let bundle = fake.sign(&["--digest", SUBJECT, "--form", "dsse"]);
    let proof = "/verificationMaterial/tlogEntries/0/inclusionProof";
    let mut bad_path = bundle.clone();
    let hashes = bad_path
        .pointer_mut(&format!("{proof}/hashes"))
        .expect("hashes");
    hashes[0] = json!(STANDARD.encode([7u8; 32]));
    assert_invalid(
        verify_bundle(
            bad_path.to_string().as_bytes(),
            SUBJECT,
            &[],
            Some(&fake.acme()),
        ),
        "root hash",
    );
    let mut bad_note = bundle.clone();
    let envelope = bad_note
        .pointer_mut(&format!("{proof}/checkpoint/envelope"))
        .expect("checkpoint");
    let text = envelope
        .as_str()
        .expect("text")
        .replacen("fake-rekor - 1", "fake-rekor - 2", 1);
    *envelope = json!(text);
    assert_invalid(
        verify_bundle(
            bad_note.to_string().as_bytes(),
            SUBJECT,
            &[],
            Some(&fake.acme()),
        ),
        "checkpoint is not signed",
    );
}

#[test]
fn keyed_bundles_verify_with_the_policys_keys() {
    let Some(fake) = Fake::new() else { return };
    let key = fake.dir.path().join("team.key");
    let key_arg = key.to_str().expect("path");
    Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key_arg,
        ])
        .output()
        .expect("openssl");
    let public = Command::new("openssl")
        .args(["pkey", "-in", key_arg, "-pubout"])
        .output()
        .expect("openssl")
        .stdout;
    let team = PublicKey::from_pem(&String::from_utf8(public).expect("pem")).expect("key");
    let stranger = PublicKey::from_pem(
        "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnwBoc1a9gXASZkzi1A8oSKW9XPuR
C9PybqpSkfBW/SxwCYxKtx4qa02/K6MBTF200bmZ46x0QqyX5zDEa2Z3lQ==
-----END PUBLIC KEY-----",
    )
    .expect("key");
    for form in ["message", "dsse"] {
        let bundle = fake.sign(&["--digest", SUBJECT, "--form", form, "--key", key_arg]);
        let bytes = bundle.to_string();
        assert_eq!(
            verify_bundle(
                bytes.as_bytes(),
                SUBJECT,
                &[stranger.clone(), team.clone()],
                None
            ),
            Verdict::Verified {
                key: team.id().clone()
            },
            "{form}"
        );
        assert_eq!(
            verify_bundle(
                bytes.as_bytes(),
                SUBJECT,
                std::slice::from_ref(&stranger),
                None
            ),
            Verdict::Untrusted
        );
        assert_invalid(
            verify_bundle(
                bytes.as_bytes(),
                ELSEWHERE,
                std::slice::from_ref(&team),
                None,
            ),
            "not sha256:1111",
        );
    }
}

#[test]
fn malformed_envelopes_fail_fast_and_never_panic() {
    let Some(fake) = Fake::new() else { return };
    let keyless = fake.acme();
    // Garbage and deep nesting in a bundle.
    let deep = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
    for bad in ["garbage".to_owned(), deep.clone(), "{}".to_owned()] {
        assert!(matches!(
            verify_bundle(bad.as_bytes(), SUBJECT, &[], Some(&keyless)),
            Verdict::Invalid { .. }
        ));
    }
    // A 1 MB certificate, in a bundle and in cosign's annotation.
    let mut bundle = fake.sign(&["--digest", SUBJECT, "--form", "message"]);
    bundle["verificationMaterial"]["certificate"]["rawBytes"] =
        json!(STANDARD.encode(vec![0x30u8; 1 << 20]));
    assert!(matches!(
        verify_bundle(bundle.to_string().as_bytes(), SUBJECT, &[], Some(&keyless)),
        Verdict::Invalid { .. }
    ));
    let (mut sig, payload) = cosign(&fake.sign(&["--digest", SUBJECT]));
    let huge = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(vec![0x30u8; 1 << 20])
    );
    sig.certificate = Some(huge);
    assert_invalid(
        berth_trust::verify_keyless(&sig, &payload, SUBJECT, &keyless),
        "certificate",
    );
    // Garbage and deep nesting in cosign's Rekor bundle annotation.
    for bad in ["garbage".to_owned(), deep] {
        let (mut sig, payload) = cosign(&fake.sign(&["--digest", SUBJECT]));
        sig.bundle = Some(bad);
        assert_invalid(
            berth_trust::verify_keyless(&sig, &payload, SUBJECT, &keyless),
            "Rekor bundle",
        );
    }
}

#[test]
fn chains_check_ca_and_code_signing_roles() {
    let Some(fake) = Fake::new() else { return };
    let read = |name: &str| {
        Cert::from_pem_chain(&std::fs::read_to_string(fake.dir.path().join(name)).expect("pem"))
            .expect("cert")
            .remove(0)
    };
    let (root, inter) = (read("root.pem"), read("inter.pem"));
    let signed = fake.sign(&["--digest", SUBJECT]);
    let leaf = Cert::from_pem_chain(signed["certificate"].as_str().expect("pem"))
        .expect("leaf")
        .remove(0);
    let at = 1_704_067_500;
    let chain = verify_chain(
        &leaf,
        std::slice::from_ref(&inter),
        std::slice::from_ref(&root),
        at,
    )
    .expect("chain");
    assert_eq!(chain.len(), 3);
    // Missing intermediate, a CA as the leaf, a leaf as the root, a time outside the CA's.
    assert!(matches!(
        verify_chain(&leaf, &[], std::slice::from_ref(&root), at),
        Err(ChainError::Untrusted(_))
    ));
    assert!(matches!(
        verify_chain(&inter, &[], std::slice::from_ref(&root), at),
        Err(ChainError::NotCodeSigning(_))
    ));
    assert!(matches!(
        verify_chain(&leaf, &[], std::slice::from_ref(&leaf), at),
        Err(ChainError::Untrusted(_))
    ));
    assert!(matches!(
        verify_chain(
            &leaf,
            std::slice::from_ref(&inter),
            std::slice::from_ref(&root),
            4_102_444_800
        ),
        Err(ChainError::Expired { .. })
    ));
}
