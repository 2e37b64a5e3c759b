//! The layer walk: every layer streamed once, from the base up, with whiteouts applied.
//!
//! What is kept is one record per catalogued path (what each cataloguer found there, or why it
//! could not), so a later layer can take it away again:
//!
//! - any entry at a path replaces what lower layers and earlier entries of its own layer had
//!   there; an entry that is not a directory also replaces everything under its path (a file
//!   replacing a directory);
//! - a whiteout `.wh.<name>` removes `<name>` and its subtree from the layers *below* its own
//!   (OCI image spec, layer.md "Whiteouts"); entries of its own layer stay, whatever their order;
//! - an opaque whiteout `<dir>/.wh..wh..opq` removes what lower layers had under `<dir>`;
//! - other `.wh..wh.` names (aufs bookkeeping) are ignored, as docker does.
//!
//! Paths are normalised to absolute (`./a/b`, `/a/b` and `a//b/` are `/a/b`); a path with a
//! `..` component is refused, so no tar path ever escapes the image's root. Nothing here
//! touches the host's file system by a tar path: the only files written are temporary files
//! with names of their own (spooling, and the rpm cataloguer's copy of its database).
//!
//! Symbolic links are never followed, so links cannot loop; `/etc/os-release` being a link to
//! `../usr/lib/os-release` (as on Debian) is why `/usr/lib/os-release` is the fallback.
//!
//! Hard links: tar stores a hard link's data once, at the first path. A hard link whose target
//! was catalogued (in its own layer or below) counts at the link's path too: each cataloguer
//! that wants the link's path and read the target contributes the target's packages, with the
//! link's path. A hard link to a file no cataloguer read is recorded as an error for the
//! cataloguers that want the link's path; its data is gone from the stream by then, and
//! keeping every file's bytes in case a link turns up later is not bounded.
//!
//! A file that several cataloguers want is spooled once (see [`super::spool`]) and each reads
//! its copy; a file one cataloguer wants is read straight from the stream.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use super::layer::{self, Compression, Meter};
use super::os_release::{self, OsRelease};
use super::paths::{join, normalise, remove_under, split};
use super::spool::Spool;
use super::tar::{Entry, Kind, TarReader};
use super::{CatalogError, Cataloguer, FileInfo, Package};

/// Bounds of one inventory. Whatever the layers hold, the walk ends with memory bounded by
/// these; the time it takes is bounded by the bytes it must read, and by [`Limits::deadline`]
/// if the caller sets one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Tar entries over all layers; beyond it the walk stops.
    pub max_entries: u64,
    /// A path's length in bytes (Linux's `PATH_MAX` is 4096); longer entries are skipped.
    pub max_path_len: usize,
    /// The largest file offered to a cataloguer (each cataloguer bounds itself below this).
    pub max_file_bytes: u64,
    /// Catalogued files kept; beyond it further files are not read.
    pub max_files: usize,
    /// Packages found over the whole walk; beyond it further files' packages are dropped.
    pub max_packages: usize,
    /// Uncompressed tar bytes over all layers: a gzip or zstd bomb ends here.
    pub max_bytes: u64,
    /// Problems listed; beyond it they are counted in one last entry.
    pub max_errors: usize,
    /// The walk stops when this instant passes.
    pub deadline: Option<Instant>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 4_000_000,
            max_path_len: 4096,
            max_file_bytes: 1024 * 1024 * 1024,
            max_files: 100_000,
            max_packages: 500_000,
            max_bytes: 256 * 1024 * 1024 * 1024,
            max_errors: 1000,
            deadline: None,
        }
    }
}

/// A problem met during the walk. The walk goes on past problems with one file; a problem
/// with a layer (corrupt, truncated, a bound reached) ends that layer, and a bound ends the
/// walk, so later layers are not read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct InventoryError {
    /// The layer, counted from the base at 0.
    pub layer: usize,
    /// The file, when the problem is one file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What went wrong, for the operator.
    pub message: String,
}

/// The packages of an image and its operating system.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    /// From `/etc/os-release`, else `/usr/lib/os-release`.
    pub os: Option<OsRelease>,
    /// Sorted by type, name, version and path; no duplicates.
    pub packages: Vec<Package>,
    /// Sorted; no duplicates; beyond [`Limits::max_errors`], a last entry counts the rest.
    /// Empty when every layer and every wanted file was read.
    pub errors: Vec<InventoryError>,
}

impl Inventory {
    /// Walks `layers`, `(media type, blob)` in order from the base, with `cataloguers`.
    pub fn from_layers<I, M, R>(
        layers: I,
        cataloguers: &[Box<dyn Cataloguer>],
        limits: Limits,
    ) -> Inventory
    where
        I: IntoIterator<Item = (M, R)>,
        M: AsRef<str>,
        R: Read,
    {
        let mut walker = Walker::new(cataloguers, limits);
        for (media_type, blob) in layers {
            walker.add_layer(media_type.as_ref(), blob);
        }
        walker.finish()
    }
}

/// One catalogued path.
#[derive(Debug)]
struct Record {
    layer: usize,
    size: u64,
    os: Option<Result<OsRelease, String>>,
    /// Per cataloguer (by index): its packages, or why it has none.
    found: Vec<(usize, Result<Vec<Package>, String>)>,
}

/// A layer walk in steps, for callers that open each blob only when its turn comes.
pub struct Walker<'c> {
    cataloguers: &'c [Box<dyn Cataloguer>],
    limits: Limits,
    /// What the layers walked so far left, by path.
    lower: BTreeMap<String, Record>,
    errors: Vec<InventoryError>,
    /// Problems beyond [`Limits::max_errors`], counted.
    unlisted: u64,
    layer: usize,
    entries: u64,
    packages: usize,
    meter: Arc<Meter>,
    /// Why the walk stopped early, once a bound is reached.
    stopped: bool,
}

impl<'c> Walker<'c> {
    /// A walk with `cataloguers` and `limits`.
    pub fn new(cataloguers: &'c [Box<dyn Cataloguer>], limits: Limits) -> Self {
        let meter = Arc::new(Meter::new(limits.max_bytes, limits.deadline));
        Walker {
            cataloguers,
            limits,
            lower: BTreeMap::new(),
            errors: Vec::new(),
            unlisted: 0,
            layer: 0,
            entries: 0,
            packages: 0,
            meter,
            stopped: false,
        }
    }

    /// Walks the next layer up. Problems are recorded, never returned.
    pub fn add_layer(&mut self, media_type: &str, blob: impl Read) {
        let layer = self.layer;
        self.layer += 1;
        if self.stopped {
            self.layer_error(layer, "not read: the walk stopped at a bound".into());
            return;
        }
        let Some(compression) = Compression::from_media_type(media_type) else {
            self.layer_error(
                layer,
                format!("not read: {media_type:?} is not a layer media type"),
            );
            return;
        };
        match layer::open(compression, blob, &self.meter) {
            Ok(tar) => self.walk(layer, TarReader::new(tar)),
            Err(e) => self.layer_error(layer, format!("not read: {e}")),
        }
    }

    /// Records that a layer could not be opened (the caller's side of a walk): the walk goes
    /// on with the next, as with any broken layer.
    pub fn skip_layer(&mut self, reason: impl Into<String>) {
        let layer = self.layer;
        self.layer += 1;
        self.layer_error(layer, reason.into());
    }

    /// The inventory of the layers walked.
    pub fn finish(self) -> Inventory {
        let mut os = None;
        for path in os_release::PATHS {
            if let Some(Some(Ok(found))) = self.lower.get(path).map(|r| r.os.clone()) {
                os = Some(found);
                break;
            }
        }
        let mut packages = Vec::new();
        let mut errors = self.errors;
        for (path, record) in self.lower {
            if let Some(Err(message)) = record.os {
                errors.push(InventoryError {
                    layer: record.layer,
                    path: Some(path.clone()),
                    message: format!("os-release: {message}"),
                });
            }
            for (index, result) in record.found {
                match result {
                    Ok(found) => packages.extend(found),
                    Err(message) => errors.push(InventoryError {
                        layer: record.layer,
                        path: Some(path.clone()),
                        message: format!("{}: {message}", self.cataloguers[index].name()),
                    }),
                }
            }
        }
        packages.sort_by(|a, b| package_key(a).cmp(&package_key(b)));
        packages.dedup();
        errors.sort();
        errors.dedup();
        if self.unlisted > 0 {
            errors.push(InventoryError {
                layer: self.layer.saturating_sub(1),
                path: None,
                message: format!("{} more problems not listed", self.unlisted),
            });
        }
        Inventory {
            os,
            packages,
            errors,
        }
    }

    fn walk<R: Read>(&mut self, layer: usize, mut tar: TarReader<R>) {
        let mut upper: BTreeMap<String, Record> = BTreeMap::new();
        loop {
            let entry = match tar.next() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    let bound = self.meter.tripped();
                    self.layer_error(
                        layer,
                        match bound {
                            Some(bound) => bound.to_owned(),
                            None => e.to_string(),
                        },
                    );
                    self.stopped |= bound.is_some();
                    break;
                }
            };
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                let max = self.limits.max_entries;
                self.layer_error(layer, format!("the image has more than {max} entries"));
                self.stopped = true;
                break;
            }
            let path = match normalise(&entry.path, self.limits.max_path_len) {
                Ok(path) => path,
                Err(reason) => {
                    self.file_error(layer, &String::from_utf8_lossy(&entry.path), reason);
                    continue;
                }
            };
            let (dir, base) = split(&path);
            if let Some(whiteout) = base.strip_prefix(".wh.") {
                if whiteout == ".wh..opq" {
                    remove_under(&mut self.lower, dir);
                } else if whiteout.starts_with(".wh.") {
                    // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not a whiteout.
                } else if whiteout.is_empty() || whiteout == "." || whiteout == ".." {
                    self.file_error(layer, &path, "a whiteout of no name".into());
                } else {
                    let target = join(dir, whiteout);
                    self.lower.remove(&target);
                    remove_under(&mut self.lower, &target);
                }
                continue;
            }
            for map in [&mut self.lower, &mut upper] {
                map.remove(&path);
                if entry.kind != Kind::Directory {
                    remove_under(map, &path);
                }
            }
            let kept = self.lower.len() + upper.len();
            let record = match entry.kind {
                Kind::Regular => self.catalog(layer, &path, &entry, &mut tar, kept),
                Kind::Sparse => self.sparse(layer, &path, &entry),
                Kind::HardLink => self.hard_link(layer, &path, &entry, &upper),
                Kind::Symlink | Kind::Directory | Kind::Other => None,
            };
            if let Some(record) = record {
                upper.insert(path, record);
            }
        }
        self.lower.extend(upper);
    }

    /// Reads a regular file for whoever wants it.
    fn catalog<R: Read>(
        &mut self,
        layer: usize,
        path: &str,
        entry: &Entry,
        tar: &mut TarReader<R>,
        kept: usize,
    ) -> Option<Record> {
        let info = FileInfo {
            path,
            size: entry.size,
            executable: entry.mode & 0o111 != 0,
        };
        let wanting = self.wanting(&info);
        let os = os_release::PATHS.contains(&path);
        if wanting.is_empty() && !os {
            return None;
        }
        let mut record = Record {
            layer,
            size: entry.size,
            os: None,
            found: Vec::new(),
        };
        let refuse = if kept >= self.limits.max_files {
            Some(format!(
                "not read: more than {} files catalogued",
                self.limits.max_files
            ))
        } else if entry.size > self.limits.max_file_bytes {
            Some(format!(
                "not read: larger than {} bytes",
                self.limits.max_file_bytes
            ))
        } else {
            None
        };
        if let Some(reason) = refuse {
            record.os = os.then(|| Err(reason.clone()));
            record.found = wanting
                .into_iter()
                .map(|i| (i, Err(reason.clone())))
                .collect();
            return Some(record);
        }
        let readers = wanting.len() + usize::from(os);
        let mut data = tar.data();
        if readers == 1 {
            if os {
                record.os = Some(os_release::read(&mut data));
            }
            for index in wanting {
                let found = self.run(index, &info, &mut data);
                record.found.push((index, found));
            }
            return Some(record);
        }
        let mut spool = match Spool::fill(&mut data, entry.size) {
            Ok(spool) => spool,
            Err(e) => {
                let reason = format!("spooling the file: {e}");
                record.os = os.then(|| Err(reason.clone()));
                record.found = wanting
                    .into_iter()
                    .map(|i| (i, Err(reason.clone())))
                    .collect();
                return Some(record);
            }
        };
        if os {
            record.os = Some(match spool.reader() {
                Ok(mut r) => os_release::read(&mut r),
                Err(e) => Err(e.to_string()),
            });
        }
        for index in wanting {
            let found = match spool.reader() {
                Ok(mut r) => self.run(index, &info, &mut r),
                Err(e) => Err(e.to_string()),
            };
            record.found.push((index, found));
        }
        Some(record)
    }

    /// One cataloguer on one file, with the package bound applied.
    fn run(
        &mut self,
        index: usize,
        info: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, String> {
        let mut bounded = contents.take(self.limits.max_file_bytes);
        let found = self.cataloguers[index]
            .catalog(info, &mut bounded)
            .map_err(|e: CatalogError| e.to_string())?;
        self.count(found)
    }

    fn count(&mut self, found: Vec<Package>) -> Result<Vec<Package>, String> {
        if self.packages.saturating_add(found.len()) > self.limits.max_packages {
            return Err(format!(
                "{} packages dropped: more than {} in the image",
                found.len(),
                self.limits.max_packages
            ));
        }
        self.packages += found.len();
        Ok(found)
    }

    fn sparse(&mut self, layer: usize, path: &str, entry: &Entry) -> Option<Record> {
        let info = FileInfo {
            path,
            size: entry.size,
            executable: entry.mode & 0o111 != 0,
        };
        let wanting = self.wanting(&info);
        let os = os_release::PATHS.contains(&path);
        if wanting.is_empty() && !os {
            return None;
        }
        let reason = "not read: a sparse file".to_owned();
        Some(Record {
            layer,
            size: entry.size,
            os: os.then(|| Err(reason.clone())),
            found: wanting
                .into_iter()
                .map(|i| (i, Err(reason.clone())))
                .collect(),
        })
    }

    /// A hard link counts at its own path with what its target gave (see the module doc).
    fn hard_link(
        &mut self,
        layer: usize,
        path: &str,
        entry: &Entry,
        upper: &BTreeMap<String, Record>,
    ) -> Option<Record> {
        let target = normalise(&entry.link, self.limits.max_path_len).ok();
        let source = target
            .as_ref()
            .and_then(|t| upper.get(t).or_else(|| self.lower.get(t)));
        let size = source.map_or(0, |s| s.size);
        let info = FileInfo {
            path,
            size,
            executable: entry.mode & 0o111 != 0,
        };
        let wanting = self.wanting(&info);
        let os = os_release::PATHS.contains(&path);
        if wanting.is_empty() && !os {
            return None;
        }
        let unread = format!(
            "not read: a hard link to {}, which was not read",
            target.as_deref().unwrap_or("an invalid path")
        );
        let mut record = Record {
            layer,
            size,
            os: None,
            found: Vec::new(),
        };
        if os {
            let copied = source.and_then(|s| s.os.clone());
            record.os = Some(copied.unwrap_or_else(|| Err(unread.clone())));
        }
        let mut copies = Vec::new();
        for index in wanting {
            let copied = source
                .and_then(|s| s.found.iter().find(|(i, _)| *i == index))
                .map(|(_, result)| result.clone());
            copies.push((index, copied));
        }
        for (index, copied) in copies {
            let result = match copied {
                Some(Ok(found)) => {
                    let moved = found
                        .into_iter()
                        .map(|p| Package {
                            path: path.to_owned(),
                            ..p
                        })
                        .collect();
                    self.count(moved)
                }
                Some(Err(e)) => Err(e),
                None => Err(unread.clone()),
            };
            record.found.push((index, result));
        }
        Some(record)
    }

    fn wanting(&self, info: &FileInfo<'_>) -> Vec<usize> {
        (0..self.cataloguers.len())
            .filter(|&i| self.cataloguers[i].wants(info))
            .collect()
    }

    /// A problem with a layer: always listed (there are few per layer).
    fn layer_error(&mut self, layer: usize, message: String) {
        self.errors.push(InventoryError {
            layer,
            path: None,
            message,
        });
    }

    /// A problem with one entry that is not kept (a path refused): its path is shortened, as
    /// a refused path may be as long as a pax header.
    fn file_error(&mut self, layer: usize, path: &str, message: String) {
        let mut path = path.to_owned();
        if path.len() > 256 {
            let mut cut = 256;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
            path.push('…');
        }
        self.push_error(InventoryError {
            layer,
            path: Some(path),
            message,
        });
    }

    fn push_error(&mut self, error: InventoryError) {
        if self.errors.len() < self.limits.max_errors {
            self.errors.push(error);
        } else {
            self.unlisted += 1;
        }
    }
}

fn package_key(p: &Package) -> impl Ord + '_ {
    let source = p
        .source
        .as_ref()
        .map(|s| (s.name.as_str(), s.version.as_deref()));
    (
        p.kind,
        p.name.as_str(),
        p.version.as_str(),
        p.path.as_str(),
        source,
        p.arch.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_can_move_to_a_blocking_thread() {
        fn send<T: Send>() {}
        send::<Walker<'static>>();
        send::<Inventory>();
    }
}
