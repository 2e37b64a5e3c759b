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
    supervise::supervise(pid, io, Some(&mut log), attach).map_err(|source| RunError::Host {
        what: "supervising the container failed".into(),
        source,
    })
}

/// How a detached supervisor's report marks a command the image does not have.
pub const NOT_FOUND_PREFIX: &str = "command not found: ";

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
            // One line for `run -d` to show; a missing command keeps its kind (status 127).
            let prefix = match e {
                RunError::CommandNotFound(_) => NOT_FOUND_PREFIX,
                _ => "",
            };
            let _ = writeln!(report, "{prefix}{e}");
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
    /// A pseudo-terminal of its own (`-t`).
    pub tty: bool,
}

/// The exec'd process: the container's own (user, capabilities, `no_new_privs`, rlimits,
/// environment, working directory) with `options` applied, as `docker exec` does.
fn exec_process(
    paths: &ContainerPaths,
    options: &ExecOptions,
) -> Result<serde_json::Value, LifecycleError> {
    let config = paths.bundle().join("config.json");
    let spec: serde_json::Value = std::fs::read(&config)
        .map_err(io_err("cannot read the container's spec"))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| {
                LifecycleError::Run(RunError::Runtime(format!(
                    "invalid {}: {e}",
                    config.display()
                )))
            })
        })?;
    let mut process = spec["process"].clone();
    let mut env: Vec<String> = process["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for e in &options.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|old| old.split_once('=').map_or(old.as_str(), |(k, _)| k) != key);
        env.push(e.clone());
    }
    process["env"] = serde_json::json!(env);
    process["args"] = serde_json::json!(options.command);
    process["terminal"] = serde_json::json!(options.tty);
    if options.tty {
        if let Some((rows, cols)) = crate::terminal::size(io::stdin()) {
            process["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
        }
    } else if let Some(p) = process.as_object_mut() {
        p.remove("consoleSize");
    }
    if let Some(cwd) = &options.workdir {
        process["cwd"] = serde_json::json!(cwd);
    }
    if let Some((uid, gid)) = options.user {
        process["user"] = serde_json::json!({"uid": uid, "gid": gid.unwrap_or(0)});
        if uid != 0 {
            // A non-root process keeps no capabilities (the kernel would drop them at exec).
            process["capabilities"]["effective"] = serde_json::json!([]);
            process["capabilities"]["permitted"] = serde_json::json!([]);
        }
    }
    Ok(process)
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
    let paths = ContainerPaths::new(containers, &record.id);
    let process = exec_process(&paths, options)?;
    // libcontainer takes a custom process as a file; it is read before `build` returns.
    let process_file = paths.dir.join(format!(
        ".exec-{}.json",
        run::random_id().map_err(io_err("cannot read random bytes"))?
    ));
    std::fs::write(&process_file, process.to_string())
        .map_err(io_err("cannot write the exec process"))?;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(io_err("cannot pass our streams"))
    };
    let runtime_err = |e: libcontainer::error::LibcontainerError| {
        LifecycleError::Run(RunError::Runtime(e.to_string()))
    };
    let mut builder = ContainerBuilder::new(record.id.clone(), SyscallType::default())
        .with_root_path(containers.run_root())
        .map_err(runtime_err)?
        .with_executor(run::executor(containers, &record.id)?);
    let console = if options.tty {
        let console = crate::terminal::ConsoleSocket::bind(&format!("{}-exec", record.id))
            .map_err(io_err("cannot create the console socket"))?;
        builder = builder.with_console_socket(Some(console.path()));
        Some(console)
    } else {
        let stdin: OwnedFd = if options.interactive {
            dup(io::stdin().as_fd())?
        } else {
            std::fs::File::open("/dev/null")
                .map_err(io_err("cannot open /dev/null"))?
                .into()
        };
        builder = builder
            .with_stdin(stdin)
            .with_stdout(dup(io::stdout().as_fd())?)
            .with_stderr(dup(io::stderr().as_fd())?);
        None
    };
    let built = builder
        .as_tenant()
        // libcontainer wants "detached" whenever a console socket is used; we still are the
        // process's parent and reap it.
        .with_detach(options.tty)
        .with_process(Some(&process_file))
        .build();
    let _ = std::fs::remove_file(&process_file);
    let pid = built.map_err(runtime_err)?;
    let Some(console) = console else {
        return match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Ok(code),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => Ok(128 + sig as i32),
            Ok(_) => Ok(255),
            Err(e) => Err(io_err("cannot wait for the command")(e.into())),
        };
    };
    let master = console
        .receive()
        .map_err(io_err("cannot receive the command's terminal"))?;
    let raw = if options.interactive {
        crate::terminal::RawMode::enter(io::stdin())
    } else {
        None
    };
    let code = supervise::supervise(
        pid.as_raw(),
        Io::Terminal { master },
        None,
        Attach {
            output: true,
            stdin: options.interactive,
            forward_signals: true,
        },
    );
    drop(raw);
    code.map_err(io_err("supervising the command failed"))
}
