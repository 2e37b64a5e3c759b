//! `berth scan IMAGE`: an image made of this machine's own dpkg database and os-release
//! (Debian 12) and the repository's Cargo.lock, pushed to a test berth, matched against real
//! OSV records (scan/tests/data/osv-match, osv) imported with `berth vulndb update --from DIR`.
//! Remote (streamed from the registry) and local (pulled into the runtime store) scans must
//! agree; exit codes follow --fail-on and the allowlist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::client::{OCI_CONFIG, OCI_MANIFEST};
use crate::harness::{Berth, sha256};
use crate::runtime_pull::{E, Runtime, gzip, is_root, tar};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub(crate) fn data(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scan/tests/data")
        .join(dir)
        .join(file)
}

/// A directory of OSV records: real advisories for packages of this machine and of
/// Cargo.lock, one for another Debian release, and one malformed record.
fn advisories() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, file) in [
        ("osv-match", "DEBIAN-CVE-2024-28757.json"),
        ("osv-match", "DEBIAN-CVE-2026-33947.json"),
        ("osv-match", "RUSTSEC-2023-0071.json"),
        ("osv-match", "RUSTSEC-2024-0437.json"),
        ("osv", "DSA-5218-1.json"),
        ("osv", "malformed-event.json"),
    ] {
        std::fs::copy(data(from, file), dir.path().join(file)).unwrap();
    }
    dir
}

/// Pushes `repo:tag`: one layer with this machine's os-release and dpkg status, one with
/// the repository's Cargo.lock. Returns the manifest digest.
pub(crate) async fn push_image(b: &Berth, repo: &str, tag: &str) -> String {
    let os_release = std::fs::read("/etc/os-release").unwrap();
    let status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let lock = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let layers = [
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
    ];
    push_layers(b, repo, tag, &layers).await
}

/// Pushes `repo:tag` of the uncompressed tar `layers` (gzipped here). Returns the manifest
/// digest.
pub(crate) async fn push_layers(b: &Berth, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
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
    let pushed = b
        .push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
        .await;
    pushed.descriptor()["digest"].as_str().unwrap().to_owned()
}

/// Runs `berth ARGS` on `b`'s database with the runtime's environment: (exit status,
/// stdout, stderr).
fn run(b: &Berth, rt: &Runtime, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    // The runtime's variables (BERTH_ROOT, BERTH_AUTH_FILE) name the store and credentials, as
    // a user's shell would; the configuration must not take them for settings.
    cmd.args(args)
        .arg("--data-dir")
        .arg(&b.data_dir)
        .env_remove("RUST_LOG");
    for (k, v) in &rt.env {
        cmd.env(k, v);
    }
    for (k, v) in b.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `berth scan ARGS --format json`, which must exit with `status`.
fn scan_json(b: &Berth, rt: &Runtime, args: &[&str], status: i32) -> Value {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(b, rt, &all);
    assert_eq!(code, status, "berth {all:?}:\n{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// (package, installed, advisory, fixed) of each finding.
fn findings(report: &Value) -> Vec<(String, String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .unwrap()
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

/// Whether dpkg itself orders `a` before `b`: the oracle for which of this machine's
/// packages the Debian records affect.
pub(crate) fn dpkg_lt(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .unwrap()
        .success()
}

/// This machine's installed binary packages built from `source`: (name, version).
pub(crate) fn installed_from(source: &str) -> Vec<(String, String)> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
        };
        let (Some(name), Some(version)) = (field("Package:"), field("Version:")) else {
            continue;
        };
        if !field("Status:").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let src = field("Source:").map(|s| s.split(' ').next().unwrap_or("").to_owned());
        if src.as_deref().unwrap_or(&name) == source {
            out.push((name, version));
        }
    }
    out
}

/// The version of `name` in the repository's Cargo.lock.
pub(crate) fn locked(name: &str) -> String {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let needle = format!("name = \"{name}\"\nversion = \"");
    let at = lock
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} not in Cargo.lock"))
        + needle.len();
    lock[at..].split('"').next().unwrap().to_owned()
}

/// The findings this machine's packages must give, by dpkg's own order.
fn expected() -> BTreeSet<(String, String, String, Option<String>)> {
    let mut want = BTreeSet::new();
    for (source, advisory, fixed) in [
        ("expat", "DEBIAN-CVE-2024-28757", "2.5.0-1+deb12u4"),
        ("jq", "DEBIAN-CVE-2026-33947", "1.6-2.1+deb12u2"),
    ] {
        for (name, version) in installed_from(source) {
            if dpkg_lt(&version, fixed) {
                want.insert((name, version, advisory.into(), Some(fixed.into())));
            }
        }
    }
    assert!(
        want.len() >= 2,
        "this machine no longer has an affected expat and jq: {want:?}"
    );
    want.insert((
        "rsa".into(),
        locked("rsa"),
        "RUSTSEC-2023-0071".into(),
        None,
    ));
    want
}

#[tokio::test]
async fn scan_cli_matches_remote_and_local_images_with_thresholds_and_allowlists() {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(
        os_release.contains("ID=debian") && os_release.contains("VERSION_ID=\"12\""),
        "the scan tests use this machine's Debian 12 packages"
    );
    let b = Berth::start();
    let rt = Runtime::new();

    // No advisory database yet: a readable error, status 2.
    let (code, out, err) = run(&b, &rt, &["scan", "127.0.0.1:1/none:1"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("berth vulndb update"), "{err}");

    let records = advisories();
    let (code, out, err) = run(
        &b,
        &rt,
        &[
            "vulndb",
            "update",
            "--from",
            records.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("5 new, 0 updated, 0 unchanged, 1 malformed"),
        "{out}"
    );

    let digest = push_image(&b, "scan/app", "1").await;
    let image = format!("{}/scan/app:1", b.host());

    // Remote: streamed from the registry, nothing stored.
    let remote = scan_json(&b, &rt, &[&image], 0);
    let want = expected();
    assert_eq!(
        findings(&remote).into_iter().collect::<BTreeSet<_>>(),
        want,
        "{remote:#}"
    );
    assert_eq!(remote["source"], "remote");
    assert_eq!(remote["manifest"], digest.as_str());
    assert_eq!(remote["os"]["id"], "debian");
    assert_eq!(remote["os"]["version_id"], "12");
    assert_eq!(remote["errors"], json!([]));
    assert!(
        remote["packages"].as_u64().unwrap() > 500,
        "{}",
        remote["packages"]
    );
    // Sorted by severity first: the medium rsa finding, then the unknown-severity Debian ones.
    let first = &remote["findings"][0];
    assert_eq!(first["package"], "rsa");
    assert_eq!(first["severity"], "medium");
    assert_eq!(first["score"], 5.9);
    assert_eq!(first["fixable"], false);
    assert_eq!(first["type"], "cargo");
    assert_eq!(first["ecosystem"], "crates.io");
    assert_eq!(
        first["aliases"],
        json!(["CVE-2023-49092", "GHSA-c38w-74pg-36hr"])
    );
    assert_eq!(first["paths"], json!(["/app/Cargo.lock"]));
    assert_eq!(first["accepted"], Value::Null);
    let jq = remote["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["package"] == "jq")
        .unwrap();
    assert_eq!(jq["ecosystem"], "Debian:12");
    assert_eq!(jq["severity"], "unknown");
    assert_eq!(jq["aliases"], json!(["CVE-2026-33947"]));
    assert_eq!(jq["fixable"], true);
    let unknown = want.len() as u64 - 1;
    assert_eq!(
        remote["counts"],
        json!({"critical": 0, "high": 0, "medium": 1, "low": 0, "none": 0,
               "unknown": unknown, "accepted": 0})
    );
    assert!(
        !remote.to_string().contains("RUSTSEC-2024-0437"),
        "protobuf {} is the fix",
        locked("protobuf")
    );
    assert!(
        !remote.to_string().contains("DSA-5218-1"),
        "a Debian 11 record"
    );

    // Thresholds.
    for (level, status) in [
        ("critical", 0),
        ("high", 0),
        ("medium", 1),
        ("low", 1),
        ("unknown", 1),
    ] {
        let r = scan_json(&b, &rt, &["--fail-on", level, &image], status);
        assert_eq!(r["fail_on"], level);
        assert_eq!(r["failed"], status == 1);
    }
    let (code, _, err) = run(&b, &rt, &["scan", "--severity-threshold", "severe", &image]);
    assert_eq!(code, 2, "{err}");

    // --ignore-unfixed drops rsa.
    let fixable = scan_json(
        &b,
        &rt,
        &["--ignore-unfixed", "--fail-on", "medium", &image],
        0,
    );
    assert_eq!(findings(&fixable).len(), want.len() - 1);
    assert!(findings(&fixable).iter().all(|f| f.3.is_some()));

    // An allowlist: rsa accepted by its CVE until 2999, jq's acceptance expired in 2020.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("allow.toml");
    std::fs::write(
        &toml,
        "[[allow]]\nid = \"CVE-2023-49092\"\nexpires = 2999-01-01\nreason = \"no RSA decryption\"\n\n\
         [[allow]]\nid = \"DEBIAN-CVE-2026-33947\"\nexpires = \"2020-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let json_list = dir.path().join("allow.json");
    std::fs::write(
        &json_list,
        r#"{"allow": [{"id": "CVE-2023-49092", "expires": "2999-01-01", "reason": "no RSA decryption"},
                      {"id": "DEBIAN-CVE-2026-33947", "expires": "2020-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    for list in [&toml, &json_list] {
        let list = list.to_str().unwrap();
        let r = scan_json(
            &b,
            &rt,
            &["--allowlist", list, "--fail-on", "medium", &image],
            0,
        );
        assert_eq!(
            r["findings"][0]["accepted"],
            json!({"id": "CVE-2023-49092", "expires": "2999-01-01T00:00:00Z",
                   "reason": "no RSA decryption"})
        );
        assert_eq!(r["counts"]["accepted"], 1);
        assert_eq!(r["counts"]["medium"], 0);
        let (code, _, err) = run(
            &b,
            &rt,
            &["scan", "--allowlist", list, "--fail-on", "unknown", &image],
        );
        assert_eq!(code, 1, "the expired entry does not accept jq:\n{err}");
        assert!(
            err.contains("DEBIAN-CVE-2026-33947 expired at 2020-01-01T00:00:00Z"),
            "{err}"
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[allow]]\nid = \"X\"\nexpires = \"someday\"\n").unwrap();
    let (code, _, err) = run(
        &b,
        &rt,
        &["scan", "--allowlist", bad.to_str().unwrap(), &image],
    );
    assert_eq!(code, 2);
    assert!(err.contains("someday"), "{err}");

    // The table: aligned columns, most severe first, and a summary.
    let (code, out, err) = run(&b, &rt, &["scan", "--fail-on", "high", &image]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SEVERITY     PACKAGE"), "{out}");
    assert!(lines[1].starts_with("medium 5.9   rsa"), "{out}");
    let column = lines[0].find("ADVISORY").unwrap();
    assert_eq!(&lines[1][column..column + 17], "RUSTSEC-2023-0071", "{out}");
    assert!(out.contains(&format!("{} findings", want.len())), "{out}");
    assert!(out.ends_with("passed: --fail-on high\n"), "{out}");

    // Local: the same image pulled into the runtime store gives the same findings.
    if is_root() {
        rt.ok(&["pull", &image]);
        let local = scan_json(&b, &rt, &[&image], 0);
        assert_eq!(local["source"], "local");
        assert_eq!(local["manifest"], digest.as_str());
        assert_eq!(local["findings"], remote["findings"]);
        assert_eq!(local["packages"], remote["packages"]);
    }
}
