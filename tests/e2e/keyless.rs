//! Keyless signatures checked by the hub, offline: an enforcing namespace trusts a private
//! sigstore (tests/e2e/fake_sigstore.py: a Fulcio-like CA and a Rekor-like log made with
//! openssl) and one identity; docker is refused the unsigned image and pulls it once signed
//! keylessly (cosign's annotations) or once a sigstore bundle referrer vouches for it.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_MANIFEST, expect_error};
use crate::harness::{Berth, sha256, tool};
use crate::real_clients::{Docker, busybox, docker_build};

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

fn fake_sigstore(args: &[&str]) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fake_sigstore.py");
    let out = Command::new("python3")
        .arg(script)
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

/// A private sigstore in `dir` and a berth whose `keyless` namespace enforces it.
fn start(dir: &Path) -> (Berth, tempfile::TempDir) {
    fake_sigstore(&["init", dir.to_str().unwrap()]);
    let config = format!(
        r#"
[[trust.policy]]
scope = "keyless"
mode = "enforce"
trusted_root = {root:?}

[[trust.policy.identity]]
issuer = "{ISSUER}"
subject_regex = "^https://github.com/acme/"
"#,
        root = dir.join("trusted_root.json").to_str().unwrap()
    );
    crate::policies::start_with_config(&config, &[])
}

fn sign(dir: &Path, digest: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sign", dir.to_str().unwrap(), "--digest", digest];
    args.extend_from_slice(extra);
    serde_json::from_slice(&fake_sigstore(&args)).unwrap()
}

/// Pushes a keyless cosign signature under cosign's tag, with the certificate, chain and
/// Rekor bundle annotations cosign writes.
async fn push_cosign(b: &Berth, repo: &str, digest: &str, signed: &Value) {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(signed["payload"].as_str().unwrap())
        .unwrap();
    let config = b
        .push_blob_typed(repo, b"{}", "application/vnd.oci.image.config.v1+json")
        .await;
    let layer = b.push_blob_typed(repo, &payload, SIMPLE_SIGNING).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [{
            "mediaType": SIMPLE_SIGNING,
            "digest": layer.digest,
            "size": layer.size,
            "annotations": {
                "dev.cosignproject.cosign/signature": signed["signature"],
                "dev.sigstore.cosign/certificate": signed["certificate"],
                "dev.sigstore.cosign/chain": signed["chain"],
                "dev.sigstore.cosign/bundle": signed["bundle"],
            }
        }]
    });
    let tag = digest.replacen(':', "-", 1) + ".sig";
    b.push_manifest_json(repo, &tag, OCI_MANIFEST, &manifest)
        .await;
}

/// Pushes a sigstore bundle as `cosign sign --new-bundle-format` does: an OCI 1.1 referrer of
/// `subject` whose artifact type and single layer are the bundle. Returns the referrer's digest.
pub(crate) async fn push_bundle(b: &Berth, repo: &str, subject: &Value, bundle: &Value) -> String {
    let config = b
        .push_blob_typed(repo, b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    let layer = b
        .push_blob_typed(repo, bundle.to_string().as_bytes(), BUNDLE)
        .await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject,
    });
    let digest = sha256(&serde_json::to_vec(&manifest).unwrap());
    b.push_manifest_json(repo, &digest, OCI_MANIFEST, &manifest)
        .await
        .digest
}

async fn trust_of(b: &Berth, repo: &str, reference: &str) -> Value {
    b.get(&format!("/api/v1/trust/{repo}?reference={reference}"))
        .await
        .json::<Value>()
        .await
        .unwrap()
}

#[tokio::test]
async fn docker_pulls_keylessly_signed_images_and_is_refused_unsigned_ones() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    if tool("openssl").is_none() || tool("python3").is_none() {
        return;
    }
    let sigstore = tempfile::tempdir().unwrap();
    let (b, _config) = start(sigstore.path());
    let image = format!("{}/keyless/busybox:v1", b.host());
    docker_build(&docker, &busybox, "keyless", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, out, err) = docker.run(&["pull", &image]);
    assert!(!pulled, "an unsigned image must not pull: {out}");
    assert!(
        err.contains("denied") && err.contains("trust policy"),
        "{err}"
    );
    let digest = trust_of(&b, "keyless/busybox", "v1").await["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed keylessly by an identity the policy does not allow: still refused, saying why.
    let stranger = "https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main";
    let signed = sign(sigstore.path(), &digest, &["--subject", stranger]);
    push_cosign(&b, "keyless/busybox", &digest, &signed).await;
    let (pulled, _, err) = docker.run(&["pull", &image]);
    assert!(!pulled && err.contains(stranger), "{err}");
    // Signed by the allowed workflow: served, and shown as verified by that identity.
    let signed = sign(sigstore.path(), &digest, &[]);
    push_cosign(&b, "keyless/busybox", &digest, &signed).await;
    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
    let trust = trust_of(&b, "keyless/busybox", "v1").await["trust"].clone();
    assert_eq!(trust["status"], "verified", "{trust}");
    assert_eq!(trust["key"], format!("keyless:{ISSUER} {WORKFLOW}"));
}

#[tokio::test]
async fn sigstore_bundle_referrers_vouch_for_the_manifest_they_name() {
    if tool("openssl").is_none() || tool("python3").is_none() {
        return;
    }
    let sigstore = tempfile::tempdir().unwrap();
    let (b, _config) = start(sigstore.path());
    let app = b.push_image("keyless/app", "v1", 1, 1).await;
    let other = b.push_image("keyless/app", "v2", 2, 1).await;
    let refused = b.get("/v2/keyless/app/manifests/v1").await;
    expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    // A DSSE bundle whose statement names the other image, attached to this one: refused.
    let elsewhere = sign(
        sigstore.path(),
        &app.digest,
        &["--form", "dsse", "--statement-digest", &other.digest],
    );
    push_bundle(&b, "keyless/app", &app.descriptor(), &elsewhere).await;
    let refused = b.get("/v2/keyless/app/manifests/v1").await;
    let body = expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&other.digest), "{message}");
    // The right bundle: served (DSSE for v1, a message signature for v2).
    let bundle = sign(sigstore.path(), &app.digest, &["--form", "dsse"]);
    push_bundle(&b, "keyless/app", &app.descriptor(), &bundle).await;
    assert_eq!(
        b.get("/v2/keyless/app/manifests/v1").await.status(),
        StatusCode::OK
    );
    let bundle = sign(sigstore.path(), &other.digest, &["--form", "message"]);
    push_bundle(&b, "keyless/app", &other.descriptor(), &bundle).await;
    assert_eq!(
        b.get("/v2/keyless/app/manifests/v2").await.status(),
        StatusCode::OK
    );
    let trust = trust_of(&b, "keyless/app", "v2").await["trust"].clone();
    assert_eq!(
        trust["key"],
        format!("keyless:{ISSUER} {WORKFLOW}"),
        "{trust}"
    );
}

/// The digest `image` (`host/repo:tag`) names on `b`, from a `HEAD`.
async fn digest_of(b: &Berth, repo: &str, tag: &str) -> String {
    b.head(&format!("/v2/{repo}/manifests/{tag}"))
        .await
        .headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn berth_run_checks_keyless_signatures_offline_against_the_local_trusted_root() {
    if !crate::runtime_pull::is_root() || tool("openssl").is_none() || tool("python3").is_none() {
        return;
    }
    let Some(busybox) = busybox() else { return };
    let sigstore = tempfile::tempdir().unwrap();
    fake_sigstore(&["init", sigstore.path().to_str().unwrap()]);
    // A hub with no policy: the machine that runs the containers checks on its own.
    let b = Berth::start();
    let policy = sigstore.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[[trust.policy]]
scope = "{host}/keyless"
mode = "enforce"
trusted_root = "trusted_root.json"

[[trust.policy.identity]]
issuer = "{ISSUER}"
subject_regex = "^https://github.com/acme/"
"#,
            host = b.host()
        ),
    )
    .unwrap();
    let cosign = crate::runtime_run::push_busybox(&b, "keyless/cosign", &busybox).await;
    let bundled = crate::runtime_run::push_busybox(&b, "keyless/bundled", &busybox).await;
    let mut rt = crate::runtime_pull::Runtime::new();
    rt.env
        .push(("BERTH_POLICY".into(), policy.display().to_string()));

    // Unsigned: refused before anything is unpacked.
    let (ran, _, err) = rt.run(&["run", "--rm", &cosign, "true"]);
    assert!(!ran && err.contains("refused by trust policy"), "{err}");
    assert!(
        !rt.store().join("layers/sha256").exists() || {
            std::fs::read_dir(rt.store().join("layers/sha256"))
                .unwrap()
                .count()
                == 0
        }
    );

    // Signed keylessly by an identity the policy does not allow: refused, naming it.
    let digest = digest_of(&b, "keyless/cosign", "1").await;
    let stranger = "https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main";
    let signed = sign(sigstore.path(), &digest, &["--subject", stranger]);
    push_cosign(&b, "keyless/cosign", &digest, &signed).await;
    let (ran, _, err) = rt.run(&["run", "--rm", &cosign, "true"]);
    assert!(!ran && err.contains(stranger), "{err}");

    // By the allowed workflow, under cosign's tag: pulled, verified offline, run.
    let signed = sign(sigstore.path(), &digest, &[]);
    push_cosign(&b, "keyless/cosign", &digest, &signed).await;
    let out = rt.ok(&["run", "--rm", &cosign, "echo", "keyless-runs"]);
    assert_eq!(out, "keyless-runs\n");
    let inspect = rt.ok(&["inspect", &cosign]);
    assert!(inspect.contains(WORKFLOW), "{inspect}");

    // A sigstore bundle referrer (DSSE) vouches in the same way.
    let digest = digest_of(&b, "keyless/bundled", "1").await;
    let (ran, _, _) = rt.run(&["run", "--rm", &bundled, "true"]);
    assert!(!ran);
    let manifest = b
        .get(&format!("/v2/keyless/bundled/manifests/{digest}"))
        .await;
    let size = manifest.bytes().await.unwrap().len();
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size});
    let bundle = sign(sigstore.path(), &digest, &["--form", "dsse"]);
    push_bundle(&b, "keyless/bundled", &subject, &bundle).await;
    let out = rt.ok(&["run", "--rm", &bundled, "echo", "bundled-runs"]);
    assert_eq!(out, "bundled-runs\n");
}
