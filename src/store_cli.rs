//! Commands that work on the registry's stored content directly (database and blob storage,
//! with or without a running server): tag history and restores, storage usage, scrub, retention.

use std::io::Write;

use anyhow::Context;
use berth_registry::config::Config;
use berth_registry::domain::{Digest, RepoName, Tag, human_bytes};
use berth_registry::meta::events::Origin;
use berth_registry::service::Registry;

/// `berth tag-history`
#[derive(Debug, clap::Args)]
pub struct TagHistoryArgs {
    /// Repository, or REPOSITORY:TAG for one tag.
    pub target: String,
    /// Show at most this many changes, newest first.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `berth tag-restore`
#[derive(Debug, clap::Args)]
pub struct TagRestoreArgs {
    /// REPOSITORY:TAG to point back at an earlier manifest.
    pub target: String,
    /// The manifest to restore (one the tag pointed at within gc.tag_history_secs); default:
    /// the newest one other than the current.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
}

/// Splits `repo[:tag]` (a colon after the last slash separates the tag).
fn repo_and_tag(target: &str) -> anyhow::Result<(RepoName, Option<Tag>)> {
    let slash = target.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match target[slash..].find(':') {
        Some(i) => (&target[..slash + i], Some(&target[slash + i + 1..])),
        None => (target, None),
    };
    let repo = RepoName::parse(repo).with_context(|| format!("invalid repository {repo:?}"))?;
    let tag = tag
        .map(|t| Tag::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .transpose()?;
    Ok((repo, tag))
}

/// Milliseconds since the epoch as an ISO 8601 UTC time.
pub(crate) fn time(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = berth_registry::auth::jwt::civil_time(ms.div_euclid(1000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Shortens a digest for a table (`sha256:0123456789ab`).
fn short(d: Option<&str>) -> &str {
    d.map_or("-", |d| &d[..d.len().min(19)])
}

pub async fn tag_history(config: &Config, args: TagHistoryArgs) -> anyhow::Result<()> {
    let (repo, tag) = repo_and_tag(&args.target)?;
    let registry = open(config).await?;
    let events = registry
        .tag_history(&repo, tag.as_ref(), None, args.limit)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<22} {:<24} {:<7} {:<19} {:<19} RESTORABLE UNTIL",
        "CHANGED", "TAG", "ACTION", "FROM", "TO"
    )?;
    for e in &events {
        writeln!(
            out,
            "{:<22} {:<24} {:<7} {:<19} {:<19} {}",
            time(e.changed_at),
            e.tag,
            e.action,
            short(e.old_digest.as_deref()),
            short(e.new_digest.as_deref()),
            if e.old_digest.is_some() {
                time(e.restorable_until)
            } else {
                "-".into()
            },
        )?;
    }
    Ok(())
}

pub async fn tag_restore(config: &Config, args: TagRestoreArgs) -> anyhow::Result<()> {
    let (repo, tag) = repo_and_tag(&args.target)?;
    let tag = tag.context("name the tag to restore: REPOSITORY:TAG")?;
    let digest = args
        .digest
        .as_deref()
        .map(|d| {
            d.parse::<Digest>()
                .with_context(|| format!("invalid digest {d:?}"))
        })
        .transpose()?;
    let registry = open(config).await?;
    let restored = registry
        .restore_tag(&repo, &tag, digest.as_ref(), &cli_origin())
        .await?;
    let mut out = std::io::stdout().lock();
    if restored.changed {
        writeln!(
            out,
            "{repo}:{tag} now points at {} (was {})",
            restored.digest,
            restored.previous.as_deref().unwrap_or("deleted")
        )?;
    } else {
        writeln!(out, "{repo}:{tag} already points at {}", restored.digest)?;
    }
    Ok(())
}

/// Who acts from the command line, for the audit log: `cli:` and the local user's name.
pub fn cli_origin() -> Origin {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Origin {
        actor: format!("cli:{user}"),
        address: None,
    }
}

async fn open(config: &Config) -> anyhow::Result<Registry> {
    Ok(berth_registry::server::open_registry(config).await?)
}

/// `berth usage`
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// A repository or namespace (every repository under NAME/); default: everything.
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn usage(config: &Config, args: UsageArgs) -> anyhow::Result<()> {
    let scope = args
        .name
        .as_deref()
        .map(|n| RepoName::parse(n).with_context(|| format!("invalid name {n:?}")))
        .transpose()?;
    let registry = open(config).await?;
    let usage = registry.usage(scope.as_ref()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&usage)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<40} {:>10} {:>10} {:>10} {:>9}",
        "REPOSITORY", "STORED", "EXCLUSIVE", "MANIFESTS", "BLOBS"
    )?;
    for r in &usage.repositories {
        writeln!(
            out,
            "{:<40} {:>10} {:>10} {:>10} {:>9}",
            r.repository,
            human_bytes(r.blob_bytes + r.manifest_bytes),
            human_bytes(r.exclusive_bytes),
            r.manifests,
            r.blobs
        )?;
    }
    let t = &usage.total;
    writeln!(
        out,
        "{}: {} repositories, {} deduplicated ({} bytes: {} blobs, {} manifests)",
        usage.scope.as_deref().unwrap_or("total"),
        t.repositories,
        human_bytes(t.blob_bytes + t.manifest_bytes),
        t.blob_bytes + t.manifest_bytes,
        t.blobs,
        t.manifests
    )?;
    for q in &usage.quotas {
        let mut limits = Vec::new();
        if let Some(max) = q.max_bytes {
            limits.push(format!(
                "{} of {} ({:.0}%)",
                human_bytes(q.used_bytes),
                human_bytes(max),
                percent(q.used_bytes, max)
            ));
        }
        if let Some(max) = q.max_repositories {
            limits.push(format!("{} of {max} repositories", q.repositories));
        }
        writeln!(out, "quota {}: {}", q.scope, limits.join(", "))?;
    }
    Ok(())
}

fn percent(used: u64, max: u64) -> f64 {
    if max == 0 {
        100.0
    } else {
        used as f64 * 100.0 / max as f64
    }
}

/// `berth scrub`
#[derive(Debug, clap::Args)]
pub struct ScrubArgs {
    /// Check at most N blobs and manifests, then stop; the next scrub resumes there.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Start a new round from the first blob instead of resuming the current one.
    #[arg(long)]
    pub restart: bool,
    /// List the problems found so far and not repaired, check nothing.
    #[arg(long, conflicts_with_all = ["limit", "restart", "orphans"])]
    pub findings: bool,
    /// Instead of checking, delete stored copies no blob or upload claims (left by a process
    /// that died between storing an upload and recording it).
    #[arg(long, conflicts_with_all = ["limit", "restart"])]
    pub orphans: bool,
    /// With --orphans: list them, delete nothing.
    #[arg(long, requires = "orphans")]
    pub dry_run: bool,
    /// With --orphans: only copies written more than SECS ago (younger ones may be an
    /// upload being recorded right now).
    #[arg(
        long,
        requires = "orphans",
        value_name = "SECS",
        default_value_t = 86_400
    )]
    pub older_than: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn print_finding(
    out: &mut impl Write,
    f: &berth_registry::meta::scrub::Finding,
) -> std::io::Result<()> {
    match &f.repository {
        Some(repo) => writeln!(
            out,
            "{}: {repo}@{}: {}",
            f.problem.as_str(),
            f.digest,
            f.detail
        ),
        None => writeln!(
            out,
            "{}: blob {}: {}",
            f.problem.as_str(),
            f.digest,
            f.detail
        ),
    }
}

/// Runs a pass (or lists findings); fails when the pass found problems, for cron and CI.
pub async fn scrub(config: &Config, args: ScrubArgs) -> anyhow::Result<()> {
    let registry = open(config).await?;
    let mut out = std::io::stdout().lock();
    if args.findings {
        let open = registry.scrub_findings().await?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&open)?)?;
        } else {
            for f in &open {
                print_finding(&mut out, f)?;
            }
            writeln!(out, "{} open problems", open.len())?;
        }
        return Ok(());
    }
    if args.orphans {
        let report = registry
            .sweep_orphans(
                std::time::Duration::from_secs(args.older_than),
                args.dry_run,
            )
            .await?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            let verb = if report.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            for key in &report.orphans {
                writeln!(out, "{verb} {key}")?;
            }
            writeln!(
                out,
                "{} of {} stored copies are orphans ({}); {verb}",
                report.orphans.len(),
                report.copies_checked,
                human_bytes(report.bytes)
            )?;
        }
        return Ok(());
    }
    let report = registry
        .scrub(&berth_registry::service::scrub::ScrubOptions {
            limit: args.limit,
            restart: args.restart,
        })
        .await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for f in &report.findings {
            print_finding(&mut out, f)?;
        }
        writeln!(
            out,
            "checked {} blobs ({}) and {} manifests; {}",
            report.blobs_checked,
            human_bytes(report.bytes_checked),
            report.manifests_checked,
            if report.round_complete {
                "round complete"
            } else {
                "the next scrub resumes here"
            }
        )?;
    }
    anyhow::ensure!(
        report.findings.is_empty(),
        "scrub found {} problems (quarantined blobs are repaired by pushing them again)",
        report.findings.len()
    );
    Ok(())
}

/// `berth retention`
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// List the tags the policies would delete; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn retention(config: &Config, args: RetentionArgs) -> anyhow::Result<()> {
    // Organizations' own rules are read from the database, so a configuration without
    // [[retention.policy]] entries may still have work to do.
    let registry = open(config).await?;
    let report = registry.apply_retention(args.dry_run).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    if config.retention.policy.is_empty() && report.tags_judged == 0 {
        writeln!(
            out,
            "no retention policies apply: none in the configuration ([[retention.policy]]) and none set by an organization"
        )?;
        return Ok(());
    }
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for e in &report.deleted {
        writeln!(
            out,
            "{verb} {}:{} ({}; policy {})",
            e.repository,
            e.tag,
            short(Some(&e.digest)),
            e.policy
        )?;
    }
    writeln!(
        out,
        "{}: {} of {} tags {verb}; restorable with berth tag-restore for gc.tag_history_secs",
        if report.dry_run { "dry run" } else { "done" },
        report.deleted.len(),
        report.tags_judged,
    )?;
    Ok(())
}
