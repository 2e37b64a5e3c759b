//! Login throttling as an attacker meets it: what a client sends as a user name never becomes
//! server state unless an account could have it, guessing is stopped where it happens, and no
//! one can lock a user out of where they work or lock out a token or robot at all.

use reqwest::StatusCode;
use serde_json::Value;

use crate::auth::{PASSWORD, create_token, start_with_auth};
use crate::harness::Berth;

/// The throttle's table sizes, from `/metrics`: account+address, address, account, signed-in.
async fn tables(b: &Berth) -> [f64; 4] {
    let m = crate::metrics::scrape(b).await;
    ["account_address", "address", "account", "signed_in"].map(|table| {
        m.get("berth_login_throttle_entries", &[("table", table)])
            .unwrap_or_else(|| panic!("no throttle gauge for {table}"))
    })
}

/// `GET /token` with Basic credentials, from `from` (an `X-Forwarded-For` the server trusts).
async fn login(b: &Berth, user: &str, password: &str, from: &str) -> StatusCode {
    reqwest::Client::new()
        .get(b.url("/token?service=berth"))
        .basic_auth(user, Some(password))
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
        .status()
}

fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("BERTH_SERVER_TRUST_FORWARDED_HEADERS", "true"),
        ("BERTH_AUTH_LOGIN_FREE_FAILURES", "3"),
        ("BERTH_AUTH_LOGIN_ADDRESS_FREE_FAILURES", "6"),
        ("BERTH_AUTH_LOGIN_ACCOUNT_FREE_FAILURES", "8"),
        ("BERTH_AUTH_LOGIN_LOCKOUT_SECS", "600"),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn names_no_account_could_have_are_refused_without_keeping_anything() {
    let b = start_with_auth(&settings(&[]));
    let before = tables(&b).await;
    // 250 KB user names, over /token, /v2/ and the admin API, from many addresses.
    let huge = "a".repeat(250_000);
    let client = reqwest::Client::new();
    for i in 0..20 {
        let from = format!("198.51.100.{i}");
        assert_eq!(
            login(&b, &huge, "guess-guess-guess", &from).await,
            StatusCode::UNAUTHORIZED
        );
        for path in ["/v2/", "/api/v1/user"] {
            let r = client
                .get(b.url(path))
                .basic_auth(&huge, Some("guess-guess-guess"))
                .header("x-forwarded-for", &from)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
    }
    for odd in ["Alice", "a/b", "acme+", "+ci", "acme+ci+x", "é"] {
        assert_eq!(
            login(&b, odd, "guess-guess-guess", "198.51.100.99").await,
            StatusCode::UNAUTHORIZED,
            "{odd}"
        );
    }
    assert_eq!(
        tables(&b).await,
        before,
        "nothing kept for impossible names"
    );

    // A name that could be an account counts against the address (and the pair), not an
    // account, until it is one.
    assert_eq!(
        login(&b, "ghost", "guess-guess-guess", "198.51.100.1").await,
        StatusCode::UNAUTHORIZED
    );
    let [pairs, addresses, accounts, _] = tables(&b).await;
    assert_eq!(
        [pairs, addresses, accounts],
        [before[0] + 1.0, before[1] + 1.0, before[2]]
    );
    assert_eq!(
        login(&b, "root", "guess-guess-guess", "198.51.100.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(tables(&b).await[2], before[2] + 1.0, "root exists");
}

/// A user `frank` with a personal token; returns the token's secret.
fn frank_with_token(b: &Berth) -> String {
    b.admin_ok(
        &["user", "add", "frank", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    b.admin_ok(&["org", "add", "acme", "--owner", "frank"], "");
    create_token(b, "frank", "laptop", "*:pull")
}

fn robot(b: &Berth) -> String {
    create_token(b, "acme", "ci", "acme/*:pull,push")
}

#[tokio::test]
async fn a_password_attack_locks_the_attacker_out_not_the_user_or_their_tokens() {
    let b = start_with_auth(&settings(&[]));
    let token = frank_with_token(&b);
    let robot = robot(&b);
    // frank signs in from his office.
    assert_eq!(
        login(&b, "frank", PASSWORD, "203.0.113.10").await,
        StatusCode::OK
    );

    // The attacker guesses from one address until it is locked.
    let attacker = "192.0.2.66";
    for _ in 0..3 {
        assert_eq!(
            login(&b, "frank", "guess-guess-guess", attacker).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&b, "frank", "guess-guess-guess", attacker).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&b, "frank", PASSWORD, attacker).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits out the lockout there"
    );
    // frank is not locked anywhere else, and tokens are never throttled, even from the
    // attacker's own address.
    assert_eq!(
        login(&b, "frank", PASSWORD, "203.0.113.10").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&b, "frank", PASSWORD, "203.0.113.11").await,
        StatusCode::OK
    );
    assert_eq!(login(&b, "frank", &token, attacker).await, StatusCode::OK);
    assert_eq!(login(&b, "acme+ci", &robot, attacker).await, StatusCode::OK);
    let r = reqwest::Client::new()
        .get(b.url("/v2/"))
        .basic_auth("acme+ci", Some(&robot))
        .header("x-forwarded-for", attacker)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "robots keep pushing while frank is attacked"
    );
}

#[tokio::test]
async fn distributed_guessing_is_held_back_but_not_from_where_the_user_signed_in() {
    let b = start_with_auth(&settings(&[]));
    let token = frank_with_token(&b);
    assert_eq!(
        login(&b, "frank", PASSWORD, "203.0.113.10").await,
        StatusCode::OK
    );
    // Nine guesses from nine addresses: each address stays under its own allowance, the
    // account goes over its allowance of eight.
    for i in 0..9 {
        assert_eq!(
            login(&b, "frank", "guess-guess-guess", &format!("192.0.2.{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&b, "frank", PASSWORD, "192.0.2.200").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a new address waits"
    );
    assert_eq!(
        login(&b, "frank", PASSWORD, "203.0.113.10").await,
        StatusCode::OK,
        "where frank signed in, he still can"
    );
    assert_eq!(
        login(&b, "frank", &token, "192.0.2.201").await,
        StatusCode::OK
    );
    // Another account is untouched.
    b.admin_ok(
        &["user", "add", "grace", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(
        login(&b, "grace", PASSWORD, "192.0.2.202").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_stopped() {
    let b = start_with_auth(&settings(&[]));
    frank_with_token(&b);
    for i in 0..7 {
        let status = login(&b, &format!("user{i}"), "guess-guess-guess", "192.0.2.77").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&b, "frank", PASSWORD, "192.0.2.77").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Its IPv6 neighbours in the same /64 are the same subscriber.
    for i in 0..7 {
        let from = format!("2001:db8:7:7::{i:x}");
        login(&b, &format!("user{i}"), "guess-guess-guess", &from).await;
    }
    assert_eq!(
        login(&b, "frank", PASSWORD, "2001:db8:7:7::ffff").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(&b, "frank", PASSWORD, "2001:db8:7:8::1").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_scopes_with_names_v2_refuses_grant_nothing() {
    let b = start_with_auth(&[]);
    b.admin_ok(
        &["user", "add", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let granted = |scope: &'static str| {
        let url = b.url(&format!(
            "/token?service=berth&scope={}",
            form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
        ));
        async move {
            let body: Value = reqwest::Client::new()
                .get(url)
                .basic_auth("bob", Some(PASSWORD))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let jwt = body["token"].as_str().unwrap().to_owned();
            let payload = jwt.split('.').nth(1).unwrap();
            let claims: Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                    .unwrap(),
            )
            .unwrap();
            claims["access"].clone()
        }
    };
    for scope in [
        "repository:bob/../acme/app:pull,push",
        "repository:bob/x/:push",
        "repository:bob/x:acme/app:push",
        "repository:bob//x:push",
    ] {
        assert_eq!(granted(scope).await, Value::Array(vec![]), "{scope}");
    }
    let ok = granted("repository:bob/x:pull,push").await;
    assert_eq!(ok[0]["name"], "bob/x");
    assert_eq!(ok[0]["actions"], serde_json::json!(["pull", "push"]));
}

#[tokio::test]
async fn local_passwords_can_be_reserved_to_administrators() {
    let b = start_with_auth(&[("BERTH_AUTH_LOCAL_PASSWORDS", "admins")]);
    let token = frank_with_token(&b);
    let client = reqwest::Client::new();
    let token_for = |user: &'static str, password: String| {
        client
            .get(b.url("/token?service=berth"))
            .basic_auth(user, Some(password))
            .send()
    };
    assert_eq!(
        token_for("frank", PASSWORD.into()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a non-administrator's password no longer signs in"
    );
    assert_eq!(
        token_for("frank", token).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        token_for("root", "root-password-1".into())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The web UI refuses the password too.
    let mut web = crate::ui::Web::new(&b);
    let form = web.get("/ui/login").await;
    let csrf = form.csrf();
    let r = web
        .post(
            "/ui/login",
            &[
                ("csrf", &csrf),
                ("username", "frank"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    web.sign_in("root", "root-password-1").await;
    let account = web.get("/ui/account").await;
    assert!(
        account.has("A local account"),
        "the page says where the identity comes from"
    );
}
