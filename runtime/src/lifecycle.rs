//! The verbs on containers after `create`: run attached, run under a detached supervisor,
//! stop, kill, remove, exec. Each checks the state it needs first (a stopped container cannot
//! be exec'd into, a running one is not removed without force).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::containers::{ContainerError, ContainerRecord, Containers, State, now};
use crate::host::Host;
use crate::logs::LogWriter;
use crate::run::{self, ContainerPaths, Io, RunError};
use crate::supervise::{self, Attach};

/// Why a lifecycle verb failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The container list.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Starting.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The container must be running for this.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The container must not be running for this.
    #[error("container {0} is running: stop it first, or remove it with -f")]
    Running(String),
    /// A signal name that does not exist.
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    /// It did not end after SIGKILL.
    #[error("container {0} did not stop")]
    DidNotStop(String),
    /// A host operation.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> LifecycleError {
    move |source| LifecycleError::Io { what, source }
}

/// Records the end of a container (`None`: nobody saw its status), undoes its host side, and
/// removes it if it was started with `--rm`. Errors are ignored: `rm` can finish whatever is
/// left.
pub fn finish(
    containers: &Containers,
    host: &dyn Host,
    record: &mut ContainerRecord,
    code: Option<i32>,
) {
    record.state = State::Exited {
        code,
        finished: now(),
    };
    let _ = containers.save(record);
    run::teardown(containers, host, record);
    if record.auto_remove {
        let _ = containers.remove_dir(&record.id);
    }
}

/// Starts a created container attached to this process's terminal or streams and waits for
/// it; returns its exit status.
pub fn run_attached(
    containers: &Containers,
    host: &dyn Host,
    mut record: ContainerRecord,
    interactive: bool,
) -> Result<i32, RunError> {
    let stdin: Option<OwnedFd> = if interactive && !record.tty {
        Some(
            io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| RunError::Host {
                    what: "cannot pass standard input".into(),
                    source,
                })?,
        )
    } else {
        None
    };
    let (pid, io) = match run::start(containers, host, &mut record, stdin) {
        Ok(started) => started,
        Err(e) => {
            run::discard(containers, host, &record);
            return Err(e);
        }
    };
    let raw = if record.tty && interactive {
        crate::terminal::RawMode::enter(io::stdin())
    } else {
        None
    };
    let code = supervise_started(
        containers,
        &record,
        pid,
        io,
        Attach {
            output: true,
            stdin: record.tty && interactive,
            forward_signals: true,
        },
    );
    drop(raw);
    let code = code?;
    finish(containers, host, &mut record, Some(code));
    Ok(code)
}

fn supervise_started(
    containers: &Containers,
    record: &ContainerRecord,
    pid: i32,
    io: Io,
    attach: Attach,
) -> Result<i32, RunError> {
    let log_path = ContainerPaths::new(containers, &record.id).log();
    let mut log = LogWriter::open(&log_path).map_err(|source| RunError::Host {
        what: format!("cannot open {}", log_path.display()),
        source,
    })?;
    supervise::supervise(pid, io, &mut log, attach).map_err(|source| RunError::Host {
        what: "supervising the container failed".into(),
        source,
    })
}

/// The body of a detached supervisor: starts the created container `id`, reports
/// `started` (or the error) through `report`, then supervises it to its end.
pub fn supervise_detached(
    containers: &Containers,
    host: &dyn Host,
    id: &str,
    report: &mut dyn io::Write,
) -> Result<i32, RunError> {
    let mut record = containers.load(id)?;
    let (pid, io) = match run::start(containers, host, &mut record, None) {
        Ok(started) => {
            let _ = writeln!(report, "started");
            let _ = report.flush();
            started
        }
        Err(e) => {
            let _ = writeln!(report, "{e}");
            run::discard(containers, host, &record);
            return Err(e);
        }
    };
    let code = supervise_started(
        containers,
        &record,
        pid,
        io,
        Attach {
            output: false,
            stdin: false,
            forward_signals: false,
        },
    )?;
    finish(containers, host, &mut record, Some(code));
    Ok(code)
}

/// The running container's init process.
fn running_pid(record: &ContainerRecord) -> Option<Pid> {
    match record.state {
        State::Running { pid, .. } => Some(Pid::from_raw(pid)),
        _ => None,
    }
}

/// Waits until the container no longer runs (as its supervisor records, or as the kernel
/// shows when the supervisor is gone).
fn wait_stopped(
    containers: &Containers,
    id: &str,
    timeout: Duration,
) -> Result<Option<ContainerRecord>, ContainerError> {
    let deadline = Instant::now() + timeout;
    let mut ended_unrecorded: Option<Instant> = None;
    loop {
        let record = match containers.load(id) {
            Ok(r) => r,
            // Removed by its supervisor (--rm).
            Err(ContainerError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match record.state {
            // The process is gone but no status is recorded yet: a live supervisor records it
            // in a moment (and removes an --rm container); only a dead one never will.
            State::Exited { code: None, .. } => {
                let since = *ended_unrecorded.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(2) {
                    return Ok(Some(record));
                }
            }
            State::Running { .. } => {}
            _ => return Ok(Some(record)),
        }
        if Instant::now() >= deadline {
            return Ok(Some(record));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to the container's init process.
pub fn kill(containers: &Containers, key: &str, signal: &str) -> Result<(), LifecycleError> {
    let record = containers.find(key)?;
    let sig = crate::process::parse_signal(signal)
        .ok_or_else(|| LifecycleError::BadSignal(signal.to_owned()))?;
    let pid =
        running_pid(&record).ok_or_else(|| LifecycleError::NotRunning(record.name.clone()))?;
    nix::sys::signal::kill(pid, sig).map_err(|e| io_err("cannot signal the container")(e.into()))
}

/// SIGKILL, then waits for the end (10 s at most); the record after it, if it still exists.
fn kill_and_wait(
    containers: &Containers,
    record: &ContainerRecord,
    pid: Pid,
) -> Result<Option<ContainerRecord>, LifecycleError> {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let after = wait_stopped(containers, &record.id, Duration::from_secs(10))?;
    if after.as_ref().is_some_and(|r| running_pid(r).is_some()) {
        return Err(LifecycleError::DidNotStop(record.name.clone()));
    }
    Ok(after)
}

/// Stops a container: its stop signal, then SIGKILL after `timeout`. A stopped container
/// is left as it is.
pub fn stop(
    containers: &Containers,
    host: &dyn Host,
    key: &str,
    timeout: Duration,
) -> Result<(), LifecycleError> {
    let record = containers.find(key)?;
    let Some(pid) = running_pid(&record) else {
        return Ok(());
    };
    let sig = crate::process::parse_signal(&record.process.stop_signal).unwrap_or(Signal::SIGTERM);
    let _ = nix::sys::signal::kill(pid, sig);
    let mut after = wait_stopped(containers, &record.id, timeout)?;
    if after.as_ref().is_some_and(|r| running_pid(r).is_some()) {
        after = kill_and_wait(containers, &record, pid)?;
    }
    // With no supervisor left to record the end, finish the container here.
    if let Some(mut r) = after
        && matches!(r.state, State::Exited { code: None, .. })
    {
        finish(containers, host, &mut r, None);
    }
    Ok(())
}

/// Removes a container; a running one only with `force` (SIGKILL first).
pub fn remove(
    containers: &Containers,
    host: &dyn Host,
    key: &str,
    force: bool,
) -> Result<(), LifecycleError> {
    let record = containers.find(key)?;
    if let Some(pid) = running_pid(&record) {
        if !force {
            return Err(LifecycleError::Running(record.name));
        }
        kill_and_wait(containers, &record, pid)?;
    }
    run::teardown(containers, host, &record);
    containers.remove_dir(&record.id)?;
    Ok(())
}

/// `exec`'s options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub command: Vec<String>,
    /// Extra `K=V` entries.
    pub env: Vec<String>,
    /// Working directory (default: the container's).
    pub workdir: Option<String>,
    /// `uid[:gid]` (default: the container's user).
    pub user: Option<(u32, Option<u32>)>,
    /// Pass our stdin.
    pub interactive: bool,
}

/// Runs a command in a running container, attached to our streams; returns its exit status.
pub fn exec(
    containers: &Containers,
    key: &str,
    options: &ExecOptions,
) -> Result<i32, LifecycleError> {
    let record = containers.find(key)?;
    if running_pid(&record).is_none() {
        return Err(LifecycleError::NotRunning(record.name));
    }
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(io_err("cannot pass our streams"))
    };
    let stdin: OwnedFd = if options.interactive {
        dup(io::stdin().as_fd())?
    } else {
        std::fs::File::open("/dev/null")
            .map_err(io_err("cannot open /dev/null"))?
            .into()
    };
    let mut env: std::collections::HashMap<String, String> = record
        .process
        .env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    for e in &options.env {
        if let Some((k, v)) = e.split_once('=') {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    let cwd = options
        .workdir
        .clone()
        .unwrap_or_else(|| record.process.cwd.clone());
    let runtime_err = |e: libcontainer::error::LibcontainerError| {
        LifecycleError::Run(RunError::Runtime(e.to_string()))
    };
    let mut builder = ContainerBuilder::new(record.id.clone(), SyscallType::default())
        .with_root_path(containers.run_root())
        .map_err(runtime_err)?
        .with_executor(run::executor(containers, &record.id)?)
        .with_stdin(stdin)
        .with_stdout(dup(io::stdout().as_fd())?)
        .with_stderr(dup(io::stderr().as_fd())?)
        .as_tenant()
        .with_detach(false)
        .with_cwd(Some(&cwd))
        .with_env(env)
        .with_container_args(options.command.clone());
    if let Some((uid, gid)) = options.user {
        builder = builder.with_user(Some(uid)).with_group(gid);
    }
    let pid = builder.build().map_err(runtime_err)?;
    match nix::sys::wait::waitpid(pid, None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Ok(code),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => Ok(128 + sig as i32),
        Ok(_) => Ok(255),
        Err(e) => Err(io_err("cannot wait for the command")(e.into())),
    }
}
