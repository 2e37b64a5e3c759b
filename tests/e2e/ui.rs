//! The web UI over real HTTP: every page and form, permissions, anti-forgery refusals, bad
//! input and escaping. A small cookie-keeping client stands in for a browser here; the
//! `browser` module drives real Chromium through the same flows.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Pushed};
use crate::harness::{Berth, random_bytes};

pub const ALICE_PASSWORD: &str = "alice-password-1";
pub const BOB_PASSWORD: &str = "bob-password-12";
/// A label value and annotation that would run script if a page did not escape them.
pub const XSS: &str = "<script>alert('x')</script>";

/// A hub with an organization, users and images worth looking at:
/// - `acme/app` (private): `v1.0` (an image with a full config, labels and annotations that
///   try script injection, and an SBOM referrer), `latest` (an index of linux/amd64 and
///   linux/arm64 plus a BuildKit attestation), `old`;
/// - `alice/public-tool` (public): `stable`;
/// - alice owns `acme`; bob is a user with no rights.
pub struct Hub {
    pub b: Berth,
    pub image: Pushed,
    pub index: Pushed,
    pub arm64: Pushed,
    pub sbom: Pushed,
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

impl Hub {
    pub async fn start(auth: bool) -> Hub {
        let env: &[(&str, &str)] = if auth {
            &[("BERTH_AUTH_ENABLED", "true")]
        } else {
            &[]
        };
        let mut b = Berth::start_with(env);
        if auth {
            b.admin_ok(
                &["user", "add", "alice", "--password-stdin"],
                &format!("{ALICE_PASSWORD}\n"),
            );
            b.admin_ok(
                &["user", "add", "bob", "--password-stdin"],
                &format!("{BOB_PASSWORD}\n"),
            );
            b.admin_ok(&["org", "add", "acme", "--owner", "alice"], "");
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::AUTHORIZATION,
                basic("alice", ALICE_PASSWORD).parse().expect("header"),
            );
            b.http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .expect("client");
        }
        let image = push_rich_image(&b, "acme/app", "v1.0", "amd64", 1).await;
        let amd64 = push_rich_image(&b, "acme/app", "amd64-build", "amd64", 2).await;
        let arm64 = push_rich_image(&b, "acme/app", "arm64-build", "arm64", 3).await;
        let attestation = push_rich_image(&b, "acme/app", "attestation", "unknown", 4).await;
        let platform = |p: &Pushed, arch: &str| {
            let mut d = p.descriptor();
            let os = if arch == "unknown" {
                "unknown"
            } else {
                "linux"
            };
            d["platform"] = json!({"os": os, "architecture": arch});
            d
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [platform(&amd64, "amd64"), platform(&arm64, "arm64"), platform(&attestation, "unknown")],
        });
        let index = b
            .push_manifest_json("acme/app", "latest", OCI_INDEX, &index)
            .await;
        for tag in ["amd64-build", "arm64-build", "attestation"] {
            let r = b.delete(&format!("/v2/acme/app/manifests/{tag}")).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
        b.push_image("acme/app", "old", 9, 1).await;
        // An SBOM referring to v1.0.
        let empty = b
            .push_blob_typed("acme/app", b"{}", "application/vnd.oci.empty.v1+json")
            .await;
        let sbom_layer = b
            .push_blob_typed("acme/app", b"{\"spdx\":true}", "application/spdx+json")
            .await;
        let sbom = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty.descriptor(),
            "layers": [sbom_layer.descriptor()],
            "subject": image.descriptor(),
            "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
        });
        let sbom_digest = crate::harness::sha256(&serde_json::to_vec(&sbom).expect("json"));
        let sbom = b
            .push_manifest_json("acme/app", &sbom_digest, OCI_MANIFEST, &sbom)
            .await;
        b.push_image("alice/public-tool", "stable", 11, 1).await;
        if auth {
            b.admin_ok(&["repo", "public", "alice/public-tool"], "");
        }
        Hub {
            b,
            image,
            index,
            arm64,
            sbom,
        }
    }
}

/// Pushes an image whose config has everything the image page shows.
async fn push_rich_image(b: &Berth, repo: &str, tag: &str, arch: &str, seed: u64) -> Pushed {
    let config = json!({
        "created": "2026-11-01T12:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/app"],
            "Cmd": ["--serve", "--port=8080"],
            "Env": ["PATH=/usr/bin:/bin", "APP_MODE=production"],
            "WorkingDir": "/srv",
            "User": "1000:1000",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "demo app", "evil": XSS},
            "StopSignal": "SIGTERM"
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2026-11-01T12:00:00Z", "created_by": "COPY app /bin/app # buildkit"},
            {"created": "2026-11-01T12:00:00Z", "created_by": "ENV APP_MODE=production", "empty_layer": true}
        ]
    });
    let config = b
        .push_blob_typed(
            repo,
            &serde_json::to_vec(&config).expect("json"),
            OCI_CONFIG,
        )
        .await;
    let l1 = b.push_blob(repo, &random_bytes(3000, seed * 10)).await;
    let l2 = b.push_blob(repo, &random_bytes(5000, seed * 10 + 1)).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [l1.descriptor(), l2.descriptor()],
        "annotations": {"org.example.note": format!("<img src=x onerror=alert(1)> {seed}")},
    });
    b.push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
        .await
}

/// A response as the tests look at it.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a form token") + marker.len();
        let end = self.body[start..].find('"').expect("end of value") + start;
        self.body[start..end].to_owned()
    }

    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

/// A browser stand-in: keeps cookies, never follows redirects.
pub struct Web {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Web {
    pub fn new(b: &Berth) -> Web {
        Web {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: b.url(""),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser behind a proxy that says it came from `address` (`X-Forwarded-For`).
    pub fn forwarded_for(b: &Berth, address: &str) -> Web {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            address.parse().expect("forwarded address"),
        );
        Web {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .expect("client"),
            base: b.url(""),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().expect("cookie");
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').expect("cookie pair");
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("post");
        self.finish(r).await
    }

    /// Signs in through the form; panics unless it works.
    pub async fn sign_in(&mut self, user: &str, password: &str) {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        let r = self
            .post(
                "/ui/login",
                &[
                    ("csrf", &csrf),
                    ("username", user),
                    ("password", password),
                    ("next", "/ui/"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert!(self.cookies.contains_key("berth_session"));
    }
}

#[tokio::test]
async fn pages_show_images_down_to_layers_config_and_referrers() {
    let hub = Hub::start(true).await;
    let mut web = Web::new(&hub.b);
    web.sign_in("alice", ALICE_PASSWORD).await;

    let home = web.get("/ui/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.has("Recently pushed") && home.has("acme/app") && home.has("alice/public-tool"));
    let csp = home.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(home.headers["cache-control"], "no-store");

    let repo = web.get("/ui/r/acme/app").await;
    assert_eq!(repo.status, StatusCode::OK);
    for text in [
        "v1.0",
        "latest",
        "old",
        "linux/amd64",
        "linux/arm64",
        "3 tags",
    ] {
        assert!(repo.has(text), "repository page lacks {text}");
    }
    // The pull command names this server.
    assert!(repo.has(&format!("docker pull {}/acme/app:v1.0", hub.b.host())));
    // Sizes: v1.0 is config + 3000 + 5000 bytes.
    assert!(repo.has(" kB"));
    // The attestation is not a platform; a single image shows the platform of its config.
    assert!(!repo.has("unknown/unknown"));
    let v1 = &repo.body[repo.body.find(">v1.0<").expect("v1.0 row")..];
    let v1 = &v1[..v1.find("</tr>").expect("row end")];
    assert!(v1.contains("linux/amd64"), "{v1}");

    let index = web
        .get(&format!("/ui/r/acme/app/-/manifest/{}", hub.index.digest))
        .await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.has("Platforms") && index.has("linux/arm64") && index.has("attestation"));
    assert!(index.has(&hub.arm64.digest[..19]));

    let arm = web
        .get(&format!("/ui/r/acme/app/-/manifest/{}", hub.arm64.digest))
        .await;
    assert!(arm.has("Layers") && arm.has("Part of") && arm.has("linux/arm64"));
    assert!(arm.has("untagged"));

    let image = web
        .get(&format!("/ui/r/acme/app/-/manifest/{}", hub.image.digest))
        .await;
    for text in [
        "Layers",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "/bin/app",
        "--serve --port=8080",
        "APP_MODE=production",
        "/srv",
        "1000:1000",
        "8080/tcp",
        "SIGTERM",
        "demo app",
        "COPY app /bin/app",
        "Referrers",
        "application/spdx+json",
        "Raw manifest",
        "v1.0",
    ] {
        assert!(image.has(text), "image page lacks {text}");
    }
    assert!(image.has(&hub.sbom.digest[..19]));
    // Labels and annotations are data, never markup.
    assert!(
        !image.has(XSS) && !image.has("<img src=x"),
        "unescaped injection"
    );
    assert!(image.has("&lt;script&gt;") && image.has("&lt;img src=x"));

    let sbom = web
        .get(&format!("/ui/r/acme/app/-/manifest/{}", hub.sbom.digest))
        .await;
    assert!(sbom.has("Refers to") && sbom.has("Artifact type"));

    // Unknown manifests and repositories are 404 pages.
    let missing = format!("/ui/r/acme/app/-/manifest/sha256:{}", "0".repeat(64));
    assert_eq!(web.get(&missing).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        web.get("/ui/r/acme/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    let ns = web.get("/ui/n/acme").await;
    assert!(ns.has("acme/app") && ns.has("Manage organization"));
    let assets = web.get("/ui/static/berth.css").await;
    assert_eq!(assets.status, StatusCode::OK);
    assert!(
        assets.headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn private_content_is_invisible_and_actions_refused() {
    let hub = Hub::start(true).await;
    let mut anon = Web::new(&hub.b);
    let home = anon.get("/ui/").await;
    assert!(home.has("alice/public-tool") && !home.has("acme/app"));
    assert!(home.has("Sign in"));
    assert_eq!(
        anon.get("/ui/r/acme/app").await.status,
        StatusCode::NOT_FOUND
    );
    let m = format!("/ui/r/acme/app/-/manifest/{}", hub.image.digest);
    assert_eq!(anon.get(&m).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        anon.get("/ui/r/alice/public-tool").await.status,
        StatusCode::OK
    );
    let found = anon.get("/ui/search?q=app").await;
    assert!(!found.has("acme/app"), "search leaks a private repository");
    let found = anon.get("/ui/search?q=v1").await;
    assert!(!found.has("acme/app"), "search leaks a private tag");
    let ns = anon.get("/ui/n/acme").await;
    assert!(!ns.has("acme/app") && !ns.has("Manage organization"));
    // Pages for signed-in users send anonymous visitors to the sign-in page.
    let account = anon.get("/ui/account").await;
    assert_eq!(account.status, StatusCode::SEE_OTHER);
    assert_eq!(account.location(), "/ui/login?next=%2Fui%2Faccount");

    let mut bob = Web::new(&hub.b);
    bob.sign_in("bob", BOB_PASSWORD).await;
    assert_eq!(
        bob.get("/ui/r/acme/app").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(bob.get("/ui/orgs/acme").await.status, StatusCode::NOT_FOUND);
    let public = bob.get("/ui/r/alice/public-tool").await;
    assert!(public.has("stable") && !public.has("Settings"));
    assert_eq!(
        bob.get("/ui/r/alice/public-tool/-/settings").await.status,
        StatusCode::FORBIDDEN
    );
    // A forged delete with bob's own valid token is refused for want of the right.
    let csrf = public.csrf();
    let r = bob
        .post(
            "/ui/r/alice/public-tool/-/delete-tag",
            &[("csrf", &csrf), ("tag", "stable"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = bob
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "v1.0"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = bob
        .post(
            "/ui/orgs/acme",
            &[("csrf", &csrf), ("op", "add-member"), ("user", "bob")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.b
            .get("/v2/alice/public-tool/manifests/stable")
            .await
            .status(),
        StatusCode::OK
    );

    // Granting bob read on the organization through the UI lets him see it.
    let mut alice = Web::new(&hub.b);
    alice.sign_in("alice", ALICE_PASSWORD).await;
    let org = alice.get("/ui/orgs/acme").await;
    assert_eq!(org.status, StatusCode::OK);
    let csrf = org.csrf();
    for fields in [
        vec![("op", "create-team"), ("team", "readers")],
        vec![("op", "team-add"), ("team", "readers"), ("user", "bob")],
        vec![
            ("op", "grant"),
            ("team", "readers"),
            ("repository", ""),
            ("role", "read"),
        ],
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &csrf));
        let r = alice.post("/ui/orgs/acme", &f).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{fields:?}: {}", r.body);
    }
    let org = alice.get("/ui/orgs/acme").await;
    assert!(org.has("readers") && org.has("bob") && org.has("all of acme"));
    let bad = alice
        .post(
            "/ui/orgs/acme",
            &[
                ("csrf", &csrf),
                ("op", "team-add"),
                ("team", "readers"),
                ("user", "nobody"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("not found"));
    let repo = bob.get("/ui/r/acme/app").await;
    assert_eq!(repo.status, StatusCode::OK);
    assert!(!repo.has("Settings"), "read access shows no settings");
}

#[tokio::test]
async fn forms_without_the_session_token_are_refused() {
    let hub = Hub::start(true).await;
    let mut web = Web::new(&hub.b);
    // Sign-in: no token, a made-up token, and a cross-site post are all refused.
    let form = web.get("/ui/login").await;
    assert!(web.cookies.contains_key("berth_csrf"));
    let good = form.csrf();
    let creds = [("username", "alice"), ("password", ALICE_PASSWORD)];
    for csrf in ["", "0123456789abcdef0123456789abcdef01234567"] {
        let mut f = creds.to_vec();
        f.push(("csrf", csrf));
        let r = web.post("/ui/login", &f).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
    }
    let mut f = creds.to_vec();
    f.push(("csrf", &good));
    let r = web
        .post_with("/ui/login", &f, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Browsers that send no Sec-Fetch-Site still send Origin: another site's, or "null" from
    // a sandboxed frame, is refused even with a valid token.
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let r = web.post_with("/ui/login", &f, &[("origin", origin)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "origin {origin}");
    }
    assert!(!web.cookies.contains_key("berth_session"));
    // This site's own origin is fine.
    let own = format!("http://{}", hub.b.addr);
    let r = web.post_with("/ui/login", &f, &[("origin", &own)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(web.cookies.contains_key("berth_session"));
    web.cookies.remove("berth_session");

    web.sign_in("alice", ALICE_PASSWORD).await;
    let settings = web.get("/ui/r/acme/app/-/settings").await;
    let token = settings.csrf();
    // Another user's token (or the pre-sign-in one) does not work for alice's session.
    let mut bob = Web::new(&hub.b);
    bob.sign_in("bob", BOB_PASSWORD).await;
    let bobs = bob.get("/ui/account").await.csrf();
    for csrf in [bobs.as_str(), good.as_str(), ""] {
        let r = web
            .post(
                "/ui/r/acme/app/-/delete-tag",
                &[("csrf", csrf), ("tag", "old"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.has("did not come from this site"));
    }
    let r = web.post("/ui/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/old").await.status(),
        StatusCode::OK
    );
    // With the right token the same request works.
    let r = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &token), ("tag", "old"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/old").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sessions_start_end_and_die_with_the_password() {
    let hub = Hub::start(true).await;
    let mut web = Web::new(&hub.b);
    let form = web.get("/ui/login").await;
    let csrf = form.csrf();
    let wrong = web
        .post(
            "/ui/login",
            &[("csrf", &csrf), ("username", "alice"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.has("Wrong username or password"));
    // An access token is not a password here.
    let ok = web
        .post(
            "/ui/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/ui/", "an outside next is ignored");
    let set = ok.headers["set-cookie"].to_str().expect("cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"));
    let session = web.cookies["berth_session"].clone();
    assert!(web.get("/ui/").await.has("Sign out"));

    // A second browser; then alice changes her password in the first.
    let mut other = Web::new(&hub.b);
    other.sign_in("alice", ALICE_PASSWORD).await;
    let account = web.get("/ui/account").await;
    let csrf = account.csrf();
    let mismatch = web
        .post(
            "/ui/account/password",
            &[
                ("csrf", &csrf),
                ("current", ALICE_PASSWORD),
                ("new", "new-password-2"),
                ("confirm", "typo"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    let wrong = web
        .post(
            "/ui/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "new-password-2"),
                ("confirm", "new-password-2"),
            ],
        )
        .await;
    assert!(wrong.has("current password is wrong"));
    let changed = web
        .post(
            "/ui/account/password",
            &[
                ("csrf", &csrf),
                ("current", ALICE_PASSWORD),
                ("new", "new-password-2"),
                ("confirm", "new-password-2"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_ne!(
        web.cookies["berth_session"], session,
        "a new session replaces the old"
    );
    assert_eq!(web.get("/ui/account").await.status, StatusCode::OK);
    assert_eq!(
        other.get("/ui/account").await.status,
        StatusCode::SEE_OTHER,
        "other browsers are signed out"
    );

    // Signing out deletes the session: replaying the old cookie does not work.
    let csrf = web.get("/ui/account").await.csrf();
    let kept = web.cookies["berth_session"].clone();
    let out = web.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!web.cookies.contains_key("berth_session"));
    web.cookies.insert("berth_session".into(), kept);
    assert_eq!(web.get("/ui/account").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn tokens_are_created_shown_once_and_revoked() {
    let hub = Hub::start(true).await;
    let mut web = Web::new(&hub.b);
    web.sign_in("alice", ALICE_PASSWORD).await;
    let csrf = web.get("/ui/account").await.csrf();
    let created = web
        .post(
            "/ui/account/tokens",
            &[
                ("csrf", &csrf),
                ("name", "ci"),
                ("scopes", "acme/*:pull\n"),
                ("expires_days", "30"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    assert!(created.has("shown only once"));
    let start = created.body.find("berth_").expect("secret shown");
    let secret: String = created.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(secret.len(), 46);
    let client = reqwest::Client::new();
    let check = |auth: String| {
        let client = client.clone();
        let url = hub.b.url("/v2/acme/app/tags/list");
        async move {
            client
                .get(url)
                .header("authorization", auth)
                .send()
                .await
                .expect("get")
                .status()
        }
    };
    assert_eq!(check(basic("alice", &secret)).await, StatusCode::OK);
    // Shown once: the account page lists it without the secret.
    let account = web.get("/ui/account").await;
    assert!(account.has("ci") && account.has("acme/*:pull") && !account.has(&secret));
    let bad = web
        .post(
            "/ui/account/tokens",
            &[("csrf", &csrf), ("name", "bad"), ("scopes", "not a scope")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let revoked = web
        .post("/ui/account/revoke", &[("csrf", &csrf), ("name", "ci")])
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.has("revoked"));
    assert_eq!(
        check(basic("alice", &secret)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn deleting_asks_for_confirmation_and_visibility_changes() {
    let hub = Hub::start(true).await;
    let mut web = Web::new(&hub.b);
    web.sign_in("alice", ALICE_PASSWORD).await;
    let settings = web.get("/ui/r/acme/app/-/settings").await;
    assert_eq!(settings.status, StatusCode::OK);
    let csrf = settings.csrf();
    let ask = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "v1.0")],
        )
        .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.has("Delete from acme/app?") && ask.has("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/v1.0").await.status(),
        StatusCode::OK
    );
    let done = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "v1.0"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/v1.0").await.status(),
        StatusCode::NOT_FOUND
    );
    let by_digest = format!("/v2/acme/app/manifests/{}", hub.image.digest);
    assert_eq!(
        hub.b.get(&by_digest).await.status(),
        StatusCode::OK,
        "a tag delete keeps the image"
    );

    // Deleting the index names the tags it takes along.
    let ask = web
        .post(
            "/ui/r/acme/app/-/delete-manifest",
            &[("csrf", &csrf), ("digest", &hub.index.digest)],
        )
        .await;
    assert!(ask.has("latest") && ask.has(&hub.index.digest));
    let done = web
        .post(
            "/ui/r/acme/app/-/delete-manifest",
            &[
                ("csrf", &csrf),
                ("digest", &hub.index.digest),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/latest").await.status(),
        StatusCode::NOT_FOUND
    );
    let none = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "nope"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    let invalid = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "../../etc")],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);

    // Visibility: public lets anonymous visitors in, private shuts them out again.
    let mut anon = Web::new(&hub.b);
    for (value, status) in [
        ("public", StatusCode::OK),
        ("private", StatusCode::NOT_FOUND),
    ] {
        let r = web
            .post(
                "/ui/r/acme/app/-/visibility",
                &[("csrf", &csrf), ("visibility", value)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(anon.get("/ui/r/acme/app").await.status, status, "{value}");
    }
}

#[tokio::test]
async fn cookies_are_secure_behind_a_trusted_tls_proxy_only() {
    for (trust, secure) in [("true", true), ("false", false)] {
        let b = Berth::start_with(&[
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_SERVER_TRUST_FORWARDED_HEADERS", trust),
        ]);
        let r = reqwest::Client::new()
            .get(b.url("/ui/login"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "hub.example.com")
            .send()
            .await
            .expect("get");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .to_owned();
        assert_eq!(
            cookie.ends_with("; Secure"),
            secure,
            "trust {trust}: {cookie}"
        );
    }
}

#[tokio::test]
async fn tag_pages_sort_filter_and_paginate() {
    let b = Berth::start();
    let first = b.push_image("big/repo", "t-000", 1, 1).await;
    for i in 1..120 {
        let tag = format!("t-{i:03}");
        let r = b
            .put_manifest("big/repo", &tag, OCI_MANIFEST, &first.bytes)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    b.put_manifest("big/repo", "Release-X", OCI_MANIFEST, &first.bytes)
        .await;
    let mut web = Web::new(&b);
    let p1 = web.get("/ui/r/big/repo").await;
    assert!(p1.has("121 tags") && p1.has("Page 1 of 3") && p1.has("Release-X") && p1.has("t-048"));
    assert!(!p1.has(">t-049<"), "50 per page");
    let p3 = web.get("/ui/r/big/repo?page=3").await;
    assert!(p3.has("t-119") && p3.has("Page 3 of 3") && !p3.has(">t-098<"));
    let newest = web.get("/ui/r/big/repo?sort=newest").await;
    let pos = |page: &Page, t: &str| page.body.find(&format!(">{t}<")).expect(t);
    assert!(pos(&newest, "Release-X") < pos(&newest, "t-119"));
    let filtered = web.get("/ui/r/big/repo?q=release").await;
    assert!(
        filtered.has("1 tag matching") && filtered.has("Release-X") && !filtered.has(">t-001<")
    );
    // Pattern characters are matched literally.
    let literal = web.get("/ui/r/big/repo?q=%25").await;
    assert!(literal.has("0 tags matching"));
    let beyond = web.get("/ui/r/big/repo?page=99").await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert!(beyond.has("No tags."));
}

#[tokio::test]
async fn bad_input_gets_readable_errors_and_escaped_echoes() {
    let hub = Hub::start(false).await;
    let mut web = Web::new(&hub.b);
    // Without authentication: no sign-in, everything readable.
    let home = web.get("/ui/").await;
    assert!(home.has("acme/app") && !home.has("Sign in"));
    assert_eq!(web.get("/ui/login").await.status, StatusCode::NOT_FOUND);
    let too_long = format!("/ui/r/acme/{}", "a".repeat(300));
    let script_name = "/ui/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned();
    for path in [
        too_long.as_str(),
        script_name.as_str(),
        "/ui/r/Not_A_Name",
        "/ui/r/acme/app/-/manifest/sha256:zz",
        "/ui/r/acme/app/-/bogus/thing",
        "/ui/r/..%2F..%2Fetc",
        "/ui/n/a%2Fb",
        "/ui/nothing-here",
        "/ui/static/..%2F..%2FCargo.toml",
    ] {
        let r = web.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/html")
        );
    }
    let long = format!("/ui/search?q={}", "a".repeat(300));
    let r = web.get(&long).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has("longer than 200 characters"));
    let r = web
        .get("/ui/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.has("<script>alert(1)") && r.has("&lt;script&gt;alert(1)"));
    let found = web.get("/ui/search?q=ARM64").await;
    assert!(!found.has("arm64-build"), "deleted tags are not found");
    let found = web.get("/ui/search?q=stable").await;
    assert!(found.has("alice/public-tool:stable"));
    // Forms still need the anti-forgery token, bound to a cookie, without authentication.
    let settings = web.get("/ui/r/acme/app/-/settings").await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(
        !settings.has("Visibility"),
        "no visibility without accounts"
    );
    let csrf = settings.csrf();
    let r = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("tag", "old"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let big = "x".repeat(100_000);
    let r = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", &big)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.has("too large"));
    let r = web
        .post(
            "/ui/r/acme/app/-/delete-tag",
            &[("csrf", &csrf), ("tag", "old"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}
