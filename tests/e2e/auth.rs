//! Authentication and permissions: the permission matrix over real requests, the Docker
//! token flow and its refusals, refresh tokens, throttling, the refusal to serve a network
//! without authentication, and real clients (docker, skopeo, ctr) logging in.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::Value;

use crate::client::expect_error;
use crate::harness::{Berth, tool};

pub(crate) const ADMIN_PASSWORD: &str = "root-password-1";
pub(crate) const PASSWORD: &str = "password-of-a-user";

/// Starts berth with authentication on and an administrator `root`, whose Basic credentials
/// the harness client sends (so the usual push helpers work).
pub(crate) fn start_with_auth(extra: &[(&str, &str)]) -> Berth {
    let mut env = vec![("BERTH_AUTH_ENABLED", "true")];
    env.extend_from_slice(extra);
    let mut b = Berth::start_with(&env);
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        basic_header("root", ADMIN_PASSWORD).parse().unwrap(),
    );
    b.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    b
}

/// The secret `berth admin token create` printed (shown once, on its `password:` line).
pub(crate) fn token_secret(created: &str) -> String {
    created
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no secret in {created}"))
        .to_owned()
}

/// Creates an access token of `owner` (a user, or an organization for a robot) with one scope
/// rule; returns its secret.
pub(crate) fn create_token(b: &Berth, owner: &str, name: &str, scope: &str) -> String {
    token_secret(&b.admin_ok(&["token", "create", owner, name, "--scope", scope], ""))
}

pub(crate) fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// A client with no default credentials.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The hub of the matrix: users, an organization with two teams, a robot, three repositories.
struct Hub {
    b: Berth,
    robot_secret: String,
    app_manifest: String,
    private_blob: String,
}

async fn hub() -> Hub {
    let b = start_with_auth(&[]);
    for user in ["alice", "bob", "carol", "dave"] {
        b.admin_ok(
            &["user", "add", user, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }
    b.admin_ok(&["org", "add", "acme", "--owner", "alice"], "");
    b.admin_ok(&["team", "add", "acme", "devs"], "");
    b.admin_ok(&["team", "add-member", "acme", "devs", "bob"], "");
    b.admin_ok(&["team", "grant", "acme", "devs", "write"], "");
    b.admin_ok(&["team", "add", "acme", "readers"], "");
    b.admin_ok(&["team", "add-member", "acme", "readers", "carol"], "");
    b.admin_ok(
        &[
            "team",
            "grant",
            "acme",
            "readers",
            "read",
            "--repository",
            "acme/app",
        ],
        "",
    );
    let created = b.admin_ok(
        &[
            "token",
            "create",
            "acme",
            "ci",
            "--scope",
            "acme/*:pull,push",
        ],
        "",
    );
    let robot_secret = token_secret(&created);
    assert!(created.contains("username: acme+ci"), "{created}");
    let app = b.push_image("acme/app", "v1", 1, 1).await;
    b.push_image("acme/pub", "v1", 2, 1).await;
    b.push_image("acme/other", "v1", 3, 1).await;
    b.push_image("alice/private", "v1", 4, 1).await;
    let private = b
        .push_blob("alice/private", b"a blob only alice may read")
        .await;
    b.admin_ok(&["repo", "public", "acme/pub"], "");
    Hub {
        robot_secret,
        app_manifest: app.digest.clone(),
        private_blob: private.digest.clone(),
        b,
    }
}

/// A registry token from `GET /token` for `scope`, with Basic credentials if given.
async fn token(b: &Berth, creds: Option<(&str, &str)>, scopes: &[&str]) -> (String, Value) {
    let mut url = format!("{}?service=berth", b.url("/token"));
    for s in scopes {
        url.push_str(&format!("&scope={}", urlencode(s)));
    }
    let mut req = bare().get(url);
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "token for {creds:?} {scopes:?}"
    );
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    (token.clone(), claims(&token))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The claims of a JWT, unverified.
pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A caller's login name and password, or `None` for anonymous.
type Who<'a> = Option<(&'a str, &'a str)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Pull,
    Push,
    Delete,
}

/// Performs `op` on `repo` with a token obtained for exactly that, and reports whether it was
/// allowed. Refusals must be 401 (no rights for anonymous, or a token without the scope) or
/// 403 DENIED (a known caller without the right).
async fn attempt(h: &Hub, who: Option<(&str, &str)>, repo: &str, op: Op) -> bool {
    let action = match op {
        Op::Pull => "pull",
        Op::Push => "pull,push",
        Op::Delete => "delete",
    };
    let (jwt, _) = token(&h.b, who, &[&format!("repository:{repo}:{action}")]).await;
    let c = bare();
    let resp = match op {
        Op::Pull => c.get(h.b.url(&format!("/v2/{repo}/manifests/v1"))),
        Op::Push => c.post(h.b.url(&format!("/v2/{repo}/blobs/uploads/"))),
        // An unknown digest: allowed gives 404, refused 401/403, and nothing is destroyed.
        Op::Delete => c.delete(h.b.url(&format!("/v2/{repo}/manifests/sha256:{}", "0".repeat(64)))),
    }
    .bearer_auth(&jwt)
    .header("accept", crate::client::OCI_MANIFEST)
    .send()
    .await
    .unwrap();
    let status = resp.status();
    match status {
        StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NOT_FOUND => true,
        StatusCode::UNAUTHORIZED => {
            let challenge = resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
            assert!(
                challenge.contains(&format!("scope=\"repository:{repo}:")),
                "{challenge}"
            );
            expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
            false
        }
        StatusCode::FORBIDDEN => {
            expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
            false
        }
        other => panic!("{who:?} {op:?} {repo}: unexpected {other}"),
    }
}

#[tokio::test]
async fn the_permission_matrix_holds_for_every_kind_of_caller() {
    let h = hub().await;
    let robot = ("acme+ci", h.robot_secret.as_str());
    let alice = ("alice", PASSWORD);
    let bob = ("bob", PASSWORD);
    let carol = ("carol", PASSWORD);
    let dave = ("dave", PASSWORD);
    let root = ("root", ADMIN_PASSWORD);
    use Op::*;
    // (caller, repository, operation, allowed)
    let matrix: &[(Who, &str, Op, bool)] = &[
        // The organization's owner, and the owner of a personal namespace.
        (Some(alice), "acme/app", Pull, true),
        (Some(alice), "acme/app", Push, true),
        (Some(alice), "acme/app", Delete, true),
        (Some(alice), "alice/private", Delete, true),
        // A team with write on the organization.
        (Some(bob), "acme/app", Pull, true),
        (Some(bob), "acme/other", Push, true),
        (Some(bob), "acme/app", Delete, false),
        (Some(bob), "alice/private", Pull, false),
        // A team with read on one repository.
        (Some(carol), "acme/app", Pull, true),
        (Some(carol), "acme/app", Push, false),
        (Some(carol), "acme/other", Pull, false),
        // Another user: public pulls only.
        (Some(dave), "acme/app", Pull, false),
        (Some(dave), "acme/pub", Pull, true),
        (Some(dave), "acme/pub", Push, false),
        (Some(dave), "dave/mine", Push, true),
        // The robot: its scope within its organization.
        (Some(robot), "acme/app", Pull, true),
        (Some(robot), "acme/app", Push, true),
        (Some(robot), "acme/app", Delete, false),
        (Some(robot), "alice/private", Pull, false),
        // Anonymous: public pulls only.
        (None, "acme/pub", Pull, true),
        (None, "acme/app", Pull, false),
        (None, "acme/pub", Push, false),
        // The administrator: everything.
        (Some(root), "alice/private", Pull, true),
        (Some(root), "acme/app", Delete, true),
    ];
    for &(who, repo, op, expected) in matrix {
        let got = attempt(&h, who, repo, op).await;
        assert_eq!(got, expected, "{:?} {op:?} {repo}", who.map(|w| w.0));
    }

    // HTTP Basic straight on /v2/ follows the same rules.
    let c = bare();
    let get = |who: (&str, &str), path: &str| {
        c.get(h.b.url(path))
            .header("authorization", basic_header(who.0, who.1))
            .header("accept", crate::client::OCI_MANIFEST)
    };
    assert_eq!(
        get(carol, "/v2/acme/app/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let denied = get(dave, "/v2/acme/app/manifests/v1").send().await.unwrap();
    expect_error(denied, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(
        get(robot, "/v2/acme/app/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Nobody: a challenge on /v2/ itself, as docker expects before logging in.
    let resp = c.get(h.b.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"berth\"",
            h.b.host()
        )
    );
    // Public content needs no token at all.
    let public = c
        .get(h.b.url("/v2/acme/pub/manifests/v1"))
        .header("accept", crate::client::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);

    // Catalog: only what the caller may pull.
    let catalog = |who: Option<(&'static str, &'static str)>| {
        let b = &h.b;
        async move {
            let (jwt, _) = token(b, who, &["registry:catalog:*"]).await;
            let body: Value = bare()
                .get(b.url("/v2/_catalog"))
                .bearer_auth(jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(catalog(Some(("dave", PASSWORD))).await, ["acme/pub"]);
    assert_eq!(
        catalog(Some(("carol", PASSWORD))).await,
        ["acme/app", "acme/pub"]
    );
    assert_eq!(
        catalog(Some(("bob", PASSWORD))).await,
        ["acme/app", "acme/other", "acme/pub"]
    );
    assert_eq!(
        catalog(Some(("root", ADMIN_PASSWORD))).await,
        ["acme/app", "acme/other", "acme/pub", "alice/private"]
    );
    // Paginated, the filtered catalog still pages correctly.
    let (jwt, _) = token(&h.b, Some(("bob", PASSWORD)), &["registry:catalog:*"]).await;
    let page = bare()
        .get(h.b.url("/v2/_catalog?n=2"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["link"]
            .to_str()
            .unwrap()
            .contains("last=acme%2Fother")
    );
    let anonymous = bare().get(h.b.url("/v2/_catalog")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // Mounts need pull on the source: bob cannot lift alice's blob into acme/app (he gets a
    // plain upload session instead), alice can.
    let mount = format!(
        "/v2/acme/app/blobs/uploads/?mount={}&from=alice/private",
        h.private_blob
    );
    let (bob_jwt, _) = token(
        &h.b,
        Some(bob),
        &[
            "repository:acme/app:pull,push",
            "repository:alice/private:pull",
        ],
    )
    .await;
    let resp = bare()
        .post(h.b.url(&mount))
        .bearer_auth(&bob_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "no mount without pull on the source"
    );
    let (alice_jwt, access) = token(
        &h.b,
        Some(alice),
        &[
            "repository:acme/app:pull,push",
            "repository:alice/private:pull",
        ],
    )
    .await;
    assert_eq!(access["access"].as_array().unwrap().len(), 2);
    let resp = bare()
        .post(h.b.url(&mount))
        .bearer_auth(&alice_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Deleting for real with the right, and the manifest is gone.
    let (jwt, _) = token(&h.b, Some(alice), &["repository:acme/app:delete,pull"]).await;
    let resp = bare()
        .delete(h.b.url(&format!("/v2/acme/app/manifests/{}", h.app_manifest)))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn tokens_grant_the_intersection_of_what_was_asked_and_what_is_allowed() {
    let h = hub().await;
    let (_, c) = token(
        &h.b,
        Some(("carol", PASSWORD)),
        &[
            "repository:acme/app:pull,push,delete",
            "repository:alice/private:pull",
        ],
    )
    .await;
    assert_eq!(c["sub"], "carol");
    assert_eq!(c["aud"], "berth");
    assert_eq!(c["iss"], "berth");
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "acme/app", "actions": ["pull"]}])
    );
    let exp = c["exp"].as_u64().unwrap();
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 300);
    // The header names the key and the algorithm.
    let (jwt, _) = token(&h.b, None, &[]).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    // Anonymous tokens carry only public pulls.
    let (_, c) = token(
        &h.b,
        None,
        &["repository:acme/pub:pull,push", "repository:acme/app:pull"],
    )
    .await;
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "acme/pub", "actions": ["pull"]}])
    );
    // Wrong credentials and unknown services are refused.
    let resp = bare()
        .get(h.b.url("/token?service=berth"))
        .basic_auth("carol", Some("wrong-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = bare()
        .get(h.b.url("/token?service=elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() {
    let h = hub().await;
    let b = &h.b;
    let (good, good_claims) =
        token(b, Some(("bob", PASSWORD)), &["repository:acme/app:pull"]).await;
    let pull = |jwt: String| {
        bare()
            .get(b.url("/v2/acme/app/manifests/v1"))
            .header("accept", crate::client::OCI_MANIFEST)
            .bearer_auth(jwt)
            .send()
    };
    assert_eq!(pull(good.clone()).await.unwrap().status(), 200);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let mut forged = Vec::new();
    // alg: none, no signature.
    let mut none = header.clone();
    none["alg"] = "none".into();
    forged.push(("alg none", format!("{}.{}.", enc(&none), parts[1])));
    // HS256 "signed" with a guessable key (the kid).
    let mut hs = header.clone();
    hs["alg"] = "HS256".into();
    let signing_input = format!("{}.{}", enc(&hs), parts[1]);
    let mac = hmac_sha256(
        header["kid"].as_str().unwrap().as_bytes(),
        signing_input.as_bytes(),
    );
    forged.push((
        "HS256",
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac)),
    ));
    // The payload widened, the signature kept.
    let mut widened = good_claims.clone();
    widened["access"][0]["actions"] = serde_json::json!(["pull", "push", "delete"]);
    forged.push((
        "tampered",
        format!("{}.{}.{}", parts[0], enc(&widened), parts[2]),
    ));
    // Unknown kid.
    let mut other_kid = header.clone();
    other_kid["kid"] = "0123456789abcdef01234567".into();
    forged.push((
        "unknown kid",
        format!("{}.{}.{}", enc(&other_kid), parts[1], parts[2]),
    ));
    // A token of another berth (another key, same names everywhere).
    let other = start_with_auth(&[]);
    let (foreign, _) = token(
        &other,
        Some(("root", ADMIN_PASSWORD)),
        &["repository:acme/app:pull"],
    )
    .await;
    forged.push(("another registry's key", foreign));
    forged.push(("garbage", "not.a.jwt".into()));
    for (what, jwt) in forged {
        let resp = pull(jwt).await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }

    // A token for repository A used on B.
    let resp = bare()
        .get(b.url("/v2/acme/other/manifests/v1"))
        .header("accept", crate::client::OCI_MANIFEST)
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "bob may pull acme/other: he is told to get a wider token"
    );
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let (carol_jwt, _) = token(b, Some(("carol", PASSWORD)), &["repository:acme/app:pull"]).await;
    let resp = bare()
        .get(b.url("/v2/acme/other/manifests/v1"))
        .header("accept", crate::client::OCI_MANIFEST)
        .bearer_auth(&carol_jwt)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // ... and a wider token changes nothing for carol.
    let (_, wider) = token(
        b,
        Some(("carol", PASSWORD)),
        &["repository:acme/other:pull"],
    )
    .await;
    assert_eq!(wider["access"], serde_json::json!([]));
    // A pull-only token pushing.
    let resp = bare()
        .post(b.url("/v2/acme/app/blobs/uploads/"))
        .bearer_auth(&carol_jwt)
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let resp = bare()
        .post(b.url("/v2/acme/app/blobs/uploads/"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "bob may push with a token that says so");

    // A revoked access token can no longer log in.
    let robot = ("acme+ci", h.robot_secret.as_str());
    token(b, Some(robot), &["repository:acme/app:pull"]).await;
    b.admin_ok(&["token", "revoke", "acme", "ci"], "");
    let resp = bare()
        .get(b.url("/token?service=berth&scope=repository:acme/app:pull"))
        .basic_auth(robot.0, Some(robot.1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let listed = b.admin_ok(&["token", "list", "acme"], "");
    assert!(listed.contains("revoked"), "{listed}");
    // Expired tokens too.
    let created = b.admin_ok(
        &[
            "token",
            "create",
            "bob",
            "old",
            "--scope",
            "*:pull",
            "--expires-days",
            "0",
        ],
        "",
    );
    let secret = token_secret(&created);
    let resp = bare()
        .get(b.url("/v2/acme/app/tags/list"))
        .basic_auth("bob", Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Nothing secret reached the log.
    let logs = b.logs();
    for secret in [
        PASSWORD,
        ADMIN_PASSWORD,
        h.robot_secret.as_str(),
        good.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret is in the log");
    }
}

/// HMAC-SHA256, to forge an HS256 token the way an attacker would.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let inner = sha2::Sha256::digest(inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner.iter().copied())
        .collect();
    sha2::Sha256::digest(outer).to_vec()
}

#[tokio::test]
async fn oauth_password_and_refresh_grants_and_password_changes() {
    let b = start_with_auth(&[]);
    b.admin_ok(
        &["user", "add", "erin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let post = |form: Vec<(&'static str, String)>| {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        bare()
            .post(b.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let resp = post(vec![
        ("grant_type", "password".into()),
        ("username", "erin".into()),
        ("password", PASSWORD.into()),
        ("service", "berth".into()),
        ("client_id", "test".into()),
        ("access_type", "offline".into()),
        ("scope", "repository:erin/app:pull,push".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    let resp = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
        ("service", "berth".into()),
        ("scope", "repository:erin/app:pull".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["sub"],
        "erin"
    );
    // A refresh token is no registry token.
    let resp = bare()
        .get(b.url("/v2/"))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Wrong password and unknown grants.
    let resp = post(vec![
        ("grant_type", "password".into()),
        ("username", "erin".into()),
        ("password", "nope-nope-nope".into()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let resp = post(vec![("grant_type", "client_credentials".into())])
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Changing the password signs erin out everywhere.
    b.admin_ok(
        &["user", "passwd", "erin", "--password-stdin"],
        "another-password\n",
    );
    let resp = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    // Disabled users cannot log in.
    b.admin_ok(&["user", "disable", "erin"], "");
    let resp = bare()
        .get(b.url("/token?service=berth"))
        .basic_auth("erin", Some("another-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_address() {
    let b = start_with_auth(&[
        ("BERTH_AUTH_LOGIN_FREE_FAILURES", "3"),
        ("BERTH_AUTH_LOGIN_LOCKOUT_SECS", "60"),
    ]);
    b.admin_ok(
        &["user", "add", "frank", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let login = |password: &'static str| {
        bare()
            .get(b.url("/token?service=berth"))
            .basic_auth("frank", Some(password))
            .send()
    };
    for _ in 0..4 {
        assert_eq!(login("guess-guess-guess").await.unwrap().status(), 401);
    }
    let resp = login(PASSWORD).await.unwrap();
    assert_eq!(
        resp.status(),
        429,
        "even the right password waits out the lockout"
    );
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    // Basic on /v2/ is throttled the same way.
    let resp = bare()
        .get(b.url("/v2/"))
        .basic_auth("frank", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
}

#[test]
fn serving_a_network_without_authentication_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .env_remove("BERTH_AUTH_ENABLED")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve 0.0.0.0:0 without authentication"),
        "{err}"
    );
    assert!(err.contains("allow_unauthenticated_network"), "{err}");
    assert!(err.contains("berth admin user add"), "{err}");
}

#[test]
fn admin_commands_explain_mistakes() {
    let b = Berth::start_with(&[("BERTH_AUTH_ENABLED", "true")]);
    let (ok, _, err) = b.admin(
        &["user", "add", "Bad Name", "--password-stdin"],
        "password-123\n",
    );
    assert!(!ok);
    assert!(err.contains("invalid name"), "{err}");
    let (ok, _, err) = b.admin(&["user", "add", "gina", "--password-stdin"], "short\n");
    assert!(!ok);
    assert!(err.contains("8 to 1024"), "{err}");
    b.admin_ok(
        &["user", "add", "gina", "--password-stdin"],
        "password-123\n",
    );
    let (ok, _, err) = b.admin(
        &["user", "add", "gina", "--password-stdin"],
        "password-123\n",
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = b.admin(&["org", "add", "gina"], "");
    assert!(!ok, "users and organizations share names");
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = b.admin(
        &["token", "create", "gina", "t", "--scope", "everything"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("invalid token scope"), "{err}");
    b.admin_ok(&["org", "add", "corp"], "");
    let (ok, _, err) = b.admin(&["team", "grant", "corp", "nope", "read"], "");
    assert!(!ok);
    assert!(err.contains("team nope in corp not found"), "{err}");
    b.admin_ok(&["team", "add", "corp", "t"], "");
    let (ok, _, err) = b.admin(
        &[
            "team",
            "grant",
            "corp",
            "t",
            "read",
            "--repository",
            "other/x",
        ],
        "",
    );
    assert!(!ok);
    assert!(err.contains("not in organization corp"), "{err}");
    let listed = b.admin_ok(&["user", "list"], "");
    assert!(listed.contains("gina"), "{listed}");
}

// ---- Real clients -------------------------------------------------------------------------

#[tokio::test]
async fn docker_logs_in_pushes_pulls_and_is_denied_with_users_and_robots() {
    let Some(docker) = crate::real_clients::Docker::get() else {
        return;
    };
    let Some(busybox) = crate::real_clients::busybox() else {
        return;
    };
    let h = hub().await;
    let host = h.b.host();
    let image = format!("{host}/acme/web:v1");
    crate::real_clients::docker_build(
        &docker,
        &busybox,
        "hello from an authenticated push",
        &image,
    );

    // Not logged in: the push is refused.
    let (ok, _, err) = docker.run(&["push", &image]);
    assert!(!ok);
    assert!(
        err.contains("unauthorized") || err.contains("denied"),
        "{err}"
    );

    // bob (team write on acme) logs in and pushes.
    docker.login(&host, "bob", PASSWORD);
    docker.ok(&["push", &image]);
    // carol (read on acme/app only) cannot push to acme/web: docker says "denied".
    docker.ok(&["logout", &host]);
    docker.login(&host, "carol", PASSWORD);
    let (ok, _, err) = docker.run(&["push", &image]);
    assert!(!ok);
    assert!(err.contains("denied"), "{err}");
    docker.ok(&["logout", &host]);

    // The robot pulls it back and runs it.
    docker.ok(&["rmi", &image]);
    docker.login(&host, "acme+ci", &h.robot_secret);
    docker.ok(&["pull", &image]);
    let out = docker.ok(&["run", "--rm", "--network", "none", &image]);
    assert!(out.contains("hello from an authenticated push"), "{out}");
    docker.ok(&["logout", &host]);
    docker.ok(&["rmi", &image]);
    // Logged out, a private pull fails.
    let (ok, _, _) = docker.run(&["pull", &image]);
    assert!(!ok);
}

#[tokio::test]
async fn skopeo_and_ctr_authenticate() {
    let h = hub().await;
    let host = h.b.host();
    if let Some(skopeo) = tool("skopeo") {
        let inspect = |creds: &str| {
            Command::new(&skopeo)
                .args(["inspect", "--tls-verify=false", "--raw", "--creds", creds])
                .arg(format!("docker://{host}/acme/other:v1"))
                .output()
                .unwrap()
        };
        let ok = inspect(&format!("bob:{PASSWORD}"));
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let denied = inspect(&format!("dave:{PASSWORD}"));
        assert!(!denied.status.success());
        let copy = Command::new(&skopeo)
            .args([
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .args(["--src-creds", &format!("bob:{PASSWORD}")])
            .args(["--dest-creds", &format!("acme+ci:{}", h.robot_secret)])
            .arg(format!("docker://{host}/acme/other:v1"))
            .arg(format!("docker://{host}/acme/copied:v1"))
            .output()
            .unwrap();
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
    } else {
        assert!(!crate::harness::required(), "skopeo is required in CI");
    }
    if let (Some(ctr), Ok(address)) = (tool("ctr"), std::env::var("BERTH_TEST_CONTAINERD")) {
        let ctr_cmd = |args: &[&str]| {
            let mut c = Command::new(&ctr);
            c.args(["--address", &address, "--namespace", "berth-auth-test"])
                .args(args);
            c
        };
        let image = format!("{host}/acme/other:v1");
        let out = ctr_cmd(&[
            "content",
            "fetch",
            "--plain-http",
            "--user",
            &format!("carol:{PASSWORD}"),
            &image,
        ])
        .output()
        .unwrap();
        assert!(!out.status.success(), "carol may not read acme/other");
        let out = ctr_cmd(&[
            "content",
            "fetch",
            "--plain-http",
            "--user",
            &format!("bob:{PASSWORD}"),
            &image,
        ])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Fetched content is garbage-collected by containerd with the lease; nothing to tidy.
    } else {
        assert!(
            !crate::harness::required(),
            "ctr and the test containerd are required in CI"
        );
    }
}

#[tokio::test]
async fn realm_urls_follow_a_trusted_proxy_and_ignore_forged_headers() {
    let challenge = |b: &Berth| {
        let url = b.url("/v2/");
        async move {
            let resp = bare()
                .get(url)
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "registry.example.com")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    // Not behind a trusted proxy: the headers are ignored.
    let direct = start_with_auth(&[]);
    assert!(
        challenge(&direct)
            .await
            .starts_with(&format!("Bearer realm=\"http://{}/token\"", direct.host())),
    );
    // Behind one: the client's scheme and host.
    let proxied = start_with_auth(&[("BERTH_SERVER_TRUST_FORWARDED_HEADERS", "true")]);
    assert!(
        challenge(&proxied)
            .await
            .starts_with("Bearer realm=\"https://registry.example.com/token\",service=\"berth\"")
    );
    // A fixed realm wins over both.
    let fixed = start_with_auth(&[
        ("BERTH_AUTH_REALM", "https://auth.example.com/token"),
        ("BERTH_AUTH_SERVICE", "registry.example.com"),
    ]);
    assert_eq!(
        challenge(&fixed).await,
        "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\""
    );
}

/// The storage-lifecycle API (tag history and restores) asks what `/v2` asks: pull to read,
/// push to change; public repositories are readable by anyone.
#[tokio::test]
async fn tag_history_needs_pull_and_restores_need_push() {
    let h = hub().await;
    let b = &h.b;
    b.push_image("acme/app", "v1", 5, 1).await;
    let history = |who: Option<(&'static str, &'static str)>, repo: &'static str| {
        let mut req = bare().get(b.url(&format!("/api/v1/tag-history/{repo}")));
        if let Some((user, password)) = who {
            req = req.header("authorization", basic_header(user, password));
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(history(None, "acme/pub").await, StatusCode::OK);
    assert_eq!(history(None, "acme/app").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        history(Some(("carol", PASSWORD)), "acme/app").await,
        StatusCode::OK
    );
    assert!(
        !history(Some(("carol", PASSWORD)), "acme/other")
            .await
            .is_success()
    );
    assert!(
        !history(Some(("dave", PASSWORD)), "acme/app")
            .await
            .is_success()
    );
    assert!(
        !history(Some(("carol", "wrong")), "acme/app")
            .await
            .is_success()
    );

    let restore = |user: &'static str| {
        let req = bare()
            .post(b.url("/api/v1/tag-restore/acme/app"))
            .header("authorization", basic_header(user, PASSWORD))
            .json(&serde_json::json!({"tag": "v1", "digest": h.app_manifest}));
        async move { req.send().await.unwrap() }
    };
    let refused = restore("carol").await;
    assert!(!refused.status().is_success(), "{:?}", refused.status());
    let restored = restore("bob").await;
    assert_eq!(restored.status(), StatusCode::OK);
    let head = b.head("/v2/acme/app/manifests/v1").await;
    assert_eq!(
        head.headers()["docker-content-digest"],
        h.app_manifest.as_str()
    );
}
