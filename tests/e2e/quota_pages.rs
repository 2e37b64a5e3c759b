//! Quotas administrators set at run time (`/api/v1/quotas/{scope}`), with the configuration's
//! `[[policies.quota]]`: who may read and set them, bad input, their audit entries, pushes
//! refused by the strictest quota of either kind, a quota set on one replica holding on
//! another at once; the usage pages in Chromium; and the maintenance page's record of
//! garbage-collection passes and open scrub findings.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{ADMIN_PASSWORD, PASSWORD, basic_header, start_with_auth};
use crate::harness::{Berth, random_bytes, sha256};
use crate::org_rules::{ROOT, add_user, call, org_of, two_orgs};
use crate::ui::Web;

fn quota_path(scope: &str) -> String {
    format!("/api/v1/quotas/{scope}")
}

/// Pushes `data` into `repo` as root with one `POST ?digest=`: the status and the error
/// message, if any.
async fn try_push(b: &Berth, repo: &str, data: &[u8]) -> (StatusCode, String) {
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            sha256(data)
        )))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

/// A server with authentication and a configuration file holding `config`.
fn start_with_config(config: &str) -> (Berth, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let b = start_with_auth(&[
        ("BERTH_CONFIG", file.to_str().unwrap()),
        ("BERTH_GC_ENABLED", "false"),
    ]);
    (b, dir)
}

const CONFIG_QUOTA: &str = "[[policies.quota]]\nscope = \"acme\"\nmax_bytes = 5000\n";

#[tokio::test]
async fn quota_only_administrators_set_quotas_and_owners_read_their_own() {
    let (b, _dir) = start_with_config(CONFIG_QUOTA);
    let robot = two_orgs(&b).await;
    let alice = Some(("alice", PASSWORD));
    let bob = Some(("bob", PASSWORD));
    let carol = Some(("carol", PASSWORD));
    let robot = Some(("acme+ci", robot.as_str()));
    let quota = json!({"max_bytes": "1MiB"});

    // Owners, members, robots and nobody cannot set, remove or list quotas; a member or
    // another organization's owner cannot read an organization's quota.
    for (who, method, path, body, status) in [
        (alice, Method::PUT, quota_path("acme"), Some(&quota), 403),
        (alice, Method::DELETE, quota_path("acme"), None, 403),
        (alice, Method::GET, "/api/v1/quotas".to_owned(), None, 403),
        (carol, Method::PUT, quota_path("acme"), Some(&quota), 403),
        (robot, Method::PUT, quota_path("acme"), Some(&quota), 403),
        (None, Method::PUT, quota_path("acme"), Some(&quota), 401),
        (
            carol,
            Method::GET,
            "/api/v1/orgs/acme/quota".to_owned(),
            None,
            403,
        ),
        (
            bob,
            Method::GET,
            "/api/v1/orgs/acme/quota".to_owned(),
            None,
            403,
        ),
        (
            alice,
            Method::GET,
            "/api/v1/orgs/beta/quota".to_owned(),
            None,
            403,
        ),
        (
            robot,
            Method::GET,
            "/api/v1/orgs/acme/quota".to_owned(),
            None,
            403,
        ),
        (
            None,
            Method::GET,
            "/api/v1/orgs/acme/quota".to_owned(),
            None,
            401,
        ),
    ] {
        let (s, v) = call(&b, who, method.clone(), &path, body.cloned()).await;
        assert_eq!(s.as_u16(), status, "{who:?} {method} {path}: {v}");
    }

    // Bad quotas are explained and change nothing.
    for (scope, body, needle) in [
        ("acme", json!({"max_bytes": -1}), "negative"),
        ("acme", json!({"max_bytes": "-5GiB"}), "negative"),
        ("acme", json!({"max_bytes": "10XB"}), "unknown size unit"),
        ("acme", json!({"max_bytes": "10 GiBs"}), "unknown size unit"),
        ("acme", json!({"max_bytes": "2EiB"}), "1 EiB"),
        ("acme", json!({"max_bytes": 1.5}), "whole number"),
        ("acme", json!({"max_bytes": "0x10"}), "unknown size unit"),
        ("acme", json!({}), "max_bytes, max_repositories or both"),
        ("acme", json!({"max_repositories": -2}), "max_repositories"),
        (
            "acme",
            json!({"max_repositories": "many"}),
            "max_repositories",
        ),
        (
            "acme",
            json!({"max_bytes": 10, "extra": 1}),
            "invalid JSON body",
        ),
        ("Acme", json!({"max_bytes": 10}), "invalid quota scope"),
        ("acme//app", json!({"max_bytes": 10}), "invalid quota scope"),
    ] {
        let (s, v) = call(
            &b,
            Some(ROOT),
            Method::PUT,
            &quota_path(scope),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{scope} {body}: {v}");
        assert_eq!(v["error"], "invalid", "{v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{scope} {body}: {v}"
        );
    }
    let (s, v) = call(&b, Some(ROOT), Method::GET, "/api/v1/quotas", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["quotas"],
        json!([{"scope": "acme", "source": "config", "max_bytes": 5000, "used_bytes": 0,
                "max_repositories": null, "repositories": 0}]),
        "{v}"
    );

    // The administrator sets and replaces; the owner reads both kinds with their usage.
    for body in [
        json!({"max_bytes": "1MiB"}),
        json!({"max_bytes": 4000, "max_repositories": 3}),
    ] {
        let (s, v) = call(&b, Some(ROOT), Method::PUT, &quota_path("acme"), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["set_by"], "root");
    }
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &quota_path("acme/app"),
        Some(json!({"max_bytes": "1 kB"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&b, alice, Method::GET, "/api/v1/orgs/acme/quota", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let listed: Vec<(&str, &str, &Value, &Value)> = v["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["scope"].as_str().unwrap(),
                q["source"].as_str().unwrap(),
                &q["max_bytes"],
                &q["max_repositories"],
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("acme", "config", &json!(5000), &Value::Null),
            ("acme", "admin", &json!(4000), &json!(3)),
            ("acme/app", "admin", &json!(1000), &Value::Null),
        ],
        "{v}"
    );
    // Beta's owner sees none of acme's.
    let (_, v) = call(&b, bob, Method::GET, "/api/v1/orgs/beta/quota", None).await;
    assert_eq!(v["quotas"], json!([]), "{v}");

    // Removing: once, then there is nothing to remove; the configured quota stays.
    let (s, _) = call(
        &b,
        Some(ROOT),
        Method::DELETE,
        &quota_path("acme/app"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::DELETE,
        &quota_path("acme/app"),
        None,
    )
    .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{v}"
    );

    // Every change is an audit entry: who, the old value and the new one.
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=quota&n=10",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let summary: Vec<(&str, &str, &str, &Value, &Value)> = v["entries"]
        .as_array()
        .unwrap()
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
    let small = json!({"max_bytes": 1000, "max_repositories": null});
    assert_eq!(
        summary,
        vec![
            ("quota.delete", "root", "acme/app", &small, &Value::Null),
            ("quota.set", "root", "acme/app", &Value::Null, &small),
            (
                "quota.set",
                "root",
                "acme",
                &json!({"max_bytes": 1 << 20, "max_repositories": null}),
                &json!({"max_bytes": 4000, "max_repositories": 3})
            ),
            (
                "quota.set",
                "root",
                "acme",
                &Value::Null,
                &json!({"max_bytes": 1 << 20, "max_repositories": null})
            ),
        ],
        "{v}"
    );
}

#[tokio::test]
async fn quota_the_strictest_of_configured_and_stored_quotas_refuses_pushes() {
    let (b, _dir) = start_with_config(CONFIG_QUOTA);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    org_of(&b, "beta", "alice").await;

    // A looser stored quota does not lift the configured one.
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &quota_path("acme"),
        Some(json!({"max_bytes": "1GiB"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A stricter one on a repository holds there at once.
    let (s, v) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &quota_path("acme/app"),
        Some(json!({"max_bytes": 1000})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (status, message) = try_push(&b, "acme/app", &random_bytes(1500, 1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
    assert!(
        message.contains("quota exceeded")
            && message.contains("quota set by an administrator for acme/app"),
        "{message}"
    );
    assert_eq!(
        try_push(&b, "acme/web", &random_bytes(1500, 2)).await.0,
        StatusCode::CREATED
    );
    // 1500 + 4000 > 5000: the configuration's quota refuses, whatever the stored one allows.
    let (status, message) = try_push(&b, "acme/web", &random_bytes(4000, 3)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
    assert!(message.contains("policies.quota for acme"), "{message}");

    // Repositories: one, and a second is refused.
    let (s, _) = call(
        &b,
        Some(ROOT),
        Method::PUT,
        &quota_path("beta"),
        Some(json!({"max_repositories": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        try_push(&b, "beta/one", &random_bytes(100, 4)).await.0,
        StatusCode::CREATED
    );
    let (status, message) = try_push(&b, "beta/two", &random_bytes(100, 5)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("1 of its 1 repositories"), "{message}");

    // Removed, the stored quotas stop holding at once; the configured one stays.
    for scope in ["acme/app", "beta"] {
        let (s, _) = call(&b, Some(ROOT), Method::DELETE, &quota_path(scope), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        try_push(&b, "acme/app", &random_bytes(1500, 1)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        try_push(&b, "beta/two", &random_bytes(100, 5)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        try_push(&b, "acme/web", &random_bytes(4000, 3)).await.0,
        StatusCode::FORBIDDEN
    );

    // The usage API shows both kinds with where they come from.
    let usage: Value = b.get("/api/v1/usage/acme/app").await.json().await.unwrap();
    let sources: Vec<(&str, &str)> = usage["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["scope"].as_str().unwrap(), q["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("acme", "config"), ("acme", "admin")], "{usage}");
}

#[tokio::test]
async fn quota_set_on_one_replica_holds_on_another_at_once() {
    let Some((_tmp, _dir, mut all)) =
        crate::replicas::replicas(2, &[("BERTH_AUTH_ENABLED", "true")])
    else {
        return;
    };
    all[0].admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
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
    assert_eq!(
        try_push(pusher, "team/app", &random_bytes(2000, 1)).await.0,
        StatusCode::CREATED
    );

    // Set through the second replica, the quota holds on the first for the very next push.
    let (s, v) = call(
        admin,
        Some(ROOT),
        Method::PUT,
        &quota_path("team"),
        Some(json!({"max_bytes": 2500})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (status, message) = try_push(pusher, "team/app", &random_bytes(1000, 2)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{message}");
    assert!(
        message.contains("quota set by an administrator for team"),
        "{message}"
    );

    // Removed there, it stops holding here at once.
    let (s, _) = call(admin, Some(ROOT), Method::DELETE, &quota_path("team"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        try_push(pusher, "team/app", &random_bytes(1000, 2)).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn quota_usage_pages_show_quotas_and_refuse_bad_input() {
    let (b, _dir) = start_with_config(CONFIG_QUOTA);
    two_orgs(&b).await;
    b.push_blob("acme/app", &random_bytes(2048, 1)).await;

    // The owner sees usage against the configured quota, read-only.
    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    let org = alice.get("/ui/orgs/acme").await;
    assert!(org.has("/ui/orgs/acme/usage"), "{}", org.body);
    let page = alice.get("/ui/orgs/acme/usage").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.has("2.0 KiB of 4.9 KiB") && page.has("40%") && page.has("configuration file"),
        "{}",
        page.body
    );
    assert!(
        page.has("acme/app") && !page.has("quota-form"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let refused = alice
        .post(
            "/ui/orgs/acme/usage",
            &[("op", "set"), ("max_bytes", "1GiB"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        alice.get("/ui/admin/usage").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice.get("/ui/admin/maintenance").await.status,
        StatusCode::NOT_FOUND
    );
    // A member or another owner sees nothing.
    for user in ["carol", "bob"] {
        let mut w = Web::new(&b);
        w.sign_in(user, PASSWORD).await;
        assert_eq!(
            w.get("/ui/orgs/acme/usage").await.status,
            StatusCode::NOT_FOUND,
            "{user}"
        );
    }

    // The administrator: without the form's token nothing happens; a bad quota is explained
    // on the page and nothing is saved.
    let mut root = Web::new(&b);
    root.sign_in(ROOT.0, ROOT.1).await;
    let page = root.get("/ui/orgs/acme/usage").await;
    assert!(page.has("quota-form"), "{}", page.body);
    let csrf = page.csrf();
    let forged = root
        .post(
            "/ui/orgs/acme/usage",
            &[("op", "set"), ("max_bytes", "1GiB")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for bad in ["-1GiB", "12 parsecs", "3EiB"] {
        let page = root
            .post(
                "/ui/orgs/acme/usage",
                &[("op", "set"), ("max_bytes", bad), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.has("max_bytes"), "{bad}: {}", page.body);
    }
    let (_, v) = call(&b, Some(ROOT), Method::GET, "/api/v1/quotas", None).await;
    assert_eq!(v["quotas"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = call(
        &b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=quota",
        None,
    )
    .await;
    assert_eq!(v["entries"], json!([]), "{v}");

    // The overview lists every namespace, and sets a quota on any scope.
    let page = root
        .post(
            "/ui/admin/usage",
            &[
                ("op", "set"),
                ("scope", "beta"),
                ("max_repositories", "4"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = root.get("/ui/admin/usage").await;
    assert!(
        page.has("0 of 4 repositories") && page.has("/ui/n/acme"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn quota_chromium_admin_sets_a_quota_and_the_owner_sees_usage_against_it() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    org_of(&b, "acme", "alice").await;
    b.push_blob("acme/app", &random_bytes(3000, 1)).await;
    crate::browser::closing(&c, chromium_quota(&c, &b)).await;
}

async fn chromium_quota(c: &fantoccini::Client, b: &Berth) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use fantoccini::Locator;

    // The administrator follows the navigation, tries an absurd quota, then sets one.
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    click(c, "header a[href='/ui/admin/usage']").await;
    wait_for(c, Locator::Css("#quota-form"))
        .await
        .expect("the overview");
    c.goto(&b.url("/ui/orgs/acme/usage")).await.expect("goto");
    fill(c, "#quota-bytes", "-3GiB").await;
    click(c, "#quota-form button[type=submit]").await;
    let notice = wait_for(c, Locator::Css("p.notice.error"))
        .await
        .expect("the refusal");
    let said = notice.text().await.expect("text");
    assert!(said.contains("negative"), "{said}");
    fill(c, "#quota-bytes", "6kB").await;
    fill(c, "#quota-repositories", "2").await;
    click(c, "#quota-form button[type=submit]").await;
    wait_for(c, Locator::XPath("//*[contains(text(), 'set by root')]"))
        .await
        .expect("the quota set");
    screenshot(c, "quota-admin").await;
    let (_, v) = call(b, Some(ROOT), Method::GET, "/api/v1/orgs/acme/quota", None).await;
    assert_eq!(
        (
            &v["quotas"][0]["max_bytes"],
            &v["quotas"][0]["max_repositories"]
        ),
        (&json!(6000), &json!(2)),
        "{v}"
    );
    crate::browser::sign_out(c).await;

    // The owner finds the page from the organization's and sees usage against the quota.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, "a[href='/ui/orgs/acme/usage']").await;
    wait_for(c, Locator::Css("#quota-table"))
        .await
        .expect("the usage page");
    let page = text(c).await;
    assert!(
        page.contains("2.9 KiB of 5.9 KiB")
            && page.contains("1 of 2 repositories")
            && page.contains("50%"),
        "{page}"
    );
    assert!(!page.contains("Set quota"), "{page}");
    screenshot(c, "quota-owner").await;
}

#[tokio::test]
async fn quota_maintenance_page_shows_gc_passes_and_open_scrub_findings() {
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    // Something to collect: an image whose tag is deleted.
    let gone = b.push_image("team/app", "old", 1, 2).await;
    let del = b
        .delete(&format!("/v2/team/app/manifests/{}", gone.digest))
        .await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let report = b.gc(&["--review-delay", "0"], &[]);
    let freed = report["bytes_freed"].as_u64().unwrap();
    assert!(freed > 0, "{report}");
    // A dry run is not a pass.
    b.gc(&["--review-delay", "0", "--dry-run"], &[]);

    let (s, v) = call(&b, Some(ROOT), Method::GET, "/api/v1/gc/passes", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let passes = v["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "{v}");
    let blobs = report["blobs"].as_array().unwrap().len();
    let manifests = report["manifests"].as_array().unwrap().len();
    assert_eq!(blobs, 3, "{report}");
    assert_eq!(
        (
            &passes[0]["run_by"],
            &passes[0]["manifests_removed"],
            &passes[0]["blobs_removed"],
            &passes[0]["bytes_freed"],
            &passes[0]["error"]
        ),
        (
            &json!("cli"),
            &json!(manifests),
            &json!(blobs),
            &json!(freed),
            &Value::Null
        ),
        "{v}"
    );
    assert!(passes[0]["finished_at"].as_i64() >= passes[0]["started_at"].as_i64());

    // A blob rots in storage; `berth scrub` finds it.
    let data = random_bytes(4000, 7);
    let blob = b.push_blob("team/keep", &data).await;
    let key = b
        .stored_objects()
        .into_iter()
        .find(|k| b.read_object(k) == data)
        .unwrap();
    let mut rotten = data.clone();
    rotten[10] ^= 0x55;
    b.write_object(&key, &rotten);
    let (ok, _, _) = b.cli(&["scrub"], &[]);
    assert!(!ok, "a scrub that finds problems fails");
    let (s, v) = call(&b, Some(ROOT), Method::GET, "/api/v1/scrub", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v}");
    assert_eq!(
        (&findings[0]["problem"], &findings[0]["digest"]),
        (&json!("corrupt"), &json!(blob.digest)),
        "{v}"
    );
    assert!(findings[0]["found_at"].as_i64().unwrap() > 0);
    assert!(v["progress"]["blobs_total"].as_u64().unwrap() >= 1, "{v}");

    // Only administrators read them.
    for path in ["/api/v1/gc/passes", "/api/v1/scrub"] {
        let (s, _) = call(&b, Some(("alice", PASSWORD)), Method::GET, path, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }

    // The page shows the pass, what it freed, and the finding.
    let mut root = Web::new(&b);
    root.sign_in(ROOT.0, ROOT.1).await;
    let home = root.get("/ui/").await;
    assert!(home.has("/ui/admin/maintenance"), "{}", home.body);
    let page = root.get("/ui/admin/maintenance").await;
    assert_eq!(page.status, StatusCode::OK);
    let short = &blob.digest["sha256:".len().."sha256:".len() + 12];
    assert!(
        page.has("berth gc")
            && page.has(&format!("<td class=\"blobs-removed\">{blobs}</td>"))
            && page.has("corrupt")
            && page.has(short),
        "{}",
        page.body
    );
    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    assert_eq!(
        alice.get("/ui/admin/maintenance").await.status,
        StatusCode::NOT_FOUND
    );
}
