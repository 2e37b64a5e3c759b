//! Python distributions: `*.dist-info/METADATA` (wheels, pip) and `*.egg-info/PKG-INFO` (or an
//! `*.egg-info` file, as distutils wrote it), in the core metadata format: RFC 822 style headers
//! (`Name:`, `Version:`), a blank line, then the description, which is not read.
//!
//! Names are reported as the distribution wrote them (`PyYAML`, `zope.interface`), for people to
//! read. PyPI treats names that differ only in case and in runs of `-`, `_` and `.` as the same
//! project (PEP 503); whoever matches these packages against advisories compares
//! [`normalize_name`] of both sides. Versions are reported as written; PEP 440 normalisation is
//! the version comparison's business.

use std::io::{BufRead, BufReader, Read};

use crate::inventory::{CatalogError, Cataloguer, FileInfo, Package, PackageType};

use super::{file_name, malformed};

/// The most of a metadata file read: its headers (the description after them is not read, and
/// the headers of real distributions are a few KiB).
pub const HEADER_LIMIT: u64 = 1 << 20;
const WHAT: &str = "Python package metadata";

/// Reads Python distribution metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct Distributions;

impl Cataloguer for Distributions {
    fn name(&self) -> &'static str {
        "python-metadata"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        let parent = |suffix: &str| {
            file.path
                .rsplit('/')
                .nth(1)
                .is_some_and(|dir| dir.len() > suffix.len() && dir.ends_with(suffix))
        };
        match file_name(file.path) {
            "METADATA" => parent(".dist-info"),
            "PKG-INFO" => parent(".egg-info"),
            name => name.len() > ".egg-info".len() && name.ends_with(".egg-info"),
        }
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        let mut reader = BufReader::new(contents.take(HEADER_LIMIT));
        let (mut name, mut version) = (None, None);
        let mut line = Vec::new();
        let mut read = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            read += n as u64;
            if n == 0 {
                if read >= HEADER_LIMIT {
                    return Err(CatalogError::TooLarge {
                        what: WHAT,
                        limit: HEADER_LIMIT,
                    });
                }
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                break; // the end of the headers
            }
            if text.starts_with([' ', '\t']) {
                continue; // a continuation of the previous header
            }
            let Some((key, value)) = text.split_once(':') else {
                return Err(malformed(WHAT, "a header line without a colon"));
            };
            let value = value.trim();
            if key.eq_ignore_ascii_case("name") && name.is_none() {
                name = Some(value.to_owned());
            } else if key.eq_ignore_ascii_case("version") && version.is_none() {
                version = Some(value.to_owned());
            }
        }
        match (name, version) {
            (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
                Ok(vec![Package {
                    kind: PackageType::Pypi,
                    name,
                    version,
                    source: None,
                    arch: None,
                    path: file.path.to_owned(),
                }])
            }
            _ => Err(malformed(WHAT, "no Name and Version headers")),
        }
    }
}

/// A distribution name as PyPI compares names (PEP 503): lower case, with every run of `-`, `_`
/// and `.` made one `-`. `Zope.Interface` and `zope_interface` are both `zope-interface`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, text: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let file = FileInfo {
            path,
            size: text.len() as u64,
            executable: false,
        };
        assert!(Distributions.wants(&file), "{path}");
        Distributions.catalog(&file, &mut &text[..])
    }

    /// The head of a wheel's METADATA (core metadata 2.1), as pip installs it.
    const METADATA: &str = "Metadata-Version: 2.1\r\n\
        Name: PyYAML\r\n\
        Version: 6.0\r\n\
        Summary: YAML parser and emitter for Python\r\n\
        Classifier: Development Status :: 5 - Production/Stable\r\n\
        License: MIT\r\n\
        Description-Content-Type: text/markdown\r\n\
        \r\n\
        Name: not-a-header\r\n\
        YAML is a data serialization format designed for human readability.\r\n";

    /// An egg-info PKG-INFO (core metadata 1.1) with a folded header.
    const PKG_INFO: &str = "Metadata-Version: 1.1\n\
        Name: zope.interface\n\
        Version: 5.5.2\n\
        Summary: Interfaces for Python\n\
        Description: Zope interfaces\n        continued here: with a colon\n\
        Platform: UNKNOWN\n";

    #[test]
    fn reads_dist_info_and_egg_info() {
        let p = run(
            "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
            METADATA.as_bytes(),
        )
        .expect("dist-info");
        assert_eq!(
            (p[0].kind, p[0].name.as_str(), p[0].version.as_str()),
            (PackageType::Pypi, "PyYAML", "6.0")
        );
        for path in [
            "/usr/lib/python3/site-packages/zope.interface-5.5.2-py3.11.egg-info/PKG-INFO",
            "/usr/lib/python3/dist-packages/zope.interface-5.5.2.egg-info",
        ] {
            let p = run(path, PKG_INFO.as_bytes()).expect("egg-info");
            assert_eq!(
                (p[0].name.as_str(), p[0].version.as_str()),
                ("zope.interface", "5.5.2")
            );
            assert_eq!(p[0].path, path);
        }
    }

    #[test]
    fn only_metadata_files_are_wanted() {
        for (path, wanted) in [
            ("/x/a-1.dist-info/METADATA", true),
            ("/x/a-1.dist-info/RECORD", false),
            ("/x/.dist-info/METADATA", false),
            ("/x/METADATA", false),
            ("/x/a.egg-info/PKG-INFO", true),
            ("/x/a-1.tar.gz/PKG-INFO", false),
            ("/x/a.egg-info", true),
            ("/x/.egg-info", false),
        ] {
            let file = FileInfo {
                path,
                size: 1,
                executable: false,
            };
            assert_eq!(Distributions.wants(&file), wanted, "{path}");
        }
    }

    #[test]
    fn reads_this_machines_distributions() {
        // Real files, as Debian's python3 packages and pip installed them, compared to the name
        // and version in their folder names (`PyYAML-6.0.dist-info`).
        let mut checked = 0;
        for dir in ["/usr/lib/python3/dist-packages"] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let folder = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = folder.strip_suffix(".dist-info") else {
                    continue;
                };
                let path = entry.path().join("METADATA");
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let p = run(&path.to_string_lossy(), &bytes).expect("real METADATA");
                let (name, version) = stem.rsplit_once('-').expect("name-version");
                assert_eq!(normalize_name(&p[0].name), normalize_name(name), "{folder}");
                assert_eq!(p[0].version, version, "{folder}");
                checked += 1;
            }
        }
        if checked == 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: no Python distributions on this machine to read"
            );
        }
    }

    #[test]
    fn names_normalise_per_pep_503() {
        for (name, normal) in [
            ("PyYAML", "pyyaml"),
            ("zope.interface", "zope-interface"),
            ("Zope_Interface", "zope-interface"),
            ("a-_.-b", "a-b"),
            ("requests", "requests"),
        ] {
            assert_eq!(normalize_name(name), normal);
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let path = "/x/a.dist-info/METADATA";
        assert!(run(path, b"").is_err());
        assert!(run(path, b"Name: a\n").is_err());
        assert!(run(path, b"no colon here\n").is_err());
        assert!(run(path, b"\xff\xfe\x00\x01").is_err());
        assert!(run(path, b"Name: \nVersion: 1\n").is_err());
        for cut in 0..METADATA.len() {
            let _ = run(path, &METADATA.as_bytes()[..cut]);
        }
        // Endless headers stop at the bound, without reading the rest.
        let endless = "X-Header: value\n".repeat((HEADER_LIMIT as usize / 16) + 10);
        assert!(matches!(
            run(path, endless.as_bytes()),
            Err(CatalogError::TooLarge { .. })
        ));
        // A line without an end is bounded too.
        let long_line = vec![b'a'; HEADER_LIMIT as usize + 10];
        assert!(run(path, &long_line).is_err());
    }
}
