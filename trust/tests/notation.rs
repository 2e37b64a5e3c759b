//! notation signatures made by an implementation independent of berth's (openssl and
//! tests/e2e/notation_sign.py, laid out as notation writes them), verified by berth-trust: what
//! verifies, and each way a signature is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_trust::notation::{
    COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, NotationSignature, NotationTrust, NotationVerdict, Target,
    verify_notation,
};
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
const TARGET: Target<'static> = Target {
    digest: DIGEST,
    media_type: MANIFEST,
    size: 1234,
};

/// Whether openssl and python3 are here; under CI they must be.
fn tools() -> bool {
    let found = ["openssl", "python3"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            || Command::new(t)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
    });
    assert!(
        found || std::env::var_os("CI").is_none(),
        "openssl and python3 are required under CI"
    );
    found
}

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/notation_sign.py")
}

/// A root and an intermediate CA in a temporary directory, and leaves issued by them.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let pki = Self { dir };
        pki.run(&["pki", "."]);
        pki
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("python3")
            .arg(helper())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn leaf(&self, name: &str, subject: &str, extra: &[&str]) {
        let mut args = vec!["leaf", ".", name, subject];
        args.extend_from_slice(extra);
        self.run(&args);
    }

    fn sign(&self, name: &str, target: Target<'_>, extra: &[&str]) -> Vec<u8> {
        let size = target.size.to_string();
        let mut args = vec![
            "sign",
            ".",
            name,
            "--digest",
            target.digest,
            "--media-type",
            target.media_type,
            "--size",
            &size,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn trust(&self, identities: &[&str]) -> NotationTrust {
        let identities: Vec<String> = identities.iter().map(|s| s.to_string()).collect();
        NotationTrust::load(&self.dir.path().join("root.pem"), &identities).expect("trust")
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn check(envelope: &[u8], target: Target<'_>, trust: &NotationTrust) -> NotationVerdict {
    check_as(JWS_MEDIA_TYPE, envelope, target, trust)
}

fn check_as(
    media_type: &str,
    envelope: &[u8],
    target: Target<'_>,
    trust: &NotationTrust,
) -> NotationVerdict {
    let signature = NotationSignature {
        media_type: media_type.into(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(envelope))),
        size: envelope.len() as u64,
    };
    verify_notation(&signature, envelope, target, trust, now())
}

fn invalid(verdict: NotationVerdict, expect: &str) {
    match verdict {
        NotationVerdict::Invalid { reason } => assert!(reason.contains(expect), "{reason}"),
        other => panic!("expected invalid ({expect}), got {other:?}"),
    }
}

fn untrusted(verdict: NotationVerdict, expect: &str) {
    match verdict {
        NotationVerdict::Untrusted { reason } => assert!(reason.contains(expect), "{reason}"),
        other => panic!("expected untrusted ({expect}), got {other:?}"),
    }
}

const RELEASE: &str = "/C=US/ST=WA/O=Acme/CN=release";
const IDENTITY: &str = "x509.subject: C=US, O=Acme, CN=release";

/// The envelope's JSON with `f` applied.
fn edit(envelope: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(envelope).expect("json");
    f(&mut v);
    v.to_string().into_bytes()
}

#[test]
fn every_algorithm_notation_signs_with_verifies_and_names_the_identity() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    let trust = pki.trust(&["x509.subject: CN=nobody", IDENTITY]);
    for (key, alg) in [
        ("ec256", "ES256"),
        ("ec384", "ES384"),
        ("ec521", "ES512"),
        ("rsa2048", "PS256"),
        ("rsa3072", "PS384"),
    ] {
        pki.leaf(key, RELEASE, &["--key", key]);
        let envelope = pki.sign(key, TARGET, &["--alg", alg]);
        assert_eq!(
            check(&envelope, TARGET, &trust),
            NotationVerdict::Verified {
                identity: "x509.subject: CN=release,O=Acme,ST=WA,C=US".into(),
                trusted_as: IDENTITY.into(),
            },
            "{alg}"
        );
    }
    // An algorithm that does not fit the key (ES384 header, P-256 key) is refused.
    let envelope = pki.sign("ec256", TARGET, &["--alg", "ES256"]);
    let other = edit(&envelope, |v| {
        let protected = base64_url(v["protected"].as_str().unwrap());
        let header = String::from_utf8(protected)
            .unwrap()
            .replace("ES256", "ES384");
        v["protected"] = url(header.as_bytes()).into();
    });
    invalid(check(&other, TARGET, &trust), "does not fit");
    // A future expiry is fine; `*` trusts whatever the store's CAs certify.
    let envelope = pki.sign("ec256", TARGET, &["--expiry", "2099-01-01T00:00:00Z"]);
    assert!(matches!(
        check(&envelope, TARGET, &pki.trust(&["*"])),
        NotationVerdict::Verified { trusted_as, .. } if trusted_as == "*"
    ));
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

fn url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn a_signature_of_another_manifest_is_invalid_here() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("release", RELEASE, &[]);
    let trust = pki.trust(&[IDENTITY]);
    let elsewhere = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let envelope = pki.sign(
        "release",
        Target {
            digest: elsewhere,
            ..TARGET
        },
        &[],
    );
    invalid(check(&envelope, TARGET, &trust), elsewhere);
    let envelope = pki.sign("release", Target { size: 1, ..TARGET }, &[]);
    invalid(check(&envelope, TARGET, &trust), "1 bytes");
    let envelope = pki.sign(
        "release",
        Target {
            media_type: "application/vnd.oci.image.index.v1+json",
            ..TARGET
        },
        &[],
    );
    invalid(check(&envelope, TARGET, &trust), "index");
}

#[test]
fn tampered_payloads_and_headers_break_the_signature() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("release", RELEASE, &[]);
    let trust = pki.trust(&[IDENTITY]);
    let envelope = pki.sign("release", TARGET, &["--expiry", "2099-01-01T00:00:00Z"]);
    assert!(matches!(
        check(&envelope, TARGET, &trust),
        NotationVerdict::Verified { .. }
    ));
    // The payload re-pointed at another manifest.
    let other = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let tampered = edit(&envelope, |v| {
        let payload = String::from_utf8(base64_url(v["payload"].as_str().unwrap())).unwrap();
        v["payload"] = url(payload.replace(DIGEST, other).as_bytes()).into();
    });
    invalid(
        check(
            &tampered,
            Target {
                digest: other,
                ..TARGET
            },
            &trust,
        ),
        "does not verify",
    );
    // The protected header's expiry moved.
    let tampered = edit(&envelope, |v| {
        let header = String::from_utf8(base64_url(v["protected"].as_str().unwrap())).unwrap();
        v["protected"] = url(header.replace("2099", "2098").as_bytes()).into();
    });
    invalid(check(&tampered, TARGET, &trust), "does not verify");
    // The signature itself.
    let tampered = edit(&envelope, |v| {
        let mut sig = base64_url(v["signature"].as_str().unwrap());
        sig[5] ^= 1;
        v["signature"] = url(&sig).into();
    });
    invalid(check(&tampered, TARGET, &trust), "does not verify");
    // The envelope's bytes differ from the layer's digest.
    let signature = NotationSignature {
        media_type: JWS_MEDIA_TYPE.into(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&envelope))),
        size: envelope.len() as u64,
    };
    let mut altered = envelope.clone();
    altered.push(b' ');
    invalid(
        verify_notation(&signature, &altered, TARGET, &trust, now()),
        "digest",
    );
}

#[test]
fn expired_signatures_and_certificates_are_refused() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("release", RELEASE, &[]);
    let trust = pki.trust(&[IDENTITY]);
    let envelope = pki.sign("release", TARGET, &["--expiry", "2021-01-01T00:00:00Z"]);
    invalid(check(&envelope, TARGET, &trust), "expired");
    // A certificate valid when it signed but not any more: notary.x509 has no authentic
    // signing time, so the chain must be valid now too.
    pki.leaf(
        "old",
        RELEASE,
        &["--start", "20200101000000Z", "--end", "20210101000000Z"],
    );
    let envelope = pki.sign(
        "old",
        TARGET,
        &["--signing-time", "2020-06-01T00:00:00+02:00"],
    );
    invalid(check(&envelope, TARGET, &trust), "is not valid at");
    // A signing time outside the certificate's validity.
    let envelope = pki.sign(
        "release",
        TARGET,
        &["--signing-time", "2019-06-01T00:00:00Z"],
    );
    invalid(check(&envelope, TARGET, &trust), "is not valid at");
}

#[test]
fn the_leaf_must_be_for_code_signing_by_a_trusted_identity_under_the_store() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("server", RELEASE, &["--ext", "nocodesign"]);
    let trust = pki.trust(&[IDENTITY]);
    let envelope = pki.sign("server", TARGET, &[]);
    invalid(check(&envelope, TARGET, &trust), "not a code-signing");

    pki.leaf("dev", "/C=US/O=Acme/CN=dev", &[]);
    let envelope = pki.sign("dev", TARGET, &[]);
    untrusted(
        check(&envelope, TARGET, &trust),
        "none of the policy's notation identities",
    );
    // More attributes than the leaf has: no match either.
    let strict = pki.trust(&["x509.subject: C=US, O=Acme, CN=dev, OU=Builds"]);
    untrusted(check(&envelope, TARGET, &strict), "identities");
    let loose = pki.trust(&["x509.subject: O=Acme"]);
    assert!(matches!(
        check(&envelope, TARGET, &loose),
        NotationVerdict::Verified { .. }
    ));

    // Another PKI's root is not in this store, whatever the leaf's subject says.
    let stranger = Pki::new();
    stranger.leaf("release", RELEASE, &[]);
    let envelope = stranger.sign("release", TARGET, &[]);
    untrusted(check(&envelope, TARGET, &trust), "trust store");
    // A store of a directory holding both roots trusts both.
    let both = tempfile::tempdir().expect("dir");
    for (i, p) in [&pki, &stranger].iter().enumerate() {
        std::fs::copy(
            p.dir.path().join("root.pem"),
            both.path().join(format!("{i}.pem")),
        )
        .expect("copy");
    }
    let store = NotationTrust::load(both.path(), &[IDENTITY.to_owned()]).expect("store");
    assert!(matches!(
        check(&envelope, TARGET, &store),
        NotationVerdict::Verified { .. }
    ));
    assert_ne!(
        store.id(),
        trust.id(),
        "the trust store is part of the key set"
    );
}

#[test]
fn unknown_critical_headers_unsafe_algorithms_and_other_schemes_are_refused() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("release", RELEASE, &[]);
    let trust = pki.trust(&[IDENTITY]);
    // Signed, so only the header's meaning is at fault.
    let envelope = pki.sign(
        "release",
        TARGET,
        &[
            "--set",
            "io.example.policy=\"x\"",
            "--crit",
            "io.example.policy",
        ],
    );
    invalid(check(&envelope, TARGET, &trust), "unknown critical header");
    let envelope = pki.sign(
        "release",
        TARGET,
        &[
            "--set",
            "io.cncf.notary.signingScheme=\"notary.x509.signingAuthority\"",
        ],
    );
    invalid(
        check(&envelope, TARGET, &trust),
        "notary.x509.signingAuthority",
    );
    let envelope = pki.sign("release", TARGET, &[]);
    for alg in ["none", "HS256"] {
        let forged = edit(&envelope, |v| {
            let header = String::from_utf8(base64_url(v["protected"].as_str().unwrap())).unwrap();
            v["protected"] = url(header.replace("ES256", alg).as_bytes()).into();
            if alg == "none" {
                v["signature"] = "".into();
            }
        });
        invalid(check(&forged, TARGET, &trust), &format!("alg \"{alg}\""));
    }
}

#[test]
fn malformed_envelopes_fail_fast_and_vouch_for_nothing() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    pki.leaf("release", RELEASE, &[]);
    let trust = pki.trust(&[IDENTITY]);
    let envelope = pki.sign("release", TARGET, &[]);
    let huge_x5c = edit(&envelope, |v| {
        v["header"]["x5c"] = serde_json::json!([format!("MII{}", "A".repeat(1 << 20))]);
    });
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let nested_header = edit(&envelope, |v| {
        v["protected"] = url(format!("{{\"a\":{}", "[".repeat(30_000)).as_bytes()).into();
    });
    let garbage_x5c = edit(&envelope, |v| {
        v["header"]["x5c"] = serde_json::json!(["%%%", 3]);
    });
    let many_x5c = edit(&envelope, |v| {
        let leaf = v["header"]["x5c"][0].clone();
        v["header"]["x5c"] = serde_json::Value::Array(vec![leaf; 6]);
    });
    for (bad, expect) in [
        (b"garbage".to_vec(), "not a JWS"),
        (Vec::new(), "not a JWS"),
        (huge_x5c, "exceeds"),
        (nested, "exceeds"),
        (nested_header, "protected header"),
        (garbage_x5c, "x5c"),
        (many_x5c, "x5c holds 6"),
    ] {
        invalid(check(&bad, TARGET, &trust), expect);
    }
    // Bounded by size, not time: an envelope just under the limit is parsed and refused.
    let padded = edit(&envelope, |v| {
        v["header"]["pad"] = "x".repeat(60_000).into();
        v["header"]["x5c"] = serde_json::json!([]);
    });
    invalid(check(&padded, TARGET, &trust), "x5c holds 0");
}

/// The same checks over COSE envelopes, built by the helper's own CBOR encoder.
#[test]
fn cose_envelopes_verify_and_are_refused_for_the_same_reasons() {
    if !tools() {
        return;
    }
    let pki = Pki::new();
    let trust = pki.trust(&[IDENTITY]);
    let cose = |name: &str, target: Target<'_>, extra: &[&str]| {
        let mut args = vec!["--cose"];
        args.extend_from_slice(extra);
        pki.sign(name, target, &args)
    };
    let check =
        |envelope: &[u8], target: Target<'_>| check_as(COSE_MEDIA_TYPE, envelope, target, &trust);
    for (key, alg) in [
        ("ec256", "ES256"),
        ("ec384", "ES384"),
        ("ec521", "ES512"),
        ("rsa2048", "PS256"),
    ] {
        pki.leaf(key, RELEASE, &["--key", key]);
        let envelope = cose(key, TARGET, &["--alg", alg, "--expiry", "4000000000"]);
        assert_eq!(
            check(&envelope, TARGET),
            NotationVerdict::Verified {
                identity: "x509.subject: CN=release,O=Acme,ST=WA,C=US".into(),
                trusted_as: IDENTITY.into(),
            },
            "{alg}"
        );
    }
    let envelope = cose("ec256", TARGET, &["--alg", "ES384"]);
    invalid(check(&envelope, TARGET), "does not fit");

    // Another manifest; a tampered payload (one digit of the size).
    let elsewhere = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let envelope = cose(
        "ec256",
        Target {
            digest: elsewhere,
            ..TARGET
        },
        &[],
    );
    invalid(check(&envelope, TARGET), elsewhere);
    let envelope = cose(
        "ec256",
        Target {
            size: 1235,
            ..TARGET
        },
        &[],
    );
    let at = envelope
        .windows(4)
        .position(|w| w == b"1235")
        .expect("the size in the payload");
    let mut tampered = envelope.clone();
    tampered[at + 3] = b'4';
    invalid(check(&tampered, TARGET), "does not verify");

    // Expired signature, expired certificate, no codeSigning, another identity, another root.
    let envelope = cose("ec256", TARGET, &["--expiry", "1600000000"]);
    invalid(check(&envelope, TARGET), "expired");
    pki.leaf(
        "old",
        RELEASE,
        &["--start", "20200101000000Z", "--end", "20210101000000Z"],
    );
    let envelope = cose("old", TARGET, &["--signing-time", "1590969600"]);
    invalid(check(&envelope, TARGET), "is not valid at");
    pki.leaf("server", RELEASE, &["--ext", "nocodesign"]);
    invalid(
        check(&cose("server", TARGET, &[]), TARGET),
        "not a code-signing",
    );
    pki.leaf("dev", "/C=US/O=Acme/CN=dev", &[]);
    untrusted(check(&cose("dev", TARGET, &[]), TARGET), "identities");
    let stranger = Pki::new();
    stranger.leaf("release", RELEASE, &[]);
    let envelope = stranger.sign("release", TARGET, &["--cose"]);
    untrusted(check(&envelope, TARGET), "trust store");

    // Headers: an unknown critical label, the signingAuthority scheme.
    let envelope = cose(
        "ec256",
        TARGET,
        &[
            "--set",
            "io.example.policy=\"x\"",
            "--crit",
            "io.example.policy",
        ],
    );
    invalid(check(&envelope, TARGET), "unknown critical header");
    let envelope = cose(
        "ec256",
        TARGET,
        &[
            "--set",
            "io.cncf.notary.signingScheme=\"notary.x509.signingAuthority\"",
        ],
    );
    invalid(check(&envelope, TARGET), "signingAuthority");
    // A JWS envelope declared as COSE, and the other way round, is malformed, not a crash.
    let jws = pki.sign("ec256", TARGET, &[]);
    invalid(check(&jws, TARGET), "not CBOR");
    let envelope = cose("ec256", TARGET, &[]);
    invalid(
        check_as(JWS_MEDIA_TYPE, &envelope, TARGET, &trust),
        "not a JWS",
    );
}
