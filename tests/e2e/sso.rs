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
/// group `devs` are in team `acme/devs`, members of `hub-admins` administer the hub. `extra`
/// adds lines to `[auth.oidc]`.
fn config(dir: &std::path::Path, issuer: &str, extra: &str) -> String {
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
{extra}

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
    hub_with(dir, issuer, "")
}

/// [`hub`] with lines added to `[auth.oidc]`.
fn hub_with(dir: &std::path::Path, issuer: &str, extra: &str) -> Vec<Berth> {
    let cfg = config(dir, issuer, extra);
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
    // A page that moves on by itself, not a redirect (which the form-action policy blocks).
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert!(!web.cookies.contains_key("berth_session"));
    let to = format!("{}/oauth2/end_session?", p.issuer);
    assert!(
        out.has(&format!("http-equiv=\"refresh\" content=\"0; url={to}")),
        "{}",
        out.body
    );
    assert!(out.has(&format!("href=\"{to}")), "{}", out.body);
    assert!(out.has("client_id=berth"), "{}", out.body);

    // A provider's user named like a local account does not take it over.
    p.set_user("u-2", json!({"preferred_username": "root"}))
        .await;
    let mut web = Web::new(first);
    let callback = to_callback(&mut web, &p, "u-2").await;
    let r = web.get(&callback).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(!web.cookies.contains_key("berth_session"));
}

/// Chromium runs the whole sign-in: berth's sign-in page, the single sign-on button, the
/// provider's authorize form, back to berth signed in, the account page naming where the
/// identity comes from, and signing out at berth and then at the provider.
#[tokio::test]
async fn chromium_signs_in_through_the_provider_and_out_again() {
    let Some(p) = provider().await else { return };
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub(tmp.path(), &p.issuer);
    p.set_user(
        "u-77",
        json!({"preferred_username": "carol", "groups": ["devs"]}),
    )
    .await;
    crate::browser::closing(&c, sign_in_with_chromium(&c, &p, &all[all.len() - 1])).await;
}

async fn sign_in_with_chromium(c: &fantoccini::Client, p: &Provider, b: &Berth) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use fantoccini::Locator;

    let base = b.url("");
    c.goto(&format!("{base}/ui/login")).await.expect("goto");
    screenshot(c, "sso-sign-in").await;
    c.find(Locator::LinkText("Sign in with Mock IdP"))
        .await
        .expect("the single sign-on button")
        .click()
        .await
        .expect("click");
    // The provider's page: who to sign in as.
    wait_for(c, Locator::Css("input[name=sub]"))
        .await
        .expect("the provider's authorize form");
    let at = c.current_url().await.expect("url");
    assert!(at.as_str().starts_with(&p.issuer), "{at}");
    fill(c, "input[name=sub]", "u-77").await;
    screenshot(c, "sso-provider").await;
    click(c, "button[type=submit]:not([name])").await;
    // Back at berth, signed in, on the page the sign-in started from.
    wait_for(c, Locator::Css("form[action='/ui/logout']"))
        .await
        .expect("signed in");
    let at = c.current_url().await.expect("url");
    assert!(at.as_str().starts_with(&base), "{at}");
    c.goto(&format!("{base}/ui/account")).await.expect("goto");
    let account = text(c).await;
    assert!(account.contains("Account carol"), "{account}");
    assert!(
        account.contains("You sign in through single sign-on (OpenID Connect)"),
        "{account}"
    );
    screenshot(c, "sso-account").await;

    // Signing out ends the berth session, then the provider's (RP-initiated logout), which
    // sends the browser back to berth.
    click(c, "form[action='/ui/logout'] button").await;
    let end = wait_for(
        c,
        Locator::XPath("//button[normalize-space()='End session']"),
    )
    .await
    .expect("the provider's end-session page");
    let at = c.current_url().await.expect("url");
    assert!(at.as_str().starts_with(&p.issuer), "{at}");
    end.click().await.expect("click");
    wait_for(c, Locator::LinkText("Sign in"))
        .await
        .expect("back at berth, signed out");
    let at = c.current_url().await.expect("url");
    assert!(at.as_str().starts_with(&base), "{at}");
    c.goto(&format!("{base}/ui/account")).await.expect("goto");
    assert!(!text(c).await.contains("Account carol"), "signed out");
}

/// Signs in as `sub` at the provider; returns the callback's page.
async fn sign_in_as(b: &Berth, p: &Provider, sub: &str) -> (Web, crate::ui::Page) {
    let mut web = Web::new(b);
    let callback = to_callback(&mut web, p, sub).await;
    let page = web.get(&callback).await;
    (web, page)
}

/// E-mail style names (Entra ID's UPN, Google's email) with `username_transform`: the local
/// part, lowercased, becomes the user name; a second person with the same local part is
/// refused, never merged; a name that still breaks the rules is refused with a page naming
/// the claim and the rule.
#[tokio::test]
async fn sso_email_names_take_their_local_part_and_never_merge() {
    let Some(p) = provider().await else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub_with(
        tmp.path(),
        &p.issuer,
        "username_claim = \"email\"\nusername_transform = \"localpart_lowercase\"",
    );
    let b = &all[0];
    p.set_user(
        "u-dana",
        json!({"email": "Dana.Scully@Example.com", "groups": ["devs"]}),
    )
    .await;
    let (mut web, done) = sign_in_as(b, &p, "u-dana").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let account = web.get("/ui/account").await;
    assert!(account.has("Account dana.scully"), "{}", account.body);

    // Another person whose address has the same local part.
    p.set_user("u-other", json!({"email": "dana.scully@other.example"}))
        .await;
    let (web, r) = sign_in_as(b, &p, "u-other").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.has("already exists and is someone else"), "{}", r.body);
    assert!(!web.cookies.contains_key("berth_session"));
    // The first one still signs in as herself, with her memberships.
    let (_, again) = sign_in_as(b, &p, "u-dana").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let out = b.admin_ok(&["user", "list"], "");
    assert_eq!(out.matches("dana.scully").count(), 1, "{out}");

    // Still no valid name after the transform: refused, naming the claim and the rule.
    p.set_user("u-bad", json!({"email": "Bad Name!@example.com"}))
        .await;
    let (web, r) = sign_in_as(b, &p, "u-bad").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.has("&quot;email&quot; claim"), "{}", r.body);
    assert!(r.has("localpart_lowercase"), "{}", r.body);
    assert!(r.has("lowercase letters and digits"), "{}", r.body);
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

/// A sign-in completes once: its record is taken out of the database by the first callback,
/// so the same callback (same cookie, state and a code the provider would accept again) is
/// refused afterwards, on this replica and on the other one.
#[tokio::test]
async fn sso_callback_is_single_use_on_every_replica() {
    use double::Double;

    let p = Double::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub(tmp.path(), &p.issuer);
    let (first, last) = (&all[0], &all[all.len() - 1]);
    let mut web = Web::new(first);
    let (state, nonce) = begin(&mut web).await;
    let id = web
        .cookies
        .get("berth_oidc")
        .expect("the sign-in cookie")
        .clone();
    // The cookie is a random id and nothing else: no state, nonce or verifier.
    assert_eq!(id.len(), 43, "{id}");
    assert!(!id.contains(&state) && !id.contains(&nonce), "{id}");
    p.answer(&good_craft(&p.issuer, &nonce));
    let callback = format!("/ui/login/oidc/callback?state={state}&code=c");
    let pending = web.cookies.clone();

    // The browser comes back to the other replica (on PostgreSQL + S3) and is signed in.
    let mut back = Web::new(last);
    back.cookies = pending.clone();
    let done = back.get(&callback).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(back.cookies.contains_key("berth_session"));

    // The same answer again, with the cookie kept, on either replica: refused.
    for b in [first, last] {
        let mut replay = Web::new(b);
        replay.cookies = pending.clone();
        let r = replay.get(&callback).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.has("already used"), "{}", r.body);
        assert!(!replay.cookies.contains_key("berth_session"));
    }

    // A wrong state uses the sign-in up too: the right one after it is refused.
    let mut web = Web::new(first);
    let (state, nonce) = begin(&mut web).await;
    p.answer(&good_craft(&p.issuer, &nonce));
    let pending = web.cookies.clone();
    let r = web
        .get("/ui/login/oidc/callback?state=made-up&code=c")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let mut again = Web::new(last);
    again.cookies = pending;
    let r = again
        .get(&format!("/ui/login/oidc/callback?state={state}&code=c"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(!again.cookies.contains_key("berth_session"));
}

/// Sign-ins in progress are bounded: past `max_pending_logins` a new one is refused with a
/// page saying why, and a finished one makes room.
#[tokio::test]
async fn sso_sign_ins_in_progress_are_bounded() {
    use double::Double;

    let p = Double::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub_with(tmp.path(), &p.issuer, "max_pending_logins = 3");
    let (first, last) = (&all[0], &all[all.len() - 1]);
    let mut started = Vec::new();
    for _ in 0..3 {
        let mut web = Web::new(first);
        let flow = begin(&mut web).await;
        started.push((web, flow));
    }
    for b in [first, last] {
        let mut web = Web::new(b);
        let r = web.get("/ui/login/oidc").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(
            r.has("Too many single sign-ons are in progress"),
            "{}",
            r.body
        );
        assert!(!web.cookies.contains_key("berth_oidc"));
    }
    // One finishes; a new sign-in may start.
    let (mut web, (state, nonce)) = started.pop().expect("a sign-in");
    p.answer(&good_craft(&p.issuer, &nonce));
    let done = web
        .get(&format!("/ui/login/oidc/callback?state={state}&code=c"))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let mut web = Web::new(last);
    begin(&mut web).await;
}

/// One client address cannot use up everyone's room: past `max_pending_logins_per_address`
/// its new sign-ins are refused (429 with a page saying why) while other addresses, including
/// another IPv6 /64, still sign in.
#[tokio::test]
async fn sso_sign_ins_in_progress_are_bounded_per_address() {
    use double::Double;

    let p = Double::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let all = hub_with(
        tmp.path(),
        &p.issuer,
        "max_pending_logins_per_address = 2\n\n[server]\ntrust_forwarded_headers = true\n",
    );
    let (first, last) = (&all[0], &all[all.len() - 1]);
    let mut flooder = Vec::new();
    for _ in 0..2 {
        let mut web = Web::forwarded_for(first, "2001:db8:1:2::7");
        begin(&mut web).await;
        flooder.push(web);
    }
    // The same /64 from another replica: refused.
    let mut web = Web::forwarded_for(last, "2001:db8:1:2:ffff::1");
    let r = web.get("/ui/login/oidc").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.has("from your address"), "{}", r.body);
    assert!(!web.cookies.contains_key("berth_oidc"));
    // Others sign in all the way.
    for address in ["2001:db8:1:3::7", "192.0.2.10"] {
        let mut web = Web::forwarded_for(last, address);
        let (state, nonce) = begin(&mut web).await;
        p.answer(&good_craft(&p.issuer, &nonce));
        let done = web
            .get(&format!("/ui/login/oidc/callback?state={state}&code=c"))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(web.cookies.contains_key("berth_session"));
    }
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
