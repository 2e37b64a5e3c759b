//! Seekable access to a streamed file: ELF section headers and a zip's central directory sit at
//! the end of their files, and the layer walker hands over a stream.
//!
//! Small files are kept in memory; larger ones go to an anonymous temporary file, so memory stays
//! flat whatever the image holds. Both are bounded: a stream longer than the limit is refused
//! before it is all read.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use super::super::CatalogError;

/// Files up to this size are spooled to memory, larger ones to a temporary file.
pub const MEMORY_LIMIT: u64 = 4 << 20;

/// A file's bytes with random access, in memory or in an anonymous temporary file.
#[derive(Debug)]
pub struct Spool {
    inner: Inner,
    len: u64,
}

#[derive(Debug)]
enum Inner {
    Memory(Cursor<Vec<u8>>),
    File(File),
}

impl Spool {
    /// Copies `contents` (announced as `size` bytes) into a spool; more than `limit` bytes is
    /// [`CatalogError::TooLarge`], whatever `size` said.
    pub fn fill(
        what: &'static str,
        size: u64,
        contents: &mut dyn Read,
        limit: u64,
    ) -> Result<Self, CatalogError> {
        if size > limit {
            return Err(CatalogError::TooLarge { what, limit });
        }
        let mut bounded = contents.take(limit + 1);
        let (inner, len) = if size <= MEMORY_LIMIT {
            // The header's size decides where to spool; a stream that lies about it is still
            // held to `limit`, and goes to a file once past the memory bound.
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut bounded)
                .take(MEMORY_LIMIT + 1)
                .read_to_end(&mut buf)?;
            if buf.len() as u64 <= MEMORY_LIMIT {
                let len = buf.len() as u64;
                (Inner::Memory(Cursor::new(buf)), len)
            } else {
                let mut file = tempfile::tempfile()?;
                file.write_all(&buf)?;
                drop(buf);
                let len = MEMORY_LIMIT + 1 + io::copy(&mut bounded, &mut file)?;
                (Inner::File(file), len)
            }
        } else {
            let mut file = tempfile::tempfile()?;
            let len = io::copy(&mut bounded, &mut file)?;
            (Inner::File(file), len)
        };
        if len > limit {
            return Err(CatalogError::TooLarge { what, limit });
        }
        Ok(Self { inner, len })
    }

    /// An in-memory spool of `bytes` (tests, and data already in memory).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let len = bytes.len() as u64;
        Self {
            inner: Inner::Memory(Cursor::new(bytes)),
            len,
        }
    }

    /// A spool of a temporary file already written (its length is its size now).
    pub fn from_file(mut file: File) -> io::Result<Self> {
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            inner: Inner::File(file),
            len,
        })
    }

    /// The number of bytes spooled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was spooled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `len` bytes at `offset`; a range past the end is an `UnexpectedEof` error, checked
    /// before anything is allocated, so a corrupt offset or length never sizes a buffer.
    pub fn read_at(&mut self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.check_range(offset, len)?;
        let mut buf = vec![0; usize::try_from(len).map_err(|_| eof())?];
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// A reader of `len` bytes at `offset`, range-checked like [`Spool::read_at`].
    pub fn reader_at(&mut self, offset: u64, len: u64) -> io::Result<io::Take<&mut Self>> {
        self.check_range(offset, len)?;
        self.seek(SeekFrom::Start(offset))?;
        Ok(self.take(len))
    }

    fn check_range(&self, offset: u64, len: u64) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(eof()),
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "range past the end of the file",
    )
}

impl Read for Spool {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Memory(c) => c.read(buf),
            Inner::File(f) => f.read(buf),
        }
    }
}

impl Seek for Spool {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match &mut self.inner {
            Inner::Memory(c) => c.seek(pos),
            Inner::File(f) => f.seek(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_stay_in_memory_and_large_ones_go_to_a_file() {
        let small = Spool::fill("t", 3, &mut &b"abc"[..], 100).expect("small");
        assert!(matches!(small.inner, Inner::Memory(_)));
        let big = vec![7u8; (MEMORY_LIMIT + 10) as usize];
        let mut spool = Spool::fill("t", big.len() as u64, &mut &big[..], 1 << 30).expect("big");
        assert!(matches!(spool.inner, Inner::File(_)));
        assert_eq!(spool.len(), big.len() as u64);
        assert_eq!(
            spool.read_at(MEMORY_LIMIT, 10).expect("read"),
            vec![7u8; 10]
        );
    }

    #[test]
    fn a_stream_longer_than_its_header_said_is_still_bounded() {
        // The header claims 10 bytes; the stream has 5 MiB. Memory must not hold it all.
        let data = vec![0u8; 5 << 20];
        let err = Spool::fill("t", 10, &mut &data[..], 1 << 20).expect_err("bounded");
        assert!(matches!(err, CatalogError::TooLarge { limit, .. } if limit == 1 << 20));
        // Past the memory bound but within the limit, it moves to a file.
        let spool = Spool::fill("t", 10, &mut &data[..], 1 << 30).expect("spooled");
        assert!(matches!(spool.inner, Inner::File(_)));
        assert_eq!(spool.len(), 5 << 20);
    }

    #[test]
    fn ranges_past_the_end_are_errors_not_allocations() {
        let mut spool = Spool::from_vec(vec![1, 2, 3]);
        assert!(spool.read_at(1, u64::MAX).is_err());
        assert!(spool.read_at(u64::MAX, 2).is_err());
        assert!(spool.read_at(2, 2).is_err());
        assert_eq!(spool.read_at(1, 2).expect("in range"), vec![2, 3]);
    }
}
