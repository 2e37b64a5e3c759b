//! berth's own token keys: the JWKS at `/.well-known/jwks.json` verifies registry tokens in
//! another implementation, and `berth admin key rotate` (run beside the servers, on the
//! database alone) reaches every replica, which publish the new key before any signs with it
//! and retire the old one after one token lifetime (its refresh tokens after theirs).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::auth::{PASSWORD, start_with_auth};
use crate::harness::{Backend, Berth, backend};

/// A client with no default credentials.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The key ids of a replica's JWKS now.
async fn jwks_kids(b: &Berth) -> Vec<String> {
    let body: Value = bare()
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// A registry token for `user` from a replica (password grant; with `offline`, also a
/// refresh token).
async fn login(b: &Berth, user: &str, offline: bool) -> (String, Option<String>) {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", user),
        ("password", PASSWORD),
        ("service", "berth"),
        ("client_id", "test"),
        ("scope", "repository:keys/app:pull"),
    ];
    if offline {
        form.push(("access_type", "offline"));
    }
    token_request(b, &form).await.expect("login")
}

/// A refresh grant; `None` if refused.
async fn refresh(b: &Berth, refresh_token: &str) -> Option<String> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("service", "berth"),
        ("scope", "repository:keys/app:pull"),
    ];
    token_request(b, &form).await.map(|(t, _)| t)
}

async fn token_request(b: &Berth, form: &[(&str, &str)]) -> Option<(String, Option<String>)> {
    let body = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let resp = bare()
        .post(b.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body: Value = resp.json().await.unwrap();
    Some((
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().map(str::to_owned),
    ))
}

/// Whether a replica accepts a registry token.
async fn accepts(b: &Berth, token: &str) -> bool {
    let resp = bare()
        .get(b.url("/v2/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    resp.status() == StatusCode::OK
}

/// `berth admin key list` as (kid, state) pairs.
fn key_states(b: &Berth) -> Vec<(String, String)> {
    b.admin_ok(&["key", "list"], "")
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            // KID, CREATED (date, time, UTC), STATE, ...
            (cells[0].to_owned(), cells[4].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_jwks_verifies_registry_tokens_in_another_implementation() {
    let b = start_with_auth(&[]);
    let resp = bare()
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=10");
    let jwks: jsonwebtoken::jwk::JwkSet = resp.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let raw: Value = bare()
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut fields: Vec<&String> = raw["keys"][0].as_object().unwrap().keys().collect();
    fields.sort();
    // Public coordinates only: no `d`.
    assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(raw["keys"][0]["kty"], "EC");
    assert_eq!(raw["keys"][0]["crv"], "P-256");
    assert_eq!(raw["keys"][0]["alg"], "ES256");
    assert_eq!(raw["keys"][0]["use"], "sig");

    let (token, _) = {
        let resp = bare()
            .get(b.url("/token?service=berth&scope=repository:root/app:pull"))
            .basic_auth("root", Some(crate::auth::ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        (body["token"].as_str().unwrap().to_owned(), ())
    };
    let jwk = jwks
        .find(&kid(&token))
        .expect("the token's key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["berth"]);
    v.set_issuer(&["berth"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "root");
    // The check can fail: a tampered payload does not verify with that key.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(
            &serde_json::json!({"sub": "mallory", "aud": "berth", "iss": "berth",
            "exp": claims["exp"]}),
        )
        .unwrap(),
    );
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &v).is_err());
}

#[tokio::test]
async fn key_rotation_is_refused_with_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signing.pem");
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(&file, pair.serialize_pem()).unwrap();
    let b = start_with_auth(&[("BERTH_AUTH_SIGNING_KEY_FILE", file.to_str().unwrap())]);
    let (ok, _, err) = b.admin(&["key", "rotate"], "");
    assert!(!ok);
    assert!(err.contains("auth.signing_key_file is set"), "{err}");
    let listed = key_states(&b);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(jwks_kids(&b).await, [listed[0].0.clone()]);
}

/// Replicas of one registry with authentication and quick key timings: on PostgreSQL + S3
/// two replicas sharing the database; on SQLite one server (with `berth admin` beside it).
fn servers(dir: &Path) -> Vec<Berth> {
    let env = [
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_AUTH_KEY_RELOAD_SECS", "1"),
        ("BERTH_AUTH_KEY_ACTIVATION_DELAY_SECS", "3"),
        ("BERTH_AUTH_TOKEN_TTL_SECS", "2"),
        ("BERTH_AUTH_REFRESH_TOKEN_TTL_SECS", "10"),
    ];
    let n = if backend() == Backend::PostgresS3 {
        2
    } else {
        1
    };
    let all: Vec<Berth> = (0..n).map(|_| Berth::start_in(dir, &env)).collect();
    all[0].admin_ok(
        &["user", "add", "erin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    all
}

/// The rotation's timeline, checked on every replica: before the switch tokens carry the old
/// key; every token any replica signs carries a key every replica already publishes; after
/// the switch tokens signed by the old key are still accepted; once access tokens of the
/// old key have expired it leaves the JWKS, its refresh tokens still work; after those
/// expired too the key is deleted.
#[tokio::test]
async fn a_rotation_reaches_every_replica_before_any_signs_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let r = servers(&tmp.path().join("shared"));
    let old = jwks_kids(&r[0]).await;
    assert_eq!(old.len(), 1);
    let old = old[0].clone();
    for b in &r {
        assert_eq!(jwks_kids(b).await, [old.as_str()]);
    }

    let rotated_at = Instant::now();
    let out = r[0].admin_ok(&["key", "rotate"], "");
    let new = out
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert!(out.contains(&format!("key {old} retires")), "{out}");
    assert_ne!(new, old);
    // A second rotation waits for the first key to start signing.
    let (ok, _, err) = r[0].admin(&["key", "rotate"], "");
    assert!(!ok && err.contains("rotate again after that"), "{err}");
    let audit = r[0].cli(&["audit", "--action", "key", "--json"], &[]).1;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit[0]["action"], "key.rotate");
    assert_eq!(audit[0]["detail"]["replaces"][0], old.as_str());

    // Until every replica signs with the new key: each token a replica issues carries a key
    // that every replica publishes at that moment.
    let mut last_old_token = None;
    let mut last_old_refresh = None;
    let mut switched = vec![false; r.len()];
    while !switched.iter().all(|s| *s) {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(60),
            "not every replica switched: {switched:?}"
        );
        for (i, b) in r.iter().enumerate() {
            let (token, refresh_token) = login(b, "erin", true).await;
            let refresh_token = refresh_token.expect("refresh token");
            assert_eq!(kid(&refresh_token), kid(&token));
            let k = kid(&token);
            for (j, other) in r.iter().enumerate() {
                assert!(
                    jwks_kids(other).await.contains(&k),
                    "replica {i} signs with {k}, which replica {j} does not publish"
                );
            }
            if k == old {
                assert!(!switched[i], "replica {i} went back to the old key");
                last_old_token = Some(token);
                last_old_refresh = Some(refresh_token);
            } else {
                assert_eq!(k, new);
                switched[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The switch waited for the activation delay (3 s, less one reload interval). How many
    // rounds fit before it depends on the machine's load, so only the lower bound is checked;
    // that tokens of the old key were still issued is checked below.
    let switched_after = rotated_at.elapsed();
    assert!(
        switched_after >= Duration::from_secs(2),
        "{switched_after:?}"
    );
    let last_old_token = last_old_token.expect("tokens of the old key before the switch");
    // Signed just before the switch, it outlives the old key's access tokens.
    let refresh_token = last_old_refresh.expect("refresh tokens of the old key");
    for b in &r {
        assert!(accepts(b, &last_old_token).await);
        assert_eq!(jwks_kids(b).await, [old.clone(), new.clone()]);
    }
    let states = key_states(&r[0]);
    assert_eq!(
        states,
        [
            (old.clone(), "retiring".to_owned()),
            (new.clone(), "active".to_owned())
        ]
    );

    // The old key retires for access tokens one token lifetime plus the leeway (2 + 30 s)
    // after the switch, and leaves the JWKS; its refresh tokens work until their lifetime and
    // the leeway (10 + 30 s) have passed, and give tokens of the new key.
    let deadline = rotated_at + Duration::from_secs(3 + 32 + 2);
    tokio::time::sleep_until(deadline.into()).await;
    for b in &r {
        assert_eq!(jwks_kids(b).await, [new.as_str()]);
        assert!(!accepts(b, &last_old_token).await);
        let fresh = refresh(b, &refresh_token)
            .await
            .expect("refresh tokens of the retired key still work");
        assert_eq!(kid(&fresh), new);
        assert!(accepts(b, &fresh).await);
    }
    assert_eq!(
        key_states(&r[0]),
        [
            (old.clone(), "retired".to_owned()),
            (new.clone(), "active".to_owned())
        ]
    );
    // Then it is gone: refused, and deleted by the replicas' next reload.
    tokio::time::sleep_until((rotated_at + Duration::from_secs(3 + 40 + 3)).into()).await;
    for b in &r {
        assert!(refresh(b, &refresh_token).await.is_none());
    }
    assert_eq!(key_states(&r[0]), [(new.clone(), "active".to_owned())]);
}

/// A leaked key: `rotate --now` makes another key sign at once and `retire` deletes the
/// leaked one; every replica then refuses the tokens it signed (access and refresh) and
/// leaves it out of the JWKS at its next reload (1 s here). The key that signs now cannot be
/// retired.
#[tokio::test]
async fn a_leaked_key_is_retired_at_once_on_every_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let r = servers(&tmp.path().join("shared"));
    let old = jwks_kids(&r[0]).await[0].clone();
    let (leaked, leaked_refresh) = login(&r[0], "erin", true).await;
    let leaked_refresh = leaked_refresh.expect("refresh token");
    assert_eq!(kid(&leaked), old);

    let (ok, _, err) = r[0].admin(&["key", "retire", &old], "");
    assert!(!ok, "the only signing key was retired");
    assert!(err.contains("rotate --now first"), "{err}");
    let (ok, _, err) = r[0].admin(&["key", "retire", "0123456789abcdef01234567"], "");
    assert!(!ok && err.contains("not found"), "{err}");
    for b in &r {
        assert!(accepts(b, &leaked).await);
    }

    let out = r[0].admin_ok(&["key", "rotate", "--now"], "");
    let new = out
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert_ne!(new, old);
    let out = r[0].admin_ok(&["key", "retire", &old], "");
    assert!(out.contains(&format!("retired key {old}")), "{out}");
    assert_eq!(key_states(&r[0]), [(new.clone(), "active".to_owned())]);
    // Every replica's next reload.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for b in &r {
        assert_eq!(jwks_kids(b).await, [new.as_str()]);
        assert!(!accepts(b, &leaked).await, "a token of the retired key");
        assert!(refresh(b, &leaked_refresh).await.is_none());
        let (fresh, _) = login(b, "erin", false).await;
        assert_eq!(kid(&fresh), new);
        assert!(accepts(b, &fresh).await);
    }
    let audit = r[0].cli(&["audit", "--action", "key", "--json"], &[]).1;
    assert!(audit.contains("key.retire"), "{audit}");
}
