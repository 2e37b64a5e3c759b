//! Just enough of the zip format (PKWARE APPNOTE 6.3.x) to read a few entries of a jar: the end
//! of central directory record (and its zip64 form), the central directory, local headers, and
//! entries stored or deflated.
//!
//! The central directory is streamed once and only the entries a caller asks for are kept; no
//! count, offset or size from the file sizes an allocation before it is checked against the
//! archive's length and a bound. Archives with a prefix (a launcher script in front of a
//! "fully executable" jar) are read by measuring the prefix from where the central directory
//! actually ends, as `unzip` does.

use std::io::{self, BufReader, Read};

use super::spool::Spool;

/// The most central directory entries read; more is an error (a jar of a large application has
/// tens of thousands).
pub const MAX_ENTRIES: u64 = 1 << 20;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

/// Why an archive or an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The archive's structures are inconsistent.
    #[error("{0}")]
    Malformed(&'static str),
    /// An entry inflates to more than the caller's bound.
    #[error("an entry larger than {0} bytes")]
    TooLarge(u64),
    /// Reading the spool failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name, a `/`-separated path.
    pub name: String,
    method: u16,
    flags: u16,
    compressed: u64,
    /// Its size once inflated, as the directory says.
    pub size: u64,
    local_offset: u64,
}

/// Where the central directory is, and the offset every recorded position is shifted by.
#[derive(Debug)]
pub struct Directory {
    offset: u64,
    size: u64,
    count: u64,
    prefix: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

impl Directory {
    /// Finds the central directory of the archive in `spool`.
    pub fn find(spool: &mut Spool) -> Result<Self, ZipError> {
        let len = spool.len();
        if len < 22 {
            return Err(ZipError::Malformed("too short for a zip archive"));
        }
        // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
        let tail_len = len.min(22 + 0xffff);
        let tail = spool.read_at(len - tail_len, tail_len)?;
        let at = (0..=tail.len() - 22)
            .rev()
            .find(|&i| u32_at(&tail, i) == EOCD_SIG)
            .ok_or(ZipError::Malformed("no end of central directory record"))?;
        let eocd_pos = len - tail_len + at as u64;
        let record = &tail[at..];
        let mut count = u64::from(u16_at(record, 10));
        let mut size = u64::from(u32_at(record, 12));
        let mut offset = u64::from(u32_at(record, 16));
        let mut end = eocd_pos; // where the central directory ends
        if count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff {
            // Zip64: a locator just before the record points to the zip64 record.
            let locator_pos = eocd_pos
                .checked_sub(20)
                .ok_or(ZipError::Malformed("zip64 locator missing"))?;
            let locator = spool.read_at(locator_pos, 20)?;
            if u32_at(&locator, 0) != EOCD64_LOCATOR_SIG {
                return Err(ZipError::Malformed("zip64 locator missing"));
            }
            let record_pos = locator_pos
                .checked_sub(56)
                .ok_or(ZipError::Malformed("zip64 record missing"))?;
            let record = spool.read_at(record_pos, 56)?;
            if u32_at(&record, 0) != EOCD64_SIG {
                return Err(ZipError::Malformed("zip64 record missing"));
            }
            count = u64_at(&record, 32);
            size = u64_at(&record, 40);
            offset = u64_at(&record, 48);
            end = record_pos;
        }
        let start = end.checked_sub(size).ok_or(ZipError::Malformed(
            "central directory larger than the file",
        ))?;
        let prefix = start
            .checked_sub(offset)
            .ok_or(ZipError::Malformed("central directory offset past its end"))?;
        if count > MAX_ENTRIES || count.saturating_mul(46) > size {
            return Err(ZipError::Malformed("implausible number of entries"));
        }
        Ok(Self {
            offset: start,
            size,
            count,
            prefix,
        })
    }

    /// The entries for which `keep` says yes, reading the whole directory once.
    pub fn entries(
        &self,
        spool: &mut Spool,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<Entry>, ZipError> {
        let mut reader = BufReader::new(spool.reader_at(self.offset, self.size)?);
        let mut kept = Vec::new();
        let mut fixed = [0u8; 46];
        let mut name = Vec::new();
        for _ in 0..self.count {
            reader
                .read_exact(&mut fixed)
                .map_err(|_| ZipError::Malformed("central directory truncated"))?;
            if u32_at(&fixed, 0) != CENTRAL_SIG {
                return Err(ZipError::Malformed("bad central directory entry"));
            }
            let name_len = u64::from(u16_at(&fixed, 28));
            let extra_len = u64::from(u16_at(&fixed, 30));
            let comment_len = u64::from(u16_at(&fixed, 32));
            name.clear();
            (&mut reader).take(name_len).read_to_end(&mut name)?;
            let mut extra = Vec::new();
            (&mut reader).take(extra_len).read_to_end(&mut extra)?;
            io::copy(&mut (&mut reader).take(comment_len), &mut io::sink())?;
            if name.len() as u64 != name_len || extra.len() as u64 != extra_len {
                return Err(ZipError::Malformed("central directory truncated"));
            }
            let name = String::from_utf8_lossy(&name);
            if !keep(&name) {
                continue;
            }
            let mut entry = Entry {
                name: name.into_owned(),
                flags: u16_at(&fixed, 8),
                method: u16_at(&fixed, 10),
                compressed: u64::from(u32_at(&fixed, 20)),
                size: u64::from(u32_at(&fixed, 24)),
                local_offset: u64::from(u32_at(&fixed, 42)),
            };
            zip64_sizes(&mut entry, &extra);
            kept.push(entry);
        }
        Ok(kept)
    }

    /// The contents of `entry`, inflated, at most `limit` bytes of them.
    pub fn read(&self, spool: &mut Spool, entry: &Entry, limit: u64) -> Result<Vec<u8>, ZipError> {
        let mut out = Vec::new();
        self.copy(spool, entry, limit, &mut out)?;
        Ok(out)
    }

    /// Copies the contents of `entry`, inflated, to `to`; more than `limit` bytes is
    /// [`ZipError::TooLarge`], whatever the directory claimed.
    pub fn copy(
        &self,
        spool: &mut Spool,
        entry: &Entry,
        limit: u64,
        to: &mut dyn io::Write,
    ) -> Result<u64, ZipError> {
        if entry.size > limit {
            return Err(ZipError::TooLarge(limit));
        }
        if entry.flags & 1 != 0 {
            return Err(ZipError::Malformed("encrypted entry"));
        }
        let local = entry
            .local_offset
            .checked_add(self.prefix)
            .ok_or(ZipError::Malformed("entry offset overflows"))?;
        let header = spool
            .read_at(local, 30)
            .map_err(|_| ZipError::Malformed("local header past the end"))?;
        if u32_at(&header, 0) != LOCAL_SIG {
            return Err(ZipError::Malformed("bad local header"));
        }
        let data = local + 30 + u64::from(u16_at(&header, 26)) + u64::from(u16_at(&header, 28));
        let raw = spool
            .reader_at(data, entry.compressed)
            .map_err(|_| ZipError::Malformed("entry data past the end"))?;
        let copied = match entry.method {
            0 => io::copy(&mut raw.take(limit + 1), to),
            8 => io::copy(
                &mut flate2::read::DeflateDecoder::new(raw).take(limit + 1),
                to,
            ),
            _ => return Err(ZipError::Malformed("unsupported compression method")),
        }
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                ZipError::Malformed("corrupt deflate data")
            }
            _ => ZipError::Io(e),
        })?;
        if copied > limit {
            return Err(ZipError::TooLarge(limit));
        }
        Ok(copied)
    }
}

/// Applies the zip64 extended information extra field (header id 1): the 8-byte values of the
/// sizes and offset whose 4-byte fields are all ones, in that order.
fn zip64_sizes(entry: &mut Entry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let len = usize::from(u16_at(extra, 2));
        let Some(data) = extra.get(4..4 + len) else {
            return;
        };
        if id == 1 {
            let mut values = data.chunks_exact(8).map(|c| u64_at(c, 0));
            for field in [
                &mut entry.size,
                &mut entry.compressed,
                &mut entry.local_offset,
            ] {
                if *field == 0xffff_ffff {
                    match values.next() {
                        Some(v) => *field = v,
                        None => return,
                    }
                }
            }
            return;
        }
        extra = &extra[4 + len..];
    }
}

/// Writes zip archives for tests: each entry stored or deflated, as `jar` and `zip` write them.
#[cfg(test)]
pub(crate) fn build(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in entries {
        let body = if *deflate {
            let mut z =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(data).expect("deflate");
            z.finish().expect("deflate")
        } else {
            data.to_vec()
        };
        let crc = {
            let mut h = flate2::Crc::new();
            h.update(data);
            h.sum()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&method.to_le_bytes());
            v.extend_from_slice(&[0; 4]); // time, date
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&body);
        central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 10]); // comment, disk, attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stored_and_deflated_entries() {
        let text = b"hello hello hello hello".as_slice();
        let zip = build(&[("a.txt", text, false), ("dir/b.txt", text, true)]);
        let mut spool = Spool::from_vec(zip);
        let dir = Directory::find(&mut spool).expect("directory");
        let entries = dir.entries(&mut spool, |_| true).expect("entries");
        assert_eq!(entries.len(), 2);
        for e in &entries {
            assert_eq!(dir.read(&mut spool, e, 1000).expect("read"), text);
        }
        assert!(matches!(
            dir.read(&mut spool, &entries[1], 5),
            Err(ZipError::TooLarge(5))
        ));
    }

    #[test]
    fn reads_archives_with_a_prefix_and_a_comment() {
        let zip = build(&[("a.txt", b"x", true)]);
        let mut prefixed = b"#!/bin/sh\nexec java -jar \"$0\" \"$@\"\n".to_vec();
        prefixed.extend_from_slice(&zip);
        let len = prefixed.len();
        prefixed[len - 2..].copy_from_slice(&7u16.to_le_bytes());
        prefixed.extend_from_slice(b"comment");
        let mut spool = Spool::from_vec(prefixed);
        let dir = Directory::find(&mut spool).expect("directory");
        let entries = dir.entries(&mut spool, |_| true).expect("entries");
        assert_eq!(dir.read(&mut spool, &entries[0], 10).expect("read"), b"x");
    }

    #[test]
    fn inflating_stops_at_the_bound_even_when_the_directory_lies() {
        let zeros = vec![0u8; 10 << 20];
        let mut zip = build(&[("bomb", &zeros, true)]);
        // Make the directory claim an uncompressed size of 1 byte.
        let cd = u32_at(&zip, zip.len() - 6) as usize;
        zip[cd + 24..cd + 28].copy_from_slice(&1u32.to_le_bytes());
        let mut spool = Spool::from_vec(zip);
        let dir = Directory::find(&mut spool).expect("directory");
        let entries = dir.entries(&mut spool, |_| true).expect("entries");
        assert!(matches!(
            dir.read(&mut spool, &entries[0], 1 << 20),
            Err(ZipError::TooLarge(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let zip = build(&[("a.txt", b"aaaa", true), ("b.txt", b"bbbb", false)]);
        let attempt = |bytes: Vec<u8>| {
            let mut spool = Spool::from_vec(bytes);
            if let Ok(dir) = Directory::find(&mut spool)
                && let Ok(entries) = dir.entries(&mut spool, |_| true)
            {
                for e in &entries {
                    let _ = dir.read(&mut spool, e, 100);
                }
            }
        };
        for cut in 0..zip.len() {
            attempt(zip[..cut].to_vec());
            attempt(zip[cut..].to_vec());
        }
        for at in 0..zip.len() {
            for value in [0x00, 0x01, 0x7f, 0xff] {
                let mut bad = zip.clone();
                bad[at] = value;
                attempt(bad);
            }
        }
        // An end record claiming 65535 entries in a tiny directory is refused before reading.
        let mut lying = zip.clone();
        let len = lying.len();
        lying[len - 12..len - 10].copy_from_slice(&0xfffeu16.to_le_bytes());
        assert!(Directory::find(&mut Spool::from_vec(lying)).is_err());
    }
}
