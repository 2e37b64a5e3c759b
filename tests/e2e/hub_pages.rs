//! The self-service hub pages: the audit log (`/ui/audit` for administrators,
//! `/ui/orgs/{org}/audit` and `GET /api/v1/orgs/{org}/audit` for an organization's owners), a
//! repository's tag history with restore (`/ui/r/{name}/-/history`), and the robot accounts
//! section of the organization page. Who may see and do what, bad input, escaping, the audit
//! entries of every change made there, and the whole round in Chromium.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, basic_header, start_with_auth};
use crate::harness::Berth;
use crate::org_rules::{ROOT, add_user, call, org_of, two_orgs};
use crate::ui::{Page, Web};

/// A markup string that must come back as text wherever it is shown.
const XSS: &str = "<script>alert('hub')</script>";

fn org_audit(org: &str) -> String {
    format!("/api/v1/orgs/{org}/audit")
}

/// The entries of an organization's audit log, as its administrator reads them.
async fn audit_of(b: &Berth, org: &str, query: &str) -> Vec<Value> {
    let (s, v) = call(
        b,
        Some(ROOT),
        Method::GET,
        &format!("{}?{query}", org_audit(org)),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["entries"].as_array().unwrap().clone()
}

/// Whether an entry with this action, actor and target (or repository) is in `entries`.
fn has_entry(entries: &[Value], action: &str, actor: &str, about: &str) -> bool {
    entries.iter().any(|e| {
        e["action"] == action
            && e["actor"] == actor
            && (e["target"] == about || e["repository"] == about)
    })
}

/// Number of audit rows a page shows.
fn rows(page: &Page) -> usize {
    page.body.matches("<tr data-id=").count()
}

/// Pushes `img` to `repo:tag` as `user` (HTTP Basic): the manifest `PUT`'s status.
async fn push_as(
    b: &Berth,
    user: &str,
    secret: &str,
    repo: &str,
    tag: &str,
    img: &crate::client::Pushed,
) -> StatusCode {
    reqwest::Client::new()
        .put(b.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("authorization", basic_header(user, secret))
        .header("content-type", img.media_type)
        .body(img.bytes.clone())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn hub_pages_audit_log_is_scoped_to_the_org_filtered_and_escaped() {
    let b = start_with_auth(&[]);
    let robot = two_orgs(&b).await;
    // `acmecorp` starts with `acme`: none of its entries may show as acme's.
    org_of(&b, "acmecorp", "bob").await;
    b.push_image("acme/app", "v1", 1, 1).await;
    b.push_image("beta/app", "v1", 2, 1).await;
    b.push_image("acmecorp/app", "v1", 3, 1).await;
    let alice = Some(("alice", PASSWORD));
    // A reason is free text: the one place an owner writes what the log then shows.
    let (s, v) = call(
        &b,
        alice,
        Method::PUT,
        "/api/v1/orgs/acme/cve-allowlist",
        Some(json!({"entries": [{"id": "CVE-2023-1234", "reason": XSS}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The owner's API: exactly acme's entries.
    let (s, v) = call(&b, alice, Method::GET, &org_audit("acme"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert!(
        has_entry(entries, "manifest.push", "root", "acme/app"),
        "{v}"
    );
    assert!(has_entry(entries, "member.set", "alice", "carol"), "{v}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "token.create" && e["target"] == "acme+ci"),
        "{v}"
    );
    assert!(
        has_entry(entries, "cve.allowlist.set", "alice", "acme"),
        "{v}"
    );
    for e in entries {
        let about = [&e["repository"], &e["target"]]
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let mine = about
            .iter()
            .any(|a| a == "acme" || a.starts_with("acme/") || a.starts_with("acme+"))
            || e["detail"]["org"] == "acme";
        assert!(mine, "not about acme: {e}");
        assert!(
            !about
                .iter()
                .any(|a| a.starts_with("beta") || a.starts_with("acmecorp")),
            "{e}"
        );
    }
    // Filters narrow within the organization; another organization's repository finds nothing.
    let pushes = audit_of(&b, "acme", "action=manifest").await;
    assert!(!pushes.is_empty() && pushes.iter().all(|e| e["action"] == "manifest.push"));
    assert!(audit_of(&b, "acme", "repository=beta/app").await.is_empty());
    assert!(audit_of(&b, "acme", "repository=acmecorp").await.is_empty());

    // Owners of another organization, members, robots and nobody get nothing.
    let carol = Some(("carol", PASSWORD));
    let bob = Some(("bob", PASSWORD));
    let robot_secret = robot.clone();
    let robot = Some(("acme+ci", robot.as_str()));
    for (who, path, status) in [
        (alice, org_audit("beta"), 403),
        (bob, org_audit("acme"), 403),
        (carol, org_audit("acme"), 403),
        (robot, org_audit("acme"), 403),
        (None, org_audit("acme"), 401),
        (alice, format!("{}?bogus=1", org_audit("acme")), 400),
    ] {
        let (s, v) = call(&b, who, Method::GET, &path, None).await;
        assert_eq!(s.as_u16(), status, "{who:?} {path}: {v}");
        assert!(v.get("entries").is_none(), "{v}");
    }
    let (s, _) = call(&b, Some(ROOT), Method::GET, &org_audit("nobody"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The pages: the owner sees acme's log, not beta's; members and strangers see nothing.
    let mut web = Web::new(&b);
    web.sign_in("alice", PASSWORD).await;
    let org_page = web.get("/ui/orgs/acme").await;
    assert!(
        org_page.has("href=\"/ui/orgs/acme/audit\""),
        "linked from the org page"
    );
    let page = web.get("/ui/orgs/acme/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.has("acme/app:v1") && page.has("acme+ci") && page.has("carol"));
    assert!(
        !page.has("beta/app") && !page.has("acmecorp"),
        "{}",
        page.body
    );
    // The hostile reason is text, never markup.
    assert!(!page.has(XSS), "{}", page.body);
    assert!(page.has("&lt;script&gt;alert"), "{}", page.body);
    assert!(
        !page.has("id=\"nav-audit\""),
        "only administrators have the link"
    );
    assert_eq!(
        web.get("/ui/orgs/beta/audit").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(web.get("/ui/audit").await.status, StatusCode::NOT_FOUND);
    let mut member = Web::new(&b);
    member.sign_in("carol", PASSWORD).await;
    assert_eq!(
        member.get("/ui/orgs/acme/audit").await.status,
        StatusCode::NOT_FOUND
    );
    let mut nobody = Web::new(&b);
    let anonymous = nobody.get("/ui/orgs/acme/audit").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/ui/login"));
    // A robot's credentials open no page: the UI knows only signed-in people.
    let robot_page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(b.url("/ui/orgs/acme/audit"))
        .header("authorization", basic_header("acme+ci", &robot_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(robot_page.status(), StatusCode::SEE_OTHER);

    // Filters on the page: action, repository, dates; a bad date is explained.
    let only = web.get("/ui/orgs/acme/audit?action=member.set").await;
    assert!(
        only.has("<code>member.set</code>") && !only.has("<code>manifest.push</code>"),
        "{}",
        only.body
    );
    let repo = web.get("/ui/orgs/acme/audit?repository=acme/app").await;
    assert!(repo.has("<code>manifest.push</code>") && !repo.has("<code>member.set</code>"));
    assert!(
        web.get("/ui/orgs/acme/audit?until=2000-01-01")
            .await
            .has("No entries.")
    );
    assert!(rows(&web.get("/ui/orgs/acme/audit?since=2000-01-01").await) > 3);
    let bad = web.get("/ui/orgs/acme/audit?since=2024-02-30").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("is not a date"), "{}", bad.body);

    // Older entries a page at a time, with the filters kept.
    for i in 0..55 {
        let (s, v) = call(
            &b,
            alice,
            Method::POST,
            "/api/v1/orgs/acme/teams",
            Some(json!({"name": format!("team{i}")})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let first = web.get("/ui/orgs/acme/audit?action=team.create").await;
    assert_eq!(rows(&first), 50);
    assert!(
        first.has("acme/team54") && !first.has("acme/team4<"),
        "newest first"
    );
    let marker = "rel=\"next\" href=\"";
    let start = first.body.find(marker).expect("older link") + marker.len();
    let end = first.body[start..].find('"').unwrap() + start;
    let older = first.body[start..end].replace("&amp;", "&");
    assert!(older.contains("action=team.create"), "{older}");
    let second = web.get(&older).await;
    assert_eq!(rows(&second), 5, "{}", second.body);
    assert!(second.has("acme/team0") && !second.has("acme/team54"));

    // The administrator's log holds everything, and filters the same way.
    let mut root = Web::new(&b);
    root.sign_in(ROOT.0, ROOT.1).await;
    let all = root.get("/ui/audit").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.has("id=\"nav-audit\""));
    let beta = root.get("/ui/audit?repository=beta/app").await;
    assert!(
        beta.has("beta/app:v1") && !beta.has("acme/app:v1"),
        "{}",
        beta.body
    );
    let admin_org = root.get("/ui/orgs/beta/audit").await;
    assert!(
        admin_org.has("beta/app:v1") && !admin_org.has("acme/app"),
        "{}",
        admin_org.body
    );
}

/// Organization acme's team `readers` holding carol, with read on the organization.
async fn carol_reads_acme(b: &Berth) {
    let alice = Some(("alice", PASSWORD));
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/orgs/acme/teams",
            Some(json!({"name": "readers"})),
        ),
        (
            Method::PUT,
            "/api/v1/orgs/acme/teams/readers/members/carol",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/orgs/acme/teams/readers/grants",
            Some(json!({"role": "read"})),
        ),
    ] {
        let (s, v) = call(b, alice, method, path, body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
    }
}

async fn tag_digest(b: &Berth, repo: &str, tag: &str) -> Option<String> {
    let resp = b.head(&format!("/v2/{repo}/manifests/{tag}")).await;
    (resp.status() == StatusCode::OK).then(|| {
        resp.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    })
}

#[tokio::test]
async fn hub_pages_tag_history_restores_for_pushers_only_and_audits() {
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    two_orgs(&b).await;
    carol_reads_acme(&b).await;
    let one = b.push_image("acme/app", "v1", 1, 1).await;
    let two = b.push_image("acme/app", "v1", 2, 1).await;
    assert_eq!(
        b.delete("/v2/acme/app/manifests/v1").await.status(),
        StatusCode::ACCEPTED
    );
    // A tag whose manifest is deleted by digest afterwards cannot come back.
    let gone = b.push_image("acme/app", "gone", 3, 1).await;
    assert_eq!(
        b.delete(&format!("/v2/acme/app/manifests/{}", gone.digest))
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    // A reader sees the history, without a restore button, and cannot post one.
    let mut reader = Web::new(&b);
    reader.sign_in("carol", PASSWORD).await;
    let repo = reader.get("/ui/r/acme/app").await;
    assert!(
        repo.has("href=\"/ui/r/acme/app/-/history\""),
        "linked from the repository"
    );
    let page = reader.get("/ui/r/acme/app/-/history").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.has("<td>delete</td>") && page.has("<td>move</td>") && page.has("<td>create</td>"),
        "{}",
        page.body
    );
    assert!(!page.has("aria-label=\"Restore"), "{}", page.body);
    let csrf = page.csrf();
    let refused = reader
        .post(
            "/ui/r/acme/app/-/restore",
            &[("csrf", &csrf), ("tag", "v1"), ("digest", &one.digest)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(tag_digest(&b, "acme/app", "v1").await, None);
    // Someone who may not read the repository finds nothing.
    let mut stranger = Web::new(&b);
    stranger.sign_in("bob", PASSWORD).await;
    assert_eq!(
        stranger.get("/ui/r/acme/app/-/history").await.status,
        StatusCode::NOT_FOUND
    );

    // The owner sees restore buttons on what can come back, and none on the deleted manifest.
    let mut owner = Web::new(&b);
    owner.sign_in("alice", PASSWORD).await;
    let page = owner.get("/ui/r/acme/app/-/history").await;
    let short = |d: &str| d.chars().take(19).collect::<String>();
    assert!(
        page.has(&format!(
            "aria-label=\"Restore v1 to {}\"",
            short(&two.digest)
        )),
        "{}",
        page.body
    );
    assert!(page.has(&format!(
        "aria-label=\"Restore v1 to {}\"",
        short(&one.digest)
    )));
    assert!(!page.has("aria-label=\"Restore gone"), "{}", page.body);
    let one_tag = owner.get("/ui/r/acme/app/-/history?tag=gone").await;
    assert!(
        one_tag.has("gone") && !one_tag.has(">v1<"),
        "{}",
        one_tag.body
    );
    let csrf = page.csrf();

    // Without the form's token nothing happens.
    let forged = owner
        .post(
            "/ui/r/acme/app/-/restore",
            &[("tag", "v1"), ("digest", &one.digest)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(tag_digest(&b, "acme/app", "v1").await, None);

    // Restored, the tag pulls again, and the log says who did it.
    let restored = owner
        .post(
            "/ui/r/acme/app/-/restore",
            &[("csrf", &csrf), ("tag", "v1"), ("digest", &one.digest)],
        )
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert!(
        restored.has("id=\"restore-notice\"") && restored.has("points at"),
        "{}",
        restored.body
    );
    assert_eq!(
        tag_digest(&b, "acme/app", "v1").await,
        Some(one.digest.clone())
    );
    let entries = audit_of(&b, "acme", "action=tag.restore").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            &entries[0]["actor"],
            &entries[0]["repository"],
            &entries[0]["tag"],
            &entries[0]["digest"]
        ),
        (
            &json!("alice"),
            &json!("acme/app"),
            &json!("v1"),
            &json!(one.digest)
        )
    );

    // A restore the service refuses is explained: a deleted manifest, an immutable tag.
    let failed = owner
        .post(
            "/ui/r/acme/app/-/restore",
            &[("csrf", &csrf), ("tag", "gone"), ("digest", &gone.digest)],
        )
        .await;
    assert_eq!(failed.status, StatusCode::CONFLICT, "{}", failed.body);
    assert!(failed.has("was deleted"), "{}", failed.body);
    let (s, v) = call(
        &b,
        Some(("alice", PASSWORD)),
        Method::POST,
        "/api/v1/orgs/acme/immutable-rules",
        Some(json!({"pattern": "v*"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let frozen = owner
        .post(
            "/ui/r/acme/app/-/restore",
            &[("csrf", &csrf), ("tag", "v1"), ("digest", &two.digest)],
        )
        .await;
    assert_eq!(frozen.status, StatusCode::FORBIDDEN, "{}", frozen.body);
    assert!(frozen.has("cannot be moved"), "{}", frozen.body);
    assert_eq!(
        tag_digest(&b, "acme/app", "v1").await,
        Some(one.digest.clone())
    );
    assert_eq!(audit_of(&b, "acme", "action=tag.restore").await.len(), 1);
}

/// The secret shown in a page's copy box.
fn shown_secret(page: &Page) -> String {
    let marker = "<div class=\"copy\"><code>";
    let start = page.body.find(marker).expect("a secret") + marker.len();
    let end = page.body[start..].find('<').unwrap() + start;
    page.body[start..end].to_owned()
}

/// The robots of acme, by name.
async fn robot_names(b: &Berth) -> Vec<String> {
    let (s, v) = call(b, Some(ROOT), Method::GET, "/api/v1/orgs/acme/robots", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["robots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn hub_pages_owners_create_use_and_revoke_robots_on_the_org_page() {
    let b = start_with_auth(&[]);
    let ci = two_orgs(&b).await;
    let img = b.push_image("acme/app", "base", 1, 1).await;
    b.push_image("acme/other", "base", 1, 1).await;
    let mut owner = Web::new(&b);
    owner.sign_in("alice", PASSWORD).await;
    let page = owner.get("/ui/orgs/acme").await;
    assert!(
        page.has("Robot accounts") && page.has("acme+ci"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let create = |name: &'static str, repositories: &'static str, expires: &'static str| {
        vec![
            ("op", "robot-create"),
            ("name", name),
            ("repositories", repositories),
            ("pull", "on"),
            ("push", "on"),
            ("expires", expires),
        ]
    };

    // A member, or a form without its token, changes nothing.
    let mut member = Web::new(&b);
    member.sign_in("carol", PASSWORD).await;
    let member_csrf = member.get("/ui/").await.csrf();
    let mut fields = create("deploy", "acme/app", "");
    fields.push(("csrf", &member_csrf));
    assert_eq!(
        member.post("/ui/orgs/acme", &fields).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        member.get("/ui/orgs/acme").await.status,
        StatusCode::NOT_FOUND
    );
    let forged = owner
        .post("/ui/orgs/acme", &create("deploy", "acme/app", ""))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Bad input is explained on the page and saves nothing.
    for (name, repositories, expires, push, needle) in [
        ("Bad Name!", "acme/app", "", true, "invalid"),
        ("deploy", "acme/app", "2000-01-01", true, "in the past"),
        ("deploy", "acme/app", "someday", true, "is not a date"),
        ("deploy", "beta/app", "", true, "not in organization acme"),
        (
            "deploy",
            "acme/app\nacmecorp/x",
            "",
            true,
            "not in organization acme",
        ),
        ("deploy", "acme/app", "", false, "pull, push or both"),
        ("ci", "acme/app", "", true, "a token named ci"),
    ] {
        let mut fields = vec![
            ("op", "robot-create"),
            ("name", name),
            ("repositories", repositories),
            ("expires", expires),
            ("csrf", csrf.as_str()),
        ];
        if push {
            fields.push(("push", "on"));
        }
        let bad = owner.post("/ui/orgs/acme", &fields).await;
        assert_eq!(
            bad.status,
            StatusCode::BAD_REQUEST,
            "{name} {repositories}: {}",
            bad.body
        );
        assert!(bad.has(needle), "{needle}: {}", bad.body);
        assert!(!bad.has("berth_"), "no secret on a refusal");
    }
    assert_eq!(robot_names(&b).await, ["ci"]);

    // Created, its secret is shown once; it pushes where its scope allows and nowhere else.
    let mut fields = create("deploy", "acme/app", "2999-12-31");
    fields.push(("csrf", &csrf));
    let created = owner.post("/ui/orgs/acme", &fields).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let secret = shown_secret(&created);
    assert!(secret.starts_with("berth_"), "{secret}");
    assert!(created.has("docker login") && created.has("-u acme+deploy"));
    let again = owner.get("/ui/orgs/acme").await;
    assert!(
        again.has("acme+deploy") && !again.has(&secret),
        "shown once only"
    );
    // Valid through 2999-12-31: it expires as 3000 begins.
    assert!(
        again.has("acme/app:pull,push") && again.has("3000-01-01T00:00"),
        "{}",
        again.body
    );
    assert_eq!(
        push_as(&b, "acme+deploy", &secret, "acme/app", "robot", &img).await,
        StatusCode::CREATED
    );
    assert!(
        !push_as(&b, "acme+deploy", &secret, "acme/other", "robot", &img)
            .await
            .is_success()
    );
    let used = owner.get("/ui/orgs/acme").await;
    let row_start = used
        .body
        .find("id=\"robot-deploy\"")
        .expect("the robot's row");
    let row = &used.body[row_start..row_start + used.body[row_start..].find("</tr>").unwrap()];
    assert!(!row.contains("<td class=\"last-used\">never"), "{row}");

    // Robots reach none of these pages or their API.
    let (s, _) = call(
        &b,
        Some(("acme+deploy", secret.as_str())),
        Method::GET,
        "/api/v1/orgs/acme/robots",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &b,
        Some(("acme+ci", ci.as_str())),
        Method::GET,
        &org_audit("acme"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Revoked, it pushes no more.
    let revoked = owner
        .post(
            "/ui/orgs/acme",
            &[("op", "robot-revoke"), ("name", "deploy"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(
        revoked.has("Robot acme+deploy revoked."),
        "{}",
        revoked.body
    );
    assert_eq!(
        push_as(&b, "acme+deploy", &secret, "acme/app", "robot2", &img).await,
        StatusCode::UNAUTHORIZED
    );

    // Both changes are in the organization's log, as the owner made them.
    let entries = audit_of(&b, "acme", "action=token").await;
    assert!(
        has_entry(&entries, "token.create", "alice", "acme+deploy"),
        "{entries:?}"
    );
    assert!(
        has_entry(&entries, "token.revoke", "alice", "acme+deploy"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn hub_pages_chromium_owner_and_admin_use_audit_history_and_robots() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let b = start_with_auth(&[("BERTH_GC_ENABLED", "false")]);
    add_user(&b, "alice");
    add_user(&b, "bob");
    org_of(&b, "acme", "alice").await;
    org_of(&b, "beta", "bob").await;
    let one = b.push_image("acme/app", "v1", 1, 1).await;
    b.push_image("acme/app", "v2", 2, 1).await;
    b.push_image("beta/app", "v1", 3, 1).await;
    assert_eq!(
        b.delete("/v2/acme/app/manifests/v1").await.status(),
        StatusCode::ACCEPTED
    );
    crate::browser::closing(&c, chromium_round(&c, &b, &one)).await;
}

/// Waits (up to 15 s) until the browser is at a URL containing `needle`: a submitted `GET`
/// form's page, whose elements the page before it may share.
async fn wait_for_url(c: &fantoccini::Client, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !c
        .current_url()
        .await
        .expect("url")
        .as_str()
        .contains(needle)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached a URL with {needle}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn chromium_round(c: &fantoccini::Client, b: &Berth, one: &crate::client::Pushed) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use fantoccini::Locator;

    // The owner filters the organization's log from the organization page.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, "#org-audit").await;
    wait_for(c, Locator::Id("audit-filter"))
        .await
        .expect("the log");
    c.find(Locator::Css("#audit-action option[value='tag.delete']"))
        .await
        .expect("the action choice")
        .click()
        .await
        .expect("choose");
    click(c, "#audit-filter button[type=submit]").await;
    wait_for_url(c, "action=tag.delete").await;
    wait_for(c, Locator::Css("#audit-entries tbody tr"))
        .await
        .expect("entries");
    let log = text(c).await;
    assert!(log.contains("acme/app:v1"), "{log}");
    assert!(
        !log.contains("acme/app:v2") && !log.contains("beta/app"),
        "{log}"
    );
    screenshot(c, "hub-org-audit").await;

    // The deleted tag comes back from the repository's history, and pulls.
    c.goto(&b.url("/ui/r/acme/app")).await.expect("goto");
    click(c, "#tag-history").await;
    wait_for(c, Locator::Id("history"))
        .await
        .expect("the history");
    let short: String = one.digest.chars().take(19).collect();
    click(c, &format!("button[aria-label='Restore v1 to {short}']")).await;
    let notice = wait_for(c, Locator::Id("restore-notice"))
        .await
        .expect("the restore's notice")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("acme/app:v1 points at"), "{notice}");
    screenshot(c, "hub-tag-history").await;
    let pulled = b.get("/v2/acme/app/manifests/v1").await;
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(
        pulled.headers()["docker-content-digest"],
        one.digest.as_str()
    );

    // A robot made on the organization page pushes, shows its use, and stops when revoked.
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    fill(c, "#robot-name", "builder").await;
    fill(c, "#robot-repositories", "acme/app").await;
    click(c, "#robot-form input[name=push]").await;
    click(c, "#robot-form button[type=submit]").await;
    let secret = wait_for(c, Locator::Css("#robot-notice .copy code"))
        .await
        .expect("the new robot's secret")
        .text()
        .await
        .expect("secret");
    assert!(secret.starts_with("berth_"), "{secret}");
    screenshot(c, "hub-robot-created").await;
    assert_eq!(
        push_as(b, "acme+builder", &secret, "acme/app", "from-robot", one).await,
        StatusCode::CREATED
    );
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    assert!(!text(c).await.contains(&secret), "the secret is shown once");
    let last_used = c
        .find(Locator::Css("#robot-builder td.last-used"))
        .await
        .expect("the robot's row")
        .text()
        .await
        .expect("text");
    assert_ne!(last_used, "never");
    click(c, "button[aria-label='Revoke robot builder']").await;
    wait_for(c, Locator::Id("robot-notice"))
        .await
        .expect("revoked");
    assert_eq!(
        push_as(b, "acme+builder", &secret, "acme/app", "after", one).await,
        StatusCode::UNAUTHORIZED
    );
    crate::browser::sign_out(c).await;

    // The administrator reaches the whole log from the navigation and filters it.
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    click(c, "#nav-audit").await;
    wait_for(c, Locator::Id("audit-filter"))
        .await
        .expect("the log");
    fill(c, "#audit-repository", "beta/app").await;
    click(c, "#audit-filter button[type=submit]").await;
    wait_for_url(c, "repository=beta%2Fapp").await;
    wait_for(c, Locator::Css("#audit-entries tbody tr"))
        .await
        .expect("entries");
    let log = text(c).await;
    assert!(
        log.contains("beta/app:v1") && !log.contains("acme/app"),
        "{log}"
    );
    screenshot(c, "hub-admin-audit").await;
}
