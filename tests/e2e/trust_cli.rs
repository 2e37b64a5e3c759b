//! `berth sign`, `berth verify` and `berth key generate`, checked by implementations other
//! than berth's: openssl verifies the signatures berth pushed over the payload as stored, the
//! oras Python client fetches them as any third party would, and a key sealed in cosign's
//! format by a small Python helper (hashlib's scrypt, PyNaCl's secretbox) signs with berth.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{Berth, tool};
use crate::real_clients::{ok, run};
use crate::runtime_pull::Runtime;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";

/// Python with PyNaCl, or `None` (a failure in CI).
fn python_with_nacl() -> Option<std::path::PathBuf> {
    let python = tool("python3")?;
    let (found, _, err) = run(Command::new(&python).args(["-c", "import nacl.secret"]));
    if !found {
        assert!(
            !crate::harness::required(),
            "PyNaCl is required in CI (pip install pynacl): {err}"
        );
        eprintln!("SKIPPED: PyNaCl is not installed (pip install pynacl)");
        return None;
    }
    Some(python)
}

/// The manifest JSON at `reference` of `repo`, asked for as an OCI manifest.
async fn manifest(b: &Berth, repo: &str, reference: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(b.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", crate::client::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{reference}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn blob(b: &Berth, repo: &str, digest: &str) -> Vec<u8> {
    let resp = b.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    assert!(resp.status().is_success());
    resp.bytes().await.unwrap().to_vec()
}

/// openssl's verdict on `signature` (raw bytes) over `payload` with public key `key`.
fn openssl_verifies(dir: &Path, key: &Path, payload: &[u8], signature: &[u8]) -> bool {
    std::fs::write(dir.join("payload"), payload).unwrap();
    std::fs::write(dir.join("payload.sig"), signature).unwrap();
    let (verified, out, _) = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(key)
        .args(["-signature", "payload.sig", "payload"])
        .current_dir(dir));
    verified && out.contains("Verified OK")
}

/// The layers of the `.sig` manifest of `digest`.
async fn sig_layers(b: &Berth, repo: &str, digest: &str) -> Vec<Value> {
    let tag = digest.replacen(':', "-", 1) + ".sig";
    manifest(b, repo, &tag).await["layers"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn berth_signs_as_cosign_does_and_independent_tools_agree() {
    if tool("openssl").is_none() {
        return;
    }
    let Some(python) = python_with_nacl() else {
        return;
    };
    let b = Berth::start();
    let rt = Runtime::new();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let app = b.push_image("team/app", "v1", 1, 1).await;
    let image = format!("{}/team/app:v1", b.host());
    let with_password = |pw: &str, args: &[&str]| {
        let mut env: Vec<(&str, &str)> = rt
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("COSIGN_PASSWORD", pw));
        crate::cli::berth(args, &env)
    };

    // A key pair as cosign makes it: an encrypted P-256 key and its public key.
    let prefix = dir.join("cosign");
    let (made, _, err) = with_password(
        "s3cret",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(made, "{err}");
    let key_file = dir.join("cosign.key");
    let pub_file = dir.join("cosign.pub");
    let sealed = std::fs::read_to_string(&key_file).unwrap();
    assert!(sealed.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (again, _, err) = with_password(
        "s3cret",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(!again && err.contains("not overwriting"), "{err}");

    // Signed by tag: the digest is what is signed.
    let (signed, out, err) = with_password(
        "s3cret",
        &["sign", "--key", key_file.to_str().unwrap(), &image],
    );
    assert!(signed, "{err}");
    assert!(out.contains(&app.digest), "{out}");

    // The OCI 1.1 referrer, as cosign's oci-1-1 mode writes it.
    let referrers = b
        .get(&format!(
            "/v2/team/app/referrers/{}?artifactType={}",
            app.digest,
            COSIGN_SIG_ARTIFACT.replace('+', "%2B")
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let entries = referrers["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{referrers}");
    let referrer = manifest(&b, "team/app", entries[0]["digest"].as_str().unwrap()).await;
    assert_eq!(referrer["artifactType"], COSIGN_SIG_ARTIFACT);
    assert_eq!(referrer["subject"]["digest"], app.digest.as_str());
    assert_eq!(referrer["subject"]["size"], app.size);
    let layer = &referrer["layers"][0];
    assert_eq!(layer["mediaType"], SIMPLE_SIGNING);

    // The payload, field by field, and the signature checked by openssl.
    let payload = blob(&b, "team/app", layer["digest"].as_str().unwrap()).await;
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(p["critical"]["type"], "cosign container image signature");
    assert_eq!(
        p["critical"]["image"]["docker-manifest-digest"],
        app.digest.as_str()
    );
    assert_eq!(
        p["critical"]["identity"]["docker-reference"],
        format!("{}/team/app", b.host())
    );
    assert_eq!(p["optional"], Value::Null);
    let sig = base64::engine::general_purpose::STANDARD
        .decode(layer["annotations"][SIGNATURE].as_str().unwrap())
        .unwrap();
    assert!(openssl_verifies(dir, &pub_file, &payload, &sig));
    assert!(!openssl_verifies(dir, &pub_file, b"another payload", &sig));

    // The same signature under cosign's tag, fetched by the oras Python client.
    let layers = sig_layers(&b, "team/app", &app.digest).await;
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0], *layer);
    if let Some(oras) = crate::clients_oci::Oras::get() {
        let tag = app.digest.replacen(':', "-", 1) + ".sig";
        let fetched = oras.call(
            dir,
            "get_manifest",
            &serde_json::json!({"container": format!("{}/team/app:{tag}", b.host())}),
        );
        assert_eq!(fetched["layers"][0], *layer, "{fetched}");
        oras.call(
            dir,
            "download_blob",
            &serde_json::json!({
                "container": format!("{}/team/app", b.host()),
                "digest": layer["digest"],
                "outfile": dir.join("oras-payload").to_str().unwrap(),
            }),
        );
        assert_eq!(std::fs::read(dir.join("oras-payload")).unwrap(), payload);
    }

    // berth verify names the key and the digest; a stranger's key verifies nothing.
    let verify = |key: &Path, extra: &[&str]| {
        let mut args = vec!["verify", "--key", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&image);
        rt.run(&args)
    };
    let (verified, out, err) = verify(&pub_file, &[]);
    assert!(verified, "{err}");
    assert!(
        out.contains(&app.digest) && out.contains("cosign.pub"),
        "{out}"
    );
    let (_, out, _) = verify(&pub_file, &["--output", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["digest"], app.digest.as_str());
    assert!(report["key"].as_str().unwrap().starts_with("sha256:"));
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out", "stranger.key"])
        .current_dir(dir));
    ok(Command::new("openssl")
        .args([
            "pkey",
            "-in",
            "stranger.key",
            "-pubout",
            "-out",
            "stranger.pub",
        ])
        .current_dir(dir));
    let (verified, _, err) = verify(&dir.join("stranger.pub"), &[]);
    assert!(
        !verified && err.contains("not verified") && err.contains("no signature was made by a key"),
        "{err}"
    );
    let (verified, out, _) = verify(&dir.join("stranger.pub"), &["-o", "json"]);
    assert!(!verified);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["verified"],
        false
    );

    // A second signer (a plain PKCS#8 Ed25519 key) joins the .sig manifest; the first
    // signature stays, and signing again adds nothing.
    let (signed, _, err) = rt.run(&[
        "sign",
        "--key",
        dir.join("stranger.key").to_str().unwrap(),
        &image,
    ]);
    assert!(signed, "{err}");
    assert_eq!(sig_layers(&b, "team/app", &app.digest).await.len(), 2);
    assert!(verify(&dir.join("stranger.pub"), &[]).0);
    let (signed, out, err) = with_password(
        "s3cret",
        &["sign", "--key", key_file.to_str().unwrap(), &image],
    );
    assert!(signed && out.contains("already there"), "{out}{err}");
    let layers = sig_layers(&b, "team/app", &app.digest).await;
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], *layer);

    // A key sealed in cosign's format by another implementation signs; a wrong password is
    // said plainly.
    ok(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "py.pem",
        ])
        .current_dir(dir));
    // cosign seals PKCS#8 (genpkey's DER output is SEC1 for EC keys).
    ok(Command::new("openssl")
        .args([
            "pkcs8", "-topk8", "-nocrypt", "-in", "py.pem", "-outform", "DER", "-out", "py.der",
        ])
        .current_dir(dir));
    ok(Command::new("openssl")
        .args([
            "pkey", "-inform", "DER", "-in", "py.der", "-pubout", "-out", "py.pub",
        ])
        .current_dir(dir));
    ok(Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/cosign_key.py"
        ))
        .args(["py.der", "other-pass", "py.key"])
        .current_dir(dir));
    let py_key = dir.join("py.key");
    let other = b.push_image("team/app", "v2", 2, 1).await;
    let image2 = format!("{}/team/app@{}", b.host(), other.digest);
    let (signed, _, err) = with_password(
        "wrong",
        &["sign", "--key", py_key.to_str().unwrap(), &image2],
    );
    assert!(!signed && err.contains("wrong password"), "{err}");
    let (verified, _, err) = rt.run(&[
        "verify",
        "--key",
        dir.join("py.pub").to_str().unwrap(),
        &image2,
    ]);
    assert!(!verified && err.contains("no signature"), "{err}");
    let (signed, _, err) = with_password(
        "other-pass",
        &["sign", "--key", py_key.to_str().unwrap(), &image2],
    );
    assert!(signed, "{err}");
    let (verified, _, err) = rt.run(&[
        "verify",
        "--key",
        dir.join("py.pub").to_str().unwrap(),
        &image2,
    ]);
    assert!(verified, "{err}");
}

#[tokio::test]
async fn an_enforcing_hub_serves_what_berth_signed_to_docker_and_berth_run() {
    let (Some(docker), Some(busybox)) = (
        crate::real_clients::Docker::get(),
        crate::real_clients::busybox(),
    ) else {
        return;
    };
    if tool("openssl").is_none() || !crate::runtime_pull::is_root() {
        return;
    }
    let rt = Runtime::new();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let prefix = dir.join("team");
    let env = |pw: &'static str| {
        let mut env: Vec<(String, String)> = rt.env.clone();
        env.push(("COSIGN_PASSWORD".into(), pw.into()));
        env
    };
    let berth_with = |env: &[(String, String)], args: &[&str]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::cli::berth(args, &env)
    };
    let (made, _, err) = berth_with(
        &env(""),
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(made, "{err}");
    let policy = format!(
        "[[trust.policy]]\nscope = \"signed\"\nmode = \"enforce\"\nkeys = [{:?}]\n",
        dir.join("team.pub").to_str().unwrap()
    );
    let (b, _config) = crate::policies::start_with_config(&policy, &[]);
    let image = format!("{}/signed/busybox:v1", b.host());
    crate::real_clients::docker_build(&docker, &busybox, "signed-by-berth", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    let (pulled, _, err) = docker.run(&["pull", &image]);
    assert!(!pulled && err.contains("denied"), "{err}");

    // The hub serves an unsigned manifest to nobody but names and describes it on HEAD: berth
    // signs by tag, under cosign's tag and as a referrer.
    let key = dir.join("team.key");
    let digest = b.head("/v2/signed/busybox/manifests/v1").await.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let by_digest = format!("{}/signed/busybox@{digest}", b.host());
    let (signed, out, err) =
        berth_with(&env(""), &["sign", "--key", key.to_str().unwrap(), &image]);
    assert!(signed && out.contains(&digest), "{out}{err}");
    let sig_tag = digest.replacen(':', "-", 1) + ".sig";
    assert_eq!(
        b.head(&format!("/v2/signed/busybox/manifests/{sig_tag}"))
            .await
            .status(),
        reqwest::StatusCode::OK
    );
    let referrers: Value = b
        .get(&format!("/v2/signed/busybox/referrers/{digest}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        referrers["manifests"][0]["artifactType"],
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "{referrers}"
    );

    docker.ok(&["pull", &image]);
    docker.ok(&["rmi", &image]);
    // berth run, with the same policy on the machine, pulls, verifies and runs it.
    let local = dir.join("policy.toml");
    std::fs::write(
        &local,
        format!(
            "[[trust.policy]]\nscope = \"{}/signed\"\nmode = \"enforce\"\nkeys = [\"team.pub\"]\n",
            b.host()
        ),
    )
    .unwrap();
    let mut rt = rt;
    rt.env
        .push(("BERTH_POLICY".into(), local.display().to_string()));
    let out = rt.ok(&["run", "--rm", &image]);
    assert!(out.starts_with("signed-by-berth\n"), "{out}");
    let (verified, out, _) = rt.run(&["verify", "--policy", local.to_str().unwrap(), &by_digest]);
    assert!(verified && out.contains(&digest), "{out}");
}

/// A berth `key generate` pair `NAME.key` / `NAME.pub` in `dir`, with an empty password.
fn berth_keypair(rt: &Runtime, dir: &Path, name: &str) {
    let mut env: Vec<(&str, &str)> = rt
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("COSIGN_PASSWORD", ""));
    let prefix = dir.join(name);
    let (made, _, err) = crate::cli::berth(
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
        &env,
    );
    assert!(made, "{err}");
}

#[tokio::test]
async fn docker_cannot_push_a_tag_onto_an_unsigned_image_where_the_policy_requires_signing() {
    let (Some(docker), Some(busybox)) = (
        crate::real_clients::Docker::get(),
        crate::real_clients::busybox(),
    ) else {
        return;
    };
    let rt = Runtime::new();
    let keys = tempfile::tempdir().unwrap();
    berth_keypair(&rt, keys.path(), "team");
    let policy = format!(
        "[[trust.policy]]\nscope = \"signed\"\nmode = \"enforce\"\nkeys = [{:?}]\nrequire_signature_for_tags = true\n",
        keys.path().join("team.pub").to_str().unwrap()
    );
    let (b, _config) = crate::policies::start_with_config(&policy, &[]);
    let image = format!("{}/signed/app:v1", b.host());
    crate::real_clients::docker_build(&docker, &busybox, "tagged-late", &image);
    let (pushed, out, err) = docker.run(&["push", &image]);
    assert!(!pushed, "{out}");
    assert!(
        err.contains("denied")
            && err.contains("tag push refused by trust policy \"signed\"")
            && err.contains("push the manifest by digest, sign it, then tag it"),
        "{err}"
    );
    // The refusal names no tag that exists: nothing was tagged.
    assert_eq!(
        b.get("/v2/signed/app/manifests/v1").await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sign_then_tag_works_robots_are_exempt_and_verdicts_reach_webhooks_and_metrics() {
    if tool("openssl").is_none() {
        return;
    }
    let hook = crate::events::Receiver::start(0, &[]).await;
    let rt = Runtime::new();
    let keys = tempfile::tempdir().unwrap();
    berth_keypair(&rt, keys.path(), "team");
    let config = keys.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[[trust.policy]]\nscope = \"acme\"\nmode = \"enforce\"\nkeys = [{:?}]\n\
             require_signature_for_tags = true\nexempt_robots = true\n\n\
             [webhooks]\npoll_interval_ms = 100\n\n\
             [[webhooks.hook]]\nname = \"trust\"\nurl = \"{}\"\nscope = \"acme\"\nevents = [\"trust\"]\n",
            keys.path().join("team.pub").to_str().unwrap(),
            hook.url()
        ),
    )
    .unwrap();
    let b = crate::auth::start_with_auth(&[("BERTH_CONFIG", config.to_str().unwrap())]);
    b.admin_ok(&["org", "add", "acme"], "");
    let secret = crate::auth::create_token(&b, "acme", "ci", "acme/*:pull,push");

    // Pushed by digest: allowed, and nothing is tagged.
    let cfg = b
        .push_blob_typed("acme/app", br#"{"seed":1}"#, crate::client::OCI_CONFIG)
        .await;
    let layer = b.push_blob("acme/app", b"a layer of acme/app").await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::client::OCI_MANIFEST,
        "config": cfg.descriptor(),
        "layers": [layer.descriptor()],
    })
    .to_string()
    .into_bytes();
    let digest = crate::harness::sha256(&manifest);
    let put = |reference: String, auth: Option<String>| {
        let mut req = reqwest::Client::new()
            .put(b.url(&format!("/v2/acme/app/manifests/{reference}")))
            .header("content-type", crate::client::OCI_MANIFEST)
            .body(manifest.clone());
        req = match auth {
            Some(robot) => req.header("authorization", robot),
            None => req.header(
                "authorization",
                crate::auth::basic_header("root", crate::auth::ADMIN_PASSWORD),
            ),
        };
        req.send()
    };
    assert_eq!(
        put(digest.clone(), None).await.unwrap().status(),
        reqwest::StatusCode::CREATED
    );
    // Tagged before it is signed: refused, naming the policy and the way.
    let resp = put("v1".into(), None).await.unwrap();
    let body = crate::client::expect_error(resp, reqwest::StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("tag push refused by trust policy \"acme\"")
            && message.contains("no signature")
            && message.contains("sign it, then tag it"),
        "{message}"
    );
    // The CI robot is exempt where the policy says so.
    let robot = crate::auth::basic_header("acme+ci", &secret);
    assert_eq!(
        put("ci-build".into(), Some(robot)).await.unwrap().status(),
        reqwest::StatusCode::CREATED
    );

    // Signed with berth sign (the hub shows the unsigned manifest to nobody but the robot,
    // so by digest), then tagged.
    let mut login = Command::new(env!("CARGO_BIN_EXE_berth"));
    login
        .args(["login", "-u", "root", "--password-stdin", &b.host()])
        .envs(rt.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", crate::auth::ADMIN_PASSWORD).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let mut env: Vec<(&str, &str)> = rt
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("COSIGN_PASSWORD", ""));
    let (signed, out, err) = crate::cli::berth(
        &[
            "sign",
            "--key",
            keys.path().join("team.key").to_str().unwrap(),
            &format!("{}/acme/app@{digest}", b.host()),
        ],
        &env,
    );
    assert!(signed, "{out}{err}");
    assert_eq!(
        put("v1".into(), None).await.unwrap().status(),
        reqwest::StatusCode::CREATED
    );

    // Webhooks heard the first verdict and its change.
    let got = hook.wait_for(2).await;
    let events: Vec<Value> = got.iter().map(|r| r.json()).collect();
    assert!(
        events.iter().all(|e| e["type"] == "dev.berth.trust.verdict"
            && e["data"]["action"] == "trust.verdict"
            && e["data"]["digest"] == digest.as_str()),
        "{events:?}"
    );
    let with_status = |status: &str| {
        events
            .iter()
            .find(|e| e["data"]["detail"]["status"] == status)
            .unwrap_or_else(|| panic!("no {status} event in {events:?}"))
    };
    assert_eq!(
        with_status("unsigned")["data"]["detail"]["previous"],
        Value::Null
    );
    assert_eq!(with_status("unsigned")["data"]["detail"]["policy"], "acme");
    assert_eq!(
        with_status("verified")["data"]["detail"]["previous"],
        "unsigned"
    );

    // The metrics count verdicts and refusals.
    assert_eq!(
        b.get(&format!("/v2/acme/app/manifests/{digest}"))
            .await
            .status(),
        reqwest::StatusCode::OK,
        "signed now"
    );
    let m = crate::metrics::scrape(&b).await;
    let verdicts = |v: &str| {
        m.get("berth_trust_verdicts_total", &[("verdict", v)])
            .unwrap_or_else(|| panic!("no {v} series"))
    };
    assert!(verdicts("unsigned") >= 1.0);
    assert!(verdicts("verified") >= 1.0);
    assert_eq!(verdicts("invalid"), 0.0);
    assert_eq!(
        m.get(
            "berth_trust_refusals_total",
            &[("mode", "enforce"), ("request", "tag_push")]
        ),
        Some(1.0)
    );
    let before = m
        .get(
            "berth_trust_refusals_total",
            &[("mode", "enforce"), ("request", "pull")],
        )
        .unwrap();
    // Another manifest, pushed by digest and never signed: its pull is refused.
    let cfg2 = b
        .push_blob_typed("acme/app", br#"{"seed":2}"#, crate::client::OCI_CONFIG)
        .await;
    let unsigned = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::client::OCI_MANIFEST,
        "config": cfg2.descriptor(),
        "layers": [layer.descriptor()],
    })
    .to_string();
    let unsigned_digest = crate::harness::sha256(unsigned.as_bytes());
    let resp = b
        .put_manifest(
            "acme/app",
            &unsigned_digest,
            crate::client::OCI_MANIFEST,
            unsigned.as_bytes(),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    assert_eq!(
        b.get(&format!("/v2/acme/app/manifests/{unsigned_digest}"))
            .await
            .status(),
        reqwest::StatusCode::FORBIDDEN
    );
    let m = crate::metrics::scrape(&b).await;
    assert_eq!(
        m.get(
            "berth_trust_refusals_total",
            &[("mode", "enforce"), ("request", "pull")]
        ),
        Some(before + 1.0)
    );
}
