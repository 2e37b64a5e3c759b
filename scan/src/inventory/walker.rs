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
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// What a layer walked ahead of its turn may hold before it is given up and walked again
    /// at its turn (see [`Walker::add_layers`]): its entries' paths and link targets, plus
    /// [`AHEAD_ENTRY_BYTES`] per entry. 0 walks every layer at its turn.
    pub max_lookahead_bytes: usize,
}

/// What one entry of a layer walked ahead costs besides its path and link target: the entry,
/// and its place in the list.
pub const AHEAD_ENTRY_BYTES: usize = 128;

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
            max_lookahead_bytes: 32 * 1024 * 1024,
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
        let compression = match readable(media_type) {
            Ok(compression) => compression,
            Err(reason) => return self.layer_error(layer, reason),
        };
        match layer::open(compression, blob, &self.meter) {
            Ok(tar) => self.walk(layer, TarReader::new(tar)),
            Err(e) => self.layer_error(layer, format!("not read: {e}")),
        }
    }

    /// Walks `layers`, in order from the base, with the same result as [`Walker::add_layer`]
    /// on each in turn, two layers at a time: while this thread walks a layer, another walks
    /// the next one ahead of its turn (decompresses it and reads the files the cataloguers
    /// want), and what it read is applied at its turn. Whiteouts, hard links and the bounds
    /// on files, packages and entries are applied at that turn, in layer order, so they
    /// decide exactly as in a walk of one layer at a time. The bounds on bytes and time are
    /// shared by both threads. A layer walked ahead holds at most
    /// [`Limits::max_lookahead_bytes`] (and [`Limits::max_packages`]); past that it is given
    /// up and walked again at its turn, so memory stays bounded whatever the layers hold.
    pub fn add_layers(&mut self, layers: Vec<LayerBlob<'_>>) {
        let mut layers = layers.into_iter();
        while let Some(mut this) = layers.next() {
            let Some(mut next) = layers.next() else {
                self.open_and_add(&mut this);
                break;
            };
            let (cataloguers, limits) = (self.cataloguers, self.limits.clone());
            let (meter, halt) = (Arc::clone(&self.meter), AtomicBool::new(false));
            let ahead = std::thread::scope(|scope| {
                let ahead =
                    scope.spawn(|| walk_ahead(cataloguers, &limits, &meter, &halt, &mut next));
                self.open_and_add(&mut this);
                if self.stopped {
                    halt.store(true, Ordering::Relaxed);
                }
                ahead.join()
            });
            match ahead {
                Ok(Some(Ok(ahead))) => self.replay(ahead),
                Ok(Some(Err(_))) if self.stopped => self.open_and_add(&mut next),
                Ok(Some(Err(reason))) => self.skip_layer(reason),
                // Given up, or its thread panicked: walked at its turn instead.
                Ok(None) | Err(_) => self.open_and_add(&mut next),
            }
        }
    }

    /// [`Walker::add_layer`] on a blob opened now (not at all once the walk stopped, nor when
    /// its media type is not one the walk reads).
    fn open_and_add(&mut self, blob: &mut LayerBlob<'_>) {
        if self.stopped || readable(&blob.media_type).is_err() {
            return self.add_layer(&blob.media_type, std::io::empty());
        }
        match (blob.open)() {
            Ok(reader) => self.add_layer(&blob.media_type, reader),
            Err(reason) => self.skip_layer(reason),
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
                    let (message, bound) = ended(&self.meter, &e);
                    self.layer_error(layer, message);
                    self.stopped |= bound;
                    break;
                }
            };
            let mut data = tar.data();
            if self
                .step(layer, entry, &mut upper, Contents::Stream(&mut data))
                .is_break()
            {
                break;
            }
        }
        self.lower.extend(upper);
    }

    /// Applies a layer walked ahead of its turn, as [`Walker::walk`] would have walked it.
    fn replay(&mut self, ahead: Ahead) {
        let layer = self.layer;
        self.layer += 1;
        if self.stopped {
            self.layer_error(layer, "not read: the walk stopped at a bound".into());
            return;
        }
        let mut upper: BTreeMap<String, Record> = BTreeMap::new();
        let mut ended = ahead.end;
        for (entry, record) in ahead.steps {
            if self
                .step(layer, entry, &mut upper, Contents::Read(record))
                .is_break()
            {
                ended = None;
                break;
            }
        }
        if let Some((message, bound)) = ended {
            self.layer_error(layer, message);
            self.stopped |= bound;
        }
        self.lower.extend(upper);
    }

    /// One entry of layer `layer`: its path taken from the layers below and from earlier
    /// entries of its own layer (`upper`), and its record, if any, put in its place. Breaks
    /// when the walk must stop.
    fn step(
        &mut self,
        layer: usize,
        entry: Entry,
        upper: &mut BTreeMap<String, Record>,
        contents: Contents<'_>,
    ) -> ControlFlow<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            let max = self.limits.max_entries;
            self.layer_error(layer, format!("the image has more than {max} entries"));
            self.stopped = true;
            return ControlFlow::Break(());
        }
        let path = match normalise(&entry.path, self.limits.max_path_len) {
            Ok(path) => path,
            Err(reason) => {
                self.file_error(layer, &String::from_utf8_lossy(&entry.path), reason);
                return ControlFlow::Continue(());
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
            return ControlFlow::Continue(());
        }
        for map in [&mut self.lower, &mut *upper] {
            map.remove(&path);
            if entry.kind != Kind::Directory {
                remove_under(map, &path);
            }
        }
        let kept = self.lower.len() + upper.len();
        let record = match (entry.kind, contents) {
            (Kind::Regular, Contents::Stream(data)) => {
                let refused = self.too_many(kept);
                let read = read_file(self.cataloguers, &self.limits, &path, &entry, data, refused);
                read.map(|record| self.settle(layer, record, kept))
            }
            (Kind::Regular, Contents::Read(read)) => {
                read.map(|record| self.settle(layer, record, kept))
            }
            (Kind::Sparse, _) => self.sparse(layer, &path, &entry),
            (Kind::HardLink, _) => self.hard_link(layer, &path, &entry, upper),
            (Kind::Symlink | Kind::Directory | Kind::Other, _) => None,
        };
        if let Some(record) = record {
            upper.insert(path, record);
        }
        ControlFlow::Continue(())
    }

    /// Why a file is not read when `kept` files are catalogued already.
    fn too_many(&self, kept: usize) -> Option<String> {
        (kept >= self.limits.max_files).then(|| {
            format!(
                "not read: more than {} files catalogued",
                self.limits.max_files
            )
        })
    }

    /// A regular file's record as read (perhaps ahead of its turn), with the bounds that
    /// depend on the walk so far applied: the files kept, and the packages found.
    fn settle(&mut self, layer: usize, read: Catalogued, kept: usize) -> Record {
        let mut record = Record {
            layer,
            size: read.size,
            os: read.os,
            found: read.found,
        };
        if let Some(reason) = self.too_many(kept) {
            refuse(&mut record, &reason);
            return record;
        }
        for (_, found) in &mut record.found {
            if let Ok(packages) = found {
                *found = self.count(std::mem::take(packages));
            }
        }
        record
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
        wanting(self.cataloguers, info)
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

/// A regular file as the cataloguers read it, before the bounds that depend on the rest of
/// the walk (files kept, packages found) are applied.
#[derive(Debug)]
struct Catalogued {
    size: u64,
    os: Option<Result<OsRelease, String>>,
    found: Vec<(usize, Result<Vec<Package>, String>)>,
}

impl Catalogued {
    /// A file not read: every reading (the os-release one with `os`, and one per cataloguer
    /// in `wanting`) is `reason`.
    fn refused(size: u64, wanting: Vec<usize>, os: bool, reason: &str) -> Catalogued {
        Catalogued {
            size,
            os: os.then(|| Err(reason.to_owned())),
            found: wanting
                .into_iter()
                .map(|i| (i, Err(reason.to_owned())))
                .collect(),
        }
    }
}

/// Where the walk finds a regular file's contents.
enum Contents<'a> {
    /// In the layer's stream, at the entry.
    Stream(&'a mut dyn Read),
    /// Already read, by a walk ahead of the layer's turn: `None` when nobody wanted the file.
    Read(Option<Catalogued>),
}

/// Makes every reading of `record` the refusal `reason`.
fn refuse(record: &mut Record, reason: &str) {
    if record.os.is_some() {
        record.os = Some(Err(reason.to_owned()));
    }
    for (_, found) in &mut record.found {
        *found = Err(reason.to_owned());
    }
}

/// The compression of a layer of `media_type`, or why the walk does not read it.
fn readable(media_type: &str) -> Result<Compression, String> {
    if media_type.contains("encrypted") {
        return Err(format!("not read: {media_type:?} is encrypted"));
    }
    Compression::from_media_type(media_type)
        .ok_or_else(|| format!("not read: {media_type:?} is not a layer media type"))
}

/// The error that ended a layer, and whether it was a bound of the whole walk.
fn ended(meter: &Meter, e: &super::tar::TarError) -> (String, bool) {
    match meter.tripped() {
        Some(bound) => (bound.to_owned(), true),
        None => (e.to_string(), false),
    }
}

/// Reads a regular file for the cataloguers that want it (and for the os-release reader at
/// its paths); `None` when nobody does. With `refused`, the file is not read and every
/// reading is that refusal.
fn read_file(
    cataloguers: &[Box<dyn Cataloguer>],
    limits: &Limits,
    path: &str,
    entry: &Entry,
    data: &mut dyn Read,
    refused: Option<String>,
) -> Option<Catalogued> {
    let info = FileInfo {
        path,
        size: entry.size,
        executable: entry.mode & 0o111 != 0,
    };
    let wanting = wanting(cataloguers, &info);
    let os = os_release::PATHS.contains(&path);
    if wanting.is_empty() && !os {
        return None;
    }
    let refuse = refused.or_else(|| {
        (entry.size > limits.max_file_bytes)
            .then(|| format!("not read: larger than {} bytes", limits.max_file_bytes))
    });
    if let Some(reason) = refuse {
        return Some(Catalogued::refused(entry.size, wanting, os, &reason));
    }
    let mut record = Catalogued {
        size: entry.size,
        os: None,
        found: Vec::new(),
    };
    let run = |index: usize, contents: &mut dyn Read| -> Result<Vec<Package>, String> {
        let mut bounded = contents.take(limits.max_file_bytes);
        cataloguers[index]
            .catalog(&info, &mut bounded)
            .map_err(|e: CatalogError| e.to_string())
    };
    let readers = wanting.len() + usize::from(os);
    if readers == 1 {
        if os {
            record.os = Some(os_release::read(data));
        }
        for index in wanting {
            record.found.push((index, run(index, data)));
        }
        return Some(record);
    }
    let mut spool = match Spool::fill(data, entry.size) {
        Ok(spool) => spool,
        Err(e) => {
            let reason = format!("spooling the file: {e}");
            return Some(Catalogued::refused(entry.size, wanting, os, &reason));
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
            Ok(mut r) => run(index, &mut r),
            Err(e) => Err(e.to_string()),
        };
        record.found.push((index, found));
    }
    Some(record)
}

/// The cataloguers that want `info`, by index.
fn wanting(cataloguers: &[Box<dyn Cataloguer>], info: &FileInfo<'_>) -> Vec<usize> {
    (0..cataloguers.len())
        .filter(|&i| cataloguers[i].wants(info))
        .collect()
}

/// A layer for [`Walker::add_layers`]: its media type, and how to open its blob. It is opened
/// once, or twice when a walk ahead of its turn was given up.
pub struct LayerBlob<'a> {
    /// The layer's media type, from the manifest.
    pub media_type: String,
    /// Opens the blob, or says why it cannot be read (recorded as the layer's problem).
    #[allow(clippy::type_complexity)]
    pub open: Box<dyn FnMut() -> Result<Box<dyn Read + Send + 'a>, String> + Send + 'a>,
}

/// A layer walked ahead of its turn: its entries in order, each regular file with what the
/// cataloguers read in it, none of it applied to the layers below yet.
struct Ahead {
    steps: Vec<(Entry, Option<Catalogued>)>,
    /// How the layer ended early: the error, and whether a bound of the whole walk stopped it.
    end: Option<(String, bool)>,
}

/// Walks a layer ahead of its turn, on another thread than the walk's. `None` when the layer
/// is to be walked at its turn instead: it holds more than [`Limits::max_lookahead_bytes`] or
/// [`Limits::max_packages`], its media type is not a layer's, or the walk stopped (`halt`).
fn walk_ahead(
    cataloguers: &[Box<dyn Cataloguer>],
    limits: &Limits,
    meter: &Arc<Meter>,
    halt: &AtomicBool,
    blob: &mut LayerBlob<'_>,
) -> Option<Result<Ahead, String>> {
    if limits.max_lookahead_bytes == 0 {
        return None;
    }
    let compression = readable(&blob.media_type).ok()?;
    let reader = match (blob.open)() {
        Ok(reader) => reader,
        Err(reason) => return Some(Err(reason)),
    };
    let mut ahead = Ahead {
        steps: Vec::new(),
        end: None,
    };
    let mut tar = match layer::open(compression, reader, meter) {
        Ok(tar) => TarReader::new(tar),
        Err(e) => {
            ahead.end = Some((format!("not read: {e}"), false));
            return Some(Ok(ahead));
        }
    };
    let (mut held, mut packages) = (0usize, 0usize);
    loop {
        if halt.load(Ordering::Relaxed) {
            return None;
        }
        let entry = match tar.next() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => {
                ahead.end = Some(ended(meter, &e));
                break;
            }
        };
        held += AHEAD_ENTRY_BYTES + entry.path.len() + entry.link.len();
        if held > limits.max_lookahead_bytes {
            return None;
        }
        let mut read = None;
        // What [`Walker::step`] will not read is not read here either: refused paths and
        // whiteouts.
        if entry.kind == Kind::Regular
            && let Ok(path) = normalise(&entry.path, limits.max_path_len)
            && !split(&path).1.starts_with(".wh.")
        {
            read = read_file(cataloguers, limits, &path, &entry, &mut tar.data(), None);
            let found = read.iter().flat_map(|r| &r.found);
            packages += found
                .map(|(_, f)| f.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
            if packages > limits.max_packages {
                return None;
            }
        }
        ahead.steps.push((entry, read));
    }
    Some(Ok(ahead))
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
