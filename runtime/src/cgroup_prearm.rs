//! Overlaps the kernel's wait before the first cgroup migration with the rest of `run`.
//!
//! Moving a process into a cgroup through `cgroup.procs` takes the kernel's global
//! threadgroup lock for writing. Unless the host mounted a hierarchy with `favordynmods`,
//! that lock sits in its fast reader mode and the first writer waits a whole RCU grace
//! period (6–35 ms on the machines measured) to switch it over; writers that come while it
//! is switched, or within a grace period after the last one left, do not wait. libcontainer
//! moves the container's first process into its cgroups late in `run`, after the root
//! filesystem, the spec and the state are written.
//!
//! [`prearm`] starts, on a thread of its own, migrations that change nothing (this process
//! into the cgroup it is already in), so that the grace period elapses while `run` does its
//! other work and the container's own migration finds the lock already switched.
//! It is best effort: if the write is refused or the file is missing, `run` pays the wait
//! as before.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

/// Where this process's own `cgroup.procs` is: the v1 `pids` hierarchy, else the cgroup v2
/// one, read from `/proc/self/cgroup`.
fn own_procs_file(proc_self_cgroup: &str) -> Option<PathBuf> {
    let mut unified = None;
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            return Some(
                PathBuf::from("/sys/fs/cgroup/pids")
                    .join(path)
                    .join("cgroup.procs"),
            );
        }
        if controllers.is_empty() {
            unified = Some(
                PathBuf::from("/sys/fs/cgroup")
                    .join(path)
                    .join("cgroup.procs"),
            );
        }
    }
    unified
}

/// How often, and for how long, the no-op migration is repeated: each write inside the
/// kernel's window keeps the lock switched for another grace period, so the container's
/// migration finds it switched however long `run`'s preparation takes (within the bound).
const REPEAT_EVERY: Duration = Duration::from_millis(3);
const REPEAT_FOR: Duration = Duration::from_millis(60);

/// Starts the no-op migrations on a detached thread and returns at once.
pub fn prearm() {
    let Ok(cgroups) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    let Some(procs) = own_procs_file(&cgroups) else {
        return;
    };
    // The thread must never take a signal meant for `run` (SIGCHLD when the container exits,
    // the signals it forwards): `run` waits for them through a descriptor, which only sees
    // signals that every thread blocks. A thread starts with its creator's mask, so block
    // everything around the spawn.
    let all = SigSet::all();
    let mut previous = SigSet::empty();
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut previous)).is_err() {
        return;
    }
    // The thread ends by itself; if `run` finishes first, the process's exit ends it.
    let _ = std::thread::Builder::new()
        .name("cgroup-prearm".into())
        .spawn(move || {
            let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(&procs) else {
                return;
            };
            let pid = std::process::id().to_string();
            let started = Instant::now();
            while started.elapsed() < REPEAT_FOR {
                if file.write_all(pid.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(REPEAT_EVERY);
            }
        });
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pids_hierarchy_on_cgroup_v1() {
        let cgroups = "12:pids:/user.slice\n11:cpu,cpuacct:/user.slice\n0::/user.slice\n";
        assert_eq!(
            own_procs_file(cgroups),
            Some(PathBuf::from("/sys/fs/cgroup/pids/user.slice/cgroup.procs"))
        );
    }

    #[test]
    fn falls_back_to_the_unified_hierarchy() {
        assert_eq!(
            own_procs_file("0::/system.slice/berth.service\n"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/berth.service/cgroup.procs"
            ))
        );
        assert_eq!(
            own_procs_file("0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
        );
    }

    #[test]
    fn nothing_without_a_usable_hierarchy() {
        assert_eq!(own_procs_file("3:cpu:/a\n"), None);
        assert_eq!(own_procs_file(""), None);
    }
}
