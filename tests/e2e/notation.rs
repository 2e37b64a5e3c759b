//! notation (Notary Project) signatures checked by the hub and by `berth pull`: JWS and COSE
//! envelopes made by openssl and tests/e2e/notation_sign.py (independent of berth's code, in
//! the layout notation writes), pushed as OCI 1.1 referrers, verified against a
//! `notation_trust_store` and `notation_identities`.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_MANIFEST, Pushed, expect_error};
use crate::harness::{Berth, sha256, tool};
use crate::real_clients::{Docker, busybox, docker_build};

const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";
const COSE: &str = "application/cose";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const IDENTITY: &str = "x509.subject: C=US, O=Acme, CN=release";

/// A PKI (root and intermediate CA) with leaves `release` (the trusted identity), `dev` (same
/// CAs, another subject), made by openssl.
struct Notary {
    dir: tempfile::TempDir,
}

impl Notary {
    /// `None` when openssl or python3 is missing (outside CI).
    fn new() -> Option<Self> {
        if tool("openssl").is_none() || tool("python3").is_none() {
            return None;
        }
        let n = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        n.helper(&["pki", "."]);
        n.helper(&["leaf", ".", "release", "/C=US/ST=WA/O=Acme/CN=release"]);
        n.helper(&["leaf", ".", "dev", "/C=US/ST=WA/O=Acme/CN=dev"]);
        Some(n)
    }

    fn helper(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/e2e/notation_sign.py"
            ))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The trust store: the root CA's PEM.
    fn store(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// An envelope by `leaf` over the manifest `subject`.
    fn envelope(&self, leaf: &str, subject: &Pushed, cose: bool) -> Vec<u8> {
        let size = subject.size.to_string();
        let mut args = vec![
            "sign",
            ".",
            leaf,
            "--digest",
            &subject.digest,
            "--media-type",
            subject.media_type,
            "--size",
            &size,
        ];
        if cose {
            args.push("--cose");
        }
        self.helper(&args)
    }
}

/// Pushes `envelope` as notation does: a manifest of artifact type
/// `application/vnd.cncf.notary.signature` with the envelope as its one layer, a referrer of
/// `subject`.
async fn push_notation(
    b: &Berth,
    repo: &str,
    subject: &Pushed,
    envelope: &[u8],
    media_type: &'static str,
) -> Pushed {
    let config = b.push_blob_typed(repo, b"{}", EMPTY).await;
    let layer = b.push_blob_typed(repo, envelope, media_type).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTARY_SIGNATURE,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {
            "io.cncf.notary.x509chain.thumbprint#S256": "[\"0000\"]",
            "org.opencontainers.image.created": "2026-12-04T00:00:00Z"
        }
    });
    let digest = sha256(&serde_json::to_vec(&manifest).unwrap());
    b.push_manifest_json(repo, &digest, OCI_MANIFEST, &manifest)
        .await
}

fn policy(scope: &str, store: &Path, identities: &[&str]) -> String {
    format!(
        "[[trust.policy]]\nscope = \"{scope}\"\nmode = \"enforce\"\nnotation_trust_store = {:?}\nnotation_identities = {:?}\n",
        store.to_str().unwrap(),
        identities
    )
}

async fn trust_of(b: &Berth, repo: &str, reference: &str) -> Value {
    let resp = b
        .get(&format!("/api/v1/trust/{repo}?reference={reference}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["trust"].clone()
}

async fn pull_status(b: &Berth, repo: &str, reference: &str) -> StatusCode {
    b.get(&format!("/v2/{repo}/manifests/{reference}"))
        .await
        .status()
}

#[tokio::test]
async fn an_enforcing_notation_policy_serves_what_a_trusted_identity_signed() {
    let Some(notary) = Notary::new() else { return };
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("berth.toml");
    std::fs::write(&config, policy("signed", &notary.store(), &[IDENTITY])).unwrap();
    let env = [("BERTH_CONFIG", config.to_str().unwrap())];
    let mut b = Berth::start_in(data.path(), &env);

    // Unsigned: refused, naming the policy.
    let app = b.push_image("signed/app", "v1", 1, 1).await;
    let resp = b.get("/v2/signed/app/manifests/v1").await;
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("trust policy \"signed\"") && message.contains("no signature"),
        "{message}"
    );

    // A JWS envelope by the trusted identity: served, and the identity is shown.
    let envelope = notary.envelope("release", &app, false);
    let sig = push_notation(&b, "signed/app", &app, &envelope, JWS).await;
    assert_eq!(pull_status(&b, "signed/app", "v1").await, StatusCode::OK);
    let trust = trust_of(&b, "signed/app", "v1").await;
    assert_eq!(trust["status"], "verified", "{trust}");
    assert_eq!(
        trust["identity"],
        "x509.subject: CN=release,O=Acme,ST=WA,C=US"
    );
    assert!(trust["key"].is_null(), "{trust}");
    assert!(
        trust["detail"].as_str().unwrap().contains(IDENTITY),
        "{trust}"
    );
    // The signature is an artifact: clients fetch it to verify.
    assert_eq!(
        pull_status(&b, "signed/app", &sig.digest).await,
        StatusCode::OK
    );

    // A COSE envelope verifies the same way.
    let cose = b.push_image("signed/app", "cose", 2, 1).await;
    let envelope = notary.envelope("release", &cose, true);
    push_notation(&b, "signed/app", &cose, &envelope, COSE).await;
    assert_eq!(pull_status(&b, "signed/app", "cose").await, StatusCode::OK);

    // Another identity under the same CAs: untrusted, refused.
    let dev = b.push_image("signed/app", "dev", 3, 1).await;
    let envelope = notary.envelope("dev", &dev, false);
    push_notation(&b, "signed/app", &dev, &envelope, JWS).await;
    let resp = b.get("/v2/signed/app/manifests/dev").await;
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(body.to_string().contains("notation identities"), "{body}");
    assert_eq!(
        trust_of(&b, "signed/app", "dev").await["status"],
        "untrusted"
    );

    // A trusted signature of another manifest, attached to this one: invalid.
    let copied = b.push_image("signed/app", "copied", 4, 1).await;
    let envelope = notary.envelope("release", &app, false);
    push_notation(&b, "signed/app", &copied, &envelope, JWS).await;
    let resp = b.get("/v2/signed/app/manifests/copied").await;
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(body.to_string().contains(&app.digest), "{body}");
    assert_eq!(
        trust_of(&b, "signed/app", "copied").await["status"],
        "invalid"
    );

    // Malformed envelopes (garbage, deep nesting, a 1 MB one) vouch for nothing and the
    // server keeps serving.
    let junk = b.push_image("signed/app", "junk", 5, 1).await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let huge = json!({"payload": "", "protected": "", "signature": "",
        "header": {"x5c": ["A".repeat(1 << 20)]}})
    .to_string();
    for (garbage, media_type) in [
        (&b"garbage"[..], JWS),
        (b"\xd2\x84\x5a\xff\xff\xff\xff", COSE),
        (deep.as_bytes(), JWS),
        (huge.as_bytes(), JWS),
    ] {
        push_notation(&b, "signed/app", &junk, garbage, media_type).await;
        assert_eq!(
            pull_status(&b, "signed/app", "junk").await,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(pull_status(&b, "signed/app", "v1").await, StatusCode::OK);

    // The UI's manifest page names the identity.
    let page = b
        .get(&format!("/ui/r/signed/app/-/manifest/{}", app.digest))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("CN=release,O=Acme,ST=WA,C=US"), "{page}");

    // Trusting the dev identity too re-checks what it signed (the trust material is part of
    // the cached verdict's key set); a trust store of another PKI trusts none of these.
    b.kill();
    std::fs::write(
        &config,
        policy(
            "signed",
            &notary.store(),
            &[IDENTITY, "x509.subject: O=Acme, CN=dev"],
        ),
    )
    .unwrap();
    let mut b = Berth::start_in(data.path(), &env);
    assert_eq!(pull_status(&b, "signed/app", "dev").await, StatusCode::OK);
    b.kill();
    let stranger = Notary::new().unwrap();
    std::fs::write(&config, policy("signed", &stranger.store(), &["*"])).unwrap();
    let b = Berth::start_in(data.path(), &env);
    assert_eq!(
        pull_status(&b, "signed/app", "v1").await,
        StatusCode::FORBIDDEN
    );
    let trust = trust_of(&b, "signed/app", "v1").await;
    assert!(
        trust["detail"].as_str().unwrap().contains("trust store"),
        "{trust}"
    );
}

#[tokio::test]
async fn docker_pulls_notation_signed_images_and_is_told_why_unsigned_ones_are_refused() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let Some(notary) = Notary::new() else { return };
    let (b, _config) =
        crate::policies::start_with_config(&policy("notary", &notary.store(), &[IDENTITY]), &[]);
    let image = format!("{}/notary/busybox:v1", b.host());
    docker_build(&docker, &busybox, "notary", &image);
    let pushed = docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, out, err) = docker.run(&["pull", &image]);
    assert!(!pulled, "an unsigned image must not pull: {out}");
    assert!(
        err.contains("denied") && err.contains("trust policy"),
        "{err}"
    );
    // Sign what docker pushed ("v1: digest: sha256:... size: N"), as notation would.
    let line = pushed
        .lines()
        .find(|l| l.contains("digest: sha256:"))
        .unwrap_or_else(|| panic!("{pushed}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let subject = Pushed {
        digest: words[2].to_owned(),
        size: words[4].parse().unwrap(),
        media_type: DOCKER_MANIFEST,
        bytes: Vec::new(),
    };
    let envelope = notary.envelope("release", &subject, false);
    push_notation(&b, "notary/busybox", &subject, &envelope, JWS).await;
    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
}

#[tokio::test]
async fn berth_pull_checks_notation_signatures_against_the_local_policy() {
    if !crate::runtime_pull::is_root() {
        return;
    }
    let Some(busybox) = busybox() else { return };
    let Some(notary) = Notary::new() else { return };
    let b = Berth::start();
    let policy_file = notary.dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        policy(
            &format!("{}/notary", b.host()),
            Path::new("root.pem"),
            &[IDENTITY],
        ),
    )
    .unwrap();
    let unsigned = crate::runtime_run::push_busybox(&b, "notary/unsigned", &busybox).await;
    let signed = crate::runtime_run::push_busybox(&b, "notary/app", &busybox).await;
    let other = crate::runtime_run::push_busybox(&b, "notary/dev", &busybox).await;
    for (repo, leaf) in [("notary/app", "release"), ("notary/dev", "dev")] {
        let head = b.head(&format!("/v2/{repo}/manifests/1")).await;
        let header = |name: &str| head.headers()[name].to_str().unwrap().to_owned();
        let media_type = header("content-type");
        let subject = Pushed {
            digest: header("docker-content-digest"),
            size: header("content-length").parse().unwrap(),
            media_type: if media_type == DOCKER_MANIFEST {
                DOCKER_MANIFEST
            } else {
                OCI_MANIFEST
            },
            bytes: Vec::new(),
        };
        let cose = leaf == "release";
        let envelope = notary.envelope(leaf, &subject, cose);
        push_notation(&b, repo, &subject, &envelope, if cose { COSE } else { JWS }).await;
    }

    let mut rt = crate::runtime_pull::Runtime::new();
    rt.env
        .push(("BERTH_POLICY".into(), policy_file.display().to_string()));
    let (pulled, _, err) = rt.run(&["pull", &unsigned]);
    assert!(
        !pulled && err.contains("refused by trust policy") && err.contains("no signature"),
        "{err}"
    );
    let (pulled, _, err) = rt.run(&["pull", &other]);
    assert!(
        !pulled && err.contains("refused by trust policy") && err.contains("notation identities"),
        "{err}"
    );
    rt.ok(&["pull", &signed]);
    let out = rt.ok(&["run", "--rm", &signed, "echo", "notarized"]);
    assert_eq!(out, "notarized\n");
    let inspect = rt.ok(&["inspect", &signed]);
    assert!(
        inspect.contains("CN=release,O=Acme,ST=WA,C=US"),
        "{inspect}"
    );
}
