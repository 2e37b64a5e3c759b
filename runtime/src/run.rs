//! `run`: prepare a container (record, overlay root, user, `/etc` files, network namespace,
//! runtime spec), start it with libcontainer, and supervise it until it exits (see
//! [`crate::supervise`]). Preparing and tearing down are idempotent, so a crash at any point
//! leaves something `rm` can finish.

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::LinuxSeccomp;

use crate::containers::{ContainerError, ContainerRecord, Containers, Network, State, now};
use crate::host::Host;
use crate::idmap::IdMap;
use crate::process::{self, ProcessError, ProcessOptions};
use crate::seccomp_filter::{self, SeccompExecutor};
use crate::spec::{self, Limits, Volume};
use crate::store::{Store, StoreError};
use crate::user::{self, UserError};

/// `run`'s options beyond the process.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Command, entrypoint, environment, user, working directory, terminal.
    pub process: ProcessOptions,
    /// `--name`.
    pub name: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-v`.
    pub volumes: Vec<Volume>,
    /// `--tmpfs`.
    pub tmpfs: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--memory`, `--cpus`, `--pids-limit`.
    pub limits: Limits,
    /// `--network`.
    pub network: Network,
    /// `--uidmap`, `--gidmap`: a user namespace of its own.
    pub userns: Option<IdMap>,
    /// `--rm`.
    pub remove: bool,
}

/// Why a container could not be created or started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The image is not in the store.
    #[error("no such image: {0} (pull it first)")]
    NoImage(String),
    /// The image config does not parse.
    #[error("the image config of {image} is invalid: {reason}")]
    BadConfig {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// The command, environment or working directory.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The user.
    #[error(transparent)]
    User(#[from] UserError),
    /// The container list.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The image store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A host operation.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The command is not in the image.
    #[error("{0}")]
    CommandNotFound(String),
    /// libcontainer refused or failed.
    #[error("cannot start the container: {0}")]
    Runtime(String),
}

fn host_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Host { what, source }
}

/// A random 64-hex-digit id.
pub fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Paths inside a container's directory.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// The container's directory.
    pub dir: PathBuf,
}

impl ContainerPaths {
    /// For `id`.
    pub fn new(containers: &Containers, id: &str) -> ContainerPaths {
        ContainerPaths {
            dir: containers.dir(id),
        }
    }
    /// The bundle (config.json and rootfs).
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    /// The overlay mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle/rootfs")
    }
    /// The overlay's upper directory.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    /// The overlay's work directory.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// hostname, hosts, resolv.conf.
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
    /// Where the image layers are seen through an idmapped mount (user namespaces only).
    pub fn layers(&self) -> PathBuf {
        self.dir.join("layers")
    }
    /// The seccomp profile the container was created with (left out of `config.json`).
    pub fn seccomp_profile(&self) -> PathBuf {
        self.bundle().join("seccomp.json")
    }
    /// The output log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
}

/// Creates a container from `image` (a name in the store): its record, overlay root,
/// `/etc` files, network namespace and runtime spec. Nothing runs yet.
pub fn create(
    store: &Store,
    containers: &Containers,
    host: &dyn Host,
    image: &str,
    options: &RunOptions,
) -> Result<ContainerRecord, RunError> {
    let image_record = store
        .image(image)?
        .ok_or_else(|| RunError::NoImage(image.to_owned()))?;
    let config: ImageConfiguration =
        serde_json::from_slice(&store.read_blob(&image_record.config)?).map_err(|e| {
            RunError::BadConfig {
                image: image.to_owned(),
                reason: e.to_string(),
            }
        })?;
    let id = random_id().map_err(host_err("cannot read random bytes"))?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_owned());
    let plan = process::plan(
        config.config().as_ref(),
        &options.process,
        &hostname,
        &|k| std::env::var(k).ok(),
    )?;
    let record = ContainerRecord {
        name: options.name.clone().unwrap_or_else(|| id[..12].to_owned()),
        id,
        image: image.to_owned(),
        image_record,
        created: now(),
        process: plan,
        hostname,
        tty: options.process.tty,
        auto_remove: options.remove,
        network: options.network,
        userns: options.userns.clone(),
        volumes: options.volumes.clone(),
        limits: options.limits,
        state: State::Created,
    };
    containers.create(&record)?;
    match prepare(store, containers, host, &record, options) {
        Ok(record) => Ok(record),
        Err(e) => {
            discard(containers, host, &record);
            Err(e)
        }
    }
}

fn prepare(
    store: &Store,
    containers: &Containers,
    host: &dyn Host,
    record: &ContainerRecord,
    options: &RunOptions,
) -> Result<ContainerRecord, RunError> {
    let paths = ContainerPaths::new(containers, &record.id);
    for d in [paths.upper(), paths.work(), paths.rootfs(), paths.etc()] {
        fs::create_dir_all(&d).map_err(host_err(format!("cannot create {}", d.display())))?;
    }
    // Lower directories, top layer first, named relative to ROOT/layers/sha256.
    let mut lower = Vec::new();
    for digest in record.image_record.layers.iter().rev() {
        let dir = store.layer_path(digest)?;
        if !dir.is_dir() {
            return Err(RunError::Host {
                what: format!("layer {digest} of {} is missing", record.image),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        lower.push(crate::store::digest_hex(digest)?.to_owned());
    }
    let mut layers_dir = store.root().join("layers/sha256");
    if let Some(map) = &record.userns {
        reachable_by_root(&paths.dir, map)?;
        // The shared layers, seen with the container's IDs shifted to its host IDs; and its
        // root directory (the upper one) owned by its root.
        let seen = paths.layers();
        fs::create_dir_all(&seen).map_err(host_err("cannot create the layers mount point"))?;
        host.idmapped_bind(&layers_dir, &seen, map)
            .map_err(host_err(
                "cannot mount the image layers with the ID mapping",
            ))?;
        layers_dir = seen;
        chown_to_root(&paths.upper(), map)?;
    }
    if lower.is_empty() {
        // An image without layers still needs one lower directory.
        let empty = paths.dir.join("empty");
        fs::create_dir_all(&empty).map_err(host_err("cannot create the empty layer"))?;
        lower.push(empty.to_string_lossy().into_owned());
    }
    host.mount_overlay(
        &layers_dir,
        &lower,
        &paths.upper(),
        &paths.work(),
        &paths.rootfs(),
    )
    .map_err(host_err("cannot mount the container's root filesystem"))?;

    let rootfs = paths.rootfs();
    // Every path inside the container's root is resolved through it, never followed out.
    let root = pathrs::Root::open(&rootfs).map_err(|e| RunError::Host {
        what: "cannot open the container's root".into(),
        source: io::Error::other(e),
    })?;
    let read = |p: &str| {
        user::read_in_root(&root, p).map_err(host_err(format!("cannot read {p} of the image")))
    };
    let user = user::resolve(
        &record.process.user,
        &read("/etc/passwd")?,
        &read("/etc/group")?,
    )?;
    if let Some(map) = &record.userns {
        let unmapped_gid = std::iter::once(user.gid)
            .chain(user.additional_gids.iter().copied())
            .find(|g| map.host_gid(*g).is_none());
        if map.host_uid(user.uid).is_none() || unmapped_gid.is_some() {
            return Err(RunError::Runtime(format!(
                "the user {}:{} is not mapped by --uidmap/--gidmap",
                user.uid,
                unmapped_gid.unwrap_or(user.gid)
            )));
        }
    }
    let mut process = record.process.clone();
    if !process.env.iter().any(|e| e.starts_with("HOME=")) {
        process.env.push(format!("HOME={}", user.home));
    }
    if process.cwd != "/" {
        // Docker creates a missing working directory.
        root.mkdir_all(
            &process.cwd,
            &std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| RunError::Host {
            what: format!("cannot create the working directory {}", process.cwd),
            source: io::Error::other(e),
        })?;
    }
    write_etc(&paths.etc(), &record.hostname, record.network)?;
    if let Some(map) = &record.userns {
        for file in ["hostname", "hosts", "resolv.conf"] {
            chown_to_root(&paths.etc().join(file), map)?;
        }
    }
    let mut spec = spec::build(&spec::SpecInput {
        rootfs: &rootfs,
        read_only: options.read_only,
        hostname: &record.hostname,
        process: &process,
        user: &user,
        tty: record.tty,
        etc: &paths.etc(),
        own_network: record.network == Network::None,
        userns: record.userns.as_ref(),
        volumes: &options.volumes,
        tmpfs: &options.tmpfs,
        limits: options.limits,
        cgroup: &format!("/berth/{}", record.id),
    })
    .map_err(|e| RunError::Runtime(format!("invalid runtime spec: {e}")))?;
    // libcontainer would compile the seccomp profile inside the container on every start;
    // it is kept beside the spec instead, compiled once per host and loaded by our executor.
    let profile = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.seccomp_mut().take());
    if let Some(profile) = &profile {
        seccomp_filter::load_or_compile(containers.seccomp_cache(), profile)
            .map_err(|e| RunError::Runtime(e.to_string()))?;
        write_json(&paths.seccomp_profile(), profile)?;
    }
    write_json(&paths.bundle().join("config.json"), &spec)?;
    Ok(record.clone())
}

/// The container's root user must be able to reach its directory (libcontainer mounts the
/// root filesystem from inside the user namespace); a private store (mode 0700) is refused
/// here, naming the directory to open up, rather than by the kernel mid-start.
fn reachable_by_root(dir: &Path, map: &IdMap) -> Result<(), RunError> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (map.host_uid(0), map.host_gid(0));
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)
            .map_err(host_err(format!("cannot read {}", ancestor.display())))?;
        let mode = meta.mode();
        let searchable = mode & 0o001 != 0
            || Some(meta.uid()) == uid && mode & 0o100 != 0
            || Some(meta.gid()) == gid && mode & 0o010 != 0;
        if !searchable {
            return Err(RunError::Runtime(format!(
                "with --uidmap the container's root (host user {}) must be able to reach {}: \
                 make {} searchable by others (chmod o+x)",
                uid.unwrap_or_default(),
                dir.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// Gives `path` to the container's root (host IDs of its 0:0), as Docker does for a remapped
/// root's directories.
fn chown_to_root(path: &Path, map: &IdMap) -> Result<(), RunError> {
    let (uid, gid) = (map.host_uid(0), map.host_gid(0));
    std::os::unix::fs::chown(path, uid, gid).map_err(host_err(format!(
        "cannot give {} to the container's root",
        path.display()
    )))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RunError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| RunError::Runtime(format!("invalid runtime spec: {e}")))?;
    fs::write(path, bytes).map_err(host_err(format!("cannot write {}", path.display())))
}

/// The container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.
fn write_etc(dir: &Path, hostname: &str, network: Network) -> Result<(), RunError> {
    let hosts = match network {
        Network::Host => fs::read_to_string("/etc/hosts").unwrap_or_default(),
        Network::None => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        ),
    };
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for (name, text) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        fs::write(&p, text).map_err(host_err(format!("cannot write {}", p.display())))?;
    }
    Ok(())
}

/// How the container's standard streams are connected.
#[derive(Debug)]
pub enum Io {
    /// Pipes: the read ends of stdout and stderr (stdin was given to the container).
    Pipes {
        /// Its stdout.
        stdout: OwnedFd,
        /// Its stderr.
        stderr: OwnedFd,
    },
    /// A terminal: the pty master.
    Terminal {
        /// The master side.
        master: OwnedFd,
    },
}

/// Starts a created container. `stdin` is what the process reads when it has no terminal
/// (`None`: `/dev/null`). Records it as running.
pub fn start(
    containers: &Containers,
    host: &dyn Host,
    record: &mut ContainerRecord,
    stdin: Option<OwnedFd>,
) -> Result<(i32, Io), RunError> {
    let paths = ContainerPaths::new(containers, &record.id);
    let builder = ContainerBuilder::new(record.id.clone(), SyscallType::default())
        .with_root_path(containers.run_root())
        .map_err(|e| RunError::Runtime(e.to_string()))?
        .with_executor(executor(containers, &record.id)?);
    let (builder, io, console) = if record.tty {
        let console = crate::terminal::ConsoleSocket::bind(&record.id)
            .map_err(host_err("cannot create the console socket"))?;
        let builder = builder.with_console_socket(Some(console.path()));
        (builder, None, Some(console))
    } else {
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| host_err("cannot create a pipe")(e.into()))?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| host_err("cannot create a pipe")(e.into()))?;
        let stdin: OwnedFd = match stdin {
            Some(fd) => fd,
            None => fs::File::open("/dev/null")
                .map_err(host_err("cannot open /dev/null"))?
                .into(),
        };
        let builder = builder
            .with_stdin(stdin)
            .with_stdout(out_w)
            .with_stderr(err_w);
        (
            builder,
            Some(Io::Pipes {
                stdout: out_r,
                stderr: err_r,
            }),
            None,
        )
    };
    // libcontainer requires "detached" whenever a console socket is used; our process still
    // is the container's parent and reaps it.
    let built = builder
        .validate_id()
        .map_err(|e| RunError::Runtime(e.to_string()))?
        .as_init(paths.bundle())
        .with_systemd(false)
        .with_detach(record.tty)
        .build();
    let mut container = match built {
        Ok(c) => c,
        Err(e) => return Err(classify(e)),
    };
    let io = match (io, console) {
        (Some(io), _) => io,
        (None, Some(console)) => Io::Terminal {
            master: console
                .receive()
                .map_err(host_err("cannot receive the container's terminal"))?,
        },
        (None, None) => return Err(RunError::Runtime("no standard streams were set up".into())),
    };
    let pid = container
        .pid()
        .ok_or_else(|| RunError::Runtime("the container has no init process".into()))?
        .as_raw();
    if record.network == Network::None {
        // Created, not started: the namespace exists and nothing runs in it yet.
        host.loopback_up(pid).map_err(host_err(
            "cannot bring up the container's loopback interface",
        ))?;
    }
    container.start().map_err(classify)?;
    record.state = State::Running {
        pid,
        pid_start: crate::containers::process_start(pid).unwrap_or(0),
        started: now(),
    };
    containers.save(record)?;
    Ok((pid, io))
}

/// The executor that loads the container's seccomp program (from the per-host cache) right
/// before its command runs; used for the container's process and for every `exec`.
pub fn executor(containers: &Containers, id: &str) -> Result<SeccompExecutor, RunError> {
    let paths = ContainerPaths::new(containers, id);
    let Some(profile) = seccomp_profile(&paths)? else {
        return Ok(SeccompExecutor::new(None));
    };
    let filter = seccomp_filter::load_or_compile(containers.seccomp_cache(), &profile)
        .map_err(|e| RunError::Runtime(e.to_string()))?;
    Ok(SeccompExecutor::new(Some(filter)))
}

/// The container's seccomp profile: `seccomp.json`, or, for containers created before
/// profiles were kept beside the spec, the spec's own `linux.seccomp`. libcontainer is built
/// without libseccomp and ignores that section, so berth must load it either way.
fn seccomp_profile(paths: &ContainerPaths) -> Result<Option<LinuxSeccomp>, RunError> {
    let invalid = |path: &Path| {
        let path = path.display().to_string();
        move |e: serde_json::Error| RunError::Runtime(format!("invalid {path}: {e}"))
    };
    let path = paths.seccomp_profile();
    match fs::read(&path) {
        Ok(bytes) => {
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(invalid(&path));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(host_err(format!("cannot read {}", path.display()))(e)),
    }
    let path = paths.bundle().join("config.json");
    let bytes = fs::read(&path).map_err(host_err(format!("cannot read {}", path.display())))?;
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).map_err(invalid(&path))?;
    Ok(spec.linux().as_ref().and_then(|l| l.seccomp().clone()))
}

/// libcontainer reports a missing command as a validation error string from inside the
/// container; Docker gives it its own exit status (127), so it is told apart here.
fn classify(e: libcontainer::error::LibcontainerError) -> RunError {
    let text = format!("{e}");
    let mut chain = text.clone();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    if chain.contains("not found in $PATH")
        || chain.contains("executable") && chain.contains("not found")
    {
        RunError::CommandNotFound(chain)
    } else {
        RunError::Runtime(chain)
    }
}

/// Undoes the host side of a container: its processes and cgroup (through libcontainer),
/// the overlay mount and the network namespace. Idempotent; errors are ignored because
/// whatever remains is retried by the next `rm`.
pub fn teardown(containers: &Containers, host: &dyn Host, record: &ContainerRecord) {
    let state_dir = containers.run_root().join(&record.id);
    if state_dir.exists()
        && let Ok(mut c) = libcontainer::container::Container::load(state_dir.clone())
    {
        let _ = c.delete(true);
    }
    let paths = ContainerPaths::new(containers, &record.id);
    let _ = host.unmount(&paths.rootfs());
    if record.userns.is_some() {
        let _ = host.unmount(&paths.layers());
    }
}

/// Undoes a container that never ran (or failed to start): its host side and its directory.
pub fn discard(containers: &Containers, host: &dyn Host, record: &ContainerRecord) {
    teardown(containers, host, record);
    let _ = containers.remove_dir(&record.id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_from_before_seccomp_json_is_still_filtered() {
        let root = tempfile::tempdir().expect("dir");
        let containers = Containers::open(root.path()).expect("open");
        let paths = ContainerPaths::new(&containers, "old");
        fs::create_dir_all(paths.bundle()).expect("bundle");
        let mut spec = oci_spec::runtime::Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_seccomp(Some(crate::seccomp::default_profile()));
        spec.set_linux(Some(linux));
        write_json(&paths.bundle().join("config.json"), &spec).expect("spec");

        let profile = seccomp_profile(&paths).expect("read");
        assert_eq!(profile, Some(crate::seccomp::default_profile()));
        executor(&containers, "old").expect("executor");
        let programs = fs::read_dir(containers.seccomp_cache()).expect("compiled");
        assert_eq!(programs.count(), 1, "the spec's profile was compiled");

        // A spec without a profile runs without a filter, as before.
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_seccomp(None);
        spec.set_linux(Some(linux));
        write_json(&paths.bundle().join("config.json"), &spec).expect("spec");
        assert_eq!(seccomp_profile(&paths).expect("read"), None);
    }
}
