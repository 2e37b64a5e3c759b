//! A file several cataloguers want, kept once for all of them: in memory when small, else in
//! an anonymous temporary file (unlinked at once, gone when dropped).

use std::io::{self, Read, Seek, Write};

/// Files up to this size are spooled in memory.
pub const SPOOL_IN_MEMORY: u64 = 1024 * 1024;

/// A file's bytes kept for several readers.
pub(crate) enum Spool {
    Memory(Vec<u8>),
    File(std::fs::File),
}

impl Spool {
    /// Reads all of `data` (`size` bytes, as its header says).
    pub(crate) fn fill(data: &mut dyn Read, size: u64) -> io::Result<Spool> {
        if size <= SPOOL_IN_MEMORY {
            let mut buf = Vec::with_capacity(size as usize);
            data.read_to_end(&mut buf)?;
            return Ok(Spool::Memory(buf));
        }
        let mut file = tempfile::tempfile()?;
        io::copy(data, &mut file)?;
        file.flush()?;
        Ok(Spool::File(file))
    }

    /// A reader from the start of the bytes.
    pub(crate) fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        match self {
            Spool::Memory(buf) => Ok(Box::new(buf.as_slice())),
            Spool::File(file) => {
                file.rewind()?;
                Ok(Box::new(&*file))
            }
        }
    }
}
