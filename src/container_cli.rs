//! The runtime's container commands: `berth run`, `ps`, `logs`, `stop`, `kill`, `rm`,
//! `exec`, plus the hidden `container-supervise` that a detached `run` starts as the
//! container's parent. Exit statuses follow Docker: the container's own status, 125 when
//! berth itself fails, 127 when the command is not in the image.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use berth_runtime::containers::{ContainerRecord, Containers, Network, State, now};
use berth_runtime::host::LinuxHost;
use berth_runtime::idmap::IdMap;
use berth_runtime::lifecycle::{self, ExecOptions};
use berth_runtime::logs::{self, Stream};
use berth_runtime::process::{ProcessOptions, env_file_lines};
use berth_runtime::run::{self, RunError, RunOptions};
use berth_runtime::spec::{self, Limits};
use clap::Args;

use crate::runtime_cli::{RootArgs, ensure_image, open_store};
use crate::table::Table;

/// `berth run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    root: RootArgs,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep standard input open (pass it to the container).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the container a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// A name for the container (default: the first 12 digits of its id).
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (NAME=VALUE, or NAME to copy this shell's).
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Read environment variables from a file (NAME=VALUE lines).
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Bind-mount a host directory or file: /host/path:/container/path[:ro].
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    volume: Vec<String>,
    /// Mount an empty tmpfs at this path.
    #[arg(long, value_name = "DST")]
    tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// User (name or uid, optionally :group or :gid).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// The container's hostname (default: the first 12 digits of its id).
    #[arg(long)]
    hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Memory limit (like 512m or 1g); the container is OOM-killed beyond it.
    #[arg(short = 'm', long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU limit in CPUs (like 0.5).
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// none: its own network namespace with only loopback (default); host: the host's.
    #[arg(long, value_name = "none|host", default_value = "none")]
    network: String,
    /// Run in a user namespace of its own: container IDs CONTAINER..+SIZE are host IDs
    /// HOST..+SIZE (like 0:100000:65536; repeatable). The container's root is then an
    /// unprivileged user on the host.
    #[arg(long, value_name = "CONTAINER:HOST:SIZE")]
    uidmap: Vec<String>,
    /// Group ID ranges of the user namespace (default: the same as --uidmap).
    #[arg(long, value_name = "CONTAINER:HOST:SIZE")]
    gidmap: Vec<String>,
    /// Replace the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Pull the image first if it is not in the store (default) or never.
    #[arg(long, value_name = "missing|never", default_value = "missing")]
    pull: String,
    #[command(flatten)]
    trust: crate::runtime_cli::TrustArgs,
    /// The image.
    image: String,
    /// The command and its arguments (default: the image's Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Container commands.
#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers (running ones unless -a).
    Ps {
        #[command(flatten)]
        root: RootArgs,
        /// Show all containers, stopped ones too.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only print ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print a container's output.
    Logs {
        #[command(flatten)]
        root: RootArgs,
        /// Keep following the output while the container runs.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Container name or id.
        container: String,
    },
    /// Stop containers: their stop signal, then SIGKILL after a grace period.
    Stop {
        #[command(flatten)]
        root: RootArgs,
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long, default_value_t = 10)]
        time: u64,
        /// Container names or ids.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers (default SIGKILL).
    Kill {
        #[command(flatten)]
        root: RootArgs,
        /// Signal name or number.
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        /// Container names or ids.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[command(flatten)]
        root: RootArgs,
        /// Kill and remove running containers.
        #[arg(short = 'f', long)]
        force: bool,
        /// Container names or ids.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec {
        #[command(flatten)]
        root: RootArgs,
        /// Pass standard input.
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the command a pseudo-terminal of its own.
        #[arg(short = 't', long)]
        tty: bool,
        /// Set an environment variable (NAME=VALUE).
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Working directory.
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// uid[:gid].
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Container name or id.
        container: String,
        /// The command.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// (internal) The parent of a detached container.
    #[command(hide = true)]
    ContainerSupervise {
        #[command(flatten)]
        root: RootArgs,
        /// The container's id.
        id: String,
    },
}

/// Opens the containers under the runtime's root.
pub fn containers(root: &RootArgs) -> anyhow::Result<Containers> {
    Containers::open(&root.root)
        .with_context(|| format!("cannot open the containers under {}", root.root.display()))
}

/// Runs a container command; returns the process's exit status.
pub fn execute(command: ContainerCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        ContainerCommand::Run(args) => return run_command(*args),
        ContainerCommand::Ps { root, all, quiet } => {
            let list = containers(&root)?.list()?;
            let mut table = Table::new(&[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "NAMES",
            ]);
            for c in list.iter().filter(|c| all || is_running(c)) {
                if quiet {
                    writeln!(out, "{}", c.short_id())?;
                    continue;
                }
                let command = format!("\"{}\"", c.process.args.join(" "));
                table.row(vec![
                    c.short_id().to_owned(),
                    clip(&c.image, 30),
                    clip(&command, 24),
                    format!("{} ago", ago(c.created)),
                    status(c),
                    c.name.clone(),
                ]);
            }
            if !quiet {
                table.write(&mut out)?;
            }
        }
        ContainerCommand::Logs {
            root,
            follow,
            container,
        } => {
            let containers = containers(&root)?;
            let record = containers.find(&container)?;
            let path = run::ContainerPaths::new(&containers, &record.id).log();
            let mut offset = 0;
            drop(out);
            loop {
                let (frames, next) = logs::read_from(&path, offset)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                offset = next;
                for (stream, bytes) in &frames {
                    match stream {
                        Stream::Stdout => std::io::stdout().lock().write_all(bytes)?,
                        Stream::Stderr => std::io::stderr().lock().write_all(bytes)?,
                    }
                }
                std::io::stdout().flush()?;
                if !follow {
                    break;
                }
                let running = containers.load(&record.id).is_ok_and(|r| is_running(&r));
                if !running && frames.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        ContainerCommand::Stop {
            root,
            time,
            containers: keys,
        } => {
            let containers = containers(&root)?;
            for key in keys {
                lifecycle::stop(&containers, &LinuxHost, &key, Duration::from_secs(time))?;
                writeln!(out, "{key}")?;
            }
        }
        ContainerCommand::Kill {
            root,
            signal,
            containers: keys,
        } => {
            let containers = containers(&root)?;
            for key in keys {
                lifecycle::kill(&containers, &key, &signal)?;
                writeln!(out, "{key}")?;
            }
        }
        ContainerCommand::Rm {
            root,
            force,
            containers: keys,
        } => {
            let containers = containers(&root)?;
            for key in keys {
                lifecycle::remove(&containers, &LinuxHost, &key, force)?;
                writeln!(out, "{key}")?;
            }
        }
        ContainerCommand::Exec {
            root,
            interactive,
            tty,
            env,
            workdir,
            user,
            container,
            command,
        } => {
            let user = match user {
                None => None,
                Some(u) => Some(parse_ids(&u).with_context(|| {
                    format!("invalid --user {u:?}: exec takes numeric uid[:gid]")
                })?),
            };
            let options = ExecOptions {
                command,
                env,
                workdir,
                user,
                interactive,
                tty,
            };
            drop(out);
            let code = lifecycle::exec(&containers(&root)?, &container, &options)?;
            return Ok(ExitCode::from(code as u8));
        }
        ContainerCommand::ContainerSupervise { root, id } => {
            let containers = containers(&root)?;
            let mut report = std::io::stdout();
            let code = lifecycle::supervise_detached(&containers, &LinuxHost, &id, &mut report)?;
            return Ok(ExitCode::from(code as u8));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_ids(s: &str) -> Option<(u32, Option<u32>)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, Some(g.parse().ok()?))),
        None => Some((s.parse().ok()?, None)),
    }
}

fn is_running(c: &ContainerRecord) -> bool {
    matches!(c.state, State::Running { .. })
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    }
}

/// "5 seconds", "3 minutes", "2 hours", "4 days", like docker ps.
fn ago(t: u64) -> String {
    let s = now().saturating_sub(t);
    match s {
        0..=59 => format!("{s} seconds"),
        60..=3599 => format!("{} minutes", s / 60),
        3600..=86399 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

fn status(c: &ContainerRecord) -> String {
    match &c.state {
        State::Created => "Created".into(),
        State::Running { started, .. } => format!("Up {}", ago(*started)),
        State::Exited {
            code: Some(code),
            finished,
        } => format!("Exited ({code}) {} ago", ago(*finished)),
        State::Exited { code: None, .. } => "Exited (unknown)".into(),
    }
}

fn run_options(args: &RunArgs) -> anyhow::Result<RunOptions> {
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the env file {}", file.display()))?;
        env.extend(env_file_lines(&text));
    }
    env.extend(args.env.iter().cloned());
    let network = match args.network.as_str() {
        "none" => Network::None,
        "host" => Network::Host,
        other => bail!("unsupported --network {other:?}: use none or host"),
    };
    let memory = match &args.memory {
        Some(m) => Some(spec::parse_size(m).with_context(|| format!("invalid --memory {m:?}"))?),
        None => None,
    };
    if args.cpus.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
        bail!("--cpus must be a positive number");
    }
    if args.pids_limit.is_some_and(|p| p <= 0) {
        bail!("--pids-limit must be positive");
    }
    Ok(RunOptions {
        process: ProcessOptions {
            entrypoint: args.entrypoint.clone(),
            command: args.command.clone(),
            env,
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            tty: args.tty,
        },
        name: args.name.clone(),
        hostname: args.hostname.clone(),
        volumes: args
            .volume
            .iter()
            .map(|v| spec::parse_volume(v))
            .collect::<Result<_, _>>()?,
        tmpfs: args
            .tmpfs
            .iter()
            .map(|t| spec::parse_tmpfs(t))
            .collect::<Result<_, _>>()?,
        read_only: args.read_only,
        limits: Limits {
            memory,
            cpus: args.cpus,
            pids: args.pids_limit,
        },
        network,
        userns: IdMap::from_flags(&args.uidmap, &args.gidmap)?,
        remove: args.rm,
    })
}

/// The exit status Docker gives to a failure of `run` itself.
pub fn run_failure_status(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<RunError>() {
        Some(RunError::CommandNotFound(_)) => 127,
        _ => 125,
    }
}

fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    berth_runtime::cgroup_prearm::prearm();
    let options = run_options(&args)?;
    let store = open_store(&args.root)?;
    let trust = args.trust.load()?;
    let scan = args.trust.load_scan()?;
    let name = ensure_image(&store, &args.image, args.pull == "missing", &trust)?;
    crate::vuln_gate::admit(&store, &name, &scan)?;
    let containers = containers(&args.root)?;
    let record = run::create(&store, &containers, &LinuxHost, &name, &options)?;
    if !args.detach {
        let code = lifecycle::run_attached(&containers, &LinuxHost, record, args.interactive)?;
        return Ok(ExitCode::from(code as u8));
    }
    // A detached container's parent is a supervisor process of its own, in its own process
    // group (a Ctrl-C here does not reach it); it reports one line once started.
    let exe = std::env::current_exe().context("cannot find the berth executable")?;
    let mut child = std::process::Command::new(exe)
        .arg("container-supervise")
        .arg("--root")
        .arg(&args.root.root)
        .arg(&record.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the container's supervisor")?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    if line.trim() != "started" {
        let _ = child.wait();
        let _ = lifecycle::remove(&containers, &LinuxHost, &record.id, true);
        let reason = line.trim();
        if let Some(reason) = reason.strip_prefix(lifecycle::NOT_FOUND_PREFIX) {
            return Err(RunError::CommandNotFound(reason.to_owned()).into());
        }
        bail!(
            "cannot start the container: {}",
            if reason.is_empty() {
                "its supervisor stopped"
            } else {
                reason
            }
        );
    }
    writeln!(std::io::stdout(), "{}", record.id)?;
    Ok(ExitCode::SUCCESS)
}
