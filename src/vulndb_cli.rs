//! `berth vulndb`: the advisory database, imported from OSV data into the configured database
//! (SQLite or PostgreSQL), with or without a running server.

use std::io::Write;

use anyhow::Context;
use berth_registry::config::Config;
use berth_registry::meta::MetaStore;
use berth_registry::service::vulndb::{Source, VulnDb};
use clap::Subcommand;

/// `berth vulndb ...`
#[derive(Debug, Subcommand)]
pub enum VulnDbCommand {
    /// Import OSV advisories: records new or newer than those stored are written, the rest
    /// skipped, so a re-run after an interruption completes the import. Malformed records are
    /// counted, logged and skipped.
    Update {
        /// Import from here only (repeatable): an http(s) URL of an OSV `all.zip`, or the path
        /// of such an archive, of a directory of `*.json` records or of one record. Default:
        /// scan.vulndb_sources.
        #[arg(long = "from", value_name = "URL|PATH")]
        from: Vec<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the sources imported, their last import, and the database's totals.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one stored advisory as JSON (its columns and the record as published).
    Show {
        /// The advisory's id (`DSA-5218-1`, `GHSA-...`).
        id: String,
    },
}

/// Runs a `vulndb` command against the database `config` names.
pub async fn run(config: &Config, command: VulnDbCommand) -> anyhow::Result<()> {
    if config.database.url.is_empty() {
        std::fs::create_dir_all(&config.server.data_dir)
            .with_context(|| format!("cannot create {}", config.server.data_dir.display()))?;
    }
    let meta = berth_registry::server::open_meta(config, config.database.auto_migrate).await?;
    match command {
        VulnDbCommand::Update { from, json } => update(config, meta, from, json).await,
        VulnDbCommand::Status { json } => status(&*meta, json).await,
        VulnDbCommand::Show { id } => {
            let advisory = meta
                .advisory(&id)
                .await?
                .with_context(|| format!("no advisory {id:?}"))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(&advisory)?)?;
            Ok(())
        }
    }
}

async fn update(
    config: &Config,
    meta: std::sync::Arc<dyn MetaStore>,
    from: Vec<String>,
    json: bool,
) -> anyhow::Result<()> {
    let sources = if from.is_empty() {
        config.scan.vulndb_sources.clone()
    } else {
        from
    };
    anyhow::ensure!(
        !sources.is_empty(),
        "no sources: pass --from URL|PATH or set scan.vulndb_sources"
    );
    let importer = VulnDb::new(meta)?;
    let mut reports = Vec::new();
    let mut failed = 0;
    for source in &sources {
        let source = Source::parse(source);
        match importer.import(&source).await {
            Ok(report) => {
                if !json {
                    let mut out = std::io::stdout().lock();
                    if report.not_modified {
                        writeln!(out, "{}: not modified since the last import", report.source)?;
                    } else {
                        writeln!(
                            out,
                            "{}: {} new, {} updated, {} unchanged, {} malformed",
                            report.source,
                            report.new,
                            report.updated,
                            report.unchanged,
                            report.malformed
                        )?;
                    }
                }
                reports.push(report);
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(
                    std::io::stderr(),
                    "berth: {}: {:#}",
                    source.name(),
                    anyhow::Error::from(e)
                );
            }
        }
    }
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&reports)?
        )?;
    }
    anyhow::ensure!(failed == 0, "{failed} of {} sources failed", sources.len());
    Ok(())
}

async fn status(meta: &dyn MetaStore, json: bool) -> anyhow::Result<()> {
    let counts = meta.advisory_counts().await?;
    let sources = meta.advisory_sources().await?;
    let mut out = std::io::stdout().lock();
    if json {
        let status = serde_json::json!({ "counts": counts, "sources": sources });
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} advisories ({} withdrawn), {} affected packages",
        counts.advisories, counts.withdrawn, counts.packages
    )?;
    if sources.is_empty() {
        writeln!(
            out,
            "no source imported yet: berth vulndb update --from URL|PATH"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<20} {:>8} {:>6} {:>8} {:>9} {:>9}  SOURCE (ECOSYSTEMS)",
        "IMPORTED", "CHECKED", "RECORDS", "NEW", "UPDATED", "UNCHANGED", "MALFORMED"
    )?;
    for s in &sources {
        writeln!(
            out,
            "{:<20} {:<20} {:>8} {:>6} {:>8} {:>9} {:>9}  {} ({})",
            crate::store_cli::time(s.imported_at),
            crate::store_cli::time(s.checked_at),
            s.records,
            s.new,
            s.updated,
            s.unchanged,
            s.malformed,
            s.source,
            s.ecosystems
        )?;
    }
    Ok(())
}
