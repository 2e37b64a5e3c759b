//! Terminals for `-t`: the container creates its pty inside its own `/dev/pts` and hands the
//! master to us over a console socket (runc's protocol, which libcontainer speaks); our own
//! terminal goes raw while attached and its size follows ours.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::termios::{self, OptionalActions, Termios};

/// A listening console socket; removed when dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a short path (socket paths are limited to 107 bytes, container
    /// directories can be longer).
    pub fn bind(id: &str) -> io::Result<ConsoleSocket> {
        let path = std::env::temp_dir().join(format!(
            "berth-console-{}-{}.sock",
            &id[..12.min(id.len())],
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleSocket { listener, path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the container's connection and takes the pty master it sends.
    pub fn receive(&self) -> io::Result<OwnedFd> {
        let (stream, _) = self.listener.accept()?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 4096];
        rustix::net::recvmsg(
            stream.as_fd(),
            &mut [io::IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        Err(io::Error::other("the container sent no terminal"))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts a terminal in raw mode until dropped (keys go to the container untouched: its own
/// line discipline turns Ctrl-C into SIGINT).
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal.
    pub fn enter(fd: impl AsFd) -> Option<RawMode> {
        let fd = fd.as_fd().try_clone_to_owned().ok()?;
        if !termios::isatty(&fd) {
            return None;
        }
        let saved = termios::tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&fd, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

/// The window size (rows, columns) of terminal `of`; `None` when it is not a terminal.
pub fn size(of: impl AsFd) -> Option<(u16, u16)> {
    termios::tcgetwinsize(of).ok().map(|w| (w.ws_row, w.ws_col))
}

/// Gives `to` the window size of `from`, if `from` is a terminal.
pub fn copy_size(from: impl AsFd, to: impl AsFd) {
    if let Ok(size) = termios::tcgetwinsize(from) {
        let _ = termios::tcsetwinsize(to, size);
    }
}
