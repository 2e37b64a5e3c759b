//! The runtime's commands: `berth pull`, `images`, `rmi`, `tag`, `inspect`, `login`,
//! `logout`. They work on a local store (`--root`, `BERTH_ROOT`, default `/var/lib/berth`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use berth_runtime::credentials;
use berth_runtime::pull::{self, Platform};
use berth_runtime::store::Store;
use berth_runtime::{Reference, RegistryAuth};
use clap::Subcommand;

/// Where the runtime keeps images.
#[derive(Debug, clap::Args)]
pub struct RootArgs {
    /// The runtime's store: images, layers and (later) containers.
    #[arg(
        long,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    root: PathBuf,
}

/// Runtime commands.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Pull an image (for this host's platform) from berth or any registry.
    Pull {
        #[command(flatten)]
        root: RootArgs,
        /// Choose this platform from a multi-platform image (os/arch[/variant]).
        #[arg(long)]
        platform: Option<String>,
        /// The image, like registry.example.com/team/app:1.0 or HOST/NAME@sha256:...
        reference: String,
    },
    /// List the images in the store.
    Images {
        #[command(flatten)]
        root: RootArgs,
    },
    /// Remove image names; blobs and layers no other image uses go too.
    Rmi {
        #[command(flatten)]
        root: RootArgs,
        /// Image names.
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        #[command(flatten)]
        root: RootArgs,
        /// An image in the store.
        source: String,
        /// The new name.
        target: String,
    },
    /// Show an image's record and config as JSON.
    Inspect {
        #[command(flatten)]
        root: RootArgs,
        /// An image in the store.
        reference: String,
    },
    /// Log in to a registry (the password is read from standard input).
    Login {
        /// User name.
        #[arg(long, short = 'u')]
        username: String,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The registry host, like registry.example.com or 127.0.0.1:5000.
        registry: String,
    },
    /// Forget the credentials of a registry.
    Logout {
        /// The registry host.
        registry: String,
    },
}

fn reference(s: &str) -> anyhow::Result<Reference> {
    Reference::from_str(s).with_context(|| format!("{s:?} is not an image reference"))
}

fn open(root: &RootArgs) -> anyhow::Result<Store> {
    Store::open(&root.root)
        .with_context(|| format!("cannot open the store at {}", root.root.display()))
}

/// Runs a runtime command.
pub fn run(command: RuntimeCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The registry client speaks TLS through rustls with ring, as the server does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async move {
        let mut out = std::io::stdout().lock();
        match command {
            RuntimeCommand::Pull {
                root,
                platform,
                reference: r,
            } => {
                let store = open(&root)?;
                let reference = reference(&r)?;
                let platform = match platform {
                    Some(p) => Platform::parse(&p)
                        .with_context(|| format!("{p:?} is not a platform (os/arch[/variant])"))?,
                    None => Platform::host(),
                };
                let auth = match credentials::lookup(
                    &credentials::default_path(),
                    reference.resolve_registry(),
                )? {
                    Some((user, password)) => RegistryAuth::Basic(user, password),
                    None => RegistryAuth::Anonymous,
                };
                let progress = |line: &str| eprintln!("{line}");
                let pulled = pull::pull(&store, &reference, &auth, &platform, &progress)
                    .await
                    .with_context(|| format!("cannot pull {}", reference.whole()))?;
                writeln!(out, "{} {}", pulled.name, pulled.record.manifest)?;
            }
            RuntimeCommand::Images { root } => {
                let store = open(&root)?;
                writeln!(out, "{:<60} {:<14} {:>12}", "IMAGE", "ID", "SIZE")?;
                for (name, record) in store.images()? {
                    let id = record.config.trim_start_matches("sha256:");
                    writeln!(
                        out,
                        "{:<60} {:<14} {:>12}",
                        name,
                        &id[..id.len().min(12)],
                        record.size
                    )?;
                }
            }
            RuntimeCommand::Rmi { root, references } => {
                let store = open(&root)?;
                let mut missing = Vec::new();
                for r in references {
                    let name = reference(&r)?.whole();
                    match store.remove_image(&name)? {
                        Some(_) => writeln!(out, "removed {name}")?,
                        None => missing.push(name),
                    }
                }
                if !missing.is_empty() {
                    bail!("no such image: {}", missing.join(", "));
                }
            }
            RuntimeCommand::Tag {
                root,
                source,
                target,
            } => {
                let store = open(&root)?;
                let source = reference(&source)?.whole();
                let record = store
                    .image(&source)?
                    .with_context(|| format!("no such image: {source}"))?;
                store.set_image(&reference(&target)?.whole(), record)?;
            }
            RuntimeCommand::Inspect { root, reference: r } => {
                let store = open(&root)?;
                let name = reference(&r)?.whole();
                let record = store
                    .image(&name)?
                    .with_context(|| format!("no such image: {name}"))?;
                let config: serde_json::Value =
                    serde_json::from_slice(&store.read_blob(&record.config)?)
                        .context("the stored config is not JSON")?;
                let doc = serde_json::json!({"name": name, "image": record, "config": config});
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            }
            RuntimeCommand::Login {
                username,
                password_stdin: _,
                registry,
            } => {
                let mut password = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut password)
                    .context("cannot read the password from standard input")?;
                let password = password.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    bail!("no password on standard input");
                }
                credentials::verify(&registry, &username, password)
                    .await
                    .map_err(anyhow::Error::msg)?;
                let path = credentials::default_path();
                credentials::store(&path, &registry, &username, password)?;
                writeln!(out, "Login Succeeded (credentials in {})", path.display())?;
            }
            RuntimeCommand::Logout { registry } => {
                if credentials::forget(&credentials::default_path(), &registry)? {
                    writeln!(out, "Removed login credentials for {registry}")?;
                } else {
                    writeln!(out, "Not logged in to {registry}")?;
                }
            }
        }
        anyhow::Ok(())
    })
}
