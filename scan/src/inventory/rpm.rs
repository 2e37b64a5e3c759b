//! RHEL, Fedora, Rocky and Alma packages: the rpm database.
//!
//! rpm 4.16 and later (RHEL 9, Fedora 33+, Rocky and Alma 9) keep it in SQLite,
//! `/var/lib/rpm/rpmdb.sqlite`, table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`, one
//! package header per row. rpm keeps the file in WAL mode and checkpoints it when it closes
//! the database, so the image's `rpmdb.sqlite` alone is complete once dnf or rpm exited (a
//! `-wal` file left beside it is not read). The file is spooled to a private temporary file
//! and opened read-only and immutable through sqlx (the only SQLite the workspace builds; its
//! C API is unsafe and this workspace forbids `unsafe`). A database file is hostile input too: the
//! table must be a plain table (not a view, nor virtual, nor with generated columns), rows
//! are counted, and a header over [`MAX_HEADER`] is not fetched.
//!
//! Older databases, BerkeleyDB (`/var/lib/rpm/Packages`: RHEL 8, CentOS 7) and NDB
//! (`Packages.db`: SUSE), are not read: no well-kept crate reads either. They are reported as
//! an error ([`RpmLegacy`]), so an image is never shown as free of packages it has.
//!
//! The header format (rpm's `headerImport`, all big-endian): the count of index entries `il`,
//! the length of the data `dl`, `il` entries of (tag, type, offset, count), then `dl` bytes of
//! data; every offset is checked against `dl`.

use std::io::{self, Read};
use std::path::Path;

use super::{CatalogError, Cataloguer, FileInfo, Package, PackageType, SourcePackage};

/// The largest database file read.
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// The largest header read (rpm's own limit on a header's data is 256 MiB; real ones, file
/// lists included, are well under 1 MiB).
pub const MAX_HEADER: usize = 16 * 1024 * 1024;
/// Rows read from one database.
pub const MAX_PACKAGES: usize = 200_000;

const SQLITE: &str = "/var/lib/rpm/rpmdb.sqlite";
const LEGACY: [&str; 2] = ["/var/lib/rpm/Packages", "/var/lib/rpm/Packages.db"];
/// Fedora's and RHEL 9's newer location; `/var/lib/rpm` is a link to it.
const SQLITE_USR: &str = "/usr/lib/sysimage/rpm/rpmdb.sqlite";

/// The SQLite rpm database cataloguer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpmSqlite;

impl Cataloguer for RpmSqlite {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.path == SQLITE || file.path == SQLITE_USR
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        if file.size > MAX_FILE {
            return Err(CatalogError::TooLarge {
                what: "rpm database",
                limit: MAX_FILE,
            });
        }
        let spool = tempfile::NamedTempFile::new()?;
        let copied = io::copy(&mut contents.take(MAX_FILE + 1), &mut spool.as_file())?;
        if copied > MAX_FILE {
            return Err(CatalogError::TooLarge {
                what: "rpm database",
                limit: MAX_FILE,
            });
        }
        let headers = read_sqlite(spool.path())?;
        let mut packages = Vec::new();
        for (hnum, blob) in headers {
            let blob = blob.ok_or_else(|| malformed(format!("header {hnum} is too large")))?;
            let header =
                Header::parse(&blob).map_err(|e| malformed(format!("header {hnum}: {e}")))?;
            if let Some(package) = header
                .package(file.path)
                .map_err(|e| malformed(format!("header {hnum}: {e}")))?
            {
                packages.push(package);
            }
        }
        Ok(packages)
    }
}

/// Older rpm databases, reported as not read (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct RpmLegacy;

impl Cataloguer for RpmLegacy {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        LEGACY.contains(&file.path)
    }

    fn catalog(&self, _: &FileInfo<'_>, _: &mut dyn Read) -> Result<Vec<Package>, CatalogError> {
        Err(malformed(
            "BerkeleyDB and NDB rpm databases are not read (only rpm's SQLite database)".into(),
        ))
    }
}

fn malformed(reason: String) -> CatalogError {
    CatalogError::Malformed {
        what: "rpm database",
        reason,
    }
}

/// One row of `Packages`: `hnum`, and the blob unless it is over [`MAX_HEADER`].
type Row = (i64, Option<Vec<u8>>);

/// Every row of `Packages`.
fn read_sqlite(path: &Path) -> Result<Vec<Row>, CatalogError> {
    let path = path.to_owned();
    // A thread of its own with its own small runtime: the walker is synchronous and may be
    // called from anywhere, inside another runtime's blocking thread included.
    let reader = std::thread::Builder::new()
        .name("rpmdb-sqlite".into())
        .spawn(move || -> Result<Vec<Row>, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(query(&path))
        })?;
    reader
        .join()
        .map_err(|_| malformed("the SQLite reader panicked".into()))?
        .map_err(malformed)
}

async fn query(path: &Path) -> Result<Vec<Row>, String> {
    use futures_util::TryStreamExt;
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    let sqlite = |e: sqlx::Error| format!("SQLite: {e}");
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(sqlite)?;
    let table: Option<(String, String)> =
        sqlx::query_as("SELECT type, sql FROM sqlite_master WHERE name = 'Packages'")
            .fetch_optional(&mut conn)
            .await
            .map_err(sqlite)?;
    let plain_table = table.is_some_and(|(kind, sql)| {
        kind == "table"
            && sql
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("CREATE TABLE")
    });
    if !plain_table {
        return Err("no Packages table".into());
    }
    let columns: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, hidden FROM pragma_table_xinfo('Packages')")
            .fetch_all(&mut conn)
            .await
            .map_err(sqlite)?;
    for wanted in ["hnum", "blob"] {
        if !columns
            .iter()
            .any(|(name, hidden)| name == wanted && *hidden == 0)
        {
            return Err(format!("Packages has no plain column {wanted}"));
        }
    }
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT hnum, CASE WHEN length(blob) <= ?1 THEN blob END FROM Packages ORDER BY hnum",
    )
    .bind(MAX_HEADER as i64)
    .fetch(&mut conn);
    let mut all = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(sqlite)? {
        if all.len() >= MAX_PACKAGES {
            return Err(format!("more than {MAX_PACKAGES} packages"));
        }
        all.push(row);
    }
    drop(rows);
    conn.close().await.map_err(sqlite)?;
    Ok(all)
}

/// The header tags read.
mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const ARCH: u32 = 1022;
    pub const SOURCERPM: u32 = 1044;
}

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// One rpm header's fields of interest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Header {
    /// `NAME`.
    pub name: Option<String>,
    /// `VERSION`.
    pub version: Option<String>,
    /// `RELEASE`.
    pub release: Option<String>,
    /// `EPOCH`.
    pub epoch: Option<u32>,
    /// `ARCH`.
    pub arch: Option<String>,
    /// `SOURCERPM`: the source package's file name (`openssl-3.0.7-27.el9.src.rpm`).
    pub source_rpm: Option<String>,
}

impl Header {
    /// Parses a header blob (as rpm's SQLite and NDB databases store it: without the 8-byte
    /// magic of a header in a package file). Every length and offset is checked.
    pub fn parse(blob: &[u8]) -> Result<Header, String> {
        let be32 = |at: usize| -> Result<u32, String> {
            blob.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("ends at byte {at}"))
        };
        let il = be32(0)? as usize;
        let dl = be32(4)? as usize;
        if il == 0 || il > 0xffff {
            return Err(format!("{il} index entries"));
        }
        let data_start = 8 + il * 16;
        if blob.len() != data_start + dl {
            return Err(format!(
                "{} bytes where the index promises {}",
                blob.len(),
                data_start + dl
            ));
        }
        let data = &blob[data_start..];
        let mut header = Header::default();
        for i in 0..il {
            let at = 8 + i * 16;
            let (tag, kind, offset, count) = (
                be32(at)?,
                be32(at + 4)?,
                be32(at + 8)? as usize,
                be32(at + 12)?,
            );
            let string = |field: &'static str| -> Result<String, String> {
                if kind != TYPE_STRING && kind != TYPE_I18NSTRING || count == 0 {
                    return Err(format!("{field} is not a string"));
                }
                let rest = data
                    .get(offset..)
                    .ok_or_else(|| format!("{field} is past the data"))?;
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| format!("{field} is not terminated"))?;
                String::from_utf8(rest[..end].to_vec()).map_err(|_| format!("{field} is not UTF-8"))
            };
            match tag {
                tag::NAME => header.name = Some(string("NAME")?),
                tag::VERSION => header.version = Some(string("VERSION")?),
                tag::RELEASE => header.release = Some(string("RELEASE")?),
                tag::ARCH => header.arch = Some(string("ARCH")?),
                tag::SOURCERPM => header.source_rpm = Some(string("SOURCERPM")?),
                tag::EPOCH => {
                    if kind != TYPE_INT32 || count == 0 || offset % 4 != 0 {
                        return Err("EPOCH is not an int32".into());
                    }
                    let bytes = data
                        .get(offset..offset + 4)
                        .ok_or_else(|| "EPOCH is past the data".to_owned())?;
                    header.epoch =
                        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                }
                _ => {}
            }
        }
        Ok(header)
    }

    /// The package this header describes; `None` for the `gpg-pubkey` entries rpm keeps for
    /// imported signing keys, which are not software.
    pub fn package(&self, path: &str) -> Result<Option<Package>, String> {
        let (Some(name), Some(version), Some(release)) = (&self.name, &self.version, &self.release)
        else {
            return Err("no NAME, VERSION or RELEASE".into());
        };
        if name == "gpg-pubkey" {
            return Ok(None);
        }
        let evr = match self.epoch {
            Some(epoch) => format!("{epoch}:{version}-{release}"),
            None => format!("{version}-{release}"),
        };
        let vr = format!("{version}-{release}");
        let source = self
            .source_rpm
            .as_deref()
            .and_then(parse_source_rpm)
            .map(|(name, v)| SourcePackage {
                name,
                version: (v != vr).then_some(v),
            });
        Ok(Some(Package {
            kind: PackageType::Rpm,
            name: name.clone(),
            version: evr,
            source,
            arch: self.arch.clone().filter(|a| !a.is_empty() && a != "(none)"),
            path: path.to_owned(),
        }))
    }
}

/// `name-version-release.src.rpm` into (`name`, `version-release`).
fn parse_source_rpm(file: &str) -> Option<(String, String)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_owned(), format!("{version}-{release}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            parse_source_rpm("openssl-3.0.7-27.el9.src.rpm"),
            Some(("openssl".into(), "3.0.7-27.el9".into()))
        );
        assert_eq!(
            parse_source_rpm("python-setuptools-53.0.0-12.el9.src.rpm"),
            Some(("python-setuptools".into(), "53.0.0-12.el9".into()))
        );
        assert_eq!(parse_source_rpm("garbage"), None);
        assert_eq!(parse_source_rpm("-1.src.rpm"), None);
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(Header::parse(&[]).is_err());
        assert!(Header::parse(&[0, 0, 0, 1, 0, 0, 0, 0]).is_err());
        // One entry pointing past the data.
        let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 4];
        blob.extend_from_slice(&1000u32.to_be_bytes());
        blob.extend_from_slice(&TYPE_STRING.to_be_bytes());
        blob.extend_from_slice(&100u32.to_be_bytes());
        blob.extend_from_slice(&1u32.to_be_bytes());
        blob.extend_from_slice(b"abc\0");
        assert!(Header::parse(&blob).is_err());
        // The same entry at offset 0 reads "abc"; without its NUL it is refused.
        blob[16..20].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            Header::parse(&blob).expect("valid").name.as_deref(),
            Some("abc")
        );
        let last = blob.len() - 1;
        blob[last] = b'd';
        assert!(Header::parse(&blob).is_err());
        // An index larger than the blob.
        assert!(Header::parse(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
