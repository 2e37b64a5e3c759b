//! Namespaces belong to accounts by record: no order of pushes, account creation and deletion
//! lets a signed-in user gain rights on repositories they were not granted. Each way an account
//! comes to be (the JSON API, `berth admin`, robots, the web UI's view of it) is tried as an
//! attacker would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth::{PASSWORD, basic_header, create_token, start_with_auth};
use crate::harness::Berth;

/// A client that sends `user`'s password with every request.
fn as_user(user: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        basic_header(user, PASSWORD).parse().unwrap(),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn add_user(b: &Berth, name: &str) {
    b.admin_ok(
        &["user", "add", name, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
}

async fn create_org(b: &Berth, client: &reqwest::Client, body: Value) -> (StatusCode, Value) {
    let r = client
        .post(b.url("/api/v1/orgs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What `client` may do to the private repository `repo` (tag `v1`, layer `layer`): read its
/// tags, read the layer, delete the manifest. Deletion is tried only when asked, with a
/// digest that does not exist, so nothing is destroyed.
async fn reach(b: &Berth, client: &reqwest::Client, repo: &str, layer: &str) -> [StatusCode; 3] {
    let tags = client
        .get(b.url(&format!("/v2/{repo}/tags/list")))
        .send()
        .await
        .unwrap()
        .status();
    let blob = client
        .get(b.url(&format!("/v2/{repo}/blobs/{layer}")))
        .send()
        .await
        .unwrap()
        .status();
    let delete = client
        .delete(b.url(&format!("/v2/{repo}/manifests/sha256:{}", "0".repeat(64))))
        .send()
        .await
        .unwrap()
        .status();
    [tags, blob, delete]
}

const DENIED: [StatusCode; 3] = [StatusCode::FORBIDDEN; 3];

#[tokio::test]
async fn founding_an_organization_never_takes_over_a_namespace_nobody_owns() {
    let b = start_with_auth(&[]);
    add_user(&b, "bob");
    let bob = as_user("bob");
    // The reproduction: an administrator pushes a private team/internal without
    // creating an account named team.
    b.push_image("team/internal", "v1", 1, 1).await;
    let layer = b.push_blob("team/internal", b"private layer").await.digest;
    assert_eq!(reach(&b, &bob, "team/internal", &layer).await, DENIED);

    let (status, body) = create_org(&b, &bob, json!({"name": "team"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "namespace_held");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("holds a repository that belongs to no account")
            && message.contains("only an administrator"),
        "{message}"
    );
    // Asking to adopt it does not help a non-administrator.
    let (status, _) = create_org(&b, &bob, json!({"name": "team", "adopt_namespace": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reach(&b, &bob, "team/internal", &layer).await, DENIED);
    // Nor does a user account of that name, created by an administrator without adopting.
    let (ok, _, err) = b.admin(
        &["user", "add", "team", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!ok);
    assert!(err.contains("--adopt-namespace"), "{err}");
    let r = b
        .http
        .post(b.url("/api/v1/users"))
        .json(&json!({"name": "team", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        reach(&b, &as_user("team"), "team/internal", &layer).await[0],
        StatusCode::UNAUTHORIZED
    );

    // The namespace list shows it ownerless, to administrators only.
    let listed: Value = b
        .http
        .get(b.url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let team = listed["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "team")
        .unwrap();
    assert_eq!(team["owner"], Value::Null);
    assert_eq!(team["repositories"], 1);
    let r = bob.get(b.url("/api/v1/namespaces")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An administrator adopting it explicitly gives it to the new organization; bob, who is
    // not in it, still has nothing.
    let (status, body) = create_org(
        &b,
        &b.http,
        json!({"name": "team", "adopt_namespace": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(reach(&b, &bob, "team/internal", &layer).await, DENIED);
    let audit: Value = b
        .http
        .get(b.url("/api/v1/audit?action=org.create"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("adopted_namespace"), "{audit}");
}

#[tokio::test]
async fn the_command_line_refuses_an_inherited_namespace_unless_adopting() {
    let b = start_with_auth(&[]);
    add_user(&b, "carol");
    b.push_image("ops/tools", "v1", 2, 1).await;
    b.push_image("ops/deep/nested", "v1", 3, 1).await;
    let layer = b.push_blob("ops/tools", b"ops layer").await.digest;

    let (ok, _, err) = b.admin(&["org", "add", "ops", "--owner", "carol"], "");
    assert!(!ok, "an inherited namespace needs --adopt-namespace");
    assert!(
        err.contains("holds 2 repositories that belong to no account"),
        "{err}"
    );
    assert_eq!(
        reach(&b, &as_user("carol"), "ops/tools", &layer).await,
        DENIED
    );
    let listed = b.admin_ok(&["namespace", "list"], "");
    assert!(
        listed.lines().any(|l| l.starts_with("ops ")
            && l.contains("- (administrators)")
            && l.trim_end().ends_with('2')),
        "{listed}"
    );

    b.admin_ok(
        &["org", "add", "ops", "--owner", "carol", "--adopt-namespace"],
        "",
    );
    let [tags, blob, delete] = reach(&b, &as_user("carol"), "ops/tools", &layer).await;
    assert_eq!((tags, blob), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        delete,
        StatusCode::NOT_FOUND,
        "allowed, and nothing to delete"
    );
    let listed = b.admin_ok(&["namespace", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("ops ") && l.contains(" ops ")),
        "{listed}"
    );
}

#[tokio::test]
async fn a_deleted_accounts_repositories_stay_out_of_reach_of_its_name() {
    let mut b = start_with_auth(&[]);
    for user in ["alice", "mallory"] {
        add_user(&b, user);
    }
    // alice pushes her own private image and founds an organization with a robot.
    let alice = as_user("alice");
    let root = std::mem::replace(&mut b.http, alice.clone());
    b.push_image("alice/secret", "v1", 4, 1).await;
    let layer = b.push_blob("alice/secret", b"alice's layer").await.digest;
    let (status, _) = create_org(&b, &alice, json!({"name": "acme"})).await;
    assert_eq!(status, StatusCode::CREATED);
    b.push_image("acme/app", "v1", 5, 1).await;
    b.http = root;
    let robot_secret = create_token(&b, "acme", "ci", "acme/*:pull,push");
    let robot = reqwest::Client::new();
    let robot_tags = |client: reqwest::Client| {
        let url = b.url("/v2/acme/app/tags/list");
        let secret = robot_secret.clone();
        async move {
            client
                .get(url)
                .basic_auth("acme+ci", Some(secret))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(robot_tags(robot.clone()).await, StatusCode::OK);

    // Both accounts go; their repositories stay, for administrators alone.
    b.admin_ok(&["org", "delete", "acme"], "");
    b.admin_ok(&["user", "delete", "alice"], "");
    assert_eq!(robot_tags(robot.clone()).await, StatusCode::UNAUTHORIZED);

    // mallory tries every way back in: an organization of either name, over the API ...
    let mallory = as_user("mallory");
    for name in ["alice", "acme"] {
        let (status, body) = create_org(&b, &mallory, json!({"name": name})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
        assert_eq!(body["error"], "namespace_held");
    }
    assert_eq!(reach(&b, &mallory, "alice/secret", &layer).await, DENIED);
    // ... and an administrator recreating "alice" for someone new does not hand them the old
    // alice's images by accident.
    let (ok, _, err) = b.admin(
        &["user", "add", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!ok, "{err}");
    assert!(err.contains("adopt"), "{err}");
    // The robot's name does not come back with a new organization either.
    b.admin_ok(&["org", "add", "acme", "--adopt-namespace"], "");
    assert_eq!(robot_tags(robot).await, StatusCode::UNAUTHORIZED);

    // An account whose namespace is empty leaves its name free.
    let (status, _) = create_org(&b, &mallory, json!({"name": "scratch"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let r = mallory
        .delete(b.url("/api/v1/orgs/scratch"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = create_org(&b, &mallory, json!({"name": "scratch"})).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn turning_authentication_on_leaves_existing_namespaces_to_administrators() {
    let mut open = Berth::start();
    open.push_image("legacy/app", "v1", 6, 1).await;
    let layer = open.push_blob("legacy/app", b"legacy layer").await.digest;
    open.kill();
    let data_dir = open.data_dir.clone();
    let mut b = Berth::start_in(&data_dir, &[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password-1\n",
    );
    add_user(&b, "dave");
    b.http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                basic_header("root", "root-password-1").parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let dave = as_user("dave");
    let (status, _) = create_org(&b, &dave, json!({"name": "legacy"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(reach(&b, &dave, "legacy/app", &layer).await, DENIED);
    // The administrator still reaches it.
    let r = b.get("/v2/legacy/app/tags/list").await;
    assert_eq!(r.status(), StatusCode::OK);
    drop(open);
}

#[tokio::test]
async fn the_web_ui_shows_an_ownerless_namespace_to_nobody_but_administrators() {
    let b = start_with_auth(&[]);
    add_user(&b, "erin");
    b.push_image("hidden/app", "v1", 7, 1).await;
    let (status, _) = create_org(&b, &as_user("erin"), json!({"name": "hidden"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut web = crate::ui::Web::new(&b);
    web.sign_in("erin", PASSWORD).await;
    let page = web.get("/ui/r/hidden/app").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let home = web.get("/ui/").await;
    assert!(!home.has("hidden/app"));
    let mut admin = crate::ui::Web::new(&b);
    admin.sign_in("root", "root-password-1").await;
    let page = admin.get("/ui/r/hidden/app").await;
    assert_eq!(page.status, StatusCode::OK);
}
