//! Vulnerability policies (`[[scan.policy]]`): an image holding the repository's Cargo.lock
//! (so the `rsa` crate) and a busybox, matched against a critical OSV record for `rsa` written
//! here (`TEST-2099-0001`, alias `CVE-2099-0001`, CVSS 9.8) and the real RUSTSEC-2023-0071
//! (medium). Where `prevent_vulnerable = "high"` applies, docker's pull is refused with the
//! counts until the CVE is allowlisted, in the configuration or by the organization's owner
//! over the API; an expired entry refuses again; `berth run` refuses and then runs with the
//! same policy on the machine.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, start_with_auth};
use crate::client::{OCI_CONFIG, OCI_MANIFEST};
use crate::harness::{Berth, sha256};
use crate::runtime_pull::{E, Runtime, gzip, is_root, tar};
use crate::scan_cli::data;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CRITICAL: &str = "TEST-2099-0001";
const CVE: &str = "CVE-2099-0001";

/// A directory with the critical record and RUSTSEC-2023-0071.
fn advisories() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let record = json!({
        "schema_version": "1.6.0",
        "id": CRITICAL,
        "modified": "2026-12-01T00:00:00Z",
        "aliases": [CVE],
        "summary": "a critical advisory made for this test",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": "rsa"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.0.0-0"}]}],
        }],
    });
    std::fs::write(
        dir.path().join(format!("{CRITICAL}.json")),
        record.to_string(),
    )
    .unwrap();
    std::fs::copy(
        data("osv-match", "RUSTSEC-2023-0071.json"),
        dir.path().join("RUSTSEC-2023-0071.json"),
    )
    .unwrap();
    dir
}

fn vulndb_update(b: &Berth) {
    let dir = advisories();
    let (ok, out, err) = b.cli(
        &["vulndb", "update", "--from", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(ok, "berth vulndb update:\n{out}\n{err}");
}

/// Pushes `repo:tag`: a layer with a busybox (when given) and one with the repository's
/// Cargo.lock; its command echoes `greeting`. Returns the manifest digest.
async fn push_image(b: &Berth, repo: &str, tag: &str, busybox: Option<&[u8]>) -> String {
    let lock =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let mut layers = Vec::new();
    if let Some(busybox) = busybox {
        layers.push(tar(&[
            E::Dir("bin/", 0o755),
            E::File("bin/busybox", busybox, 0o755, 0),
        ]));
    }
    layers.push(tar(&[
        E::Dir("app/", 0o755),
        E::File("app/Cargo.lock", &lock, 0o644, 0),
    ]));
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for raw in &layers {
        descriptors.push(b.push_blob_typed(repo, &gzip(raw), GZIP).await.descriptor());
        diff_ids.push(sha256(raw));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "echo", "vulnerable but accepted"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = b
        .push_blob_typed(repo, &serde_json::to_vec(&config).unwrap(), OCI_CONFIG)
        .await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config.descriptor(), "layers": descriptors,
    });
    let pushed = b
        .push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
        .await;
    pushed.descriptor()["digest"].as_str().unwrap().to_owned()
}

/// The findings of `repo@digest` once matched.
async fn matched(b: &Berth, repo: &str, digest: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = b
            .get(&format!("/api/v1/findings/{repo}?reference={digest}"))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if body["status"] == "done" {
            return body;
        }
        assert!(Instant::now() < deadline, "{body}\n{}", b.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status and error message of a manifest GET (as the harness's client).
async fn pull(b: &Berth, repo: &str, reference: &str) -> (StatusCode, String) {
    let resp = b.get(&format!("/v2/{repo}/manifests/{reference}")).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if status == StatusCode::FORBIDDEN {
        assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    }
    (status, message)
}

/// The finding of advisory `id` in a findings answer.
fn finding<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["advisory"] == id)
        .unwrap_or_else(|| panic!("no {id} in {body}"))
}

const CONFIG: &str = r#"
[[scan.policy]]
scope = "vuln"
prevent_vulnerable = "high"

[[scan.policy]]
scope = "vuln/accepted"
prevent_vulnerable = "high"
allowlist = [{ id = "CVE-2099-0001", expires = 2999-01-01, reason = "not reachable" }]

[[scan.policy]]
scope = "vuln/expired"
prevent_vulnerable = "high"
allowlist = [{ id = "CVE-2099-0001", expires = "2020-01-01T00:00:00Z" }]

[[scan.policy]]
scope = "vuln/lenient"
prevent_vulnerable = "critical"
allowlist = [{ id = "CVE-2099-0001" }]
"#;

#[tokio::test]
async fn scan_policy_refuses_docker_pulls_until_the_cve_is_allowlisted_in_the_configuration() {
    let (Some(docker), Some(busybox)) = (
        crate::real_clients::Docker::get(),
        crate::real_clients::busybox(),
    ) else {
        return;
    };
    let busybox = std::fs::read(busybox).unwrap();
    let (b, _config) = crate::policies::start_with_config(
        CONFIG,
        &[
            ("BERTH_SCAN_ENABLED", "true"),
            ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
        ],
    );
    vulndb_update(&b);
    let mut digests = Vec::new();
    for repo in [
        "vuln/app",
        "vuln/accepted/app",
        "vuln/expired/app",
        "vuln/lenient/app",
        "open/app",
    ] {
        let digest = push_image(&b, repo, "1", Some(&busybox)).await;
        matched(&b, repo, &digest).await;
        digests.push(digest);
    }

    // The findings API marks what the configuration's entry accepts, and counts the rest.
    let body = matched(&b, "vuln/accepted/app", &digests[1]).await;
    let critical = finding(&body, CRITICAL);
    assert_eq!(critical["severity"], "critical", "{critical}");
    assert_eq!(
        critical["allowlisted"],
        json!({"id": CVE, "expires": "2999-01-01T00:00:00Z", "reason": "not reachable", "source": "instance"})
    );
    assert_eq!(
        finding(&body, "RUSTSEC-2023-0071")["allowlisted"],
        Value::Null
    );
    assert_eq!(body["matched"]["counts"]["critical"], 1, "{body}");
    assert_eq!(body["matched"]["unallowlisted"]["critical"], 0, "{body}");
    assert_eq!(body["matched"]["unallowlisted"]["medium"], 1, "{body}");
    assert_eq!(body["matched"]["allowlisted"], 1, "{body}");
    assert_eq!(body["policy"]["scope"], "vuln/accepted");
    assert_eq!(body["policy"]["refused"], Value::Null);
    let body = matched(&b, "vuln/expired/app", &digests[2]).await;
    let critical = finding(&body, CRITICAL);
    assert_eq!(critical["allowlisted"], Value::Null, "{critical}");
    assert_eq!(
        critical["allowlist_expired"]["expires"], "2020-01-01T00:00:00Z",
        "{critical}"
    );
    assert_eq!(
        body["policy"]["refused"],
        "1 critical not allowlisted (threshold high)"
    );

    // docker: refused with the counts and the policy where the CVE counts; HEAD answers.
    for (repo, digest) in [("vuln/app", &digests[0]), ("vuln/expired/app", &digests[2])] {
        let image = format!("{}/{repo}:1", b.host());
        let (pulled, out, err) = docker.run(&["pull", &image]);
        assert!(!pulled, "{image} must not pull: {out}");
        assert!(
            err.contains("denied") && err.contains("1 critical not allowlisted (threshold high)"),
            "{err}"
        );
        let head = b.head(&format!("/v2/{repo}/manifests/1")).await;
        assert_eq!(head.status(), StatusCode::OK);
        let (status, message) = pull(&b, repo, digest).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let scope = repo.trim_end_matches("/app");
        assert_eq!(
            message,
            format!(
                "pull refused by vulnerability policy \"{scope}\": 1 critical not allowlisted (threshold high)"
            )
        );
    }
    // Served where the CVE is accepted, the threshold is above what is left (lenient: the
    // medium finding under a critical threshold), or no policy is. The GET is checked as well
    // as docker's pull: docker may find the image's content at home from another repository.
    for repo in ["vuln/accepted/app", "vuln/lenient/app", "open/app"] {
        let (status, message) = pull(&b, repo, "1").await;
        assert_eq!(status, StatusCode::OK, "{repo}: {message}");
        let image = format!("{}/{repo}:1", b.host());
        docker.ok(&["pull", &image]);
        docker.ok(&["rmi", &image]);
    }

    // An index is refused when one of its platforms is.
    let size: u64 = b
        .head(&format!("/v2/vuln/app/manifests/{}", digests[0]))
        .await
        .headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": digests[0], "size": size,
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    });
    let resp = b
        .put_manifest(
            "vuln/app",
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, message) = pull(&b, "vuln/app", "multi").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message.contains(&format!("in platform manifest {}", digests[0])),
        "{message}"
    );

    // An image not scanned (yet) is served; the README says so.
    let unscanned = {
        let (b2, _c2) = crate::policies::start_with_config(CONFIG, &[]);
        let digest = push_image(&b2, "vuln/app", "1", None).await;
        let (status, _) = pull(&b2, "vuln/app", &digest).await;
        status
    };
    assert_eq!(unscanned, StatusCode::OK);

    crate::metrics::scrape_until(&b, "the refusal counter", |m| {
        m.get("berth_scan_policy_refusals_total", &[]) >= Some(5.0)
    })
    .await;
}

fn allowlist_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/cve-allowlist")
}

async fn call(
    b: &Berth,
    who: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, b.url(path))
        .header("authorization", crate::auth::basic_header(who, PASSWORD));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn scan_policy_org_owners_keep_their_own_allowlist() {
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("berth.toml");
    std::fs::write(
        &file,
        "[[scan.policy]]\nscope = \"acme\"\nprevent_vulnerable = \"high\"\n\
         allowlist = [{ id = \"RUSTSEC-2023-0071\" }]\n",
    )
    .unwrap();
    let b = start_with_auth(&[
        ("BERTH_CONFIG", file.to_str().unwrap()),
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]);
    for user in ["alice", "bob", "carol"] {
        b.admin_ok(
            &["user", "add", user, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }
    for (org, owner) in [("acme", "alice"), ("beta", "bob")] {
        let (s, v) = call(
            &b,
            owner,
            Method::POST,
            "/api/v1/orgs",
            Some(json!({"name": org})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, _) = call(
        &b,
        "alice",
        Method::PUT,
        "/api/v1/orgs/acme/members/carol",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    vulndb_update(&b);
    let digest = push_image(&b, "acme/app", "1", None).await;
    matched(&b, "acme/app", &digest).await;
    let (status, message) = pull(&b, "acme/app", &digest).await;
    assert_eq!(
        (status, message.as_str()),
        (
            StatusCode::FORBIDDEN,
            "pull refused by vulnerability policy \"acme\": 1 critical not allowlisted (threshold high)"
        )
    );

    // Members and other organizations' owners may neither read nor change the list.
    let entry = json!({"entries": [{"id": CVE, "expires": "2999-01-31", "reason": "sandboxed"}]});
    for who in ["carol", "bob"] {
        let (s, v) = call(
            &b,
            who,
            Method::PUT,
            &allowlist_path("acme"),
            Some(entry.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}: {v}");
        let (s, _) = call(&b, who, Method::GET, &allowlist_path("acme"), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }
    let (s, v) = call(
        &b,
        "bob",
        Method::PUT,
        &allowlist_path("beta"),
        Some(entry.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        pull(&b, "acme/app", &digest).await.0,
        StatusCode::FORBIDDEN,
        "beta's list is not acme's"
    );
    // Bad entries are refused.
    for bad in [
        json!({"entries": [{"id": CVE, "expires": "someday"}]}),
        json!({"entries": [{"id": "CVE 1"}]}),
        json!({"entries": [{"id": CVE, "until": "2999-01-01"}]}),
    ] {
        let (s, v) = call(
            &b,
            "alice",
            Method::PUT,
            &allowlist_path("acme"),
            Some(bad.clone()),
        )
        .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {s} {v}"
        );
    }

    // The owner's entry is added to the configuration's, and the pull is served at once.
    let (s, v) = call(
        &b,
        "alice",
        Method::PUT,
        &allowlist_path("acme"),
        Some(entry.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"], entry["entries"]);
    assert_eq!(v["updated_by"], "alice");
    assert_eq!(v["instance_policies"][0]["scope"], "acme", "{v}");
    assert_eq!(
        v["instance_policies"][0]["entries"][0]["id"],
        "RUSTSEC-2023-0071"
    );
    assert_eq!(pull(&b, "acme/app", &digest).await.0, StatusCode::OK);
    let body = matched(&b, "acme/app", &digest).await;
    assert_eq!(
        finding(&body, CRITICAL)["allowlisted"]["source"],
        "org",
        "{body}"
    );
    assert_eq!(
        finding(&body, "RUSTSEC-2023-0071")["allowlisted"]["source"],
        "instance"
    );
    assert_eq!(body["matched"]["unallowlisted"]["critical"], 0);

    // The owner cannot take the configuration's entry away: an empty list still accepts it;
    // an expired entry of the owner's refuses again.
    let expired = json!({"entries": [{"id": CVE, "expires": "2020-01-01"}]});
    let (s, _) = call(
        &b,
        "alice",
        Method::PUT,
        &allowlist_path("acme"),
        Some(expired.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, message) = pull(&b, "acme/app", &digest).await;
        if status == StatusCode::FORBIDDEN {
            assert!(message.contains("1 critical not allowlisted"), "{message}");
            break;
        }
        assert!(Instant::now() < deadline, "the expired entry still admits");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = matched(&b, "acme/app", &digest).await;
    assert_eq!(
        finding(&body, CRITICAL)["allowlist_expired"]["source"],
        "org"
    );
    assert_eq!(
        finding(&body, "RUSTSEC-2023-0071")["allowlisted"]["source"],
        "instance"
    );

    // Audited with the old and the new list.
    let resp = reqwest::Client::new()
        .get(b.url("/api/v1/audit?action=cve.allowlist.set"))
        .header(
            "authorization",
            crate::auth::basic_header("root", crate::auth::ADMIN_PASSWORD),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let last = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "acme" || e["detail"]["new"] == expired["entries"])
        .unwrap_or_else(|| panic!("no audit entry: {v}"));
    assert_eq!(last["actor"], "alice", "{last}");
    assert_eq!(last["detail"]["old"], entry["entries"], "{last}");
    assert_eq!(last["detail"]["new"], expired["entries"], "{last}");
}

#[tokio::test]
async fn scan_policy_berth_run_refuses_then_runs_with_the_cve_allowlisted() {
    let Some(busybox) = crate::real_clients::busybox() else {
        return;
    };
    if !is_root() {
        return;
    }
    let busybox = std::fs::read(busybox).unwrap();
    let b = Berth::start_with(&[]);
    let image = format!("{}/team/app:1", b.host());
    push_image(&b, "team/app", "1", Some(&busybox)).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let write_policy = |allow: &str| {
        std::fs::write(
            &policy,
            format!(
                "[[scan.policy]]\nscope = \"{}/team\"\nprevent_vulnerable = \"high\"\nallowlist = [{allow}]\n",
                b.host()
            ),
        )
        .unwrap();
    };
    write_policy("");
    let mut rt = Runtime::new();
    rt.env
        .push(("BERTH_POLICY".into(), policy.display().to_string()));
    rt.env.extend(b.env().iter().cloned());
    rt.env.push((
        "BERTH_SERVER_DATA_DIR".into(),
        b.data_dir.display().to_string(),
    ));

    // No advisory database yet: refused, saying how to import one.
    let (ran, out, err) = rt.run(&["run", "--rm", &image]);
    assert!(!ran, "{out}");
    assert!(err.contains("berth vulndb update"), "{err}");

    vulndb_update(&b);
    let (ran, out, err) = rt.run(&["run", "--rm", &image]);
    assert!(!ran, "{out}");
    assert!(
        err.contains(&format!(
            "is refused by vulnerability policy \"{}/team\": 1 critical not allowlisted (threshold high)",
            b.host()
        )),
        "{err}"
    );
    // --insecure-skip-verify runs it, saying so.
    let (ran, out, err) = rt.run(&["run", "--rm", "--insecure-skip-verify", &image]);
    assert!(
        ran && out.starts_with("vulnerable but accepted\n"),
        "{out}{err}"
    );
    assert!(err.contains("--insecure-skip-verify was given"), "{err}");

    // An expired entry does not accept; a live one does.
    write_policy(&format!("{{ id = \"{CVE}\", expires = 2020-01-01 }}"));
    let (ran, _, err) = rt.run(&["run", "--rm", &image]);
    assert!(
        !ran && err.contains("expired at 2020-01-01T00:00:00Z"),
        "{err}"
    );
    write_policy(&format!("{{ id = \"{CVE}\", expires = 2999-01-01 }}"));
    let out = rt.ok(&["run", "--rm", &image]);
    assert!(out.starts_with("vulnerable but accepted\n"), "{out}");
    // berth pull checks too.
    write_policy("");
    let (pulled, _, err) = rt.run(&["pull", &image]);
    assert!(
        !pulled && err.contains("1 critical not allowlisted"),
        "{err}"
    );
}

/// The text of `page`'s findings row for advisory `id` (from its row to the next).
fn row<'a>(page: &'a crate::ui::Page, id: &str) -> &'a str {
    let start = page
        .body
        .find(&format!("<code class=\"advisory\">{id}</code>"))
        .unwrap_or_else(|| panic!("no row of {id}: {}", page.body));
    let row_start = page.body[..start].rfind("<tr").unwrap();
    let end = page.body[start..].find("</tr>").unwrap() + start;
    &page.body[row_start..end]
}

#[tokio::test]
async fn scan_policy_owners_accept_cves_on_the_organization_page_and_findings_show_it() {
    use crate::ui::Web;
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("berth.toml");
    std::fs::write(
        &file,
        "[[scan.policy]]\nscope = \"acme\"\nprevent_vulnerable = \"high\"\n\
         allowlist = [{ id = \"RUSTSEC-2023-0071\", reason = \"timing side channel, no network\" }]\n",
    )
    .unwrap();
    let b = start_with_auth(&[
        ("BERTH_CONFIG", file.to_str().unwrap()),
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]);
    for user in ["alice", "carol"] {
        b.admin_ok(
            &["user", "add", user, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }
    let (s, _) = call(
        &b,
        "alice",
        Method::POST,
        "/api/v1/orgs",
        Some(json!({"name": "acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(
        &b,
        "alice",
        Method::PUT,
        "/api/v1/orgs/acme/members/carol",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    vulndb_update(&b);
    let digest = push_image(&b, "acme/app", "1", None).await;
    matched(&b, "acme/app", &digest).await;
    let findings = format!("/ui/r/acme/app/-/findings/{digest}");

    let mut alice = Web::new(&b);
    alice.sign_in("alice", PASSWORD).await;
    // The configuration's entry marks its finding; the critical one is open and refuses pulls.
    let page = alice.get(&findings).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.has("Pulls of this image are refused by vulnerability policy")
            && page.has("1 critical not allowlisted"),
        "{}",
        page.body
    );
    assert!(
        page.has("1 of all are accepted by an allowlist"),
        "{}",
        page.body
    );
    let accepted = row(&page, "RUSTSEC-2023-0071");
    assert!(
        accepted.contains("accepted") && accepted.contains("timing side channel, no network"),
        "{accepted}"
    );
    assert!(
        !row(&page, CRITICAL).contains("accepted"),
        "{}",
        row(&page, CRITICAL)
    );

    // The organization page lists the configuration's entry, read-only, and takes the
    // owner's own; bad input and forged posts are refused and change nothing.
    let org = alice.get("/ui/orgs/acme").await;
    assert!(
        org.has("Accepted vulnerabilities")
            && org.has("RUSTSEC-2023-0071")
            && org.has("No entries of this organization."),
        "{}",
        org.body
    );
    let csrf = org.csrf();
    let add = |id: &'static str, expires: &'static str| {
        vec![
            ("op", "cve-add"),
            ("id", id),
            ("expires", expires),
            ("reason", "sandboxed <b>here</b>"),
        ]
    };
    let forged = alice.post("/ui/orgs/acme", &add(CVE, "")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for (id, expires, complaint) in [("CVE 1", "", "CVE 1"), (CVE, "someday", "someday")] {
        let mut fields = add(id, expires);
        fields.push(("csrf", &csrf));
        let bad = alice.post("/ui/orgs/acme", &fields).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        assert!(bad.has(complaint), "{}", bad.body);
    }
    let (_, v) = call(&b, "alice", Method::GET, &allowlist_path("acme"), None).await;
    assert_eq!(v["entries"], json!([]), "{v}");

    // An expired entry is shown as such and refuses still.
    let mut fields = add(CVE, "2020-01-01");
    fields.push(("csrf", &csrf));
    let saved = alice.post("/ui/orgs/acme", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = alice.get(&findings).await;
    assert!(
        row(&page, CRITICAL).contains("acceptance expired"),
        "{}",
        row(&page, CRITICAL)
    );
    assert_eq!(pull(&b, "acme/app", &digest).await.0, StatusCode::FORBIDDEN);

    // Accepted until 2999 (the entry of the same id is replaced): the pull passes and the
    // findings page says why.
    let mut fields = add(CVE, "2999-01-31");
    fields.push(("csrf", &csrf));
    assert_eq!(
        alice.post("/ui/orgs/acme", &fields).await.status,
        StatusCode::SEE_OTHER
    );
    let (_, v) = call(&b, "alice", Method::GET, &allowlist_path("acme"), None).await;
    assert_eq!(
        v["entries"],
        json!([{"id": CVE, "expires": "2999-01-31", "reason": "sandboxed <b>here</b>"}]),
        "{v}"
    );
    assert_eq!(pull(&b, "acme/app", &digest).await.0, StatusCode::OK);
    let page = alice.get(&findings).await;
    assert!(page.has("this one passes"), "{}", page.body);
    assert!(
        page.has("2 of all are accepted by an allowlist"),
        "{}",
        page.body
    );
    let critical = row(&page, CRITICAL);
    assert!(
        critical.contains("accepted")
            && critical.contains("until 2999-01-31")
            && critical.contains("sandboxed &lt;b&gt;here&lt;/b&gt;"),
        "{critical}"
    );
    let org = alice.get("/ui/orgs/acme").await;
    assert!(
        org.has(CVE) && org.has("Last changed by alice"),
        "{}",
        org.body
    );

    // A member cannot change the list from the page.
    let mut carol = Web::new(&b);
    carol.sign_in("carol", PASSWORD).await;
    let home = carol.get("/ui/").await;
    let csrf_carol = home.csrf();
    let fields = vec![
        ("op", "cve-remove"),
        ("id", CVE),
        ("csrf", csrf_carol.as_str()),
    ];
    let refused = carol.post("/ui/orgs/acme", &fields).await;
    assert!(
        matches!(
            refused.status,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{}",
        refused.status
    );
    assert_eq!(pull(&b, "acme/app", &digest).await.0, StatusCode::OK);

    // The owner removes it: refused again. Every change was audited.
    let fields = vec![("op", "cve-remove"), ("id", CVE), ("csrf", csrf.as_str())];
    assert_eq!(
        alice.post("/ui/orgs/acme", &fields).await.status,
        StatusCode::SEE_OTHER
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pull(&b, "acme/app", &digest).await.0 != StatusCode::FORBIDDEN {
        assert!(Instant::now() < deadline, "the removal was not applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, v) = crate::org_rules::call(
        &b,
        Some(crate::org_rules::ROOT),
        Method::GET,
        "/api/v1/audit?action=cve.allowlist.set&n=10",
        None,
    )
    .await;
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(3), "{v}");
}

#[tokio::test]
async fn scan_policy_chromium_owner_accepts_a_cve_and_the_administrator_withdraws_it() {
    let Some((_driver, c, _profile)) = crate::browser::browser().await else {
        return;
    };
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("berth.toml");
    std::fs::write(
        &file,
        "[[scan.policy]]\nscope = \"acme\"\nprevent_vulnerable = \"high\"\n",
    )
    .unwrap();
    let b = start_with_auth(&[
        ("BERTH_CONFIG", file.to_str().unwrap()),
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]);
    crate::org_rules::add_user(&b, "alice");
    crate::org_rules::org_of(&b, "acme", "alice").await;
    vulndb_update(&b);
    let digest = push_image(&b, "acme/app", "1", None).await;
    matched(&b, "acme/app", &digest).await;
    assert_eq!(pull(&b, "acme/app", &digest).await.0, StatusCode::FORBIDDEN);
    crate::browser::closing(&c, chromium_allowlist(&c, &b, &digest)).await;
}

async fn chromium_allowlist(c: &fantoccini::Client, b: &Berth, digest: &str) {
    use crate::browser::{click, fill, screenshot, text, wait_for};
    use crate::org_rules::ROOT;
    use fantoccini::Locator;
    let remove = format!("button[aria-label='Remove {CVE}']");

    // The owner accepts the CVE on the organization page: the pull passes and the findings
    // page marks the finding with the reason.
    crate::browser::sign_in(c, b, "alice", PASSWORD).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    fill(c, "#cve-id", CVE).await;
    fill(c, "#cve-reason", "only reachable <b>offline</b>").await;
    click(c, "#cve-allowlist-form button[type=submit]").await;
    wait_for(c, Locator::Css(&remove))
        .await
        .expect("the entry listed");
    assert!(text(c).await.contains("Last changed by alice"));
    screenshot(c, "allowlist-owner").await;
    assert_eq!(pull(b, "acme/app", digest).await.0, StatusCode::OK);
    c.goto(&b.url(&format!("/ui/r/acme/app/-/findings/{digest}")))
        .await
        .expect("goto");
    let row = wait_for(
        c,
        Locator::XPath(&format!(
            "//tr[.//code[@class='advisory' and text()='{CRITICAL}']]"
        )),
    )
    .await
    .expect("the critical finding")
    .text()
    .await
    .expect("text");
    assert!(
        row.contains("accepted") && row.contains("only reachable <b>offline</b>"),
        "{row}"
    );
    crate::browser::sign_out(c).await;

    // The administrator withdraws it from the same page: pulls are refused again.
    crate::browser::sign_in(c, b, ROOT.0, ROOT.1).await;
    c.goto(&b.url("/ui/orgs/acme")).await.expect("goto");
    click(c, &remove).await;
    wait_for(
        c,
        Locator::XPath("//*[contains(text(), 'No entries of this organization.')]"),
    )
    .await
    .expect("the entry gone");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pull(b, "acme/app", digest).await.0 != StatusCode::FORBIDDEN {
        assert!(Instant::now() < deadline, "the removal was not applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, v) = crate::org_rules::call(
        b,
        Some(ROOT),
        Method::GET,
        "/api/v1/audit?action=cve.allowlist.set&n=10",
        None,
    )
    .await;
    let actors: Vec<&Value> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["actor"])
        .collect();
    assert_eq!(actors, [&json!("root"), &json!("alice")], "{v}");
}
