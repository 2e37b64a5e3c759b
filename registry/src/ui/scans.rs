//! Scan results in the UI: the severity summary shown per tag and on the manifest page, the
//! findings page (`/ui/r/{name}/-/findings/{digest}`) with its filters, and the packages page
//! (`/ui/r/{name}/-/packages/{digest}`) with the SBOM referrers.
//!
//! The filters are plain `GET` parameters (`severity=high&fixable=yes&page=2`), so the pages
//! work without the script. Who may see them is decided before these handlers run, as for the
//! manifest page: only viewers who may pull the repository; the others get a 404.

use std::str::FromStr;

use berth_scan::matching::Threshold;
use berth_scan::osv::Level;
use maud::{Markup, html};

use super::layout::{self, manifest_href, page, repo_crumbs, short_digest, when};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::domain::{Digest, RepoName};
use crate::meta::findings::{FindingSummary, StoredFinding};
use crate::service::findings::{FindingFilter, FindingStatus, level_of};
use crate::service::scan_views::{ScanBadge, ScanState};
use crate::service::vuln_policy::{EntrySource, RowMark, ShownEntry};

/// Findings per page.
const FINDINGS_PER_PAGE: u32 = 100;
/// Packages per page.
const PACKAGES_PER_PAGE: u32 = 200;
/// The severity filter's choices, least first (`""`: every finding).
const SEVERITIES: [&str; 5] = ["", "low", "medium", "high", "critical"];

/// The link to a manifest's findings page.
pub(super) fn findings_href(name: &str, digest: &Digest) -> String {
    format!("/ui/r/{name}/-/findings/{digest}")
}

/// The link to a manifest's packages page.
pub(super) fn packages_href(name: &str, digest: &Digest) -> String {
    format!("/ui/r/{name}/-/packages/{digest}")
}

/// `n critical, 0 high, ...` for a title.
fn counts_text(s: &FindingSummary) -> String {
    format!(
        "{} critical, {} high, {} medium, {} low, {} unrated; {} with a fix",
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.none + s.unknown,
        s.fixable
    )
}

/// The counts as chips, most severe first, only those that are not zero.
fn count_chips(s: &FindingSummary) -> Markup {
    let levels = [
        (s.critical, "critical", "sev-critical"),
        (s.high, "high", "sev-high"),
        (s.medium, "medium", "sev-medium"),
        (s.low, "low", "sev-low"),
        (s.none + s.unknown, "unrated", "sev-unrated"),
    ];
    html! {
        @if s.total == 0 {
            span.chip.sev-clean { "no known vulnerabilities" }
        }
        @for (n, label, class) in levels {
            @if n > 0 { span.chip.(class) { (n) " " (label) } " " }
        }
    }
}

/// A manifest's severity summary, linking to its findings page.
pub(super) fn scan_badge(name: &str, digest: &Digest, badge: &ScanBadge) -> Markup {
    let scope = match badge.platforms {
        Some(n) => format!(
            "Combined over {n} platform{}: ",
            if n == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    let mut title = format!("{scope}{}", counts_text(&badge.summary));
    if badge.pending > 0 || badge.failed > 0 {
        title.push_str(&format!(
            " ({} pending, {} failed)",
            badge.pending, badge.failed
        ));
    }
    let href = findings_href(name, digest);
    html! {
        @match badge.state() {
            ScanState::NotScanned => span.scan-summary.muted { "not scanned" },
            ScanState::Pending => a.scan-summary href=(href) title=(format!("{scope}inventory or matching under way")) {
                span.chip.scan-pending { "pending" }
            },
            ScanState::Failed => a.scan-summary href=(href) title=(format!("{scope}the inventory failed")) {
                span.chip.scan-failed { "failed" }
            },
            ScanState::Matched => a.scan-summary href=(href) title=(title) {
                (count_chips(&badge.summary))
                @if badge.pending > 0 { span.muted { "+" (badge.pending) " pending" } }
                @if badge.failed > 0 { span.muted { " +" (badge.failed) " failed" } }
            },
        }
    }
}

/// The findings page's parameters, read from the raw query (the route's own query type
/// belongs to the tag page).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FindingsQuery {
    severity: Option<String>,
    fixable: Option<String>,
    page: Option<String>,
}

impl FindingsQuery {
    /// Reads the parameters this page knows; others are ignored.
    pub(super) fn parse(raw: Option<&str>) -> Self {
        let mut q = Self::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = Some(v.chars().take(32).collect::<String>());
            match k.as_ref() {
                "severity" => q.severity = v,
                "fixable" => q.fixable = v,
                "page" => q.page = v,
                _ => {}
            }
        }
        q
    }

    /// The filter, the page number, and the canonical severity and fixable words.
    fn filter(&self) -> Result<(FindingFilter, u64), UiError> {
        let severity = match self.severity.as_deref().map(str::trim) {
            None | Some("" | "all" | "unknown") => None,
            Some(s) => {
                Some(Threshold::from_str(s).map_err(|e| UiError::BadRequest(e.to_string()))?)
            }
        };
        let fixable = match self.fixable.as_deref().map(str::trim) {
            None | Some("" | "any") => None,
            Some("yes" | "true") => Some(true),
            Some("no" | "false") => Some(false),
            Some(_) => {
                return Err(UiError::BadRequest("fixable is yes, no or any".to_owned()));
            }
        };
        let page = match self.page.as_deref() {
            None | Some("") => 1,
            Some(p) => p
                .parse::<u64>()
                .map_err(|_| UiError::BadRequest("the page is a number".to_owned()))?,
        };
        Ok((
            FindingFilter { severity, fixable },
            page.clamp(1, u64::from(u32::MAX)),
        ))
    }
}

fn fixable_word(f: Option<bool>) -> &'static str {
    match f {
        None => "",
        Some(true) => "yes",
        Some(false) => "no",
    }
}

/// The scan's sub-pages as links, the current one marked.
fn tabs(name: &str, digest: &Digest, current: &str) -> Markup {
    let links = [
        ("Manifest", manifest_href(name, &digest.to_string())),
        ("Vulnerabilities", findings_href(name, digest)),
        ("Packages", packages_href(name, digest)),
    ];
    html! {
        nav.tabs aria-label="Image" {
            @for (label, href) in links {
                @if label == current { a href=(href) aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
                " "
            }
        }
    }
}

fn crumbs(name: &RepoName, digest: &Digest, label: &str, href: String) -> Vec<layout::Crumb> {
    let mut c = repo_crumbs(name.as_str());
    c.push((
        short_digest(&digest.to_string()),
        manifest_href(name.as_str(), &digest.to_string()),
    ));
    c.push((label.to_owned(), href));
    c
}

/// `GET /ui/r/{name}/-/findings/{digest}`: the manifest's findings, filtered, a page at a
/// time; for an index, its platforms' summaries.
pub(super) async fn findings_page(
    ui: &Ui,
    viewer: &Viewer,
    name: &RepoName,
    digest: &Digest,
    q: &FindingsQuery,
) -> UiResult {
    let (filter, page_no) = q.filter()?;
    let offset = (page_no - 1) * u64::from(FINDINGS_PER_PAGE);
    let view = ui
        .registry
        .findings_view(name, digest, filter, offset, FINDINGS_PER_PAGE)
        .await?;
    // An index has no findings of its own: its platforms do.
    let mut platforms = Vec::new();
    if view.status == FindingStatus::NotScanned {
        let image = ui.registry.image(name, digest).await?;
        if image.manifest.is_index() {
            let digests: Vec<Digest> = image
                .children
                .iter()
                .filter_map(|c| Digest::parse(&c.descriptor.digest).ok())
                .collect();
            let badges = ui.registry.scan_badges(name, &digests).await?;
            for ((c, d), b) in image.children.iter().zip(digests).zip(badges) {
                let label = match &c.descriptor.platform {
                    Some(p) if p.os == "unknown" => "attestation".to_owned(),
                    Some(p) => p.to_string(),
                    None => "—".to_owned(),
                };
                platforms.push((label, d, b));
            }
        }
    }
    let severity = filter.severity.map(|t| t.0.as_str()).unwrap_or("");
    let fixable = fixable_word(filter.fixable);
    let pages = view.total.div_ceil(u64::from(FINDINGS_PER_PAGE)).max(1);
    let link = |p: u64| {
        format!(
            "{}?severity={severity}&fixable={fixable}&page={p}",
            findings_href(name.as_str(), digest)
        )
    };
    let body = html! {
        h1 { (name.as_str()) }
        (tabs(name.as_str(), digest, "Vulnerabilities"))
        dl.facts {
            dt { "Digest" } dd { code.digest { (digest.to_string()) } }
            @if let Some(m) = &view.matched {
                dt { "Summary" } dd.scan-counts { (count_chips(&m.summary)) span.muted { (m.summary.fixable) " with a fix" } }
                dt { "Matched" } dd { (when(m.matched_at)) " against advisory database generation " (m.generation) }
            }
        }
        @match view.status {
            FindingStatus::Done => {
                form.filter method="get" action=(findings_href(name.as_str(), digest)) {
                    label for="severity" { "Severity at least" }
                    select #severity name="severity" {
                        @for s in SEVERITIES {
                            option value=(s) selected[s == severity] { @if s.is_empty() { "any" } @else { (s) } }
                        }
                    }
                    label for="fixable" { "Fix available" }
                    select #fixable name="fixable" {
                        option value="" selected[fixable.is_empty()] { "any" }
                        option value="yes" selected[fixable == "yes"] { "yes" }
                        option value="no" selected[fixable == "no"] { "no" }
                    }
                    button type="submit" { "Apply" }
                }
                @if let Some(policy) = &view.marks.policy {
                    @if let Some(refused) = &policy.refused {
                        p.notice.error.policy-verdict role="status" { "Pulls of this image are refused by vulnerability policy " code { (policy.scope) } ": " (refused) "." }
                    } @else if let Some(t) = &policy.prevent_vulnerable {
                        p.notice.policy-verdict role="status" { "Vulnerability policy " code { (policy.scope) } " refuses pulls of images with unaccepted findings of severity " (t) " or above; this one passes." }
                    }
                }
                p.meta.finding-count {
                    (view.total) " finding" @if view.total != 1 { "s" } @if filter.severity.is_some() || filter.fixable.is_some() { " match the filter" }
                    @if view.marks.allowlisted_total > 0 { "; " (view.marks.allowlisted_total) " of all are accepted by an allowlist" }
                }
                @if !view.findings.is_empty() { (findings_table(&view.findings, &view.marks.rows)) }
                @if pages > 1 {
                    nav.pager aria-label="Pages" {
                        @if page_no > 1 { a rel="prev" href=(link(page_no - 1)) { "← Previous" } }
                        span { "Page " (page_no) " of " (pages) }
                        @if page_no < pages { a rel="next" href=(link(page_no + 1)) { "Next →" } }
                    }
                }
            }
            FindingStatus::Pending => p.notice.scan-status { "The inventory or its matching is still under way. Reload in a moment." },
            FindingStatus::Failed => p.notice.scan-status {
                "The inventory failed" @if let Some(r) = &view.reason { ": " (r) } "."
            },
            FindingStatus::NotScanned => {
                @if platforms.is_empty() {
                    p.notice.scan-status { "This manifest was not scanned: it was pushed while scanning was off, or it is not an image." }
                } @else {
                    p.meta { "An index has no packages of its own; these are its platforms' findings." }
                    table.list.platform-scans {
                        thead { tr { th scope="col" { "Platform" } th scope="col" { "Digest" } th scope="col" { "Vulnerabilities" } } }
                        tbody {
                            @for (label, d, b) in &platforms {
                                tr {
                                    th scope="row" { (label) }
                                    td { a href=(manifest_href(name.as_str(), &d.to_string())) { code { (short_digest(&d.to_string())) } } }
                                    td { (scan_badge(name.as_str(), d, b)) }
                                }
                            }
                        }
                    }
                }
            },
        }
    };
    let title = format!("Vulnerabilities of {}", name.as_str());
    let crumbs = crumbs(
        name,
        digest,
        "Vulnerabilities",
        findings_href(name.as_str(), digest),
    );
    Ok(layout::html_response(
        page(viewer, &title, &crumbs, body),
        None,
    ))
}

fn severity_class(level: Level) -> &'static str {
    match level {
        Level::Critical => "sev-critical",
        Level::High => "sev-high",
        Level::Medium => "sev-medium",
        Level::Low => "sev-low",
        Level::None | Level::Unknown => "sev-unrated",
    }
}

/// What the allowlist says of a finding, in its row.
fn mark_cell(mark: Option<&RowMark>) -> Markup {
    let source = |e: &ShownEntry| match e.source {
        EntrySource::Instance => "the configuration",
        EntrySource::Org => "the organization",
    };
    html! {
        @match mark {
            Some(RowMark::Accepted(e)) => {
                span.chip.accepted title={ "Allowlisted by " (source(e)) } { "accepted" }
                @if let Some(x) = &e.expires { " " span.muted { "until " (x) } }
                @if let Some(r) = &e.reason { br; span.muted.reason { (r) } }
            }
            Some(RowMark::Expired(e)) => {
                span.chip.entry-expired title={ "The entry of " (source(e)) " expired" } { "acceptance expired" }
                @if let Some(x) = &e.expires { " " span.muted { (x) } }
            }
            _ => {}
        }
    }
}

fn findings_table(findings: &[StoredFinding], marks: &[RowMark]) -> Markup {
    html! {
        table.list.findings {
            thead {
                tr {
                    th scope="col" { "Package" }
                    th scope="col" { "Installed" }
                    th scope="col" { "Advisory" }
                    th scope="col" { "Severity" }
                    th scope="col" { "Fixed in" }
                    th scope="col" { "Path" }
                    th scope="col" { "Allowlist" }
                }
            }
            tbody {
                @for (i, f) in findings.iter().enumerate() {
                    @let level = level_of(&f.severity);
                    @let mark = marks.get(i);
                    tr.accepted[matches!(mark, Some(RowMark::Accepted(_)))] {
                        th scope="row" {
                            span.package { (f.package) } " " span.muted { (f.kind) }
                        }
                        td.installed { code { (f.installed) } }
                        td {
                            code.advisory { (f.advisory) }
                            @if !f.aliases.is_empty() {
                                br; span.muted.aliases { (f.aliases.join(", ")) }
                            }
                            @if let Some(s) = &f.summary { br; span.summary { (s) } }
                        }
                        td {
                            span.chip.(severity_class(level)) { (level.as_str()) }
                            @if let Some(score) = f.score { " " span.muted { (format!("{score:.1}")) } }
                        }
                        td {
                            @if let Some(fixed) = &f.fixed { code { (fixed) } }
                            @else { span.muted { "no fix" } }
                        }
                        td { @for p in &f.paths { code { (p) } " " } }
                        td.allowlist { (mark_cell(mark)) }
                    }
                }
            }
        }
    }
}

/// `GET /ui/r/{name}/-/packages/{digest}`: the inventory's packages, its OS, and the SBOM
/// referrers (berth's and any a client pushed).
pub(super) async fn packages_page(
    ui: &Ui,
    viewer: &Viewer,
    name: &RepoName,
    digest: &Digest,
    q: &FindingsQuery,
) -> UiResult {
    let (_, page_no) = q.filter()?;
    let offset = (page_no - 1) * u64::from(PACKAGES_PER_PAGE);
    let view = ui
        .registry
        .packages_view(name, digest, offset, PACKAGES_PER_PAGE)
        .await?;
    let pages = view.total.div_ceil(u64::from(PACKAGES_PER_PAGE)).max(1);
    let link = |p: u64| format!("{}?page={p}", packages_href(name.as_str(), digest));
    let body = html! {
        h1 { (name.as_str()) }
        (tabs(name.as_str(), digest, "Packages"))
        dl.facts {
            dt { "Digest" } dd { code.digest { (digest.to_string()) } }
            dt { "Inventory" } dd {
                @match &view.scan {
                    None => span.muted { "not scanned" },
                    Some(s) => {
                        (s.status.as_str())
                        @if let Some(at) = s.finished_at { " " (when(at)) }
                        @if let Some(r) = &s.reason { " — " (r) }
                    }
                }
            }
            @if let Some(os) = view.scan.as_ref().and_then(|s| s.os.as_ref()) {
                dt { "Operating system" } dd.os {
                    (os.name.clone().unwrap_or_else(|| format!("{} {}", os.id, os.version.as_deref().unwrap_or(""))))
                }
            }
        }
        section aria-labelledby="sboms" {
            h2 #sboms { "SBOMs" }
            @if view.sboms.is_empty() {
                p.empty { "No SBOM refers to this manifest." }
            } @else {
                table.list.sboms {
                    thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Digest" } th scope="col" { "Made by" } } }
                    tbody {
                        @for s in &view.sboms {
                            tr {
                                td { code { (s.artifact_type) } }
                                td { a href=(manifest_href(name.as_str(), &s.digest.to_string())) { code { (short_digest(&s.digest.to_string())) } } }
                                td { @if s.berth { "berth" } @else { "pushed by a client" } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="packages" {
            h2 #packages { "Packages" }
            p.meta.package-count { (view.total) " package" @if view.total != 1 { "s" } }
            @if !view.packages.is_empty() {
                table.list.packages {
                    thead { tr { th scope="col" { "Type" } th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Package URL" } th scope="col" { "Path" } } }
                    tbody {
                        @for p in &view.packages {
                            tr {
                                td { (p.kind) }
                                th scope="row" { (p.name) }
                                td { code { (p.version) } }
                                td { code.purl { (p.purl) } }
                                td { code { (p.path) } }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if page_no > 1 { a rel="prev" href=(link(page_no - 1)) { "← Previous" } }
                    span { "Page " (page_no) " of " (pages) }
                    @if page_no < pages { a rel="next" href=(link(page_no + 1)) { "Next →" } }
                }
            }
        }
    };
    let title = format!("Packages of {}", name.as_str());
    let crumbs = crumbs(
        name,
        digest,
        "Packages",
        packages_href(name.as_str(), digest),
    );
    Ok(layout::html_response(
        page(viewer, &title, &crumbs, body),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_from_the_query() {
        let q = FindingsQuery::parse(Some("severity=high&fixable=no&page=3&q=x"));
        let (f, page) = q.filter().expect("valid");
        assert_eq!(f.severity, Some(Threshold(Level::High)));
        assert_eq!(f.fixable, Some(false));
        assert_eq!(page, 3);
        let (f, page) = FindingsQuery::parse(Some("severity=&fixable="))
            .filter()
            .expect("empty");
        assert!(f.severity.is_none() && f.fixable.is_none());
        assert_eq!(page, 1);
        assert!(
            FindingsQuery::parse(Some("severity=dire"))
                .filter()
                .is_err()
        );
        assert!(
            FindingsQuery::parse(Some("fixable=maybe"))
                .filter()
                .is_err()
        );
        assert!(FindingsQuery::parse(Some("page=x")).filter().is_err());
    }
}
