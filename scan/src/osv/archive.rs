//! OSV records where they are published: OSV's per-ecosystem `all.zip` (one JSON record per
//! entry), a directory of `.json` records (a mirror kept as files), or a single record.
//!
//! [`Records::open`] looks at what a path holds and [`Records`] yields its entries one at a
//! time, each parsed and checked by [`Record::from_json`]; an entry that is not a valid record
//! is an [`Entry`] with an error, so the caller can count it and go on. Memory stays bounded by
//! one record ([`MAX_RECORD_BYTES`]) plus the names of the entries: a zip is read through the
//! bounded reader of [`crate::inventory::lang::zip`], from the file itself, never whole.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{MAX_RECORD_BYTES, OsvError, Record};
use crate::inventory::lang::spool::Spool;
use crate::inventory::lang::zip::{self, Directory, ZipError};

/// The most records a directory may hold (as many as a zip may: [`zip::MAX_ENTRIES`]).
pub const MAX_FILES: u64 = zip::MAX_ENTRIES;

/// How deep a directory of records is walked.
pub const MAX_DEPTH: usize = 8;

/// Why a path cannot be read as records at all.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The path could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file starts like a zip archive but is not a readable one.
    #[error("{path} is not a readable zip archive: {source}")]
    Zip {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        source: ZipError,
    },
    /// A directory holds more than [`MAX_FILES`] files.
    #[error("{0} holds more than {MAX_FILES} files")]
    TooManyFiles(PathBuf),
}

/// Why one entry is not a record.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry could not be read from the archive.
    #[error(transparent)]
    Zip(#[from] ZipError),
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The entry is larger than a record may be.
    #[error("larger than {MAX_RECORD_BYTES} bytes")]
    TooLarge,
    /// The JSON is not a valid OSV record.
    #[error(transparent)]
    Osv(#[from] OsvError),
}

/// One entry: its name (in the archive, or the path under the directory) and the record, or
/// why there is none.
#[derive(Debug)]
pub struct Entry {
    /// The entry's name.
    pub name: String,
    /// The record and its JSON text, or what is wrong with it.
    pub record: Result<(Record, String), EntryError>,
}

/// The records of a path, one entry at a time.
#[derive(Debug)]
pub struct Records(Inner);

#[derive(Debug)]
enum Inner {
    Zip {
        spool: Spool,
        directory: Directory,
        entries: std::vec::IntoIter<zip::Entry>,
    },
    Files {
        root: PathBuf,
        files: std::vec::IntoIter<PathBuf>,
    },
}

impl Records {
    /// Opens `path`: a directory is walked for `*.json` files (symbolic links are not
    /// followed), a file starting with a zip signature is read as an archive of records (its
    /// `*.json` entries), any other file is one record.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, 0, &mut files).map_err(|e| match e {
                Walk::Io(source) => ArchiveError::Io {
                    path: path.to_owned(),
                    source,
                },
                Walk::TooMany => ArchiveError::TooManyFiles(path.to_owned()),
            })?;
            files.sort();
            return Ok(Self(Inner::Files {
                root: path.to_owned(),
                files: files.into_iter(),
            }));
        }
        let mut file = File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        let read = file.read(&mut magic).map_err(io)?;
        if read == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
            let mut spool = Spool::from_file(file).map_err(io)?;
            let zip = |source| ArchiveError::Zip {
                path: path.to_owned(),
                source,
            };
            let directory = Directory::find(&mut spool).map_err(zip)?;
            let entries = directory
                .entries(&mut spool, |name| name.ends_with(".json"))
                .map_err(zip)?;
            return Ok(Self(Inner::Zip {
                spool,
                directory,
                entries: entries.into_iter(),
            }));
        }
        let root = path.parent().unwrap_or(Path::new("")).to_owned();
        Ok(Self(Inner::Files {
            root,
            files: vec![path.to_owned()].into_iter(),
        }))
    }
}

impl Iterator for Records {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        match &mut self.0 {
            Inner::Zip {
                spool,
                directory,
                entries,
            } => {
                let entry = entries.next()?;
                let record = directory
                    .read(spool, &entry, MAX_RECORD_BYTES as u64)
                    .map_err(|e| match e {
                        ZipError::TooLarge(_) => EntryError::TooLarge,
                        e => EntryError::Zip(e),
                    })
                    .and_then(parse);
                Some(Entry {
                    name: entry.name,
                    record,
                })
            }
            Inner::Files { root, files } => {
                let path = files.next()?;
                let name = path
                    .strip_prefix(&*root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                Some(Entry {
                    name,
                    record: read_file(&path).and_then(parse),
                })
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, EntryError> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(EntryError::TooLarge);
    }
    Ok(bytes)
}

fn parse(bytes: Vec<u8>) -> Result<(Record, String), EntryError> {
    let record = Record::from_json(&bytes)?;
    // JSON that parsed is UTF-8, but the text is checked rather than assumed.
    let text = String::from_utf8(bytes)
        .map_err(|e| OsvError::Json(serde::de::Error::custom(format!("not UTF-8: {e}"))))?;
    Ok((record, text))
}

enum Walk {
    Io(io::Error),
    TooMany,
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), Walk> {
    for entry in std::fs::read_dir(dir).map_err(Walk::Io)? {
        let entry = entry.map_err(Walk::Io)?;
        let kind = entry.file_type().map_err(Walk::Io)?;
        let path = entry.path();
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(&path, depth + 1, files)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
            if files.len() as u64 >= MAX_FILES {
                return Err(Walk::TooMany);
            }
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSA: &[u8] = include_bytes!("../../tests/data/osv/DSA-5218-1.json");
    const BROKEN: &[u8] = include_bytes!("../../tests/data/osv/malformed-event.json");

    fn names_and_ids(records: Records) -> Vec<(String, Result<String, String>)> {
        records
            .map(|e| {
                (
                    e.name,
                    e.record.map(|(r, _)| r.id).map_err(|e| e.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn a_zip_yields_its_json_entries_and_flags_the_malformed_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("all.zip");
        let bytes = zip::build(&[
            ("DSA-5218-1.json", DSA, true),
            ("README.txt", b"not a record", false),
            ("BROKEN-1.json", BROKEN, false),
        ]);
        std::fs::write(&path, bytes).expect("write");
        let got = names_and_ids(Records::open(&path).expect("open"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("DSA-5218-1.json".into(), Ok("DSA-5218-1".into())));
        assert_eq!(got[1].0, "BROKEN-1.json");
        assert!(got[1].1.is_err());
    }

    #[test]
    fn a_directory_is_walked_in_name_order_and_a_file_is_one_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("Debian")).expect("mkdir");
        std::fs::write(dir.path().join("Debian/DSA-5218-1.json"), DSA).expect("write");
        std::fs::write(dir.path().join("BROKEN-1.json"), BROKEN).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let got = names_and_ids(Records::open(dir.path()).expect("open"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "BROKEN-1.json");
        assert_eq!(
            got[1],
            ("Debian/DSA-5218-1.json".into(), Ok("DSA-5218-1".into()))
        );
        let one = Records::open(&dir.path().join("Debian/DSA-5218-1.json")).expect("open");
        assert_eq!(
            names_and_ids(one),
            vec![("DSA-5218-1.json".into(), Ok("DSA-5218-1".into()))]
        );
    }

    #[test]
    fn a_damaged_zip_is_an_error_and_an_oversized_entry_is_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("all.zip");
        let mut bytes = zip::build(&[("DSA-5218-1.json", DSA, true)]);
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            Records::open(&path),
            Err(ArchiveError::Zip { .. })
        ));
        let big = vec![b' '; MAX_RECORD_BYTES + 1];
        std::fs::write(&path, zip::build(&[("BIG.json", &big, true)])).expect("write");
        let got: Vec<Entry> = Records::open(&path).expect("open").collect();
        assert!(matches!(got[0].record, Err(EntryError::TooLarge)));
    }
}
