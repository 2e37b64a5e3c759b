//! Organizations' own retention rules (`/api/v1/orgs/{org}/retention`): who may read and
//! change them, bad input, their audit entries, how they combine with the configuration's
//! policies, a dry run that lists exactly what the pass then deletes, a rule saved on one
//! replica applied by another's pass, and the organization page (forms and Chromium).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, basic_header, start_with_auth};
use crate::harness::Berth;
use crate::org_rules::{ROOT, add_user, call, org_of, two_orgs};

fn retention_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/retention")
}

fn dry_run_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/retention/dry-run")
}

/// Whether `repo:tag` exists.
async fn exists(b: &Berth, repo: &str, tag: &str) -> bool {
    b.head(&format!("/v2/{repo}/manifests/{tag}"))
        .await
        .status()
        == StatusCode::OK
}

/// `repo:tag` of each entry of a report's `deleted`.
fn deleted(report: &Value) -> BTreeSet<String> {
    report["deleted"]
        .as_array()
        .unwrap_or_else(|| panic!("no deleted list: {report}"))
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["repository"].as_str().unwrap(),
                e["tag"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn org_policy_retention_is_for_owners_and_admins_checked_and_audited() {
    let b = start_with_auth(&[]);
    let robot = two_orgs(&b).await;
    let alice = Some(("alice", PASSWORD));
    let bob = Some(("bob", PASSWORD));
    let carol = Some(("carol", PASSWORD));
    let robot = Some(("acme+ci", robot.as_str()));
    let acme_rules = json!({"rules": [
        {"scope": "acme", "keep_newest": 5, "keep_tags": ["v*", "latest"]},
        {"scope": "acme/ci", "keep_pushed_within_days": 7},
    ]});
    let beta_rules = json!({"rules": [{"scope": "", "keep_pulled_within_days": 30}]});

    // The owner reads and replaces; the administrator too, in any organization.
    let (s, v) = call(&b, alice, Method::GET, &retention_path("acme"), None).await;
    assert_eq!((s, &v["rules"]), (StatusCode::OK, &json!([])), "{v}");
    let (s, v) = call(
        &b,
        alice,
        Method::PUT,
        &retention_path("acme"),
        Some(acme_rules.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["rules"][0]["scope"], &v["rules"][0]["updated_by"]),
        (&json!("acme"), &json!("alice")),
        "{v}"
    );
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &retention_path("beta"),
        Some(beta_rules.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["rules"][0]["scope"],
        json!("beta"),
        "an empty scope is the org"
    );

    // An owner of another organization, a member, a robot and nobody are refused; nothing
    // changes.
    let other = json!({"rules": [{"scope": "acme", "keep_newest": 1}]});
    for (who, method, path, body, status) in [
        (alice, Method::GET, retention_path("beta"), None, 403),
        (
            alice,
            Method::PUT,
            retention_path("beta"),
            Some(other.clone()),
            403,
        ),
        (alice, Method::POST, dry_run_path("beta"), None, 403),
        (bob, Method::GET, retention_path("acme"), None, 403),
        (
            bob,
            Method::PUT,
            retention_path("acme"),
            Some(other.clone()),
            403,
        ),
        (carol, Method::GET, retention_path("acme"), None, 403),
        (
            carol,
            Method::PUT,
            retention_path("acme"),
            Some(other.clone()),
            403,
        ),
        (carol, Method::POST, dry_run_path("acme"), None, 403),
        (robot, Method::GET, retention_path("acme"), None, 403),
        (
            robot,
            Method::PUT,
            retention_path("acme"),
            Some(other.clone()),
            403,
        ),
        (robot, Method::POST, dry_run_path("acme"), None, 403),
        (None, Method::GET, retention_path("acme"), None, 401),
        (
            None,
            Method::PUT,
            retention_path("acme"),
            Some(other.clone()),
            401,
        ),
    ] {
        let (s, v) = call(&b, who, method.clone(), &path, body).await;
        assert_eq!(s.as_u16(), status, "{who:?} {method} {path}: {v}");
    }

    // Bad input is explained and nothing is saved, not even the valid rules beside it.
    let valid = json!({"scope": "acme/web", "keep_newest": 2});
    for (bad, needle) in [
        (
            json!({"scope": "acme", "keep_tags": ["[v"]}),
            "invalid tag pattern",
        ),
        (
            json!({"scope": "acme", "keep_newest": -1}),
            "invalid JSON body",
        ),
        (json!({"scope": "acme", "keep_newest": 0}), "keep_newest"),
        (
            json!({"scope": "acme", "keep_pushed_within_days": 100000000}),
            "between 1 and 36500",
        ),
        (
            json!({"scope": "acme", "keep_newest": 99999999999_u64}),
            "invalid JSON body",
        ),
        (
            json!({"scope": "beta/app", "keep_newest": 1}),
            "not in organization acme",
        ),
        (
            json!({"scope": "Acme/App", "keep_newest": 1}),
            "invalid repository",
        ),
        (json!({"scope": "acme"}), "keeps nothing"),
        (
            json!({"scope": "acme/web", "keep_newest": 3}),
            "two rules for acme/web",
        ),
        (
            json!({"scope": "acme", "keep_newest": 1, "extra": 1}),
            "invalid JSON body",
        ),
    ] {
        let body = json!({"rules": [valid.clone(), bad.clone()]});
        for path in [retention_path("acme"), dry_run_path("acme")] {
            let method = if path.ends_with("dry-run") {
                Method::POST
            } else {
                Method::PUT
            };
            let (s, v) = call(&b, alice, method, &path, Some(body.clone())).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
            assert!(
                v["message"].as_str().unwrap().contains(needle),
                "{bad}: {v}"
            );
        }
    }
    let (_, v) = call(&b, alice, Method::GET, &retention_path("acme"), None).await;
    let scopes: Vec<&Value> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["scope"])
        .collect();
    assert_eq!(scopes, [&json!("acme"), &json!("acme/ci")], "{v}");
    let (s, _) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &retention_path("nosuch"),
        Some(json!({"rules": []})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every change is audited with who, the old and the new rules.
    let (s, _) = call(
        &b,
        alice,
        Method::PUT,
        &retention_path("acme"),
        Some(json!({"rules": []})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=retention&n=10",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, usize, usize)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["detail"]["old"].as_array().unwrap().len(),
                e["detail"]["new"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("retention.set", "alice", "acme", 2, 0),
            ("retention.set", "root", "beta", 0, 1),
            ("retention.set", "alice", "acme", 0, 2),
        ],
        "{entries:#?}"
    );
    assert_eq!(
        entries[2]["detail"]["new"][0],
        json!({"scope": "acme", "keep_newest": 5, "keep_tags": ["v*", "latest"]})
    );
}

/// Tags pushed in order, a few milliseconds apart (newest last).
async fn push_in_order(b: &Berth, tags: &[(&str, &str)]) {
    for (i, (repo, tag)) in tags.iter().enumerate() {
        b.push_image(repo, tag, 500 + i as u64, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn org_policy_a_retention_dry_run_lists_exactly_what_the_pass_then_deletes() {
    // The instance keeps the two newest tags of acme/app; the owner cannot keep fewer there.
    let config = "[[retention.policy]]\nscope = \"acme/app\"\nkeep_newest = 2\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let file = file.to_str().unwrap();
    let b = start_with_auth(&[("BERTH_CONFIG", file), ("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    let alice = Some(("alice", PASSWORD));
    push_in_order(
        &b,
        &[
            ("acme/app", "v1"),
            ("acme/app", "dev1"),
            ("acme/app", "dev2"),
            ("acme/app", "dev3"),
            ("acme/web", "a"),
            ("acme/web", "b"),
            ("acme/web", "c"),
            ("beta/x", "old1"),
            ("beta/x", "old2"),
        ],
    )
    .await;
    let (_, v) = call(&b, alice, Method::GET, &retention_path("acme"), None).await;
    assert_eq!(
        v["instance_policies"],
        json!([{"scope": "acme/app", "keep_newest": 2, "keep_pushed_within_days": null,
                "keep_pulled_within_days": null, "keep_tags": []}]),
        "{v}"
    );
    // The owner's rule keeps the newest tag and every v*: in acme/app, dev2 stays because the
    // instance keeps two, v1 because the owner keeps it; in acme/web (no instance policy) the
    // owner's rule alone decides.
    let rules = json!({"rules": [{"scope": "acme", "keep_newest": 1, "keep_tags": ["v*"]}]});
    let expected = set(&["acme/app:dev1", "acme/web:a", "acme/web:b"]);

    // Tried before saving: nothing is saved or deleted.
    let (s, proposed) = call(
        &b,
        alice,
        Method::POST,
        &dry_run_path("acme"),
        Some(rules.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{proposed}");
    assert_eq!(deleted(&proposed), expected, "{proposed}");
    assert_eq!(proposed["tags_judged"], json!(7), "{proposed}");
    let (_, v) = call(&b, alice, Method::GET, &retention_path("acme"), None).await;
    assert_eq!(v["rules"], json!([]));
    // With no rules saved, the saved rules' dry run deletes only what the instance would.
    let (_, saved) = call(&b, alice, Method::POST, &dry_run_path("acme"), None).await;
    assert_eq!(
        deleted(&saved),
        set(&["acme/app:v1", "acme/app:dev1"]),
        "{saved}"
    );
    assert!(exists(&b, "acme/web", "a").await && exists(&b, "acme/app", "v1").await);

    let (s, v) = call(&b, alice, Method::PUT, &retention_path("acme"), Some(rules)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, saved) = call(&b, alice, Method::POST, &dry_run_path("acme"), None).await;
    assert_eq!(deleted(&saved), expected, "{saved}");

    // The real pass (the command line, on the same database) deletes exactly that.
    let (ok, out, err) = b.cli(&["retention", "--config", file, "--json"], &[]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deleted(&report), deleted(&saved), "{out}");
    for (repo, tag, kept) in [
        ("acme/app", "v1", true),
        ("acme/app", "dev1", false),
        ("acme/app", "dev2", true),
        ("acme/app", "dev3", true),
        ("acme/web", "a", false),
        ("acme/web", "b", false),
        ("acme/web", "c", true),
        ("beta/x", "old1", true),
        ("beta/x", "old2", true),
    ] {
        assert_eq!(exists(&b, repo, tag).await, kept, "{repo}:{tag}");
    }
    // Each delete is audited as retention's, naming the policies that let the tag go.
    let (_, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=tag.delete&n=10",
        None,
    )
    .await;
    let policies: BTreeSet<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actor"], json!("system:retention"), "{e}");
            (
                format!(
                    "{}:{}",
                    e["repository"].as_str().unwrap(),
                    e["tag"].as_str().unwrap()
                ),
                e["detail"]["policy"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            ("acme/app:dev1", "acme/app + acme (organization rule)"),
            ("acme/web:a", "acme (organization rule)"),
            ("acme/web:b", "acme (organization rule)"),
        ]
        .map(|(t, p)| (t.to_owned(), p.to_owned()))
        .into()
    );
}

#[tokio::test]
async fn org_policy_a_rule_saved_on_one_replica_is_applied_by_another() {
    // Replica 0 runs retention passes every second; replica 1 runs none and takes the change.
    let auth = ("BERTH_AUTH_ENABLED", "true");
    let Some((_tmp, dir, mut all)) = crate::replicas::replicas(
        1,
        &[
            auth,
            ("BERTH_RETENTION_ENABLED", "true"),
            ("BERTH_RETENTION_INTERVAL_SECS", "1"),
            ("BERTH_GC_ENABLED", "false"),
        ],
    ) else {
        return;
    };
    all.push(Berth::start_in(&dir, &[auth]));
    all[0].admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        &format!("{}\n", ROOT.1),
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
    let (pass, api) = (&all[0], &all[1]);
    org_of(api, "acme", "alice").await;
    push_in_order(
        pass,
        &[("acme/app", "a"), ("acme/app", "b"), ("acme/app", "c")],
    )
    .await;
    // A few passes go by: without a rule nothing goes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for tag in ["a", "b", "c"] {
        assert!(exists(pass, "acme/app", tag).await, "{tag}");
    }

    let (s, v) = call(
        api,
        Some(("alice", PASSWORD)),
        Method::PUT,
        &retention_path("acme"),
        Some(json!({"rules": [{"scope": "acme/app", "keep_newest": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let started = Instant::now();
    while exists(pass, "acme/app", "a").await || exists(pass, "acme/app", "b").await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the other replica's pass did not apply the rule: {}",
            pass.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(exists(pass, "acme/app", "c").await);
}

#[tokio::test]
async fn org_policy_owners_try_and_save_retention_on_the_organization_page() {
    use crate::ui::Web;
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    add_user(&b, "bob");
    org_of(&b, "acme", "alice").await;
    push_in_order(&b, &[("acme/app", "old"), ("acme/app", "new")]).await;
    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    let page = alice.get("/ui/orgs/acme").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("Retention") && page.has("No retention rules of this organization"));
    let csrf = page.csrf();
    let rule = |newest: &'static str| {
        vec![
            ("op", "retention"),
            ("scope", "acme/app"),
            ("keep_newest", newest),
            ("keep_pushed_within_days", ""),
            ("keep_pulled_within_days", ""),
            ("keep_tags", ""),
        ]
    };

    // A dry run lists what the rule would delete now, offers to save it, and saves nothing.
    let mut fields = rule("1");
    fields.extend([("dry_run", "yes"), ("csrf", csrf.as_str())]);
    let dry = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(
        dry.has("acme/app:old") && !dry.has("acme/app:new") && dry.has("Save this rule"),
        "{}",
        dry.body
    );
    assert!(dry.has("No retention rules of this organization"));

    // Without the form's token nothing happens; bad input is explained on the page.
    let forged = alice.post("/ui/orgs/acme", &rule("1")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for (newest, needle) in [("-1", "whole number"), ("0", "between 1 and 10000")] {
        let mut fields = rule(newest);
        fields.push(("csrf", &csrf));
        let bad = alice.post("/ui/orgs/acme", &fields).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        assert!(bad.has(needle), "{}", bad.body);
    }
    let mut fields = rule("1");
    fields[5] = ("keep_tags", "[v");
    fields.push(("csrf", &csrf));
    let bad = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("invalid tag pattern"), "{}", bad.body);

    // Saved, it is listed and in the API; deleted, it is gone.
    let mut fields = rule("1");
    fields.push(("csrf", &csrf));
    let saved = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = alice.get("/ui/orgs/acme").await;
    assert!(
        page.has("newest 1") && page.has("acme/app"),
        "{}",
        page.body
    );
    let (_, v) = call(&b, Some(ROOT), Method::GET, &retention_path("acme"), None).await;
    assert_eq!(v["rules"][0]["keep_newest"], json!(1), "{v}");
    let deleted = alice
        .post(
            "/ui/orgs/acme",
            &[
                ("op", "delete-retention"),
                ("scope", "acme/app"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    let (_, v) = call(&b, Some(ROOT), Method::GET, &retention_path("acme"), None).await;
    assert_eq!(v["rules"], json!([]));

    // Someone who does not run the organization sees nothing.
    let mut bob = Web::new(&b);
    bob.sign_in("bob", PASSWORD).await;
    assert_eq!(bob.get("/ui/orgs/acme").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn org_policy_chromium_owner_and_admin_manage_retention() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    push_in_order(&b, &[("acme/app", "old"), ("acme/app", "new")]).await;
    crate::browser::closing(&c, chromium_retention(&c, &b)).await;
}

async fn chromium_retention(c: &fantoccini::Client, b: &Berth) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use fantoccini::Locator;

    // The owner tries a rule, sees what it would delete, and saves it from the preview.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    fill(c, "#retention-scope", "acme/app").await;
    fill(c, "#retention-newest", "1").await;
    click(c, "#retention-form button[name=dry_run]").await;
    let preview = wait_for(c, Locator::Css("#retention-dry-run"))
        .await
        .expect("the dry run's answer");
    let listed = preview.text().await.expect("text");
    assert!(
        listed.contains("acme/app:old") && !listed.contains("acme/app:new"),
        "{listed}"
    );
    screenshot(c, "org-retention-dry-run").await;
    click(c, "#retention-dry-run button[type=submit]").await;
    wait_for(c, Locator::Css("#retention-rules tbody th"))
        .await
        .expect("the saved rule");
    let page = text(c).await;
    assert!(page.contains("newest 1"), "{page}");
    let (_, v) = call(b, Some(ROOT), Method::GET, &retention_path("acme"), None).await;
    assert_eq!(
        (&v["rules"][0]["scope"], &v["rules"][0]["updated_by"]),
        (&json!("acme/app"), &json!("alice")),
        "{v}"
    );
    crate::browser::sign_out(c).await;

    // The administrator deletes it.
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, "#retention-rules button.danger").await;
    wait_for(
        c,
        Locator::XPath("//*[contains(text(), 'No retention rules of this organization')]"),
    )
    .await
    .expect("the rule deleted");
    screenshot(c, "org-retention-admin").await;
    let (_, v) = call(b, Some(ROOT), Method::GET, &retention_path("acme"), None).await;
    assert_eq!(v["rules"], json!([]));
}

fn hooks_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/webhooks")
}

#[tokio::test]
async fn org_policy_owners_webhooks_hear_their_org_signed_and_keep_secrets_hidden() {
    use crate::events::{Receiver, signature_is_valid};
    let b = start_with_auth(&[
        ("BERTH_WEBHOOKS_POLL_INTERVAL_MS", "100"),
        ("BERTH_WEBHOOKS_ORG_ALLOW_TARGETS", "127.0.0.1"),
    ]);
    let robot = two_orgs(&b).await;
    let alice = Some(("alice", PASSWORD));
    let bob = Some(("bob", PASSWORD));
    let carol = Some(("carol", PASSWORD));
    let robot = Some(("acme+ci", robot.as_str()));
    let receiver = Receiver::start(0, &[]).await;
    let hook = json!({"url": receiver.url(), "events": ["push"], "scope": "acme/app",
                      "secret": "first-secret"});

    // Bad input is explained and nothing is saved.
    for (body, needle) in [
        (
            json!({"url": "ftp://127.0.0.1/x", "events": ["push"]}),
            "http:// or https://",
        ),
        (json!({"url": "no url", "events": ["push"]}), "invalid URL"),
        (
            json!({"url": receiver.url(), "events": []}),
            "at least one event",
        ),
        (
            json!({"url": receiver.url(), "events": ["bogus"]}),
            "invalid JSON body",
        ),
        (
            json!({"url": receiver.url(), "events": ["push"], "scope": "beta/app"}),
            "not in organization acme",
        ),
    ] {
        let (s, v) = call(
            &b,
            alice,
            Method::POST,
            &hooks_path("acme"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (_, v) = call(&b, alice, Method::GET, &hooks_path("acme"), None).await;
    assert_eq!(v["webhooks"], json!([]));

    // Created, the secret is never shown again.
    let (s, v) = call(
        &b,
        alice,
        Method::POST,
        &hooks_path("acme"),
        Some(hook.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (&v["has_secret"], &v["scope"]),
        (&json!(true), &json!("acme/app")),
        "{v}"
    );
    assert!(!v.to_string().contains("first-secret"), "{v}");
    let id = v["id"].as_i64().unwrap();
    let one = format!("{}/{id}", hooks_path("acme"));

    // Only its organization's owners and administrators reach it.
    for (who, method, path, status) in [
        (bob, Method::GET, hooks_path("acme"), 403),
        (bob, Method::POST, format!("{one}/test"), 403),
        (bob, Method::GET, format!("{one}/deliveries"), 403),
        (bob, Method::DELETE, one.clone(), 403),
        (carol, Method::GET, hooks_path("acme"), 403),
        (carol, Method::DELETE, one.clone(), 403),
        (robot, Method::GET, hooks_path("acme"), 403),
        (robot, Method::DELETE, one.clone(), 403),
        (None, Method::GET, hooks_path("acme"), 401),
        (Some(ROOT), Method::GET, hooks_path("acme"), 200),
        (
            bob,
            Method::DELETE,
            format!("{}/{id}", hooks_path("beta")),
            404,
        ),
    ] {
        let (s, v) = call(&b, who, method.clone(), &path, None).await;
        assert_eq!(s.as_u16(), status, "{who:?} {method} {path}: {v}");
        assert!(!v.to_string().contains("first-secret"), "{v}");
    }

    // A push in its scope reaches it, signed; pushes elsewhere do not.
    b.push_image("acme/web", "x", 1, 1).await;
    b.push_image("beta/app", "y", 2, 1).await;
    b.push_image("acme/app", "v1", 3, 1).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], json!("dev.berth.image.pushed"));
    assert_eq!(got[0].json()["subject"], json!("acme/app:v1"));
    assert!(signature_is_valid(&got[0], "first-secret"));

    // "Send test" answers with the attempt at once.
    let (s, v) = call(&b, alice, Method::POST, &format!("{one}/test"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attempts"][0]["status"], json!(200), "{v}");
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["type"], json!("dev.berth.webhook.test"));
    assert!(signature_is_valid(&got[1], "first-secret"));

    // Changed without a secret, the secret stays; with one, it is replaced.
    let mut change = hook.clone();
    change.as_object_mut().unwrap().remove("secret");
    change["events"] = json!(["push", "delete"]);
    let (s, v) = call(&b, alice, Method::PUT, &one, Some(change)).await;
    assert_eq!((s, &v["has_secret"]), (StatusCode::OK, &json!(true)), "{v}");
    b.push_image("acme/app", "v2", 4, 1).await;
    let got = receiver.wait_for(3).await;
    assert!(signature_is_valid(&got[2], "first-secret"));
    let mut change = hook.clone();
    change["secret"] = json!("second-secret");
    let (s, _) = call(&b, alice, Method::PUT, &one, Some(change)).await;
    assert_eq!(s, StatusCode::OK);
    b.push_image("acme/app", "v3", 5, 1).await;
    let got = receiver.wait_for(4).await;
    assert!(signature_is_valid(&got[3], "second-secret"));
    assert!(!signature_is_valid(&got[3], "first-secret"));

    // The delivery log has them all.
    let (s, v) = call(
        &b,
        alice,
        Method::GET,
        &format!("{one}/deliveries?n=10"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 4, "{v}");

    // Deleted, it hears nothing more.
    let (s, _) = call(&b, alice, Method::DELETE, &one, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    b.push_image("acme/app", "v4", 6, 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.wait_for(4).await.len(), 4);

    // Every change is audited, never with a secret.
    let (_, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=webhook&n=20",
        None,
    )
    .await;
    let text = v.to_string();
    assert!(
        !text.contains("first-secret") && !text.contains("second-secret"),
        "{text}"
    );
    let summary: Vec<(&str, &str, &Value)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] != json!("webhook.test"))
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                &e["detail"]["secret_changed"],
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("webhook.delete", "alice", &json!(false)),
            ("webhook.update", "alice", &json!(true)),
            ("webhook.update", "alice", &json!(false)),
            ("webhook.create", "alice", &json!(true)),
        ],
        "{v}"
    );
}

#[tokio::test]
async fn org_policy_webhook_forms_need_the_token_and_never_show_the_secret() {
    use crate::ui::Web;
    let b = start_with_auth(&[("BERTH_WEBHOOKS_ORG_ALLOW_TARGETS", "127.0.0.1")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    let page = alice.get("/ui/orgs/acme").await;
    assert!(
        page.has("No webhooks of this organization"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let add = |url: &'static str| {
        vec![
            ("op", "webhook-add"),
            ("url", url),
            ("scope", ""),
            ("event_push", "on"),
            ("secret", "form-secret"),
        ]
    };
    let forged = alice
        .post("/ui/orgs/acme", &add("http://127.0.0.1:9/h"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut fields = add("ftp://127.0.0.1/h");
    fields.push(("csrf", &csrf));
    let bad = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("http:// or https://"), "{}", bad.body);
    // An internal address the operator did not allow is refused in the form too.
    let mut fields = add("http://127.0.0.2:9/h");
    fields.push(("csrf", &csrf));
    let bad = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("127.0.0.2 is a loopback address"), "{}", bad.body);
    let mut fields = add("http://127.0.0.1:9/h");
    fields.push(("csrf", &csrf));
    let added = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = alice.get("/ui/orgs/acme").await;
    assert!(
        page.has("http://127.0.0.1:9/h") && page.has("signed"),
        "{}",
        page.body
    );
    assert!(
        !page.has("form-secret"),
        "the secret is shown: {}",
        page.body
    );
    let (_, v) = call(&b, Some(ROOT), Method::GET, &hooks_path("acme"), None).await;
    assert_eq!(v["webhooks"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn org_policy_chromium_webhook_made_in_the_ui_receives_a_signed_push() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let b = start_with_auth(&[
        ("BERTH_WEBHOOKS_POLL_INTERVAL_MS", "100"),
        ("BERTH_WEBHOOKS_ORG_ALLOW_TARGETS", "127.0.0.1"),
    ]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    let receiver = crate::events::Receiver::start(0, &[]).await;
    crate::browser::closing(&c, chromium_webhook(&c, &b, &receiver)).await;
}

async fn chromium_webhook(c: &fantoccini::Client, b: &Berth, receiver: &crate::events::Receiver) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use crate::events::signature_is_valid;
    use fantoccini::Locator;

    // The owner adds a webhook for acme/app, signed.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    fill(c, "#webhook-new-url", &receiver.url()).await;
    fill(c, "#webhook-new-scope", "acme/app").await;
    fill(c, "#webhook-new-secret", "browser-secret").await;
    click(c, "#webhook-form button[type=submit]").await;
    wait_for(c, Locator::Css("article.webhook"))
        .await
        .expect("the webhook listed");
    let page = text(c).await;
    assert!(
        page.contains("signed") && !page.contains("browser-secret"),
        "{page}"
    );
    screenshot(c, "org-webhooks").await;

    // A push reaches it, signed with the secret typed in the browser.
    b.push_image("acme/app", "v1", 1, 1).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["subject"], json!("acme/app:v1"));
    assert!(signature_is_valid(&got[0], "browser-secret"));

    // "Send test" shows the attempt; the administrator then deletes the hook.
    click(c, "article.webhook form.inline button:not(.danger)").await;
    let flash = wait_for(c, Locator::Css("#webhook-test"))
        .await
        .expect("the test's answer");
    let flash = flash.text().await.expect("text");
    assert!(flash.contains("delivered"), "{flash}");
    assert!(signature_is_valid(
        &receiver.wait_for(2).await[1],
        "browser-secret"
    ));
    crate::browser::sign_out(c).await;
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, "article.webhook button.danger").await;
    wait_for(
        c,
        Locator::XPath("//*[contains(text(), 'No webhooks of this organization')]"),
    )
    .await
    .expect("the webhook deleted");
}

/// Restarts `b` on its data with authentication on and `env`.
fn restart(b: &mut Berth, env: &[(&str, &str)]) -> Berth {
    b.http = reqwest::Client::new();
    assert!(b.terminate(Duration::from_secs(30)), "clean shutdown");
    let mut all = vec![
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_WEBHOOKS_POLL_INTERVAL_MS", "100"),
    ];
    all.extend_from_slice(env);
    Berth::start_in(&b.data_dir, &all)
}

/// The first attempt of a test delivery to hook `id` of acme, made now.
async fn test_attempt(b: &Berth, id: &Value) -> Value {
    let (s, v) = call(
        b,
        Some(("alice", PASSWORD)),
        Method::POST,
        &format!("{}/{id}/test", hooks_path("acme")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["attempts"][0].clone()
}

#[tokio::test]
async fn org_policy_webhooks_reach_only_the_targets_the_operator_allows() {
    use crate::events::Receiver;
    let alice = Some(("alice", PASSWORD));
    let receiver = Receiver::start(0, &[]).await;
    let port = receiver
        .url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut b = start_with_auth(&[("BERTH_WEBHOOKS_POLL_INTERVAL_MS", "100")]);
    two_orgs(&b).await;

    // By default an owner's hook may not aim the server at its loopback, the cloud's metadata
    // service or the private network, however the address is spelled: refused with the reason,
    // and nothing is saved.
    for (url, needle) in [
        (receiver.url(), "127.0.0.1 is a loopback address"),
        (
            format!("http://localhost:{port}/hook"),
            "localhost resolves to",
        ),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), "loopback"),
        (format!("http://[::1]:{port}/"), "::1 is a loopback address"),
        (
            "http://0x7f.1/".to_owned(),
            "127.0.0.1 is a loopback address",
        ),
        (
            "http://2130706433/".to_owned(),
            "127.0.0.1 is a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        ("http://10.0.0.1/".to_owned(), "private"),
        ("http://[fd00::1]/".to_owned(), "unique local"),
        ("http://100.64.0.1/".to_owned(), "shared address space"),
    ] {
        let body = json!({"url": url, "events": ["push"]});
        let (s, v) = call(&b, alice, Method::POST, &hooks_path("acme"), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains(needle) && message.contains("org_allow_targets"),
            "{url}: {v}"
        );
    }
    let (_, v) = call(&b, alice, Method::GET, &hooks_path("acme"), None).await;
    assert_eq!(v["webhooks"], json!([]));
    let (_, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=webhook.create",
        None,
    )
    .await;
    assert_eq!(v["entries"], json!([]), "a refused hook was audited");

    // The operator allows the loopback address and the name: hooks to both are saved and
    // delivered; administrators see them beside the instance's.
    let mut b = restart(
        &mut b,
        &[("BERTH_WEBHOOKS_ORG_ALLOW_TARGETS", "127.0.0.1, localhost")],
    );
    let mut ids = Vec::new();
    for url in [receiver.url(), format!("http://localhost:{port}/hook")] {
        let body = json!({"url": url, "events": ["push"]});
        let (s, v) = call(&b, alice, Method::POST, &hooks_path("acme"), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{url}: {v}");
        ids.push(v["id"].clone());
    }
    for (i, id) in ids.iter().enumerate() {
        let attempt = test_attempt(&b, id).await;
        assert_eq!(attempt["status"], 200, "{attempt}");
        receiver.wait_for(i + 1).await;
    }
    let (s, v) = call(&b, Some(ROOT), Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let listed: Vec<&Value> = v["org_webhooks"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 2, "{v}");
    assert_eq!(listed[0]["org"], "acme");
    assert_eq!(listed[0]["name"], format!("org:{}", ids[0]));
    assert_eq!(
        (&listed[0]["timeout_secs"], &listed[0]["max_attempts"]),
        (&json!(10), &json!(6))
    );
    assert!(listed[0].get("secret").is_none(), "{v}");
    let (s, _) = call(&b, alice, Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "owners do not list every hook");

    // A deny entry wins over an allow entry.
    let mut b = restart(
        &mut b,
        &[
            ("BERTH_WEBHOOKS_ORG_ALLOW_TARGETS", "127.0.0.0/8"),
            ("BERTH_WEBHOOKS_ORG_DENY_TARGETS", "127.0.0.1"),
        ],
    );
    let attempt = test_attempt(&b, &ids[0]).await;
    assert_eq!(attempt["status"], Value::Null, "{attempt}");
    let error = attempt["error"].as_str().unwrap();
    assert!(error.contains("org_deny_targets"), "{attempt}");

    // Without the allowance the saved hooks are refused at every attempt, also the one whose
    // name is resolved only when it is sent (what a name rebound to an internal address
    // would get), and the receiver hears nothing more.
    let b = restart(&mut b, &[]);
    for (id, needle) in [
        (&ids[0], "refused: 127.0.0.1 is a loopback address"),
        (&ids[1], "refused: localhost resolves to"),
    ] {
        let attempt = test_attempt(&b, id).await;
        assert_eq!(attempt["status"], Value::Null, "{attempt}");
        let error = attempt["error"].as_str().unwrap();
        assert!(error.contains(needle), "{attempt}");
    }
    assert_eq!(
        receiver.received().len(),
        2,
        "a refused hook reached its target"
    );
}
