//! The runtime's commands: `berth pull`, `images`, `rmi`, `tag`, `inspect`, `login`,
//! `logout`. They work on a local store (`--root`, `BERTH_ROOT`, default `/var/lib/berth`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use berth_runtime::credentials;
use berth_runtime::pull::{self, Platform};
use berth_runtime::store::Store;
use berth_runtime::verify::TrustCheck;
use berth_runtime::vuln_check::ScanCheck;
use berth_runtime::{Reference, RegistryAuth};
use clap::Subcommand;

use crate::table::Table;

/// Where the runtime keeps images.
#[derive(Debug, clap::Args)]
pub struct RootArgs {
    /// The runtime's store: images, layers and containers.
    #[arg(
        long,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    pub root: PathBuf,
}

/// The signature checks `pull` and `run` make.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The policy file (`[[trust.policy]]` and `[[scan.policy]]` tables whose scopes name
    /// registries);
    /// default: /etc/berth/policy.toml when it exists.
    #[arg(long, env = "BERTH_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Use images an enforcing trust or vulnerability policy refuses (said on standard error).
    #[arg(long)]
    insecure_skip_verify: bool,
}

impl TrustArgs {
    /// The policies these flags select.
    pub fn load(&self) -> anyhow::Result<TrustCheck> {
        Ok(TrustCheck::load(
            self.policy.as_deref(),
            self.insecure_skip_verify,
        )?)
    }

    /// The vulnerability policies (`[[scan.policy]]`) of the same file.
    pub fn load_scan(&self) -> anyhow::Result<ScanCheck> {
        Ok(ScanCheck::load(
            self.policy.as_deref(),
            self.insecure_skip_verify,
        )?)
    }
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
        #[command(flatten)]
        trust: TrustArgs,
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
    /// Show an image's record and config, or a container's record, as JSON.
    Inspect {
        #[command(flatten)]
        root: RootArgs,
        /// An image in the store, or a container's name or id.
        reference: String,
    },
    /// Push an image from the store to a registry (only the blobs it lacks).
    Push {
        #[command(flatten)]
        root: RootArgs,
        /// The image, like 127.0.0.1:5000/team/app:1.0.
        reference: String,
    },
    /// Create an image from a container's changes.
    Commit {
        #[command(flatten)]
        root: RootArgs,
        /// A comment for the image's history.
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// The author.
        #[arg(short = 'a', long)]
        author: Option<String>,
        /// Freeze a running container while its changes are read.
        #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
        pause: bool,
        /// Container name or id.
        container: String,
        /// The new image's name.
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

/// Opens the image store.
pub fn open_store(root: &RootArgs) -> anyhow::Result<Store> {
    Store::open(&root.root)
        .with_context(|| format!("cannot open the store at {}", root.root.display()))
}

/// A runtime for the registry client, on this thread only (a container is started by
/// forking, which is safest from a process with no other threads).
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    // The registry client speaks TLS through rustls with ring, as the server does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(f);
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// The saved credentials for a reference's registry.
pub(crate) fn auth_for(reference: &Reference) -> anyhow::Result<RegistryAuth> {
    Ok(
        match credentials::lookup(&credentials::default_path(), reference.resolve_registry())? {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        },
    )
}

async fn pull_image(
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    trust: &TrustCheck,
) -> anyhow::Result<pull::Pulled> {
    let auth = auth_for(reference)?;
    let progress = crate::progress::for_stderr();
    pull::pull(store, reference, &auth, platform, trust, progress.as_ref())
        .await
        .with_context(|| format!("cannot pull {}", reference.whole()))
}

/// The store name of `image`, pulling it for this host's platform first when it is missing
/// and `pull` allows; an image in the store that a policy covers but that was not verified
/// under its current keys is verified at its registry first.
pub fn ensure_image(
    store: &Store,
    image: &str,
    pull: bool,
    trust: &TrustCheck,
) -> anyhow::Result<String> {
    // A name given in full is found without parsing it: the reference grammar is a large
    // regex whose compilation costs more than the rest of `berth run`.
    if let Some(record) = store.image(image)? {
        admit_stored(store, image, record, trust)?;
        return Ok(image.to_owned());
    }
    let reference = reference(image)?;
    let name = reference.whole();
    if let Some(record) = store.image(&name)? {
        admit_stored(store, &name, record, trust)?;
        return Ok(name);
    }
    if !pull {
        bail!("no such image: {name}");
    }
    eprintln!("{name} is not in the store: pulling it");
    block_on(pull_image(store, &reference, &Platform::host(), trust))?;
    Ok(name)
}

/// Checks a stored image against the trust policy, at its registry when its record does not
/// settle it (it was pulled before the policy or its keys changed).
fn admit_stored(
    store: &Store,
    name: &str,
    mut record: berth_runtime::store::ImageRecord,
    trust: &TrustCheck,
) -> anyhow::Result<()> {
    if trust.admits(&record) {
        return Ok(());
    }
    let source = record.source.clone().unwrap_or_default();
    let (registry, repository) = source
        .split_once('/')
        .with_context(|| format!("{name} has no registry of origin to verify it against"))?;
    let signed = record
        .index
        .clone()
        .unwrap_or_else(|| record.manifest.clone());
    let reference = Reference::with_digest(registry.to_owned(), repository.to_owned(), signed);
    let auth = auth_for(&reference)?;
    let verified = block_on(async {
        // Inside block_on, which installs the TLS provider the client needs.
        let client = pull::client_for(&reference);
        Ok(trust
            .check(
                &client,
                &reference,
                &auth,
                reference.digest().unwrap_or_default(),
            )
            .await?)
    })?;
    if verified.is_some() {
        record.verified = verified;
        store.set_image(name, record)?;
    }
    Ok(())
}

/// Runs a runtime command.
pub fn run(command: RuntimeCommand) -> anyhow::Result<()> {
    {
        let mut out = std::io::stdout().lock();
        match command {
            RuntimeCommand::Pull {
                root,
                platform,
                trust,
                reference: r,
            } => {
                let scan = trust.load_scan()?;
                let trust = trust.load()?;
                let store = open_store(&root)?;
                let reference = reference(&r)?;
                let platform = match platform {
                    Some(p) => Platform::parse(&p)
                        .with_context(|| format!("{p:?} is not a platform (os/arch[/variant])"))?,
                    None => Platform::host(),
                };
                let pulled = block_on(pull_image(&store, &reference, &platform, &trust))?;
                crate::vuln_gate::admit(&store, &pulled.name, &scan)?;
                writeln!(out, "{} {}", pulled.name, pulled.record.manifest)?;
            }
            RuntimeCommand::Push { root, reference: r } => {
                let store = open_store(&root)?;
                let target = reference(&r)?;
                let name = target.whole();
                let auth = auth_for(&target)?;
                let progress = |line: &str| eprintln!("{line}");
                let pushed = block_on(async {
                    berth_runtime::push::push(&store, &name, &target, &auth, &progress)
                        .await
                        .with_context(|| format!("cannot push {name}"))
                })?;
                writeln!(
                    out,
                    "{name} {} ({} uploaded, {} mounted, {} already there)",
                    pushed.digest, pushed.uploaded, pushed.mounted, pushed.skipped
                )?;
            }
            RuntimeCommand::Commit {
                root,
                message,
                author,
                pause,
                container,
                reference: r,
            } => {
                let store = open_store(&root)?;
                let containers = crate::container_cli::containers(&root)?;
                let name = reference(&r)?.whole();
                let options = berth_runtime::commit::CommitOptions {
                    message,
                    author,
                    pause,
                };
                let record =
                    berth_runtime::commit::commit(&store, &containers, &container, &name, &options)
                        .with_context(|| format!("cannot commit {container}"))?;
                writeln!(out, "{name} {}", record.manifest)?;
            }
            RuntimeCommand::Images { root } => {
                let store = open_store(&root)?;
                let mut table = Table::new(&["IMAGE", "ID", "SIZE"]);
                for (name, record) in store.images()? {
                    let id = record.config.trim_start_matches("sha256:");
                    table.row(vec![
                        name,
                        id[..id.len().min(12)].to_owned(),
                        crate::table::size(record.size),
                    ]);
                }
                table.write(&mut out)?;
            }
            RuntimeCommand::Rmi { root, references } => {
                let store = open_store(&root)?;
                let containers = crate::container_cli::containers(&root)?;
                let mut missing = Vec::new();
                for r in references {
                    let name = reference(&r)?.whole();
                    if let Some(record) = store.image(&name)? {
                        // The last name of an image that containers use stays: their root
                        // filesystems stand on its layers.
                        let other_names = store
                            .images()?
                            .into_iter()
                            .any(|(n, i)| n != name && i.manifest == record.manifest);
                        let users = containers.using_image(&record.manifest)?;
                        if !other_names && let Some(user) = users.first() {
                            bail!(
                                "image {name} is used by container {} ({}): remove the container first",
                                user.name,
                                user.short_id()
                            );
                        }
                    }
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
                let store = open_store(&root)?;
                let source = reference(&source)?.whole();
                let record = store
                    .image(&source)?
                    .with_context(|| format!("no such image: {source}"))?;
                store.set_image(&reference(&target)?.whole(), record)?;
            }
            RuntimeCommand::Inspect { root, reference: r } => {
                let store = open_store(&root)?;
                let image = match reference(&r) {
                    Ok(parsed) => store.image(&parsed.whole())?.map(|i| (parsed.whole(), i)),
                    Err(_) => None,
                };
                let Some((name, record)) = image else {
                    // Not an image: a container by name or id.
                    let containers = crate::container_cli::containers(&root)?;
                    let container = containers
                        .find(&r)
                        .map_err(|_| anyhow::anyhow!("no such image or container: {r}"))?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&container)?)?;
                    return Ok(());
                };
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
                block_on(async {
                    credentials::verify(&registry, &username, password)
                        .await
                        .map_err(anyhow::Error::msg)
                })?;
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
    }
}
