//! Storage usage against quotas: an organization's page (`/ui/orgs/{org}/usage`, for its
//! owners and administrators) and the administrators' overview of every namespace
//! (`/ui/admin/usage`). Both show bytes used and repositories against each quota that applies,
//! configured or set by an administrator, and where it comes from. Only administrators get the
//! forms that set or remove a quota; owners see their quotas read-only. Every form is checked
//! against its anti-forgery token, and a refused quota (negative, absurd, an unknown unit)
//! is shown on the page with nothing saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};

use super::form::Form;
use super::layout::{self, csrf_field, page, repo_href, when};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::api::caller::Refusal;
use crate::domain::{RepoName, human_bytes};
use crate::meta::usage::UsageTotal;
use crate::service::immutable::RuleError;
use crate::service::quota::{QuotaSource, QuotaStatus, SizeInput, parse_quota};

/// Most namespaces the overview lists (each costs one aggregate query).
const NAMESPACES_SHOWN: usize = 500;

/// The signed-in administrator looking, or why not.
pub(super) fn require_admin(viewer: &Viewer, here: &str) -> Result<(), UiError> {
    match viewer.user() {
        None if viewer.auth_enabled() => Err(UiError::SignIn(here.to_owned())),
        Some(user) if user.admin => Ok(()),
        // Administration pages are not shown to anyone else, nor said to exist.
        _ => Err(UiError::NotFound),
    }
}

fn is_admin(viewer: &Viewer) -> bool {
    viewer.user().is_some_and(|u| u.admin)
}

fn parse_org(org: &str) -> Result<RepoName, UiError> {
    RepoName::parse(org).map_err(|_| UiError::NotFound)
}

/// `GET /ui/orgs/{org}/usage`.
pub(super) async fn org_usage(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(org): Path<String>,
) -> UiResult {
    super::manage::manages(&ui, &viewer, &org).await?;
    render_org_usage(&ui, &viewer, &org, None, StatusCode::OK).await
}

/// `POST /ui/orgs/{org}/usage`: an administrator sets (`op=set`) or removes (`op=delete`)
/// the organization's quota.
pub(super) async fn org_usage_post(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    super::manage::manages(&ui, &viewer, &org).await?;
    if !is_admin(&viewer) {
        return Err(UiError::Forbidden);
    }
    match change_quota(&ui, &viewer, &form, &org).await {
        Ok(()) => Ok(Redirect::to(&format!("/ui/orgs/{org}/usage")).into_response()),
        Err(UiError::BadRequest(m)) => {
            render_org_usage(&ui, &viewer, &org, Some(m), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e),
    }
}

/// Sets or removes the quota the form names (`scope`, or `default_scope` without one).
async fn change_quota(
    ui: &Ui,
    viewer: &Viewer,
    form: &Form,
    default_scope: &str,
) -> Result<(), UiError> {
    let scope = match form.get("scope") {
        "" => default_scope,
        s => s,
    };
    let field = |name: &str| match form.get(name) {
        "" => None,
        v => Some(SizeInput::Text(v.to_owned())),
    };
    let outcome = match form.get("op") {
        "set" => match parse_quota(
            scope,
            field("max_bytes").as_ref(),
            field("max_repositories").as_ref(),
        ) {
            Ok((scope, limits)) => ui
                .registry
                .set_quota(&scope, limits, &viewer.origin)
                .await
                .map(drop),
            Err(e) => Err(e),
        },
        "delete" => ui
            .registry
            .delete_quota(scope, &viewer.origin)
            .await
            .map(drop),
        _ => Err(RuleError::Invalid("unknown action".into())),
    };
    outcome.map_err(|e| UiError::from(Refusal::from(e)))
}

async fn render_org_usage(
    ui: &Ui,
    viewer: &Viewer,
    org: &str,
    failure: Option<String>,
    status: StatusCode,
) -> UiResult {
    let ns = parse_org(org)?;
    let quotas = ui.registry.namespace_quotas(&ns).await?;
    let total = ui.registry.usage_total(&ns).await?;
    let repositories = match ui.registry.usage(Some(&ns)).await {
        Ok(usage) => usage.repositories,
        Err(crate::service::RegistryError::NameUnknown(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let admin = is_admin(viewer);
    let action = format!("/ui/orgs/{org}/usage");
    let body = html! {
        h1 { "Storage usage of " (org) }
        @if let Some(f) = &failure { p.notice.error role="alert" { (f) } }
        (totals(&total))
        section aria-labelledby="quotas" {
            h2 #quotas { "Quotas" }
            p.meta { "Every quota that applies is enforced: the strictest wins. Quotas from the configuration file apply to the whole instance; quotas set by an administrator apply at once on every replica." }
            (quota_table(viewer, &quotas, admin.then_some(action.as_str())))
            @if admin {
                (quota_form(viewer, &action, Some(org)))
            } @else {
                p.meta { "Only hub administrators can change quotas." }
            }
        }
        section aria-labelledby="repositories" {
            h2 #repositories { "Repositories" }
            table.list #repository-usage {
                thead { tr {
                    th scope="col" { "Repository" } th scope="col" { "Blob bytes" }
                    th scope="col" { "Only here" } th scope="col" { "Manifests" }
                } }
                tbody {
                    @if repositories.is_empty() { tr { td colspan="4" { span.muted { "No repositories yet." } } } }
                    @for r in &repositories {
                        tr {
                            th scope="row" { a href=(repo_href(&r.repository)) { (r.repository) } }
                            td { (human_bytes(r.blob_bytes)) }
                            td { (human_bytes(r.exclusive_bytes)) }
                            td { (r.manifests) }
                        }
                    }
                }
            }
        }
    };
    let crumbs = [
        (org.to_owned(), format!("/ui/n/{org}")),
        ("Manage".to_owned(), format!("/ui/orgs/{org}")),
        ("Usage".to_owned(), action.clone()),
    ];
    let title = format!("Usage of {org}");
    let mut response = layout::html_response(page(viewer, &title, &crumbs, body), None);
    *response.status_mut() = status;
    Ok(response)
}

fn totals(total: &UsageTotal) -> Markup {
    html! {
        p.usage-total {
            strong { (human_bytes(total.blob_bytes)) } " in blobs (each stored once), "
            (human_bytes(total.manifest_bytes)) " in manifests, "
            strong { (total.repositories) } " repositories"
        }
    }
}

/// A quota's use, as a bar and in words.
fn quota_use(q: &QuotaStatus) -> Markup {
    html! {
        @if let Some(max) = q.max_bytes {
            div {
                meter value=(q.used_bytes.min(max)) max=(max) {}
                " " (human_bytes(q.used_bytes)) " of " (human_bytes(max))
            }
        }
        @if let Some(max) = q.max_repositories {
            div {
                meter value=(q.repositories.min(max)) max=(max) {}
                " " (q.repositories) " of " (max) " repositories"
            }
        }
    }
}

/// The quotas with their use; `remove_action` adds a remove button to the stored ones.
fn quota_table(viewer: &Viewer, quotas: &[QuotaStatus], remove_action: Option<&str>) -> Markup {
    html! {
        table.list #quota-table {
            thead { tr {
                th scope="col" { "Scope" } th scope="col" { "Used" } th scope="col" { "Percent" }
                th scope="col" { "Source" }
                @if remove_action.is_some() { th scope="col" { span.visually-hidden { "Actions" } } }
            } }
            tbody {
                @if quotas.is_empty() { tr { td colspan="5" { span.muted { "No quota applies." } } } }
                @for q in quotas {
                    tr {
                        th scope="row" { (q.scope) }
                        td { (quota_use(q)) }
                        td.percent { (q.percent_used()) "%" }
                        td {
                            @match q.source {
                                QuotaSource::Config => { "configuration file" },
                                QuotaSource::Admin => {
                                    "set by " (q.set_by.as_deref().unwrap_or("?"))
                                    @if let Some(at) = q.set_at { " " (when(at)) }
                                },
                            }
                        }
                        @if let Some(action) = remove_action {
                            td {
                                @if q.source == QuotaSource::Admin {
                                    form.inline method="post" action=(action) {
                                        (csrf_field(viewer))
                                        input type="hidden" name="op" value="delete";
                                        input type="hidden" name="scope" value=(q.scope);
                                        button.danger type="submit" aria-label={ "Remove the quota of " (q.scope) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that sets a quota: of `scope`, or (`None`) of a scope typed into it.
fn quota_form(viewer: &Viewer, action: &str, scope: Option<&str>) -> Markup {
    html! {
        form.stacked #quota-form method="post" action=(action) {
            (csrf_field(viewer))
            input type="hidden" name="op" value="set";
            @if let Some(scope) = scope {
                input type="hidden" name="scope" value=(scope);
            } @else {
                label for="quota-scope" { "Namespace or repository" }
                input #quota-scope type="text" name="scope" required maxlength="255";
            }
            label for="quota-bytes" { "Most blob bytes (for example 500MB or 10GiB; empty: no byte limit)" }
            input #quota-bytes type="text" name="max_bytes" maxlength="32";
            label for="quota-repositories" { "Most repositories (empty: no limit)" }
            input #quota-repositories type="text" inputmode="numeric" name="max_repositories" maxlength="12";
            div { button.primary type="submit" { "Set quota" } }
        }
    }
}

/// `GET /ui/admin/usage`.
pub(super) async fn admin_usage(State(ui): State<Arc<Ui>>, viewer: Viewer) -> UiResult {
    require_admin(&viewer, "/ui/admin/usage")?;
    render_admin_usage(&ui, &viewer, None, StatusCode::OK).await
}

/// `POST /ui/admin/usage`: sets or removes the quota of any namespace or repository.
pub(super) async fn admin_usage_post(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    require_admin(&viewer, "/ui/admin/usage")?;
    match change_quota(&ui, &viewer, &form, "").await {
        Ok(()) => Ok(Redirect::to("/ui/admin/usage").into_response()),
        Err(UiError::BadRequest(m)) => {
            render_admin_usage(&ui, &viewer, Some(m), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e),
    }
}

async fn render_admin_usage(
    ui: &Ui,
    viewer: &Viewer,
    failure: Option<String>,
    status: StatusCode,
) -> UiResult {
    let quotas = ui.registry.quota_status(None).await?;
    let all = ui.registry.usage(None).await?;
    // Repositories by namespace; each namespace's total counts a blob once.
    let mut namespaces: BTreeMap<String, u64> = BTreeMap::new();
    for r in &all.repositories {
        let ns = r.repository.split('/').next().unwrap_or(&r.repository);
        *namespaces.entry(ns.to_owned()).or_default() += 1;
    }
    let more = namespaces.len() > NAMESPACES_SHOWN;
    let mut rows = Vec::new();
    for ns in namespaces.keys().take(NAMESPACES_SHOWN) {
        let Ok(name) = RepoName::parse(ns) else {
            continue;
        };
        let total = ui.registry.usage_total(&name).await?;
        let percent = quotas
            .iter()
            .filter(|q| name.is_within(&q.scope))
            .map(QuotaStatus::percent_used)
            .max();
        rows.push((ns.clone(), total, percent));
    }
    let action = "/ui/admin/usage";
    let body = html! {
        h1 { "Storage usage" }
        @if let Some(f) = &failure { p.notice.error role="alert" { (f) } }
        (totals(&all.total))
        section aria-labelledby="quotas" {
            h2 #quotas { "Quotas" }
            p.meta { "Every quota that applies to a repository is enforced: the strictest wins, and a quota set here never loosens one from the configuration file." }
            (quota_table(viewer, &quotas, Some(action)))
            (quota_form(viewer, action, None))
        }
        section aria-labelledby="namespaces" {
            h2 #namespaces { "Namespaces" }
            table.list #namespace-usage {
                thead { tr {
                    th scope="col" { "Namespace" } th scope="col" { "Blob bytes" }
                    th scope="col" { "Repositories" } th scope="col" { "Fullest quota" }
                } }
                tbody {
                    @if rows.is_empty() { tr { td colspan="4" { span.muted { "No repositories yet." } } } }
                    @for (ns, total, percent) in &rows {
                        tr {
                            th scope="row" { a href={ "/ui/n/" (ns) } { (ns) } }
                            td { (human_bytes(total.blob_bytes)) }
                            td { (total.repositories) }
                            td { @if let Some(p) = percent { (p) "%" } @else { span.muted { "none" } } }
                        }
                    }
                }
            }
            @if more { p.meta { "The first " (NAMESPACES_SHOWN) " namespaces are shown." } }
        }
    };
    let crumbs = [("Usage".to_owned(), action.to_owned())];
    let mut response = layout::html_response(page(viewer, "Storage usage", &crumbs, body), None);
    *response.status_mut() = status;
    Ok(response)
}
