//! A streaming tar reader with bounds, for image layers.
//!
//! Why not the `tar` crate: it reads a GNU long name or a pax extended header wholly into
//! memory whatever size its header declares, so one crafted header in a gzip bomb allocates
//! gigabytes. Here those records are bounded ([`MAX_META`]) and everything else is streamed.
//!
//! It reads what image layers contain: POSIX ustar (with its `prefix`), pax extended headers
//! (`path`, `linkpath`, `size`; global headers are skipped), GNU long names and links, and GNU
//! sparse entries (recognised and skipped, never expanded). Header-only types (links,
//! directories, devices, FIFOs) carry no data whatever their size field says, as in Go's
//! `archive/tar`, which is what docker and containerd unpack layers with.

use std::io::{self, Read};

/// The largest GNU long name or pax extended header read (a Linux path is at most 4096 bytes).
pub(crate) const MAX_META: u64 = 64 * 1024;

/// Extended headers (pax, GNU long names, global headers) before one entry: writers put at
/// most three; an endless run of them is not an archive.
pub(crate) const MAX_EXTENSIONS: usize = 16;

const BLOCK: usize = 512;

/// The buffer skipped bytes are read into: one per reader, whatever the layer's size.
const SKIP_BUFFER: usize = 256 * 1024;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file; its data follows.
    Regular,
    /// A regular file stored sparse (GNU or pax sparse formats): its data is not read.
    Sparse,
    /// A hard link to [`Entry::link`].
    HardLink,
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// Anything else: devices, FIFOs, unknown types.
    Other,
}

/// One entry's header, with long names and pax records applied.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The raw path, as the archive spells it (not normalised).
    pub path: Vec<u8>,
    /// The raw link target of hard and symbolic links.
    pub link: Vec<u8>,
    pub kind: Kind,
    /// The file's size: for sparse files the expanded size, else the data's.
    pub size: u64,
    pub mode: u32,
}

/// Why reading the archive stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TarError {
    #[error("reading the layer: {0}")]
    Io(#[from] io::Error),
    #[error("the layer ends inside an entry")]
    Truncated,
    #[error("a tar header's checksum does not match (not a tar archive, or corrupt)")]
    Checksum,
    #[error("a tar header has an invalid {0} field")]
    Field(&'static str),
    #[error("more than {MAX_EXTENSIONS} extended headers before one entry")]
    Extensions,
    #[error("a {what} of {size} bytes is larger than the {MAX_META} bytes read")]
    MetaTooLarge { what: &'static str, size: u64 },
}

/// Reads entries one after the other; the data of the current entry is read through
/// [`TarReader::data`] and whatever is left of it is skipped by the next [`TarReader::next`].
pub(crate) struct TarReader<R> {
    inner: R,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    done: bool,
    /// Where skipped bytes are read to, allocated at the first skip.
    skip_buffer: Option<Vec<u8>>,
}

#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    sparse_size: Option<u64>,
    sparse: bool,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            done: false,
            skip_buffer: None,
        }
    }

    /// The next entry, or `None` at the end of the archive.
    pub(crate) fn next(&mut self) -> Result<Option<Entry>, TarError> {
        self.skip_rest()?;
        let mut pending = Pending::default();
        for _ in 0..=MAX_EXTENSIONS {
            if self.done {
                return Ok(None);
            }
            let mut block = [0u8; BLOCK];
            if !read_block(&mut self.inner, &mut block)? {
                // An archive without its two zero blocks: tolerated at an entry boundary.
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_checksum(&block)?;
            let size = numeric(&block[124..136]).ok_or(TarError::Field("size"))?;
            let flag = block[156];
            match flag {
                b'L' => pending.path = Some(self.read_meta("GNU long name", size)?),
                b'K' => pending.link = Some(self.read_meta("GNU long link name", size)?),
                b'x' => {
                    let records = self.read_meta("pax extended header", size)?;
                    apply_pax(&records, &mut pending)?;
                }
                b'g' | b'V' | b'M' | b'N' => self.skip(padded(size))?,
                _ => return self.entry(&block, flag, size, pending).map(Some),
            }
        }
        Err(TarError::Extensions)
    }

    /// A reader over the current entry's data.
    pub(crate) fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }

    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        flag: u8,
        header_size: u64,
        pending: Pending,
    ) -> Result<Entry, TarError> {
        let mode = numeric(&block[100..108]).ok_or(TarError::Field("mode"))?;
        let mut kind = match flag {
            b'0' | 0 | b'7' => Kind::Regular,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'5' => Kind::Directory,
            b'S' => Kind::Sparse,
            _ => Kind::Other,
        };
        if pending.sparse && kind == Kind::Regular {
            kind = Kind::Sparse;
        }
        let path = match pending.path {
            Some(path) => path,
            None => ustar_name(block),
        };
        // Pre-POSIX archives mark directories by a trailing slash on a regular entry.
        if flag == 0 && path.last() == Some(&b'/') {
            kind = Kind::Directory;
        }
        let mut data = pending.size.unwrap_or(header_size);
        if matches!(kind, Kind::HardLink | Kind::Symlink | Kind::Directory)
            || matches!(flag, b'3' | b'4' | b'6')
        {
            data = 0;
        }
        let mut size = data;
        if flag == b'S' {
            // GNU sparse: the expanded size sits in `realsize`; extension blocks of the sparse
            // map follow the header while their last byte says so.
            size = numeric(&block[483..495]).ok_or(TarError::Field("realsize"))?;
            let mut extended = block[482] != 0;
            while extended {
                let mut ext = [0u8; BLOCK];
                if !read_block(&mut self.inner, &mut ext)? {
                    return Err(TarError::Truncated);
                }
                extended = ext[504] != 0;
            }
        } else if let Some(real) = pending.sparse_size {
            size = real;
        }
        let link = pending
            .link
            .unwrap_or_else(|| cstr(&block[157..257]).to_vec());
        self.remaining = data;
        self.padding = padded(data) - data;
        Ok(Entry {
            path,
            link,
            kind,
            size,
            mode: (mode & 0o7777) as u32,
        })
    }

    fn read_meta(&mut self, what: &'static str, size: u64) -> Result<Vec<u8>, TarError> {
        if size > MAX_META {
            return Err(TarError::MetaTooLarge { what, size });
        }
        let mut buf = vec![0u8; size as usize];
        self.inner.read_exact(&mut buf).map_err(eof_is_truncated)?;
        self.skip(padded(size) - size)?;
        Ok(buf)
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(n)
    }

    /// Reads past `n` bytes that nobody wants (most of a layer: file bodies no cataloguer
    /// reads). In reads of [`SKIP_BUFFER`] bytes, not `io::copy`'s 8 KiB: each read is one
    /// call into the decompressor, which inflates fastest into a large buffer.
    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        while n > 0 {
            let buf = self.skip_buffer.get_or_insert_with(|| vec![0; SKIP_BUFFER]);
            let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(TarError::Truncated),
                Ok(read) => n -= read as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The data of the current entry, ending where the entry ends.
pub(crate) struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.reader.remaining;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.reader.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the layer ends inside a file",
            ));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

/// Fills `block`; `false` at a clean end of input before its first byte.
fn read_block(r: &mut impl Read, block: &mut [u8; BLOCK]) -> Result<bool, TarError> {
    let mut filled = 0;
    while filled < BLOCK {
        match r.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(TarError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn eof_is_truncated(e: io::Error) -> TarError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        TarError::Truncated
    } else {
        TarError::Io(e)
    }
}

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces (POSIX
/// `chksum`); some old writers summed signed bytes, which is accepted too.
fn check_checksum(block: &[u8; BLOCK]) -> Result<(), TarError> {
    let stored = numeric(&block[148..156]).ok_or(TarError::Checksum)?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::Checksum)
    }
}

/// A numeric field: octal digits (space or NUL padded), or GNU base-256 when the high bit of
/// the first byte is set.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut n: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let digits = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ');
    // An empty field is zero (some writers leave unused numbers blank).
    let mut n: u64 = 0;
    for b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = n.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// `name`, prefixed by the POSIX ustar `prefix` field when the magic says ustar (GNU headers
/// use those bytes for other things).
fn ustar_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = cstr(&block[0..100]);
    if &block[257..263] == b"ustar\0" {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            let mut path = prefix.to_vec();
            path.push(b'/');
            path.extend_from_slice(name);
            return path;
        }
    }
    name.to_vec()
}

/// Pax records, `"<len> <key>=<value>\n"` (POSIX pax, "pax Extended Header File Format").
fn apply_pax(mut records: &[u8], pending: &mut Pending) -> Result<(), TarError> {
    while !records.is_empty() {
        let space = records
            .iter()
            .position(|&b| b == b' ')
            .ok_or(TarError::Field("pax record"))?;
        let len: usize = std::str::from_utf8(&records[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(TarError::Field("pax record length"))?;
        if len <= space + 1 || len > records.len() || records[len - 1] != b'\n' {
            return Err(TarError::Field("pax record length"));
        }
        let record = &records[space + 1..len - 1];
        records = &records[len..];
        let Some(eq) = record.iter().position(|&b| b == b'=') else {
            return Err(TarError::Field("pax record"));
        };
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(TarError::Field("pax size"))
        };
        match key {
            b"path" => pending.path = Some(value.to_vec()),
            b"linkpath" => pending.link = Some(value.to_vec()),
            b"size" => pending.size = Some(number()?),
            b"GNU.sparse.name" => {
                pending.sparse = true;
                pending.path = Some(value.to_vec());
            }
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                pending.sparse = true;
                pending.sparse_size = Some(number()?);
            }
            k if k.starts_with(b"GNU.sparse.") => pending.sparse = true,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_octal_and_base256() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"   17 \0"), Some(0o17));
        assert_eq!(numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(numeric(b"12x4\0"), None);
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[7] = 0x02; // 2 << 32
        assert_eq!(numeric(&big), Some(2u64 << 32));
        assert_eq!(numeric(&[0xff; 12]), None);
    }

    fn reader(blocks: &[[u8; BLOCK]]) -> TarReader<std::io::Cursor<Vec<u8>>> {
        TarReader::new(std::io::Cursor::new(blocks.concat()))
    }

    fn header(name: &[u8], flag: u8) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(b"0000644\0");
        block[124..136].copy_from_slice(b"00000000000\0");
        block[156] = flag;
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    }

    #[test]
    fn an_endless_run_of_extended_headers_is_refused() {
        let globals = vec![header(b"g", b'g'); MAX_EXTENSIONS + 1];
        assert!(matches!(reader(&globals).next(), Err(TarError::Extensions)));
        let mut few = vec![header(b"g", b'g'); MAX_EXTENSIONS];
        few.push(header(b"file", b'0'));
        let entry = reader(&few).next().expect("valid").expect("an entry");
        assert_eq!(
            (entry.path.as_slice(), entry.kind),
            (&b"file"[..], Kind::Regular)
        );
    }

    #[test]
    fn old_style_directories_and_header_only_types() {
        let entry = reader(&[header(b"dir/", 0)])
            .next()
            .expect("valid")
            .expect("an entry");
        assert_eq!(entry.kind, Kind::Directory);
        // A hard link whose header claims data: there is none (as Go's archive/tar reads it),
        // so the next header follows at once.
        let mut link = header(b"link", b'1');
        link[124..136].copy_from_slice(b"00000001000\0");
        link[148..156].copy_from_slice(b"        ");
        let sum: u32 = link.iter().map(|&b| u32::from(b)).sum();
        link[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut tar = reader(&[link, header(b"next", b'0')]);
        assert_eq!(
            tar.next().expect("valid").expect("link").kind,
            Kind::HardLink
        );
        assert_eq!(tar.next().expect("valid").expect("next").path, b"next");
    }

    #[test]
    fn pax_records_are_checked() {
        let mut p = Pending::default();
        apply_pax(b"30 path=a/very/long/name/here\n11 size=42\n", &mut p).expect("valid");
        assert_eq!(p.path.as_deref(), Some(&b"a/very/long/name/here"[..]));
        assert_eq!(p.size, Some(42));
        assert!(apply_pax(b"99 path=x\n", &mut Pending::default()).is_err());
        assert!(apply_pax(b"3 \n", &mut Pending::default()).is_err());
        assert!(apply_pax(b"abc", &mut Pending::default()).is_err());
    }
}
