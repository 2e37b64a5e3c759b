//! Hostile layers end with a clear result and bounded memory: tar bombs (endless entries,
//! huge declared and sparse sizes), gzip bombs, and layers that never end. A binary of its own,
//! so its peak memory is these tests' alone.

mod inventory_support;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use berth_scan::inventory::{Inventory, LayerBlob, Limits, Walker, default_cataloguers};
use inventory_support::{
    GZIP, Item, TAR, ZSTD, found, layer, peak_rss_kib, raw_header, set_checksum,
};

/// Peak memory any of these tests may reach (all of them together, run in parallel).
const MAX_RSS_KIB: u64 = 256 * 1024;

/// An endless tar of empty files `f/0`, `f/1`, ... (a tar bomb of entries), generated as read.
struct EndlessEntries {
    next: u64,
    block: [u8; 512],
    at: usize,
}

impl EndlessEntries {
    fn new() -> Self {
        EndlessEntries {
            next: 0,
            block: [0; 512],
            at: 512,
        }
    }
}

impl Read for EndlessEntries {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == 512 {
            self.block = raw_header(format!("f/{}", self.next).as_bytes(), b'0', 0);
            self.next += 1;
            self.at = 0;
        }
        let n = buf.len().min(512 - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn walk(layers: Vec<(&str, Box<dyn Read>)>, limits: Limits) -> Inventory {
    let cataloguers = default_cataloguers();
    Inventory::from_layers(layers, &cataloguers, limits)
}

/// Each problem of `inv` as (layer, message).
fn problems(inv: &Inventory) -> Vec<(usize, &str)> {
    inv.errors
        .iter()
        .map(|e| (e.layer, e.message.as_str()))
        .collect()
}

fn assert_memory_bounded() {
    let peak = peak_rss_kib();
    eprintln!("peak RSS so far: {peak} KiB");
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
}

#[test]
fn millions_of_entries_stop_at_the_entry_bound() {
    let limits = Limits {
        max_entries: 1_000_000,
        ..Limits::default()
    };
    let after = layer(&[Item::File("etc/os-release", b"ID=debian\n")]);
    let started = Instant::now();
    let inv = walk(
        vec![
            (TAR, Box::new(EndlessEntries::new())),
            (TAR, Box::new(io::Cursor::new(after))),
        ],
        limits,
    );
    eprintln!("1,000,000 entries walked in {:?}", started.elapsed());
    assert_eq!((found(&inv), &inv.os), (vec![], &None));
    let messages = problems(&inv);
    assert_eq!(
        messages,
        [
            (0, "the image has more than 1000000 entries"),
            (1, "not read: the walk stopped at a bound"),
        ]
    );
    assert_memory_bounded();
}

/// A layer for [`Walker::add_layers`] that `open` makes anew each time it is opened.
fn blob(
    media_type: &str,
    open: impl Fn() -> Box<dyn Read + Send> + Send + 'static,
) -> LayerBlob<'static> {
    LayerBlob {
        media_type: media_type.to_owned(),
        open: Box::new(move || Ok(open())),
    }
}

#[test]
fn bombs_walked_ahead_of_their_turn_stop_at_the_same_bounds() {
    let os = layer(&[Item::File("etc/os-release", b"ID=debian\n")]);
    let bomb = gzip_bomb("var/lib/dpkg/status", 3 << 29, 24);
    let cataloguers = default_cataloguers();

    // An endless layer walked ahead is given up at the look-ahead bound and walked again at
    // its turn, where the entry bound stops it; the layer after it is not read.
    let limits = Limits {
        max_entries: 1_000_000,
        ..Limits::default()
    };
    let mut walker = Walker::new(&cataloguers, limits);
    let (first, last) = (os.clone(), os.clone());
    walker.add_layers(vec![
        blob(TAR, move || Box::new(io::Cursor::new(first.clone()))),
        blob(TAR, || Box::new(EndlessEntries::new())),
        blob(TAR, move || Box::new(io::Cursor::new(last.clone()))),
    ]);
    let inv = walker.finish();
    assert_eq!(inv.os.as_ref().map(|os| os.id.as_str()), Some("debian"));
    let messages = problems(&inv);
    assert_eq!(
        messages,
        [
            (1, "the image has more than 1000000 entries"),
            (2, "not read: the walk stopped at a bound"),
        ]
    );
    assert_memory_bounded();

    // A gzip bomb walked ahead reaches the byte bound shared by both threads, and the walk
    // stops there.
    let limits = Limits {
        max_bytes: 512 << 20,
        ..Limits::default()
    };
    let mut walker = Walker::new(&cataloguers, limits);
    walker.add_layers(vec![
        blob(TAR, move || Box::new(io::Cursor::new(os.clone()))),
        blob(GZIP, move || Box::new(io::Cursor::new(bomb.clone()))),
        blob(TAR, || Box::new(EndlessEntries::new())),
    ]);
    let inv = walker.finish();
    assert_eq!(inv.os.as_ref().map(|os| os.id.as_str()), Some("debian"));
    let messages = problems(&inv);
    assert!(
        messages.contains(&(1, "stopped: the layers expand to more bytes than allowed")),
        "{messages:?}"
    );
    assert!(
        messages.contains(&(2, "not read: the walk stopped at a bound")),
        "{messages:?}"
    );
    assert_memory_bounded();
}

#[test]
fn a_layer_that_never_ends_stops_at_the_deadline() {
    let limits = Limits {
        deadline: Some(Instant::now() + Duration::from_millis(300)),
        ..Limits::default()
    };
    let started = Instant::now();
    let inv = walk(vec![(TAR, Box::new(EndlessEntries::new()))], limits);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert_eq!(inv.errors[0].message, "stopped: the deadline passed");
    assert_memory_bounded();
}

/// A gzip stream of a tar whose one file, `path`, declares `declared` bytes, followed by
/// `members` gzip members of 64 MiB of zeros each: gigabytes from a few megabytes.
fn gzip_bomb(path: &str, declared: u64, members: usize) -> Vec<u8> {
    let mut header = raw_header(path.as_bytes(), b'0', 0);
    // The size in GNU base-256, as writers store sizes of 8 GiB and more.
    header[124..136].fill(0);
    header[124] = 0x80;
    header[128..136].copy_from_slice(&declared.to_be_bytes());
    set_checksum(&mut header);
    let mut out = gzip_member(&header);
    let zeros = gzip_member(&vec![0u8; 64 * 1024 * 1024]);
    for _ in 0..members {
        out.extend_from_slice(&zeros);
    }
    out
}

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn a_gzip_bomb_ends_at_the_byte_bound_or_its_end() {
    // A 1 GiB dpkg status of zeros (one endless line) and 512 MiB of zeros after it, from about
    // 1.5 MiB of gzip: the dpkg cataloguer refuses the line, the walker skips the rest of the
    // file and ends at the zero blocks after it.
    let bomb = gzip_bomb("var/lib/dpkg/status", 1 << 30, 24);
    eprintln!("gzip bomb: {} bytes compressed", bomb.len());
    let started = Instant::now();
    let inv = walk(
        vec![(GZIP, Box::new(io::Cursor::new(bomb.clone())))],
        Limits::default(),
    );
    eprintln!("1.5 GiB gzip bomb walked in {:?}", started.elapsed());
    assert_eq!(found(&inv), []);
    let messages: Vec<_> = inv.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        ["dpkg: malformed dpkg status: line 1: longer than 262144 bytes"]
    );

    // Cut short: the layer ends inside the file.
    let short = gzip_bomb("var/lib/dpkg/status", 1 << 30, 8);
    let inv = walk(
        vec![(GZIP, Box::new(io::Cursor::new(short)))],
        Limits::default(),
    );
    let messages: Vec<_> = inv.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"the layer ends inside an entry"),
        "{messages:?}"
    );

    // With a byte bound, the walk ends there instead.
    let limits = Limits {
        max_bytes: 512 << 20,
        ..Limits::default()
    };
    let inv = walk(vec![(GZIP, Box::new(io::Cursor::new(bomb)))], limits);
    assert!(
        inv.errors
            .iter()
            .any(|e| e.message == "stopped: the layers expand to more bytes than allowed"),
        "{:?}",
        inv.errors
    );
    assert_memory_bounded();
}

#[test]
fn huge_declared_and_sparse_sizes_are_not_read() {
    let mut tar = Vec::new();
    // A GNU sparse file of 10 TiB (in base-256) with one stored block, at the dpkg path.
    let mut sparse = raw_header(b"var/lib/dpkg/status", b'S', 512);
    sparse[483..495].fill(0);
    sparse[483] = 0x80;
    sparse[487..495].copy_from_slice(&(10u64 << 40).to_be_bytes());
    set_checksum(&mut sparse);
    tar.extend_from_slice(&sparse);
    tar.extend_from_slice(&[b'x'; 512]);
    // A 10 GiB file at the apk path, larger than any file is read, whose data is missing.
    let apk = layer(&[Item::File("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\n")]);
    let mut huge = raw_header(b"lib/apk/db/installed", b'0', 0);
    huge[124..136].fill(0);
    huge[124] = 0x80;
    huge[128..136].copy_from_slice(&(10u64 << 30).to_be_bytes());
    set_checksum(&mut huge);
    let inv = walk(
        vec![
            (TAR, Box::new(io::Cursor::new(tar))),
            (TAR, Box::new(io::Cursor::new(apk))),
            (TAR, Box::new(io::Cursor::new(huge.to_vec()))),
        ],
        Limits::default(),
    );
    assert_eq!(found(&inv), []);
    let errors: Vec<_> = inv
        .errors
        .iter()
        .map(|e| (e.layer, e.path.as_deref(), e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                0,
                Some("/var/lib/dpkg/status"),
                "dpkg: not read: a sparse file"
            ),
            (2, None, "the layer ends inside an entry"),
            (
                2,
                Some("/lib/apk/db/installed"),
                "apk: not read: larger than 1073741824 bytes"
            ),
        ]
    );
    assert_memory_bounded();
}

#[test]
fn a_10_gib_sparse_file_written_by_the_tar_crate_is_skipped() {
    // A real sparse file (10 GiB, 30 one-byte data regions) archived by the `tar` crate in GNU
    // sparse form: its sparse map needs extension blocks, which the walker must skip exactly.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("sparse");
    let file = std::fs::File::create(&path).expect("file");
    file.set_len(10 << 30).expect("10 GiB");
    for i in 0..30u64 {
        std::os::unix::fs::FileExt::write_at(&file, b"x", i * (300 << 20)).expect("write");
    }
    drop(file);
    let mut builder = tar::Builder::new(Vec::new());
    builder.sparse(true);
    let mut sparse = std::fs::File::open(&path).expect("open");
    builder
        .append_file("var/lib/dpkg/status", &mut sparse)
        .expect("sparse status");
    let mut sparse = std::fs::File::open(&path).expect("open");
    builder
        .append_file("opt/data.bin", &mut sparse)
        .expect("sparse data");
    let mut header = tar::Header::new_gnu();
    let installed = b"P:musl\nV:1.2.5-r0\n";
    header.set_size(installed.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "lib/apk/db/installed", &installed[..])
        .expect("apk");
    let tar = builder.into_inner().expect("tar");
    assert!(
        tar.len() < 1 << 20,
        "the archive stores only the data regions: {}",
        tar.len()
    );

    let inv = walk(
        vec![(TAR, Box::new(io::Cursor::new(tar)))],
        Limits::default(),
    );
    assert_eq!(found(&inv).len(), 1, "{:?}", inv);
    let errors: Vec<_> = inv
        .errors
        .iter()
        .map(|e| (e.path.as_deref(), e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(
            Some("/var/lib/dpkg/status"),
            "dpkg: not read: a sparse file"
        )]
    );
    assert_memory_bounded();
}

/// An endless tar of entries whose paths escape the root (`../x/N`), each one a problem.
struct EndlessEscapes(EndlessEntries);

impl Read for EndlessEscapes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.0;
        if inner.at == 512 {
            inner.block = raw_header(format!("../{}/x", "y".repeat(90)).as_bytes(), b'0', 0);
            inner.next += 1;
            inner.at = 0;
        }
        let n = buf.len().min(512 - inner.at);
        buf[..n].copy_from_slice(&inner.block[inner.at..inner.at + n]);
        inner.at += n;
        Ok(n)
    }
}

#[test]
fn a_million_bad_entries_make_a_bounded_list_of_problems() {
    let limits = Limits {
        max_entries: 1_000_000,
        ..Limits::default()
    };
    let inv = walk(
        vec![(TAR, Box::new(EndlessEscapes(EndlessEntries::new())))],
        limits,
    );
    // Every escaping entry is the same problem: the first thousand listed (one after
    // deduplication), the rest counted; the entry bound is listed whatever the count.
    let messages: Vec<_> = inv.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the image has more than 1000000 entries",
            "not read: the path has a `..` component",
            "999000 more problems not listed",
        ]
    );
    assert_memory_bounded();
}

#[test]
fn a_zstd_frame_asking_for_a_2_gib_window_is_refused() {
    // A frame header declaring a 2 GiB window (Window_Descriptor exponent 21), then one empty
    // last raw block: zstd refuses windows over its default 128 MiB instead of allocating.
    let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00];
    let inv = walk(
        vec![(ZSTD, Box::new(io::Cursor::new(frame.to_vec())))],
        Limits::default(),
    );
    assert_eq!(inv.errors.len(), 1, "{:?}", inv.errors);
    assert!(
        inv.errors[0].message.contains("memory"),
        "{}",
        inv.errors[0].message
    );
    assert_memory_bounded();
}
