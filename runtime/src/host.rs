//! The host operations a container needs around libcontainer: the overlayfs root, and the
//! loopback interface of its network namespace brought up. Behind a trait so that the plans that call them
//! are tested with a recording fake; [`LinuxHost`] does the real thing (root only).

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use libcontainer::syscall::linux::MountAttr;
use nix::mount::{MntFlags, MsFlags};

use crate::idmap::IdMap;

/// The syscalls used to prepare and tear down a container's host side.
pub trait Host {
    /// Mounts an overlay of `lower` (top layer first) under `upper` at `target`.
    fn mount_overlay(
        &self,
        layers_dir: &Path,
        lower: &[String],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> io::Result<()>;
    /// Brings `lo` up in the network namespace of process `pid` (a created container's init:
    /// libcontainer made the namespace, inside the container's user namespace if it has one,
    /// and the kernel creates `lo` down).
    fn loopback_up(&self, pid: i32) -> io::Result<()>;
    /// Mounts `source` at `target` with its IDs shifted by `map` (an idmapped mount): a file
    /// owned by ID `n` on disk is seen as the host ID that container ID `n` maps to.
    fn idmapped_bind(&self, source: &Path, target: &Path, map: &IdMap) -> io::Result<()>;
    /// Detaches whatever is mounted at `target`; nothing mounted is not an error.
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// The real host.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxHost;

/// The kernel copies mount options into one page.
const MAX_MOUNT_DATA: usize = 4095;

impl Host for LinuxHost {
    fn mount_overlay(
        &self,
        layers_dir: &Path,
        lower: &[String],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> io::Result<()> {
        // Lower directories are named relative to the layer directory, from a thread with its
        // own working directory, so that many layers fit in the one page of mount options.
        // No redirects or metadata-only copies: the upper directory must hold whole files and
        // plain whiteouts for `commit` to read it as a layer.
        let data = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        if data.len() > MAX_MOUNT_DATA {
            return Err(io::Error::other(format!(
                "the image has too many layers ({}) for one overlay mount",
                lower.len()
            )));
        }
        let (layers_dir, target) = (layers_dir.to_owned(), target.to_owned());
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                std::env::set_current_dir(&layers_dir)?;
                nix::mount::mount(
                    Some("overlay"),
                    &target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(data.as_str()),
                )?;
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the mounting thread panicked")))
        })
    }

    fn loopback_up(&self, pid: i32) -> io::Result<()> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        // setns(CLONE_NEWNET) moves only the calling thread, which ends right after.
        std::thread::scope(|s| {
            s.spawn(move || -> io::Result<()> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                let mut links = libcontainer::network::link::LinkClient::new(
                    libcontainer::network::wrapper::create_network_client(),
                )
                .map_err(io::Error::other)?;
                let lo = links.get_by_name("lo").map_err(io::Error::other)?;
                links.set_up(lo.header.index).map_err(io::Error::other)?;
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
        })
    }

    fn idmapped_bind(&self, source: &Path, target: &Path, map: &IdMap) -> io::Result<()> {
        let userns = user_namespace(map)?;
        let tree = rustix::mount::open_tree(
            rustix::fs::CWD,
            source,
            rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        libcontainer::syscall::syscall::create_syscall()
            .mount_setattr(
                tree.as_fd(),
                Path::new(""),
                libc::AT_EMPTY_PATH as u32,
                &attr,
                std::mem::size_of::<MountAttr>(),
            )
            .map_err(|e| io::Error::other(format!("cannot idmap {}: {e}", source.display())))?;
        rustix::mount::move_mount(
            tree.as_fd(),
            "",
            rustix::fs::CWD,
            target,
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `MOUNT_ATTR_IDMAP` (linux/mount.h).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The argument that makes the `berth` binary a [`userns_holder`].
pub const USERNS_HOLDER_ARG: &str = "__berth-userns-holder";

/// The body of the helper process that holds a new user namespace while its parent maps IDs
/// into it and takes a handle on it: unshares, says so on stdout, and waits for stdin to close.
/// (A multithreaded process cannot unshare its user namespace, hence a process of its own.)
pub fn userns_holder() -> i32 {
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
        eprintln!("cannot create a user namespace: {e}");
        return 1;
    }
    let mut out = io::stdout();
    if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
        return 1;
    }
    let _ = io::copy(&mut io::stdin(), &mut io::sink());
    0
}

/// A user namespace with `map`'s mappings, held by its file descriptor (the helper process
/// that created it is gone when this returns).
fn user_namespace(map: &IdMap) -> io::Result<std::fs::File> {
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg(USERNS_HOLDER_ARG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let result = (|| {
        let mut ready = String::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut ready)?;
        if ready.trim() != "ready" {
            return Err(io::Error::other("the user namespace helper failed"));
        }
        let pid = child.id();
        std::fs::write(format!("/proc/{pid}/uid_map"), map.proc_map(false))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map.proc_map(true))?;
        std::fs::File::open(format!("/proc/{pid}/ns/user"))
    })();
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

/// A host that records what it was asked to do (for tests of the plans above it).
#[derive(Debug, Default)]
pub struct RecordingHost {
    /// One line per call.
    pub calls: std::sync::Mutex<Vec<String>>,
}

impl RecordingHost {
    fn record(&self, line: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(line);
        }
    }
}

impl Host for RecordingHost {
    fn mount_overlay(
        &self,
        _layers_dir: &Path,
        lower: &[String],
        _upper: &Path,
        _work: &Path,
        target: &Path,
    ) -> io::Result<()> {
        self.record(format!(
            "overlay {} on {}",
            lower.join(":"),
            target.display()
        ));
        Ok(())
    }

    fn loopback_up(&self, pid: i32) -> io::Result<()> {
        self.record(format!("lo up in {pid}"));
        Ok(())
    }

    fn idmapped_bind(&self, source: &Path, target: &Path, map: &IdMap) -> io::Result<()> {
        self.record(format!(
            "idmapped {} on {} as {}",
            source.display(),
            target.display(),
            map.proc_map(false).trim()
        ));
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record(format!("unmount {}", target.display()));
        Ok(())
    }
}
