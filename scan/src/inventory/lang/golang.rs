//! Go modules compiled into a Go binary, from the build information the Go linker embeds.
//!
//! Since Go 1.18 the `.go.buildinfo` section starts with a 32-byte header (the magic
//! `"\xff Go buildinf:"`, the pointer size, flags) followed, when flag bit 1 ("version inline") is
//! set, by two strings each prefixed with its length as an unsigned varint: the Go version and the
//! module information (Go's `debug/buildinfo.Read`). The module information is framed by two
//! 16-byte sentinels and holds tab-separated lines (Go's `runtime/debug.ParseBuildInfo`):
//!
//! ```text
//! path  example.com/app/cmd/app
//! mod   example.com/app  v1.2.0  h1:...
//! dep   golang.org/x/net  v0.17.0  h1:...
//! =>    golang.org/x/net  v0.19.0  h1:...      (replaces the line above)
//! build GOOS=linux
//! ```
//!
//! Reported: the main module (its version as recorded, often `(devel)`), every dependency as
//! actually compiled (a `=>` replacement by another module version wins; a replacement by a local
//! directory has no version to match and is left out), and the standard library as the module
//! `stdlib`, the name OSV's Go ecosystem uses. The toolchain version `go1.21rc2` is written in
//! the semantic-version form Go's module tooling uses for it (`v1.21.0-rc.2`), so that every Go
//! version here carries the leading `v`, which OSV's ranges omit.
//!
//! Before Go 1.18 (from Go 1.13), the header is followed instead by two pointers to Go string
//! headers (address, length) in the program's memory image; the caller resolves addresses to
//! file contents through the ELF section headers.

use crate::inventory::{CatalogError, Package, PackageType};

use super::malformed;

/// The ELF section the Go linker puts the build information in.
pub const SECTION: &str = ".go.buildinfo";
/// The most of that section read: the header and two strings, however many modules.
pub const SECTION_LIMIT: u64 = 4 << 20;

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_VERSION_INLINE: u8 = 0x2;
/// The longest string followed through a pointer (Go's own `debug/buildinfo` bound).
const POINTED_LIMIT: u64 = 1 << 20;
const WHAT: &str = "Go build information";

/// Reads `len` bytes at an address of the program's memory image; `None` when no section holds
/// them.
pub type ReadAddress<'a> = dyn FnMut(u64, u64) -> Option<Vec<u8>> + 'a;

/// The packages recorded in the contents of a `.go.buildinfo` section, found in `path`;
/// `read` follows the pointers of the format before Go 1.18.
pub fn parse_buildinfo(
    data: &[u8],
    path: &str,
    read: &mut ReadAddress<'_>,
) -> Result<Vec<Package>, CatalogError> {
    if data.len() < HEADER_LEN || &data[..MAGIC.len()] != MAGIC {
        return Err(malformed(WHAT, "no build information header"));
    }
    let (version, modinfo);
    if data[15] & FLAG_VERSION_INLINE != 0 {
        let rest = &data[HEADER_LEN..];
        let (v, rest) = varint_string(rest)?;
        let (m, _) = varint_string(rest)?;
        (version, modinfo) = (v.to_vec(), m.to_vec());
    } else {
        let pointers = Pointers {
            size: data[14],
            big: data[15] & FLAG_BIG_ENDIAN != 0,
        };
        let width = usize::from(pointers.size);
        if width != 4 && width != 8 {
            return Err(malformed(WHAT, "pointer size neither 4 nor 8"));
        }
        version = pointers.string(read, pointers.get(&data[16..]))?;
        modinfo = pointers.string(read, pointers.get(&data[16 + width..]))?;
    }
    let (version, modinfo) = (&version[..], &modinfo[..]);
    let version =
        std::str::from_utf8(version).map_err(|_| malformed(WHAT, "Go version is not UTF-8"))?;
    // The sentinels: 16 bytes before, and 16 bytes after a final newline.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let modinfo = std::str::from_utf8(modinfo)
        .map_err(|_| malformed(WHAT, "module information is not UTF-8"))?;

    let mut packages = Vec::new();
    let module = |name: &str, version: &str| Package {
        kind: PackageType::Golang,
        name: name.to_owned(),
        version: version.to_owned(),
        source: None,
        arch: None,
        path: path.to_owned(),
    };
    // The module the next `=>` line replaces, by index into `packages`, or `None` after a line
    // that is not a module.
    let mut last: Option<usize> = None;
    for line in modinfo.lines() {
        let Some((kind, fields)) = line.split_once('\t') else {
            last = None;
            continue;
        };
        match kind {
            "mod" | "dep" => {
                let (name, version) = module_fields(fields)?;
                packages.push(module(name, version));
                last = Some(packages.len() - 1);
            }
            "=>" => {
                let (name, version) = module_fields(fields)?;
                let Some(replaced) = last.take() else {
                    return Err(malformed(WHAT, "a replacement that replaces nothing"));
                };
                if version.is_empty() {
                    // A local directory: not a published module version.
                    packages.remove(replaced);
                } else {
                    packages[replaced] = module(name, version);
                }
            }
            _ => last = None,
        }
    }
    if let Some(stdlib) = stdlib_version(version) {
        packages.push(module("stdlib", &stdlib));
    }
    Ok(packages)
}

/// The path and version of a `mod`, `dep` or `=>` line: `path \t version [\t sum]`.
fn module_fields(fields: &str) -> Result<(&str, &str), CatalogError> {
    let mut parts = fields.split('\t');
    let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
        return Err(malformed(WHAT, "a module line without a version"));
    };
    if name.is_empty() || parts.nth(1).is_some() {
        return Err(malformed(WHAT, "a module line of the wrong shape"));
    }
    Ok((name, version))
}

/// Pointers of the format before Go 1.18: their size and byte order.
struct Pointers {
    size: u8,
    big: bool,
}

impl Pointers {
    /// The pointer at the start of `b`, which holds at least 16 bytes.
    fn get(&self, b: &[u8]) -> u64 {
        let mut x = [0u8; 8];
        let n = usize::from(self.size);
        if self.big {
            x[8 - n..].copy_from_slice(&b[..n]);
            u64::from_be_bytes(x)
        } else {
            x[..n].copy_from_slice(&b[..n]);
            u64::from_le_bytes(x)
        }
    }

    /// The Go string whose header (data pointer, length) is at `addr`.
    fn string(&self, read: &mut ReadAddress<'_>, addr: u64) -> Result<Vec<u8>, CatalogError> {
        let unresolved = || malformed(WHAT, "a pointer outside the file's sections");
        let header = read(addr, 2 * u64::from(self.size))
            .filter(|h| h.len() == 2 * usize::from(self.size))
            .ok_or_else(unresolved)?;
        let (data, len) = (
            self.get(&header),
            self.get(&header[usize::from(self.size)..]),
        );
        if len > POINTED_LIMIT {
            return Err(malformed(WHAT, "a string longer than 1 MiB"));
        }
        read(data, len)
            .filter(|d| d.len() as u64 == len)
            .ok_or_else(unresolved)
    }
}

/// A string prefixed by its length as an unsigned LEB128 varint, and what follows it.
fn varint_string(data: &[u8]) -> Result<(&[u8], &[u8]), CatalogError> {
    let mut len: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let rest = &data[i + 1..];
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= rest.len())
                .ok_or_else(|| malformed(WHAT, "a string longer than the section"))?;
            return Ok(rest.split_at(len));
        }
    }
    Err(malformed(WHAT, "a truncated string length"))
}

/// The Go toolchain version `go1.22.5` as the semantic version `v1.22.5`; `None` for
/// development toolchains (`devel go1.23-abcdef`), which name no release.
///
/// Go's own mapping (`golang.org/x/vuln`'s `semverToGoTag` in reverse): `go1.20` is `v1.20.0`,
/// `go1.21rc2` is `v1.21.0-rc.2`, `go1.19beta1` is `v1.19.0-beta.1`; anything after a space
/// (`go1.23.0 X:boringcrypto`) is an experiment tag, not part of the version.
pub fn stdlib_version(go: &str) -> Option<String> {
    let go = go.split(' ').next()?.strip_prefix("go")?;
    let (release, pre) = match go.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => go.split_at(at),
        None => (go, ""),
    };
    let numbers: Vec<&str> = release.split('.').collect();
    if numbers.is_empty()
        || numbers.len() > 3
        || numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut version = format!(
        "v{}.{}.{}",
        numbers[0],
        numbers.get(1).unwrap_or(&"0"),
        numbers.get(2).unwrap_or(&"0")
    );
    if !pre.is_empty() {
        let digits = pre.find(|c: char| c.is_ascii_digit())?;
        let (word, n) = pre.split_at(digits);
        if !matches!(word, "rc" | "beta" | "alpha") || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        version.push_str(&format!("-{word}.{n}"));
    }
    Some(version)
}

/// The contents of a `.go.buildinfo` section for `version` and `modinfo` lines, framed as the
/// Go linker frames them, for tests.
#[cfg(test)]
pub(crate) fn build_section(version: &str, modinfo: &str) -> Vec<u8> {
    fn push_string(out: &mut Vec<u8>, s: &[u8]) {
        let mut len = s.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(s);
    }
    let mut out = MAGIC.to_vec();
    out.push(8);
    out.push(FLAG_VERSION_INLINE);
    out.resize(HEADER_LEN, 0);
    push_string(&mut out, version.as_bytes());
    push_string(&mut out, &frame(modinfo));
    out
}

/// Module information between the sentinels the Go toolchain frames it with
/// (`cmd/go/internal/modload.infoStart` and `infoEnd`), for tests.
#[cfg(test)]
pub(crate) fn frame(modinfo: &str) -> Vec<u8> {
    let mut framed = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
    framed.extend_from_slice(modinfo.as_bytes());
    framed.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODINFO: &str = "path\texample.com/app/cmd/app\n\
        mod\texample.com/app\t(devel)\t\n\
        dep\tgithub.com/google/uuid\tv1.3.0\th1:t6JiXgmwXMjEs8VusXIJk2BXHsn+wx8BZdTaoZ5fu7I=\n\
        dep\tgolang.org/x/net\tv0.7.0\th1:rJrUqqhjsgNp7KqAIc25s9pZnjU7TUcSY7HcVZjdn1g=\n\
        =>\tgolang.org/x/net\tv0.17.0\th1:pVaXccu2ozPjCXewfr1S7xza/zcXTity9cCdXQYSjIM=\n\
        dep\texample.com/local\tv0.0.0\n\
        =>\t../local\t\n\
        build\t-compiler=gc\n\
        build\tGOOS=linux\n";

    fn no_memory(_: u64, _: u64) -> Option<Vec<u8>> {
        None
    }

    fn names(packages: &[Package]) -> Vec<(String, String)> {
        packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }

    #[test]
    fn reads_modules_replacements_and_the_standard_library() {
        let section = build_section("go1.21.5", MODINFO);
        let packages = parse_buildinfo(&section, "/usr/bin/app", &mut no_memory).expect("parse");
        assert_eq!(
            names(&packages),
            [
                ("example.com/app", "(devel)"),
                ("github.com/google/uuid", "v1.3.0"),
                ("golang.org/x/net", "v0.17.0"),
                ("stdlib", "v1.21.5"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert!(packages.iter().all(|p| p.kind == PackageType::Golang));
        assert!(packages.iter().all(|p| p.path == "/usr/bin/app"));
    }

    #[test]
    fn a_binary_built_outside_module_mode_has_only_the_standard_library() {
        // As Debian builds containerd and skopeo: a `path` line and build settings, no `mod`.
        let section = build_section(
            "go1.19.8",
            "path\tgithub.com/containerd/containerd/cmd/containerd\nbuild\tGOOS=linux\n",
        );
        let packages =
            parse_buildinfo(&section, "/usr/bin/containerd", &mut no_memory).expect("parse");
        assert_eq!(
            names(&packages),
            [("stdlib".to_owned(), "v1.19.8".to_owned())]
        );
    }

    #[test]
    fn go_versions_become_semantic_versions() {
        for (go, semver) in [
            ("go1.22.5", Some("v1.22.5")),
            ("go1.20", Some("v1.20.0")),
            ("go1.21rc2", Some("v1.21.0-rc.2")),
            ("go1.19beta1", Some("v1.19.0-beta.1")),
            ("go1.23.0 X:boringcrypto", Some("v1.23.0")),
            ("devel go1.23-abcdef", None),
            ("go1.22.5.1.2", None),
            ("go", None),
            ("go1.x", None),
            ("1.22.5", None),
        ] {
            assert_eq!(stdlib_version(go).as_deref(), semver, "{go}");
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(parse_buildinfo(b"", "/x", &mut no_memory).is_err());
        assert!(parse_buildinfo(&[0xff; 64], "/x", &mut no_memory).is_err());
        // The format before Go 1.18, with pointers that lead nowhere, or of a strange size.
        let mut old = build_section("go1.17", MODINFO);
        old[15] = 0;
        assert!(parse_buildinfo(&old, "/x", &mut no_memory).is_err());
        old[14] = 3;
        assert!(parse_buildinfo(&old, "/x", &mut no_memory).is_err());
        old[14] = 8;
        let mut short = |_: u64, _: u64| Some(vec![1u8]);
        assert!(parse_buildinfo(&old, "/x", &mut short).is_err());
        let mut huge = |_: u64, len: u64| Some(vec![0xffu8; len as usize]);
        assert!(parse_buildinfo(&old, "/x", &mut huge).is_err());
        let section = build_section("go1.21.5", MODINFO);
        for cut in 0..section.len() {
            let _ = parse_buildinfo(&section[..cut], "/x", &mut no_memory);
        }
        for at in 14..section.len() {
            for value in [0x00, b'\t', b'\n', 0x80, 0xff] {
                let mut bad = section.clone();
                bad[at] = value;
                let _ = parse_buildinfo(&bad, "/x", &mut no_memory);
            }
        }
        let huge_length = [MAGIC.as_slice(), &[8, 2], &[0; 16], &[0xff; 12]].concat();
        assert!(parse_buildinfo(&huge_length, "/x", &mut no_memory).is_err());
        let orphan = build_section("go1.21.5", "=>\tgolang.org/x/net\tv0.17.0\t\n");
        assert!(parse_buildinfo(&orphan, "/x", &mut no_memory).is_err());
    }
}
