//! HTTPS served by berth itself: a CA made for each test, clients that trust only it, HTTP/2
//! through ALPN, a renewed certificate picked up without a restart, unusable files refused at
//! start, and docker and skopeo trusting the CA the way their users set it up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::{StatusCode, Version};
use serde_json::Value;

use crate::cli::berth;
use crate::client::OCI_MANIFEST;
use crate::harness::{Berth, random_bytes, sha256};
use crate::real_clients::{Docker, busybox, docker_build, ok, push_multi_platform, run, skopeo};

/// A certificate authority made for one test.
pub(crate) struct TestCa {
    /// Its certificate, PEM: what clients are told to trust.
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`: (chain PEM, key PEM). The chain
    /// carries the CA after the server certificate, as a real chain carries intermediates.
    pub(crate) fn issue(&self) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "berth test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (format!("{}{}", cert.pem(), self.pem), key.serialize_pem())
    }

    /// A client that trusts this CA and nothing else; it offers HTTP/2 and HTTP/1.1.
    pub(crate) fn client(&self) -> reqwest::Client {
        self.builder().build().unwrap()
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        // The harness installs ring as rustls' provider when it starts berth; a client built
        // before any berth needs it too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
    }
}

/// The certificate and key files berth is configured with.
pub(crate) struct TlsFiles {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    pub(crate) fn new(ca: &TestCa) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        files.write(&ca.issue());
        files
    }

    /// Overwrites both files in place, key first, as a renewal script would.
    fn write(&self, (cert, key): &(String, String)) {
        std::fs::write(&self.key, key).unwrap();
        std::fs::write(&self.cert, cert).unwrap();
    }

    fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("BERTH_TLS_CERT_FILE", self.cert.to_str().unwrap()),
            ("BERTH_TLS_KEY_FILE", self.key.to_str().unwrap()),
        ]
    }
}

/// Starts berth serving HTTPS with a certificate from `ca`; its `http` client trusts `ca`.
pub(crate) fn start_https(ca: &TestCa, files: &TlsFiles, extra: &[(&str, &str)]) -> Berth {
    let env: Vec<(&str, &str)> = files
        .env()
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let mut b = Berth::start_with(&env);
    b.http = ca.client();
    b.scheme = "https";
    b
}

/// Polls `check` every 100 ms until it returns true or `within` has passed.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a `GET /v2/` with `client` to `url` answers 200.
async fn answers(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

/// Pushes a blob and a manifest through `b.http` and reads both back.
async fn push_and_pull(b: &Berth, repo: &str, seed: u64) {
    let manifest = b.push_image(repo, "v1", seed, 2).await;
    let resp = b.get(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        manifest.bytes.as_slice()
    );
    let parsed: Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = parsed["layers"][1]["digest"].as_str().unwrap();
    let resp = b.get(&format!("/v2/{repo}/blobs/{layer}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.as_ref(), random_bytes(1001, seed * 100 + 1));
    assert_eq!(sha256(&body), layer);
}

#[tokio::test]
async fn https_with_http2_through_alpn_and_http1_otherwise() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let mut b = start_https(&ca, &files, &[]);
    assert!(b.logs().contains(&format!("https://{}/v2/", b.addr)));

    // A client offering both protocols gets HTTP/2; the API answers as over HTTP/1.1.
    let resp = b.get("/v2/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // Browsers are told to come back over HTTPS only, for a year (the default).
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    push_and_pull(&b, "tls/h2", 1).await;
    // By name as well as by address: the certificate names both.
    let by_name = format!("https://localhost:{}/v2/", b.addr.port());
    assert!(answers(&b.http, &by_name).await);

    // A client offering only HTTP/1.1 gets it.
    b.http = ca.builder().http1_only().build().unwrap();
    let resp = b.get("/v2/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    push_and_pull(&b, "tls/h1", 2).await;

    // The port speaks only TLS: plain HTTP fails, and so does a client trusting another CA.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v2/", b.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    let stranger = TestCa::new("another CA").client();
    let e = stranger.get(b.url("/v2/")).send().await.unwrap_err();
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");

    // Still serving after all that.
    assert!(answers(&ca.client(), &b.url("/v2/")).await);
}

// Two threads: the client's connection task must answer the server's GOAWAY ping while the
// test thread blocks waiting for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_idle_http2_connections_with_a_goaway() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let mut b = start_https(
        &ca,
        &files,
        &[
            ("BERTH_SERVER_SHUTDOWN_DRAIN_SECS", "1"),
            ("BERTH_SERVER_SHUTDOWN_TIMEOUT_SECS", "60"),
        ],
    );
    let resp = b.get("/v2/").await;
    assert_eq!(resp.version(), Version::HTTP_2);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(b.pid().unwrap().to_string())
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: still answered on the open connection, without HTTP/1's Connection header.
    let resp = b.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert!(resp.headers().get("connection").is_none());
    // The idle connection, still pooled by the client, does not hold the exit until the
    // shutdown timeout: the GOAWAY ends it once the listener closes.
    assert!(
        b.terminate(Duration::from_secs(15)),
        "berth did not exit promptly:\n{}",
        b.logs()
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_used_without_a_restart() {
    let old_ca = TestCa::new("old CA");
    let files = TlsFiles::new(&old_ca);
    let b = start_https(&old_ca, &files, &[("BERTH_TLS_RELOAD_INTERVAL_SECS", "1")]);
    let url = b.url("/v2/");
    // This client's connection opens now and stays open (pooled) across the renewal.
    let kept = old_ca.client();
    assert!(answers(&kept, &url).await);

    // A broken file is logged and the certificate in use stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let logged = eventually(Duration::from_secs(15), async || {
        b.logs().contains("keeping the previous certificate")
    })
    .await;
    assert!(logged, "no warning about the broken certificate file");
    assert!(answers(&old_ca.client(), &url).await);

    // The renewal: a certificate from another CA.
    let new_ca = TestCa::new("new CA");
    files.write(&new_ca.issue());
    let renewed = eventually(Duration::from_secs(15), async || {
        answers(&new_ca.client(), &url).await
    })
    .await;
    assert!(
        renewed,
        "the new certificate was not picked up:\n{}",
        b.logs()
    );
    assert!(b.logs().contains("loaded the changed TLS certificate"));
    // New connections get the new certificate only...
    assert!(!answers(&old_ca.client(), &url).await);
    // ...while the connection opened before goes on (a new one from this client would fail,
    // as the line above shows).
    assert!(answers(&kept, &url).await);
}

#[tokio::test]
async fn hsts_max_age_is_configurable_and_zero_turns_it_off() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let b = start_https(&ca, &files, &[("BERTH_TLS_HSTS_MAX_AGE_SECS", "600")]);
    let resp = b.get("/ui/login").await;
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=600");
    let b = start_https(&ca, &files, &[("BERTH_TLS_HSTS_MAX_AGE_SECS", "0")]);
    let resp = b.get("/v2/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("strict-transport-security").is_none());
    // Never over plain HTTP (RFC 6797 section 7.2: browsers ignore it there anyway).
    let plain = Berth::start();
    let resp = plain.get("/v2/").await;
    assert!(resp.headers().get("strict-transport-security").is_none());
}

#[test]
fn unusable_tls_files_stop_the_start_readably() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let serve = |env: &[(&str, &str)]| {
        let (ok, _, err) = berth(&args, env);
        assert!(!ok, "berth started with {env:?}");
        err
    };
    let cert = files.cert.to_str().unwrap();
    let key = files.key.to_str().unwrap();

    let missing = dir.path().join("missing.pem");
    let err = serve(&[
        ("BERTH_TLS_CERT_FILE", missing.to_str().unwrap()),
        ("BERTH_TLS_KEY_FILE", key),
    ]);
    assert!(
        err.contains("cannot read TLS certificate file") && err.contains("missing.pem"),
        "{err}"
    );

    // The certificate where the key belongs.
    let err = serve(&[("BERTH_TLS_CERT_FILE", cert), ("BERTH_TLS_KEY_FILE", cert)]);
    assert!(
        err.contains("no private key") && err.contains("cert.pem"),
        "{err}"
    );

    // Another certificate's key.
    let other = dir.path().join("other-key.pem");
    std::fs::write(&other, ca.issue().1).unwrap();
    let err = serve(&[
        ("BERTH_TLS_CERT_FILE", cert),
        ("BERTH_TLS_KEY_FILE", other.to_str().unwrap()),
    ]);
    assert!(
        err.contains("cannot serve the certificate") && err.contains("other-key.pem"),
        "{err}"
    );

    let err = serve(&[("BERTH_TLS_CERT_FILE", cert)]);
    assert!(err.contains("must be set together"), "{err}");
}

/// Docker's trust in a private CA for one registry: `/etc/docker/certs.d/HOST:PORT/ca.crt`,
/// removed when dropped, also when the test fails.
struct DockerTrust {
    dir: PathBuf,
    /// Whether `certs.d` itself was made here (then it goes too, if nothing else is in it).
    made_certs_d: bool,
}

impl DockerTrust {
    const CERTS_D: &str = "/etc/docker/certs.d";

    fn install(host: &str, ca: &TestCa) -> Self {
        let certs_d = Path::new(Self::CERTS_D);
        let trust = Self {
            dir: certs_d.join(host),
            made_certs_d: !certs_d.exists(),
        };
        std::fs::create_dir_all(&trust.dir).unwrap();
        std::fs::write(trust.dir.join("ca.crt"), &ca.pem).unwrap();
        trust
    }
}

impl Drop for DockerTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_certs_d {
            // Fails, as it should, when another registry's directory appeared meanwhile.
            let _ = std::fs::remove_dir(Self::CERTS_D);
        }
    }
}

#[tokio::test]
async fn docker_pushes_and_pulls_over_https() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let ca = TestCa::new("berth docker test CA");
    let files = TlsFiles::new(&ca);
    // Passwords and tokens cross the wire here, so this is the setup docker login is for:
    // HTTPS with authentication on.
    let b = start_https(&ca, &files, &[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "tess", "--password-stdin"],
        "tess-password-1\n",
    );
    let _trust = DockerTrust::install(&b.host(), &ca);
    let image = format!("{}/tess/busybox:v1", b.host());
    docker_build(&docker, &busybox, "hello over https", &image);

    // The challenge sends docker to the token endpoint over HTTPS.
    let resp = ca.client().get(b.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"https://{}/token\"", b.host())),
        "{challenge}"
    );
    let (pushed, _, _) = docker.run(&["push", &image]);
    assert!(!pushed, "pushed without logging in");

    // berth's port speaks only TLS, so a login and push that land went over HTTPS. (Docker
    // counts 127.0.0.0/8 as an insecure registry: there it speaks HTTPS without checking the
    // certificate, so certs.d is set up as a user would but only proves itself on other
    // addresses. The skopeo test below shows the certificate verifying against the CA.)
    docker.login(&b.host(), "tess", "tess-password-1");
    docker.ok(&["push", &image]);
    let resp = ca
        .client()
        .get(b.url("/v2/tess/busybox/manifests/v1"))
        .basic_auth("tess", Some("tess-password-1"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    docker.ok(&["rmi", &image]);
    docker.ok(&["pull", &image]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out, "hello over https\ndoomed-is-gone\n");
    docker.ok(&["rmi", &image]);
    docker.ok(&["logout", &b.host()]);
    let (pulled, _, _) = docker.run(&["pull", &image]);
    assert!(!pulled, "a private image pulled after logging out");
}

#[tokio::test]
async fn skopeo_copies_and_inspects_over_https_with_a_cert_dir() {
    let Some(_) = skopeo() else { return };
    let ca = TestCa::new("berth skopeo test CA");
    let files = TlsFiles::new(&ca);
    let b = start_https(&ca, &files, &[]);
    let (index, _) = push_multi_platform(&b, "src/multi", "v1").await;
    let certs = tempfile::tempdir().unwrap();
    std::fs::write(certs.path().join("ca.crt"), &ca.pem).unwrap();
    let cert_dir = certs.path().to_str().unwrap();
    let from = format!("docker://{}/src/multi:v1", b.host());
    let to = format!("docker://{}/dst/multi:v1", b.host());

    // Without the CA skopeo refuses the certificate: it verifies, and it speaks TLS here.
    let (trusted, _, err) = run(skopeo().unwrap().args(["inspect", "--raw", &from]));
    assert!(!trusted, "skopeo trusted a certificate from an unknown CA");
    assert!(err.contains("certificate"), "{err}");

    ok(skopeo().unwrap().args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-cert-dir",
        cert_dir,
        "--dest-cert-dir",
        cert_dir,
        &from,
        &to,
    ]));
    let out = ok(skopeo()
        .unwrap()
        .args(["inspect", "--cert-dir", cert_dir, &to]));
    let inspected: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspected["Digest"], index.digest.as_str());
    let raw = ok(skopeo()
        .unwrap()
        .args(["inspect", "--raw", "--cert-dir", cert_dir, &to]));
    assert_eq!(raw.as_bytes(), index.bytes.as_slice());
}

#[tokio::test]
async fn web_ui_cookies_are_secure_over_https() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let b = start_https(&ca, &files, &[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "alice", "--password-stdin"],
        "alice-password-1\n",
    );
    // Over HTTP/2: the host comes from :authority, the scheme from the TLS connection.
    let form = b.get("/ui/login").await;
    assert_eq!(form.version(), Version::HTTP_2);
    let pre = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        pre.starts_with("__Host-berth_csrf=") && pre.ends_with("; Secure"),
        "{pre}"
    );
    let page = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = &page[start..start + page[start..].find('"').unwrap()];
    let cookie = pre.split(';').next().unwrap();
    let signed_in = b
        .http
        .post(b.url("/ui/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf", csrf),
                    ("username", "alice"),
                    ("password", "alice-password-1"),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("__Host-berth_session=")
            && session.contains("HttpOnly")
            && session.ends_with("; Secure"),
        "{session}"
    );
    // Over HTTPS only the prefixed cookie counts: the same secret under the plain name (which
    // a plain-HTTP page or a sibling subdomain could have planted) signs nobody in.
    let pair = session.split(';').next().unwrap();
    let secret = pair.split_once('=').unwrap().1;
    let account = |cookie: String| {
        b.http
            .get(b.url("/ui/account"))
            .header("cookie", cookie)
            .send()
    };
    let signed_in = account(format!("__Host-berth_session={secret}"))
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let planted = account(format!("berth_session={secret}")).await.unwrap();
    assert_eq!(planted.status(), StatusCode::SEE_OTHER);
}
