//! Java archives: the Maven coordinates in `META-INF/maven/<group>/<artifact>/pom.properties`
//! inside `*.jar`, `*.war` and `*.ear` files, and inside the archives they carry one level down
//! (`WEB-INF/lib/*.jar` of a war, `BOOT-INF/lib/*.jar` of a Spring Boot jar, the modules of an
//! ear).
//!
//! A package is named `group:artifact`, the form OSV's Maven ecosystem uses. A shaded jar carries
//! the `pom.properties` of everything shaded into it, and each is reported. Packages found in a
//! nested archive are reported at the path of the outer archive, the file in the image. Archives
//! without Maven metadata (built without Maven, or stripped) are not identified from their file
//! names: a guess would raise false alarms.
//!
//! Bounds, against zip bombs: the archive's size, the entries read from its directory, the size
//! of each `pom.properties`, the number and inflated size of nested archives, and one level of
//! nesting.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use crate::inventory::{CatalogError, Cataloguer, FileInfo, Package, PackageType};

use super::spool::{MEMORY_LIMIT, Spool};
use super::zip::{Directory, Entry, ZipError};
use super::{file_name, malformed};

/// The largest archive read.
pub const LIMIT: u64 = 256 << 20;
/// The largest `pom.properties` read (real ones are a few hundred bytes).
const PROPERTIES_LIMIT: u64 = 64 << 10;
/// The most `pom.properties` read from one archive.
const MAX_PROPERTIES: usize = 10_000;
/// The most nested archives read from one archive.
const MAX_NESTED: usize = 2_000;
/// The largest nested archive, inflated.
const NESTED_LIMIT: u64 = 128 << 20;
/// The most bytes inflated from all nested archives of one archive together.
const NESTED_TOTAL_LIMIT: u64 = 1 << 30;
const WHAT: &str = "Java archive";

/// Reads Java archives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Archives;

impl Cataloguer for Archives {
    fn name(&self) -> &'static str {
        "java-archive"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        is_archive(file_name(file.path))
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        let mut spool = Spool::fill(WHAT, file.size, contents, LIMIT)?;
        let mut found = Found {
            path: file.path,
            seen: BTreeSet::new(),
            packages: Vec::new(),
        };
        read_archive(&mut spool, true, &mut found).map_err(|e| match e {
            ZipError::Malformed(reason) => malformed(WHAT, reason),
            ZipError::TooLarge(limit) => CatalogError::TooLarge { what: WHAT, limit },
            ZipError::Io(e) => CatalogError::Io(e),
        })?;
        Ok(found.packages)
    }
}

fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jar", ".war", ".ear"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Whether `name` is `META-INF/maven/<group>/<artifact>/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(
        parts.as_slice(),
        ["META-INF", "maven", group, artifact, "pom.properties"]
            if !group.is_empty() && !artifact.is_empty()
    )
}

struct Found<'a> {
    path: &'a str,
    seen: BTreeSet<(String, String)>,
    packages: Vec<Package>,
}

/// Reads the packages of one archive; with `nest`, also of the archives inside it. A nested
/// archive that cannot be read is skipped: the outer one is still what it is.
fn read_archive(spool: &mut Spool, nest: bool, found: &mut Found<'_>) -> Result<(), ZipError> {
    let directory = Directory::find(spool)?;
    let mut poms = 0usize;
    let mut nested = 0usize;
    let entries = directory.entries(spool, |name| {
        if is_pom_properties(name) && poms < MAX_PROPERTIES {
            poms += 1;
            true
        } else if nest && !name.ends_with('/') && is_archive(name) && nested < MAX_NESTED {
            nested += 1;
            true
        } else {
            false
        }
    })?;
    let (poms, archives): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| is_pom_properties(&e.name));
    for entry in &poms {
        let bytes = match directory.read(spool, entry, PROPERTIES_LIMIT) {
            Ok(bytes) => bytes,
            Err(ZipError::Io(e)) => return Err(ZipError::Io(e)),
            Err(_) => continue,
        };
        let properties = parse_properties(&String::from_utf8_lossy(&bytes));
        let field = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        if let (Some(group), Some(artifact), Some(version)) =
            (field("groupId"), field("artifactId"), field("version"))
        {
            let name = format!("{group}:{artifact}");
            if found.seen.insert((name.clone(), version.to_owned())) {
                found.packages.push(Package {
                    kind: PackageType::Maven,
                    name,
                    version: version.to_owned(),
                    source: None,
                    arch: None,
                    path: found.path.to_owned(),
                });
            }
        }
    }
    // Counted whether or not an entry turns out readable: a thousand entries that each inflate
    // to just past their bound cost as much as readable ones.
    let mut inflated = 0u64;
    for entry in &archives {
        let budget = NESTED_LIMIT.min(NESTED_TOTAL_LIMIT.saturating_sub(inflated));
        if budget == 0 {
            break;
        }
        if entry.size > budget {
            continue;
        }
        let in_memory = entry.size <= MEMORY_LIMIT;
        let mut buf = Vec::new();
        let mut file = if in_memory {
            None
        } else {
            Some(tempfile::tempfile()?)
        };
        let mut counted = Counted {
            inner: match &mut file {
                Some(f) => f,
                None => &mut buf,
            },
            written: 0,
        };
        let limit = if in_memory {
            budget.min(MEMORY_LIMIT)
        } else {
            budget
        };
        let copied = directory.copy(spool, entry, limit, &mut counted);
        inflated += counted.written;
        match copied {
            Ok(_) => {}
            Err(ZipError::Io(e)) => return Err(ZipError::Io(e)),
            Err(_) => continue,
        }
        let mut inner = match file {
            Some(file) => Spool::from_file(file)?,
            None => Spool::from_vec(buf),
        };
        // One level: archives inside nested archives are not opened.
        let _ = read_archive(&mut inner, false, found);
    }
    Ok(())
}

/// A writer that counts what passes through it.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The `key=value` pairs of a Java properties file (`java.util.Properties.load`): `#` and `!`
/// start comments, `=`, `:` or white space separate key and value, a backslash escapes the next
/// character. Line continuations do not occur in `pom.properties` and are not joined.
fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let mut key = String::new();
        let mut chars = line.chars();
        let mut escaped = false;
        for c in chars.by_ref() {
            if escaped {
                key.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if matches!(c, '=' | ':' | ' ' | '\t') {
                break;
            } else {
                key.push(c);
            }
        }
        let rest = chars.as_str().trim_start();
        let rest = rest
            .strip_prefix(['=', ':'])
            .map_or(rest, str::trim_start)
            .trim_end();
        out.push((key, rest.replace("\\:", ":").replace("\\=", "=")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::zip;
    use super::*;

    fn run(path: &str, bytes: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let file = FileInfo {
            path,
            size: bytes.len() as u64,
            executable: false,
        };
        assert!(Archives.wants(&file), "{path}");
        Archives.catalog(&file, &mut &bytes[..])
    }

    fn pairs(packages: &[Package]) -> Vec<(&str, &str)> {
        packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    /// As the Maven archiver writes it.
    fn pom(group: &str, artifact: &str, version: &str) -> String {
        format!(
            "#Generated by Maven\n#Tue Dec 14 12:00:00 UTC 2021\n\
             artifactId={artifact}\ngroupId={group}\nversion={version}\n"
        )
    }

    fn jar(group: &str, artifact: &str, version: &str) -> Vec<u8> {
        let props = pom(group, artifact, version);
        zip::build(&[
            ("META-INF/", b"", false),
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\r\n\r\n",
                true,
            ),
            (
                &format!("META-INF/maven/{group}/{artifact}/pom.properties"),
                props.as_bytes(),
                true,
            ),
            (
                &format!("META-INF/maven/{group}/{artifact}/pom.xml"),
                b"<project/>",
                true,
            ),
            ("org/example/Main.class", b"\xca\xfe\xba\xbe", true),
        ])
    }

    #[test]
    fn reads_pom_properties() {
        let bytes = jar("org.apache.logging.log4j", "log4j-core", "2.14.1");
        let packages = run("/app/lib/log4j-core-2.14.1.jar", &bytes).expect("jar");
        assert_eq!(
            pairs(&packages),
            [("org.apache.logging.log4j:log4j-core", "2.14.1")]
        );
        assert_eq!(packages[0].kind, PackageType::Maven);
        assert_eq!(packages[0].path, "/app/lib/log4j-core-2.14.1.jar");
    }

    #[test]
    fn reads_archives_nested_one_level_deep() {
        let log4j = jar("org.apache.logging.log4j", "log4j-core", "2.14.1");
        let inner = jar("com.example", "inner", "1.0");
        // A jar inside a nested jar: not opened.
        let deeper = zip::build(&[("WEB-INF/lib/inner.jar", &inner, false)]);
        let app_pom = pom("com.example", "shop", "3.1.0");
        let war = zip::build(&[
            (
                "META-INF/maven/com.example/shop/pom.properties",
                app_pom.as_bytes(),
                true,
            ),
            ("WEB-INF/lib/log4j-core-2.14.1.jar", &log4j, false),
            ("WEB-INF/lib/deeper.jar", &deeper, true),
            ("WEB-INF/lib/broken.jar", b"not a zip", false),
        ]);
        let packages = run("/srv/shop.war", &war).expect("war");
        assert_eq!(
            pairs(&packages),
            [
                ("com.example:shop", "3.1.0"),
                ("org.apache.logging.log4j:log4j-core", "2.14.1")
            ]
        );
        assert!(packages.iter().all(|p| p.path == "/srv/shop.war"));
    }

    #[test]
    fn reads_properties_files() {
        let props = parse_properties(
            "# comment\n! also\n  groupId = org.example \nartifactId:a\\:b\nversion\t1.0\n\n",
        );
        assert_eq!(
            props,
            [
                ("groupId", "org.example"),
                ("artifactId", "a:b"),
                ("version", "1.0")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn only_java_archives_are_wanted() {
        for (path, wanted) in [
            ("/a/b.jar", true),
            ("/a/B.JAR", true),
            ("/a/b.war", true),
            ("/a/b.ear", true),
            ("/a/.jar", false),
            ("/a/b.jar.sha1", false),
            ("/a/b.zip", false),
        ] {
            let file = FileInfo {
                path,
                size: 1,
                executable: false,
            };
            assert_eq!(Archives.wants(&file), wanted, "{path}");
        }
    }

    #[test]
    fn a_pom_properties_bomb_is_skipped_and_the_rest_read() {
        let huge = vec![b'#'; (PROPERTIES_LIMIT as usize) * 16];
        let good = pom("g", "a", "1");
        let bytes = zip::build(&[
            ("META-INF/maven/x/y/pom.properties", &huge, true),
            ("META-INF/maven/g/a/pom.properties", good.as_bytes(), true),
        ]);
        assert_eq!(pairs(&run("/x.jar", &bytes).expect("jar")), [("g:a", "1")]);
    }

    #[test]
    fn a_nested_archive_bomb_is_skipped_and_the_rest_read() {
        // A "jar" of 64 MiB of zeros whose directory entry claims one byte.
        let zeros = vec![0u8; 64 << 20];
        let good = jar("g", "a", "1");
        let mut war = zip::build(&[
            ("WEB-INF/lib/bomb.jar", &zeros, true),
            ("WEB-INF/lib/good.jar", &good, true),
        ]);
        let len = war.len();
        let cd = u32::from_le_bytes(war[len - 6..len - 2].try_into().expect("4 bytes")) as usize;
        war[cd + 24..cd + 28].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(pairs(&run("/x.war", &war).expect("war")), [("g:a", "1")]);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(matches!(
            run("/x.jar", b"PK\x03\x04 but nothing else"),
            Err(CatalogError::Malformed { .. })
        ));
        assert!(run("/x.jar", b"").is_err());
        let bytes = jar("g", "a", "1");
        for cut in 0..bytes.len() {
            let _ = run("/x.jar", &bytes[..cut]);
        }
        let file = FileInfo {
            path: "/x.jar",
            size: LIMIT + 1,
            executable: false,
        };
        assert!(matches!(
            Archives.catalog(&file, &mut std::io::repeat(0)),
            Err(CatalogError::TooLarge { .. })
        ));
    }
}
