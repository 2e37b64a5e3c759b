//! `berth audit` and `berth webhook`: the audit log and webhook deliveries, read from the
//! configured database (with or without a running server).

use std::io::Write;

use anyhow::Context;
use berth_registry::config::Config;
use berth_registry::meta::audit::{AuditQuery, DeliveryLog};
use berth_registry::meta::events::rfc3339;
use berth_registry::meta::now_ms;

use crate::store_cli::cli_origin;

/// `berth audit`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only entries about this repository, or the repositories of this namespace.
    #[arg(long, value_name = "REPOSITORY")]
    pub repo: Option<String>,
    /// Only this actor's entries (a user, org+robot, system:retention, cli:USER).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (manifest.push, tag.delete, ...), or a family of them (tag, user).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries from the last 30s, 15m, 24h or 7d.
    #[arg(long, value_name = "AGE")]
    pub since: Option<String>,
    /// Show at most this many entries, newest first.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `berth webhook`
#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// List the configured webhooks.
    List,
    /// Send a test event to a webhook now, and show the attempt.
    Test {
        /// The webhook's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show recent deliveries with every attempt's response.
    Deliveries {
        /// Only this webhook's deliveries.
        name: Option<String>,
        /// Show at most this many deliveries, newest first.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `30s`, `15m`, `24h` or `7d` as milliseconds.
fn age_ms(age: &str) -> anyhow::Result<i64> {
    let split = age.len().saturating_sub(1);
    let (n, unit) = age.split_at(split);
    let n: i64 = n
        .parse()
        .with_context(|| format!("invalid age {age:?}: expected 30s, 15m, 24h or 7d"))?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("invalid age {age:?}: expected 30s, 15m, 24h or 7d"),
    };
    Ok(n.saturating_mul(unit_ms))
}

pub async fn audit(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let since_ms = args
        .since
        .as_deref()
        .map(age_ms)
        .transpose()?
        .map(|age| now_ms().saturating_sub(age));
    let registry = berth_registry::server::open_registry(config).await?;
    let entries = registry
        .audit(AuditQuery {
            repository: args.repo.as_deref(),
            actor: args.actor.as_deref(),
            action: args.action.as_deref(),
            org: None,
            since_ms,
            until_ms: None,
            before_id: None,
            limit: args.limit,
        })
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<22} {:<18} {:<16} WHAT",
        "TIME", "ACTION", "ACTOR", "FROM"
    )?;
    for e in &entries {
        let mut what = Vec::new();
        match (&e.repository, &e.tag) {
            (Some(r), Some(t)) => what.push(format!("{r}:{t}")),
            (Some(r), None) => what.push(r.clone()),
            _ => {}
        }
        what.extend(e.digest.clone());
        what.extend(e.target.clone());
        what.extend(e.detail.as_ref().map(ToString::to_string));
        writeln!(
            out,
            "{:<24} {:<22} {:<18} {:<16} {}",
            rfc3339(e.at),
            e.action,
            if e.actor.is_empty() {
                "(anonymous)"
            } else {
                &e.actor
            },
            e.address.as_deref().unwrap_or("-"),
            what.join(" ")
        )?;
    }
    Ok(())
}

pub async fn webhook(config: &Config, command: WebhookCommand) -> anyhow::Result<()> {
    let registry = berth_registry::server::open_registry(config).await?;
    let mut out = std::io::stdout().lock();
    match command {
        WebhookCommand::List => {
            writeln!(out, "{:<20} {:<16} {:<14} URL", "NAME", "SCOPE", "EVENTS")?;
            for h in registry.webhooks().all() {
                let events: Vec<String> = h
                    .events
                    .iter()
                    .map(|e| serde_json::to_value(e).map(|v| v.as_str().unwrap_or("").to_owned()))
                    .collect::<Result<_, _>>()?;
                writeln!(
                    out,
                    "{:<20} {:<16} {:<14} {}",
                    h.name,
                    if h.scope.is_empty() { "*" } else { &h.scope },
                    events.join(","),
                    h.url
                )?;
            }
        }
        WebhookCommand::Test { name, json } => {
            let delivery = registry.test_webhook(&name, &cli_origin()).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&delivery)?)?;
            } else {
                print_deliveries(&mut out, std::slice::from_ref(&delivery))?;
            }
        }
        WebhookCommand::Deliveries { name, limit, json } => {
            let log = registry.webhook_deliveries(name.as_deref(), limit).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&log)?)?;
            } else {
                print_deliveries(&mut out, &log)?;
            }
        }
    }
    Ok(())
}

fn print_deliveries(out: &mut impl Write, log: &[DeliveryLog]) -> anyhow::Result<()> {
    for d in log {
        writeln!(
            out,
            "delivery {} to {} ({}, {}): {}{}",
            d.id,
            d.hook,
            d.event_type,
            rfc3339(d.created_at),
            d.state,
            d.next_attempt_at
                .map(|t| format!(", next attempt {}", rfc3339(t)))
                .unwrap_or_default()
        )?;
        for a in &d.attempts {
            writeln!(
                out,
                "  attempt {} at {}: {} ({} ms){}",
                a.attempt,
                rfc3339(a.at),
                a.status.map_or("no response".into(), |s| s.to_string()),
                a.duration_ms,
                a.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}
