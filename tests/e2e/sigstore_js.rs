//! Interoperability with sigstore-js (`@sigstore/sign`, `@sigstore/verify`: the reference
//! JavaScript implementation of sigstore, the one npm provenance uses), both ways:
//! - sigstore-js signs a DSSE bundle with a P-256 key from Node's crypto; the hub verifies it
//!   in an enforcing namespace (API, pulls) and `berth verify --key` agrees; tampered copies
//!   are refused by both;
//! - `berth sign --new-bundle-format` signs; sigstore-js verifies the bundle fetched from the
//!   referrer with the public key, and refuses it with another key or once altered;
//! - sigstore-js verifies the keyless bundles tests/e2e/fake_sigstore.py makes with its trusted
//!   root, so berth's keyless tests run on data a sigstore verifier accepts.
//!
//! The npm packages are pinned in tests/e2e/sigstore_js/package-lock.json; tests/run installs
//! them (`npm ci`) and names their node_modules in `BERTH_TEST_SIGSTORE_JS`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_MANIFEST, expect_error};
use crate::harness::{Berth, sha256, tool};
use crate::real_clients::run;
use crate::runtime_pull::Runtime;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

/// Node with the pinned sigstore-js packages.
struct SigstoreJs {
    node: PathBuf,
    modules: PathBuf,
}

impl SigstoreJs {
    /// `None` when node or the packages are missing (a failure in CI).
    fn get() -> Option<Self> {
        let node = tool("node")?;
        let modules = std::env::var_os("BERTH_TEST_SIGSTORE_JS").map(PathBuf::from);
        match modules {
            Some(m) if m.join("@sigstore/verify/package.json").is_file() => {
                Some(Self { node, modules: m })
            }
            _ => {
                assert!(
                    !crate::harness::required(),
                    "sigstore-js is required in CI: tests/run installs it (npm ci) and sets BERTH_TEST_SIGSTORE_JS"
                );
                eprintln!(
                    "SKIPPED: sigstore-js is not installed (run tests/run, or npm ci in tests/e2e/sigstore_js and set BERTH_TEST_SIGSTORE_JS to its node_modules)"
                );
                None
            }
        }
    }

    /// Runs tests/e2e/sigstore_js/sigstore.js; its success and the JSON it printed.
    fn call(&self, dir: &Path, args: &[&str]) -> (bool, Value) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/sigstore_js/sigstore.js");
        let (ok, out, err) = run(Command::new(&self.node)
            .arg(script)
            .args(args)
            .env("NODE_PATH", &self.modules)
            .current_dir(dir));
        let value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("sigstore.js {args:?} printed no JSON ({e}): {out}{err}"));
        (ok, value)
    }

    /// Verifies the keyed bundle in `bundle` (a file in `dir`) for `digest` with `public_key`.
    fn verifies(&self, dir: &Path, bundle: &Value, public_key: &Path, digest: &str) -> Value {
        std::fs::write(dir.join("verify.json"), bundle.to_string()).unwrap();
        let (ok, verdict) = self.call(
            dir,
            &[
                "verify",
                "verify.json",
                public_key.to_str().unwrap(),
                digest,
            ],
        );
        assert_eq!(ok, verdict["verified"] == true, "{verdict}");
        verdict
    }
}

async fn trust_of(b: &Berth, repo: &str, reference: &str) -> Value {
    b.get(&format!("/api/v1/trust/{repo}?reference={reference}"))
        .await
        .json::<Value>()
        .await
        .unwrap()["trust"]
        .clone()
}

/// The bundle's in-toto statement.
fn statement(bundle: &Value) -> Value {
    let payload = STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// `bundle` with its statement replaced by `statement`, the signature kept.
fn with_statement(bundle: &Value, statement: &Value) -> Value {
    let mut altered = bundle.clone();
    altered["dsseEnvelope"]["payload"] = STANDARD.encode(statement.to_string()).into();
    altered
}

#[tokio::test]
async fn the_hub_and_berth_verify_verify_what_sigstore_js_signs() {
    let Some(js) = SigstoreJs::get() else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let (made, generated) = js.call(dir, &["keygen", "."]);
    assert!(made, "{generated}");
    // The hint sigstore-js was given (cosign's: base64 of SHA-256 over the DER key) is berth's
    // key id in another spelling.
    let key_id = format!(
        "sha256:{}",
        hex::encode(
            STANDARD
                .decode(generated["hint"].as_str().unwrap())
                .unwrap()
        )
    );
    let public_key = dir.join("js.pub");
    let (b, _config) = crate::policies::start_with_config(
        &format!(
            "[[trust.policy]]\nscope = \"js\"\nmode = \"enforce\"\nkeys = [{:?}]\n",
            public_key.to_str().unwrap()
        ),
        &[],
    );
    let app = b.push_image("js/app", "v1", 1, 1).await;
    let other = b.push_image("js/app", "v2", 2, 1).await;
    let refused = b.get("/v2/js/app/manifests/v1").await;
    expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;

    let image = format!("{}/js/app", b.host());
    let sign = |digest: &str| {
        let (signed, bundle) = js.call(dir, &["sign", "js.key", digest, &image]);
        assert!(signed, "{bundle}");
        bundle
    };
    let bundle = sign(&app.digest);
    assert_eq!(bundle["mediaType"], BUNDLE);
    assert!(
        bundle["verificationMaterial"]["tlogEntries"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    // Tampered copies first, each on the manifest it would vouch for: refused by the hub and by
    // berth verify.
    let rt = Runtime::new();
    let verify = |reference: &str| {
        rt.run(&[
            "verify",
            "--key",
            public_key.to_str().unwrap(),
            &format!("{image}{reference}"),
        ])
    };
    // The statement changed to name v2 (the signature is over v1's): not this key's signature.
    let mut names_other = statement(&bundle);
    names_other["subject"][0]["digest"]["sha256"] = other.digest["sha256:".len()..].into();
    crate::keyless::push_bundle(
        &b,
        "js/app",
        &other.descriptor(),
        &with_statement(&bundle, &names_other),
    )
    .await;
    let refused = b.get("/v2/js/app/manifests/v2").await;
    expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(trust_of(&b, "js/app", "v2").await["status"], "untrusted");
    let (verified, _, err) = verify(":v2");
    assert!(!verified && err.contains("not verified"), "{err}");
    // v1's genuine bundle attached to v2 (its subject points elsewhere): invalid, and said so.
    crate::keyless::push_bundle(&b, "js/app", &other.descriptor(), &bundle).await;
    let refused = b.get("/v2/js/app/manifests/v2").await;
    let body = expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&app.digest), "{message}");
    let trust = trust_of(&b, "js/app", "v2").await;
    assert_eq!(trust["status"], "invalid", "{trust}");
    let (verified, _, err) = verify(":v2");
    assert!(!verified && err.contains(&app.digest), "{err}");
    // A broken signature on v1: refused.
    let mut broken = bundle.clone();
    let mut sig = STANDARD
        .decode(
            bundle["dsseEnvelope"]["signatures"][0]["sig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let last = sig.len() - 2;
    sig[last] ^= 1;
    broken["dsseEnvelope"]["signatures"][0]["sig"] = STANDARD.encode(&sig).into();
    crate::keyless::push_bundle(&b, "js/app", &app.descriptor(), &broken).await;
    let refused = b.get("/v2/js/app/manifests/v1").await;
    expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(!verify(":v1").0);

    // The genuine bundle on v1: served, verified by that key, and berth verify agrees.
    crate::keyless::push_bundle(&b, "js/app", &app.descriptor(), &bundle).await;
    assert_eq!(
        b.get("/v2/js/app/manifests/v1").await.status(),
        StatusCode::OK
    );
    let trust = trust_of(&b, "js/app", "v1").await;
    assert_eq!(trust["status"], "verified", "{trust}");
    assert_eq!(trust["key"], key_id.as_str());
    let (verified, out, err) = verify(":v1");
    assert!(verified, "{err}");
    assert!(out.contains(&app.digest) && out.contains(&key_id), "{out}");

    // docker pulls a real image once sigstore-js signed it.
    let (Some(docker), Some(busybox)) = (
        crate::real_clients::Docker::get(),
        crate::real_clients::busybox(),
    ) else {
        return;
    };
    let image = format!("{}/js/busybox:v1", b.host());
    crate::real_clients::docker_build(&docker, &busybox, "signed-by-sigstore-js", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, _, err) = docker.run(&["pull", &image]);
    assert!(!pulled && err.contains("denied"), "{err}");
    // The hub serves the unsigned manifest to nobody, but describes it on HEAD, as cosign's
    // referrer writer reads it.
    let head = b.head("/v2/js/busybox/manifests/v1").await;
    let header = |name: &str| head.headers()[name].to_str().unwrap().to_owned();
    let subject = json!({
        "mediaType": header("content-type"),
        "digest": header("docker-content-digest"),
        "size": header("content-length").parse::<u64>().unwrap(),
    });
    let digest = subject["digest"].as_str().unwrap().to_owned();
    let bundle = sign(&digest);
    crate::keyless::push_bundle(&b, "js/busybox", &subject, &bundle).await;
    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
}

#[tokio::test]
async fn sigstore_js_verifies_what_berth_signs_with_new_bundle_format() {
    let Some(js) = SigstoreJs::get() else {
        return;
    };
    let rt = Runtime::new();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let with_password = |args: &[&str]| {
        let mut env: Vec<(&str, &str)> = rt
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("COSIGN_PASSWORD", ""));
        crate::cli::berth(args, &env)
    };
    let (made, _, err) = with_password(&[
        "key",
        "generate",
        "--output-key-prefix",
        dir.join("team").to_str().unwrap(),
    ]);
    assert!(made, "{err}");
    let team_pub = dir.join("team.pub");
    // A stranger's key, from Node.
    assert!(js.call(dir, &["keygen", "."]).0);
    let stranger_pub = dir.join("js.pub");
    let (b, _config) = crate::policies::start_with_config(
        &format!(
            "[[trust.policy]]\nscope = \"team\"\nkeys = [{team:?}]\n\n\
             [[trust.policy]]\nscope = \"strict\"\nmode = \"enforce\"\nkeys = [{team:?}]\n",
            team = team_pub.to_str().unwrap()
        ),
        &[],
    );
    let app = b.push_image("team/app", "v1", 1, 1).await;
    let other = b.push_image("team/app", "v2", 2, 1).await;
    let image = format!("{}/team/app:v1", b.host());
    let key = dir.join("team.key");
    let (signed, out, err) = with_password(&[
        "sign",
        "--new-bundle-format",
        "--key",
        key.to_str().unwrap(),
        &image,
    ]);
    assert!(signed, "{err}");
    assert!(
        out.contains(&app.digest) && out.contains("sigstore bundle"),
        "{out}"
    );

    // The referrer, as cosign --new-bundle-format writes it; no cosign .sig tag.
    let referrers = b
        .get(&format!(
            "/v2/team/app/referrers/{}?artifactType={}",
            app.digest,
            BUNDLE.replace('+', "%2B")
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let entries = referrers["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{referrers}");
    assert_eq!(entries[0]["artifactType"], BUNDLE);
    assert_eq!(
        entries[0]["annotations"]["dev.sigstore.bundle.predicateType"],
        COSIGN_SIGN
    );
    let tag = app.digest.replacen(':', "-", 1) + ".sig";
    assert_eq!(
        b.get(&format!("/v2/team/app/manifests/{tag}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let referrer: Value = b
        .http
        .get(b.url(&format!(
            "/v2/team/app/manifests/{}",
            entries[0]["digest"].as_str().unwrap()
        )))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(referrer["subject"]["digest"], app.digest.as_str());
    assert_eq!(referrer["subject"]["size"], app.size);
    assert_eq!(referrer["layers"][0]["mediaType"], BUNDLE);
    assert_eq!(
        referrer["annotations"]["dev.sigstore.bundle.content"],
        "dsse-envelope"
    );
    let bundle: Value = b
        .get(&format!(
            "/v2/team/app/blobs/{}",
            referrer["layers"][0]["digest"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    let s = statement(&bundle);
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], COSIGN_SIGN);

    // sigstore-js: verified with berth's public key (found by the hint berth wrote), for this
    // manifest only; refused with another key, or once altered.
    let verdict = js.verifies(dir, &bundle, &team_pub, &app.digest);
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(verdict["predicateType"], COSIGN_SIGN);
    let verdict = js.verifies(dir, &bundle, &team_pub, &other.digest);
    assert_eq!(verdict["verified"], false, "{verdict}");
    // The stranger's key under berth's hint: the signature does not verify with it.
    let mut stranger_bundle = bundle.clone();
    stranger_bundle["verificationMaterial"]["publicKey"]["hint"] = key_hint(&stranger_pub).into();
    let verdict = js.verifies(dir, &stranger_bundle, &stranger_pub, &app.digest);
    assert_eq!(verdict["verified"], false, "{verdict}");
    assert!(
        verdict["error"]
            .as_str()
            .unwrap()
            .contains("signature verification failed"),
        "{verdict}"
    );
    let mut names_other = s.clone();
    names_other["subject"][0]["digest"]["sha256"] = other.digest["sha256:".len()..].into();
    let verdict = js.verifies(
        dir,
        &with_statement(&bundle, &names_other),
        &team_pub,
        &other.digest,
    );
    assert_eq!(verdict["verified"], false, "{verdict}");

    // berth reads its own: berth verify, and the hub's API.
    let (verified, out, err) = rt.run(&["verify", "--key", team_pub.to_str().unwrap(), &image]);
    assert!(verified && out.contains(&app.digest), "{out}{err}");
    let trust = trust_of(&b, "team/app", "v1").await;
    assert_eq!(trust["status"], "verified", "{trust}");
    assert_eq!(trust["key"], key_hint_id(&bundle));

    // An enforcing hub shows an unsigned manifest to nobody but describes it on HEAD, which is
    // all a referrer's subject needs: berth signs in this form there too, as cosign does
    // against Harbor, and the image is then served.
    let sign_bundle = |image: &str| {
        with_password(&[
            "sign",
            "--new-bundle-format",
            "--key",
            key.to_str().unwrap(),
            image,
        ])
    };
    let strict = b.push_image("strict/app", "v1", 3, 1).await;
    let refused = b.get("/v2/strict/app/manifests/v1").await;
    expect_error(refused, StatusCode::FORBIDDEN, "DENIED").await;
    let (signed, out, err) = sign_bundle(&format!("{}/strict/app:v1", b.host()));
    assert!(signed && out.contains(&strict.digest), "{out}{err}");
    assert_eq!(
        b.get("/v2/strict/app/manifests/v1").await.status(),
        StatusCode::OK
    );
    let referrers = b
        .get(&format!(
            "/v2/strict/app/referrers/{}?artifactType={}",
            strict.digest,
            BUNDLE.replace('+', "%2B")
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let referrer: Value = b
        .http
        .get(b.url(&format!(
            "/v2/strict/app/manifests/{}",
            referrers["manifests"][0]["digest"].as_str().unwrap()
        )))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(referrer["subject"], strict.descriptor(), "{referrer}");

    // And docker pulls a real image, refused until berth signed it so.
    let (Some(docker), Some(busybox)) = (
        crate::real_clients::Docker::get(),
        crate::real_clients::busybox(),
    ) else {
        return;
    };
    let image = format!("{}/strict/busybox:v1", b.host());
    crate::real_clients::docker_build(&docker, &busybox, "bundle-signed-by-berth", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, _, err) = docker.run(&["pull", &image]);
    assert!(!pulled && err.contains("denied"), "{err}");
    let (signed, out, err) = sign_bundle(&image);
    assert!(signed && out.contains("sigstore bundle"), "{out}{err}");
    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
}

/// cosign's hint for the PEM public key in `file`, computed with openssl.
fn key_hint(file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-in"])
        .arg(file)
        .args(["-outform", "DER"])
        .output()
        .unwrap();
    assert!(out.status.success());
    STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout))
}

/// berth's key id for the key a bundle's hint names.
fn key_hint_id(bundle: &Value) -> String {
    let hint = bundle["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap();
    format!("sha256:{}", hex::encode(STANDARD.decode(hint).unwrap()))
}

#[tokio::test]
async fn sigstore_js_verifies_the_private_sigstores_keyless_bundles() {
    let Some(js) = SigstoreJs::get() else {
        return;
    };
    if tool("openssl").is_none() || tool("python3").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let fake = |args: &[&str]| -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fake_sigstore.py");
        let out = crate::real_clients::ok(Command::new("python3").arg(script).args(args));
        if out.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&out).unwrap()
        }
    };
    let sigstore = dir.join("sigstore");
    std::fs::create_dir(&sigstore).unwrap();
    fake(&["init", sigstore.to_str().unwrap()]);
    // A message signature covers the artifact's bytes: a manifest's.
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let digest = sha256(manifest);
    let root = sigstore.join("trusted_root.json");
    let verify = |bundle: &Value, san: &str, digest: &str| {
        std::fs::write(dir.join("keyless.json"), bundle.to_string()).unwrap();
        let (ok, verdict) = js.call(
            dir,
            &[
                "verify",
                "keyless.json",
                "--trusted-root",
                root.to_str().unwrap(),
                "--issuer",
                ISSUER,
                "--san",
                san,
                "--artifact",
                "manifest.json",
                digest,
            ],
        );
        assert_eq!(ok, verdict["verified"] == true, "{verdict}");
        verdict
    };
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign", sigstore.to_str().unwrap(), "--digest", &digest];
        args.extend_from_slice(extra);
        fake(&args)
    };
    for form in ["dsse", "message"] {
        let bundle = sign(&["--form", form]);
        let verdict = verify(&bundle, WORKFLOW, &digest);
        assert_eq!(verdict["verified"], true, "{form}: {verdict}");
        assert_eq!(verdict["content"], form);
        // Another identity than the certificate's: refused.
        let verdict = verify(&bundle, "https://github.com/mallory/app", &digest);
        assert!(
            verdict["error"].as_str().unwrap().contains("identity"),
            "{form}: {verdict}"
        );
    }
    // The log's promise over another entry, and a log time outside the certificate: refused,
    // as berth refuses them (tests/e2e/keyless.rs, trust/tests/sigstore.rs).
    let verdict = verify(
        &sign(&["--form", "dsse", "--tamper-set"]),
        WORKFLOW,
        &digest,
    );
    assert!(
        verdict["error"]
            .as_str()
            .unwrap()
            .contains("inclusion promise"),
        "{verdict}"
    );
    let verdict = verify(
        &sign(&["--form", "dsse", "--integrated-time", "1704070000"]),
        WORKFLOW,
        &digest,
    );
    assert!(
        verdict["error"].as_str().unwrap().contains("certificate"),
        "{verdict}"
    );
}
