//! `berth`: a self-hosted container image hub. `berth serve` runs the registry.

mod admin;
mod container_cli;
mod events_cli;
mod progress;
mod runtime_cli;
mod scan_cli;
mod store_cli;
mod table;
mod trust_cli;
mod vuln_gate;
mod vulndb_cli;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_registry::config::Config;
use berth_registry::server::{Server, shutdown_signal};
use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc. After a burst of connections glibc keeps the freed
/// memory (free chunks in the middle of its heaps are returned only by `malloc_trim`), so a
/// server that held thousands of stalled uploads stayed at its peak resident memory once
/// they were gone. jemalloc's background thread returns idle pages within about ten seconds,
/// also when no request arrives to trigger it; `serve` starts it ([`purge_in_background`]),
/// other commands stay single-threaded until they choose otherwise (`berth run` unshares a
/// user namespace, which a process with threads cannot). Measured in the README's "Limits"
/// section.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A self-hosted container image hub: an OCI registry in one binary.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry (OCI Distribution API on /v2/).
    ///
    /// With no configuration it listens on 127.0.0.1:5000 and keeps everything under
    /// ./berth-data (a SQLite database and a blob directory). Settings come from built-in
    /// defaults, then the --config file (or $BERTH_CONFIG), then BERTH_<SECTION>_<KEY>
    /// environment variables, then these flags. See config.example.toml for every setting.
    Serve(ServeArgs),
    /// Apply pending database schema migrations, then exit.
    ///
    /// berth serve applies them at start unless database.auto_migrate = false; run this
    /// instead as a separate deployment step (a Kubernetes Job, say) when you prefer.
    Migrate(ConfigArgs),
    /// Manage users, organizations, teams, repository visibility and access tokens.
    ///
    /// Works directly on the configured database (SQLite or PostgreSQL), with or without a
    /// running server. Start with `berth admin user add NAME --admin --password-stdin`.
    Admin {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Remove manifests and blobs nothing references: one garbage-collection pass.
    ///
    /// Runs online, beside any number of servers on the same database and storage: whatever
    /// a push, mount or tag claims meanwhile stays. Uses the [gc] settings (review delay,
    /// policy for untagged manifests and orphaned referrers); `serve` runs passes itself.
    Gc(GcArgs),
    /// Show how a repository's tags moved: every creation, move and delete within the tag
    /// history window (gc.tag_history_secs), newest first.
    TagHistory {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: store_cli::TagHistoryArgs,
    },
    /// Point a moved or deleted tag back at a manifest from its history.
    TagRestore {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: store_cli::TagRestoreArgs,
    },
    /// Show the storage repositories and namespaces use, each stored blob counted once.
    Usage {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: store_cli::UsageArgs,
    },
    /// Re-hash stored blobs and check every manifest's references, resuming where the last
    /// scrub stopped.
    ///
    /// Blobs with missing or wrong bytes are quarantined (no longer served; pushing the same
    /// content again repairs them). Exits with status 1 when the pass found problems.
    Scrub {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: store_cli::ScrubArgs,
    },
    /// Apply the retention policies ([[retention.policy]] in the configuration file) once.
    ///
    /// Deletes the tags no keep rule keeps (newest N, pushed or pulled within D days, name
    /// patterns); they stay restorable for gc.tag_history_secs, and garbage collection frees
    /// what they pointed at afterwards. `serve` applies them on schedule with
    /// retention.enabled.
    Retention {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: store_cli::RetentionArgs,
    },
    /// Show the audit log: who pushed, deleted, restored, or changed accounts, permissions,
    /// tokens and visibility, when and from where; newest first.
    Audit {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: events_cli::AuditArgs,
    },
    /// List webhooks ([[webhooks.hook]] in the configuration file), send one a test event,
    /// or show the delivery log.
    Webhook {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: events_cli::WebhookCommand,
    },
    /// The advisory database: import OSV advisories (`update`), show what is imported
    /// (`status`, `show`).
    ///
    /// Works directly on the configured database, with or without a running server.
    /// `berth scan IMAGE` matches images against it.
    Vulndb {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: vulndb_cli::VulnDbCommand,
    },
    /// Scan an image for known vulnerabilities: its packages matched against the advisory
    /// database (`berth vulndb update`).
    ///
    /// IMAGE is an image of the runtime store (`berth images`), else a reference whose layers
    /// are streamed from its registry (nothing is stored). Exit status: 0 when no finding
    /// outside the allowlist is at or above --fail-on (always, without --fail-on), 1 when one
    /// is, 2 when the scan failed (no advisory database, an unreachable registry, a bad
    /// allowlist).
    Scan {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        args: scan_cli::ScanArgs,
    },
    #[command(flatten)]
    Runtime(runtime_cli::RuntimeCommand),
    #[command(flatten)]
    Trust(trust_cli::TrustCommand),
    #[command(flatten)]
    Container(container_cli::ContainerCommand),
}

#[derive(Debug, Default, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file.
    // Global: accepted after a subcommand too (`berth webhook test NAME -c FILE`).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database [default: ./berth-data].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct GcArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// List what the pass would remove and the bytes it would free; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds a change must be old before what it left unreferenced goes (default:
    /// gc.review_delay_secs). 0 judges everything as it stands now: only safe when no push
    /// is in progress.
    #[arg(long, value_name = "SECS")]
    review_delay: Option<u64>,
    /// Review every manifest and blob, not only what changed since the last passes: once,
    /// after turning on gc.collect_untagged or gc.collect_orphan_referrers.
    #[arg(long)]
    requeue: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the database and blobs on embedded defaults [default: ./berth-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// `BERTH_LOG=debug berth run ...` shows what the runtime (libcontainer included) does, on
/// stderr; silent otherwise, so that a container's output is its own.
fn runtime_log() {
    if let Ok(filter) = std::env::var("BERTH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn main() -> ExitCode {
    // The runtime's user namespace helper must unshare before anything starts a thread.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(berth_runtime::host::USERNS_HOLDER_ARG))
    {
        return ExitCode::from(berth_runtime::host::userns_holder() as u8);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Migrate(args) => migrate(args),
        Command::Admin { config, command } => run_admin(config, command),
        Command::Gc(args) => gc(args),
        Command::TagHistory { config, args } => one_shot(&config, |c| async move {
            store_cli::tag_history(&c, args).await
        }),
        Command::TagRestore { config, args } => one_shot(&config, |c| async move {
            store_cli::tag_restore(&c, args).await
        }),
        Command::Scrub { config, args } => {
            one_shot(&config, |c| async move { store_cli::scrub(&c, args).await })
        }
        Command::Retention { config, args } => {
            one_shot(
                &config,
                |c| async move { store_cli::retention(&c, args).await },
            )
        }
        Command::Usage { config, args } => {
            one_shot(&config, |c| async move { store_cli::usage(&c, args).await })
        }
        Command::Audit { config, args } => {
            one_shot(
                &config,
                |c| async move { events_cli::audit(&c, args).await },
            )
        }
        Command::Webhook { config, command } => one_shot(&config, |c| async move {
            events_cli::webhook(&c, command).await
        }),
        Command::Vulndb { config, command } => {
            one_shot(
                &config,
                |c| async move { vulndb_cli::run(&c, command).await },
            )
        }
        Command::Scan { config, args } => {
            let scanned = load_config(&config).and_then(|mut c| {
                c.log.level = "warn".into();
                berth_registry::telemetry::init(&c.log)?;
                scan_cli::run(&c, args)
            });
            return match scanned {
                Ok(false) => ExitCode::SUCCESS,
                Ok(true) => ExitCode::from(1),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "berth: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Runtime(command) => {
            runtime_log();
            runtime_cli::run(command)
        }
        Command::Trust(command) => {
            runtime_log();
            return match trust_cli::run(command) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "berth: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::Container(command) => {
            runtime_log();
            let is_run = matches!(command, container_cli::ContainerCommand::Run(_));
            return match container_cli::execute(command) {
                Ok(code) => code,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "berth: {e:#}");
                    // Docker's statuses for a run that failed before its command did.
                    ExitCode::from(if is_run {
                        container_cli::run_failure_status(&e)
                    } else {
                        1
                    })
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file: `--config`, else `BERTH_CONFIG` (handy in containers).
fn config_file(flag: Option<&PathBuf>) -> Option<PathBuf> {
    flag.cloned()
        .or_else(|| std::env::var_os("BERTH_CONFIG").map(PathBuf::from))
}

/// The configuration for a one-shot command: defaults, file, environment, `--data-dir`.
fn load_config(args: &ConfigArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(
        config_file(args.config.as_ref()).as_deref(),
        std::env::vars(),
    )?;
    if let Some(dir) = &args.data_dir {
        config.server.data_dir = dir.clone();
    }
    Ok(config)
}

/// A single-threaded async runtime for a one-shot command.
fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a one-shot command on the configured database and storage, logging only warnings
/// and errors (its output goes to stdout).
fn one_shot<F, Fut>(args: &ConfigArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut config = load_config(args)?;
    config.log.level = "warn".into();
    berth_registry::telemetry::init(&config.log)?;
    current_thread_runtime()?.block_on(f(config))
}

fn run_admin(args: ConfigArgs, command: admin::AdminCommand) -> anyhow::Result<()> {
    let mut config = load_config(&args)?;
    // Only warnings and errors: the command's own output goes to stdout.
    config.log.level = "warn".into();
    berth_registry::telemetry::init(&config.log)?;
    let runtime = current_thread_runtime()?;
    runtime.block_on(admin::run(&config, command))
}

fn gc(args: GcArgs) -> anyhow::Result<()> {
    let mut config = load_config(&args.config)?;
    if let Some(delay) = args.review_delay {
        config.gc.review_delay_secs = delay;
    }
    config.log.level = "warn".into();
    berth_registry::telemetry::init(&config.log)?;
    let runtime = current_thread_runtime()?;
    let report = runtime.block_on(async {
        let registry = berth_registry::server::open_registry(&config).await?;
        anyhow::Ok(
            registry
                .collect_garbage_recorded(
                    &berth_registry::service::gc::GcOptions {
                        requeue: args.requeue,
                        ..config.gc.options(args.dry_run)
                    },
                    berth_registry::meta::maintenance::GcRunner::Cli,
                )
                .await?,
        )
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for m in &report.manifests {
        writeln!(
            out,
            "{verb} manifest {}@{} ({} bytes)",
            m.repository, m.digest, m.size
        )?;
    }
    for b in &report.blobs {
        writeln!(out, "{verb} blob {} ({} bytes)", b.digest, b.size)?;
    }
    writeln!(
        out,
        "{}: {} manifests, {} blobs, {} bytes of blob storage {}",
        if report.dry_run { "dry run" } else { "done" },
        report.manifests.len(),
        report.blobs.len(),
        report.bytes_freed,
        if report.dry_run { "to free" } else { "freed" },
    )?;
    Ok(())
}

fn migrate(args: ConfigArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    berth_registry::telemetry::init(&config.log)?;
    let runtime = current_thread_runtime()?;
    runtime.block_on(async {
        if config.database.url.is_empty() {
            std::fs::create_dir_all(&config.server.data_dir)
                .with_context(|| format!("cannot create {}", config.server.data_dir.display()))?;
        }
        berth_registry::server::open_meta(&config, true).await?;
        tracing::info!("database schema is up to date");
        anyhow::Ok(())
    })
}

/// Starts jemalloc's background thread, which returns freed pages to the system while the
/// server is idle. Without it memory still comes back, but only when something allocates.
fn purge_in_background() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "cannot start the allocator's background purging");
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(&ConfigArgs {
        config: args.config,
        data_dir: args.data_dir,
    })?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    berth_registry::telemetry::init(&config.log)?;
    purge_in_background();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config).await?;
        let addr = server.local_addr()?;
        let scheme = if server.is_tls() { "https" } else { "http" };
        tracing::info!(
            %addr,
            tls = server.is_tls(),
            auth = config.auth.enabled,
            data_dir = %config.server.data_dir.display(),
            "berth registry listening on {scheme}://{addr}/v2/"
        );
        if let Some(metrics) = server.metrics_addr() {
            // Not `addr`: that field names the registry's own address.
            tracing::info!(%metrics, "metrics on http://{metrics}/metrics");
        }
        server.run(shutdown_signal()).await?;
        Ok(())
    })
}
