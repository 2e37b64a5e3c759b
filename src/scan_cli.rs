//! `berth scan IMAGE`: an image's packages matched against the advisory database, for CI jobs.
//!
//! The image is one of the runtime store's (`berth images`), read from its stored layer blobs,
//! or else a reference pulled from its registry as `berth pull` does, but without unpacking or
//! storing anything: each layer blob streams from the registry through its digest check into
//! the inventory walk. The packages are looked up in the advisory database that
//! `berth vulndb update` writes (the configured SQLite or PostgreSQL database) and matched by
//! `berth_scan::matching`.
//!
//! Exit status: 0 when no unaccepted finding is at or above `--fail-on` (or none is given), 1
//! when one is, 2 when the scan could not be made.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use berth_registry::config::Config;
use berth_registry::meta::MetaStore;
use berth_runtime::Reference;
use berth_runtime::pull::Platform;
use berth_runtime::store::Store;
use berth_scan::inventory::{Inventory, Limits, Walker, default_cataloguers};
use berth_scan::matching::{Allowlist, Finding, Findings, Threshold};
use berth_scan::osv::Level;
use berth_scan::policy::AllowItem;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::runtime_cli::RootArgs;
use crate::table::Table;

/// `berth scan` options.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    root: RootArgs,
    /// Exit with status 1 when a finding not accepted by the allowlist is at or above LEVEL:
    /// unknown (every finding), low, medium, high or critical. Without it the status is 0
    /// whatever is found.
    #[arg(
        long = "fail-on",
        visible_alias = "severity-threshold",
        value_name = "LEVEL"
    )]
    fail_on: Option<Threshold>,
    /// Output: an aligned table, or JSON (see the README for its fields).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Leave out findings no fixed version is known for.
    #[arg(long)]
    ignore_unfixed: bool,
    /// Accepted advisories: a TOML or JSON file of `allow` entries with `id` (advisory id or
    /// CVE), optional `expires` (RFC 3339 time or date) and `reason`.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// The platform to scan of a remote multi-platform image (os/arch[/variant]); default:
    /// this host's.
    #[arg(long)]
    platform: Option<String>,
    /// An image in the runtime store (as `berth images` lists it), else a reference to pull
    /// its layers from (registry.example.com/team/app:1.0, HOST/NAME@sha256:...).
    image: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, most severe first.
    Table,
    /// One JSON document.
    Json,
}

/// Media types accepted for the top-level manifest of a remote image.
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Chunks of a layer in flight between the download and the walk.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Runs `berth scan`: whether a finding met the threshold (exit status 1).
pub fn run(config: &Config, args: ScanArgs) -> anyhow::Result<bool> {
    let allowlist = match &args.allowlist {
        Some(path) => load_allowlist(path)?,
        None => Allowlist::default(),
    };
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)
            .with_context(|| format!("{p:?} is not a platform (os/arch[/variant])"))?,
        None => Platform::host(),
    };
    crate::runtime_cli::block_on(async {
        let meta = open_advisories(config).await?;
        let scanned = match local_image(&args.root.root, &args.image)? {
            Some((store, name)) => scan_local(&store, &name)?,
            None => scan_remote(&args.image, &platform).await?,
        };
        let inventory = &scanned.inventory;
        let (_, findings) = berth_registry::service::findings::match_inventory(
            &*meta,
            &inventory.packages,
            inventory.os.as_ref(),
        )
        .await?;
        let report = Report::new(scanned, findings, &allowlist, &args, now());
        report.write_notes(&mut std::io::stderr().lock())?;
        let mut out = std::io::stdout().lock();
        match args.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
            Format::Table => report.write_table(&mut out)?,
        }
        Ok(report.failed)
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The advisory database, which must have been imported into.
pub(crate) async fn open_advisories(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn MetaStore>> {
    let url = config.database_url();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        && !Path::new(path).exists()
    {
        bail!("no advisory database at {path}: run `berth vulndb update` first");
    }
    let meta = berth_registry::server::open_meta(config, config.database.auto_migrate).await?;
    if meta.advisory_counts().await?.advisories == 0 {
        bail!("the advisory database is empty: run `berth vulndb update` first");
    }
    Ok(meta)
}

/// The store and name of `image` when the runtime store at `root` has it. A store that does
/// not exist is not created.
fn local_image(root: &Path, image: &str) -> anyhow::Result<Option<(Store, String)>> {
    if !root.join("images.json").is_file() {
        return Ok(None);
    }
    let store = Store::open(root).with_context(|| format!("cannot open {}", root.display()))?;
    if store.image(image)?.is_some() {
        return Ok(Some((store, image.to_owned())));
    }
    let Ok(reference) = Reference::from_str(image) else {
        return Ok(None);
    };
    let name = reference.whole();
    Ok(store.image(&name)?.is_some().then_some((store, name)))
}

/// What was scanned and what it holds.
struct Scanned {
    image: String,
    manifest: String,
    from: &'static str,
    inventory: Inventory,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// Walks a stored image's layer blobs.
fn scan_local(store: &Store, name: &str) -> anyhow::Result<Scanned> {
    let record = store
        .image(name)?
        .with_context(|| format!("no such image: {name}"))?;
    let inventory = berth_runtime::vuln_check::inventory(store, name, &record)?;
    Ok(Scanned {
        image: name.to_owned(),
        manifest: record.manifest,
        from: "local",
        inventory,
    })
}

/// A layer's bytes as the walk reads them, from the chunks the download sends.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// Pulls `image`'s manifest for `platform` and streams its layers into a walk on a thread of
/// its own, checking each layer's digest as it passes. Nothing is written to disk.
async fn scan_remote(image: &str, platform: &Platform) -> anyhow::Result<Scanned> {
    let reference = Reference::from_str(image)
        .with_context(|| format!("{image:?} is neither in the store nor an image reference"))?;
    let auth = crate::runtime_cli::auth_for(&reference)?;
    let client = berth_runtime::pull::client_for(&reference);
    let (bytes, digest) = client
        .pull_manifest_raw(&reference, &auth, ACCEPT)
        .await
        .with_context(|| format!("cannot get the manifest of {}", reference.whole()))?;
    let digest = reference.digest().map_or(digest, str::to_owned);
    check_digest("manifest", &digest, &bytes)?;
    let top: Manifest = serde_json::from_slice(&bytes).context("the manifest is not valid JSON")?;
    let (digest, manifest) = if top.config.is_none() {
        let chosen = choose(&top.manifests, platform)?;
        let child = Reference::with_digest(
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            chosen.clone(),
        );
        let (bytes, _) = client
            .pull_manifest_raw(&child, &auth, ACCEPT)
            .await
            .with_context(|| format!("cannot get manifest {chosen}"))?;
        check_digest("manifest", &chosen, &bytes)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).context("the manifest is not valid JSON")?;
        (chosen, manifest)
    } else {
        (digest, top)
    };
    let (layers_tx, mut layers_rx) =
        tokio::sync::mpsc::channel::<(String, tokio::sync::mpsc::Receiver<Bytes>)>(1);
    let walk = std::thread::spawn(move || {
        let cataloguers = default_cataloguers();
        let mut walker = Walker::new(&cataloguers, Limits::default());
        while let Some((media_type, rx)) = layers_rx.blocking_recv() {
            walker.add_layer(
                &media_type,
                Chunks {
                    rx,
                    chunk: Bytes::new(),
                },
            );
        }
        walker.finish()
    });
    let streamed = async {
        for layer in &manifest.layers {
            let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
            layers_tx
                .send((layer.media_type.clone(), rx))
                .await
                .context("the inventory walk stopped")?;
            let mut stream = client
                .pull_blob_stream(&reference, layer.digest.as_str())
                .await
                .with_context(|| format!("cannot get layer {}", layer.digest))?
                .stream;
            let mut hash = Sha256::new();
            let mut walking = true;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("reading layer {}", layer.digest))?;
                hash.update(&chunk);
                // A walk that has read what it wants (the tar's end) drops its side; the rest
                // is still hashed, so the digest is checked all the same.
                if walking && tx.send(chunk).await.is_err() {
                    walking = false;
                }
            }
            drop(tx);
            let actual = format!("sha256:{}", hex::encode(hash.finalize()));
            if actual != layer.digest {
                bail!("layer {} has digest {actual}: refused", layer.digest);
            }
        }
        anyhow::Ok(())
    }
    .await;
    drop(layers_tx);
    let inventory = walk
        .join()
        .map_err(|_| anyhow::anyhow!("the inventory walk failed"))?;
    streamed?;
    Ok(Scanned {
        image: reference.whole(),
        manifest: digest,
        from: "remote",
        inventory,
    })
}

fn check_digest(what: &str, expected: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if actual != expected {
        bail!("{what} {expected} has digest {actual}: refused");
    }
    Ok(())
}

/// The manifest for `platform` from an index.
fn choose(manifests: &[Descriptor], platform: &Platform) -> anyhow::Result<String> {
    let field =
        |p: &serde_json::Value, k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let mut offered = Vec::new();
    for m in manifests {
        let Some(p) = &m.platform else { continue };
        let (os, arch, variant) = (
            field(p, "os"),
            field(p, "architecture"),
            field(p, "variant"),
        );
        if os.as_deref() == Some(platform.os.as_str())
            && arch.as_deref() == Some(platform.architecture.as_str())
            && (platform.variant.is_none() || variant == platform.variant)
        {
            return Ok(m.digest.clone());
        }
        offered.push(format!(
            "{}/{}",
            os.unwrap_or_default(),
            arch.unwrap_or_default()
        ));
    }
    bail!(
        "no image for platform {platform} (the index offers: {})",
        offered.join(", ")
    )
}

/// An allowlist file: `allow` entries (or, in JSON, an array of them), each as a
/// `[[scan.policy]]` table's `allowlist` entry.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<AllowItem>,
}

/// Reads an allowlist: JSON when the file is `*.json` or starts with `{`, TOML otherwise. TOML's own
/// dates and times are accepted for `expires` as well as strings.
fn load_allowlist(path: &Path) -> anyhow::Result<Allowlist> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the allowlist {}", path.display()))?;
    // TOML's `[[allow]]` starts with `[` too: a JSON array is recognised by its extension.
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    let items: Vec<AllowItem> = if json {
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the allowlist {} is not valid JSON", path.display()))?;
        let parsed: Result<Vec<AllowItem>, _> = if value.is_array() {
            serde_json::from_value(value)
        } else {
            serde_json::from_value::<AllowFile>(value).map(|f| f.allow)
        };
        parsed.with_context(|| format!("the allowlist {} is malformed", path.display()))?
    } else {
        toml::from_str::<AllowFile>(&text)
            .with_context(|| format!("the allowlist {} is malformed", path.display()))?
            .allow
    };
    berth_scan::policy::allowlist(&items)
        .with_context(|| format!("the allowlist {} is malformed", path.display()))
}

/// Unix seconds as RFC 3339, UTC.
fn rfc3339(secs: i64) -> String {
    berth_scan::policy::rfc3339(secs)
}

/// The allowlist entry that accepted a finding.
#[derive(Debug, Serialize)]
struct Accepted {
    id: String,
    expires: Option<String>,
    reason: Option<String>,
}

/// One finding as reported.
#[derive(Debug, Serialize)]
struct Reported {
    #[serde(flatten)]
    finding: Finding,
    /// The allowlist entry accepting it, if any.
    accepted: Option<Accepted>,
}

/// Counts by severity of the findings not accepted.
#[derive(Debug, Default, Serialize)]
struct Counts {
    critical: u64,
    high: u64,
    medium: u64,
    low: u64,
    none: u64,
    unknown: u64,
    accepted: u64,
}

/// The report `berth scan` prints: its JSON form is documented in the README.
#[derive(Debug, Serialize)]
struct Report {
    image: String,
    manifest: String,
    source: &'static str,
    os: Option<berth_scan::inventory::OsRelease>,
    packages: usize,
    fail_on: Option<String>,
    failed: bool,
    counts: Counts,
    findings: Vec<Reported>,
    skipped: Vec<berth_scan::matching::Skipped>,
    errors: Vec<berth_scan::inventory::InventoryError>,
    #[serde(skip)]
    expired: Vec<String>,
}

impl Report {
    fn new(
        scanned: Scanned,
        found: Findings,
        allowlist: &Allowlist,
        args: &ScanArgs,
        now: i64,
    ) -> Self {
        let mut counts = Counts::default();
        let mut failed = false;
        let mut expired = Vec::new();
        let mut findings = Vec::new();
        for finding in found.findings {
            if args.ignore_unfixed && !finding.fixable {
                continue;
            }
            let accepted = allowlist.accepts(&finding, now).map(|e| Accepted {
                id: e.id.clone(),
                expires: e.expires.map(rfc3339),
                reason: e.reason.clone(),
            });
            if accepted.is_some() {
                counts.accepted += 1;
            } else {
                if let Some(e) = allowlist.expired_for(&finding, now) {
                    expired.push(format!(
                        "allowlist entry {} expired at {}: {} counts again",
                        e.id,
                        e.expires.map(rfc3339).unwrap_or_default(),
                        finding.advisory
                    ));
                }
                let count = match finding.severity {
                    Level::Critical => &mut counts.critical,
                    Level::High => &mut counts.high,
                    Level::Medium => &mut counts.medium,
                    Level::Low => &mut counts.low,
                    Level::None => &mut counts.none,
                    Level::Unknown => &mut counts.unknown,
                };
                *count += 1;
                failed |= args.fail_on.is_some_and(|t| t.met_by(finding.severity));
            }
            findings.push(Reported { finding, accepted });
        }
        expired.sort();
        expired.dedup();
        let inventory = scanned.inventory;
        Report {
            image: scanned.image,
            manifest: scanned.manifest,
            source: scanned.from,
            os: inventory.os,
            packages: inventory.packages.len(),
            fail_on: args.fail_on.map(|t| t.to_string()),
            failed,
            counts,
            findings,
            skipped: found.skipped,
            errors: inventory.errors,
            expired,
        }
    }

    fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut table = Table::new(&[
            "SEVERITY",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "ADVISORY",
            "ALIASES",
            "STATUS",
        ]);
        for r in &self.findings {
            let f = &r.finding;
            let severity = match f.score {
                Some(score) => format!("{} {score:.1}", f.severity.as_str()),
                None => f.severity.as_str().to_owned(),
            };
            let status = match &r.accepted {
                Some(a) => match &a.expires {
                    Some(t) => format!("accepted until {t}"),
                    None => "accepted".to_owned(),
                },
                None => String::new(),
            };
            table.row(vec![
                severity,
                f.package.clone(),
                f.installed.clone(),
                f.fixed.clone().unwrap_or_else(|| "-".into()),
                f.advisory.clone(),
                f.aliases.join(","),
                status,
            ]);
        }
        if !self.findings.is_empty() {
            table.write(out)?;
        }
        let c = &self.counts;
        let os = self
            .os
            .as_ref()
            .and_then(|o| o.pretty_name.clone().or_else(|| Some(o.id.clone())))
            .unwrap_or_else(|| "unknown OS".into());
        writeln!(
            out,
            "{} ({}, {os}): {} packages, {} findings: {} critical, {} high, {} medium, {} low, {} unknown severity; {} accepted",
            self.image,
            self.manifest,
            self.packages,
            self.findings.len() as u64 - c.accepted,
            c.critical,
            c.high,
            c.medium,
            c.low,
            c.unknown + c.none,
            c.accepted
        )?;
        if let Some(t) = &self.fail_on {
            let verdict = if self.failed { "failed" } else { "passed" };
            writeln!(out, "{verdict}: --fail-on {t}")?;
        }
        Ok(())
    }

    /// Says on standard error what the findings do not: expired allowlist entries, records
    /// that could not be evaluated, layers and files the walk could not read.
    fn write_notes(&self, err: &mut impl Write) -> std::io::Result<()> {
        for line in &self.expired {
            writeln!(err, "berth: {line}")?;
        }
        for s in &self.skipped {
            writeln!(
                err,
                "berth: advisory {} not evaluated for {}: {}",
                s.advisory, s.package, s.reason
            )?;
        }
        for e in &self.errors {
            writeln!(
                err,
                "berth: layer {}{}: {}",
                e.layer,
                e.path
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default(),
                e.message
            )?;
        }
        Ok(())
    }
}
