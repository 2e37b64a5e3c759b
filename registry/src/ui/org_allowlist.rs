//! The organization page's CVE allowlist section: the configuration's entries that apply in
//! the organization (read-only: owners cannot remove them), and the organization's own, which
//! owners add (advisory id or alias, optional expiry date, reason) and remove. Each change
//! replaces the stored list through the same service call as `PUT
//! /api/v1/orgs/{org}/cve-allowlist`, so it is checked and audited alike. Callers have checked
//! that the viewer manages the organization and the form's anti-forgery token (see
//! [`super::manage::org_post`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use berth_scan::policy::{AllowItem, Expiry};
use maud::{Markup, html};

use super::form::Form;
use super::layout::{csrf_field, when};
use super::manage::{OrgNotes, render_org};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::api::caller::Refusal;

/// Whether `op` is one of this section's.
pub(super) fn handles(op: &str) -> bool {
    matches!(op, "cve-add" | "cve-remove")
}

fn entry_row(id: &str, expires: Option<&str>, reason: Option<&str>, actions: Markup) -> Markup {
    html! {
        tr {
            th scope="row" { code { (id) } }
            td { @if let Some(e) = expires { (e) } @else { span.muted { "never" } } }
            td { @if let Some(r) = reason { (r) } }
            td { (actions) }
        }
    }
}

/// The section.
pub(super) async fn section(ui: &Ui, viewer: &Viewer, org: &str) -> Result<Markup, UiError> {
    let view = ui.registry.org_cve_allowlist(org).await?;
    let action = format!("/ui/orgs/{org}");
    Ok(html! {
        section aria-labelledby="cve-allowlist" {
            h2 #cve-allowlist { "Accepted vulnerabilities" }
            p.meta { "Findings whose advisory (or one of its aliases, such as a CVE id) is listed here are marked accepted on the findings pages and do not count against a vulnerability policy's pull threshold, until the entry expires. The configuration's entries always apply; this organization's are added to them." }
            @for policy in &view.instance_policies {
                p {
                    "Instance policy for " code { (policy.scope) }
                    @if let Some(t) = &policy.prevent_vulnerable { ": pulls of images with unaccepted findings of severity " (t) " or above are refused" }
                    @else { ": findings are reported, pulls are not refused" }
                    "."
                }
                @if !policy.entries.is_empty() {
                    table.list.instance-allowlist {
                        thead { tr { th scope="col" { "Advisory" } th scope="col" { "Expires" } th scope="col" { "Reason" } th scope="col" { span.visually-hidden { "Source" } } } }
                        tbody {
                            @for e in &policy.entries {
                                (entry_row(&e.id, e.expires.as_deref(), e.reason.as_deref(), html! { span.muted { "configuration" } }))
                            }
                        }
                    }
                }
            }
            table.list #org-allowlist {
                thead { tr { th scope="col" { "Advisory" } th scope="col" { "Expires" } th scope="col" { "Reason" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @if view.entries.is_empty() { tr { td colspan="4" { span.muted { "No entries of this organization." } } } }
                    @for item in &view.entries {
                        @let expires = item.expires.as_ref().map(Expiry::as_text);
                        (entry_row(&item.id, expires.as_deref(), item.reason.as_deref(), html! {
                            form.inline method="post" action=(action) {
                                (csrf_field(viewer))
                                input type="hidden" name="op" value="cve-remove";
                                input type="hidden" name="id" value=(item.id);
                                button.danger type="submit" aria-label={ "Remove " (item.id) } { "Remove" }
                            }
                        }))
                    }
                }
            }
            @if let (Some(by), Some(at)) = (&view.updated_by, view.updated_at) {
                p.meta { "Last changed by " (by) " " (when(at)) "." }
            }
            form.stacked #cve-allowlist-form method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value="cve-add";
                label for="cve-id" { "Advisory id or alias" }
                input #cve-id type="text" name="id" required maxlength="128" placeholder="CVE-2024-12345";
                label for="cve-expires" { "Expires (empty: never)" }
                input #cve-expires type="date" name="expires";
                label for="cve-reason" { "Reason" }
                input #cve-reason type="text" name="reason" maxlength="1024";
                button.primary type="submit" { "Accept" }
            }
        }
    })
}

/// The organization's entries with `form`'s change: an entry added (replacing one of the same
/// id) or removed.
fn changed(mut entries: Vec<AllowItem>, form: &Form) -> Result<Vec<AllowItem>, UiError> {
    let id = form.get("id").trim().to_owned();
    if id.is_empty() {
        return Err(UiError::BadRequest("Name an advisory id or alias.".into()));
    }
    let before = entries.len();
    entries.retain(|e| !e.id.eq_ignore_ascii_case(&id));
    if form.get("op") == "cve-remove" {
        if entries.len() == before {
            return Err(UiError::BadRequest(format!("{id} is not in the list.")));
        }
        return Ok(entries);
    }
    let text = |name: &str| Some(form.get(name).trim().to_owned()).filter(|t| !t.is_empty());
    entries.push(AllowItem {
        id,
        expires: text("expires").map(Expiry::Text),
        reason: text("reason"),
    });
    Ok(entries)
}

/// An entry added or removed; bad input (an id with spaces, a date that does not read, too
/// many entries) is shown at the top of the page and nothing is saved.
pub(super) async fn allowlist_post(ui: &Ui, viewer: &Viewer, org: &str, form: &Form) -> UiResult {
    let current = ui.registry.org_cve_allowlist(org).await?.entries;
    let outcome = match changed(current, form) {
        Ok(entries) => ui
            .registry
            .set_org_cve_allowlist(org, &entries, &viewer.origin)
            .await
            .map(|_| ())
            .map_err(|e| UiError::from(Refusal::from(e))),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/ui/orgs/{org}#cve-allowlist")).into_response()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Form {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        Form::parse(body.as_bytes())
    }

    fn item(id: &str) -> AllowItem {
        AllowItem {
            id: id.into(),
            expires: None,
            reason: None,
        }
    }

    #[test]
    fn entries_are_added_replaced_and_removed_by_id() {
        let added = changed(
            vec![item("CVE-1")],
            &form(&[
                ("op", "cve-add"),
                ("id", " CVE-2 "),
                ("expires", "2027-01-31"),
                ("reason", "not reachable"),
            ]),
        )
        .expect("added");
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].id, "CVE-2");
        assert_eq!(added[1].expires, Some(Expiry::Text("2027-01-31".into())));
        assert_eq!(added[1].reason.as_deref(), Some("not reachable"));
        let replaced = changed(added, &form(&[("op", "cve-add"), ("id", "cve-2")])).expect("ok");
        assert_eq!(replaced.len(), 2);
        assert_eq!(replaced[1].expires, None);
        let removed =
            changed(replaced, &form(&[("op", "cve-remove"), ("id", "CVE-1")])).expect("removed");
        assert_eq!(
            removed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["cve-2"]
        );
        assert!(
            changed(
                removed.clone(),
                &form(&[("op", "cve-remove"), ("id", "CVE-9")])
            )
            .is_err()
        );
        assert!(changed(removed, &form(&[("op", "cve-add"), ("id", " ")])).is_err());
    }
}
