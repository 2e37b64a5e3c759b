//! Red Hat Enterprise Linux and UBI images: an image whose os-release says `ID="rhel"`
//! `VERSION_ID="9.4"` and whose rpm database (SQLite, rpm's own schema and header format) lists
//! openssh 8.7p1-38.el9, pushed with scanning on and matched against Red Hat's real advisory
//! RHSA-2024:4312 (CVE-2024-6387, fixed in 0:8.7p1-38.el9_4.1; scan/tests/data/osv-match),
//! imported with `berth vulndb update` from an `all.zip` served over HTTP under OSV's
//! `Red Hat` ecosystem directory, as OSV's bucket lays it out.

#[path = "../../scan/tests/inventory_support/rpm_header.rs"]
mod rpm_header;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::harness::{Berth, tool};
use crate::runtime_pull::{E, tar};
use crate::scan_cli::{data, push_layers};
use crate::scan_findings::{Row, findings_when, get_json, rows};
use crate::vulndb::{Files, write_zip};

/// UBI 9.4's os-release (the lines that matter for matching and the SBOM).
const OS_RELEASE: &str = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\n\
    ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n\
    PRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n";

/// rpm header tags (rpm's `rpmtag.h`).
const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;

/// An rpmdb.sqlite holding `packages` (name, version, release, source rpm), written by
/// Python's sqlite3 with rpm's schema: one header blob per row of `Packages`.
fn rpmdb(python: &Path, packages: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut blobs = Vec::new();
    for (i, (name, version, release, source)) in packages.iter().enumerate() {
        let blob = rpm_header::header_blob(
            &[
                (NAME, name),
                (VERSION, version),
                (RELEASE, release),
                (ARCH, "x86_64"),
                (SOURCERPM, source),
            ],
            None,
        );
        let path = dir.path().join(format!("{i}.hdr"));
        std::fs::write(&path, blob).unwrap();
        blobs.push(path);
    }
    let db = dir.path().join("rpmdb.sqlite");
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        db.execute(\"CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)\")\n\
        for path in sys.argv[2:]:\n\
        \x20   db.execute('INSERT INTO Packages (blob) VALUES (?)', (open(path, 'rb').read(),))\n\
        db.commit()\n\
        db.close()\n";
    let status = Command::new(python)
        .args(["-c", script])
        .arg(&db)
        .args(&blobs)
        .status()
        .unwrap();
    assert!(status.success(), "python sqlite3 failed");
    std::fs::read(db).unwrap()
}

#[tokio::test]
async fn scan_rhel_images_match_red_hat_advisories_in_every_stream_of_their_release() {
    let Some(python) = tool("python3") else {
        return;
    };
    let b = Berth::start_with(&[
        ("BERTH_SCAN_ENABLED", "true"),
        ("BERTH_SCAN_POLL_INTERVAL_MS", "100"),
    ]);

    let rpms = rpmdb(
        &python,
        &[
            ("openssh", "8.7p1", "38.el9", "openssh-8.7p1-38.el9.src.rpm"),
            (
                "openssh-clients",
                "8.7p1",
                "38.el9",
                "openssh-8.7p1-38.el9.src.rpm",
            ),
            ("bash", "5.1.8", "9.el9", "bash-5.1.8-9.el9.src.rpm"),
        ],
    );
    let layer = tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/os-release", OS_RELEASE.as_bytes(), 0o644, 0),
        E::Dir("var/lib/rpm/", 0o755),
        E::File("var/lib/rpm/rpmdb.sqlite", &rpms, 0o644, 0),
    ]);
    let digest = push_layers(&b, "ubi/app", "9.4", &[layer]).await;

    // Matched first against an empty database: nothing.
    let body = findings_when(&b, "ubi/app", &digest, "the first match", |_| true).await;
    assert_eq!(body["findings"], serde_json::json!([]), "{body:#}");
    let generation = body["matched"]["generation"].as_i64();

    // OSV's layout: `<ecosystem>/all.zip`, the ecosystem's name with its space.
    let served = tempfile::tempdir().unwrap();
    let zip = served.path().join("Red Hat").join("all.zip");
    std::fs::create_dir(zip.parent().unwrap()).unwrap();
    let record = std::fs::read(data("osv-match", "RHSA-2024_4312.json")).unwrap();
    write_zip(
        &python,
        &zip,
        &[("RHSA-2024:4312.json".into(), record)],
        1_720_000_000,
    );
    let files = Files::serve(&python, served.path());
    let url = files.url("Red%20Hat/all.zip");
    let (ok, out, err) = b.cli(&["vulndb", "update", "--from", &url, "--json"], &[]);
    assert!(ok, "berth vulndb update:\n{out}\n{err}");
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["new"], 1, "{reports}");
    assert_eq!(reports[0]["malformed"], 0, "{reports}");
    let (ok, out, err) = b.cli(&["vulndb", "status", "--json"], &[]);
    assert!(ok, "berth vulndb status:\n{out}\n{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["sources"][0]["source"], url.as_str(), "{status}");
    assert_eq!(status["sources"][0]["ecosystems"], "Red Hat", "{status}");

    // The advisory names the image's release only through its streams
    // (`enterprise_linux:9::baseos`): the rematch finds it from the stored inventory.
    let body = findings_when(&b, "ubi/app", &digest, "the rematch", |body| {
        body["matched"]["generation"].as_i64() > generation
    })
    .await;
    let row = |name: &str| -> Row {
        (
            name.into(),
            "8.7p1-38.el9".into(),
            "RHSA-2024:4312".into(),
            Some("0:8.7p1-38.el9_4.1".into()),
        )
    };
    assert_eq!(
        rows(&body),
        BTreeSet::from([row("openssh"), row("openssh-clients")]),
        "{body:#}"
    );
    for f in body["findings"].as_array().unwrap() {
        assert_eq!(f["type"], "rpm", "{f}");
        assert_eq!(f["ecosystem"], "Red Hat:enterprise_linux:9", "{f}");
        assert_eq!(f["aliases"], serde_json::json!(["CVE-2024-6387"]), "{f}");
        assert_eq!(f["severity"], "high", "{f}");
        assert_eq!(f["score"], 8.1, "{f}");
        assert_eq!(f["fixable"], true, "{f}");
    }
    assert_eq!(body["matched"]["counts"]["high"], 2, "{body}");

    // The SBOM names the packages as Red Hat does.
    let sbom = get_json(&b, &format!("/api/v1/sbom/ubi/app?reference={digest}")).await;
    let purls: BTreeSet<&str> = sbom["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages in {sbom}"))
        .iter()
        .filter_map(|p| p["purl"].as_str())
        .collect();
    assert_eq!(
        purls,
        BTreeSet::from([
            "pkg:rpm/redhat/bash@5.1.8-9.el9?arch=x86_64&distro=rhel-9.4",
            "pkg:rpm/redhat/openssh-clients@8.7p1-38.el9?arch=x86_64&distro=rhel-9.4",
            "pkg:rpm/redhat/openssh@8.7p1-38.el9?arch=x86_64&distro=rhel-9.4",
        ]),
        "{sbom}"
    );
}
