//! A container's output, kept in its `log` file as frames so that stdout and stderr stay
//! apart and any bytes (not only UTF-8 lines) come back exactly:
//!
//! ```text
//! stream: u8 (1 stdout, 2 stderr) | unix time in ns: u64 LE | length: u32 LE | bytes
//! ```
//!
//! A frame cut short by a crash is ignored when read.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Which output a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

const HEADER: usize = 1 + 8 + 4;

/// Appends frames to a log file.
#[derive(Debug)]
pub struct LogWriter {
    file: fs::File,
}

impl LogWriter {
    /// Opens (creating) the log for appending.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogWriter { file })
    }

    /// Appends one frame.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for chunk in bytes.chunks(u32::MAX as usize) {
            let mut frame = Vec::with_capacity(HEADER + chunk.len());
            frame.push(stream as u8);
            frame.extend_from_slice(&nanos.to_le_bytes());
            frame.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            frame.extend_from_slice(chunk);
            // One write per frame on an O_APPEND file: frames never interleave.
            self.file.write_all(&frame)?;
        }
        Ok(())
    }
}

/// One frame: which stream, and its bytes.
pub type Frame = (Stream, Vec<u8>);

/// Reads frames from `offset`; returns the frames and the offset after the last whole one.
pub fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<Frame>, u64)> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut frames = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= HEADER {
        let stream = match bytes[at] {
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            _ => break,
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[at + 9..at + HEADER]);
        let len = u32::from_le_bytes(len) as usize;
        if bytes.len() - at - HEADER < len {
            break;
        }
        frames.push((stream, bytes[at + HEADER..at + HEADER + len].to_vec()));
        at += HEADER + len;
    }
    Ok((frames, offset + at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log");
        let mut w = LogWriter::open(&path).expect("open");
        w.write(Stream::Stdout, b"hello\n").expect("w");
        w.write(Stream::Stderr, &[0xff, 0, 1]).expect("w");
        let (frames, end) = read_from(&path, 0).expect("read");
        assert_eq!(
            frames,
            vec![
                (Stream::Stdout, b"hello\n".to_vec()),
                (Stream::Stderr, vec![0xff, 0, 1])
            ]
        );
        // A crash mid-frame: the partial frame is not returned, and reading resumes there.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        f.write_all(&[1, 0, 0]).expect("torn");
        let (more, end2) = read_from(&path, end).expect("read");
        assert!(more.is_empty());
        assert_eq!(end2, end);
    }
}
