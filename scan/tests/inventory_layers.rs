//! The layer walker on real tar layers: whiteouts, replacement, links, compression, paths.

mod inventory_support;

use std::io::Read;
use std::sync::Mutex;

use berth_scan::inventory::{
    CatalogError, Cataloguer, FileInfo, Inventory, Limits, Package, PackageType,
    default_cataloguers,
};
use inventory_support::{
    DOCKER, GZIP, Item, TAR, ZSTD, dpkg_status, found, gzip, inventory, layer, raw_header, zstd,
};

const STATUS: &str = "var/lib/dpkg/status";

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn a_database_deleted_by_a_later_whiteout_is_not_reported() {
    let base = layer(&[
        Item::Dir("var/lib/dpkg"),
        Item::File(STATUS, &dpkg_status(&[("openssl", "3.0.11-1")])),
        Item::File("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\n"),
    ]);
    let whiteout = layer(&[Item::Empty("var/lib/dpkg/.wh.status")]);
    let whole_dir = layer(&[Item::Empty("lib/apk/.wh.db")]);

    let before = inventory(std::slice::from_ref(&base));
    assert_eq!(
        found(&before),
        owned(&[
            ("openssl", "3.0.11-1", "/var/lib/dpkg/status"),
            ("musl", "1.2.5-r0", "/lib/apk/db/installed"),
        ])
    );
    let after = inventory(&[base, whiteout, whole_dir]);
    assert_eq!(found(&after), []);
    assert_eq!(after.errors, []);
}

#[test]
fn a_whiteout_spares_its_own_layer_whatever_the_order() {
    let base = layer(&[Item::File(STATUS, &dpkg_status(&[("old", "1")]))]);
    // The new file comes first, the whiteout of the old one after it, in the same layer.
    let upper = layer(&[
        Item::File(STATUS, &dpkg_status(&[("new", "2")])),
        Item::Empty("var/lib/dpkg/.wh.status"),
    ]);
    assert_eq!(
        found(&inventory(&[base, upper])),
        owned(&[("new", "2", "/var/lib/dpkg/status")])
    );
}

#[test]
fn an_opaque_directory_hides_lower_contents_only() {
    let base = layer(&[
        Item::File(
            "var/lib/dpkg/status.d/base-files",
            b"Package: base-files\nVersion: 12.4\n",
        ),
        Item::File(
            "var/lib/dpkg/status.d/tzdata",
            b"Package: tzdata\nVersion: 2024a\n",
        ),
        Item::File("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
    ]);
    let upper = layer(&[
        Item::File(
            "var/lib/dpkg/status.d/libc6",
            b"Package: libc6\nVersion: 2.36-9\n",
        ),
        Item::Empty("var/lib/dpkg/status.d/.wh..wh..opq"),
    ]);
    let inv = inventory(&[base, upper]);
    assert_eq!(
        found(&inv),
        owned(&[("libc6", "2.36-9", "/var/lib/dpkg/status.d/libc6")])
    );
    assert_eq!(
        inv.os.map(|os| os.id),
        Some("debian".into()),
        "outside the opaque directory"
    );
}

#[test]
fn a_replaced_file_counts_once_with_its_new_contents() {
    let v1 = layer(&[Item::File(
        STATUS,
        &dpkg_status(&[("bash", "5.2-1"), ("zlib1g", "1:1.2")]),
    )]);
    let v2 = layer(&[Item::File(STATUS, &dpkg_status(&[("bash", "5.2-2")]))]);
    assert_eq!(
        found(&inventory(&[v1.clone(), v2])),
        owned(&[("bash", "5.2-2", "/var/lib/dpkg/status")])
    );
    // Replaced by a symbolic link: the file is gone (links are not followed).
    let link = layer(&[Item::Symlink(STATUS, "/elsewhere/status")]);
    assert_eq!(found(&inventory(&[v1.clone(), link])), []);
    // Replaced by a file where its directory was: everything under it is gone.
    let file_over_dir = layer(&[Item::File("var/lib/dpkg", b"not a directory")]);
    assert_eq!(found(&inventory(&[v1, file_over_dir])), []);
}

#[test]
fn os_release_falls_back_through_a_symlink_to_usr_lib() {
    let debian = layer(&[
        Item::File("usr/lib/os-release", b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
        Item::Symlink("etc/os-release", "../usr/lib/os-release"),
    ]);
    let os = inventory(std::slice::from_ref(&debian)).os.expect("an OS");
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("debian", Some("12"))
    );
    assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
    // A real /etc/os-release wins over /usr/lib's.
    let own = layer(&[Item::File(
        "etc/os-release",
        b"ID=ubuntu\nVERSION_ID=24.04\n",
    )]);
    let os = inventory(&[debian, own]).os.expect("an OS");
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("ubuntu", Some("24.04"))
    );
}

#[test]
fn hard_links_count_at_their_own_path() {
    let stanza: &[u8] = b"Package: libssl3\nVersion: 3.0.15-1\n";
    let links = layer(&[
        Item::File("var/lib/dpkg/status.d/libssl3", stanza),
        Item::HardLink(
            "var/lib/dpkg/status.d/libssl3-copy",
            "var/lib/dpkg/status.d/libssl3",
        ),
        Item::File("tmp/unread", stanza),
        Item::HardLink("var/lib/dpkg/status.d/orphan", "tmp/unread"),
    ]);
    let inv = inventory(&[links]);
    assert_eq!(
        found(&inv),
        owned(&[
            ("libssl3", "3.0.15-1", "/var/lib/dpkg/status.d/libssl3"),
            ("libssl3", "3.0.15-1", "/var/lib/dpkg/status.d/libssl3-copy"),
        ])
    );
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert_eq!(
        inv.errors[0].path.as_deref(),
        Some("/var/lib/dpkg/status.d/orphan")
    );
    assert!(
        inv.errors[0].message.contains("hard link to /tmp/unread"),
        "{}",
        inv.errors[0].message
    );
}

#[test]
fn every_layer_media_type_gives_the_same_inventory() {
    let tar = layer(&[
        Item::File("etc/os-release", b"ID=alpine\nVERSION_ID=3.20.3\n"),
        Item::File(
            "lib/apk/db/installed",
            b"P:busybox\nV:1.36.1-r29\no:busybox\n",
        ),
    ]);
    let cataloguers = default_cataloguers();
    let walk = |media_type: &str, blob: Vec<u8>| {
        Inventory::from_layers(
            [(media_type, blob.as_slice())],
            &cataloguers,
            Limits::default(),
        )
    };
    let plain = walk(TAR, tar.clone());
    assert_eq!(
        found(&plain),
        owned(&[("busybox", "1.36.1-r29", "/lib/apk/db/installed")])
    );
    assert_eq!(plain.errors, []);
    assert_eq!(walk(GZIP, gzip(&tar)), plain);
    assert_eq!(walk(DOCKER, gzip(&tar)), plain);
    assert_eq!(walk(ZSTD, zstd(&tar)), plain);
    let config = walk("application/vnd.oci.image.config.v1+json", tar.clone());
    assert_eq!(found(&config), []);
    assert!(config.errors[0].message.contains("not a layer media type"));
    // gzip announced, plain tar given: an error for that layer, not a panic.
    let lied = walk(GZIP, tar);
    assert_eq!(found(&lied), []);
    assert_eq!(lied.errors.len(), 1, "{:?}", lied.errors);
}

fn raw_file(tar: &mut Vec<u8>, name: &[u8], data: &[u8]) {
    tar.extend_from_slice(&raw_header(name, b'0', data.len() as u64));
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

#[test]
fn paths_are_normalised_and_escaping_ones_refused() {
    let mut tar = Vec::new();
    raw_file(
        &mut tar,
        b"../../var/lib/dpkg/status",
        &dpkg_status(&[("evil", "1")]),
    );
    raw_file(&mut tar, b"./etc/os-release", b"ID=alpine\n");
    raw_file(
        &mut tar,
        b"/lib//apk/./db/installed",
        b"P:musl\nV:1.2.5-r0\n",
    );
    tar.extend_from_slice(&[0; 1024]);
    let inv = inventory(&[tar]);
    assert_eq!(
        found(&inv),
        owned(&[("musl", "1.2.5-r0", "/lib/apk/db/installed")])
    );
    assert_eq!(inv.os.map(|os| os.id), Some("alpine".into()));
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert!(
        inv.errors[0].message.contains(".."),
        "{}",
        inv.errors[0].message
    );
}

#[test]
fn a_symlink_loop_does_not_hang() {
    let loops = layer(&[
        Item::Symlink("a", "b"),
        Item::Symlink("b", "a"),
        Item::Symlink("var/lib/dpkg/status", "status"),
        Item::Symlink("var/lib/dpkg/status.d", "."),
        Item::Symlink("etc/os-release", "/etc/os-release"),
    ]);
    let started = std::time::Instant::now();
    let inv = inventory(&[loops]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!((found(&inv), inv.os, inv.errors), (vec![], None, vec![]));
}

#[test]
fn a_corrupt_layer_keeps_what_came_before_and_the_walk_goes_on() {
    let good = layer(&[Item::File(STATUS, &dpkg_status(&[("base-files", "12.4")]))]);
    let mut corrupt = layer(&[Item::File("lib/apk/db/installed", b"P:musl\nV:1\n")]);
    corrupt[148] ^= 1; // the first header's checksum
    let next = layer(&[Item::File("etc/os-release", b"ID=debian\n")]);
    let inv = inventory(&[good, corrupt, next]);
    assert_eq!(
        found(&inv),
        owned(&[("base-files", "12.4", "/var/lib/dpkg/status")])
    );
    assert_eq!(inv.os.map(|os| os.id), Some("debian".into()));
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert_eq!(
        (inv.errors[0].layer, inv.errors[0].path.as_ref()),
        (1, None)
    );
    assert!(inv.errors[0].message.contains("checksum"));
}

#[test]
fn long_names_in_gnu_and_pax_form() {
    let deep = format!("{}/var/lib/dpkg/status", "x/".repeat(80));
    let apk_in_pax = "lib/apk/db/installed";
    // GNU long name (the `tar` crate's form for paths over 100 bytes) for a path not wanted.
    let mut tar = layer(&[Item::File(&deep, &dpkg_status(&[("deep", "1")]))]);
    tar.truncate(tar.len() - 1024);
    // A pax header carrying the path and the size, with a bogus name and size 0 in the ustar
    // header, as Go's archive/tar writes files of 8 GiB and more.
    let data = b"P:musl\nV:1.2.5-r0\n";
    let records = format!(
        "{}{}",
        pax_record("path", apk_in_pax),
        pax_record("size", &data.len().to_string())
    );
    tar.extend_from_slice(&raw_header(b"PaxHeaders/x", b'x', records.len() as u64));
    tar.extend_from_slice(records.as_bytes());
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.extend_from_slice(&raw_header(b"truncated-name", b'0', 0));
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.extend_from_slice(&[0; 1024]);
    let inv = inventory(&[tar]);
    assert_eq!(inv.errors, []);
    assert_eq!(
        found(&inv),
        owned(&[("musl", "1.2.5-r0", "/lib/apk/db/installed")])
    );
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// A cataloguer for the tests: wants one path, records every byte it was given.
struct Recorder {
    path: &'static str,
    seen: Mutex<Vec<usize>>,
}

impl Cataloguer for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path == self.path
    }
    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        let mut all = Vec::new();
        contents.read_to_end(&mut all)?;
        assert!(
            all.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
            "the file's bytes"
        );
        self.seen.lock().expect("lock").push(all.len());
        Ok(vec![Package {
            kind: PackageType::Cargo,
            name: "seen".into(),
            version: all.len().to_string(),
            source: None,
            arch: None,
            path: file.path.into(),
        }])
    }
}

#[test]
fn a_file_several_cataloguers_want_is_read_once_and_given_to_each() {
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let small: Vec<u8> = big[..100].to_vec();
    let tar = layer(&[
        Item::Exec("usr/bin/big", &big),
        Item::File("etc/small", &small),
    ]);
    let cataloguers: Vec<Box<dyn Cataloguer>> = vec![
        Box::new(Recorder {
            path: "/usr/bin/big",
            seen: Mutex::default(),
        }),
        Box::new(Recorder {
            path: "/usr/bin/big",
            seen: Mutex::default(),
        }),
        Box::new(Recorder {
            path: "/etc/small",
            seen: Mutex::default(),
        }),
        Box::new(Recorder {
            path: "/etc/small",
            seen: Mutex::default(),
        }),
    ];
    let inv = Inventory::from_layers([(TAR, tar.as_slice())], &cataloguers, Limits::default());
    assert_eq!(inv.errors, []);
    // Two cataloguers, one file: one package (deduplicated), each cataloguer saw every byte.
    assert_eq!(
        found(&inv),
        owned(&[
            ("seen", "100", "/etc/small"),
            ("seen", &big.len().to_string(), "/usr/bin/big")
        ])
    );
    let limits = Limits {
        max_file_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let inv = Inventory::from_layers([(TAR, tar.as_slice())], &cataloguers, limits);
    assert_eq!(found(&inv), owned(&[("seen", "100", "/etc/small")]));
    // One error per cataloguer, and both are called "recorder": deduplicated into one.
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert!(
        inv.errors[0]
            .message
            .ends_with("not read: larger than 1048576 bytes")
    );
}
