//! Pages for reading the hub: home, namespaces, repositories with their tags, images and
//! search. What the viewer may not read answers 404, like what does not exist.

use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    self, bytes, copy_box, manifest_href, page, repo_crumbs, repo_href, short_digest, size_range,
    when,
};
use super::scans;
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::auth::Action;
use crate::domain::{Digest, RepoName, human_bytes};
use crate::meta::browse::{RepoSummary, TagOrder};
use crate::service::browse::{ImageView, TagList};
use crate::service::quota::QuotaStatus;
use crate::service::scan_views::{ScanBadge, ScanState};
use crate::service::trust::{self, TrustStatus};

/// Tags per page of a repository.
const TAGS_PER_PAGE: u32 = 50;
/// Repositories per page of a listing.
const REPOS_PER_PAGE: u32 = 50;
/// Longest search or filter text accepted.
const MAX_QUERY_CHARS: usize = 200;

/// What follows a repository name in `/ui/r/...`.
pub(super) enum RepoPath {
    /// The repository's tags.
    Tags,
    /// One manifest.
    Manifest(Digest),
    /// A manifest's vulnerabilities.
    Findings(Digest),
    /// A manifest's packages and SBOMs.
    Packages(Digest),
    /// Its settings page.
    Settings,
    /// Its tag history.
    History,
    /// A form target (`POST`).
    Action(String),
}

/// Splits `name[/-/rest]`; bad names and unknown sub-pages are 404s.
pub(super) fn parse_repo_path(rest: &str) -> Result<(RepoName, RepoPath), UiError> {
    let (name, sub) = match rest.split_once("/-/") {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest.trim_end_matches('/'), None),
    };
    let name = RepoName::parse(name).map_err(|_| UiError::NotFound)?;
    let path = match sub {
        None => RepoPath::Tags,
        Some("settings") => RepoPath::Settings,
        Some("history") => RepoPath::History,
        Some(sub) => match sub.split_once('/') {
            Some(("manifest", d)) => {
                RepoPath::Manifest(Digest::parse(d).map_err(|_| UiError::NotFound)?)
            }
            Some(("findings", d)) => {
                RepoPath::Findings(Digest::parse(d).map_err(|_| UiError::NotFound)?)
            }
            Some(("packages", d)) => {
                RepoPath::Packages(Digest::parse(d).map_err(|_| UiError::NotFound)?)
            }
            None => RepoPath::Action(sub.to_owned()),
            Some(_) => return Err(UiError::NotFound),
        },
    };
    Ok((name, path))
}

fn bounded(q: Option<String>) -> Result<String, UiError> {
    let q = q.unwrap_or_default();
    let q = q.trim();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(UiError::BadRequest(format!(
            "the search text is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(q.to_owned())
}

/// Query of listing pages.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    after: Option<String>,
}

/// `GET /ui/`: recently pushed repositories and all repositories, a page at a time.
pub(super) async fn home(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult {
    let reads = |name: &str| viewer.reads(name);
    let recent = match q.after {
        None => ui.registry.recent_repositories(12, &reads).await?,
        Some(_) => Vec::new(),
    };
    let all = ui
        .registry
        .repository_page(None, q.after.as_deref(), REPOS_PER_PAGE, &reads)
        .await?;
    let body = html! {
        h1 { "Repositories" }
        @if !recent.is_empty() {
            section aria-labelledby="recent" {
                h2 #recent { "Recently pushed" }
                ul.cards {
                    @for r in &recent {
                        li.card {
                            a href=(repo_href(&r.name)) { (r.name) }
                            span.meta {
                                (tag_count(r.tags))
                                @if let Some(at) = r.pushed_at { " · pushed " (when(at)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="all" {
            h2 #all { "All repositories" }
            (repo_table(&all.items, "No repositories yet. Push an image to see it here."))
            @if all.more {
                @if let Some(last) = all.items.last() {
                    p.pager { a rel="next" href={ "/ui/?after=" (super::form::encode(&last.name)) } { "Next page →" } }
                }
            }
        }
    };
    Ok(layout::html_response(
        page(&viewer, "Repositories", &[], body),
        None,
    ))
}

fn tag_count(n: u64) -> String {
    format!("{n} tag{}", if n == 1 { "" } else { "s" })
}

fn repo_table(repos: &[RepoSummary], empty: &str) -> Markup {
    html! {
        @if repos.is_empty() {
            p.empty { (empty) }
        } @else {
            table.list {
                thead { tr { th scope="col" { "Repository" } th scope="col" { "Tags" } th scope="col" { "Last push" } } }
                tbody {
                    @for r in repos {
                        tr {
                            td { a href=(repo_href(&r.name)) { (r.name) } }
                            td { (r.tags) }
                            td { @if let Some(at) = r.pushed_at { (when(at)) } @else { "—" } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/n/{namespace}`: the repositories of a user or organization.
pub(super) async fn namespace(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    if ns.contains('/') || RepoName::parse(&ns).is_err() {
        return Err(UiError::NotFound);
    }
    let reads = |name: &str| viewer.reads(name);
    let repos = ui
        .registry
        .repository_page(Some(&ns), q.after.as_deref(), REPOS_PER_PAGE, &reads)
        .await?;
    let manages = match (&ui.gate, viewer.user()) {
        (Some(gate), Some(user)) => gate.accounts.manages_org(user, &ns).await.unwrap_or(false),
        _ => false,
    };
    // Only someone who sees a repository here learns the namespace's usage.
    let quotas = match (repos.items.is_empty(), RepoName::parse(&ns)) {
        (false, Ok(scope)) => ui.registry.quota_status(Some(&scope)).await?,
        _ => Vec::new(),
    };
    let body = html! {
        h1 { (ns) }
        (quota_lines(&quotas))
        @if manages {
            p { a.button href={ "/ui/orgs/" (ns) } { "Manage organization" } }
        }
        (repo_table(&repos.items, "No repositories you may see here."))
        @if repos.more {
            @if let Some(last) = repos.items.last() {
                p.pager { a rel="next" href={ "/ui/n/" (ns) "?after=" (super::form::encode(&last.name)) } { "Next page →" } }
            }
        }
    };
    let crumbs = [(ns.clone(), format!("/ui/n/{ns}"))];
    Ok(layout::html_response(
        page(&viewer, &ns, &crumbs, body),
        None,
    ))
}

/// Query of a repository's tag page.
#[derive(Deserialize)]
pub(super) struct TagsQuery {
    q: Option<String>,
    sort: Option<String>,
    page: Option<u64>,
}

/// `GET /ui/r/...`: a repository's tags, a manifest, or the settings page.
pub(super) async fn repository_get(
    State(ui): State<Arc<Ui>>,
    mut viewer: Viewer,
    Path(rest): Path<String>,
    Query(q): Query<TagsQuery>,
    RawQuery(raw): RawQuery,
) -> UiResult {
    let (name, path) = parse_repo_path(&rest)?;
    let reads = |n: &str| viewer.reads(n);
    if !ui.registry.readable_repository(&name, &reads).await? {
        return Err(UiError::NotFound);
    }
    match path {
        RepoPath::Tags => tags_page(&ui, &viewer, &name, q).await,
        RepoPath::Manifest(digest) => manifest_page(&ui, &viewer, &name, &digest).await,
        RepoPath::Findings(digest) => {
            let q = scans::FindingsQuery::parse(raw.as_deref());
            scans::findings_page(&ui, &viewer, &name, &digest, &q).await
        }
        RepoPath::Packages(digest) => {
            let q = scans::FindingsQuery::parse(raw.as_deref());
            scans::packages_page(&ui, &viewer, &name, &digest, &q).await
        }
        RepoPath::Settings => super::manage::settings_page(&ui, &mut viewer, &name).await,
        RepoPath::History => {
            let q = super::history::HistoryQuery::parse(raw.as_deref())?;
            super::history::history_page(&ui, &viewer, &name, &q).await
        }
        RepoPath::Action(_) => Err(UiError::NotFound),
    }
}

async fn tags_page(ui: &Ui, viewer: &Viewer, name: &RepoName, q: TagsQuery) -> UiResult {
    let filter = bounded(q.q)?;
    let order = match q.sort.as_deref() {
        Some("newest") => TagOrder::Newest,
        _ => TagOrder::Name,
    };
    let page_no = q.page.unwrap_or(1).clamp(1, u64::from(u32::MAX));
    let offset = (page_no - 1) * u64::from(TAGS_PER_PAGE);
    let list = ui
        .registry
        .tag_list(name, &filter, order, offset, TAGS_PER_PAGE)
        .await?;
    let actions = viewer.actions_on(ui, name.as_str()).await?;
    let quotas = ui.registry.quota_status(Some(name)).await?;
    let mut trust = Vec::new();
    if ui.registry.limits().trust.for_repository(name).is_some() {
        for t in &list.tags {
            trust.push(ui.registry.trust_status(name, &t.digest).await?);
        }
    }
    let digests: Vec<Digest> = list.tags.iter().map(|t| t.digest.clone()).collect();
    let mut badges = ui.registry.scan_badges(name, &digests).await?;
    if !ui.registry.limits().scan.enabled
        && badges.iter().all(|b| b.state() == ScanState::NotScanned)
    {
        badges.clear();
    }
    let host = viewer.registry_host();
    let pages = list.total.div_ceil(u64::from(TAGS_PER_PAGE)).max(1);
    let link = |p: u64| {
        format!(
            "{}?q={}&sort={}&page={p}",
            repo_href(name.as_str()),
            super::form::encode(&filter),
            if order == TagOrder::Newest {
                "newest"
            } else {
                "name"
            }
        )
    };
    let body = html! {
        div.heading {
            h1 { (name.as_str()) }
            a.button #tag-history href=(super::history::history_href(name.as_str(), None)) { "Tag history" }
            @if actions.contains(Action::Delete) {
                a.button href={ (repo_href(name.as_str())) "/-/settings" } { "Settings" }
            }
        }
        (copy_box("pull command", &format!("docker pull {host}/{}", name.as_str())))
        form.filter method="get" action=(repo_href(name.as_str())) {
            label for="tag-filter" { "Filter tags" }
            input #tag-filter type="search" name="q" value=(filter) maxlength="200";
            label for="tag-sort" { "Sort by" }
            select #tag-sort name="sort" {
                option value="name" selected[order == TagOrder::Name] { "Name" }
                option value="newest" selected[order == TagOrder::Newest] { "Newest" }
            }
            button type="submit" { "Apply" }
        }
        p.meta { (tag_count(list.total)) @if !filter.is_empty() { " matching “" (filter) "”" } }
        (quota_lines(&quotas))
        (tag_table(name, &list, &trust, &badges, host))
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page_no > 1 { a rel="prev" href=(link(page_no - 1)) { "← Previous" } }
                span { "Page " (page_no) " of " (pages) }
                @if page_no < pages { a rel="next" href=(link(page_no + 1)) { "Next →" } }
            }
        }
    };
    Ok(layout::html_response(
        page(viewer, name.as_str(), &repo_crumbs(name.as_str()), body),
        None,
    ))
}

/// The quotas covering a page's repository or namespace, with their usage.
fn quota_lines(quotas: &[QuotaStatus]) -> Markup {
    html! {
        @for q in quotas {
            p.meta.quota {
                "Quota of " (q.scope) ": "
                @if let Some(max) = q.max_bytes {
                    meter value=(q.used_bytes.min(max)) max=(max) {}
                    " " (human_bytes(q.used_bytes)) " of " (human_bytes(max))
                    @if q.max_repositories.is_some() { ", " }
                }
                @if let Some(max) = q.max_repositories {
                    (q.repositories) " of " (max) " repositories"
                }
            }
        }
    }
}

/// A manifest's signature status as a chip; the detail says why.
fn trust_chip(status: &TrustStatus) -> Markup {
    let (label, class) = match status.status {
        trust::Status::Verified => ("signed", "trust-verified"),
        trust::Status::Unsigned => ("unsigned", "trust-unsigned"),
        trust::Status::Untrusted => ("untrusted signature", "trust-untrusted"),
        trust::Status::Invalid => ("invalid signature", "trust-invalid"),
    };
    let enforced = status.mode == berth_trust::Mode::Enforce;
    html! {
        span.chip.(class).enforced[enforced] title=(status.detail) { (label) }
    }
}

/// `trust` holds each tag's signature status, in order, or nothing when no policy covers the
/// repository; `scans` each tag's severity summary, or nothing when nothing was scanned.
fn tag_table(
    name: &RepoName,
    list: &TagList,
    trust: &[Option<TrustStatus>],
    scans: &[ScanBadge],
    host: &str,
) -> Markup {
    html! {
        @if list.tags.is_empty() {
            p.empty { "No tags." }
        } @else {
            table.list.tags {
                thead {
                    tr {
                        th scope="col" { "Tag" }
                        th scope="col" { "Digest" }
                        th scope="col" { "Size" }
                        th scope="col" { "Platforms" }
                        @if !trust.is_empty() { th scope="col" { "Signature" } }
                        @if !scans.is_empty() { th scope="col" { "Vulnerabilities" } }
                        th scope="col" { "Pushed" }
                        th scope="col" { span.visually-hidden { "Pull" } }
                    }
                }
                tbody {
                    @for (i, t) in list.tags.iter().enumerate() {
                        tr {
                            th scope="row" {
                                a href=(manifest_href(name.as_str(), &t.digest.to_string())) { (t.name) }
                            }
                            td { code title=(t.digest.to_string()) { (short_digest(&t.digest.to_string())) } }
                            td { (size_range(t.size)) }
                            td {
                                @if t.platforms.is_empty() { span.muted { "—" } }
                                @for p in &t.platforms { span.chip { (p.to_string()) } " " }
                            }
                            @if let Some(status) = trust.get(i) {
                                td.signature { @if let Some(s) = status { (trust_chip(s)) } }
                            }
                            @if let Some(badge) = scans.get(i) {
                                td.vulnerabilities { (scans::scan_badge(name.as_str(), &t.digest, badge)) }
                            }
                            td { (when(t.pushed_at)) }
                            td { (copy_box("pull command", &format!("docker pull {host}/{}:{}", name.as_str(), t.name))) }
                        }
                    }
                }
            }
        }
    }
}

async fn manifest_page(ui: &Ui, viewer: &Viewer, name: &RepoName, digest: &Digest) -> UiResult {
    let image = ui.registry.image(name, digest).await?;
    let trust = ui.registry.trust_status(name, digest).await?;
    let badge = ui
        .registry
        .scan_badges(name, std::slice::from_ref(digest))
        .await?
        .pop()
        .unwrap_or_default();
    let host = viewer.registry_host();
    let title = format!(
        "{}@{}",
        name.as_str(),
        short_digest(&image.digest.to_string())
    );
    let mut crumbs = repo_crumbs(name.as_str());
    crumbs.push((
        short_digest(&image.digest.to_string()),
        manifest_href(name.as_str(), &image.digest.to_string()),
    ));
    let body = html! {
        h1 { (name.as_str()) }
        dl.facts {
            dt { "Digest" } dd { code.digest { (image.digest.to_string()) } }
            dt { "Tags" } dd {
                @if image.tags.is_empty() { span.muted { "untagged" } }
                @for t in &image.tags { span.chip { (t) } " " }
            }
            dt { "Media type" } dd { code { (image.media_type) } }
            @if let Some(a) = &image.manifest.artifact_type { dt { "Artifact type" } dd { code { (a) } } }
            dt { "Pushed" } dd { (when(image.pushed_at)) }
            @if let Some(t) = &trust {
                dt { "Signature" }
                dd.signature {
                    (trust_chip(t)) " " (t.detail)
                    " (policy " code { (t.policy) } ", "
                    @if t.mode == berth_trust::Mode::Enforce { "enforced" } @else { "audit only" } ")"
                }
            }
            @if badge.state() != ScanState::NotScanned {
                dt { "Vulnerabilities" }
                dd {
                    (scans::scan_badge(name.as_str(), digest, &badge)) " "
                    @if badge.platforms.is_none() {
                        a href=(scans::packages_href(name.as_str(), digest)) { "Packages" }
                    }
                }
            }
            @if !image.manifest.is_index() {
                dt { "Compressed size" } dd { (bytes(image.manifest.image_size())) }
            }
            @if !image.parents.is_empty() {
                dt { "Part of" } dd {
                    @for p in &image.parents {
                        a href=(manifest_href(name.as_str(), &p.to_string())) { code { (short_digest(&p.to_string())) } } " "
                    }
                }
            }
            @if let Some(s) = &image.manifest.subject {
                dt { "Refers to" } dd { a href=(manifest_href(name.as_str(), &s.digest)) { code { (short_digest(&s.digest)) } } }
            }
        }
        (copy_box("pull command", &format!("docker pull {host}/{}@{}", name.as_str(), image.digest)))
        @if image.manifest.is_index() { (platforms(name, &image)) } @else { (layers(&image)) (config(&image)) }
        (referrers(name, &image))
        (annotations(&image.manifest.annotations))
        details.raw {
            summary { "Raw manifest (" (bytes(image.manifest_size)) ")" }
            pre { code { (image.raw) } }
        }
    };
    Ok(layout::html_response(
        page(viewer, &title, &crumbs, body),
        None,
    ))
}

fn platforms(name: &RepoName, image: &ImageView) -> Markup {
    html! {
        section aria-labelledby="platforms" {
            h2 #platforms { "Platforms" }
            table.list {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Digest" } th scope="col" { "Size" } th scope="col" { "Media type" } } }
                tbody {
                    @for c in &image.children {
                        tr {
                            th scope="row" {
                                @match &c.descriptor.platform {
                                    Some(p) if p.os == "unknown" => span.muted { "attestation" },
                                    Some(p) => (p.to_string()),
                                    None => span.muted { "—" },
                                }
                            }
                            td { a href=(manifest_href(name.as_str(), &c.descriptor.digest)) { code { (short_digest(&c.descriptor.digest)) } } }
                            td { @if let Some(s) = c.image_size { (bytes(s)) } @else { "—" } }
                            td { code { (c.descriptor.media_type) } }
                        }
                    }
                }
            }
        }
    }
}

fn layers(image: &ImageView) -> Markup {
    html! {
        section aria-labelledby="layers" {
            h2 #layers { "Layers" }
            table.list {
                thead { tr { th scope="col" { "#" } th scope="col" { "Digest" } th scope="col" { "Size" } th scope="col" { "Media type" } } }
                tbody {
                    @for (i, l) in image.manifest.layers.iter().enumerate() {
                        tr {
                            td { (i + 1) }
                            td { code title=(l.digest) { (short_digest(&l.digest)) } }
                            td { (bytes(l.size)) }
                            td { code { (l.media_type) } }
                        }
                    }
                }
            }
        }
    }
}

fn config(image: &ImageView) -> Markup {
    let Some(c) = &image.config else {
        return html! {
            @if let Some(cfg) = &image.manifest.config {
                section { h2 { "Config" } p { code { (cfg.media_type) } " · " (bytes(cfg.size)) } }
            }
        };
    };
    let run = &c.config;
    let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(" "));
    html! {
        section aria-labelledby="config" {
            h2 #config { "Configuration" }
            dl.facts {
                @if let (Some(os), Some(arch)) = (&c.os, &c.architecture) {
                    dt { "Platform" } dd { (os) "/" (arch) @if let Some(v) = &c.variant { "/" (v) } }
                }
                @if let Some(created) = &c.created { dt { "Created" } dd { (created) } }
                @if let Some(e) = list(&run.entrypoint) { dt { "Entrypoint" } dd { code { (e) } } }
                @if let Some(cmd) = list(&run.cmd) { dt { "Command" } dd { code { (cmd) } } }
                @if let Some(w) = &run.working_dir { @if !w.is_empty() { dt { "Working directory" } dd { code { (w) } } } }
                @if let Some(u) = &run.user { @if !u.is_empty() { dt { "User" } dd { code { (u) } } } }
                @if let Some(ports) = &run.exposed_ports { dt { "Exposed ports" } dd { @for p in ports.keys() { span.chip { (p) } " " } } }
                @if let Some(s) = &run.stop_signal { dt { "Stop signal" } dd { (s) } }
            }
            @if let Some(env) = &run.env {
                h3 { "Environment" }
                ul.plain { @for e in env { li { code { (e) } } } }
            }
            @if let Some(labels) = &run.labels {
                @if !labels.is_empty() {
                    h3 { "Labels" }
                    (key_values(labels))
                }
            }
            @if !c.history.is_empty() {
                h3 { "History" }
                ol.history {
                    @for h in &c.history {
                        li class=[h.empty_layer.then_some("empty")] {
                            code { (h.created_by.as_deref().unwrap_or("")) }
                            @if let Some(comment) = &h.comment { " " span.muted { (comment) } }
                        }
                    }
                }
            }
        }
    }
}

fn key_values(map: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        table.list.kv {
            tbody { @for (k, v) in map { tr { th scope="row" { code { (k) } } td { (v) } } } }
        }
    }
}

fn referrers(name: &RepoName, image: &ImageView) -> Markup {
    html! {
        @if !image.referrers.items.is_empty() {
            section aria-labelledby="referrers" {
                h2 #referrers { "Referrers" }
                p.meta { "Signatures, SBOMs and attestations that refer to this manifest." }
                table.list {
                    thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Digest" } th scope="col" { "Size" } } }
                    tbody {
                        @for r in &image.referrers.items {
                            tr {
                                td { code { (r.artifact_type.as_deref().unwrap_or(&r.media_type)) } }
                                td { a href=(manifest_href(name.as_str(), &r.digest.to_string())) { code { (short_digest(&r.digest.to_string())) } } }
                                td { (bytes(r.size)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn annotations(map: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        @if !map.is_empty() {
            section aria-labelledby="annotations" {
                h2 #annotations { "Annotations" }
                (key_values(map))
            }
        }
    }
}

/// Query of the search page.
#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

/// `GET /ui/search?q=`: repositories and tags whose names contain the text.
pub(super) async fn search(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Query(q): Query<SearchQuery>,
) -> UiResult {
    let text = bounded(q.q)?;
    let reads = |name: &str| viewer.reads(name);
    let results = if text.is_empty() {
        Default::default()
    } else {
        ui.registry.search(&text, 50, &reads).await?
    };
    let body = html! {
        h1 { "Search" }
        form.filter role="search" method="get" action="/ui/search" {
            label for="search-text" { "Repository or tag name contains" }
            input #search-text type="search" name="q" value=(text) maxlength="200" autofocus;
            button type="submit" { "Search" }
        }
        @if !text.is_empty() {
            section aria-labelledby="found-repos" {
                h2 #found-repos { "Repositories" }
                @if results.repositories.is_empty() { p.empty { "No repository names contain “" (text) "”." } }
                ul.plain {
                    @for r in &results.repositories { li { a href=(repo_href(r)) { (r) } } }
                }
                @if results.more_repositories { p.meta { "More repositories match; narrow the search." } }
            }
            section aria-labelledby="found-tags" {
                h2 #found-tags { "Tags" }
                @if results.tags.is_empty() { p.empty { "No tags contain “" (text) "”." } }
                @else {
                    table.list {
                        thead { tr { th scope="col" { "Image" } th scope="col" { "Digest" } th scope="col" { "Pushed" } } }
                        tbody {
                            @for t in &results.tags {
                                tr {
                                    td { a href=(manifest_href(&t.repository, &t.digest)) { (t.repository) ":" (t.tag) } }
                                    td { code { (short_digest(&t.digest)) } }
                                    td { (when(t.pushed_at)) }
                                }
                            }
                        }
                    }
                }
                @if results.more_tags { p.meta { "More tags match; narrow the search." } }
            }
        }
    };
    Ok(layout::html_response(
        page(
            &viewer,
            "Search",
            &[("Search".into(), "/ui/search".into())],
            body,
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_split_at_the_separator() {
        let (n, p) = parse_repo_path("acme/app/api").expect("tags");
        assert_eq!(n.as_str(), "acme/app/api");
        assert!(matches!(p, RepoPath::Tags));
        let d = format!("sha256:{}", "a".repeat(64));
        let (n, p) = parse_repo_path(&format!("acme/app/-/manifest/{d}")).expect("manifest");
        assert_eq!(n.as_str(), "acme/app");
        assert!(matches!(p, RepoPath::Manifest(x) if x.to_string() == d));
        assert!(matches!(
            parse_repo_path("a/-/settings").expect("s").1,
            RepoPath::Settings
        ));
        assert!(
            matches!(parse_repo_path("a/-/delete-tag").expect("a").1, RepoPath::Action(s) if s == "delete-tag")
        );
        assert!(parse_repo_path("Bad Name").is_err());
        assert!(parse_repo_path("a/-/manifest/nope").is_err());
        assert!(parse_repo_path("a/-/x/y").is_err());
    }
}
