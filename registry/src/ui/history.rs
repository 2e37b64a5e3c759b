//! A repository's tag history (`/ui/r/{name}/-/history`): every creation, move and delete of
//! its tags within the history window, newest first, of all tags or one (`?tag=`), older
//! changes a page at a time (`?before=ID`). Viewers who may push see a "Restore" button on each
//! change whose manifest is still there to go back to; it posts to
//! `/ui/r/{name}/-/restore`, which calls the same service as `POST /api/v1/tag-restore`
//! (immutable-tag rules and the history window are enforced there) and shows what happened.
//!
//! Who may read the page is decided before these handlers run, as for the other repository
//! pages: only viewers who may pull; the others get a 404.

use axum::http::StatusCode;
use maud::{Markup, html};

use super::form::{Form, encode};
use super::layout::{self, csrf_field, iso_time, manifest_href, page, repo_crumbs, repo_href};
use super::layout::{short_digest, when};
use super::viewer::Viewer;
use super::{Ui, UiError, UiResult};
use crate::auth::Action;
use crate::domain::{Digest, RepoName, Tag};
use crate::service::RegistryError;
use crate::service::history::TagEvent;

/// Changes per page.
const CHANGES_PER_PAGE: u32 = 50;

/// The page's query: one tag, and the id older changes start below.
#[derive(Default)]
pub(super) struct HistoryQuery {
    tag: Option<Tag>,
    before: Option<i64>,
}

impl HistoryQuery {
    /// Parses `tag=T&before=ID` (other parameters are ignored; an empty tag is every tag).
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, UiError> {
        let mut q = HistoryQuery::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "tag" if !v.trim().is_empty() => {
                    q.tag =
                        Some(Tag::parse(v.trim()).map_err(|e| UiError::BadRequest(e.to_string()))?);
                }
                "before" if !v.is_empty() => {
                    q.before = Some(
                        v.parse()
                            .map_err(|_| UiError::BadRequest("before is an entry id".into()))?,
                    );
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The link to a repository's tag history, of one tag if given.
pub(super) fn history_href(name: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{}/-/history?tag={}", repo_href(name), encode(t)),
        None => format!("{}/-/history", repo_href(name)),
    }
}

/// What to show above the history after a restore.
enum Notice {
    Done(String),
    Failed(String),
}

/// `GET /ui/r/{name}/-/history`.
pub(super) async fn history_page(
    ui: &Ui,
    viewer: &Viewer,
    name: &RepoName,
    q: &HistoryQuery,
) -> UiResult {
    render(ui, viewer, name, q, None, StatusCode::OK).await
}

async fn render(
    ui: &Ui,
    viewer: &Viewer,
    name: &RepoName,
    q: &HistoryQuery,
    notice: Option<Notice>,
    status: StatusCode,
) -> UiResult {
    let changes = ui
        .registry
        .tag_history(name, q.tag.as_ref(), q.before, CHANGES_PER_PAGE)
        .await?;
    let may_push = viewer
        .actions_on(ui, name.as_str())
        .await?
        .contains(Action::Push);
    let choices = if may_push {
        ui.registry.restore_choices(name, &changes).await?
    } else {
        vec![None; changes.len()]
    };
    let days = ui.registry.limits().tag_history.as_secs() / 86_400;
    let tag = q.tag.as_ref().map(Tag::as_str);
    let base = history_href(name.as_str(), None);
    let restore_action = format!("{}/-/restore", repo_href(name.as_str()));
    let body = html! {
        h1 { "Tag history of " (name.as_str()) }
        p.meta { "Every creation, move and deletion of a tag in the last " (days) " days, newest first. A tag can be pointed back at a manifest it held while that manifest is still stored." }
        @match &notice {
            Some(Notice::Done(m)) => p.notice #restore-notice role="status" { (m) },
            Some(Notice::Failed(m)) => p.notice.error #restore-notice role="alert" { (m) },
            None => {},
        }
        form.filter method="get" action=(base) {
            label for="history-tag" { "Tag" }
            input #history-tag type="text" name="tag" value=(tag.unwrap_or("")) maxlength="128" placeholder="every tag";
            button type="submit" { "Show" }
        }
        @if changes.is_empty() {
            p.empty #history-empty { "No changes in the history window." }
        } @else {
            table.list #history {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Tag" } th scope="col" { "Change" }
                    th scope="col" { "Before" } th scope="col" { "After" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for (c, choice) in changes.iter().zip(&choices) {
                        tr data-id=(c.id) {
                            td { (when(c.changed_at)) }
                            th scope="row" { a href=(history_href(name.as_str(), Some(&c.tag))) { (c.tag) } }
                            td { (c.action) }
                            td { (digest_cell(name, c.old_digest.as_deref())) }
                            td { (digest_cell(name, c.new_digest.as_deref())) }
                            td { @if let Some(d) = choice { (restore_form(viewer, &restore_action, c, d)) } }
                        }
                    }
                }
            }
            @if changes.len() == CHANGES_PER_PAGE as usize {
                @if let Some(last) = changes.last() {
                    p.pager { a rel="next" href={ (base) "?tag=" (encode(tag.unwrap_or(""))) "&before=" (last.id) } { "Older changes →" } }
                }
            }
        }
    };
    let mut crumbs = repo_crumbs(name.as_str());
    crumbs.push(("Tag history".into(), base.clone()));
    let mut response = layout::html_response(page(viewer, "Tag history", &crumbs, body), None);
    *response.status_mut() = status;
    Ok(response)
}

fn digest_cell(name: &RepoName, digest: Option<&str>) -> Markup {
    html! {
        @match digest {
            Some(d) => a href=(manifest_href(name.as_str(), d)) title=(d) { code { (short_digest(d)) } },
            None => span.muted { "—" },
        }
    }
}

fn restore_form(viewer: &Viewer, action: &str, change: &TagEvent, digest: &Digest) -> Markup {
    let until = iso_time(change.restorable_until);
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(viewer))
            input type="hidden" name="tag" value=(change.tag);
            input type="hidden" name="digest" value=(digest.to_string());
            button type="submit" title={ "Possible until " (until) }
                aria-label={ "Restore " (change.tag) " to " (short_digest(&digest.to_string())) } { "Restore" }
        }
    }
}

/// `POST /ui/r/{name}/-/restore` with `tag` and `digest`: points the tag back at the manifest,
/// for viewers who may push (the caller checked the form's token and that the viewer may read
/// the repository). The history is shown again with what happened.
pub(super) async fn restore(ui: &Ui, viewer: &Viewer, name: &RepoName, form: &Form) -> UiResult {
    let may_push = viewer
        .actions_on(ui, name.as_str())
        .await?
        .contains(Action::Push);
    if !may_push {
        return Err(UiError::Forbidden);
    }
    let tag = Tag::parse(form.required("tag", "The tag")?)
        .map_err(|e| UiError::BadRequest(e.to_string()))?;
    let digest = Digest::parse(form.required("digest", "The digest")?)
        .map_err(|e| UiError::BadRequest(e.to_string()))?;
    let (notice, status) = match ui
        .registry
        .restore_tag(name, &tag, Some(&digest), &viewer.origin)
        .await
    {
        Ok(r) if r.changed => (
            Notice::Done(format!(
                "{}:{} points at {} again.",
                name.as_str(),
                r.tag,
                short_digest(&r.digest)
            )),
            StatusCode::OK,
        ),
        Ok(r) => (
            Notice::Done(format!(
                "{}:{} already points at {}.",
                name.as_str(),
                r.tag,
                short_digest(&r.digest)
            )),
            StatusCode::OK,
        ),
        Err(e @ RegistryError::Denied(_)) => (Notice::Failed(e.to_string()), StatusCode::FORBIDDEN),
        Err(e @ RegistryError::RestoreImpossible(_)) => {
            (Notice::Failed(e.to_string()), StatusCode::CONFLICT)
        }
        Err(e) => return Err(e.into()),
    };
    let q = HistoryQuery {
        tag: Some(tag),
        before: None,
    };
    render(ui, viewer, name, &q, Some(notice), status).await
}
