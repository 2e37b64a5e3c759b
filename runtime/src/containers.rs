//! Containers on disk, one directory each, so that state survives the CLI and the machine:
//!
//! ```text
//! ROOT/containers/ID/
//!   container.json   the record: image, process, options and state (replaced atomically)
//!   bundle/          config.json (the OCI runtime spec), seccomp.json (its seccomp profile,
//!                    kept apart: see `seccomp_filter`) and rootfs/ (the overlay mount)
//!   upper/ work/     the overlay's writable layer (what `commit` turns into a layer)
//!   etc/             hostname, hosts, resolv.conf (bind-mounted into the container)
//!   log              framed stdout/stderr (see `logs`)
//! ROOT/run/ID/       libcontainer's own state
//! ROOT/seccomp/      compiled seccomp programs, named by what they were compiled from
//! ```
//!
//! A record that says `running` is checked against the kernel: if its process is gone (or
//! the pid now belongs to another process) the container reads as exited.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::ProcessPlan;
use crate::spec::{Limits, Volume};
use crate::store::ImageRecord;

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum State {
    /// Prepared, not started.
    Created,
    /// Its process runs.
    Running {
        /// The init process on the host.
        pid: i32,
        /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22), so that a
        /// reused pid is never mistaken for the container.
        pid_start: u64,
        /// When it started (Unix seconds).
        started: u64,
    },
    /// Its process ended.
    Exited {
        /// Exit status, 128 + signal if killed, `None` if nobody saw it end (the supervisor
        /// was killed or the machine restarted).
        code: Option<i32>,
        /// When it was noticed (Unix seconds).
        finished: u64,
    },
}

/// Networking of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Its own network namespace with only `lo`.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// A container's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The image as named when it was run.
    pub image: String,
    /// The image's record at that time (a later pull of the name does not change it).
    pub image_record: ImageRecord,
    /// When it was created (Unix seconds).
    pub created: u64,
    /// What runs.
    pub process: ProcessPlan,
    /// Hostname.
    pub hostname: String,
    /// `-t`.
    pub tty: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// Network mode.
    pub network: Network,
    /// The user namespace's ID mappings (`None`: the host's user namespace).
    #[serde(default)]
    pub userns: Option<crate::idmap::IdMap>,
    /// `-v` mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// State.
    pub state: State,
}

impl ContainerRecord {
    /// The first 12 digits of the id.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// No container has that id, id prefix or name.
    #[error("no such container: {0}")]
    NotFound(String),
    /// An id prefix matches several containers.
    #[error("{0} matches more than one container: give more of the id or the name")]
    Ambiguous(String),
    /// The name is taken.
    #[error("the name {0:?} is already in use by container {1}")]
    NameInUse(String, String),
    /// The name has characters Docker would not accept.
    #[error("invalid container name {0:?}: use letters, digits, _ . - (first a letter or digit)")]
    BadName(String),
    /// `container.json` does not parse.
    #[error("the record {path} is damaged: {reason}")]
    Corrupt {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The start time of a live process in clock ticks since boot; `None` if it does not exist
/// or has ended (a zombie whose parent has not reaped it yet counts as ended).
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Docker's rule for names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The containers under a root.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
    run: PathBuf,
    seccomp: PathBuf,
}

impl Containers {
    /// Opens (creating) `ROOT/containers` and `ROOT/run`.
    pub fn open(root: &Path) -> Result<Containers, ContainerError> {
        let dir = root.join("containers");
        let run = root.join("run");
        for d in [&dir, &run] {
            fs::create_dir_all(d).map_err(io_err("cannot create", d))?;
        }
        Ok(Containers {
            dir,
            run,
            seccomp: root.join("seccomp"),
        })
    }

    /// A container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// libcontainer's state root.
    pub fn run_root(&self) -> &Path {
        &self.run
    }

    /// Compiled seccomp programs, shared by all containers (see [`crate::seccomp_filter`]).
    pub fn seccomp_cache(&self) -> &Path {
        &self.seccomp
    }

    /// Holds an exclusive lock on the container list while `f` runs (names stay unique
    /// when two `run`s race).
    fn locked<T>(
        &self,
        f: impl FnOnce() -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let path = self.dir.join(".lock");
        let file = fs::File::create(&path).map_err(io_err("cannot create", &path))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("cannot lock", &path)(e.into()))?;
        let result = f();
        drop(lock);
        result
    }

    /// Saves a new record, refusing a name in use; creates its directory.
    pub fn create(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        if !valid_name(&record.name) {
            return Err(ContainerError::BadName(record.name.clone()));
        }
        self.locked(|| {
            if let Some(other) = self.list()?.into_iter().find(|c| c.name == record.name) {
                return Err(ContainerError::NameInUse(
                    record.name.clone(),
                    other.short_id().to_owned(),
                ));
            }
            let dir = self.dir(&record.id);
            fs::create_dir(&dir).map_err(io_err("cannot create", &dir))?;
            self.save(record)
        })
    }

    /// Replaces a record atomically.
    pub fn save(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        let path = dir.join("container.json");
        let temp = dir.join(format!(".container.json.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| ContainerError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = fs::File::create(&temp).map_err(io_err("cannot create", &temp))?;
        f.write_all(&bytes).map_err(io_err("cannot write", &temp))?;
        f.sync_all().map_err(io_err("cannot sync", &temp))?;
        fs::rename(&temp, &path).map_err(io_err("cannot replace", &path))
    }

    /// Loads a record by full id, with its state checked against the kernel.
    pub fn load(&self, id: &str) -> Result<ContainerRecord, ContainerError> {
        let path = self.dir(id).join("container.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io_err("cannot read", &path)(e)),
        };
        let mut record: ContainerRecord =
            serde_json::from_slice(&bytes).map_err(|e| ContainerError::Corrupt {
                path,
                reason: e.to_string(),
            })?;
        if let State::Running { pid, pid_start, .. } = record.state
            && process_start(pid) != Some(pid_start)
        {
            record.state = State::Exited {
                code: None,
                finished: now(),
            };
        }
        Ok(record)
    }

    /// Every container, oldest first. Directories without a readable record (a `run` that
    /// crashed before writing one, a removal in progress) are skipped.
    pub fn list(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(io_err("cannot list", &self.dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if id.len() != 64 {
                continue;
            }
            if let Ok(record) = self.load(id) {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Finds a container by name, full id or unambiguous id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerRecord, ContainerError> {
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.name == key || c.id == key) {
            return Ok(c.clone());
        }
        let mut matches = all.into_iter().filter(|c| c.id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some(c), None) if !key.is_empty() => Ok(c),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(key.to_owned())),
            _ => Err(ContainerError::NotFound(key.to_owned())),
        }
    }

    /// Removes a container's directories (after its mounts are gone). Renamed first, so a
    /// half-removed container is never listed.
    pub fn remove_dir(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        let doomed = self.dir.join(format!(".removing-{id}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("cannot remove", &dir)(e)),
        }
        fs::remove_dir_all(&doomed).map_err(io_err("cannot remove", &doomed))?;
        let lc = self.run.join(id);
        if lc.exists() {
            fs::remove_dir_all(&lc).map_err(io_err("cannot remove", &lc))?;
        }
        Ok(())
    }

    /// Whether any container (in any state) uses the image manifest `manifest`.
    pub fn using_image(&self, manifest: &str) -> Result<Vec<ContainerRecord>, ContainerError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.image_record.manifest == manifest)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("web-1.blue_x"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn this_process_has_a_start_time() {
        let me = std::process::id() as i32;
        assert!(process_start(me).is_some());
        assert_eq!(process_start(me), process_start(me));
        assert_eq!(process_start(i32::MAX), None);
    }
}
