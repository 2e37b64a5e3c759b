//! The audit log pages: `/ui/audit` (every entry, for hub administrators) and
//! `/ui/orgs/{org}/audit` (the entries about one organization, for its owners and
//! administrators; which entries those are is decided in SQL, see
//! [`AuditQuery::org`](crate::meta::audit::AuditQuery::org)).
//!
//! The filters are a plain `GET` form (repository, actor, action, since and until as dates),
//! and older entries come a page at a time by entry id, so the pages work without the script.
//! Every value shown comes from the log and is escaped by `maud`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::form::encode;
use super::layout::{self, iso_time, page, short_digest, when};
use super::viewer::{Viewer, Who};
use super::{Ui, UiError, UiResult};
use crate::meta::accounts::AccountKind;
use crate::meta::audit::{AuditEntry, AuditQuery};
use crate::meta::events::Action;

/// Entries per page.
const ENTRIES_PER_PAGE: u32 = 50;
/// Longest filter text accepted.
const MAX_FILTER_CHARS: usize = 255;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The filter form's fields, as the query string carries them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditForm {
    repository: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

/// The filters, checked: texts bounded, dates parsed.
struct Filters {
    repository: String,
    actor: String,
    action: String,
    since: String,
    until: String,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    before: Option<i64>,
}

impl Filters {
    fn parse(form: Result<Query<AuditForm>, QueryRejection>) -> Result<Self, UiError> {
        let Query(f) = form.map_err(|_| {
            UiError::BadRequest(
                "the filters are repository, actor, action, since and until (dates) and before (an entry id)"
                    .into(),
            )
        })?;
        let text = |v: Option<String>, what: &str| {
            let v = v.unwrap_or_default().trim().to_owned();
            if v.chars().count() > MAX_FILTER_CHARS {
                return Err(UiError::BadRequest(format!(
                    "the {what} filter is longer than {MAX_FILTER_CHARS} characters"
                )));
            }
            Ok(v)
        };
        let (since, until) = (text(f.since, "since")?, text(f.until, "until")?);
        // `until` is inclusive: entries of that whole day are shown.
        let since_ms = date_filter(&since)?;
        let until_ms = date_filter(&until)?.map(|d| d.saturating_add(DAY_MS));
        Ok(Filters {
            repository: text(f.repository, "repository")?,
            actor: text(f.actor, "actor")?,
            action: text(f.action, "action")?,
            since,
            until,
            since_ms,
            until_ms,
            before: f.before,
        })
    }

    fn query(&self) -> AuditQuery<'_> {
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        AuditQuery {
            repository: some(&self.repository),
            actor: some(&self.actor),
            action: some(&self.action),
            org: None,
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            before_id: self.before,
            limit: ENTRIES_PER_PAGE,
        }
    }

    /// The link to the next (older) page after entry `last`, with the same filters.
    fn older(&self, base: &str, last: i64) -> String {
        format!(
            "{base}?repository={}&actor={}&action={}&since={}&until={}&before={last}",
            encode(&self.repository),
            encode(&self.actor),
            encode(&self.action),
            encode(&self.since),
            encode(&self.until),
        )
    }
}

/// An optional `YYYY-MM-DD` as the Unix milliseconds its day starts (UTC).
fn date_filter(s: &str) -> Result<Option<i64>, UiError> {
    if s.is_empty() {
        return Ok(None);
    }
    date_ms(s)
        .map(Some)
        .ok_or_else(|| UiError::BadRequest(format!("{s:?} is not a date (YYYY-MM-DD)")))
}

/// `YYYY-MM-DD` as the Unix milliseconds its day starts (UTC); `None` if it is no date.
pub(super) fn date_ms(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let mut num = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    // Days since the epoch of a civil date (Howard Hinnant's algorithm, the inverse of
    // `civil_time`), checked by converting back: 2024-02-30 is no date.
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let ms = (era * 146_097 + doe - 719_468) * DAY_MS;
    let (cy, cm, cd, ..) = crate::auth::jwt::civil_time(ms / 1000);
    ((cy, cm, cd) == (y, m, d)).then_some(ms)
}

/// `GET /ui/audit`: every entry, for hub administrators (everyone, with authentication off,
/// as on the API).
pub(super) async fn admin_page(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    form: Result<Query<AuditForm>, QueryRejection>,
) -> UiResult {
    match &viewer.who {
        Who::Open => {}
        Who::User(u) if u.admin => {}
        Who::User(_) => return Err(UiError::NotFound),
        Who::Anonymous => return Err(UiError::SignIn("/ui/audit".into())),
    }
    let filters = Filters::parse(form)?;
    let entries = ui.registry.audit(filters.query()).await?;
    let body = render("Audit log", "/ui/audit", &filters, &entries);
    Ok(layout::html_response(
        page(
            &viewer,
            "Audit log",
            &[("Audit log".into(), "/ui/audit".into())],
            body,
        ),
        None,
    ))
}

/// `GET /ui/orgs/{org}/audit`: the entries about one organization, for its owners and hub
/// administrators.
pub(super) async fn org_page(
    State(ui): State<Arc<Ui>>,
    viewer: Viewer,
    Path(org): Path<String>,
    form: Result<Query<AuditForm>, QueryRejection>,
) -> UiResult {
    super::manage::manages(&ui, &viewer, &org).await?;
    // An administrator manages every organization, even one that does not exist.
    if ui
        .gate()?
        .accounts
        .account(&org, Some(AccountKind::Org))
        .await
        .is_err()
    {
        return Err(UiError::NotFound);
    }
    let filters = Filters::parse(form)?;
    let entries = ui.registry.org_audit(&org, filters.query()).await?;
    let base = format!("/ui/orgs/{org}/audit");
    let body = render(&format!("Audit log of {org}"), &base, &filters, &entries);
    let crumbs = [
        (org.clone(), format!("/ui/n/{org}")),
        ("Manage".to_owned(), format!("/ui/orgs/{org}")),
        ("Audit log".to_owned(), base.clone()),
    ];
    Ok(layout::html_response(
        page(&viewer, "Audit log", &crumbs, body),
        None,
    ))
}

/// The filter form, the entries and the link to older ones.
fn render(title: &str, base: &str, f: &Filters, entries: &[AuditEntry]) -> Markup {
    html! {
        h1 { (title) }
        form.filter #audit-filter method="get" action=(base) {
            label for="audit-repository" { "Repository" }
            input #audit-repository type="text" name="repository" value=(f.repository) maxlength="255" placeholder="namespace/repository";
            label for="audit-actor" { "Actor" }
            input #audit-actor type="text" name="actor" value=(f.actor) maxlength="255";
            label for="audit-action" { "Action" }
            select #audit-action name="action" {
                option value="" selected[f.action.is_empty()] { "any" }
                @for a in Action::ALL {
                    option value=(a.as_str()) selected[f.action == a.as_str()] { (a.as_str()) }
                }
            }
            label for="audit-since" { "Since" }
            input #audit-since type="date" name="since" value=(f.since);
            label for="audit-until" { "Until" }
            input #audit-until type="date" name="until" value=(f.until);
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() {
            p.empty #audit-empty { "No entries." }
        } @else {
            div.scroll {
                table.list #audit-entries {
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" }
                        th scope="col" { "Repository:tag / target" } th scope="col" { "Digest" }
                        th scope="col" { "Address" } th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for e in entries {
                            tr data-id=(e.id) {
                                td { (when(e.at)) br; span.meta { (iso_time(e.at)) } }
                                td { @if e.actor.is_empty() { span.muted { "anonymous" } } @else { (e.actor) } }
                                td { code { (e.action) } }
                                td {
                                    @if let Some(r) = &e.repository {
                                        (r) @if let Some(t) = &e.tag { ":" (t) }
                                    }
                                    @if let Some(t) = &e.target {
                                        @if e.repository.is_some() { " · " }
                                        (t)
                                    }
                                }
                                td { @if let Some(d) = &e.digest { code title=(d) { (short_digest(d)) } } }
                                td { @if let Some(a) = &e.address { (a) } }
                                td { @if let Some(d) = &e.detail { code.detail { (d.to_string()) } } }
                            }
                        }
                    }
                }
            }
            @if entries.len() == ENTRIES_PER_PAGE as usize {
                @if let Some(last) = entries.last() {
                    p.pager { a rel="next" href=(f.older(base, last.id)) { "Older entries →" } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_the_start_of_their_day() {
        assert_eq!(date_ms("1970-01-01"), Some(0));
        assert_eq!(date_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(date_ms("2000-03-01"), Some(951_868_800_000));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-01-01x",
            "",
        ] {
            assert_eq!(date_ms(bad), None, "{bad}");
        }
    }
}
