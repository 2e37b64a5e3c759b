//! The JSON administration API (`/api/v1`): what each kind of caller may do, and that what it
//! does takes effect on the registry.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Berth;

const ROOT: (&str, &str) = ("root", "root-password-1");

struct Api<'a> {
    b: &'a Berth,
}

impl Api<'_> {
    async fn call(
        &self,
        who: Option<(&str, &str)>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new().request(method, self.b.url(path));
        if let Some((u, p)) = who {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }
}

#[tokio::test]
async fn the_admin_api_manages_accounts_teams_tokens_and_visibility() {
    let b = Berth::start_with(&[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", ROOT.0, "--admin", "--password-stdin"],
        &format!("{}\n", ROOT.1),
    );
    let api = Api { b: &b };
    use Method as M;
    let alice = ("alice", "alice-password");
    let bob = ("bob", "bob-password-1");

    // Nobody, then a wrong password, then the administrator.
    let (s, v) = api.call(None, M::GET, "/api/v1/user", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"], "unauthorized");
    let (s, _) = api
        .call(
            Some(("root", "nope-nope-nope")),
            M::GET,
            "/api/v1/user",
            None,
        )
        .await;
    assert_eq!(s, 401);
    let (s, v) = api.call(Some(ROOT), M::GET, "/api/v1/user", None).await;
    assert_eq!(
        (s, v["name"].clone(), v["admin"].clone()),
        (StatusCode::OK, json!("root"), json!(true))
    );

    // Users: only administrators create them; bad input is explained.
    for (who, body, status) in [
        (
            Some(ROOT),
            json!({"name": "alice", "password": alice.1}),
            201,
        ),
        (Some(ROOT), json!({"name": "bob", "password": bob.1}), 201),
        (
            Some(ROOT),
            json!({"name": "alice", "password": alice.1}),
            409,
        ),
        (
            Some(ROOT),
            json!({"name": "Bad<script>", "password": "whatever-long"}),
            400,
        ),
        (Some(ROOT), json!({"name": "shorty", "password": "x"}), 400),
        (
            Some(ROOT),
            json!({"name": "x", "password": "long-enough", "extra": 1}),
            400,
        ),
        (
            Some(alice),
            json!({"name": "eve", "password": "eve-password"}),
            403,
        ),
    ] {
        let (s, v) = api
            .call(who, M::POST, "/api/v1/users", Some(body.clone()))
            .await;
        assert_eq!(s.as_u16(), status, "{body} -> {v}");
    }
    let (_, v) = api.call(Some(ROOT), M::GET, "/api/v1/users", None).await;
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "root"]);
    // Users change their own password, not others'.
    let (s, _) = api
        .call(
            Some(alice),
            M::PATCH,
            "/api/v1/users/bob",
            Some(json!({"password": "hijacked-pw"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .call(
            Some(alice),
            M::PATCH,
            "/api/v1/users/alice",
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!(s, 403, "no self-promotion");

    // Organizations: any user founds one and owns it; owners manage members and teams.
    let (s, _) = api
        .call(
            Some(alice),
            M::POST,
            "/api/v1/orgs",
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = api
        .call(Some(bob), M::PUT, "/api/v1/orgs/acme/members/bob", None)
        .await;
    assert_eq!(s, 403, "bob cannot add himself");
    let (s, _) = api
        .call(
            Some(alice),
            M::POST,
            "/api/v1/orgs/acme/teams",
            Some(json!({"name": "devs"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = api
        .call(
            Some(alice),
            M::PUT,
            "/api/v1/orgs/acme/teams/devs/members/bob",
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call(
            Some(alice),
            M::PUT,
            "/api/v1/orgs/acme/teams/devs/grants",
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = api
        .call(
            Some(alice),
            M::PUT,
            "/api/v1/orgs/acme/teams/devs/grants",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = api
        .call(Some(bob), M::GET, "/api/v1/orgs/acme/teams", None)
        .await;
    assert_eq!(v["teams"][0]["members"], json!(["bob"]));
    assert_eq!(
        v["teams"][0]["grants"],
        json!([{"repository": null, "role": "write"}])
    );
    let (_, v) = api.call(Some(bob), M::GET, "/api/v1/orgs", None).await;
    assert_eq!(
        v["organizations"],
        json!([{"name": "acme", "owner": false}])
    );

    // bob can now push to acme (team write), through the registry with Basic.
    let blob = reqwest::Client::new()
        .post(b.url("/v2/acme/app/blobs/uploads/"))
        .basic_auth(bob.0, Some(bob.1))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 202);

    // Robots: created by owners, the secret shown once, usable for pulls and pushes.
    let (s, v) = api
        .call(
            Some(alice),
            M::POST,
            "/api/v1/orgs/acme/robots",
            Some(json!({"name": "ci", "scopes": ["acme/*:pull,push"], "expires_days": 30})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["login"], "acme+ci");
    let secret = v["secret"].as_str().unwrap().to_owned();
    let (s, _) = api
        .call(
            Some(bob),
            M::POST,
            "/api/v1/orgs/acme/robots",
            Some(json!({"name": "x", "scopes": ["*:pull"]})),
        )
        .await;
    assert_eq!(s, 403);
    // A robot's scope stays in its organization, whoever asks; nothing is saved.
    for (who, rule) in [
        (alice, "*:pull"),
        (alice, "acmeco/*:pull"),
        (alice, "beta/app:pull,push"),
        (ROOT, "other/app:pull"),
    ] {
        let (s, v) = api
            .call(
                Some(who),
                M::POST,
                "/api/v1/orgs/acme/robots",
                Some(json!({"name": "wide", "scopes": ["acme/app:pull", rule]})),
            )
            .await;
        assert_eq!(s, 400, "{rule}: {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(rule) && message.contains("outside organization acme"),
            "{v}"
        );
    }
    let (_, v) = api
        .call(Some(alice), M::GET, "/api/v1/orgs/acme/robots", None)
        .await;
    assert_eq!(v["robots"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(
        v["robots"][0].get("secret").is_none(),
        "secrets are never listed"
    );
    let pushed = reqwest::Client::new()
        .post(b.url("/v2/acme/app/blobs/uploads/"))
        .basic_auth("acme+ci", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 202);
    // Tokens cannot administer.
    let (s, _) = api
        .call(Some(("acme+ci", &secret)), M::GET, "/api/v1/orgs", None)
        .await;
    assert_eq!(s, 403);

    // Personal tokens: own ones only; revoked ones stop working.
    let (s, v) = api
        .call(
            Some(bob),
            M::POST,
            "/api/v1/tokens",
            Some(json!({"name": "laptop", "scopes": ["acme/*:pull"]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let pat = v["secret"].as_str().unwrap().to_owned();
    let tags = |secret: String| {
        reqwest::Client::new()
            .get(b.url("/v2/acme/app/tags/list"))
            .basic_auth("bob", Some(secret))
            .send()
    };
    assert_ne!(tags(pat.clone()).await.unwrap().status(), 401);
    let (s, _) = api
        .call(Some(bob), M::DELETE, "/api/v1/tokens/laptop", None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(tags(pat).await.unwrap().status(), 401);
    let (_, v) = api.call(Some(bob), M::GET, "/api/v1/tokens", None).await;
    assert!(v["tokens"][0]["revoked_at"].is_number(), "{v}");

    // Visibility needs every right on the repository; then anyone may pull.
    let (s, _) = api
        .call(
            Some(bob),
            M::PUT,
            "/api/v1/visibility/acme/app",
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(s, 403, "write is not admin");
    let (s, v) = api
        .call(
            Some(alice),
            M::PUT,
            "/api/v1/visibility/acme/app",
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!((s.as_u16(), v["public"].clone()), (200, json!(true)));
    let (_, v) = api
        .call(Some(bob), M::GET, "/api/v1/visibility/acme/app", None)
        .await;
    assert_eq!(v["public"], true);

    // Disabling a user locks them out at once.
    let (s, _) = api
        .call(
            Some(ROOT),
            M::PATCH,
            "/api/v1/users/bob",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api.call(Some(bob), M::GET, "/api/v1/user", None).await;
    assert_eq!(s, 401);
    let (s, _) = api
        .call(Some(ROOT), M::DELETE, "/api/v1/users/bob", None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call(Some(ROOT), M::DELETE, "/api/v1/users/bob", None)
        .await;
    assert_eq!(s, 404);
    let (s, v) = api.call(Some(ROOT), M::GET, "/api/v1/nothing", None).await;
    assert_eq!((s.as_u16(), v["error"].clone()), (404, json!("not_found")));
}
