//! The organization page's robot accounts section: the organization's robots (login, scope,
//! expiry, last use), creating one (its secret is shown once, right after) and revoking one.
//! Callers have checked that the viewer manages the organization and the form's
//! anti-forgery token (see [`super::manage::org_post`]).
//!
//! A robot is an access token of the organization (`POST /api/v1/orgs/{org}/robots` makes the
//! same): it signs in as `ORG+NAME` and may do at most what its scope says, and never more
//! than the organization may. The form asks for repositories of the organization and
//! pull/push; anything outside the organization is refused before anything is saved.

use std::time::Duration;

use axum::http::StatusCode;
use maud::{Markup, html};

use super::audit::date_ms;
use super::form::Form;
use super::layout::{copy_box, csrf_field, iso_time, when};
use super::manage::{OrgNotes, render_org};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::auth::access::namespace_of;
use crate::domain::RepoName;
use crate::meta::now_ms;

/// Most repository lines one robot's scope may hold.
const MAX_REPOSITORIES: usize = 50;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Whether `op` is one of this section's.
pub(super) fn handles(op: &str) -> bool {
    matches!(op, "robot-create" | "robot-revoke")
}

/// The section, with `flash` (a new robot's secret, or what was revoked) above the list.
pub(super) async fn section(
    ui: &Ui,
    viewer: &Viewer,
    org: &str,
    flash: Option<Markup>,
) -> Result<Markup, UiError> {
    let robots = ui.gate()?.accounts.tokens(Some(org)).await?;
    let now = now_ms();
    let action = format!("/ui/orgs/{org}");
    Ok(html! {
        section aria-labelledby="robots" {
            h2 #robots { "Robot accounts" }
            p.meta { "Robots let CI jobs and other machines push and pull without a person's password. A robot signs in as " code { (org) "+NAME" } " with its secret, and may do at most what its scope allows in this organization." }
            @if let Some(flash) = &flash { (flash) }
            table.list #robot-list {
                thead { tr {
                    th scope="col" { "Robot" } th scope="col" { "Scope" } th scope="col" { "Expires" }
                    th scope="col" { "Last used" } th scope="col" { "Created" } th scope="col" { "Status" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @if robots.is_empty() { tr { td colspan="7" { span.muted { "No robots of this organization." } } } }
                    @for r in &robots {
                        @let active = r.revoked_at.is_none() && r.expires_at.is_none_or(|e| e > now);
                        tr id={ "robot-" (r.name) } {
                            th scope="row" { code { (org) "+" (r.name) } }
                            td { @for s in &r.scopes { code { (s) } " " } }
                            td { @if let Some(e) = r.expires_at { time datetime=(iso_time(e)) { (iso_time(e)) } } @else { "never" } }
                            td.last-used { @if let Some(u) = r.last_used_at { (when(u)) } @else { "never" } }
                            td { (when(r.created_at)) }
                            td { @if r.revoked_at.is_some() { "revoked" } @else if active { "active" } @else { "expired" } }
                            td {
                                @if r.revoked_at.is_none() {
                                    form.inline method="post" action=(action) {
                                        (csrf_field(viewer))
                                        input type="hidden" name="op" value="robot-revoke";
                                        input type="hidden" name="name" value=(r.name);
                                        button.danger type="submit" aria-label={ "Revoke robot " (r.name) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "New robot" }
            form.stacked #robot-form method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value="robot-create";
                label for="robot-name" { "Name (it signs in as " (org) "+name)" }
                input #robot-name type="text" name="name" required maxlength="64" placeholder="ci";
                label for="robot-repositories" { "Repositories, one per line (empty: every repository of " (org) ")" }
                textarea #robot-repositories name="repositories" rows="3" placeholder={ (org) "/app" } {}
                fieldset {
                    legend { "May" }
                    label { input type="checkbox" name="pull" checked; " pull" }
                    label { input type="checkbox" name="push"; " push" }
                }
                label for="robot-expires" { "Valid through (a date, UTC; empty: never expires)" }
                input #robot-expires type="date" name="expires";
                button.primary type="submit" { "Create robot" }
            }
        }
    })
}

/// The scope rules of a robot of `org` on `repositories` (one per line; none, `*` or
/// `ORG/*`: the whole organization) with pull and/or push.
fn robot_scopes(
    org: &str,
    repositories: &str,
    pull: bool,
    push: bool,
) -> Result<Vec<String>, UiError> {
    let actions = match (pull, push) {
        (true, true) => "pull,push",
        (true, false) => "pull",
        (false, true) => "push",
        (false, false) => {
            return Err(UiError::BadRequest(
                "a robot needs pull, push or both".into(),
            ));
        }
    };
    let lines: Vec<&str> = repositories
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_REPOSITORIES {
        return Err(UiError::BadRequest(format!(
            "a robot may name at most {MAX_REPOSITORIES} repositories; leave the list empty for all of {org}"
        )));
    }
    let whole = format!("{org}/*");
    if lines.is_empty() {
        return Ok(vec![format!("{whole}:{actions}")]);
    }
    lines
        .into_iter()
        .map(|line| {
            if line == "*" || line == whole {
                return Ok(format!("{whole}:{actions}"));
            }
            let shown: String = line.chars().take(100).collect();
            let name = RepoName::parse(line)
                .map_err(|_| UiError::BadRequest(format!("{shown:?} is not a repository name")))?;
            if namespace_of(name.as_str()) != org {
                return Err(UiError::BadRequest(format!(
                    "repository {shown} is not in organization {org}"
                )));
            }
            Ok(format!("{}:{actions}", name.as_str()))
        })
        .collect()
}

/// How long from now until the end of `date` (`YYYY-MM-DD`, UTC), if it is today or later.
fn valid_through(date: &str) -> Result<Option<Duration>, UiError> {
    if date.is_empty() {
        return Ok(None);
    }
    let start = date_ms(date)
        .ok_or_else(|| UiError::BadRequest(format!("{date:?} is not a date (YYYY-MM-DD)")))?;
    let left = start.saturating_add(DAY_MS).saturating_sub(now_ms());
    if left <= 0 {
        return Err(UiError::BadRequest(format!(
            "the expiry date {date} is in the past"
        )));
    }
    Ok(Some(Duration::from_millis(left.unsigned_abs())))
}

/// A robot created or revoked; the page is shown again with the outcome.
pub(super) async fn robot_post(ui: &Ui, viewer: &Viewer, org: &str, form: &Form) -> UiResult {
    let gate = ui.gate()?;
    let outcome = async {
        let name = form.required("name", "The robot's name")?;
        if form.get("op") == "robot-revoke" {
            gate.accounts
                .revoke_token(org, name, &viewer.origin)
                .await?;
            return Ok(html! { p.notice #robot-notice role="status" { "Robot " (org) "+" (name) " revoked." } });
        }
        let scopes = robot_scopes(
            org,
            form.get("repositories"),
            form.checked("pull"),
            form.checked("push"),
        )?;
        let expires = valid_through(form.get("expires"))?;
        let robot = gate
            .accounts
            .create_token(org, name, &scopes, expires, &viewer.origin)
            .await?;
        let login = format!("{org}+{}", robot.record.name);
        Ok::<_, UiError>(html! {
            section.notice #robot-notice role="status" {
                h3 { "Robot " (login) " created" }
                p { "Copy its secret now: it is shown only once." }
                (copy_box("robot secret", &robot.secret))
                p { "Sign in with it:" }
                (copy_box("login command", &format!("docker login {} -u {login}", viewer.registry_host())))
            }
        })
    }
    .await;
    let (flash, failure, status) = match outcome {
        Ok(flash) => (Some(flash), None, StatusCode::OK),
        Err(UiError::BadRequest(m)) => (None, Some(m), StatusCode::BAD_REQUEST),
        Err(e) => return Err(e),
    };
    let notes = OrgNotes {
        robots: flash,
        ..OrgNotes::default()
    };
    render_org(ui, viewer, org, failure, None, notes, status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_scopes_stay_in_the_organization() {
        assert_eq!(
            robot_scopes("acme", "", true, true).ok(),
            Some(vec!["acme/*:pull,push".to_owned()])
        );
        assert_eq!(
            robot_scopes("acme", " acme/app \n\n*\n", true, false).ok(),
            Some(vec!["acme/app:pull".to_owned(), "acme/*:pull".to_owned()])
        );
        for (repositories, pull, push) in [
            ("beta/app", true, false),
            ("acmex/app", true, false),
            ("Acme/App", true, false),
            ("beta/*", true, false),
            ("acme/app", false, false),
        ] {
            assert!(
                robot_scopes("acme", repositories, pull, push).is_err(),
                "{repositories}"
            );
        }
        assert!(valid_through("2000-01-01").is_err());
        assert!(valid_through("tomorrow").is_err());
        assert_eq!(valid_through("").ok(), Some(None));
        assert!(valid_through("2999-01-01").is_ok_and(|d| d.is_some()));
    }
}
