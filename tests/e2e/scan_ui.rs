//! Scan results in the web UI: an image of this machine's dpkg database and os-release and the
//! repository's Cargo.lock, pushed with scanning on and matched against real OSV records
//! (scan/tests/data/osv-match), seen in Chromium: the severity summary per tag (an index's
//! platforms combined), the findings page with its filters, the packages page with berth's
//! SBOM beside one a client pushed. Over plain HTTP: a private repository's findings stay
//! hidden from anonymous viewers and non-members, and hostile package names and advisories
//! from a crafted database are escaped.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{browser, screenshot, text, wait_for};
use crate::client::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Pushed};
use crate::harness::{Berth, sha256};
use crate::runtime_pull::{E, gzip, tar};
use crate::scan_cli::{data, dpkg_lt, installed_from};
use crate::ui::{ALICE_PASSWORD, BOB_PASSWORD, Web, XSS, basic};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// Pushes an amd64 image of `layers` (uncompressed tars) as `repo:tag`.
async fn push_layers(b: &Berth, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Pushed {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for raw in layers {
        descriptors.push(b.push_blob_typed(repo, &gzip(raw), GZIP).await.descriptor());
        diff_ids.push(sha256(raw));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = b
        .push_blob_typed(repo, &serde_json::to_vec(&config).unwrap(), OCI_CONFIG)
        .await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config.descriptor(), "layers": descriptors,
    });
    b.push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
        .await
}

/// This machine's os-release and dpkg status, and the repository's Cargo.lock.
fn machine_layers() -> Vec<Vec<u8>> {
    let os_release = std::fs::read("/etc/os-release").unwrap();
    assert!(
        String::from_utf8_lossy(&os_release).contains("VERSION_ID=\"12\""),
        "the scan tests use this machine's Debian 12 packages"
    );
    let status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let lock = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    vec![
        tar(&[
            E::Dir("etc/", 0o755),
            E::File("etc/os-release", &os_release, 0o644, 0),
            E::Dir("var/lib/dpkg/", 0o755),
            E::File("var/lib/dpkg/status", &status, 0o644, 0),
        ]),
        tar(&[
            E::Dir("app/", 0o755),
            E::File("app/Cargo.lock", &lock, 0o644, 0),
        ]),
    ]
}

/// `berth vulndb update` from a directory holding `files` (name, contents).
fn vulndb(b: &Berth, files: &[(&str, Vec<u8>)]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let (ok, out, err) = b.cli(
        &["vulndb", "update", "--from", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(ok, "berth vulndb update:\n{out}\n{err}");
}

fn record(file: &str) -> (&str, Vec<u8>) {
    (file, std::fs::read(data("osv-match", file)).unwrap())
}

/// Waits (up to 2 minutes) until the findings API says `repo@digest` is matched.
async fn matched(b: &Berth, repo: &str, digest: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = b
            .get(&format!("/api/v1/findings/{repo}?reference={digest}"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        if body["status"] == "done" {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "not matched: {body}\n{}",
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whitespace collapsed, for comparing rendered text.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn scanning_berth(extra: &[(&str, &str)]) -> Berth {
    let mut env = vec![
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ];
    env.extend_from_slice(extra);
    Berth::start_with(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_ui_chromium_shows_counts_filters_findings_and_lists_packages() {
    let Some((_driver, c, _profile)) = browser().await else {
        return;
    };
    let b = scanning_berth(&[]);
    vulndb(
        &b,
        &[
            record("DEBIAN-CVE-2024-28757.json"),
            record("RUSTSEC-2023-0071.json"),
        ],
    );
    let image = push_layers(&b, "scan/app", "1", &machine_layers()).await;
    // An index of that one platform, and an SBOM a client pushed itself.
    let mut platform = image.descriptor();
    platform["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [platform]});
    b.push_manifest_json("scan/app", "multi", OCI_INDEX, &index)
        .await;
    let empty = b
        .push_blob_typed("scan/app", b"{}", "application/vnd.oci.empty.v1+json")
        .await;
    let document = b
        .push_blob_typed(
            "scan/app",
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
            "application/spdx+json",
        )
        .await;
    let sbom = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": empty.descriptor(), "layers": [document.descriptor()], "subject": image.descriptor(),
    });
    let sbom_digest = sha256(&serde_json::to_vec(&sbom).unwrap());
    b.push_manifest_json("scan/app", &sbom_digest, OCI_MANIFEST, &sbom)
        .await;
    let found = matched(&b, "scan/app", &image.digest).await;

    // What the records say of this machine's packages, by dpkg's own order.
    let expat: BTreeSet<(String, String)> = installed_from("expat")
        .into_iter()
        .filter(|(_, v)| dpkg_lt(v, "2.5.0-1+deb12u4"))
        .collect();
    assert!(
        !expat.is_empty(),
        "this machine no longer has an affected expat"
    );
    assert_eq!(
        found["findings"].as_array().unwrap().len(),
        expat.len() + 1,
        "{found}"
    );
    let sbom_api: Value = b
        .get(&format!("/api/v1/sbom/scan/app?reference={}", image.digest))
        .await
        .json()
        .await
        .unwrap();
    let packages = sbom_api["packages"].as_array().unwrap().len();

    crate::browser::closing(&c, look(&c, &b, &image, &expat, packages)).await;
}

/// The (package, installed) pairs of the findings table.
async fn finding_rows(c: &Client) -> BTreeSet<(String, String)> {
    let mut rows = BTreeSet::new();
    for tr in c
        .find_all(Locator::Css("table.findings tbody tr"))
        .await
        .unwrap()
    {
        let package = tr.find(Locator::Css("span.package")).await.unwrap();
        let installed = tr.find(Locator::Css("td.installed")).await.unwrap();
        rows.insert((
            package.text().await.unwrap(),
            installed.text().await.unwrap(),
        ));
    }
    rows
}

/// Chooses `value` in the filter's `select` and applies the form; waits for the new page.
async fn filter(c: &Client, severity: &str, fixable: &str) {
    let select = |css: &'static str| async move { c.find(Locator::Css(css)).await.expect(css) };
    select("#severity")
        .await
        .select_by_value(severity)
        .await
        .unwrap();
    select("#fixable")
        .await
        .select_by_value(fixable)
        .await
        .unwrap();
    c.find(Locator::Css("form.filter button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let want = format!("severity={severity}&fixable={fixable}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !c.current_url().await.unwrap().as_str().contains(&want) {
        assert!(Instant::now() < deadline, "the filter did not load {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(c, Locator::Css("p.finding-count")).await.unwrap();
}

async fn look(
    c: &Client,
    b: &Berth,
    image: &Pushed,
    expat: &BTreeSet<(String, String)>,
    packages: usize,
) {
    let base = b.url("");
    let rsa = |rows: &BTreeSet<(String, String)>| rows.iter().any(|(p, _)| p == "rsa");
    // The tag list: both tags show the counts; the index says they are its platforms'.
    c.goto(&format!("{base}/ui/r/scan/app")).await.unwrap();
    wait_for(c, Locator::Css("table.tags")).await.unwrap();
    let cells = c
        .find_all(Locator::Css("table.tags td.vulnerabilities"))
        .await
        .unwrap();
    assert_eq!(cells.len(), 2, "tags 1 and multi: {}", text(c).await);
    let want = format!("1 medium {} unrated", expat.len());
    for cell in &cells {
        assert_eq!(squash(&cell.text().await.unwrap()), want);
    }
    let links = c
        .find_all(Locator::Css("table.tags a.scan-summary"))
        .await
        .unwrap();
    let titles = [
        links[0].attr("title").await.unwrap().unwrap_or_default(),
        links[1].attr("title").await.unwrap().unwrap_or_default(),
    ];
    assert!(!titles[0].contains("Combined"), "{titles:?}");
    assert!(
        titles[1].starts_with("Combined over 1 platform: 0 critical, 0 high, 1 medium"),
        "{titles:?}"
    );
    screenshot(c, "scan-tags").await;

    // The image's findings: every one, most severe first.
    links[0].clone().click().await.unwrap();
    wait_for(c, Locator::Css("table.findings")).await.unwrap();
    let page = text(c).await;
    assert!(
        page.contains("against advisory database generation"),
        "{page}"
    );
    let rows = finding_rows(c).await;
    assert_eq!(rows.len(), expat.len() + 1, "{rows:?}");
    let others: BTreeSet<_> = rows.iter().filter(|(p, _)| p != "rsa").cloned().collect();
    assert_eq!(others, *expat);
    let first = c
        .find(Locator::Css("table.findings tbody tr span.package"))
        .await
        .unwrap();
    assert_eq!(first.text().await.unwrap(), "rsa", "most severe first");
    screenshot(c, "scan-findings").await;

    // Medium and above: rsa alone, with its CVE alias.
    filter(c, "medium", "").await;
    let rows = finding_rows(c).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rsa(&rows));
    assert!(text(c).await.contains("CVE-2023-49092"));
    // With a fix: exactly the expat packages, at their installed versions.
    filter(c, "", "yes").await;
    assert_eq!(finding_rows(c).await, *expat);
    // Without one: rsa.
    filter(c, "", "no").await;
    let rows = finding_rows(c).await;
    assert!(rows.len() == 1 && rsa(&rows), "{rows:?}");
    // High and above: none.
    filter(c, "high", "").await;
    assert!(finding_rows(c).await.is_empty());
    assert!(text(c).await.contains("0 findings match the filter"));

    // The packages, the OS, and both SBOMs.
    c.find(Locator::LinkText("Packages"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, Locator::Css("table.packages")).await.unwrap();
    let count = c
        .find(Locator::Css("p.package-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, format!("{packages} packages"));
    let rows = c
        .find_all(Locator::Css("table.packages tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), packages.min(200));
    let os = c.find(Locator::Css("dd.os")).await.unwrap();
    assert!(os.text().await.unwrap().contains("Debian GNU/Linux 12"));
    let sboms = c
        .find(Locator::Css("table.sboms"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sboms.contains("berth") && sboms.contains("pushed by a client"),
        "{sboms}"
    );
    assert!(sboms.contains("application/spdx+json"), "{sboms}");
    let page = text(c).await;
    assert!(
        page.contains("libexpat1") || page.contains("pkg:deb/debian/"),
        "{page}"
    );
    screenshot(c, "scan-packages").await;

    // The manifest page links to the same summary.
    c.goto(&format!("{base}/ui/r/scan/app/-/manifest/{}", image.digest))
        .await
        .unwrap();
    let page = squash(&text(c).await);
    assert!(page.contains(&want), "{page}");
}

/// A hub with authentication: alice owns the organization acme, bob is a user with no rights.
async fn auth_hub() -> Berth {
    let mut b = scanning_berth(&[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "alice", "--password-stdin"],
        &format!("{ALICE_PASSWORD}\n"),
    );
    b.admin_ok(
        &["user", "add", "bob", "--password-stdin"],
        &format!("{BOB_PASSWORD}\n"),
    );
    b.admin_ok(&["org", "add", "acme", "--owner", "alice"], "");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        basic("alice", ALICE_PASSWORD).parse().unwrap(),
    );
    b.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    b
}

#[tokio::test]
async fn scan_ui_private_findings_are_hidden_from_anonymous_viewers_and_non_members() {
    let b = auth_hub().await;
    vulndb(&b, &[record("RUSTSEC-2023-0071.json")]);
    let image = push_layers(&b, "acme/app", "1", &machine_layers()).await;
    matched(&b, "acme/app", &image.digest).await;
    let pages = [
        "/ui/r/acme/app".to_owned(),
        format!("/ui/r/acme/app/-/findings/{}", image.digest),
        format!("/ui/r/acme/app/-/findings/{}?severity=medium", image.digest),
        format!("/ui/r/acme/app/-/packages/{}", image.digest),
    ];
    let mut alice = Web::new(&b);
    alice.sign_in("alice", ALICE_PASSWORD).await;
    for path in &pages {
        let page = alice.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.has("1 medium") || page.has("pkg:deb/debian/"),
            "{path}: {}",
            page.body
        );
    }
    let mut anonymous = Web::new(&b);
    let mut bob = Web::new(&b);
    bob.sign_in("bob", BOB_PASSWORD).await;
    for web in [&mut anonymous, &mut bob] {
        for path in &pages {
            let page = web.get(path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
            assert!(
                !page.has("RUSTSEC") && !page.has("rsa") && !page.has("medium"),
                "{path}: {}",
                page.body
            );
        }
    }
}

#[tokio::test]
async fn scan_ui_escapes_hostile_package_names_and_advisories() {
    let b = scanning_berth(&[]);
    // A crafted database: a crate named like a script, and an advisory about it whose
    // summary is markup.
    let advisory = json!({
        "schema_version": "1.6.0",
        "id": "RUSTSEC-2099-0001",
        "modified": "2026-11-01T00:00:00Z",
        "aliases": ["CVE-2099-0001"],
        "summary": "<img src=x onerror=alert(1)>",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": XSS},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.0.0-0"}, {"fixed": "2.0.0"}]}],
        }],
    });
    vulndb(
        &b,
        &[(
            "RUSTSEC-2099-0001.json",
            serde_json::to_vec(&advisory).unwrap(),
        )],
    );
    let lock = format!(
        "version = 3\n\n[[package]]\nname = \"{}\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\n",
        XSS.replace('"', "\\\"")
    );
    let layer = tar(&[
        E::Dir("app/", 0o755),
        E::File("app/Cargo.lock", lock.as_bytes(), 0o644, 0),
    ]);
    let image = push_layers(&b, "scan/hostile", "1", &[layer]).await;
    let found = matched(&b, "scan/hostile", &image.digest).await;
    assert_eq!(found["findings"][0]["package"], XSS, "{found}");

    let mut web = Web::new(&b);
    for path in [
        format!("/ui/r/scan/hostile/-/findings/{}", image.digest),
        format!("/ui/r/scan/hostile/-/packages/{}", image.digest),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.has("&lt;script&gt;alert("), "{path}: {}", page.body);
        assert!(!page.has("<script>alert"), "{path}: {}", page.body);
        assert!(!page.has("<img src=x"), "{path}: {}", page.body);
    }
    let findings = web
        .get(&format!("/ui/r/scan/hostile/-/findings/{}", image.digest))
        .await;
    assert!(findings.has("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(findings.has("CVE-2099-0001"));
    let tags = web.get("/ui/r/scan/hostile").await;
    assert!(
        tags.has("1 high") || tags.has("1 critical"),
        "{}",
        tags.body
    );
}
