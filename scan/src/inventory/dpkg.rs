//! Debian and Ubuntu packages: dpkg's database.
//!
//! - `/var/lib/dpkg/status`: one stanza per package, in deb822 form (`Field: value`, indented
//!   continuation lines, stanzas separated by blank lines); see deb-status(5).
//! - `/var/lib/dpkg/status.d/<name>`: distroless images' one stanza per file, without a
//!   `Status` field (the packages were unpacked by a build tool, not dpkg). The `*.md5sums`
//!   files beside them are not stanzas.
//!
//! A package counts when its files are on disk: `Status` (want, flag, state) with the state
//! `installed`, or one of the states between unpacking and configuring (`unpacked`,
//! `half-configured`, `triggers-awaited`, `triggers-pending`). `config-files` (removed, its
//! configuration kept), `half-installed` and `not-installed` do not count.
//!
//! `Architecture` is kept, so `libc6:amd64` and `libc6:i386` of one version are two packages
//! (two package URLs); advisory matching, by name and version, treats them alike.

use std::io::Read;

use super::lines::Lines;
use super::{CatalogError, Cataloguer, FileInfo, Package, PackageType, SourcePackage};

/// The status file's bound (a full desktop's status is about 5 MiB).
pub const MAX_FILE: u64 = 256 * 1024 * 1024;
/// A line's bound.
pub const MAX_LINE: usize = 256 * 1024;
/// A stanza's bound.
pub const MAX_STANZA: usize = 16 * 1024 * 1024;
/// Packages in one file (Debian's archive has about 70,000 per architecture).
pub const MAX_PACKAGES: usize = 200_000;

const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_D: &str = "/var/lib/dpkg/status.d/";

/// The dpkg cataloguer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dpkg;

impl Cataloguer for Dpkg {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        if file.path == STATUS {
            return true;
        }
        file.path
            .strip_prefix(STATUS_D)
            .is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        parse(file.path, contents)
    }
}

#[derive(Default)]
struct Stanza {
    package: Option<String>,
    version: Option<String>,
    source: Option<String>,
    status: Option<String>,
    architecture: Option<String>,
    bytes: usize,
    fields: usize,
}

/// The installed packages a dpkg status file (or one `status.d` file) records.
pub fn parse(path: &str, contents: &mut dyn Read) -> Result<Vec<Package>, CatalogError> {
    let mut lines = Lines::new(contents, "dpkg status", MAX_LINE, MAX_FILE);
    let mut packages = Vec::new();
    let mut stanza = Stanza::default();
    loop {
        let Some(line) = lines.next_line()? else {
            finish(path, std::mem::take(&mut stanza), &mut packages, &lines)?;
            break;
        };
        let bytes = line.bytes;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            finish(path, std::mem::take(&mut stanza), &mut packages, &lines)?;
            if packages.len() > MAX_PACKAGES {
                return Err(CatalogError::TooLarge {
                    what: "dpkg status",
                    limit: MAX_FILE,
                });
            }
            continue;
        }
        stanza.bytes += bytes.len() + 1;
        if stanza.bytes > MAX_STANZA {
            return Err(line.malformed(format!("a stanza longer than {MAX_STANZA} bytes")));
        }
        if bytes[0] == b' ' || bytes[0] == b'\t' {
            if stanza.fields == 0 {
                return Err(line.malformed("a continuation line outside a field"));
            }
            continue;
        }
        let colon = bytes.iter().position(|&b| b == b':');
        let Some(colon) = colon.filter(|&c| c > 0 && bytes[..c].iter().all(u8::is_ascii_graphic))
        else {
            return Err(line.malformed("not a field"));
        };
        stanza.fields += 1;
        let slot = match &bytes[..colon] {
            b"Package" => &mut stanza.package,
            b"Version" => &mut stanza.version,
            b"Source" => &mut stanza.source,
            b"Status" => &mut stanza.status,
            b"Architecture" => &mut stanza.architecture,
            _ => continue,
        };
        let value = std::str::from_utf8(&bytes[colon + 1..])
            .map_err(|_| line.malformed("a value that is not UTF-8"))?;
        *slot = Some(value.trim().to_owned());
    }
    Ok(packages)
}

fn finish(
    path: &str,
    stanza: Stanza,
    packages: &mut Vec<Package>,
    lines: &Lines<'_>,
) -> Result<(), CatalogError> {
    if stanza.fields == 0 {
        return Ok(());
    }
    if let Some(status) = &stanza.status {
        let state = status.split_whitespace().nth(2).unwrap_or("");
        let on_disk = matches!(
            state,
            "installed" | "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending"
        );
        if !on_disk {
            return Ok(());
        }
    }
    let (Some(name), Some(version)) = (stanza.package, stanza.version) else {
        return Err(lines.malformed("a stanza without Package or Version"));
    };
    if name.is_empty() || version.is_empty() {
        return Err(lines.malformed("an empty Package or Version"));
    }
    let source = stanza
        .source
        .filter(|s| !s.is_empty())
        .map(|s| parse_source(&s));
    packages.push(Package {
        kind: PackageType::Dpkg,
        name,
        version,
        source,
        arch: stanza.architecture.filter(|a| !a.is_empty()),
        path: path.to_owned(),
    });
    Ok(())
}

/// `Source: name` or `Source: name (version)`, the latter when the source's version differs
/// from the binary's (deb-control(5)).
fn parse_source(field: &str) -> SourcePackage {
    match field.split_once('(') {
        Some((name, rest)) => SourcePackage {
            name: name.trim().to_owned(),
            version: Some(rest.trim_end().trim_end_matches(')').trim().to_owned())
                .filter(|v| !v.is_empty()),
        },
        None => SourcePackage {
            name: field.trim().to_owned(),
            version: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<Package>, CatalogError> {
        parse(STATUS, &mut text.as_bytes())
    }

    #[test]
    fn installed_stanzas_with_sources() {
        let text = "Package: libssl3\nStatus: install ok installed\nPriority: optional\n\
Source: openssl\nVersion: 3.0.15-1~deb12u1\nDescription: Secure Sockets Layer toolkit\n \
This package is part of the OpenSSL project.\n .\n more\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0-1\n\n\
Package: held\nStatus: hold ok installed\nVersion: 2\n\n\
Package: libgcc-s1\nStatus: install ok installed\nSource: gcc-12 (12.2.0-14)\nVersion: 12.2.0-14+deb12u1\n";
        let found = parse_str(text).expect("parses");
        let names: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("libssl3", "3.0.15-1~deb12u1"),
                ("held", "2"),
                ("libgcc-s1", "12.2.0-14+deb12u1")
            ]
        );
        assert_eq!(
            found[0].source,
            Some(SourcePackage {
                name: "openssl".into(),
                version: None
            })
        );
        assert_eq!(
            found[2].source,
            Some(SourcePackage {
                name: "gcc-12".into(),
                version: Some("12.2.0-14".into())
            })
        );
        assert_eq!(found[0].path, STATUS);
    }

    #[test]
    fn distroless_files_have_no_status() {
        let found = parse(
            "/var/lib/dpkg/status.d/tzdata",
            &mut &b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"[..],
        )
        .expect("parses");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].arch.as_deref(), Some("all"));
        let wants = |path| {
            Dpkg.wants(&FileInfo {
                path,
                size: 1,
                executable: false,
            })
        };
        assert!(wants("/var/lib/dpkg/status.d/libssl3"));
        assert!(!wants("/var/lib/dpkg/status.d/libssl3.md5sums"));
        assert!(!wants("/var/lib/dpkg/status-old"));
        assert!(!wants("/var/lib/dpkg/status.d/a/b"));
    }

    #[test]
    fn absurd_files_are_errors() {
        assert!(matches!(
            parse_str("\u{1}\u{2}garbage\n"),
            Err(CatalogError::Malformed { .. })
        ));
        assert!(matches!(
            parse_str(" continued\n"),
            Err(CatalogError::Malformed { .. })
        ));
        let long = format!("Package: {}\n", "a".repeat(MAX_LINE + 10));
        assert!(matches!(
            parse_str(&long),
            Err(CatalogError::Malformed { .. })
        ));
        assert!(matches!(
            parse_str("Package: x\n\n"),
            Err(CatalogError::Malformed { .. })
        ));
        let not_utf8 = b"Package: \xff\xfe\nVersion: 1\n";
        assert!(parse(STATUS, &mut &not_utf8[..]).is_err());
    }
}
