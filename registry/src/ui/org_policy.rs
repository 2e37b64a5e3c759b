//! The organization page's retention section: the organization's rules, the configuration's
//! policies that apply in it, a form to add or change a rule that shows what it would delete
//! before it is saved, and deleting a rule. Callers have checked that the viewer manages the
//! organization and the form's anti-forgery token (see [`super::manage::org_post`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};

use super::form::Form;
use super::layout::csrf_field;
use super::manage::{OrgNotes, render_org};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::api::caller::Refusal;
use crate::meta::org_retention::RetentionRule;
use crate::service::immutable::RuleError;

/// Whether `op` is one of this section's.
pub(super) fn handles(op: &str) -> bool {
    matches!(op, "retention" | "delete-retention")
}

/// The section, with `preview` (a dry run's answer) above the form.
pub(super) async fn retention_section(
    ui: &Ui,
    viewer: &Viewer,
    org: &str,
    preview: Option<Markup>,
) -> Result<Markup, UiError> {
    let rules = ui.registry.org_retention(org).await?;
    let instance = ui.registry.instance_retention_in(org);
    let action = format!("/ui/orgs/{org}");
    Ok(html! {
        section aria-labelledby="retention" {
            h2 #retention { "Retention" }
            p.meta { "At each retention pass, the tags of a repository that no rule keeps are deleted (and stay restorable for a while). Where the instance has a policy, a rule here can only keep more." }
            @if !instance.is_empty() {
                p { "Instance-wide policies (from the configuration; they always apply):" }
                ul.plain { @for p in &instance { li { code { (p.scope) } ": " (keeps(&crate::meta::org_retention::RetentionRule {
                    scope: p.scope.clone(),
                    keep_newest: p.keep_newest,
                    keep_pushed_within_days: p.keep_pushed_within_days.and_then(|d| u32::try_from(d).ok()),
                    keep_pulled_within_days: p.keep_pulled_within_days.and_then(|d| u32::try_from(d).ok()),
                    keep_tags: p.keep_tags.clone(),
                })) } } }
            }
            table.list #retention-rules {
                thead { tr { th scope="col" { "Scope" } th scope="col" { "Keeps" } th scope="col" { "Set by" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @if rules.is_empty() { tr { td colspan="4" { span.muted { "No retention rules of this organization." } } } }
                    @for r in &rules {
                        tr {
                            th scope="row" { (r.rule.scope) }
                            td { (keeps(&r.rule)) }
                            td { (r.updated_by) }
                            td {
                                form.inline method="post" action=(action) {
                                    (csrf_field(viewer))
                                    input type="hidden" name="op" value="delete-retention";
                                    input type="hidden" name="scope" value=(r.rule.scope);
                                    button.danger type="submit" aria-label={ "Delete retention rule for " (r.rule.scope) } { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(preview) = &preview { (preview) }
            form.stacked #retention-form method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value="retention";
                label for="retention-scope" { "Repository (empty: whole organization)" }
                input #retention-scope type="text" name="scope" maxlength="255";
                label for="retention-newest" { "Keep the newest N tags of each repository" }
                input #retention-newest type="number" name="keep_newest" min="1" max="10000";
                label for="retention-pushed" { "Keep tags pushed within days" }
                input #retention-pushed type="number" name="keep_pushed_within_days" min="1" max="36500";
                label for="retention-pulled" { "Keep tags pulled within days" }
                input #retention-pulled type="number" name="keep_pulled_within_days" min="1" max="36500";
                label for="retention-tags" { "Always keep tags matching (patterns, comma-separated)" }
                input #retention-tags type="text" name="keep_tags" maxlength="2000" placeholder="latest, v*";
                div {
                    button type="submit" name="dry_run" value="yes" { "What would it delete now?" }
                    " "
                    button.primary type="submit" { "Save rule" }
                }
            }
        }
    })
}

/// A rule's keep clauses, in words.
fn keeps(r: &RetentionRule) -> Markup {
    let mut parts: Vec<String> = Vec::new();
    if let Some(n) = r.keep_newest {
        parts.push(format!("newest {n}"));
    }
    if let Some(d) = r.keep_pushed_within_days {
        parts.push(format!("pushed within {d} days"));
    }
    if let Some(d) = r.keep_pulled_within_days {
        parts.push(format!("pulled within {d} days"));
    }
    if !r.keep_tags.is_empty() {
        parts.push(format!("tags {}", r.keep_tags.join(", ")));
    }
    html! { (parts.join("; ")) }
}

/// The rule the form describes.
fn form_rule(form: &Form) -> Result<RetentionRule, RuleError> {
    let number = |name: &str| -> Result<Option<u32>, RuleError> {
        let v = form.get(name).trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<u32>()
            .map(Some)
            .map_err(|_| RuleError::Invalid(format!("{name} must be a whole number of at least 1")))
    };
    Ok(RetentionRule {
        scope: form.get("scope").trim().to_owned(),
        keep_newest: number("keep_newest")?,
        keep_pushed_within_days: number("keep_pushed_within_days")?,
        keep_pulled_within_days: number("keep_pulled_within_days")?,
        keep_tags: form
            .get("keep_tags")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A rule added or changed (`dry_run=yes`: what the organization's rules with it would delete
/// now is shown, with a button that saves it; nothing is saved), or deleted.
pub(super) async fn retention_post(ui: &Ui, viewer: &Viewer, org: &str, form: &Form) -> UiResult {
    let saved: Vec<RetentionRule> = ui
        .registry
        .org_retention(org)
        .await?
        .into_iter()
        .map(|r| r.rule)
        .collect();
    let outcome = async {
        let scope_of = |s: &str| {
            if s.is_empty() {
                org.to_owned()
            } else {
                s.to_owned()
            }
        };
        let (rules, rule) = if form.get("op") == "delete-retention" {
            let scope = scope_of(form.get("scope"));
            let rules: Vec<RetentionRule> =
                saved.iter().filter(|r| r.scope != scope).cloned().collect();
            if rules.len() == saved.len() {
                return Err(RuleError::NotFound(format!(
                    "no retention rule for {scope}"
                )));
            }
            (rules, None)
        } else {
            let rule = form_rule(form)?;
            let scope = scope_of(&rule.scope);
            let mut rules: Vec<RetentionRule> =
                saved.iter().filter(|r| r.scope != scope).cloned().collect();
            rules.push(RetentionRule {
                scope,
                ..rule.clone()
            });
            (rules, Some(rule))
        };
        if form.get("dry_run") == "yes" {
            let report = ui.registry.try_org_retention(org, Some(&rules)).await?;
            return Ok(Some((report, rule)));
        }
        ui.registry
            .set_org_retention(org, &rules, &viewer.origin)
            .await?;
        Ok(None)
    }
    .await;
    match outcome.map_err(|e| UiError::from(Refusal::from(e))) {
        Ok(None) => Ok(Redirect::to(&format!("/ui/orgs/{org}#retention")).into_response()),
        Ok(Some((report, rule))) => {
            let rule = rule.unwrap_or_default();
            let preview = html! {
                section #retention-dry-run .notice role="status" {
                    p { "With this rule, a retention pass now would delete " (report.deleted.len()) " of " (report.tags_judged) " tags:" }
                    ul.plain { @for e in &report.deleted { li { code { (e.repository) ":" (e.tag) } } } }
                    form.inline method="post" action={ "/ui/orgs/" (org) } {
                        (csrf_field(viewer))
                        input type="hidden" name="op" value="retention";
                        input type="hidden" name="scope" value=(rule.scope);
                        input type="hidden" name="keep_newest" value=(opt(rule.keep_newest));
                        input type="hidden" name="keep_pushed_within_days" value=(opt(rule.keep_pushed_within_days));
                        input type="hidden" name="keep_pulled_within_days" value=(opt(rule.keep_pulled_within_days));
                        input type="hidden" name="keep_tags" value=(rule.keep_tags.join(", "));
                        button.primary type="submit" { "Save this rule" }
                    }
                }
            };
            render_org(
                ui,
                viewer,
                org,
                None,
                None,
                OrgNotes {
                    retention: Some(preview),
                    ..OrgNotes::default()
                },
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

fn opt(v: Option<u32>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}
