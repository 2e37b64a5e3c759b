//! Rust crates: `Cargo.lock` files, and binaries built with `cargo auditable`.
//!
//! Only crates from crates.io are reported: they are what crates.io advisories (RustSec, in OSV's
//! `crates.io` ecosystem) are about. A workspace's own path crates, git dependencies and crates
//! from other registries share names with crates.io crates without being them, so matching them
//! would raise false alarms; they are left out of the inventory.
//!
//! `Cargo.lock` is TOML with one `[[package]]` table per crate (`name`, `version`, and `source`
//! for anything not a path crate), the same in every lock file version (1 to 4; version 4 may
//! spell the crates.io source as the sparse index). `cargo auditable` embeds the same facts as
//! zlib-compressed JSON in the ELF section `.dep-v0` (`{"packages": [{"name", "version",
//! "source", "kind", "dependencies", "root"}]}`, source `"crates.io"` for crates.io crates);
//! [`super::binary`] finds the section and hands it to [`parse_auditable`]. Build-time-only
//! crates (`"kind": "build"`: build scripts and proc macros) are not in the binary and are left
//! out.

use std::io::Read;

use serde::Deserialize;

use crate::inventory::{CatalogError, Cataloguer, FileInfo, Package, PackageType};

use super::{file_name, malformed, read_to_limit};

/// The largest `Cargo.lock` read (the lock of a thousand-crate workspace is about 200 KiB).
pub const LOCK_LIMIT: u64 = 16 << 20;
/// The ELF section `cargo auditable` writes.
pub const AUDITABLE_SECTION: &str = ".dep-v0";
/// The largest `.dep-v0` section read, compressed.
pub const AUDITABLE_LIMIT: u64 = 8 << 20;
/// The most the section is allowed to inflate to (a zlib bomb stops here).
pub const AUDITABLE_JSON_LIMIT: u64 = 64 << 20;

/// The crates.io index, as `Cargo.lock` names it: the git index and, since lock version 4 may
/// record it, the sparse index.
const CRATES_IO: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// Reads `Cargo.lock` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CargoLock;

#[derive(Deserialize)]
struct Lock {
    version: Option<u32>,
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
}

impl Cataloguer for CargoLock {
    fn name(&self) -> &'static str {
        "cargo-lock"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file_name(file.path) == "Cargo.lock"
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        const WHAT: &str = "Cargo.lock";
        let bytes = read_to_limit(WHAT, file, contents, LOCK_LIMIT)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed(WHAT, "not UTF-8"))?;
        let lock: Lock = toml::from_str(text).map_err(|e| malformed(WHAT, e.message()))?;
        if let Some(v) = lock.version
            && !(1..=4).contains(&v)
        {
            return Err(malformed(WHAT, format!("unknown lock file version {v}")));
        }
        Ok(lock
            .package
            .into_iter()
            .filter(|p| p.source.as_deref().is_some_and(|s| CRATES_IO.contains(&s)))
            .map(|p| crate_package(p.name, p.version, file.path))
            .collect())
    }
}

#[derive(Deserialize)]
struct Auditable {
    packages: Vec<AuditablePackage>,
}

#[derive(Deserialize)]
struct AuditablePackage {
    name: String,
    version: String,
    source: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The crates recorded in the (compressed) contents of a `.dep-v0` section, found in `path`.
pub fn parse_auditable(compressed: &[u8], path: &str) -> Result<Vec<Package>, CatalogError> {
    const WHAT: &str = "cargo auditable dependency list";
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(AUDITABLE_JSON_LIMIT + 1)
        .read_to_end(&mut json)
        .map_err(|e| malformed(WHAT, format!("not zlib data: {e}")))?;
    if json.len() as u64 > AUDITABLE_JSON_LIMIT {
        return Err(CatalogError::TooLarge {
            what: WHAT,
            limit: AUDITABLE_JSON_LIMIT,
        });
    }
    let list: Auditable =
        serde_json::from_slice(&json).map_err(|e| malformed(WHAT, e.to_string()))?;
    Ok(list
        .packages
        .into_iter()
        .filter(|p| p.source == "crates.io" && p.kind.as_deref() != Some("build"))
        .map(|p| crate_package(p.name, p.version, path))
        .collect())
}

fn crate_package(name: String, version: String, path: &str) -> Package {
    Package {
        kind: PackageType::Cargo,
        name,
        version,
        source: None,
        arch: None,
        path: path.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    fn catalog(text: &str) -> Result<Vec<Package>, CatalogError> {
        let file = FileInfo {
            path: "/src/app/Cargo.lock",
            size: text.len() as u64,
            executable: false,
        };
        CargoLock.catalog(&file, &mut text.as_bytes())
    }

    fn pairs(packages: &[Package]) -> Vec<(&str, &str)> {
        packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    /// Lock version 1 (Rust before 1.41): checksums in `[metadata]`, no `version` key.
    const V1: &str = r#"
[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "smallvec 0.6.10 (registry+https://github.com/rust-lang/crates.io-index)",
]

[[package]]
name = "smallvec"
version = "0.6.10"
source = "registry+https://github.com/rust-lang/crates.io-index"

[metadata]
"checksum smallvec 0.6.10 (registry+https://github.com/rust-lang/crates.io-index)" = "ab606a9c5e214920bb66c458cd7be8ef094f813f20fe77a54cc7dbfff220d4b7"
"#;

    /// Lock version 3, with a git dependency, a path crate and another registry.
    const V3: &str = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "regex",
 "serde",
 "time",
 "tokio",
]

[[package]]
name = "regex"
version = "1.5.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "d07a8629359eb56f1e2fb1652bb04212c072a87ba68546a04065d525673ac461"

[[package]]
name = "serde"
version = "1.0.130"
source = "git+https://github.com/serde-rs/serde?rev=abcdef#abcdef0123456789"

[[package]]
name = "time"
version = "0.1.43"
source = "registry+https://my-intranet:8080/git/index"

[[package]]
name = "tokio"
version = "1.0.0"
"#;

    /// Lock version 4 (Rust 1.78+), with the crates.io source as the sparse index.
    const V4: &str = r#"version = 4

[[package]]
name = "smallvec"
version = "1.13.2"
source = "sparse+https://index.crates.io/"
checksum = "3c5e1a9a646d36c3599cd173a41282daf47c44583ad367b8e6837255952e5c67"

[[package]]
name = "thiserror"
version = "2.0.12"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "567b8a2dae586314f7be2a752ec7474332959c6460e02bde30d702a66d488708"
"#;

    #[test]
    fn reads_crates_io_packages_of_every_lock_version() {
        assert_eq!(pairs(&catalog(V1).expect("v1")), [("smallvec", "0.6.10")]);
        assert_eq!(pairs(&catalog(V3).expect("v3")), [("regex", "1.5.4")]);
        let v4 = catalog(V4).expect("v4");
        assert_eq!(
            pairs(&v4),
            [("smallvec", "1.13.2"), ("thiserror", "2.0.12")]
        );
        assert!(v4.iter().all(|p| p.kind == PackageType::Cargo));
        assert!(v4.iter().all(|p| p.path == "/src/app/Cargo.lock"));
    }

    #[test]
    fn reads_this_workspace_lock_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
        let text = std::fs::read_to_string(path).expect("Cargo.lock");
        let packages = catalog(&text).expect("parse");
        assert!(packages.iter().any(|p| p.name == "serde_json"));
        assert!(packages.iter().any(|p| p.name == "toml"));
        // Our own crates are path crates: not crates.io's berth-*, if there ever is one.
        assert!(!packages.iter().any(|p| p.name.starts_with("berth")));
        // Every crates.io package of the file, counted independently of the parser.
        let registry = text
            .matches("\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"")
            .count();
        assert_eq!(packages.len(), registry);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "not toml at all [[[",
            "version = 99\n",
            "[[package]]\nname = 1\n",
            "[[package]]\nname = \"x\"\n",
            "package = \"x\"",
            "\u{0}\u{1}",
        ] {
            assert!(
                matches!(catalog(bad), Err(CatalogError::Malformed { .. })),
                "{bad:?}"
            );
        }
        // Deep nesting must not overflow the stack.
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(catalog(&deep).is_err());
        let deep = format!("a = {}1{}", "{b = ".repeat(100_000), "}".repeat(100_000));
        assert!(catalog(&deep).is_err());
        for cut in 0..V3.len() {
            let _ = catalog(&V3[..cut]);
        }
        let invalid_utf8 = [b"version = 3\n".as_slice(), &[0xff, 0xfe]].concat();
        let file = FileInfo {
            path: "/Cargo.lock",
            size: invalid_utf8.len() as u64,
            executable: false,
        };
        assert!(CargoLock.catalog(&file, &mut &invalid_utf8[..]).is_err());
    }

    #[test]
    fn a_lock_file_over_the_bound_is_refused_unread() {
        let file = FileInfo {
            path: "/Cargo.lock",
            size: LOCK_LIMIT + 1,
            executable: false,
        };
        let mut endless = std::io::repeat(b'#');
        assert!(matches!(
            CargoLock.catalog(&file, &mut endless),
            Err(CatalogError::TooLarge { .. })
        ));
        // A header that understates the size is caught by the read bound.
        let file = FileInfo { size: 10, ..file };
        assert!(matches!(
            CargoLock.catalog(&file, &mut endless),
            Err(CatalogError::TooLarge { .. })
        ));
    }

    pub(crate) fn compress(json: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).expect("compress");
        z.finish().expect("compress")
    }

    /// As `cargo auditable` 0.6 writes it for a binary depending on `regex`, a git crate and a
    /// path crate, with a proc macro used at build time.
    pub(crate) const AUDITABLE_JSON: &str = r#"{"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3,4],"root":true},
        {"name":"regex","version":"1.5.4","source":"crates.io","dependencies":[5]},
        {"name":"serde_derive","version":"1.0.130","source":"crates.io","kind":"build"},
        {"name":"patched","version":"0.2.0","source":"git"},
        {"name":"helper","version":"0.1.0","source":"local"},
        {"name":"memchr","version":"2.4.1","source":"crates.io","kind":"runtime"}
    ]}"#;

    #[test]
    fn reads_an_auditable_dependency_list() {
        let packages =
            parse_auditable(&compress(AUDITABLE_JSON.as_bytes()), "/usr/bin/app").expect("parse");
        assert_eq!(pairs(&packages), [("regex", "1.5.4"), ("memchr", "2.4.1")]);
        assert!(packages.iter().all(|p| p.path == "/usr/bin/app"));
    }

    #[test]
    fn auditable_garbage_and_bombs_are_errors() {
        assert!(parse_auditable(b"", "/x").is_err());
        assert!(parse_auditable(b"{\"packages\":[]}", "/x").is_err());
        assert!(parse_auditable(&compress(b"{\"packages\":7}"), "/x").is_err());
        let compressed = compress(AUDITABLE_JSON.as_bytes());
        for cut in 0..compressed.len() {
            let _ = parse_auditable(&compressed[..cut], "/x");
        }
        // 100 MiB of zeros compress to about 100 KiB; inflating stops at the bound.
        let bomb = compress(&vec![b' '; 100 << 20]);
        assert!(bomb.len() < 1 << 20);
        assert!(matches!(
            parse_auditable(&bomb, "/x"),
            Err(CatalogError::TooLarge { .. })
        ));
    }
}
