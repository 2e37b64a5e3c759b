//! Pull-through caches (`[[proxy.upstream]]`): Debian's `docker-registry` (CNCF Distribution
//! 2.8) on loopback as the upstream, anonymous or behind htpasswd Basic auth, and berth itself
//! as an upstream speaking the Docker token flow. A missing `docker-registry` fails in CI and
//! skips elsewhere.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, expect_error};
use crate::harness::{Berth, random_bytes, sha256, tool};
use crate::policies::start_with_config;
use crate::real_clients::{Docker, busybox, docker_build};

/// A `docker-registry` process on 127.0.0.1 with its own storage, killed when dropped.
struct Distribution {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// A client sending the first user's credentials, if the registry has users.
    http: reqwest::Client,
}

impl Distribution {
    /// Starts one, with htpasswd Basic auth when `users` are given; `None` (a skip) outside
    /// CI when the binary is missing.
    fn start(users: &[(&str, &str)]) -> Option<Self> {
        let bin = tool("docker-registry")?;
        // The tests' reqwest has no bundled TLS provider (see `Berth::start_at`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-tests\n",
            dir.path().join("data").display()
        );
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((user, password)) = users.first() {
            let lines: String = users
                .iter()
                .map(|(u, p)| {
                    let hash = bcrypt::hash_with_result(p, 4)
                        .expect("bcrypt")
                        .format_for_version(bcrypt::Version::TwoA);
                    format!("{u}:{hash}\n")
                })
                .collect();
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, lines).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-tests\n    path: {}\n",
                file.display()
            ));
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Basic {basic}").parse().expect("header"),
            );
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).expect("config");
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let d = Self {
            child: Some(child),
            port,
            dir,
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client"),
        };
        d.wait_until_up();
        Some(d)
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, as docker names it.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it, as an upstream outage.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Where it keeps a blob's bytes.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Uploads a blob (`POST`, then `PUT ?digest=`).
    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let started = self
            .http
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.url()))
            .send()
            .await
            .expect("start upload");
        assert_eq!(started.status(), StatusCode::ACCEPTED);
        let location = started.headers()["location"].to_str().expect("location");
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location.to_owned()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = self
            .http
            .put(format!("{location}{sep}digest={digest}"))
            .body(data.to_vec())
            .send()
            .await
            .expect("finish upload");
        assert_eq!(
            done.status(),
            StatusCode::CREATED,
            "{:?}",
            done.text().await
        );
        digest
    }

    /// Puts a manifest under `reference`; returns its digest.
    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let resp = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.url()))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest");
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{:?}",
            resp.text().await
        );
        sha256(body)
    }

    /// Pushes an image whose layers have the given sizes, tagged `tag` (or by digest when
    /// `tag` is `None`).
    async fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        seed: u64,
        layers: &[usize],
    ) -> Image {
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
        let mut blobs = vec![(self.push_blob(repo, &config).await, config)];
        let mut descriptors = Vec::new();
        for (i, size) in layers.iter().enumerate() {
            let data = random_bytes(*size, seed * 100 + i as u64);
            let digest = self.push_blob(repo, &data).await;
            descriptors.push(json!({"mediaType": OCI_LAYER, "digest": digest, "size": data.len()}));
            blobs.push((digest, data));
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": blobs[0].0, "size": blobs[0].1.len()},
            "layers": descriptors,
        }))
        .expect("json");
        let digest = sha256(&manifest);
        self.put_manifest(repo, tag.unwrap_or(&digest), OCI_MANIFEST, &manifest)
            .await;
        Image {
            digest,
            manifest,
            blobs,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An image pushed to an upstream.
struct Image {
    digest: String,
    manifest: Vec<u8>,
    /// (digest, bytes) of the config, then of each layer.
    blobs: Vec<(String, Vec<u8>)>,
}

/// `[[proxy.upstream]]` entries, one per (namespace, extra TOML lines).
fn proxy_config(entries: &[(&str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(namespace, url, extra)| {
            format!("[[proxy.upstream]]\nnamespace = \"{namespace}\"\nurl = \"{url}\"\n{extra}\n")
        })
        .collect()
}

/// `GET` through berth: status, `Docker-Content-Digest` and body.
async fn fetch(b: &Berth, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let resp = b
        .http
        .get(b.url(path))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .expect("get");
    let status = resp.status();
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().expect("digest").to_owned());
    (status, digest, resp.bytes().await.expect("body").to_vec())
}

/// Removes the test's image names from the shared daemon, also when the test fails.
struct Untag<'a, const N: usize>(&'a Docker, [String; N]);

impl<const N: usize> Drop for Untag<'_, N> {
    fn drop(&mut self) {
        for image in &self.1 {
            let _ = self.0.run(&["rmi", image]);
        }
    }
}

#[tokio::test]
async fn docker_pulls_through_the_cache_revalidates_and_survives_the_upstream_going_away() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let Some(mut upstream) = Distribution::start(&[]) else {
        return;
    };
    let (b, _config) = start_with_config(
        &proxy_config(&[("hub", &upstream.url(), "manifest_ttl_secs = 1")]),
        &[],
    );
    let pushed = format!("{}/library/busybox:v1", upstream.host());
    let cached = format!("{}/hub/library/busybox:v1", b.host());
    let _cleanup = Untag(&docker, [pushed.clone(), cached.clone()]);
    docker_build(&docker, &busybox, "hello from upstream", &pushed);
    docker.ok(&["push", &pushed]);
    // Only the upstream has the image now.
    docker.ok(&["rmi", &pushed]);

    docker.ok(&["pull", &cached]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &cached]);
    assert_eq!(out, "hello from upstream\ndoomed-is-gone\n");
    // The daemon may hold some layers already (other images share busybox): fetch what it
    // skipped, as a client without them would.
    assert!(b.pulls("hub/library/busybox", "v1").await);
    let first = fetch(&b, "/v2/hub/library/busybox/manifests/v1").await;
    assert_eq!(first.0, StatusCode::OK);
    let upstream_digest = upstream
        .http
        .head(format!(
            "{}/v2/library/busybox/manifests/v1",
            upstream.url()
        ))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap()
        .headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.1.as_deref(), Some(upstream_digest.as_str()));
    docker.ok(&["rmi", &cached]);

    // A new image under the same tag upstream: after the TTL, the next pull gets it.
    docker_build(&docker, &busybox, "second edition", &pushed);
    docker.ok(&["push", &pushed]);
    docker.ok(&["rmi", &pushed]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    docker.ok(&["pull", &cached]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &cached]);
    assert_eq!(out, "second edition\ndoomed-is-gone\n");
    assert!(b.pulls("hub/library/busybox", "v1").await);
    let second = fetch(&b, "/v2/hub/library/busybox/manifests/v1").await;
    assert_ne!(second.1, first.1, "the tag moved to the new manifest");
    docker.ok(&["rmi", &cached]);

    // The upstream goes away: the cache still serves everything it holds.
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    docker.ok(&["pull", &cached]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &cached]);
    assert_eq!(out, "second edition\ndoomed-is-gone\n");
    assert!(b.pulls("hub/library/busybox", "v1").await);
    assert!(
        b.logs().contains("serving the cached manifest"),
        "the outage is logged"
    );
    docker.ok(&["rmi", &cached]);
}

#[tokio::test]
async fn two_upstreams_serve_what_their_patterns_admit_and_pushes_go_elsewhere() {
    let (Some(mut a), Some(q)) = (Distribution::start(&[]), Distribution::start(&[])) else {
        return;
    };
    // A layer of several chunks (and several S3 parts on that backend).
    let alpha = a
        .push_image("library/alpha", Some("1"), 1, &[12 << 20, 1000])
        .await;
    let beta = q.push_image("team/sub/beta", Some("1"), 2, &[2000]).await;
    q.push_image("other/gamma", Some("1"), 3, &[3000]).await;
    let (b, _config) = start_with_config(
        &proxy_config(&[
            ("hub", &a.url(), r#"repositories = ["library/*"]"#),
            ("quay", &q.url(), r#"repositories = ["team/**"]"#),
        ]),
        &[],
    );

    let (status, digest, body) = fetch(&b, "/v2/hub/library/alpha/manifests/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(digest.as_deref(), Some(alpha.digest.as_str()));
    assert_eq!(body, alpha.manifest, "the upstream's exact bytes");

    // HEAD of a blob not fetched yet: answered from the upstream.
    let (big, big_bytes) = &alpha.blobs[1];
    let path = format!("/v2/hub/library/alpha/blobs/{big}");
    let head = b.head(&path).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "12582912");
    // Two clients at once, one asking for a range: both get the whole blob, verified.
    let ranged = b
        .http
        .get(b.url(&path))
        .header("range", "bytes=100-")
        .send();
    let (plain, ranged) = tokio::join!(b.get(&path), ranged);
    let ranged = ranged.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        ranged.status(),
        StatusCode::OK,
        "a range is not served on a miss"
    );
    assert_eq!(plain.bytes().await.unwrap().as_ref(), big_bytes.as_slice());
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), big_bytes.as_slice());
    for (digest, bytes) in &alpha.blobs {
        let (status, _, body) = fetch(&b, &format!("/v2/hub/library/alpha/blobs/{digest}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body, bytes);
    }
    // Now local: ranges are honoured, and the upstream is not needed.
    a.stop();
    let resp = b
        .http
        .get(b.url(&path))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &big_bytes[100..200]);
    assert!(b.pulls("hub/library/alpha", "1").await);

    // The second upstream, with a nested name.
    assert!(b.pulls("quay/team/sub/beta", "1").await);
    let (_, digest, _) = fetch(&b, "/v2/quay/team/sub/beta/manifests/1").await;
    assert_eq!(digest.as_deref(), Some(beta.digest.as_str()));
    // Not admitted by the patterns, or not upstream at all.
    expect_error(
        b.get("/v2/quay/other/gamma/manifests/1").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    expect_error(
        b.get("/v2/quay/team/nothing/manifests/1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // The first upstream is down and this was never cached.
    expect_error(
        b.get("/v2/hub/library/other/manifests/1").await,
        StatusCode::BAD_GATEWAY,
        "UNKNOWN",
    )
    .await;

    // Pushes into a mirrored namespace are refused; elsewhere they work as ever.
    let resp = b
        .http
        .post(b.url("/v2/hub/library/alpha/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(body.to_string().contains("pull-through cache"), "{body}");
    let resp = b
        .put_manifest("hub/library/alpha", "2", OCI_MANIFEST, &alpha.manifest)
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    let own = b.push_image("team/app", "v1", 7, 2).await;
    let (status, digest, _) = fetch(&b, "/v2/team/app/manifests/v1").await;
    assert_eq!((status, digest), (StatusCode::OK, Some(own.digest)));

    let catalog: Value = b.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(
        catalog["repositories"],
        json!(["hub/library/alpha", "quay/team/sub/beta", "team/app"])
    );
}

#[tokio::test]
async fn index_children_are_fetched_when_asked_for_and_survive_scrub_and_gc() {
    let Some(mut up) = Distribution::start(&[]) else {
        return;
    };
    let amd = up.push_image("library/multi", None, 1, &[4000]).await;
    let arm = up.push_image("library/multi", None, 2, &[5000]).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": amd.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": arm.manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let index_digest = up
        .put_manifest("library/multi", "latest", OCI_INDEX, &index)
        .await;
    let (b, _config) = start_with_config(
        &proxy_config(&[("hub", &up.url(), "")]),
        &[("BERTH_GC_ENABLED", "false")],
    );
    // A client pulling one platform: the index, then that child and its blobs.
    let (status, digest, body) = fetch(&b, "/v2/hub/library/multi/manifests/latest").await;
    assert_eq!((status, digest), (StatusCode::OK, Some(index_digest)));
    assert_eq!(body, index);
    assert!(b.pulls("hub/library/multi", &amd.digest).await);

    // The arm64 child was never asked for: scrub does not count it as a dangling reference.
    let (ok, out, err) = b.cli(&["scrub"], &[]);
    assert!(ok, "scrub found problems:\n{out}\n{err}");
    // Garbage collection keeps the cached image (the child and its blobs through the index).
    b.gc(
        &["--review-delay", "0"],
        &[
            ("BERTH_GC_COLLECT_UNTAGGED", "true"),
            ("BERTH_GC_TAG_HISTORY_SECS", "0"),
        ],
    );
    up.stop();
    assert!(b.pulls("hub/library/multi", &amd.digest).await);
    let (status, _, _) = fetch(&b, "/v2/hub/library/multi/manifests/latest").await;
    assert_eq!(status, StatusCode::OK);
    // What was never fetched cannot be served without the upstream.
    let (status, _, _) = fetch(
        &b,
        &format!("/v2/hub/library/multi/manifests/{}", arm.digest),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_blob_that_fails_verification_reaches_neither_the_store_nor_the_client_whole() {
    let Some(mut up) = Distribution::start(&[]) else {
        return;
    };
    let image = up.push_image("library/bad", Some("1"), 5, &[1 << 20]).await;
    let (layer, bytes) = &image.blobs[1];
    // Damage the upstream's copy, keeping its length (Distribution does not re-hash on reads).
    let mut damaged = bytes.clone();
    damaged[1000] ^= 0xff;
    std::fs::write(up.blob_file(layer), &damaged).unwrap();
    let (b, _config) = start_with_config(&proxy_config(&[("hub", &up.url(), "")]), &[]);

    let path = format!("/v2/hub/library/bad/blobs/{layer}");
    let resp = b.get(&path).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "headers go out before the bytes"
    );
    assert!(
        resp.bytes().await.is_err(),
        "the body breaks off rather than completing with the wrong bytes"
    );
    // Nothing was stored: once the upstream is gone, the blob cannot be served.
    up.stop();
    for _ in 0..50 {
        if b.logs().contains("blob from the upstream not stored") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.logs().contains("blob from the upstream not stored"));
    assert_eq!(b.head(&path).await.status(), StatusCode::BAD_GATEWAY);
    assert!(
        b.stored_objects()
            .iter()
            .all(|key| b.read_object(key) != damaged),
        "the damaged bytes are nowhere in storage"
    );
}

#[tokio::test]
async fn an_upstream_behind_basic_auth_needs_the_right_password() {
    let Some(up) = Distribution::start(&[("mirror", "upstream-secret-1")]) else {
        return;
    };
    let image = up
        .push_image("library/private", Some("1"), 9, &[3000])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "upstream-secret-1\n").unwrap();
    let (b, _config) = start_with_config(
        &proxy_config(&[
            (
                "good",
                &up.url(),
                &format!(
                    "username = \"mirror\"\npassword_file = \"{}\"",
                    password_file.display()
                ),
            ),
            (
                "bad",
                &up.url(),
                "username = \"mirror\"\npassword = \"wrong-password\"",
            ),
            ("anon", &up.url(), ""),
        ]),
        &[],
    );
    assert!(b.pulls("good/library/private", "1").await);
    let (_, digest, _) = fetch(&b, "/v2/good/library/private/manifests/1").await;
    assert_eq!(digest.as_deref(), Some(image.digest.as_str()));
    for ns in ["bad", "anon"] {
        let resp = b
            .get(&format!("/v2/{ns}/library/private/manifests/1"))
            .await;
        let body = expect_error(resp, StatusCode::BAD_GATEWAY, "UNKNOWN").await;
        assert!(body.to_string().contains("refused access"), "{body}");
    }
    let logs = b.logs();
    assert!(!logs.contains("upstream-secret-1") && !logs.contains("wrong-password"));
}

#[tokio::test]
async fn berth_as_a_token_authenticated_upstream_anonymously_and_with_credentials() {
    const ROOT: &str = "root-password-1";
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let as_root = |b: &mut Berth| {
        b.admin_ok(
            &["user", "add", "root", "--admin", "--password-stdin"],
            &format!("{ROOT}\n"),
        );
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            basic("root", ROOT).parse().unwrap(),
        );
        b.http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
    };
    let mut up = Berth::start_with(&[("BERTH_AUTH_ENABLED", "true")]);
    as_root(&mut up);
    up.admin_ok(&["org", "add", "library"], "");
    let private = up.push_image("library/app", "v1", 1, 1).await;
    let public = up.push_image("library/pub", "v1", 2, 1).await;
    up.admin_ok(&["repo", "public", "library/pub"], "");

    // The cache has authentication on too: its own users need pull on the local name.
    let (mut b, _config) = start_with_config(
        &proxy_config(&[
            (
                "priv",
                &up.url(""),
                &format!("username = \"root\"\npassword = \"{ROOT}\""),
            ),
            ("anon", &up.url(""), ""),
        ]),
        &[("BERTH_AUTH_ENABLED", "true")],
    );
    as_root(&mut b);
    let anonymous = reqwest::Client::new()
        .get(b.url("/v2/priv/library/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (status, digest, _) = fetch(&b, "/v2/priv/library/app/manifests/v1").await;
    assert_eq!((status, digest), (StatusCode::OK, Some(private.digest)));
    assert!(b.pulls("priv/library/app", "v1").await);
    // Anonymous tokens for a public repository; none for a private one.
    let (status, digest, _) = fetch(&b, "/v2/anon/library/pub/manifests/v1").await;
    assert_eq!((status, digest), (StatusCode::OK, Some(public.digest)));
    assert!(b.pulls("anon/library/pub", "v1").await);
    let resp = b.get("/v2/anon/library/app/manifests/v1").await;
    expect_error(resp, StatusCode::BAD_GATEWAY, "UNKNOWN").await;
    // Through the token flow: the upstream's token endpoint handed out the tokens.
    let tokens = up
        .logs()
        .lines()
        .filter(|l| l.contains(r#""route":"token""#) && l.contains(r#""status":200"#))
        .count();
    assert!(tokens >= 2, "{}", up.logs());
}
