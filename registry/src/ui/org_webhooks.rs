//! The organization page's webhooks section: the organization's hooks with their latest
//! deliveries, adding, changing (the secret only when a new one is typed: it is never shown),
//! deleting and "Send test". Callers have checked that the viewer manages the organization
//! and the form's anti-forgery token (see [`super::manage::org_post`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};

use super::form::Form;
use super::layout::{csrf_field, when};
use super::manage::{OrgNotes, render_org};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::api::caller::Refusal;
use crate::meta::events::HookEvent;
use crate::meta::org_webhooks::event_name;
use crate::service::immutable::RuleError;
use crate::service::org_webhooks::HookRequest;

/// The events a hook may hear of, as the form's checkboxes name them.
const EVENTS: [HookEvent; 4] = [
    HookEvent::Push,
    HookEvent::Delete,
    HookEvent::Trust,
    HookEvent::Scan,
];

/// Whether `op` is one of this section's.
pub(super) fn handles(op: &str) -> bool {
    matches!(
        op,
        "webhook-add" | "webhook-update" | "webhook-delete" | "webhook-test"
    )
}

/// The fields of a hook: URL, scope, events, secret (`prefix` keeps ids unique).
fn fields(prefix: &str, url: &str, scope: &str, events: &[HookEvent], editing: bool) -> Markup {
    html! {
        label for={ (prefix) "-url" } { "URL (http:// or https://)" }
        input id={ (prefix) "-url" } type="url" name="url" required maxlength="2048" value=(url);
        label for={ (prefix) "-scope" } { "Repository (empty: whole organization)" }
        input id={ (prefix) "-scope" } type="text" name="scope" maxlength="255" value=(scope);
        fieldset {
            legend { "Events" }
            @for e in EVENTS {
                @let name = event_name(e);
                label { input type="checkbox" name={ "event_" (name) } checked[events.contains(&e)]; " " (name) }
            }
        }
        label for={ (prefix) "-secret" } {
            @if editing { "New secret (empty: keep the current one)" } @else { "Secret (signs each delivery; never shown again)" }
        }
        input id={ (prefix) "-secret" } type="password" name="secret" maxlength="512" autocomplete="new-password";
    }
}

/// The section, with `flash` (a test's answer) above the list.
pub(super) async fn section(
    ui: &Ui,
    viewer: &Viewer,
    org: &str,
    flash: Option<Markup>,
) -> Result<Markup, UiError> {
    let hooks = ui.registry.org_webhooks(org).await?;
    let mut logs = Vec::with_capacity(hooks.len());
    for h in &hooks {
        logs.push(
            ui.registry
                .org_webhook_deliveries(org, h.id, 5)
                .await
                .map_err(|e| UiError::from(Refusal::from(e)))?,
        );
    }
    let action = format!("/ui/orgs/{org}");
    let op = |op: &str, id: i64, button: Markup| {
        html! {
            form.inline method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value=(op);
                input type="hidden" name="id" value=(id);
                (button)
            }
        }
    };
    Ok(html! {
        section aria-labelledby="webhooks" {
            h2 #webhooks { "Webhooks" }
            p.meta { "Events of this organization's repositories are POSTed to each webhook, signed with its secret (X-Berth-Signature-256). Instance webhooks from the configuration are not listed here. A webhook may reach public addresses only, unless the operator allows an internal one." }
            @if let Some(flash) = &flash { (flash) }
            @if hooks.is_empty() { p #webhook-list { span.muted { "No webhooks of this organization." } } }
            @for (h, log) in hooks.iter().zip(&logs) {
                article.team.webhook id={ "webhook-" (h.id) } {
                    h3 { code { (h.url) } }
                    p {
                        "Scope " code { (h.scope) } "; events "
                        (h.events.iter().map(|e| event_name(*e)).collect::<Vec<_>>().join(", "))
                        "; " @if h.has_secret { "signed" } @else { "not signed" }
                        "; set by " (h.updated_by)
                    }
                    p {
                        (op("webhook-test", h.id, html! { button type="submit" { "Send test" } }))
                        " "
                        (op("webhook-delete", h.id, html! { button.danger type="submit" aria-label={ "Delete webhook " (h.url) } { "Delete" } }))
                    }
                    @if !log.is_empty() {
                        table.list {
                            caption { "Latest deliveries" }
                            thead { tr { th scope="col" { "Event" } th scope="col" { "Queued" } th scope="col" { "State" } th scope="col" { "Last attempt" } } }
                            tbody {
                                @for d in log {
                                    tr {
                                        td { code { (d.event_type) } }
                                        td { (when(d.created_at)) }
                                        td { (d.state) }
                                        td {
                                            @if let Some(a) = d.attempts.last() {
                                                @if let Some(s) = a.status { (s) } @else { "no answer" }
                                                @if let Some(e) = &a.error { " (" (e) ")" }
                                            } @else { span.muted { "none yet" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    details {
                        summary { "Change" }
                        form.stacked method="post" action=(action) {
                            (csrf_field(viewer))
                            input type="hidden" name="op" value="webhook-update";
                            input type="hidden" name="id" value=(h.id);
                            (fields(&format!("webhook-{}", h.id), &h.url, &h.scope, &h.events, true))
                            button.primary type="submit" { "Save webhook" }
                        }
                    }
                }
            }
            form.stacked #webhook-form method="post" action=(action) {
                (csrf_field(viewer))
                input type="hidden" name="op" value="webhook-add";
                (fields("webhook-new", "", "", &[HookEvent::Push], false))
                button.primary type="submit" { "Add webhook" }
            }
        }
    })
}

/// The hook the form describes; an empty secret keeps the current one.
fn form_hook(form: &Form) -> HookRequest {
    let secret = form.raw("secret");
    HookRequest {
        url: form.get("url").to_owned(),
        scope: form.get("scope").to_owned(),
        events: EVENTS
            .into_iter()
            .filter(|e| form.checked(&format!("event_{}", event_name(*e))))
            .collect(),
        secret: (!secret.is_empty()).then(|| secret.to_owned()),
    }
}

/// A hook added, changed, deleted or tested (the test's attempt is shown on the page).
pub(super) async fn webhook_post(ui: &Ui, viewer: &Viewer, org: &str, form: &Form) -> UiResult {
    let by = &viewer.origin;
    let id = || {
        form.get("id")
            .parse::<i64>()
            .map_err(|_| RuleError::NotFound("no such webhook".into()))
    };
    let outcome = async {
        match form.get("op") {
            "webhook-add" => ui
                .registry
                .create_org_webhook(org, &form_hook(form), by)
                .await
                .map(|_| None),
            "webhook-update" => ui
                .registry
                .update_org_webhook(org, id()?, &form_hook(form), by)
                .await
                .map(|_| None),
            "webhook-delete" => ui
                .registry
                .delete_org_webhook(org, id()?, by)
                .await
                .map(|_| None),
            _ => ui.registry.test_org_webhook(org, id()?, by).await.map(Some),
        }
    }
    .await;
    match outcome.map_err(|e| UiError::from(Refusal::from(e))) {
        Ok(None) => Ok(Redirect::to(&format!("/ui/orgs/{org}#webhooks")).into_response()),
        Ok(Some(delivery)) => {
            let answer = match delivery.attempts.last() {
                Some(a) if a.error.is_none() => {
                    format!("delivered: the receiver answered {}", a.status.unwrap_or(0))
                }
                Some(a) => format!(
                    "not delivered ({}); it will be retried",
                    a.error.as_deref().unwrap_or("no answer")
                ),
                None => "queued".to_owned(),
            };
            let flash = html! { p #webhook-test .notice role="status" { "Test event " (answer) } };
            let notes = OrgNotes {
                webhooks: Some(flash),
                ..OrgNotes::default()
            };
            render_org(ui, viewer, org, None, None, notes, StatusCode::OK).await
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
