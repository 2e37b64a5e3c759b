//! Image signatures checked by the hub: `[[trust.policy]]` scopes verify cosign signatures
//! (made here by openssl, an implementation independent of berth's, in the exact layout
//! cosign writes), show the verdict in the JSON API and the UI, and refuse pulls of what no
//! trusted key signed where a policy enforces.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_INDEX, OCI_MANIFEST, Pushed, expect_error};
use crate::harness::{Berth, sha256, tool};
use crate::real_clients::{Docker, busybox, docker_build, ok};

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// A P-256 key pair made by openssl in `dir`: `NAME.key` and `NAME.pub`.
fn keypair(dir: &Path, name: &str) {
    let key = format!("{name}.key");
    ok(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ])
        .current_dir(dir));
    ok(Command::new("openssl")
        .args([
            "pkey",
            "-in",
            &key,
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ])
        .current_dir(dir));
}

/// The key id berth shows: `sha256:` over the public key's DER.
fn key_id(dir: &Path, name: &str) -> String {
    let der = Command::new("openssl")
        .args([
            "pkey",
            "-pubin",
            "-in",
            &format!("{name}.pub"),
            "-outform",
            "DER",
        ])
        .current_dir(dir)
        .output()
        .unwrap()
        .stdout;
    sha256(&der)
}

/// cosign's payload for `digest`.
fn payload(digest: &str, reference: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string()
    .into_bytes()
}

/// openssl's ECDSA signature (DER, SHA-256) of `data` with key `NAME.key`, in base64.
fn sign(dir: &Path, name: &str, data: &[u8]) -> String {
    let msg = dir.join("msg");
    std::fs::write(&msg, data).unwrap();
    ok(Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sign",
            &format!("{name}.key"),
            "-out",
            "sig",
            "msg",
        ])
        .current_dir(dir));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("sig")).unwrap())
}

/// Pushes a signature manifest as cosign does: the payload as a layer with the signature in
/// its annotation, tagged `sha256-<hex>.sig` (or as an OCI 1.1 referrer with `referrer`).
async fn push_signature(
    b: &Berth,
    repo: &str,
    subject: &Pushed,
    payload: &[u8],
    signature: &str,
    referrer: bool,
) -> Pushed {
    let config = b
        .push_blob_typed(repo, b"{}", "application/vnd.oci.image.config.v1+json")
        .await;
    let layer = b.push_blob_typed(repo, payload, SIMPLE_SIGNING).await;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [{
            "mediaType": SIMPLE_SIGNING,
            "digest": layer.digest,
            "size": layer.size,
            "annotations": {"dev.cosignproject.cosign/signature": signature}
        }]
    });
    if referrer {
        manifest["artifactType"] = json!(COSIGN_SIG_ARTIFACT);
        manifest["subject"] = subject.descriptor();
        let digest = sha256(&serde_json::to_vec(&manifest).unwrap());
        b.push_manifest_json(repo, &digest, OCI_MANIFEST, &manifest)
            .await
    } else {
        let tag = subject.digest.replacen(':', "-", 1) + ".sig";
        b.push_manifest_json(repo, &tag, OCI_MANIFEST, &manifest)
            .await
    }
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

fn policies(dir: &Path, keys: &[&str]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("{:?}", dir.join(format!("{k}.pub")).to_str().unwrap()))
        .collect();
    format!(
        r#"
[[trust.policy]]
scope = "signed"
mode = "enforce"
keys = [{keys}]

[[trust.policy]]
scope = "signed/relaxed"
mode = "audit"
keys = [{keys}]
"#,
        keys = keys.join(", ")
    )
}

#[tokio::test]
async fn enforcing_policies_serve_only_what_a_trusted_key_signed() {
    if tool("openssl").is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    keypair(keys.path(), "team");
    keypair(keys.path(), "stranger");
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("berth.toml");
    std::fs::write(&config, policies(keys.path(), &["team"])).unwrap();
    let env = [("BERTH_CONFIG", config.to_str().unwrap())];
    let mut b = Berth::start_in(data.path(), &env);

    // Unsigned: refused by tag and by digest, with the policy named. HEAD answers, since
    // signers resolve the tag to the digest they sign with it.
    let app = b.push_image("signed/app", "v1", 1, 1).await;
    let resp = b.get("/v2/signed/app/manifests/v1").await;
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("trust policy \"signed\"") && message.contains("no signature"),
        "{message}"
    );
    assert_eq!(
        pull_status(&b, "signed/app", &app.digest).await,
        StatusCode::FORBIDDEN
    );
    let head = b.head("/v2/signed/app/manifests/v1").await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["docker-content-digest"], app.digest.as_str());
    assert_eq!(
        head.headers()["content-length"],
        app.size.to_string().as_str()
    );
    assert_eq!(trust_of(&b, "signed/app", "v1").await["status"], "unsigned");

    // Signed with the team's key under cosign's tag: served, and shown as verified by it.
    let sig = sign(keys.path(), "team", &payload(&app.digest, "signed/app"));
    let sig_manifest = push_signature(
        &b,
        "signed/app",
        &app,
        &payload(&app.digest, "signed/app"),
        &sig,
        false,
    )
    .await;
    assert_eq!(pull_status(&b, "signed/app", "v1").await, StatusCode::OK);
    let head = b
        .head(&format!("/v2/signed/app/manifests/{}", app.digest))
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["docker-content-digest"], app.digest.as_str());
    let trust = trust_of(&b, "signed/app", "v1").await;
    assert_eq!(trust["status"], "verified", "{trust}");
    assert_eq!(trust["key"], key_id(keys.path(), "team"));
    assert_eq!(trust["policy"], "signed");
    assert_eq!(trust["mode"], "enforce");
    // The signature itself is an artifact, not an image: clients fetch it to verify.
    assert_eq!(
        pull_status(&b, "signed/app", &sig_manifest.digest).await,
        StatusCode::OK
    );

    // As an OCI 1.1 referrer, the way newer cosign stores it: verified too.
    let other = b.push_image("signed/app", "v2", 2, 1).await;
    let p = payload(&other.digest, "signed/app");
    let sig = sign(keys.path(), "team", &p);
    push_signature(&b, "signed/app", &other, &p, &sig, true).await;
    assert_eq!(pull_status(&b, "signed/app", "v2").await, StatusCode::OK);

    // A stranger's key vouches for nothing.
    let foreign = b.push_image("signed/app", "foreign", 3, 1).await;
    let p = payload(&foreign.digest, "signed/app");
    let sig = sign(keys.path(), "stranger", &p);
    push_signature(&b, "signed/app", &foreign, &p, &sig, false).await;
    assert_eq!(
        pull_status(&b, "signed/app", "foreign").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        trust_of(&b, "signed/app", "foreign").await["status"],
        "untrusted"
    );

    // A valid signature copied from another image names that image: invalid here.
    let copied = b.push_image("signed/app", "copied", 4, 1).await;
    let p = payload(&app.digest, "signed/app");
    let sig = sign(keys.path(), "team", &p);
    push_signature(&b, "signed/app", &copied, &p, &sig, false).await;
    let resp = b.get("/v2/signed/app/manifests/copied").await;
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(body.to_string().contains(&app.digest), "{body}");
    assert_eq!(
        trust_of(&b, "signed/app", "copied").await["status"],
        "invalid"
    );

    // A tampered payload (signed bytes differ from the stored ones) verifies with no key.
    let tampered = b.push_image("signed/app", "tampered", 5, 1).await;
    let p = payload(&tampered.digest, "signed/app");
    let sig = sign(
        keys.path(),
        "team",
        &payload(&tampered.digest, "signed/other"),
    );
    push_signature(&b, "signed/app", &tampered, &p, &sig, false).await;
    assert_eq!(
        pull_status(&b, "signed/app", "tampered").await,
        StatusCode::FORBIDDEN
    );

    // Malformed signature manifests neither crash nor slow the server, and vouch for nothing.
    let junk = b.push_image("signed/app", "junk", 6, 1).await;
    for garbage in ["%%% not base64", "", &"A".repeat(100_000)] {
        push_signature(&b, "signed/app", &junk, b"{not json", garbage, false).await;
        assert_eq!(
            pull_status(&b, "signed/app", "junk").await,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(pull_status(&b, "signed/app", "v1").await, StatusCode::OK);

    // A multi-platform image is signed through its index: the platform manifests it lists
    // are served by digest, as docker pulls them.
    let platform = b.push_image("signed/multi", "amd64", 7, 1).await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": platform.digest, "size": platform.size,
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    });
    let index = b
        .push_manifest_json("signed/multi", "latest", OCI_INDEX, &index)
        .await;
    assert_eq!(
        pull_status(&b, "signed/multi", &platform.digest).await,
        StatusCode::FORBIDDEN
    );
    let p = payload(&index.digest, "signed/multi");
    let sig = sign(keys.path(), "team", &p);
    push_signature(&b, "signed/multi", &index, &p, &sig, false).await;
    assert_eq!(
        pull_status(&b, "signed/multi", "latest").await,
        StatusCode::OK
    );
    assert_eq!(
        pull_status(&b, "signed/multi", &platform.digest).await,
        StatusCode::OK
    );

    // An audit policy refuses nothing but tells.
    b.push_image("signed/relaxed/app", "v1", 8, 1).await;
    assert_eq!(
        pull_status(&b, "signed/relaxed/app", "v1").await,
        StatusCode::OK
    );
    let trust = trust_of(&b, "signed/relaxed/app", "v1").await;
    assert_eq!(
        (trust["status"].as_str(), trust["mode"].as_str()),
        (Some("unsigned"), Some("audit"))
    );
    // Outside every scope: no policy, no verdict.
    b.push_image("free/app", "v1", 9, 1).await;
    assert_eq!(pull_status(&b, "free/app", "v1").await, StatusCode::OK);
    assert!(trust_of(&b, "free/app", "v1").await.is_null());

    // The UI shows each tag's status, and the manifest page says why.
    let page = b.get("/ui/r/signed/app").await.text().await.unwrap();
    assert!(
        page.contains("Signature")
            && page.contains("trust-verified")
            && page.contains("trust-untrusted"),
        "{page}"
    );
    let page = b
        .get(&format!("/ui/r/signed/app/-/manifest/{}", app.digest))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(
            "signed with trusted key {}",
            key_id(keys.path(), "team")
        )),
        "{page}"
    );

    // Trusting the stranger's key too re-checks what it signed; nothing else changes.
    b.kill();
    std::fs::write(&config, policies(keys.path(), &["team", "stranger"])).unwrap();
    let b = Berth::start_in(data.path(), &env);
    assert_eq!(
        pull_status(&b, "signed/app", "foreign").await,
        StatusCode::OK
    );
    assert_eq!(pull_status(&b, "signed/app", "v1").await, StatusCode::OK);
    assert_eq!(
        pull_status(&b, "signed/app", "copied").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        trust_of(&b, "signed/app", "foreign").await["key"],
        key_id(keys.path(), "stranger")
    );
}

#[tokio::test]
async fn a_bad_trust_policy_stops_the_server_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (config, expect) in [
        (
            "[[trust.policy]]\nscope = \"team\"\nmode = \"enforce\"\n",
            "needs at least one key",
        ),
        (
            "[[trust.policy]]\nscope = \"team\"\nkeys = [\"/nonexistent.pub\"]\n",
            "/nonexistent.pub",
        ),
        ("[[trust.policy]]\nscope = \"Team/../x\"\n", "invalid scope"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, config).unwrap();
        let (ok, _, err) = crate::cli::berth(
            &[
                "serve",
                "--config",
                file.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        assert!(!ok && err.contains(expect), "{config}: {err}");
    }
}

#[tokio::test]
async fn docker_pulls_signed_images_and_is_told_why_unsigned_ones_are_refused() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    if tool("openssl").is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    keypair(keys.path(), "team");
    let (b, _config) = crate::policies::start_with_config(&policies(keys.path(), &["team"]), &[]);
    let image = format!("{}/signed/busybox:v1", b.host());
    docker_build(&docker, &busybox, "signed", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, out, err) = docker.run(&["pull", &image]);
    assert!(!pulled, "an unsigned image must not pull: {out}");
    assert!(
        err.contains("denied") && err.contains("trust policy"),
        "{err}"
    );
    // Sign what was pushed, as cosign would (the digest from a HEAD of the tag), then pull.
    let digest = b.head("/v2/signed/busybox/manifests/v1").await.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let subject = Pushed {
        digest: digest.clone(),
        size: 0,
        media_type: OCI_MANIFEST,
        bytes: Vec::new(),
    };
    let p = payload(&digest, "signed/busybox");
    let sig = sign(keys.path(), "team", &p);
    push_signature(&b, "signed/busybox", &subject, &p, &sig, false).await;
    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
}

#[tokio::test]
async fn robots_may_pull_unsigned_images_only_where_the_policy_exempts_them() {
    if tool("openssl").is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    keypair(keys.path(), "team");
    let key = keys.path().join("team.pub");
    let config = keys.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[[trust.policy]]\nscope = \"acme/ci\"\nmode = \"enforce\"\nkeys = [{key:?}]\nexempt_robots = true\n\n\
             [[trust.policy]]\nscope = \"acme/prod\"\nmode = \"enforce\"\nkeys = [{key:?}]\n"
        ),
    )
    .unwrap();
    let b = crate::auth::start_with_auth(&[("BERTH_CONFIG", config.to_str().unwrap())]);
    b.admin_ok(&["org", "add", "acme"], "");
    let secret = crate::auth::create_token(&b, "acme", "ci", "acme/*:pull,push");
    b.push_image("acme/ci", "v1", 1, 1).await;
    b.push_image("acme/prod", "v1", 2, 1).await;
    let as_robot = |path: &str| {
        reqwest::Client::new()
            .get(b.url(path))
            .header(
                "authorization",
                crate::auth::basic_header("acme+ci", &secret),
            )
            .send()
    };
    // The administrator is a person: refused in both.
    assert_eq!(
        pull_status(&b, "acme/ci", "v1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        pull_status(&b, "acme/prod", "v1").await,
        StatusCode::FORBIDDEN
    );
    // The robot passes where its policy exempts robots, and only there.
    let resp = as_robot("/v2/acme/ci/manifests/v1").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = as_robot("/v2/acme/prod/manifests/v1").await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// Signs `repo:1` (pushed by `push_busybox`) with key `NAME` in `keys`, as cosign would.
async fn sign_tag(b: &Berth, repo: &str, tag: &str, keys: &Path, name: &str) {
    let digest = b
        .head(&format!("/v2/{repo}/manifests/{tag}"))
        .await
        .headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let subject = Pushed {
        digest: digest.clone(),
        size: 0,
        media_type: OCI_MANIFEST,
        bytes: Vec::new(),
    };
    let p = payload(&digest, repo);
    let sig = sign(keys, name, &p);
    push_signature(b, repo, &subject, &p, &sig, false).await;
}

#[tokio::test]
async fn berth_pull_and_run_check_the_local_policy_before_unpacking_or_running() {
    if !crate::runtime_pull::is_root() || tool("openssl").is_none() {
        return;
    }
    let Some(busybox) = busybox() else { return };
    let b = Berth::start();
    let keys = tempfile::tempdir().unwrap();
    keypair(keys.path(), "team");
    let policy = keys.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[trust.policy]]\nscope = \"{}/signed\"\nmode = \"enforce\"\nkeys = [\"team.pub\"]\n",
            b.host()
        ),
    )
    .unwrap();
    let unsigned = crate::runtime_run::push_busybox(&b, "signed/unsigned", &busybox).await;
    let signed = crate::runtime_run::push_busybox(&b, "signed/app", &busybox).await;
    sign_tag(&b, "signed/app", "1", keys.path(), "team").await;
    let free = crate::runtime_run::push_busybox(&b, "free/app", &busybox).await;

    let mut rt = crate::runtime_pull::Runtime::new();
    rt.env
        .push(("BERTH_POLICY".into(), policy.display().to_string()));
    // Refused before a single layer is unpacked, with the policy and the way out named.
    let (ok, _, err) = rt.run(&["pull", &unsigned]);
    assert!(!ok);
    assert!(
        err.contains("refused by trust policy")
            && err.contains("no signature")
            && err.contains("--insecure-skip-verify"),
        "{err}"
    );
    let layers = rt.store().join("layers/sha256");
    assert_eq!(
        std::fs::read_dir(&layers).map(|d| d.count()).unwrap_or(0),
        0
    );
    let (ok, _, err) = rt.run(&["run", "--rm", &unsigned, "true"]);
    assert!(!ok && err.contains("refused by trust policy"), "{err}");
    // Signed: pulled and run. Outside the policy's scope: nothing is asked.
    rt.ok(&["pull", &signed]);
    let out = rt.ok(&["run", "--rm", &signed, "echo", "signed-runs"]);
    assert_eq!(out, "signed-runs\n");
    rt.ok(&["run", "--rm", &free, "true"]);
    // --insecure-skip-verify uses it anyway, and says so.
    let (ok, _, err) = rt.run(&["pull", "--insecure-skip-verify", &unsigned]);
    assert!(ok, "{err}");
    assert!(
        err.contains("WARNING") && err.contains("--insecure-skip-verify"),
        "{err}"
    );
    // An image pulled before the policy existed is checked at its registry before it runs.
    let before = crate::runtime_pull::Runtime::new();
    before.ok(&["pull", &unsigned]);
    before.ok(&["pull", &signed]);
    let mut after = before;
    after
        .env
        .push(("BERTH_POLICY".into(), policy.display().to_string()));
    let (ok, _, err) = after.run(&["run", "--rm", &unsigned, "true"]);
    assert!(!ok && err.contains("refused by trust policy"), "{err}");
    let out = after.ok(&["run", "--rm", &signed, "echo", "checked"]);
    assert_eq!(out, "checked\n");
    let inspect = after.ok(&["inspect", &signed]);
    assert!(inspect.contains(&key_id(keys.path(), "team")), "{inspect}");
    // A bad policy file stops the command with a reason.
    std::fs::write(
        &policy,
        "[[trust.policy]]\nscope = \"x\"\nmode = \"enforce\"\n",
    )
    .unwrap();
    let (ok, _, err) = after.run(&["run", "--rm", &signed, "true"]);
    assert!(!ok && err.contains("needs at least one key"), "{err}");
}
