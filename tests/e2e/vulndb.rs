//! `berth vulndb`: OSV advisories imported into the database, from a local HTTP server (as
//! OSV's bucket serves its `all.zip` archives), from archives, directories and record files;
//! incrementally, with malformed records counted and skipped. Fixtures are the real records
//! in scan/tests/data/osv/, zipped here with Python's zipfile.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{Berth, tool};

/// The real records (and the malformed one) the archives are made of.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scan/tests/data/osv")
}

/// The ids of the valid fixtures.
const IDS: [&str; 8] = [
    "ALPINE-CVE-2023-0286",
    "DSA-5218-1",
    "DSA-5343-1",
    "GHSA-35jh-r3h4-6jhm",
    "GHSA-j8r2-6x86-q33q",
    "GHSA-jfh8-c2jp-5v3q",
    "GO-2023-1571",
    "RUSTSEC-2021-0124",
];

/// A fixture record as JSON.
fn record(id: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(format!("{id}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes `entries` (name, bytes) as the zip `path` with Python's zipfile (deflated, as OSV's
/// archives are), its modification time set to `mtime` (seconds since the epoch: the HTTP
/// server's `Last-Modified`).
pub(crate) fn write_zip(python: &Path, path: &Path, entries: &[(String, Vec<u8>)], mtime: u64) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in entries {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let script = "import os, sys, zipfile\n\
        out, src, mtime = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:\n\
        \x20   for name in sorted(os.listdir(src)):\n\
        \x20       z.write(os.path.join(src, name), name)\n\
        os.utime(out, (mtime, mtime))\n";
    let status = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .arg(dir.path())
        .arg(mtime.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "python zipfile failed");
}

/// The eight valid fixtures and the malformed one, by file name.
fn archive_entries() -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = IDS
        .iter()
        .map(|id| {
            let name = format!("{id}.json");
            (name.clone(), std::fs::read(fixtures().join(name)).unwrap())
        })
        .collect();
    entries.push((
        "BROKEN-1.json".into(),
        std::fs::read(fixtures().join("malformed-event.json")).unwrap(),
    ));
    entries
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1; killed on drop.
pub(crate) struct Files {
    child: Child,
    port: u16,
}

impl Files {
    pub(crate) fn serve(python: &Path, dir: &Path) -> Self {
        let mut child = Command::new(python)
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 43210 (http://127.0.0.1:43210/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `berth vulndb ARGS` on `b`'s database: (success, stdout, stderr).
fn vulndb(b: &Berth, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("vulndb")
        .arg("--data-dir")
        .arg(&b.data_dir)
        .args(args)
        .env_remove("RUST_LOG");
    for (k, v) in b.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `berth vulndb ARGS`, which must succeed, and parses its JSON output.
fn vulndb_json(b: &Berth, args: &[&str]) -> (Value, String) {
    let (ok, out, err) = vulndb(b, args);
    assert!(ok, "berth vulndb {args:?} failed:\n{out}\n{err}");
    (
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
        err,
    )
}

/// The counts of one import report: (records, new, updated, unchanged, malformed).
fn counts(report: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| report[k].as_u64().unwrap();
    (
        n("records"),
        n("new"),
        n("updated"),
        n("unchanged"),
        n("malformed"),
    )
}

#[test]
fn update_imports_an_osv_archive_over_http_incrementally() {
    let Some(python) = tool("python3") else {
        return;
    };
    let b = Berth::start();
    let served = tempfile::tempdir().unwrap();
    let zip = served.path().join("Mixed").join("all.zip");
    std::fs::create_dir(zip.parent().unwrap()).unwrap();
    let t0 = 1_700_000_000;
    write_zip(&python, &zip, &archive_entries(), t0);
    let files = Files::serve(&python, served.path());
    let url = files.url("Mixed/all.zip");

    // First import: every valid record is new; the malformed one is counted, named in the
    // log, and does not stop the rest.
    let (reports, err) = vulndb_json(&b, &["update", "--from", &url, "--json"]);
    assert_eq!(counts(&reports[0]), (9, 8, 0, 0, 1), "{reports}");
    assert_eq!(reports[0]["not_modified"], false);
    assert!(err.contains("BROKEN-1.json"), "{err}");

    // The same archive again: the server says it has not changed (Last-Modified), nothing
    // is read.
    let (reports, _) = vulndb_json(&b, &["update", "--from", &url, "--json"]);
    assert_eq!(reports[0]["not_modified"], true, "{reports}");

    let (status, _) = vulndb_json(&b, &["status", "--json"]);
    assert_eq!(status["counts"]["advisories"], 8, "{status}");
    assert_eq!(status["counts"]["withdrawn"], 0, "{status}");
    // ALPINE names two releases, GO-2023-1571 one package twice: one row each distinct one.
    assert!(
        status["counts"]["packages"].as_u64().unwrap() >= 8,
        "{status}"
    );
    let source = &status["sources"][0];
    assert_eq!(source["source"], url.as_str());
    assert_eq!(
        (source["records"].as_u64(), source["new"].as_u64()),
        (Some(9), Some(8))
    );
    assert_eq!(source["malformed"], 1);
    let ecosystems = source["ecosystems"].as_str().unwrap();
    for e in [
        "Alpine",
        "Debian",
        "Go",
        "Maven",
        "PyPI",
        "crates.io",
        "npm",
    ] {
        assert!(ecosystems.split(',').any(|x| x == e), "{e} in {ecosystems}");
    }

    // A new archive: one record updated (newer `modified`, new summary), one withdrawn, one
    // with an older `modified` (not newer than the stored one: left alone), the rest as they
    // were.
    let mut entries = archive_entries();
    for (name, bytes) in &mut entries {
        let id = name.trim_end_matches(".json");
        let change: Option<fn(&mut Value)> = match id {
            "DSA-5218-1" => Some(|r| {
                r["modified"] = "2025-01-02T03:04:05.678Z".into();
                r["summary"] = "zlib - security update (revised)".into();
            }),
            "GHSA-35jh-r3h4-6jhm" => Some(|r| {
                r["modified"] = "2025-01-02T00:00:00Z".into();
                r["withdrawn"] = "2025-01-02T00:00:00Z".into();
            }),
            "RUSTSEC-2021-0124" => Some(|r| {
                r["modified"] = "2020-01-01T00:00:00Z".into();
                r["summary"] = "an older copy".into();
            }),
            _ => None,
        };
        if let Some(change) = change {
            let mut r = record(id);
            change(&mut r);
            *bytes = serde_json::to_vec(&r).unwrap();
        }
    }
    write_zip(&python, &zip, &entries, t0 + 3600);
    let (reports, _) = vulndb_json(&b, &["update", "--from", &url, "--json"]);
    assert_eq!(counts(&reports[0]), (9, 0, 2, 6, 1), "{reports}");

    let (dsa, _) = vulndb_json(&b, &["show", "DSA-5218-1"]);
    assert_eq!(dsa["summary"], "zlib - security update (revised)");
    assert_eq!(dsa["modified"], "2025-01-02T03:04:05.678Z");
    let (ghsa, _) = vulndb_json(&b, &["show", "GHSA-35jh-r3h4-6jhm"]);
    assert_eq!(ghsa["withdrawn"], "2025-01-02T00:00:00Z");
    let (rustsec, _) = vulndb_json(&b, &["show", "RUSTSEC-2021-0124"]);
    assert_eq!(rustsec["summary"], record("RUSTSEC-2021-0124")["summary"]);
    let (status, _) = vulndb_json(&b, &["status", "--json"]);
    assert_eq!(status["counts"]["advisories"], 8, "{status}");
    assert_eq!(status["counts"]["withdrawn"], 1, "{status}");

    // The table for people.
    let (ok, out, err) = vulndb(&b, &["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("8 advisories (1 withdrawn)"), "{out}");
    assert!(out.contains(&url), "{out}");

    // An URL that is not there fails the command, naming it.
    let missing = files.url("Nothing/all.zip");
    let (ok, _, err) = vulndb(&b, &["update", "--from", &missing]);
    assert!(!ok);
    assert!(err.contains(&missing) && err.contains("404"), "{err}");
}

#[test]
fn update_imports_archives_directories_and_record_files() {
    let Some(python) = tool("python3") else {
        return;
    };
    let b = Berth::start();
    let tmp = tempfile::tempdir().unwrap();

    // Without a source configured or given, the command says what to do.
    let (ok, _, err) = vulndb(&b, &["update"]);
    assert!(!ok);
    assert!(err.contains("--from"), "{err}");

    // One record file.
    let one = fixtures().join("DSA-5218-1.json");
    let (reports, _) = vulndb_json(&b, &["update", "--from", one.to_str().unwrap(), "--json"]);
    assert_eq!(counts(&reports[0]), (1, 1, 0, 0, 0), "{reports}");

    // A directory of records, nested, the malformed one among them: the record already
    // imported from the file is unchanged.
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir_all(mirror.join("Debian")).unwrap();
    for id in ["DSA-5218-1", "DSA-5343-1"] {
        std::fs::copy(
            fixtures().join(format!("{id}.json")),
            mirror.join("Debian").join(format!("{id}.json")),
        )
        .unwrap();
    }
    std::fs::copy(
        fixtures().join("GO-2023-1571.json"),
        mirror.join("GO-2023-1571.json"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("malformed-event.json"),
        mirror.join("BROKEN-1.json"),
    )
    .unwrap();
    let (reports, err) = vulndb_json(
        &b,
        &["update", "--from", mirror.to_str().unwrap(), "--json"],
    );
    assert_eq!(counts(&reports[0]), (4, 2, 0, 1, 1), "{reports}");
    assert!(err.contains("BROKEN-1.json"), "{err}");

    // An archive given as a file, from the configured sources (the environment's list).
    let zip = tmp.path().join("all.zip");
    write_zip(&python, &zip, &archive_entries(), 1_700_000_000);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["vulndb", "update", "--json", "--data-dir"])
        .arg(&b.data_dir)
        .env_remove("RUST_LOG")
        .env("BERTH_SCAN_VULNDB_SOURCES", zip.to_str().unwrap());
    for (k, v) in b.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(&reports[0]), (9, 5, 0, 3, 1), "{reports}");

    // The same archive again: every record unchanged.
    let (reports, _) = vulndb_json(&b, &["update", "--from", zip.to_str().unwrap(), "--json"]);
    assert_eq!(counts(&reports[0]), (9, 0, 0, 8, 1), "{reports}");

    let (status, _) = vulndb_json(&b, &["status", "--json"]);
    assert_eq!(status["counts"]["advisories"], 8, "{status}");
    assert_eq!(status["sources"].as_array().unwrap().len(), 3, "{status}");

    // Something that is neither an archive nor a record: the file is one malformed entry.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{not json").unwrap();
    let (reports, _) = vulndb_json(&b, &["update", "--from", junk.to_str().unwrap(), "--json"]);
    assert_eq!(counts(&reports[0]), (1, 0, 0, 0, 1), "{reports}");
    // A damaged archive is an error.
    let mut bytes = std::fs::read(&zip).unwrap();
    bytes.truncate(bytes.len() - 30);
    std::fs::write(&zip, bytes).unwrap();
    let (ok, _, err) = vulndb(&b, &["update", "--from", zip.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a readable zip archive"), "{err}");
}

#[test]
fn serve_refreshes_the_advisory_database_from_its_sources() {
    let Some(python) = tool("python3") else {
        return;
    };
    let served = tempfile::tempdir().unwrap();
    let zip = served.path().join("Mixed").join("all.zip");
    std::fs::create_dir(zip.parent().unwrap()).unwrap();
    let t0 = 1_700_000_000;
    write_zip(&python, &zip, &archive_entries(), t0);
    let files = Files::serve(&python, served.path());
    let (url, missing) = (files.url("Mixed/all.zip"), files.url("Nothing/all.zip"));
    // A source that fails is logged and retried; it does not hold up the other.
    let sources = format!("{missing},{url}");
    let b = Berth::start_with(&[
        ("BERTH_SCAN_VULNDB_SOURCES", &sources),
        ("BERTH_SCAN_VULNDB_REFRESH_SECS", "1"),
    ]);
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}: {}", b.logs());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    // Imported by the server, with no `berth vulndb update`.
    wait_for("the first import", &|| {
        vulndb_json(&b, &["status", "--json"]).0["counts"]["advisories"] == 8
    });
    assert!(b.logs().contains("advisory refresh failed"), "{}", b.logs());
    assert!(b.logs().contains(&missing), "{}", b.logs());

    // The mirror changes: the next refresh brings the revision in.
    let mut entries = archive_entries();
    for (name, bytes) in &mut entries {
        if name == "DSA-5218-1.json" {
            let mut r = record("DSA-5218-1");
            r["modified"] = "2025-01-02T03:04:05.678Z".into();
            r["summary"] = "zlib - security update (revised)".into();
            *bytes = serde_json::to_vec(&r).unwrap();
        }
    }
    write_zip(&python, &zip, &entries, t0 + 3600);
    wait_for("the revision", &|| {
        vulndb_json(&b, &["show", "DSA-5218-1"]).0["summary"] == "zlib - security update (revised)"
    });
    // Unchanged since: later refreshes are conditional requests answered "not modified".
    wait_for("a not-modified refresh", &|| {
        b.logs().contains("not modified since the last import")
    });
}
