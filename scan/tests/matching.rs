//! `berth_scan::matching` against real OSV records (scan/tests/data/osv and osv-match) for
//! real package versions: which packages they affect, in which release, with which fix.

use std::collections::BTreeSet;
use std::path::Path;

use berth_scan::inventory::{OsRelease, Package, PackageType, SourcePackage};
use berth_scan::matching::{
    AllowEntry, Allowlist, Finding, Target, Threshold, match_packages, target, targets,
};
use berth_scan::osv::{Level, Record};

fn record(file: &str) -> Record {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let bytes = std::fs::read(dir.join("osv-match").join(file))
        .or_else(|_| std::fs::read(dir.join("osv").join(file)))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    Record::from_json(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn os(id: &str, version: Option<&str>) -> OsRelease {
    OsRelease {
        id: id.into(),
        version_id: version.map(str::to_owned),
        ..OsRelease::default()
    }
}

fn pkg(kind: PackageType, name: &str, version: &str, path: &str) -> Package {
    Package {
        kind,
        name: name.into(),
        version: version.into(),
        source: None,
        arch: None,
        path: path.into(),
    }
}

fn deb(name: &str, version: &str, source: Option<(&str, Option<&str>)>) -> Package {
    Package {
        source: source.map(|(n, v)| SourcePackage {
            name: n.into(),
            version: v.map(str::to_owned),
        }),
        ..pkg(PackageType::Dpkg, name, version, "/var/lib/dpkg/status")
    }
}

fn crate_(name: &str, version: &str) -> Package {
    pkg(PackageType::Cargo, name, version, "/app/Cargo.lock")
}

/// (package, installed, advisory, fixed) of each finding, in order.
fn summary(findings: &[Finding]) -> Vec<(String, String, String, Option<String>)> {
    findings
        .iter()
        .map(|f| {
            (
                f.package.clone(),
                f.installed.clone(),
                f.advisory.clone(),
                f.fixed.clone(),
            )
        })
        .collect()
}

fn t(eco: &str, release: &str, name: &str, version: &str) -> Option<Target> {
    Some(Target {
        ecosystem: eco.into(),
        release: release.into(),
        name: name.into(),
        version: version.into(),
    })
}

#[test]
fn packages_are_named_as_osv_names_them() {
    let debian = os("debian", Some("12"));
    // Debian: the source package, and its version when the binary's differs (a binNMU).
    let libexpat = deb("libexpat1", "2.5.0-1+deb12u1", Some(("expat", None)));
    assert_eq!(
        target(&libexpat, Some(&debian)),
        t("Debian", "12", "expat", "2.5.0-1+deb12u1")
    );
    let binnmu = deb("bash", "5.2.15-2+b8", Some(("bash", Some("5.2.15-2"))));
    assert_eq!(
        target(&binnmu, Some(&debian)),
        t("Debian", "12", "bash", "5.2.15-2")
    );
    assert_eq!(
        target(&libexpat, Some(&os("debian", Some("12.4")))),
        t("Debian", "12", "expat", "2.5.0-1+deb12u1"),
        "the major release only"
    );
    assert_eq!(
        target(&libexpat, Some(&os("debian", None))),
        None,
        "testing/sid have no release OSV knows"
    );
    assert_eq!(target(&libexpat, None), None, "no os-release: no ecosystem");
    // Ubuntu marks its LTS releases.
    assert_eq!(
        target(&libexpat, Some(&os("ubuntu", Some("22.04")))),
        t("Ubuntu", "22.04:LTS", "expat", "2.5.0-1+deb12u1")
    );
    assert_eq!(
        target(&libexpat, Some(&os("ubuntu", Some("23.10")))),
        t("Ubuntu", "23.10", "expat", "2.5.0-1+deb12u1")
    );
    assert_eq!(
        target(&libexpat, Some(&os("ubuntu", Some("23.04")))),
        t("Ubuntu", "23.04", "expat", "2.5.0-1+deb12u1"),
        "odd years' April releases are not LTS"
    );
    // Alpine: `v` and major.minor, the origin package.
    let libssl = Package {
        source: Some(SourcePackage {
            name: "openssl".into(),
            version: None,
        }),
        ..pkg(
            PackageType::Apk,
            "libssl3",
            "3.1.4-r5",
            "/lib/apk/db/installed",
        )
    };
    assert_eq!(
        target(&libssl, Some(&os("alpine", Some("3.19.1")))),
        t("Alpine", "v3.19", "openssl", "3.1.4-r5")
    );
    assert_eq!(target(&libssl, Some(&os("alpine", Some("3")))), None);
    // rpm: binary packages, by distribution.
    let rpm = Package {
        source: Some(SourcePackage {
            name: "openssl".into(),
            version: None,
        }),
        ..pkg(
            PackageType::Rpm,
            "openssl-libs",
            "1:3.0.7-24.el9",
            "/var/lib/rpm/rpmdb.sqlite",
        )
    };
    assert_eq!(
        target(&rpm, Some(&os("rocky", Some("9.3")))),
        t("Rocky Linux", "9", "openssl-libs", "1:3.0.7-24.el9")
    );
    assert_eq!(
        target(&rpm, Some(&os("almalinux", Some("9.3")))),
        t("AlmaLinux", "9", "openssl-libs", "1:3.0.7-24.el9")
    );
    // RHEL and UBI: every stream of the major release (see `Ecosystem::release_applies`).
    assert_eq!(
        target(&rpm, Some(&os("rhel", Some("9.3")))),
        t(
            "Red Hat",
            "enterprise_linux:9",
            "openssl-libs",
            "1:3.0.7-24.el9"
        )
    );
    assert_eq!(
        target(&rpm, Some(&os("rhel", Some("10.0")))),
        t(
            "Red Hat",
            "enterprise_linux:10",
            "openssl-libs",
            "1:3.0.7-24.el9"
        )
    );
    assert_eq!(target(&rpm, Some(&os("rhel", None))), None);
    assert_eq!(
        target(&rpm, Some(&os("centos", Some("9")))),
        None,
        "CentOS Stream is not RHEL"
    );
    assert_eq!(
        target(&rpm, Some(&os("debian", Some("12")))),
        None,
        "rpm on Debian"
    );
    // Languages: no release; PyPI names in PEP 503 form.
    let py = pkg(PackageType::Pypi, "Foo_Bar.baz", "1.0", "/x/METADATA");
    assert_eq!(target(&py, None), t("PyPI", "", "foo-bar-baz", "1.0"));
    assert_eq!(
        target(&crate_("rsa", "0.9.10"), Some(&debian)),
        t("crates.io", "", "rsa", "0.9.10")
    );
    let go = pkg(
        PackageType::Golang,
        "golang.org/x/net",
        "v0.6.0",
        "/bin/app",
    );
    assert_eq!(target(&go, None), t("Go", "", "golang.org/x/net", "v0.6.0"));
    let mvn = pkg(PackageType::Maven, "g:a", "2.14.1", "/app.jar");
    assert_eq!(target(&mvn, None), t("Maven", "", "g:a", "2.14.1"));
    let npm = pkg(PackageType::Npm, "lodash", "4.17.20", "/package-lock.json");
    assert_eq!(target(&npm, None), t("npm", "", "lodash", "4.17.20"));
}

#[test]
fn a_debian_record_matches_the_source_package_in_its_own_release_only() {
    let r = [record("DEBIAN-CVE-2024-28757.json")];
    let bookworm = os("debian", Some("12"));
    let installed = [
        deb("libexpat1", "2.5.0-1+deb12u1", Some(("expat", None))),
        deb("libexpat1-dev", "2.5.0-1+deb12u1", Some(("expat", None))),
        deb("jq", "1.6-2.1+deb12u1", None),
    ];
    let found = match_packages(&installed, Some(&bookworm), &r);
    let fix = Some("2.5.0-1+deb12u4".to_owned());
    assert_eq!(
        summary(&found.findings),
        [
            (
                "libexpat1".into(),
                "2.5.0-1+deb12u1".into(),
                "DEBIAN-CVE-2024-28757".into(),
                fix.clone()
            ),
            (
                "libexpat1-dev".into(),
                "2.5.0-1+deb12u1".into(),
                "DEBIAN-CVE-2024-28757".into(),
                fix
            ),
        ],
        "one finding per binary package"
    );
    let f = &found.findings[0];
    assert_eq!(f.ecosystem, "Debian:12");
    assert_eq!(f.matched_name, "expat");
    assert_eq!(
        f.aliases,
        ["CVE-2024-28757"],
        "upstream ids are listed with aliases"
    );
    assert_eq!(
        (f.severity, f.score, f.fixable),
        (Level::Unknown, None, true)
    );
    // The same record in another release: that release's fix.
    let bullseye = os("debian", Some("11"));
    let old = [deb("libexpat1", "2.2.10-2+deb11u5", Some(("expat", None)))];
    assert_eq!(
        match_packages(&old, Some(&bullseye), &r).findings[0].fixed,
        Some("2.2.10-2+deb11u6".into())
    );
    // Fixed, and the fix's later revisions: nothing.
    for v in ["2.5.0-1+deb12u4", "2.5.0-1+deb12u5", "2.6.0-1"] {
        let fixed = [deb("libexpat1", v, Some(("expat", None)))];
        assert!(
            match_packages(&fixed, Some(&bookworm), &r)
                .findings
                .is_empty(),
            "{v}"
        );
    }
    // Ubuntu's expat is not Debian's.
    assert!(
        match_packages(&installed, Some(&os("ubuntu", Some("22.04"))), &r)
            .findings
            .is_empty()
    );
}

#[test]
fn a_red_hat_record_matches_binary_rpms_in_every_stream_of_the_major_release() {
    // RHSA-2024:4312 (CVE-2024-6387, regreSSHion) as Red Hat publishes it in OSV: one entry
    // per binary rpm and stream, the fix as `0:8.7p1-38.el9_4.1`.
    let r = [record("RHSA-2024_4312.json")];
    let ubi = os("rhel", Some("9.4"));
    let rpm = |name: &str, version: &str| {
        pkg(PackageType::Rpm, name, version, "/var/lib/rpm/rpmdb.sqlite")
    };
    let installed = [
        rpm("openssh", "8.7p1-38.el9"),
        rpm("openssh-clients", "8.7p1-38.el9"),
        // From AppStream: its entry is in the other stream of the same release.
        rpm("openssh-askpass", "8.7p1-38.el9"),
        // Not in the advisory (its fix is a separate rpm name).
        rpm("bash", "5.1.8-9.el9"),
    ];
    let found = match_packages(&installed, Some(&ubi), &r);
    let fix = Some("0:8.7p1-38.el9_4.1".to_owned());
    let row = |name: &str| {
        (
            name.to_owned(),
            "8.7p1-38.el9".to_owned(),
            "RHSA-2024:4312".to_owned(),
            fix.clone(),
        )
    };
    assert_eq!(
        summary(&found.findings),
        [
            row("openssh"),
            row("openssh-askpass"),
            row("openssh-clients")
        ]
    );
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let f = &found.findings[0];
    assert_eq!(f.ecosystem, "Red Hat:enterprise_linux:9");
    assert_eq!(f.matched_name, "openssh");
    assert_eq!(f.aliases, ["CVE-2024-6387"], "the CVE is in `upstream`");
    assert_eq!(
        f.summary.as_deref(),
        Some("Important: openssh security update")
    );
    assert_eq!((f.severity, f.score), (Level::High, Some(8.1)));
    assert_eq!(
        f.fixed_versions,
        [fix.clone().unwrap_or_default()],
        "one fix"
    );

    // Epochs and releases: an explicit epoch 0 is no epoch; the fix's own version and later
    // rebuilds are fixed; a z-stream release (`el9_4.1`) is after the GA one (`el9`).
    for (v, affected) in [
        ("0:8.7p1-38.el9", true),
        ("8.7p1-37.el9", true),
        ("8.7p1-38.el9_4", true),
        ("8.7p1-38.el9_4.1", false),
        ("0:8.7p1-38.el9_4.1", false),
        ("8.7p1-38.el9_4.2", false),
        ("8.7p1-43.el9", false),
        ("9.8p1-1.el9", false),
        // An epoch outweighs any version.
        ("1:8.0p1-1.el9", false),
    ] {
        let p = [rpm("openssh", v)];
        let found = match_packages(&p, Some(&ubi), &r);
        assert_eq!(found.findings.len(), usize::from(affected), "{v}");
    }

    // RHEL 8's packages are not in RHEL 9's streams, nor are Rocky's in Red Hat's records.
    let old = [rpm("openssh", "8.0p1-19.el8_8")];
    assert!(
        match_packages(&old, Some(&os("rhel", Some("8.10"))), &r)
            .findings
            .is_empty()
    );
    assert!(
        match_packages(&installed, Some(&os("rocky", Some("9.4"))), &r)
            .findings
            .is_empty()
    );
}

#[test]
fn red_hat_extended_support_and_layered_streams_do_not_apply() {
    // The same fix published only for streams an ordinary RHEL 9 image does not follow.
    let ubi = os("rhel", Some("9.4"));
    let p = [pkg(
        PackageType::Rpm,
        "openssh",
        "8.7p1-38.el9",
        "/var/lib/rpm/rpmdb.sqlite",
    )];
    for stream in [
        "Red Hat:rhel_eus:9.4::baseos",
        "Red Hat:rhel_e4s:9.0::baseos",
        "Red Hat:openshift:4.16::el9",
        "Red Hat:enterprise_linux:8::baseos",
        "Red Hat:enterprise_linux:90::baseos",
    ] {
        let r = [synthetic(
            stream,
            "openssh",
            "ECOSYSTEM",
            r#"[{"introduced":"0"},{"fixed":"0:8.7p1-38.el9_4.1"}]"#,
        )];
        assert!(
            match_packages(&p, Some(&ubi), &r).findings.is_empty(),
            "{stream}"
        );
    }
    let r = [synthetic(
        "Red Hat:enterprise_linux:9::crb",
        "openssh",
        "ECOSYSTEM",
        r#"[{"introduced":"0"},{"fixed":"0:8.7p1-38.el9_4.1"}]"#,
    )];
    assert_eq!(match_packages(&p, Some(&ubi), &r).findings.len(), 1);
}

#[test]
fn epochs_decide_before_versions() {
    // DSA-5218-1: zlib fixed in 1:1.2.11.dfsg-2+deb11u2 (epoch 1).
    let r = [record("DSA-5218-1.json")];
    let bullseye = os("debian", Some("11"));
    let cases = [
        ("1:1.2.11.dfsg-2+deb11u1", Some("1:1.2.11.dfsg-2+deb11u2")),
        ("1:1.2.11.dfsg-2+deb11u2", None),
        // Without an epoch (0), even a greater upstream version is before the fix.
        ("1.2.13.dfsg-1", Some("1:1.2.11.dfsg-2+deb11u2")),
        ("2:1.0-1", None),
    ];
    for (installed, fixed) in cases {
        let p = [deb("zlib1g", installed, Some(("zlib", None)))];
        let found = match_packages(&p, Some(&bullseye), &r);
        assert_eq!(
            found.findings.first().and_then(|f| f.fixed.clone()),
            fixed.map(str::to_owned),
            "{installed}"
        );
        assert_eq!(found.findings.len(), usize::from(fixed.is_some()));
    }
}

#[test]
fn crates_match_semver_ranges_with_and_without_fixes() {
    let r = [
        record("RUSTSEC-2023-0071.json"),
        record("RUSTSEC-2024-0437.json"),
        record("RUSTSEC-2021-0124.json"),
    ];
    let installed = [
        crate_("rsa", "0.9.10"),
        crate_("protobuf", "3.7.2"),
        crate_("tokio", "1.54.1"),
        crate_("tokio", "1.13.0"),
        crate_("tokio", "1.8.3"),
        crate_("tokio", "0.1.13"),
    ];
    let found = match_packages(&installed, None, &r);
    assert_eq!(
        summary(&found.findings),
        [
            (
                "rsa".into(),
                "0.9.10".into(),
                "RUSTSEC-2023-0071".into(),
                None
            ),
            (
                "tokio".into(),
                "1.13.0".into(),
                "RUSTSEC-2021-0124".into(),
                Some("1.13.1".into())
            ),
            (
                "tokio".into(),
                "1.8.3".into(),
                "RUSTSEC-2021-0124".into(),
                Some("1.8.4".into())
            ),
        ],
        "medium first, then unknown severity; protobuf 3.7.2 is the fix"
    );
    let rsa = &found.findings[0];
    assert_eq!(
        (rsa.severity, rsa.score, rsa.fixable),
        (Level::Medium, Some(5.9), false)
    );
    assert_eq!(rsa.aliases, ["CVE-2023-49092", "GHSA-c38w-74pg-36hr"]);
    let old = [crate_("protobuf", "3.7.1")];
    assert_eq!(
        match_packages(&old, None, &r).findings[0].fixed,
        Some("3.7.2".into())
    );
}

#[test]
fn maven_ranges_give_the_fix_of_the_range_holding_the_version() {
    let r = [record("GHSA-jfh8-c2jp-5v3q.json")];
    let name = "org.apache.logging.log4j:log4j-core";
    let cases = [
        ("2.14.1", Some("2.15.0")),
        ("2.12.1", Some("2.12.2")),
        ("2.3", Some("2.3.1")),
        ("2.15.0", None),
        ("2.12.2", None),
        ("1.2.17", None),
    ];
    for (installed, fixed) in cases {
        let p = [pkg(
            PackageType::Maven,
            name,
            installed,
            "/app/lib/log4j.jar",
        )];
        let found = match_packages(&p, None, &r);
        assert_eq!(
            found.findings.first().and_then(|f| f.fixed.clone()),
            fixed.map(str::to_owned),
            "{installed}"
        );
    }
    let p = [pkg(
        PackageType::Maven,
        name,
        "2.14.1",
        "/app/lib/log4j.jar",
    )];
    let f = &match_packages(&p, None, &r).findings[0];
    assert_eq!((f.severity, f.score), (Level::Critical, Some(10.0)));
}

fn synthetic(ecosystem: &str, name: &str, kind: &str, events: &str) -> Record {
    let json = format!(
        r#"{{"id":"TEST-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2000-0001"],
        "affected":[{{"package":{{"ecosystem":"{ecosystem}","name":"{name}"}},
        "ranges":[{{"type":"{kind}","events":{events}}}]}}]}}"#
    );
    Record::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn last_affected_and_limit_bound_ranges_in_the_ecosystem_order() {
    // PEP 440: 1.0rc1 is before 1.0; last_affected is inclusive.
    let r = [synthetic(
        "PyPI",
        "pkg",
        "ECOSYSTEM",
        r#"[{"introduced":"1.0rc1"},{"last_affected":"1.4"}]"#,
    )];
    for (v, hit) in [
        ("0.9", false),
        ("1.0rc1", true),
        ("1.4", true),
        ("1.4.post1", false),
    ] {
        let p = [pkg(
            PackageType::Pypi,
            "Pkg",
            v,
            "/usr/local/lib/p/METADATA",
        )];
        let found = match_packages(&p, None, &r);
        assert_eq!(found.findings.len(), usize::from(hit), "{v}");
        if hit {
            assert!(!found.findings[0].fixable, "no fix after last_affected");
        }
    }
    // A limit ends an open range.
    let r = [synthetic(
        "npm",
        "x",
        "SEMVER",
        r#"[{"introduced":"0"},{"limit":"2.0.0"}]"#,
    )];
    for (v, hit) in [("1.9.9", true), ("2.0.0", false), ("3.0.0", false)] {
        let p = [pkg(PackageType::Npm, "x", v, "/package-lock.json")];
        assert_eq!(
            match_packages(&p, None, &r).findings.len(),
            usize::from(hit),
            "{v}"
        );
    }
}

#[test]
fn withdrawn_and_unparsable_records_never_match() {
    let mut withdrawn = record("RUSTSEC-2023-0071.json");
    withdrawn.withdrawn = Some("2025-01-01T00:00:00Z".into());
    let p = [crate_("rsa", "0.9.10")];
    assert!(match_packages(&p, None, &[withdrawn]).findings.is_empty());
    // A fixed version that is not SemVer: skipped, said, not a finding.
    let bad = synthetic(
        "crates.io",
        "rsa",
        "SEMVER",
        r#"[{"introduced":"0"},{"fixed":"one"}]"#,
    );
    let found = match_packages(&p, None, &[bad]);
    assert!(found.findings.is_empty());
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].advisory, "TEST-1");
}

#[test]
fn debian_python_modules_are_reported_once_as_the_os_package() {
    let requests = record("GHSA-j8r2-6x86-q33q.json");
    let debian = os("debian", Some("12"));
    let dist_info = |dir: &str| {
        pkg(
            PackageType::Pypi,
            "requests",
            "2.28.1",
            &format!("{dir}/requests-2.28.1.dist-info/METADATA"),
        )
    };
    let dpkg = deb(
        "python3-requests",
        "2.28.1+dfsg-1",
        Some(("requests", None)),
    );
    let os_installed = [dpkg.clone(), dist_info("/usr/lib/python3/dist-packages")];
    let found = match_packages(
        &os_installed,
        Some(&debian),
        std::slice::from_ref(&requests),
    );
    assert!(found.findings.is_empty(), "{:?}", found.findings);
    assert_eq!(
        targets(&os_installed, Some(&debian)),
        BTreeSet::from([t("Debian", "12", "requests", "2.28.1+dfsg-1").unwrap()]),
        "the dist-info is not even looked up"
    );
    // pip's own directory, or no dpkg database: a PyPI package like any other.
    let pip = [dpkg, dist_info("/usr/local/lib/python3.11/dist-packages")];
    let found = match_packages(&pip, Some(&debian), std::slice::from_ref(&requests));
    assert_eq!(found.findings.len(), 1);
    assert_eq!(found.findings[0].fixed, Some("2.31.0".into()));
    let alone = [dist_info("/usr/lib/python3/dist-packages")];
    assert_eq!(match_packages(&alone, None, &[requests]).findings.len(), 1);
}

#[test]
fn a_package_found_twice_is_one_finding_with_both_paths() {
    let r = [record("RUSTSEC-2023-0071.json")];
    let p = [
        crate_("rsa", "0.9.10"),
        pkg(PackageType::Cargo, "rsa", "0.9.10", "/other/Cargo.lock"),
    ];
    let found = match_packages(&p, None, &r);
    assert_eq!(found.findings.len(), 1);
    assert_eq!(
        found.findings[0].paths,
        ["/app/Cargo.lock", "/other/Cargo.lock"]
    );
}

#[test]
fn thresholds_parse_and_order() {
    let parse = |s: &str| s.parse::<Threshold>();
    assert_eq!(parse("HIGH"), Ok(Threshold(Level::High)));
    assert_eq!(parse("medium"), Ok(Threshold(Level::Medium)));
    assert!(parse("moderate").is_err());
    assert!(parse("").is_err());
    let high = Threshold(Level::High);
    assert!(high.met_by(Level::Critical) && high.met_by(Level::High));
    assert!(!high.met_by(Level::Medium) && !high.met_by(Level::Unknown));
    let any = Threshold(Level::Unknown);
    assert!(any.met_by(Level::Unknown) && any.met_by(Level::Low));
    assert!(Threshold(Level::Low) < Threshold(Level::Critical));
}

#[test]
fn allowlist_entries_accept_by_id_or_alias_until_they_expire() {
    let p = [crate_("rsa", "0.9.10")];
    let finding = match_packages(&p, None, &[record("RUSTSEC-2023-0071.json")]).findings[0].clone();
    let now = 1_800_000_000;
    let entry = |id: &str, expires: Option<i64>| AllowEntry {
        id: id.into(),
        expires,
        reason: Some("no RSA decryption here".into()),
    };
    let list = Allowlist {
        entries: vec![entry("cve-2023-49092", Some(now + 1))],
    };
    assert!(list.accepts(&finding, now).is_some(), "alias, any case");
    assert!(list.accepts(&finding, now + 1).is_none(), "expired");
    assert!(list.expired_for(&finding, now + 1).is_some());
    let list = Allowlist {
        entries: vec![
            entry("RUSTSEC-2023-0071", Some(now - 10)),
            entry("RUSTSEC-2023-0071", None),
        ],
    };
    assert_eq!(
        list.accepts(&finding, now).map(|e| e.expires),
        Some(None),
        "a live entry wins over an expired one"
    );
    let other = Allowlist {
        entries: vec![entry("CVE-2023-0001", None)],
    };
    assert!(other.accepts(&finding, now).is_none());
}
