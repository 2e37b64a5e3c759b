//! Single sign-on (`[auth.oidc]`) against a real OpenID Connect provider: PyPI's
//! `oidc-provider-mock` on loopback (installed by tests/run). The sign-in runs the whole
//! authorization code flow over HTTP as a browser would (redirects followed by hand, cookies
//! kept); on PostgreSQL + S3 the callback lands on a second replica.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::auth::{basic_header, create_token};
use crate::harness::{Backend, Berth, backend, tool};
use crate::ui::Web;

/// Makes the ID token a test case answers with, from the nonce it must carry.
type Crafter = Box<dyn Fn(&str) -> double::Craft>;

const ROOT_PASSWORD: &str = "root-password-1";

/// A running `oidc-provider-mock`, stopped on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Starts the provider, or `None` (a skip, outside CI) when it is not installed.
async fn provider() -> Option<Provider> {
    let bin = tool("oidc-provider-mock")?;
    let port = free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--require-nonce", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oidc-provider-mock");
    let p = Provider {
        child,
        issuer: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "oidc-provider-mock did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(p)
}

impl Provider {
    /// Sets the claims the provider gives user `sub`.
    async fn set_user(&self, sub: &str, claims: serde_json::Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.issuer))
            .json(&claims)
            .send()
            .await
            .expect("set user");
        assert!(r.status().is_success(), "{}", r.status());
    }
}

/// The configuration file of a berth that signs in through `issuer`: members of provider
/// group `devs` are in team `acme/devs`, members of `hub-admins` administer the hub.
fn config(dir: &std::path::Path, issuer: &str) -> String {
    let path = dir.join("berth.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[auth]
enabled = true

[auth.oidc]
issuer = "{issuer}"
client_id = "berth"
client_secret = "berth-client-secret"
display_name = "Mock IdP"
logout = true

[[auth.oidc.group]]
group = "devs"
org = "acme"
team = "devs"

[[auth.oidc.group]]
group = "hub-admins"
role = "admin"
"#
        ),
    )
    .expect("config");
    path.display().to_string()
}

/// One or two berths on one database (two on PostgreSQL + S3, where the callback goes to
/// the second), with administrator `root` and organization `acme` whose team `devs` may push.
fn hub(dir: &std::path::Path, issuer: &str) -> Vec<Berth> {
    let cfg = config(dir, issuer);
    let env = [("BERTH_CONFIG", cfg.as_str())];
    let shared = dir.join("shared");
    let n = if backend() == Backend::PostgresS3 {
        2
    } else {
        1
    };
    let all: Vec<Berth> = (0..n).map(|_| Berth::start_in(&shared, &env)).collect();
    let b = &all[0];
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        &format!("{ROOT_PASSWORD}\n"),
    );
    b.admin_ok(&["org", "add", "acme", "--owner", "root"], "");
    b.admin_ok(&["team", "add", "acme", "devs"], "");
    b.admin_ok(&["team", "grant", "acme", "devs", "write"], "");
    all
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .expect("a redirect")
        .to_str()
        .expect("location")
        .to_owned()
}

/// The path and query of an absolute URL on berth.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

/// Runs the browser's part of a sign-in up to the provider's redirect back: starts at
/// `start`, signs in at the provider as `sub`, and returns the callback path.
async fn to_callback(web: &mut Web, p: &Provider, sub: &str) -> String {
    let start = web.get("/ui/login/oidc?next=/ui/account").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = location(&start.headers);
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", p.issuer)),
        "{authorize}"
    );
    for part in [
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "scope=openid",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(&authorize)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("sub", sub)
                .finish(),
        )
        .send()
        .await
        .expect("authorize");
    assert_eq!(answer.status(), StatusCode::FOUND);
    let callback = location(answer.headers());
    assert!(callback.contains("/ui/login/oidc/callback?"), "{callback}");
    path_of(&callback)
}

/// May `user` (with access token `secret`) start a push to `acme/app`?
async fn may_push(b: &Berth, user: &str, secret: &str) -> bool {
    let r = reqwest::Client::new()
        .post(b.url("/v2/acme/app/blobs/uploads/"))
        .header("authorization", basic_header(user, secret))
        .send()
        .await
        .expect("push");
    r.status() == StatusCode::ACCEPTED
}

#[tokio::test]
async fn sso_provisions_syncs_groups_and_finishes_on_another_replica() {
    let Some(p) = provider().await else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub(tmp.path(), &p.issuer);
    let (first, last) = (&all[0], &all[all.len() - 1]);
    p.set_user(
        "u-1001",
        json!({"preferred_username": "alice", "email": "alice@example.com", "groups": ["devs"]}),
    )
    .await;

    let mut web = Web::new(first);
    let login = web.get("/ui/login").await;
    assert!(login.has("Sign in with Mock IdP"), "{}", login.body);
    let callback = to_callback(&mut web, &p, "u-1001").await;
    let pending = web.cookies.clone();
    // The browser comes back to another replica (on PostgreSQL + S3).
    let mut back = Web::new(last);
    back.cookies = web.cookies.clone();
    let done = back.get(&callback).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(location(&done.headers), "/ui/account");
    assert!(back.cookies.contains_key("berth_session"));
    assert!(
        !back.cookies.contains_key("berth_oidc"),
        "the sign-in is used up"
    );
    let account = back.get("/ui/account").await;
    assert!(account.has("Account alice"), "{}", account.body);
    assert!(account.has("single sign-on"), "{}", account.body);

    // The same answer again, even with the cookie of the sign-in in progress, signs nobody in.
    let mut replay = Web::new(first);
    replay.cookies = pending;
    replay.cookies.remove("berth_session");
    let again = replay.get(&callback).await;
    assert_ne!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert!(!replay.cookies.contains_key("berth_session"));
    // Without the cookie (another browser): refused as not started here.
    let mut stranger = Web::new(first);
    let r = stranger.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Group devs gives push rights in acme; the access token is what docker login uses.
    let secret = create_token(first, "alice", "laptop", "acme/*:pull,push");
    assert!(may_push(first, "alice", &secret).await);
    let (ok, audit, err) = first.cli(&["audit"], &[]);
    assert!(ok, "{err}");
    assert!(audit.contains("signin.external"), "{audit}");

    // Leaving the group at the provider takes the rights away at the next sign-in.
    p.set_user(
        "u-1001",
        json!({"preferred_username": "alice", "groups": []}),
    )
    .await;
    let mut web = Web::new(first);
    let callback = to_callback(&mut web, &p, "u-1001").await;
    let done = web.get(&callback).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(!may_push(first, "alice", &secret).await);

    // Signing out also signs out at the provider (RP-initiated logout).
    let page = web.get("/ui/account").await;
    let out = web.post("/ui/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let to = location(&out.headers);
    assert!(
        to.starts_with(&format!("{}/oauth2/end_session?", p.issuer)),
        "{to}"
    );
    assert!(to.contains("client_id=berth"), "{to}");

    // A provider's user named like a local account does not take it over.
    p.set_user("u-2", json!({"preferred_username": "root"}))
        .await;
    let mut web = Web::new(first);
    let callback = to_callback(&mut web, &p, "u-2").await;
    let r = web.get(&callback).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(!web.cookies.contains_key("berth_session"));
}

#[tokio::test]
async fn sso_with_the_provider_down_says_so_and_admins_still_sign_in() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Nothing listens there.
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let all = hub(tmp.path(), &issuer);
    let b = &all[0];
    let mut web = Web::new(b);
    let login = web.get("/ui/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.has("unavailable"), "{}", login.body);
    let r = web.get("/ui/login/oidc").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.has("Single sign-on is unavailable"), "{}", r.body);
    web.sign_in("root", ROOT_PASSWORD).await;
}

/// A test double of a provider, for ID tokens `oidc-provider-mock` cannot make: it serves
/// discovery, a JWKS of its current P-256 key and a token endpoint that answers any code with
/// the ID token [`Double::answer`] crafts (by [`Craft`]) for the flow berth started.
mod double {
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use rcgen::{KeyPair, SigningKey as _};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What the next ID token looks like.
    pub struct Craft {
        pub alg: &'static str,
        pub iss: String,
        pub aud: String,
        pub nonce: String,
        pub exp_in_secs: i64,
        /// Sign with this key instead of the published one (a forgery).
        pub forge: bool,
    }

    struct State {
        key: KeyPair,
        kid: String,
        token: String,
    }

    pub struct Double {
        pub issuer: String,
        state: Arc<Mutex<State>>,
    }

    fn jwk(key: &KeyPair, kid: &str) -> Value {
        let raw = key.public_key_raw(); // 0x04 || x || y
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
               "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65])})
    }

    /// ECDSA's DER signature as JWS wants it: r and s, 32 bytes each.
    fn raw_signature(der: &[u8]) -> Vec<u8> {
        let int = |at: usize| {
            assert_eq!(der[at], 0x02);
            let len = der[at + 1] as usize;
            let v = &der[at + 2..at + 2 + len];
            let v = &v[v.len().saturating_sub(32)..];
            let mut out = vec![0u8; 32 - v.len()];
            out.extend_from_slice(v);
            (out, at + 2 + len)
        };
        let (r, next) = int(2);
        let (s, _) = int(next);
        [r, s].concat()
    }

    impl Double {
        pub async fn start() -> Double {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let state = Arc::new(Mutex::new(State {
                key: KeyPair::generate().unwrap(),
                kid: "k1".into(),
                token: String::new(),
            }));
            let (s, iss) = (state.clone(), issuer.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut conn, _)) = listener.accept().await else {
                        return;
                    };
                    let (s, iss) = (s.clone(), iss.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16384];
                        let mut n = 0;
                        // Requests here are small: read until the body has arrived.
                        loop {
                            let Ok(m) = conn.read(&mut buf[n..]).await else {
                                return;
                            };
                            n += m;
                            let text = String::from_utf8_lossy(&buf[..n]).to_string();
                            if let Some(end) = text.find("\r\n\r\n") {
                                let len = text[..end]
                                    .lines()
                                    .find_map(|l| {
                                        l.to_ascii_lowercase()
                                            .strip_prefix("content-length:")
                                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                    })
                                    .unwrap_or(0);
                                if n >= end + 4 + len || m == 0 {
                                    break;
                                }
                            } else if m == 0 {
                                return;
                            }
                        }
                        let text = String::from_utf8_lossy(&buf[..n]).to_string();
                        let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                        let body = {
                            let st = s.lock().unwrap();
                            match path.as_str() {
                                "/.well-known/openid-configuration" => json!({
                                    "issuer": iss,
                                    "authorization_endpoint": format!("{iss}/authorize"),
                                    "token_endpoint": format!("{iss}/token"),
                                    "jwks_uri": format!("{iss}/jwks"),
                                    "response_types_supported": ["code"],
                                    "subject_types_supported": ["public"],
                                    "id_token_signing_alg_values_supported": ["ES256", "RS256"],
                                }),
                                "/jwks" => json!({"keys": [jwk(&st.key, &st.kid)]}),
                                "/token" => json!({
                                    "access_token": "at", "token_type": "Bearer",
                                    "expires_in": 60, "id_token": st.token,
                                }),
                                _ => json!({}),
                            }
                            .to_string()
                        };
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(reply.as_bytes()).await;
                    });
                }
            });
            Double { issuer, state }
        }

        /// Publishes a new key under a new key id (the provider rotates its keys).
        pub fn rotate(&self) {
            let mut st = self.state.lock().unwrap();
            st.key = KeyPair::generate().unwrap();
            st.kid = "k2".into();
        }

        /// Sets the ID token the token endpoint returns next.
        pub fn answer(&self, c: &Craft) {
            let mut st = self.state.lock().unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let header = json!({"alg": c.alg, "typ": "JWT", "kid": st.kid});
            let claims = json!({
                "iss": c.iss, "sub": "s-1", "aud": c.aud, "nonce": c.nonce,
                "iat": now, "exp": now + c.exp_in_secs,
                "preferred_username": "mallory", "groups": ["devs"],
            });
            let input = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string())
            );
            let signature = match c.alg {
                "none" => Vec::new(),
                "HS256" => {
                    use hmac::{KeyInit as _, Mac as _};
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(b"berth-client-secret").unwrap();
                    mac.update(input.as_bytes());
                    mac.finalize().into_bytes().to_vec()
                }
                _ => {
                    let other;
                    let key = if c.forge {
                        other = KeyPair::generate().unwrap();
                        &other
                    } else {
                        &st.key
                    };
                    raw_signature(&key.sign(input.as_bytes()).unwrap())
                }
            };
            st.token = format!("{input}.{}", B64.encode(signature));
        }
    }
}

/// Starts a sign-in on `web`; returns the `state` and `nonce` berth sent to the provider.
async fn begin(web: &mut Web) -> (String, String) {
    let start = web.get("/ui/login/oidc").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let url = location(&start.headers);
    let query = url.split_once('?').expect("a query").1;
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect(name)
    };
    (param("state"), param("nonce"))
}

#[tokio::test]
async fn sso_refuses_forged_expired_misaddressed_and_unsigned_id_tokens() {
    use double::{Craft, Double};

    let p = Double::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub(tmp.path(), &p.issuer);
    let b = &all[0];
    // Runs one sign-in whose ID token `craft` makes from the flow's nonce; true if it worked.
    let attempt = |craft: Box<dyn Fn(&str) -> Craft>| {
        let p = &p;
        async move {
            let mut web = Web::new(b);
            let (state, nonce) = begin(&mut web).await;
            p.answer(&craft(&nonce));
            let r = web
                .get(&format!("/ui/login/oidc/callback?state={state}&code=c"))
                .await;
            let ok = r.status == StatusCode::SEE_OTHER && web.cookies.contains_key("berth_session");
            if !ok {
                assert!(!web.cookies.contains_key("berth_session"));
            }
            ok
        }
    };
    let issuer = p.issuer.clone();
    assert!(
        attempt(Box::new(move |n: &str| good_craft(&issuer, n))).await,
        "a good token signs in"
    );
    let issuer = p.issuer.clone();
    let cases: Vec<(&str, Crafter)> = vec![
        (
            "forged",
            Box::new({
                let i = issuer.clone();
                move |n: &str| Craft {
                    forge: true,
                    ..good_craft(&i, n)
                }
            }),
        ),
        (
            "expired",
            Box::new({
                let i = issuer.clone();
                move |n: &str| Craft {
                    exp_in_secs: -600,
                    ..good_craft(&i, n)
                }
            }),
        ),
        (
            "wrong aud",
            Box::new({
                let i = issuer.clone();
                move |n: &str| Craft {
                    aud: "another-app".into(),
                    ..good_craft(&i, n)
                }
            }),
        ),
        (
            "other nonce",
            Box::new({
                let i = issuer.clone();
                move |_: &str| good_craft(&i, "a-replayed-nonce")
            }),
        ),
        (
            "alg none",
            Box::new({
                let i = issuer.clone();
                move |n: &str| Craft {
                    alg: "none",
                    ..good_craft(&i, n)
                }
            }),
        ),
        (
            "HS256",
            Box::new({
                let i = issuer.clone();
                move |n: &str| Craft {
                    alg: "HS256",
                    ..good_craft(&i, n)
                }
            }),
        ),
        (
            "issuer mismatch",
            Box::new(move |n: &str| Craft {
                iss: "https://evil.example".into(),
                ..good_craft(&issuer, n)
            }),
        ),
    ];
    for (name, craft) in cases {
        assert!(!attempt(craft).await, "{name} must be refused");
    }
    // A state berth did not issue is refused before any token is fetched.
    let mut web = Web::new(b);
    begin(&mut web).await;
    let r = web
        .get("/ui/login/oidc/callback?state=made-up&code=c")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Key rotation: a token under a key id berth has not seen makes it fetch the keys again
    // (fetches are at least 5 s apart).
    p.rotate();
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let issuer = p.issuer.clone();
    assert!(
        attempt(Box::new(move |n: &str| good_craft(&issuer, n))).await,
        "the rotated key is fetched"
    );
}

fn good_craft(issuer: &str, nonce: &str) -> double::Craft {
    double::Craft {
        alg: "ES256",
        iss: issuer.to_owned(),
        aud: "berth".into(),
        nonce: nonce.to_owned(),
        exp_in_secs: 300,
        forge: false,
    }
}
