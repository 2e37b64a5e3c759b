//! The host operations a container needs around libcontainer: the overlayfs root, and the
//! loopback interface of its network namespace brought up. Behind a trait so that the plans that call them
//! are tested with a recording fake; [`LinuxHost`] does the real thing (root only).

use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

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

    fn unmount(&self, target: &Path) -> io::Result<()> {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
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

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record(format!("unmount {}", target.display()));
        Ok(())
    }
}
