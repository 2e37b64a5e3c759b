//! Alpine packages: apk's installed database, `/lib/apk/db/installed`.
//!
//! The format (apk-tools' "installed database", the same text as an `APKINDEX`): one stanza per
//! package, one `K:value` line per field with a one-letter key, stanzas separated by one or
//! more blank lines, the last one often not followed by any. `P` is the name, `V` the version,
//! `o` the origin (the source package, which Alpine's advisories name), `A` the
//! architecture; the file list (`F`,
//! `R`, `a`, `M`, `Z`) follows in the same stanza and is skipped.

use std::io::Read;

use super::lines::Lines;
use super::{CatalogError, Cataloguer, FileInfo, Package, PackageType, SourcePackage};

/// The database's bound (its file lists make it a few MiB for a large image).
pub const MAX_FILE: u64 = 256 * 1024 * 1024;
/// A line's bound.
pub const MAX_LINE: usize = 64 * 1024;
/// A stanza's bound.
pub const MAX_STANZA: usize = 64 * 1024 * 1024;
/// Packages in one database (Alpine's main and community hold about 30,000).
pub const MAX_PACKAGES: usize = 200_000;

const INSTALLED: &str = "/lib/apk/db/installed";

/// The apk cataloguer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apk;

impl Cataloguer for Apk {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path == INSTALLED
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
    name: Option<String>,
    version: Option<String>,
    origin: Option<String>,
    arch: Option<String>,
    bytes: usize,
    fields: usize,
}

/// The packages an apk installed database records.
pub fn parse(path: &str, contents: &mut dyn Read) -> Result<Vec<Package>, CatalogError> {
    let mut lines = Lines::new(contents, "apk installed database", MAX_LINE, MAX_FILE);
    let mut packages = Vec::new();
    let mut stanza = Stanza::default();
    loop {
        let Some(line) = lines.next_line()? else {
            finish(path, std::mem::take(&mut stanza), &mut packages, &lines)?;
            break;
        };
        let bytes = line.bytes.strip_suffix(b"\r").unwrap_or(line.bytes);
        if bytes.is_empty() {
            finish(path, std::mem::take(&mut stanza), &mut packages, &lines)?;
            if packages.len() > MAX_PACKAGES {
                return Err(CatalogError::TooLarge {
                    what: "apk installed database",
                    limit: MAX_FILE,
                });
            }
            continue;
        }
        stanza.bytes += bytes.len() + 1;
        if stanza.bytes > MAX_STANZA {
            return Err(line.malformed(format!("a stanza longer than {MAX_STANZA} bytes")));
        }
        if bytes.len() < 2 || bytes[1] != b':' || !bytes[0].is_ascii_alphanumeric() {
            return Err(line.malformed("not a `K:value` line"));
        }
        stanza.fields += 1;
        let slot = match bytes[0] {
            b'P' => &mut stanza.name,
            b'V' => &mut stanza.version,
            b'o' => &mut stanza.origin,
            b'A' => &mut stanza.arch,
            _ => continue,
        };
        let value = std::str::from_utf8(&bytes[2..])
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
    let (Some(name), Some(version)) = (stanza.name, stanza.version) else {
        return Err(lines.malformed("a package without P or V"));
    };
    if name.is_empty() || version.is_empty() {
        return Err(lines.malformed("an empty P or V"));
    }
    let source = stanza
        .origin
        .filter(|o| !o.is_empty())
        .map(|name| SourcePackage {
            name,
            version: None,
        });
    packages.push(Package {
        kind: PackageType::Apk,
        name,
        version,
        source,
        arch: stanza.arch.filter(|a| !a.is_empty()),
        path: path.to_owned(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        let parse_str = |text: &str| parse(INSTALLED, &mut text.as_bytes());
        assert!(parse_str("P:musl\nthis is not apk\n").is_err());
        assert!(parse_str("V:1.0\n\n").is_err());
        let long = format!("P:{}\n", "x".repeat(MAX_LINE + 1));
        assert!(parse_str(&long).is_err());
        assert!(parse_str("\n\n\n").expect("empty is fine").is_empty());
    }
}
