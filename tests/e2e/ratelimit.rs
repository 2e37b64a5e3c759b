//! Rate limits: `429 TOOMANYREQUESTS` with `Retry-After`, per client address and per
//! account, for each class of request, through the API and to a real `docker pull`.

use reqwest::StatusCode;

use crate::auth::{PASSWORD, basic_header, start_with_auth};
use crate::client::expect_error;
use crate::harness::Berth;
use crate::real_clients::{Docker, busybox, docker_build};

/// The `Retry-After` of a refusal, checked to be whole seconds within `max`.
fn retry_after(resp: &reqwest::Response, max: u64) -> u64 {
    let secs: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!((1..=max).contains(&secs), "Retry-After {secs}");
    secs
}

#[tokio::test]
async fn pulls_past_the_address_limit_get_429_with_retry_after() {
    // 60 a minute: the whole budget at once, then one a second.
    let b = Berth::start_with(&[("BERTH_RATELIMIT_PULL_PER_ADDRESS", "60")]);
    for _ in 0..60 {
        assert_eq!(b.get("/v2/").await.status(), StatusCode::OK);
    }
    let refused = b.get("/v2/").await;
    let wait = retry_after(&refused, 1);
    let body = expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("too many pull requests from address 127.0.0.1")
            && message.contains("at most 60 a minute"),
        "{message}"
    );
    // Writes are another class, not limited here.
    b.push_blob("rl/app", b"still accepted").await;
    // After Retry-After, one more pull is allowed.
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
    assert_eq!(b.get("/v2/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn accounts_and_token_requests_have_their_own_budgets() {
    let b = start_with_auth(&[
        ("BERTH_RATELIMIT_PUSH_PER_ACCOUNT", "3"),
        ("BERTH_RATELIMIT_TOKEN_PER_ACCOUNT", "2"),
        ("BERTH_RATELIMIT_TOKEN_PER_ADDRESS", "4"),
    ]);
    for user in ["alice", "bob"] {
        b.admin_ok(
            &["user", "add", user, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }
    let as_user = |user: &str| basic_header(user, PASSWORD);
    let start = |user: &'static str| {
        let b = &b;
        let auth = as_user(user);
        async move {
            b.http
                .post(b.url(&format!("/v2/{user}/app/blobs/uploads/")))
                .header("authorization", auth)
                .send()
                .await
                .expect("post")
        }
    };
    for _ in 0..3 {
        assert_eq!(start("alice").await.status(), StatusCode::ACCEPTED);
    }
    let refused = start("alice").await;
    retry_after(&refused, 20);
    let body = expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    assert!(
        body.to_string()
            .contains("too many push requests from account alice"),
        "{body}"
    );
    // Bob is another account; pulls are another class.
    assert_eq!(start("bob").await.status(), StatusCode::ACCEPTED);
    let tags = b
        .http
        .get(b.url("/v2/alice/app/tags/list"))
        .header("authorization", as_user("alice"))
        .send()
        .await
        .expect("get");
    assert_ne!(tags.status(), StatusCode::TOO_MANY_REQUESTS);

    // Tokens: two per account, four per address.
    let token = |user: &str| {
        let b = &b;
        let auth = as_user(user);
        async move {
            reqwest::Client::new()
                .get(b.url("/token?scope=repository:x/y:pull"))
                .header("authorization", auth)
                .send()
                .await
                .expect("token")
        }
    };
    assert_eq!(token("alice").await.status(), StatusCode::OK);
    assert_eq!(token("alice").await.status(), StatusCode::OK);
    let refused = token("alice").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(&refused, 30);
    assert_eq!(token("bob").await.status(), StatusCode::OK);
    // The fourth request from this address used its last; the fifth is refused for bob too.
    let refused = token("bob").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = refused.text().await.expect("body");
    assert!(body.contains("address 127.0.0.1"), "{body}");
}

#[tokio::test]
async fn docker_pull_past_the_limit_shows_toomanyrequests() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    // Push without limits, then restart the same server (same address and data) with a
    // budget of one pull a minute: docker's version check takes it, the manifest is refused.
    let mut first = Berth::start();
    let image = format!("{}/rl/busybox:1", first.host());
    docker_build(&docker, &busybox, "rate", &image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);
    assert!(first.terminate(std::time::Duration::from_secs(10)));
    let b = Berth::start_at(
        &first.data_dir,
        &[("BERTH_RATELIMIT_PULL_PER_ADDRESS", "1")],
        &first.addr.to_string(),
    );
    let (ok, out, err) = docker.run(&["pull", &image]);
    assert!(!ok, "the pull must be refused: {out}");
    assert!(err.contains("toomanyrequests"), "{err}");
    assert!(err.contains("too many pull requests"), "{err}");
    drop(b);
}
