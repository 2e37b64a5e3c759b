//! Organizations' own immutable-tag rules (`/api/v1/orgs/{org}/immutable-rules`): who may read
//! and change them, bad input, their audit entries, a dry run that names exactly the tags the
//! rule then freezes, and a rule made on one replica holding on another at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{ADMIN_PASSWORD, PASSWORD, basic_header, create_token, start_with_auth};
use crate::harness::Berth;

pub(crate) const ROOT: (&str, &str) = ("root", ADMIN_PASSWORD);

/// `METHOD path` as `who` (HTTP Basic), with a JSON body if any.
pub(crate) async fn call(
    b: &Berth,
    who: Option<(&str, &str)>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, b.url(path));
    if let Some((user, password)) = who {
        req = req.header("authorization", basic_header(user, password));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) fn add_user(b: &Berth, name: &str) {
    b.admin_ok(
        &["user", "add", name, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
}

/// Organization `org` owned by `owner`, created over the API.
pub(crate) async fn org_of(b: &Berth, org: &str, owner: &str) {
    let (s, v) = call(
        b,
        Some((owner, PASSWORD)),
        Method::POST,
        "/api/v1/orgs",
        Some(json!({"name": org})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// The cast of the permission tests: users alice, bob and carol; organization acme owned by
/// alice with carol a member, beta owned by bob; and acme's robot `acme+ci` (pull and push in
/// acme), whose secret is returned.
pub(crate) async fn two_orgs(b: &Berth) -> String {
    for user in ["alice", "bob", "carol"] {
        add_user(b, user);
    }
    org_of(b, "acme", "alice").await;
    org_of(b, "beta", "bob").await;
    let (s, _) = call(
        b,
        Some(("alice", PASSWORD)),
        Method::PUT,
        "/api/v1/orgs/acme/members/carol",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    create_token(b, "acme", "ci", "acme/*:pull,push")
}

fn rules_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/immutable-rules")
}

/// Pushes another image over `repo:tag`: the status of its manifest `PUT`.
async fn overwrite(b: &Berth, repo: &str, tag: &str, seed: u64) -> StatusCode {
    let other = b
        .push_image(repo, &format!("scratch-{seed}"), seed, 1)
        .await;
    b.put_manifest(repo, tag, other.media_type, &other.bytes)
        .await
        .status()
}

#[tokio::test]
async fn only_owners_and_administrators_manage_an_orgs_rules() {
    let b = start_with_auth(&[]);
    let robot = two_orgs(&b).await;
    let alice = Some(("alice", PASSWORD));
    let bob = Some(("bob", PASSWORD));
    let carol = Some(("carol", PASSWORD));
    let robot = Some(("acme+ci", robot.as_str()));
    let rule = json!({"pattern": "v*"});

    // The owner lists and adds; the administrator too, in any organization.
    let (s, v) = call(&b, alice, Method::GET, &rules_path("acme"), None).await;
    assert_eq!((s, v["rules"].clone()), (StatusCode::OK, json!([])), "{v}");
    let (s, v) = call(
        &b,
        alice,
        Method::POST,
        &rules_path("acme"),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (&v["scope"], &v["pattern"], &v["created_by"]),
        (&json!("acme"), &json!("v*"), &json!("alice"))
    );
    let acme_rule = v["id"].as_i64().unwrap();
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::POST,
        &rules_path("beta"),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let beta_rule = v["id"].as_i64().unwrap();
    let (s, v) = call(&b, Some(ROOT), Method::GET, &rules_path("acme"), None).await;
    assert_eq!(
        (s, v["rules"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );

    // An owner of another organization, a member, a robot and nobody are refused, whatever
    // they try; nothing changes.
    let beta_one = format!("{}/{beta_rule}", rules_path("beta"));
    let acme_one = format!("{}/{acme_rule}", rules_path("acme"));
    let dry = format!("{}/dry-run", rules_path("acme"));
    for (who, method, path, body, status) in [
        (alice, Method::GET, rules_path("beta"), None, 403),
        (
            alice,
            Method::POST,
            rules_path("beta"),
            Some(rule.clone()),
            403,
        ),
        (alice, Method::DELETE, beta_one.clone(), None, 403),
        (bob, Method::GET, rules_path("acme"), None, 403),
        (bob, Method::DELETE, acme_one.clone(), None, 403),
        (bob, Method::POST, dry.clone(), Some(rule.clone()), 403),
        (carol, Method::GET, rules_path("acme"), None, 403),
        (
            carol,
            Method::POST,
            rules_path("acme"),
            Some(json!({"pattern": "x*"})),
            403,
        ),
        (carol, Method::DELETE, acme_one.clone(), None, 403),
        (robot, Method::GET, rules_path("acme"), None, 403),
        (
            robot,
            Method::POST,
            rules_path("acme"),
            Some(json!({"pattern": "x*"})),
            403,
        ),
        (robot, Method::DELETE, acme_one.clone(), None, 403),
        (None, Method::GET, rules_path("acme"), None, 401),
        (None, Method::DELETE, acme_one.clone(), None, 401),
    ] {
        let (s, v) = call(&b, who, method.clone(), &path, body).await;
        assert_eq!(s.as_u16(), status, "{who:?} {method} {path}: {v}");
    }
    // Alice's rule id in beta's path names nothing there.
    let (s, _) = call(
        &b,
        alice,
        Method::DELETE,
        &format!("{}/{acme_rule}", rules_path("beta")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &b,
        bob,
        Method::DELETE,
        &format!("{}/{acme_rule}", rules_path("beta")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for org in ["acme", "beta"] {
        let (_, v) = call(&b, Some(ROOT), Method::GET, &rules_path(org), None).await;
        assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{org}: {v}");
    }

    // Bad input is explained and nothing is saved.
    for (body, status, needle) in [
        (json!({"pattern": "[v"}), 400, "invalid tag pattern"),
        (json!({"pattern": ""}), 400, "pattern"),
        (
            json!({"pattern": "v*", "repository": "beta/app"}),
            400,
            "not in organization acme",
        ),
        (
            json!({"pattern": "v*", "repository": "Acme/App"}),
            400,
            "invalid repository",
        ),
        (
            json!({"pattern": "v*", "extra": 1}),
            400,
            "invalid JSON body",
        ),
        (json!({"pattern": "v*"}), 409, "already exists"),
    ] {
        let (s, v) = call(
            &b,
            alice,
            Method::POST,
            &rules_path("acme"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (_, v) = call(&b, alice, Method::GET, &rules_path("acme"), None).await;
    assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{v}");
    let (s, _) = call(
        &b,
        Some(ROOT),
        Method::POST,
        &rules_path("nosuch"),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every change is audited with who, the old and the new rule.
    let (s, _) = call(&b, alice, Method::DELETE, &acme_one, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&b, alice, Method::DELETE, &acme_one, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=immutable&n=10",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, &Value, &Value)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                &e["detail"]["old"],
                &e["detail"]["new"],
            )
        })
        .collect();
    let acme_value = json!({"id": acme_rule, "scope": "acme", "pattern": "v*"});
    let beta_value = json!({"id": beta_rule, "scope": "beta", "pattern": "v*"});
    assert_eq!(
        summary,
        vec![
            (
                "immutable.rule.delete",
                "alice",
                "acme",
                &acme_value,
                &Value::Null
            ),
            (
                "immutable.rule.add",
                "root",
                "beta",
                &Value::Null,
                &beta_value
            ),
            (
                "immutable.rule.add",
                "alice",
                "acme",
                &Value::Null,
                &acme_value
            ),
        ],
        "{entries:#?}"
    );
}

#[tokio::test]
async fn a_dry_run_names_exactly_the_tags_the_rule_then_freezes() {
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    let alice = Some(("alice", PASSWORD));
    let tags = [
        ("acme/app", "v1"),
        ("acme/app", "v2.0"),
        ("acme/app", "latest"),
        ("acme/app/sub", "v3"),
        ("acme/web", "v1"),
    ];
    for (i, (repo, tag)) in tags.iter().enumerate() {
        b.push_image(repo, tag, i as u64 + 1, 1).await;
    }
    let rule = json!({"pattern": "v*", "repository": "acme/app"});
    let dry = format!("{}/dry-run", rules_path("acme"));
    let (s, v) = call(&b, alice, Method::POST, &dry, Some(rule.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let named: Vec<(String, String)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["repository"].as_str().unwrap().to_owned(),
                t["tag"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("acme/app", "v1"),
        ("acme/app", "v2.0"),
        ("acme/app/sub", "v3"),
    ];
    assert_eq!(
        named,
        expected.map(|(r, t)| (r.to_owned(), t.to_owned())).to_vec()
    );
    // A dry run saves nothing: overwrites still work.
    let (_, v) = call(&b, alice, Method::GET, &rules_path("acme"), None).await;
    assert_eq!(v["rules"], json!([]));

    let (s, v) = call(&b, alice, Method::POST, &rules_path("acme"), Some(rule)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().unwrap();
    // Exactly the tags of the dry run are frozen now, at once.
    for (i, (repo, tag)) in tags.iter().enumerate() {
        let frozen = named.iter().any(|(r, t)| r == repo && t == tag);
        let status = overwrite(&b, repo, tag, 100 + i as u64).await;
        let want = if frozen {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, want, "{repo}:{tag}");
    }
    // Deleting the tag is refused too, naming the rule.
    let del = b.delete("/v2/acme/app/manifests/v1").await;
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    let text = del.text().await.unwrap();
    assert!(
        text.contains("immutable-tag rule for acme/app: v*"),
        "{text}"
    );
    // Deleted, the rule stops applying at once.
    let (s, _) = call(
        &b,
        alice,
        Method::DELETE,
        &format!("{}/{id}", rules_path("acme")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        overwrite(&b, "acme/app", "v1", 200).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn configured_rules_stay_whatever_an_owner_does() {
    let config = "[[policies.immutable]]\nscope = \"acme\"\ntags = [\"stable\"]\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let b = start_with_auth(&[("BERTH_CONFIG", file.to_str().unwrap())]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    b.push_image("acme/app", "stable", 1, 1).await;
    b.push_image("acme/app", "v1", 2, 1).await;
    // The owner sees the instance's rule beside theirs, and cannot lift it.
    let alice = Some(("alice", PASSWORD));
    let (s, v) = call(
        &b,
        alice,
        Method::POST,
        &rules_path("acme"),
        Some(json!({"pattern": "v*"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = call(&b, alice, Method::GET, &rules_path("acme"), None).await;
    assert_eq!(
        v["instance_rules"],
        json!([{"scope": "acme", "tags": ["stable"]}]),
        "{v}"
    );
    // Both apply: the union.
    assert_eq!(
        overwrite(&b, "acme/app", "stable", 3).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        overwrite(&b, "acme/app", "v1", 4).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        overwrite(&b, "acme/app", "latest", 5).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_rule_made_on_one_replica_holds_on_another_at_once() {
    let Some((_tmp, _dir, mut all)) =
        crate::replicas::replicas(2, &[("BERTH_AUTH_ENABLED", "true")])
    else {
        return;
    };
    all[0].admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    add_user(&all[0], "alice");
    for b in &mut all {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            basic_header(ROOT.0, ROOT.1).parse().unwrap(),
        );
        b.http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
    }
    let (pusher, admin) = (&all[0], &all[1]);
    org_of(admin, "acme", "alice").await;
    pusher.push_image("acme/app", "v1", 1, 1).await;
    assert_eq!(
        overwrite(pusher, "acme/app", "v1", 2).await,
        StatusCode::CREATED
    );

    // Made through the second replica, the rule holds on the first for the very next push.
    let alice = Some(("alice", PASSWORD));
    let (s, v) = call(
        admin,
        alice,
        Method::POST,
        &rules_path("acme"),
        Some(json!({"pattern": "v*"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        overwrite(pusher, "acme/app", "v1", 3).await,
        StatusCode::FORBIDDEN
    );
    let del = pusher.delete("/v2/acme/app/manifests/v1").await;
    assert_eq!(del.status(), StatusCode::FORBIDDEN);

    // Deleted there, it stops holding here at once.
    let id = v["id"].as_i64().unwrap();
    let (s, _) = call(
        admin,
        alice,
        Method::DELETE,
        &format!("{}/{id}", rules_path("acme")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        overwrite(pusher, "acme/app", "v1", 4).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn owners_manage_rules_on_the_organization_page() {
    use crate::ui::Web;
    let b = start_with_auth(&[]);
    add_user(&b, "alice");
    add_user(&b, "bob");
    org_of(&b, "acme", "alice").await;
    b.push_image("acme/app", "v1", 1, 1).await;
    b.push_image("acme/app", "latest", 2, 1).await;
    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    let page = alice.get("/ui/orgs/acme").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("Immutable tags") && page.has("No rules of this organization"));
    let csrf = page.csrf();
    let form = |op: &'static str, pattern: &'static str| {
        vec![("op", op), ("pattern", pattern), ("repository", "acme/app")]
    };

    // A dry run lists what the rule would freeze and saves nothing.
    let mut fields = form("immutable", "v*");
    fields.extend([("dry_run", "yes"), ("csrf", csrf.as_str())]);
    let dry = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(
        dry.has("acme/app:v1") && !dry.has("acme/app:latest"),
        "{}",
        dry.body
    );
    assert!(dry.has("No rules of this organization"));

    // Without the form's token nothing happens; a bad pattern is explained on the page.
    let forged = alice.post("/ui/orgs/acme", &form("immutable", "v*")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut fields = form("immutable", "[v");
    fields.push(("csrf", &csrf));
    let bad = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("invalid tag pattern"), "{}", bad.body);

    // Added, it holds at once; deleted, it is gone.
    let mut fields = form("immutable", "v*");
    fields.push(("csrf", &csrf));
    let added = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(
        overwrite(&b, "acme/app", "v1", 3).await,
        StatusCode::FORBIDDEN
    );
    let (_, v) = call(&b, Some(ROOT), Method::GET, &rules_path("acme"), None).await;
    let id = v["rules"][0]["id"].as_i64().unwrap().to_string();
    let page = alice.get("/ui/orgs/acme").await;
    assert!(page.has("acme/app") && page.has("alice"), "{}", page.body);
    let deleted = alice
        .post(
            "/ui/orgs/acme",
            &[("op", "delete-immutable"), ("id", &id), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(
        overwrite(&b, "acme/app", "v1", 4).await,
        StatusCode::CREATED
    );

    // Someone who does not run the organization sees nothing.
    let mut bob = Web::new(&b);
    bob.sign_in("bob", PASSWORD).await;
    assert_eq!(bob.get("/ui/orgs/acme").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chromium_owner_freezes_tags_and_the_administrator_lifts_the_rule_and_reads_maintenance() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    b.push_image("acme/app", "v1", 1, 1).await;
    b.push_image("acme/app", "latest", 2, 1).await;
    // A garbage-collection pass that frees something, for the maintenance page.
    let gone = b.push_image("acme/old", "x", 3, 2).await;
    let del = b
        .delete(&format!("/v2/acme/old/manifests/{}", gone.digest))
        .await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let pass = b.gc(&["--review-delay", "0"], &[]);
    crate::browser::closing(&c, chromium_rules(&c, &b, &pass)).await;
}

async fn chromium_rules(c: &fantoccini::Client, b: &Berth, pass: &Value) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use fantoccini::Locator;
    const FORM: &str = "form:has(#immutable-pattern)";

    // The owner asks which tags a rule would freeze, then adds it; it holds at once.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    fill(c, "#immutable-pattern", "v*").await;
    fill(c, "#immutable-repository", "acme/app").await;
    click(c, &format!("{FORM} button[name=dry_run]")).await;
    let preview = wait_for(c, Locator::Css("#dry-run"))
        .await
        .expect("the dry run")
        .text()
        .await
        .expect("text");
    assert!(
        preview.contains("would freeze now: 1")
            && preview.contains("acme/app:v1")
            && !preview.contains("acme/app:latest"),
        "{preview}"
    );
    assert!(text(c).await.contains("No rules of this organization."));
    fill(c, "#immutable-pattern", "v*").await;
    fill(c, "#immutable-repository", "acme/app").await;
    click(c, &format!("{FORM} button.primary")).await;
    wait_for(
        c,
        Locator::Css("button[aria-label='Delete rule v* in acme/app']"),
    )
    .await
    .expect("the rule listed");
    screenshot(c, "immutable-owner").await;
    assert_eq!(
        overwrite(b, "acme/app", "v1", 4).await,
        StatusCode::FORBIDDEN
    );
    crate::browser::sign_out(c).await;

    // The administrator lifts it from the same page, then follows the navigation to the
    // maintenance page and finds the pass.
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, "button[aria-label='Delete rule v* in acme/app']").await;
    wait_for(
        c,
        Locator::XPath("//*[contains(text(), 'No rules of this organization.')]"),
    )
    .await
    .expect("the rule gone");
    assert_eq!(overwrite(b, "acme/app", "v1", 5).await, StatusCode::CREATED);
    let (_, v) = call(
        b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=immutable&n=10",
        None,
    )
    .await;
    let actions: Vec<(&Value, &Value)> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (&e["action"], &e["actor"]))
        .collect();
    assert_eq!(
        actions,
        [
            (&json!("immutable.rule.delete"), &json!("root")),
            (&json!("immutable.rule.add"), &json!("alice")),
        ],
        "{v}"
    );

    click(c, "header a[href='/ui/admin/maintenance']").await;
    let removed = wait_for(c, Locator::Css("#gc-passes td.blobs-removed"))
        .await
        .expect("the pass")
        .text()
        .await
        .expect("text");
    let blobs = pass["blobs"].as_array().expect("blobs").len();
    assert_eq!(removed, blobs.to_string());
    let page = text(c).await;
    assert!(
        page.contains("berth gc") && page.contains("No open findings."),
        "{page}"
    );
    screenshot(c, "maintenance-admin").await;
}
