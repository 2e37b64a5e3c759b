//! Pages that change things: repository settings (visibility, deleting tags and
//! manifests, each after a confirmation page) and organization management (members, teams,
//! grants, immutable-tag rules; retention, webhooks and robots in [`super::org_policy`],
//! [`super::org_webhooks`] and [`super::org_robots`]). Every action is checked against the
//! viewer's rights here, whatever the page showed, and every form against its anti-forgery
//! token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};

use super::browse::{RepoPath, parse_repo_path};
use super::form::{Form, encode};
use super::layout::{self, csrf_field, page, repo_crumbs, repo_href, short_digest};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::api::caller::Refusal;
use crate::auth::{Action, Actions, Role};
use crate::domain::{Digest, Reference, RepoName, Tag};
use crate::service::immutable::{RuleError, RuleSpec};

/// `GET /ui/r/{name}/-/settings`, for those who may delete (visibility needs every right).
pub(super) async fn settings_page(ui: &Ui, viewer: &mut Viewer, name: &RepoName) -> UiResult {
    let actions = viewer.actions_on(ui, name.as_str()).await?;
    if !actions.contains(Action::Delete) {
        return Err(UiError::Forbidden);
    }
    let cookie = viewer.prepare_forms()?;
    let public = match &ui.gate {
        Some(gate) => Some(gate.accounts.is_public(name.as_str()).await?),
        None => None,
    };
    let action = |a: &str| format!("{}/-/{a}", repo_href(name.as_str()));
    let body = html! {
        h1 { "Settings of " (name.as_str()) }
        @if let Some(public) = public {
            @if actions.covers(Actions::ALL) {
                section aria-labelledby="visibility" {
                    h2 #visibility { "Visibility" }
                    form.stacked method="post" action=(action("visibility")) {
                        (csrf_field(viewer))
                        fieldset {
                            legend { "Who may pull" }
                            label { input type="radio" name="visibility" value="private" checked[!public]; " Private: only those granted access" }
                            label { input type="radio" name="visibility" value="public" checked[public]; " Public: anyone, without signing in" }
                        }
                        button.primary type="submit" { "Save visibility" }
                    }
                }
            }
        }
        section aria-labelledby="delete" {
            h2 #delete { "Delete" }
            form.stacked method="post" action=(action("delete-tag")) {
                (csrf_field(viewer))
                label for="tag" { "Tag to delete" }
                input #tag type="text" name="tag" required maxlength="128";
                button.danger type="submit" { "Delete tag…" }
            }
            form.stacked method="post" action=(action("delete-manifest")) {
                (csrf_field(viewer))
                label for="digest" { "Manifest digest to delete (with all its tags)" }
                input #digest type="text" name="digest" required maxlength="200" placeholder="sha256:…";
                button.danger type="submit" { "Delete manifest…" }
            }
            p.meta { "Each deletion asks for confirmation first." }
        }
    };
    let mut crumbs = repo_crumbs(name.as_str());
    crumbs.push(("Settings".into(), action("settings")));
    Ok(layout::html_response(
        page(viewer, "Settings", &crumbs, body),
        cookie,
    ))
}

/// `POST /ui/r/{name}/-/{visibility|delete-tag|delete-manifest|restore}`.
pub(super) async fn repository_post(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let (name, path) = parse_repo_path(&rest)?;
    let RepoPath::Action(action) = path else {
        return Err(UiError::NotFound);
    };
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    let reads = |n: &str| viewer.reads(n);
    if !ui.registry.readable_repository(&name, &reads).await? {
        return Err(UiError::NotFound);
    }
    let actions = viewer.actions_on(&ui, name.as_str()).await?;
    match action.as_str() {
        "restore" => super::history::restore(&ui, &viewer, &name, &form).await,
        "visibility" => {
            let gate = ui.gate()?;
            if !actions.covers(Actions::ALL) {
                return Err(UiError::Forbidden);
            }
            let public = match form.get("visibility") {
                "public" => true,
                "private" => false,
                _ => {
                    return Err(UiError::BadRequest(
                        "visibility is public or private".into(),
                    ));
                }
            };
            gate.accounts
                .set_public(name.as_str(), public, &viewer.origin)
                .await?;
            Ok(Redirect::to(&format!("{}/-/settings", repo_href(name.as_str()))).into_response())
        }
        "delete-tag" | "delete-manifest" => {
            if !actions.contains(Action::Delete) {
                return Err(UiError::Forbidden);
            }
            let (reference, what) = if action == "delete-tag" {
                let tag = Tag::parse(form.required("tag", "The tag")?)
                    .map_err(|e| UiError::BadRequest(e.to_string()))?;
                let what = format!("tag {tag}");
                (Reference::Tag(tag), what)
            } else {
                let digest = Digest::parse(form.required("digest", "The digest")?)
                    .map_err(|e| UiError::BadRequest(e.to_string()))?;
                let what = format!("manifest {}", short_digest(&digest.to_string()));
                (Reference::Digest(digest), what)
            };
            if form.get("confirm") != "yes" {
                return confirm_page(&ui, &viewer, &name, &action, &reference).await;
            }
            match ui
                .registry
                .delete_manifest(&name, &reference, &viewer.origin)
                .await
            {
                Ok(()) => Ok(Redirect::to(&format!(
                    "{}?deleted={}",
                    repo_href(name.as_str()),
                    encode(&what)
                ))
                .into_response()),
                Err(crate::service::RegistryError::ManifestUnknown) => {
                    Err(UiError::BadRequest(format!("there is no {what} in {name}")))
                }
                Err(e) => Err(e.into()),
            }
        }
        _ => Err(UiError::NotFound),
    }
}

async fn confirm_page(
    ui: &Ui,
    viewer: &Viewer,
    name: &RepoName,
    action: &str,
    reference: &Reference,
) -> UiResult {
    let (field, value, consequence) = match reference {
        Reference::Tag(t) => (
            "tag",
            t.to_string(),
            html! { p { "The tag " code { (t.as_str()) } " will no longer exist. The image stays available by digest and under its other tags." } },
        ),
        Reference::Digest(d) => {
            let image = ui.registry.image(name, d).await.map_err(|e| match e {
                crate::service::RegistryError::ManifestUnknown => {
                    UiError::BadRequest(format!("there is no manifest {d} in {name}"))
                }
                other => other.into(),
            })?;
            (
                "digest",
                d.to_string(),
                html! {
                    p { "The manifest " code { (d.to_string()) } " will be deleted, with every tag pointing at it:" }
                    @if image.tags.is_empty() { p.muted { "(no tags)" } }
                    ul.plain { @for t in &image.tags { li { code { (t) } } } }
                    p { "Clients can no longer pull it by digest." }
                },
            )
        }
    };
    let body = html! {
        section.narrow.confirm {
            h1 { "Delete from " (name.as_str()) "?" }
            (consequence)
            form.inline method="post" action={ (repo_href(name.as_str())) "/-/" (action) } {
                (csrf_field(viewer))
                input type="hidden" name=(field) value=(value);
                input type="hidden" name="confirm" value="yes";
                button.danger type="submit" { "Delete" }
            }
            " "
            a.button href=(repo_href(name.as_str())) { "Cancel" }
        }
    };
    let crumbs = repo_crumbs(name.as_str());
    Ok(layout::html_response(
        page(viewer, "Confirm deletion", &crumbs, body),
        None,
    ))
}

/// `GET /ui/orgs/{org}`: members, teams and grants, for the organization's owners and hub
/// administrators.
pub(super) async fn org_page(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(org): Path<String>,
) -> UiResult {
    manages(&ui, &viewer, &org).await?;
    render_org(
        &ui,
        &viewer,
        &org,
        None,
        None,
        OrgNotes::default(),
        StatusCode::OK,
    )
    .await
}

/// Refuses anyone but the organization's owners and hub administrators (with a 404: the page
/// is not there for them); asks whoever is not signed in to sign in.
pub(super) async fn manages(ui: &Ui, viewer: &Viewer, org: &str) -> Result<(), UiError> {
    let gate = ui.gate()?;
    let Some(user) = viewer.user() else {
        return Err(UiError::SignIn(format!("/ui/orgs/{org}")));
    };
    match crate::api::caller::manage_org(gate, user, org).await {
        Ok(()) => Ok(()),
        // Not an organization, or not one the viewer runs: nothing to show.
        Err(Refusal::Forbidden(_) | Refusal::NotFound(_)) => Err(UiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Answers shown in the organization page's retention and webhooks sections.
#[derive(Default)]
pub(super) struct OrgNotes {
    /// A retention dry run's answer.
    pub retention: Option<Markup>,
    /// A webhook test's answer.
    pub webhooks: Option<Markup>,
    /// A new robot's secret, or a revocation's answer.
    pub robots: Option<Markup>,
}

/// The organization's page: `failure` is shown at the top, `preview` (a dry run's answer) in
/// the immutable-tags section, `notes` in the retention and webhooks sections.
pub(super) async fn render_org(
    ui: &Ui,
    viewer: &Viewer,
    org: &str,
    failure: Option<String>,
    preview: Option<Markup>,
    notes: OrgNotes,
    status: StatusCode,
) -> UiResult {
    let gate = ui.gate()?;
    let members = gate.accounts.members(org).await?;
    let teams = gate.accounts.teams(org).await?;
    let rules = ui.registry.org_immutable_rules(org).await?;
    let instance: Vec<(String, String)> = ui
        .registry
        .instance_immutable_rules()
        .iter()
        .filter(|(scope, _)| {
            let within = |a: &str, b: &str| RepoName::parse(a).is_ok_and(|a| a.is_within(b));
            within(scope, org) || within(org, scope)
        })
        .map(|(scope, patterns)| {
            let tags: Vec<&str> = patterns.iter().map(glob::Pattern::as_str).collect();
            (scope.clone(), tags.join(", "))
        })
        .collect();
    let retention = super::org_policy::retention_section(ui, viewer, org, notes.retention).await?;
    let webhooks = super::org_webhooks::section(ui, viewer, org, notes.webhooks).await?;
    let allowlist = super::org_allowlist::section(ui, viewer, org).await?;
    let robots = super::org_robots::section(ui, viewer, org, notes.robots).await?;
    let action = format!("/ui/orgs/{org}");
    let op_form = |op: &str, fields: Markup, button: Markup| {
        html! {
            form.inline method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value=(op);
                (fields)
                (button)
            }
        }
    };
    let body = html! {
        h1 { "Organization " (org) }
        p {
            a.button #org-audit href={ "/ui/orgs/" (org) "/audit" } { "Audit log" }
            " "
            a href={ "/ui/orgs/" (org) "/usage" } { "Storage usage and quotas" }
        }
        @if let Some(f) = &failure { p.notice.error role="alert" { (f) } }
        section aria-labelledby="members" {
            h2 #members { "Members" }
            table.list {
                thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for m in &members {
                        tr {
                            th scope="row" { (m.name) }
                            td { @if m.owner { "owner" } @else { "member" } }
                            td { (op_form("remove-member", html! { input type="hidden" name="user" value=(m.name); },
                                html! { button.danger type="submit" aria-label={ "Remove " (m.name) } { "Remove" } })) }
                        }
                    }
                }
            }
            (op_form("add-member", html! {
                label for="member-user" { "User" }
                input #member-user type="text" name="user" required maxlength="255";
                label { input type="checkbox" name="owner"; " owner" }
            }, html! { button.primary type="submit" { "Add member" } }))
        }
        section aria-labelledby="teams" {
            h2 #teams { "Teams" }
            @for t in &teams {
                article.team {
                    h3 { (t.name) }
                    p {
                        "Members: "
                        @if t.members.is_empty() { span.muted { "none" } }
                        @for m in &t.members {
                            span.chip { (m) }
                            (op_form("team-remove", html! {
                                input type="hidden" name="team" value=(t.name);
                                input type="hidden" name="user" value=(m);
                            }, html! { button.link type="submit" aria-label={ "Remove " (m) " from " (t.name) } { "×" } }))
                            " "
                        }
                    }
                    p {
                        "Grants: "
                        @if t.grants.is_empty() { span.muted { "none" } }
                        @for (repo, role) in &t.grants {
                            span.chip { @if repo.is_empty() { "all of " (org) } @else { (repo) } ": " (role.as_str()) }
                            (op_form("revoke", html! {
                                input type="hidden" name="team" value=(t.name);
                                input type="hidden" name="repository" value=(repo);
                            }, html! { button.link type="submit" aria-label={ "Remove grant on " (repo) } { "×" } }))
                            " "
                        }
                    }
                    (op_form("team-add", html! {
                        input type="hidden" name="team" value=(t.name);
                        label { "User " input type="text" name="user" required maxlength="255"; }
                    }, html! { button type="submit" { "Add to team" } }))
                    (op_form("grant", html! {
                        input type="hidden" name="team" value=(t.name);
                        label { "Repository (empty: whole organization) " input type="text" name="repository" maxlength="255"; }
                        label { "Role " select name="role" {
                            option value="read" { "read" } option value="write" { "write" } option value="admin" { "admin" }
                        } }
                    }, html! { button type="submit" { "Grant" } }))
                    (op_form("delete-team", html! { input type="hidden" name="team" value=(t.name); },
                        html! { button.danger type="submit" { "Delete team" } }))
                }
            }
            (op_form("create-team", html! {
                label for="team-name" { "New team" }
                input #team-name type="text" name="team" required maxlength="64";
            }, html! { button.primary type="submit" { "Create team" } }))
        }
        section aria-labelledby="immutable" {
            h2 #immutable { "Immutable tags" }
            p.meta { "Once pushed, a tag matching a rule cannot be pushed over, deleted or restored elsewhere. Rules apply at once." }
            @if !instance.is_empty() {
                p { "Instance-wide rules (from the configuration; they always apply):" }
                ul.plain { @for (scope, tags) in &instance { li { code { (scope) } ": " code { (tags) } } } }
            }
            table.list {
                thead { tr { th scope="col" { "Scope" } th scope="col" { "Tags" } th scope="col" { "Added by" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @if rules.is_empty() { tr { td colspan="4" { span.muted { "No rules of this organization." } } } }
                    @for r in &rules {
                        tr {
                            th scope="row" { (r.scope) }
                            td { code { (r.pattern) } }
                            td { (r.created_by) }
                            td { (op_form("delete-immutable", html! { input type="hidden" name="id" value=(r.id); },
                                html! { button.danger type="submit" aria-label={ "Delete rule " (r.pattern) " in " (r.scope) } { "Delete" } })) }
                        }
                    }
                }
            }
            @if let Some(preview) = &preview { (preview) }
            (op_form("immutable", html! {
                label for="immutable-pattern" { "Tags (a pattern: *, ?, [...])" }
                input #immutable-pattern type="text" name="pattern" required maxlength="256" placeholder="v*";
                label for="immutable-repository" { "Repository (empty: whole organization)" }
                input #immutable-repository type="text" name="repository" maxlength="255";
            }, html! {
                button type="submit" name="dry_run" value="yes" { "Which tags would it freeze?" }
                " "
                button.primary type="submit" { "Add rule" }
            }))
        }
        (retention)
        (webhooks)
        (allowlist)
        (robots)
    };
    let crumbs = [
        (org.to_owned(), format!("/ui/n/{org}")),
        ("Manage".to_owned(), action.clone()),
    ];
    let mut response = layout::html_response(page(viewer, org, &crumbs, body), None);
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /ui/orgs/{org}`: one membership, team or grant change named by `op`.
pub(super) async fn org_post(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> UiResult {
    let form = Form::read(body).await?;
    viewer.check_form(&headers, &form)?;
    manages(&ui, &viewer, &org).await?;
    if matches!(form.get("op"), "immutable" | "delete-immutable") {
        return immutable_post(&ui, &viewer, &org, &form).await;
    }
    if super::org_policy::handles(form.get("op")) {
        return super::org_policy::retention_post(&ui, &viewer, &org, &form).await;
    }
    if super::org_allowlist::handles(form.get("op")) {
        return super::org_allowlist::allowlist_post(&ui, &viewer, &org, &form).await;
    }
    if super::org_webhooks::handles(form.get("op")) {
        return super::org_webhooks::webhook_post(&ui, &viewer, &org, &form).await;
    }
    if super::org_robots::handles(form.get("op")) {
        return super::org_robots::robot_post(&ui, &viewer, &org, &form).await;
    }
    let gate = ui.gate()?;
    let a = &gate.accounts;
    let result = match form.get("op") {
        "add-member" => {
            a.add_member(
                &org,
                form.required("user", "The user")?,
                form.checked("owner"),
                &viewer.origin,
            )
            .await
        }
        "remove-member" => {
            a.remove_member(&org, form.required("user", "The user")?, &viewer.origin)
                .await
        }
        "create-team" => {
            a.create_team(
                &org,
                form.required("team", "The team name")?,
                &viewer.origin,
            )
            .await
        }
        "delete-team" => {
            a.delete_team(&org, form.required("team", "The team")?, &viewer.origin)
                .await
        }
        "team-add" | "team-remove" => {
            a.set_team_member(
                &org,
                form.required("team", "The team")?,
                form.required("user", "The user")?,
                form.get("op") == "team-add",
                &viewer.origin,
            )
            .await
        }
        "grant" | "revoke" => {
            let role = if form.get("op") == "grant" {
                Some(Role::parse(form.get("role")).ok_or_else(|| {
                    UiError::BadRequest("the role is read, write or admin".into())
                })?)
            } else {
                None
            };
            let repository = Some(form.get("repository")).filter(|r| !r.is_empty());
            a.set_team_grant(
                &org,
                form.required("team", "The team")?,
                repository,
                role,
                &viewer.origin,
            )
            .await
        }
        _ => return Err(UiError::BadRequest("unknown organization action".into())),
    };
    match result.map_err(UiError::from) {
        Ok(()) => Ok(Redirect::to(&format!("/ui/orgs/{org}")).into_response()),
        Err(UiError::BadRequest(m)) => {
            render_org(
                &ui,
                &viewer,
                &org,
                Some(m),
                None,
                OrgNotes::default(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// An immutable-tag rule added, deleted or tried out (`dry_run=yes`: the tags it would
/// freeze are shown, nothing is saved).
async fn immutable_post(ui: &Ui, viewer: &Viewer, org: &str, form: &Form) -> UiResult {
    let outcome = if form.get("op") == "delete-immutable" {
        let id = form
            .get("id")
            .parse::<i64>()
            .map_err(|_| UiError::BadRequest("no such rule".into()))?;
        ui.registry
            .delete_immutable_rule(org, id, &viewer.origin)
            .await
            .map(|_| None)
    } else {
        match RuleSpec::parse(org, Some(form.get("repository")), form.get("pattern")) {
            Ok(spec) if form.get("dry_run") == "yes" => ui
                .registry
                .immutable_dry_run(&spec)
                .await
                .map(|tags| Some((spec, tags)))
                .map_err(RuleError::from),
            Ok(spec) => ui
                .registry
                .add_immutable_rule(org, &spec, &viewer.origin)
                .await
                .map(|_| None),
            Err(e) => Err(e),
        }
    };
    match outcome.map_err(|e| UiError::from(Refusal::from(e))) {
        Ok(None) => Ok(Redirect::to(&format!("/ui/orgs/{org}#immutable")).into_response()),
        Ok(Some((spec, tags))) => {
            let preview = html! {
                section #dry-run .notice role="status" {
                    p { "Tags " code { (spec.pattern.as_str()) } " in " code { (spec.scope.as_str()) } " would freeze now: " (tags.len()) }
                    ul.plain { @for t in &tags { li { code { (t.repository) ":" (t.tag) } } } }
                }
            };
            render_org(
                ui,
                viewer,
                org,
                None,
                Some(preview),
                OrgNotes::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(UiError::BadRequest(m)) => {
            render_org(
                ui,
                viewer,
                org,
                Some(m),
                None,
                OrgNotes::default(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e),
    }
}
