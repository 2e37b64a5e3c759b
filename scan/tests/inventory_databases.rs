//! The OS package databases in images: this machine's own dpkg status, an Alpine installed
//! database and rpm SQLite databases in their real formats, each read through a layer.

mod inventory_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use berth_scan::inventory::{Package, PackageType, SourcePackage};
use inventory_support::rpm_header::header_blob;
use inventory_support::{Item, found, inventory, layer};

/// Whether a tool this test needs exists; under CI=true a missing one fails the test.
fn have(tool: &str) -> bool {
    let present = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing (CI=true)"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    present
}

#[test]
fn this_machines_dpkg_status_matches_dpkg_query() {
    if !have("dpkg-query") {
        return;
    }
    let status = std::fs::read("/var/lib/dpkg/status").expect("this machine's dpkg status");
    let inv = inventory(&[layer(&[Item::File("var/lib/dpkg/status", &status)])]);
    assert_eq!(inv.errors, []);

    let query = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ])
        .output()
        .expect("dpkg-query runs");
    assert!(query.status.success());
    let on_disk = [
        "installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    ];
    let expected: BTreeSet<(String, String, String, String)> = String::from_utf8(query.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            on_disk.contains(&f[0]).then(|| {
                (
                    f[1].to_owned(),
                    f[2].to_owned(),
                    f[3].to_owned(),
                    f[4].to_owned(),
                )
            })
        })
        .collect();
    let got: BTreeSet<(String, String, String, String)> = inv
        .packages
        .iter()
        .map(|p| {
            assert_eq!(
                (p.kind, p.path.as_str()),
                (PackageType::Dpkg, "/var/lib/dpkg/status")
            );
            let source = p.source.clone().unwrap_or(SourcePackage {
                name: p.name.clone(),
                version: None,
            });
            let source_version = source.version.unwrap_or_else(|| p.version.clone());
            (
                p.name.clone(),
                p.version.clone(),
                source.name,
                source_version,
            )
        })
        .collect();
    assert!(
        expected.len() > 50,
        "only {} packages on this machine",
        expected.len()
    );
    assert_eq!(got, expected);
    eprintln!("{} dpkg packages match dpkg-query", got.len());
}

/// An Alpine 3.20 installed database as apk writes it: checksums, file lists with ACLs,
/// stanzas separated by one or more blank lines, the last without a trailing one.
const APK_INSTALLED: &str = "C:Q1F3P2gsC+UfzNEJbHrZq2MqrWNuk=
P:musl
V:1.2.5-r0
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1712317218
c:e84c5a2c1a2c0bd03fbd6e1fbd7a4de60ba4f4b8
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Hm4nJ7jHcQFbW4H7B6ls0bAuhCE=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1J3pa4Hy0Hy2yTqFN8bA7EfQiG4A=
P:busybox
V:1.36.1-r29
A:x86_64
S:512521
I:946176
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1716208811
c:1a8c5d3ad2d80d3b6d4c3ea0b0d47c6b7dfdbc4e
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r29 cmd:sh=1.36.1-r29
r:busybox-initscripts
F:bin
R:busybox
a:0:0:755
Z:Q1WUwBY0eOGgzgVxTZxJBZPyQUicI=
R:sh
a:0:0:777
Z:Q1pcfTfDNEbNKQc2s8tia7da05M8Q=
F:etc
R:securetty
Z:Q1mB95Hq2NUTZ599RDiSsj9w5FrOU=
M:0:0:755


C:Q1qKcZ+j23xssAXmgQhkOO8dHnbWw=
P:libcrypto3
V:3.3.2-r0
A:x86_64
S:1709325
I:4546560
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1725361430
c:5c6ecbd0c4dca8bd0ab5b5f5d9f3e4cd1e3b5c30
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:lib
R:libcrypto.so.3
a:0:0:755
Z:Q1l6NWvJX4Ym6vXFw+cXPi0P5xwhc=
F:usr/lib/engines-3
R:afalg.so
Z:Q1ZX1i6m5QDSDy/Sm7c1MHxt2ANfw=";

#[test]
fn an_alpine_installed_database() {
    let inv = inventory(&[layer(&[
        Item::File("etc/os-release", b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"),
        Item::File("lib/apk/db/installed", APK_INSTALLED.as_bytes()),
    ])]);
    assert_eq!(inv.errors, []);
    let os = inv.os.expect("an OS");
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("alpine", Some("3.20.3"))
    );
    let rows: Vec<_> = inv
        .packages
        .iter()
        .map(|p| {
            (
                p.kind,
                p.name.as_str(),
                p.version.as_str(),
                p.source.as_ref().map(|s| s.name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (PackageType::Apk, "busybox", "1.36.1-r29", Some("busybox")),
            (PackageType::Apk, "libcrypto3", "3.3.2-r0", Some("openssl")),
            (PackageType::Apk, "musl", "1.2.5-r0", Some("musl")),
        ]
    );
    assert!(
        inv.packages
            .iter()
            .all(|p| p.arch.as_deref() == Some("x86_64"))
    );
}

/// An rpmdb.sqlite with rpm's own schema and `blobs`, made with the workspace's sqlx.
fn rpmdb(dir: &Path, blobs: &[Vec<u8>]) -> Vec<u8> {
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    let path = dir.join("rpmdb.sqlite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .expect("create");
        sqlx::query(
            "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .expect("schema");
        for blob in blobs {
            sqlx::query("INSERT INTO Packages (blob) VALUES (?1)")
                .bind(blob.as_slice())
                .execute(&mut conn)
                .await
                .expect("insert");
        }
        conn.close().await.expect("close");
    });
    std::fs::read(path).expect("db")
}

#[test]
fn an_rpm_sqlite_database_made_in_the_test() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = rpmdb(
        dir.path(),
        &[
            header_blob(
                &[
                    (1000, "openssl-libs"),
                    (1001, "3.0.7"),
                    (1002, "27.el9"),
                    (1022, "x86_64"),
                    (1044, "openssl-3.0.7-27.el9.src.rpm"),
                ],
                Some(1),
            ),
            header_blob(
                &[
                    (1000, "bash"),
                    (1001, "5.1.8"),
                    (1002, "9.el9"),
                    (1022, "x86_64"),
                    (1044, "bash-5.1.8-9.el9.src.rpm"),
                ],
                None,
            ),
            header_blob(
                &[(1000, "gpg-pubkey"), (1001, "fd431d51"), (1002, "4ae0493b")],
                None,
            ),
            header_blob(
                &[
                    (1000, "python3-setuptools"),
                    (1001, "53.0.0"),
                    (1002, "12.el9"),
                    (1044, "python-setuptools-53.0.0-12.el9.src.rpm"),
                ],
                None,
            ),
        ],
    );
    let inv = inventory(&[layer(&[
        Item::File(
            "etc/os-release",
            b"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n",
        ),
        Item::File("var/lib/rpm/rpmdb.sqlite", &db),
    ])]);
    assert_eq!(inv.errors, []);
    let rpm = |name: &str, version: &str, source: &str, arch: Option<&str>| Package {
        kind: PackageType::Rpm,
        name: name.into(),
        version: version.into(),
        source: Some(SourcePackage {
            name: source.into(),
            version: None,
        }),
        arch: arch.map(str::to_owned),
        path: "/var/lib/rpm/rpmdb.sqlite".into(),
    };
    assert_eq!(
        inv.packages,
        [
            rpm("bash", "5.1.8-9.el9", "bash", Some("x86_64")),
            rpm("openssl-libs", "1:3.0.7-27.el9", "openssl", Some("x86_64")),
            rpm(
                "python3-setuptools",
                "53.0.0-12.el9",
                "python-setuptools",
                None
            ),
        ]
    );
    assert_eq!(
        inv.os.map(|os| os.id_like),
        Some(vec!["rhel".into(), "centos".into(), "fedora".into()])
    );
}

#[test]
fn a_hostile_rpm_database_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut truncated = header_blob(&[(1000, "bash"), (1001, "5"), (1002, "1")], None);
    truncated.pop();
    let db = rpmdb(dir.path(), &[truncated]);
    let not_sqlite = b"SQLite format 3\0 but not really".to_vec();
    for (db, expected) in [(db, "header 1"), (not_sqlite, "SQLite")] {
        let inv = inventory(&[layer(&[Item::File("var/lib/rpm/rpmdb.sqlite", &db)])]);
        assert_eq!(found(&inv), []);
        assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
        assert!(
            inv.errors[0].message.contains(expected),
            "{}",
            inv.errors[0].message
        );
    }
    // A view named Packages is not read, however many rows it would make.
    let view = dir.path().join("view.sqlite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&view).create_if_missing(true);
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options).await.expect("create");
        sqlx::query("CREATE VIEW Packages AS WITH RECURSIVE n(hnum) AS (SELECT 1 UNION ALL SELECT hnum + 1 FROM n) SELECT hnum, randomblob(1000000) AS blob FROM n")
            .execute(&mut conn)
            .await
            .expect("view");
        conn.close().await.expect("close");
    });
    let db = std::fs::read(&view).expect("db");
    let inv = inventory(&[layer(&[Item::File("var/lib/rpm/rpmdb.sqlite", &db)])]);
    assert_eq!(found(&inv), []);
    assert!(
        inv.errors[0].message.contains("no Packages table"),
        "{:?}",
        inv.errors
    );
    // A BerkeleyDB database is reported, not silently empty.
    let inv = inventory(&[layer(&[Item::File(
        "var/lib/rpm/Packages",
        b"\0\0\0\0\x61\x15\x06\0",
    )])]);
    assert!(
        inv.errors[0].message.contains("BerkeleyDB"),
        "{:?}",
        inv.errors
    );
}

#[test]
fn an_rpm_database_written_by_rpm_itself() {
    if !have("rpmbuild") || !have("rpm") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let top = dir.path().join("top");
    let db = dir.path().join("db");
    std::fs::create_dir_all(&db).expect("db dir");
    for (name, epoch, version, release) in [
        ("berth-demo", Some(2), "1.2.3", "4.el9"),
        ("berth-tool", None, "0.9", "1.fc40"),
    ] {
        let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
        let spec = format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}Summary: test\nLicense: MIT\nBuildArch: noarch\n%description\ntest\n%files\n"
        );
        let spec_path = dir.path().join(format!("{name}.spec"));
        std::fs::write(&spec_path, spec).expect("spec");
        let built = Command::new("rpmbuild")
            .args(["-bb", "--quiet", "--nodeps", "--define"])
            .arg(format!("_topdir {}", top.display()))
            .arg(&spec_path)
            .output()
            .expect("rpmbuild runs");
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let rpms: Vec<_> = std::fs::read_dir(top.join("RPMS/noarch"))
        .expect("built")
        .map(|e| e.expect("entry").path())
        .collect();
    let dbpath = format!("--dbpath={}", db.display());
    let installed = Command::new("rpm")
        .args([
            &dbpath,
            "-i",
            "--justdb",
            "--nodeps",
            "--ignorearch",
            "--ignoreos",
        ])
        .args(&rpms)
        .output()
        .expect("rpm runs");
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let query = Command::new("rpm")
        .args([
            &dbpath,
            "-qa",
            "--qf",
            "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{NAME} %{SOURCERPM}\\n",
        ])
        .output()
        .expect("rpm -qa");
    let mut expected: Vec<String> = String::from_utf8(query.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    expected.sort();

    let sqlite = std::fs::read(db.join("rpmdb.sqlite")).expect("rpmdb.sqlite");
    let inv = inventory(&[layer(&[Item::File("var/lib/rpm/rpmdb.sqlite", &sqlite)])]);
    assert_eq!(inv.errors, []);
    let mut got: Vec<String> = inv
        .packages
        .iter()
        .map(|p| {
            let source = p.source.as_ref().expect("a source rpm");
            let evr = p
                .version
                .split_once(':')
                .map_or(p.version.as_str(), |(_, vr)| vr);
            let source_vr = source.version.as_deref().unwrap_or(evr);
            format!(
                "{} {} {}-{source_vr}.src.rpm",
                p.version, p.name, source.name
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 2);
}
