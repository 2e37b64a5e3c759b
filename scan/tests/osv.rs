//! Real advisories in OSV form (`tests/data/osv/`, one per ecosystem, written by hand from the
//! published records and cut to what matching reads) evaluated against installed versions.

use std::path::Path;

use berth_scan::osv::{self, Level, OsvError, Record};

fn load(name: &str) -> Record {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/osv")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Record::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (fixture, ecosystem, package, installed version, fixed versions if affected).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static [&'static str]>,
);

const CASES: &[Case] = &[
    // Debian: the epoch decides; bookworm's package is not in a bullseye advisory.
    (
        "DSA-5218-1.json",
        "Debian:11",
        "zlib",
        "1:1.2.11.dfsg-2+deb11u1",
        Some(&["1:1.2.11.dfsg-2+deb11u2"]),
    ),
    (
        "DSA-5218-1.json",
        "Debian:11",
        "zlib",
        "1:1.2.11.dfsg-2+deb11u2",
        None,
    ),
    // No epoch is epoch 0, before every epoch-1 version, however high the upstream version.
    (
        "DSA-5218-1.json",
        "Debian:11",
        "zlib",
        "1.2.13.dfsg-1",
        Some(&["1:1.2.11.dfsg-2+deb11u2"]),
    ),
    (
        "DSA-5218-1.json",
        "Debian:12",
        "zlib",
        "1:1.2.11.dfsg-2+deb11u1",
        None,
    ),
    (
        "DSA-5343-1.json",
        "Debian:11",
        "openssl",
        "1.1.1n-0+deb11u3",
        Some(&["1.1.1n-0+deb11u4"]),
    ),
    (
        "DSA-5343-1.json",
        "Debian:11",
        "openssl",
        "1.1.1n-0+deb11u5",
        None,
    ),
    (
        "DSA-5343-1.json",
        "Debian:11",
        "openssl",
        "1.1.1n-0+deb11u4~bpo1",
        Some(&["1.1.1n-0+deb11u4"]),
    ),
    // Alpine: each release has its own fix.
    (
        "ALPINE-CVE-2023-0286.json",
        "Alpine:v3.17",
        "openssl",
        "3.0.7-r2",
        Some(&["3.0.8-r0"]),
    ),
    (
        "ALPINE-CVE-2023-0286.json",
        "Alpine:v3.17",
        "openssl",
        "3.0.8-r0",
        None,
    ),
    (
        "ALPINE-CVE-2023-0286.json",
        "Alpine:v3.16",
        "openssl",
        "1.1.1s-r0",
        Some(&["1.1.1t-r0"]),
    ),
    (
        "ALPINE-CVE-2023-0286.json",
        "Alpine:v3.16",
        "openssl",
        "1.1.1t-r1",
        None,
    ),
    (
        "ALPINE-CVE-2023-0286.json",
        "Alpine:v3.18",
        "openssl",
        "3.0.7-r2",
        None,
    ),
    // crates.io: two ranges, the gap between them unaffected.
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "0.1.13",
        None,
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "0.1.14",
        Some(&["1.8.4"]),
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "1.8.3",
        Some(&["1.8.4"]),
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "1.8.4",
        None,
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "1.9.0-rc.1",
        None,
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "1.12.0",
        Some(&["1.13.1"]),
    ),
    (
        "RUSTSEC-2021-0124.json",
        "crates.io",
        "tokio",
        "1.13.1",
        None,
    ),
    // npm.
    (
        "GHSA-35jh-r3h4-6jhm.json",
        "npm",
        "lodash",
        "4.17.20",
        Some(&["4.17.21"]),
    ),
    ("GHSA-35jh-r3h4-6jhm.json", "npm", "lodash", "4.17.21", None),
    (
        "GHSA-35jh-r3h4-6jhm.json",
        "npm",
        "lodash-es",
        "4.17.20",
        None,
    ),
    // PyPI: PEP 440 order and name normalisation.
    (
        "GHSA-j8r2-6x86-q33q.json",
        "PyPI",
        "requests",
        "2.2.1",
        None,
    ),
    (
        "GHSA-j8r2-6x86-q33q.json",
        "PyPI",
        "Requests",
        "2.28.1",
        Some(&["2.31.0"]),
    ),
    (
        "GHSA-j8r2-6x86-q33q.json",
        "PyPI",
        "requests",
        "2.31.0rc1",
        Some(&["2.31.0"]),
    ),
    ("GHSA-j8r2-6x86-q33q.json", "PyPI", "requests", "2.31", None),
    // Maven: qualifiers (2.0-beta9) and three ranges.
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.14.1",
        Some(&["2.15.0"]),
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.0-beta9",
        Some(&["2.3.1"]),
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.0-beta8",
        None,
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.12.1",
        Some(&["2.12.2"]),
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.12.2",
        None,
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        "2.15.0",
        None,
    ),
    (
        "GHSA-jfh8-c2jp-5v3q.json",
        "Maven",
        "org.apache.logging.log4j:log4j-api",
        "2.14.1",
        None,
    ),
    // Go: module versions with v, pseudo-versions, toolchain versions for stdlib.
    (
        "GO-2023-1571.json",
        "Go",
        "golang.org/x/net",
        "v0.6.0",
        Some(&["0.7.0"]),
    ),
    (
        "GO-2023-1571.json",
        "Go",
        "golang.org/x/net",
        "v0.0.0-20220722155237-a158d28d115b",
        Some(&["0.7.0"]),
    ),
    (
        "GO-2023-1571.json",
        "Go",
        "golang.org/x/net",
        "v0.7.0",
        None,
    ),
    (
        "GO-2023-1571.json",
        "Go",
        "stdlib",
        "go1.19.5",
        Some(&["1.19.6"]),
    ),
    (
        "GO-2023-1571.json",
        "Go",
        "stdlib",
        "go1.20",
        Some(&["1.20.1"]),
    ),
    (
        "GO-2023-1571.json",
        "Go",
        "stdlib",
        "go1.20rc3",
        Some(&["1.20.1"]),
    ),
    ("GO-2023-1571.json", "Go", "stdlib", "go1.20.1", None),
];

#[test]
fn real_advisories_match_installed_versions() {
    for &(fixture, ecosystem, package, installed, want) in CASES {
        let record = load(fixture);
        let got = osv::affected(&record, ecosystem, package, installed)
            .unwrap_or_else(|e| panic!("{fixture} {installed}: {e}"))
            .map(|a| a.fixed);
        let want = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(got, want, "{fixture}: {ecosystem} {package} {installed}");
    }
}

#[test]
fn severities_of_real_advisories() {
    let cases = [
        ("DSA-5218-1.json", Level::Unknown, None),
        ("ALPINE-CVE-2023-0286.json", Level::Unknown, None),
        ("RUSTSEC-2021-0124.json", Level::Unknown, None),
        ("GO-2023-1571.json", Level::Unknown, None),
        ("GHSA-35jh-r3h4-6jhm.json", Level::High, Some(7.2)),
        ("GHSA-j8r2-6x86-q33q.json", Level::Medium, Some(6.1)),
        ("GHSA-jfh8-c2jp-5v3q.json", Level::Critical, Some(10.0)),
    ];
    for (fixture, level, score) in cases {
        let record = load(fixture);
        let severity = osv::severity(&record, record.affected.first());
        assert_eq!(
            (severity.level, severity.score),
            (level, score),
            "{fixture}"
        );
    }
}

#[test]
fn aliases_and_ids_are_read() {
    let record = load("GHSA-jfh8-c2jp-5v3q.json");
    assert_eq!(record.id, "GHSA-jfh8-c2jp-5v3q");
    assert_eq!(record.aliases, ["CVE-2021-44228"]);
    let dsa = load("DSA-5343-1.json");
    assert!(dsa.related.iter().any(|id| id == "CVE-2023-0286"));
    assert_eq!(
        load("ALPINE-CVE-2023-0286.json").upstream,
        ["CVE-2023-0286"]
    );
}

#[test]
fn a_malformed_record_is_an_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv/malformed-event.json");
    let bytes = std::fs::read(path).expect("fixture");
    assert!(matches!(Record::from_json(&bytes), Err(OsvError::Json(_))));
    let truncated = &std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv/DSA-5218-1.json"),
    )
    .expect("fixture")[..100];
    assert!(Record::from_json(truncated).is_err());
}
