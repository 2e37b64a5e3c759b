//! Bounded line reading for the text databases (dpkg, apk): a line, and the file, each have a
//! most size, so a 1 GiB line or an endless file is an error, not an allocation.

use std::io::{BufRead, BufReader, Read};

use super::CatalogError;

/// Lines of a file, each without its `\n`.
pub(crate) struct Lines<'a> {
    inner: BufReader<&'a mut dyn Read>,
    buf: Vec<u8>,
    what: &'static str,
    max_line: usize,
    max_file: u64,
    read: u64,
    /// The number of the line last returned, from 1.
    pub number: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(
        contents: &'a mut dyn Read,
        what: &'static str,
        max_line: usize,
        max_file: u64,
    ) -> Self {
        Lines {
            inner: BufReader::with_capacity(64 * 1024, contents),
            buf: Vec::new(),
            what,
            max_line,
            max_file,
            read: 0,
            number: 0,
        }
    }

    /// The next line, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line<'_>>, CatalogError> {
        self.buf.clear();
        let limit = self.max_line as u64 + 1;
        let n = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.read += n as u64;
        if self.read > self.max_file {
            return Err(CatalogError::TooLarge {
                what: self.what,
                limit: self.max_file,
            });
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if n as u64 == limit {
            return Err(malformed(
                self.what,
                self.number,
                format!("longer than {} bytes", self.max_line),
            ));
        }
        Ok(Some(Line {
            bytes: &self.buf,
            what: self.what,
            number: self.number,
        }))
    }

    /// A [`CatalogError::Malformed`] naming the last line read.
    pub(crate) fn malformed(&self, reason: impl std::fmt::Display) -> CatalogError {
        malformed(self.what, self.number, reason)
    }
}

/// One line, which can name itself in an error.
pub(crate) struct Line<'a> {
    pub bytes: &'a [u8],
    what: &'static str,
    number: usize,
}

impl Line<'_> {
    /// A [`CatalogError::Malformed`] naming this line.
    pub(crate) fn malformed(&self, reason: impl std::fmt::Display) -> CatalogError {
        malformed(self.what, self.number, reason)
    }
}

fn malformed(what: &'static str, number: usize, reason: impl std::fmt::Display) -> CatalogError {
    CatalogError::Malformed {
        what,
        reason: format!("line {number}: {reason}"),
    }
}
