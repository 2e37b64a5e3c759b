//! `/ui/admin/maintenance`, for hub administrators: the last garbage-collection passes (when,
//! run by `serve` or `berth gc`, what each removed and freed, why one failed) and the scrub
//! (how far the current round has got, and the findings not repaired yet).

use std::sync::Arc;

use axum::extract::State;
use maud::html;

use super::layout::{self, page, repo_href, short_digest, when};
use super::usage::require_admin;
use super::viewer::Viewer;
use super::{Ui, UiResult};
use crate::domain::human_bytes;
use crate::meta::maintenance::GcRunner;

/// Passes shown.
const PASSES_SHOWN: u32 = 50;

/// `GET /ui/admin/maintenance`.
pub(super) async fn page_get(State(ui): State<Arc<Ui>>, viewer: Viewer) -> UiResult {
    require_admin(&viewer, "/ui/admin/maintenance")?;
    let passes = ui.registry.gc_passes(PASSES_SHOWN).await?;
    let scrub = ui.registry.scrub_status().await?;
    let p = &scrub.progress;
    let body = html! {
        h1 { "Maintenance" }
        section aria-labelledby="gc" {
            h2 #gc { "Garbage collection" }
            p.meta { "The last " (PASSES_SHOWN) " passes, newest first: those `berth serve` runs on its schedule and those run with `berth gc` (dry runs are not recorded)." }
            table.list #gc-passes {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "Run by" } th scope="col" { "Took" }
                    th scope="col" { "Manifests removed" } th scope="col" { "Blobs removed" }
                    th scope="col" { "Freed" } th scope="col" { "Outcome" }
                } }
                tbody {
                    @if passes.is_empty() { tr { td colspan="7" { span.muted { "No pass recorded yet." } } } }
                    @for pass in &passes {
                        tr {
                            td { (when(pass.started_at)) }
                            td { @match pass.run_by { GcRunner::Serve => { "serve" }, GcRunner::Cli => { "berth gc" }, } }
                            td { (pass.finished_at.saturating_sub(pass.started_at).max(0) / 1000) " s" }
                            td.manifests-removed { (pass.manifests_removed) }
                            td.blobs-removed { (pass.blobs_removed) }
                            td.bytes-freed { (human_bytes(pass.bytes_freed)) }
                            td {
                                @if let Some(e) = &pass.error { span.error { "failed: " (e) } }
                                @else { "done" }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="scrub" {
            h2 #scrub { "Scrub" }
            p #scrub-progress {
                @if let Some(started) = p.round_started_at {
                    "Round started " (when(started)) ": "
                    (p.blobs_checked.min(p.blobs_total)) " of " (p.blobs_total) " blobs and "
                    (p.manifests_checked.min(p.manifests_total)) " of " (p.manifests_total) " manifests checked."
                } @else {
                    "No round in progress: the next scrub pass starts one (" (p.blobs_total) " blobs, " (p.manifests_total) " manifests)."
                }
            }
            h3 { "Open findings" }
            table.list #scrub-findings {
                thead { tr {
                    th scope="col" { "Problem" } th scope="col" { "Digest" } th scope="col" { "Repository" }
                    th scope="col" { "Found" } th scope="col" { "Detail" }
                } }
                tbody {
                    @if scrub.findings.is_empty() { tr { td colspan="5" { span.muted { "No open findings." } } } }
                    @for f in &scrub.findings {
                        tr {
                            td.problem { (f.finding.problem.as_str()) }
                            td { code title=(f.finding.digest) { (short_digest(&f.finding.digest)) } }
                            td {
                                @if let Some(r) = &f.finding.repository { a href=(repo_href(r)) { (r) } }
                                @else { span.muted { "(stored blob)" } }
                            }
                            td { (when(f.found_at)) }
                            td { (f.finding.detail) }
                        }
                    }
                }
            }
        }
    };
    let crumbs = [("Maintenance".to_owned(), "/ui/admin/maintenance".to_owned())];
    Ok(layout::html_response(
        page(&viewer, "Maintenance", &crumbs, body),
        None,
    ))
}
