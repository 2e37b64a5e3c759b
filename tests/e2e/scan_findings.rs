//! The hub matches the inventories it stores against the advisory database: an image of this
//! machine's dpkg database and os-release (Debian 12) and the repository's Cargo.lock, pushed
//! with scanning on, matched against real OSV records (scan/tests/data/osv-match) imported
//! with `berth vulndb update`; the findings API with its filters, the summary in the SBOM
//! answer, `scan.completed` webhooks, and a later import that changes the findings without
//! any blob being read again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::events::Receiver;
use crate::harness::Berth;
use crate::metrics::{scrape, scrape_until};
use crate::scan_cli::{data, dpkg_lt, installed_from, locked, push_image};

/// A finding as compared: (package, installed, advisory, fixed).
pub(crate) type Row = (String, String, String, Option<String>);

/// A directory holding the given OSV records of scan/tests/data/osv-match.
fn records(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(data("osv-match", file), dir.path().join(file)).unwrap();
    }
    dir
}

/// The Debian findings `advisory` (fixed in `fixed`) gives this machine's packages built
/// from `source`, by dpkg's own order.
fn debian(source: &str, advisory: &str, fixed: &str) -> BTreeSet<Row> {
    installed_from(source)
        .into_iter()
        .filter(|(_, version)| dpkg_lt(version, fixed))
        .map(|(name, version)| (name, version, advisory.into(), Some(fixed.into())))
        .collect()
}

pub(crate) fn rows(body: &Value) -> BTreeSet<Row> {
    body["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {body}"))
        .iter()
        .map(|f| {
            (
                f["package"].as_str().unwrap().to_owned(),
                f["installed"].as_str().unwrap().to_owned(),
                f["advisory"].as_str().unwrap().to_owned(),
                f["fixed"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

pub(crate) async fn get_json(b: &Berth, path: &str) -> Value {
    let resp = b.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The findings of `repo@digest` once `done` holds of them.
pub(crate) async fn findings_when(
    b: &Berth,
    repo: &str,
    digest: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = get_json(b, &format!("/api/v1/findings/{repo}?reference={digest}")).await;
        if body["status"] == "done" && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: {body}\n{}", b.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn vulndb_update(b: &Berth, dir: &tempfile::TempDir) {
    let (ok, out, err) = b.cli(
        &["vulndb", "update", "--from", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(ok, "berth vulndb update:\n{out}\n{err}");
}

// Multi-threaded: the receiver answers while the test waits on a blocking `berth` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_findings_are_matched_filtered_announced_and_rematched_without_reading_layers() {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(
        os_release.contains("ID=debian") && os_release.contains("VERSION_ID=\"12\""),
        "the scan tests use this machine's Debian 12 packages"
    );
    let receiver = Receiver::start(0, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[webhooks]\npoll_interval_ms = 100\n\n[[webhooks.hook]]\nname = \"scans\"\nurl = \"{}\"\nevents = [\"scan\"]\n",
            receiver.url()
        ),
    )
    .unwrap();
    let b = Berth::start_with(&[
        ("BERTH_CONFIG", config.to_str().unwrap()),
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]);

    // The database first holds expat's and rsa's advisories, not jq's.
    let first = records(&["DEBIAN-CVE-2024-28757.json", "RUSTSEC-2023-0071.json"]);
    vulndb_update(&b, &first);
    let digest = push_image(&b, "scan/app", "1").await;

    let mut want = debian("expat", "DEBIAN-CVE-2024-28757", "2.5.0-1+deb12u4");
    assert!(
        !want.is_empty(),
        "this machine no longer has an affected expat"
    );
    let rsa: Row = (
        "rsa".into(),
        locked("rsa"),
        "RUSTSEC-2023-0071".into(),
        None,
    );
    want.insert(rsa.clone());
    let body = findings_when(&b, "scan/app", &digest, "the first match", |_| true).await;
    assert_eq!(rows(&body), want, "{body:#}");
    let counts = &body["matched"]["counts"];
    assert_eq!(counts["total"], want.len());
    assert_eq!(counts["medium"], 1, "rsa's advisory is medium: {body}");
    assert_eq!(
        counts["unknown"],
        want.len() - 1,
        "Debian's carry no severity"
    );
    assert_eq!(counts["fixable"], want.len() - 1, "rsa has no fix");
    let f = &body["findings"][0];
    assert_eq!(f["advisory"], "RUSTSEC-2023-0071", "most severe first");
    assert_eq!(f["type"], "cargo");
    assert_eq!(f["ecosystem"], "crates.io");
    assert!(
        f["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "CVE-2023-49092"),
        "{f}"
    );
    assert!(f["score"].as_f64().is_some(), "{f}");
    assert_eq!(f["fixable"], false);
    let generation = body["matched"]["generation"].as_i64().unwrap();

    // Filters: by severity (at or above), by fixability; a tag names the same manifest.
    let medium = get_json(&b, "/api/v1/findings/scan/app?reference=1&severity=medium").await;
    assert_eq!(rows(&medium), BTreeSet::from([rsa.clone()]));
    let unfixed = get_json(&b, "/api/v1/findings/scan/app?reference=1&fixable=false").await;
    assert_eq!(rows(&unfixed), BTreeSet::from([rsa.clone()]));
    let fixable = get_json(&b, "/api/v1/findings/scan/app?reference=1&fixable=true").await;
    assert_eq!(rows(&fixable).len(), want.len() - 1);
    let resp = b
        .get("/api/v1/findings/scan/app?reference=1&severity=dire")
        .await;
    assert_eq!(resp.status(), 400);
    let resp = b.get("/api/v1/findings/scan/app?reference=2").await;
    assert_eq!(resp.status(), 404);

    // The SBOM answer carries the summary.
    let sbom = get_json(&b, &format!("/api/v1/sbom/scan/app?reference={digest}")).await;
    assert_eq!(sbom["vulnerabilities"]["counts"], *counts, "{sbom}");

    // The webhook hears of the first match.
    let got = receiver.wait_for(1).await;
    let event = got[0].json();
    assert_eq!(event["type"], "dev.berth.scan.completed", "{event}");
    assert_eq!(event["subject"], format!("scan/app@{digest}"));
    assert_eq!(event["data"]["action"], "scan.completed");
    assert_eq!(event["data"]["detail"]["trigger"], "inventory");
    assert_eq!(event["data"]["detail"]["summary"], *counts);

    // jq's advisory comes in: the findings change, from the stored inventory only.
    let reads = |m: &crate::metrics::Exposition| m.get("berth_blob_reads_total", &[]).unwrap();
    let before = reads(&scrape(&b).await);
    assert!(before >= 2.0, "the inventory read the two layers: {before}");
    let second = records(&["DEBIAN-CVE-2026-33947.json"]);
    vulndb_update(&b, &second);
    let jq = debian("jq", "DEBIAN-CVE-2026-33947", "1.6-2.1+deb12u2");
    assert!(!jq.is_empty(), "this machine no longer has an affected jq");
    want.extend(jq);
    let body = findings_when(&b, "scan/app", &digest, "the rematch", |body| {
        body["matched"]["generation"].as_i64() > Some(generation)
    })
    .await;
    assert_eq!(rows(&body), want, "{body:#}");
    assert_eq!(body["matched"]["counts"]["total"], want.len());
    assert_eq!(reads(&scrape(&b).await), before, "no blob was read again");
    let got = receiver.wait_for(2).await;
    let event = got[1].json();
    assert_eq!(event["data"]["detail"]["trigger"], "advisories", "{event}");
    assert_eq!(event["data"]["detail"]["summary"]["total"], want.len());

    // An import naming none of the image's packages moves it on without a new match or
    // event (the DSA record is for Debian 11's packages: the same names, another release).
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        data("osv", "DSA-5218-1.json"),
        other.path().join("DSA-5218-1.json"),
    )
    .unwrap();
    let generation = body["matched"]["generation"].as_i64().unwrap();
    vulndb_update(&b, &other);
    let body = findings_when(&b, "scan/app", &digest, "catching up", |body| {
        body["matched"]["generation"].as_i64() > Some(generation)
    })
    .await;
    assert_eq!(rows(&body), want);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.wait_for(2).await.len(),
        2,
        "no event for unchanged findings"
    );

    // The gauges: every matched image's findings by severity.
    scrape_until(&b, "the findings gauge", |m| {
        m.get("berth_scan_findings", &[("severity", "medium")]) == Some(1.0)
            && m.get("berth_scan_findings", &[("severity", "unknown")])
                == Some((want.len() - 1) as f64)
    })
    .await;
}
