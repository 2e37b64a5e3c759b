//! Webhooks that organizations set for themselves, in SQL (see
//! migrations/*/0025_org_webhooks.sql), and their SQL for SQLite and PostgreSQL. Each change
//! records its audit event in the same transaction, with the old and the new hook (never the
//! secret, only whether it changed). Events queue deliveries to these hooks in
//! `q::record_event`, in the transaction of the change.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;
use super::events::{Event, HookEvent};

/// The prefix of an organization's hook in `webhook_deliveries.hook` (`org:ID`).
pub const HOOK_PREFIX: &str = "org:";

/// A hook's signing secret; never serialized, redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HookSecret(pub String);

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(none)"
        } else {
            "(redacted)"
        })
    }
}

/// One stored hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgWebhook {
    /// Its id, unique in the hub.
    pub id: i64,
    /// The organization it belongs to.
    pub org: String,
    /// Where events go.
    pub url: String,
    /// The organization, or a repository or namespace under it.
    pub scope: String,
    /// What it hears of.
    pub events: Vec<HookEvent>,
    /// Whether deliveries are signed (the secret itself is never shown).
    pub has_secret: bool,
    /// The secret.
    #[serde(skip)]
    pub secret: HookSecret,
    /// Who made or last changed it.
    pub updated_by: String,
    /// When, Unix ms.
    pub updated_at: i64,
}

impl OrgWebhook {
    /// Its name in the delivery log.
    pub fn name(&self) -> String {
        format!("{HOOK_PREFIX}{}", self.id)
    }
}

/// A hook as asked for (checked by the caller).
#[derive(Debug, Clone)]
pub struct HookSpec {
    /// Where events go.
    pub url: String,
    /// The organization, or a repository or namespace under it.
    pub scope: String,
    /// What it hears of.
    pub events: Vec<HookEvent>,
    /// The new secret; `None` keeps the current one (a new hook gets none).
    pub secret: Option<HookSecret>,
}

/// The hooks' queries.
#[async_trait]
pub trait OrgWebhookStore {
    /// The hooks of organization `org` (`None`: of every organization), by id.
    async fn org_webhooks(&self, org: Option<&str>) -> MetaResult<Vec<OrgWebhook>>;

    /// Hook `id` of any organization (for the delivery worker).
    async fn org_webhook(&self, id: i64) -> MetaResult<Option<OrgWebhook>>;

    /// Adds a hook to `org`, recording `event`; `None` when there is no such organization.
    async fn create_org_webhook(
        &self,
        org: &str,
        spec: &HookSpec,
        event: &Event,
    ) -> MetaResult<Option<OrgWebhook>>;

    /// Changes hook `id` of `org`, recording `event`; `None` when `org` has no such hook.
    async fn update_org_webhook(
        &self,
        org: &str,
        id: i64,
        spec: &HookSpec,
        event: &Event,
    ) -> MetaResult<Option<OrgWebhook>>;

    /// Deletes hook `id` of `org`, recording `event`; the hook, or `None` when `org` has none
    /// such.
    async fn delete_org_webhook(
        &self,
        org: &str,
        id: i64,
        event: &Event,
    ) -> MetaResult<Option<OrgWebhook>>;
}

/// The audit detail of a change from `old` to `new` (`secret_changed`: a new secret was set).
pub fn change_detail(
    old: Option<&OrgWebhook>,
    new: Option<&OrgWebhook>,
    secret_changed: bool,
) -> serde_json::Value {
    let value = |h: Option<&OrgWebhook>| {
        h.map(|h| {
            serde_json::json!({"id": h.id, "url": h.url, "scope": h.scope, "events": h.events,
                               "has_secret": h.has_secret})
        })
    };
    serde_json::json!({"old": value(old), "new": value(new), "secret_changed": secret_changed})
}

/// `events` as stored: `,push,delete,`.
pub fn events_text(events: &[HookEvent]) -> String {
    let names: Vec<String> = events.iter().map(|e| event_name(*e)).collect();
    format!(",{},", names.join(","))
}

/// The stored name of one event kind (as in the configuration: `push`, `delete`, ...).
pub fn event_name(e: HookEvent) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_events(text: &str) -> Vec<HookEvent> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| serde_json::from_value(serde_json::Value::String(s.to_owned())).ok())
        .collect()
}

/// A stored row as a hook.
pub(crate) fn hook_from_row(
    (id, org, url, scope, events, secret, updated_by, updated_at): (
        i64,
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
    ),
) -> OrgWebhook {
    OrgWebhook {
        id,
        org,
        url,
        scope,
        events: parse_events(&events),
        has_secret: !secret.is_empty(),
        secret: HookSecret(secret),
        updated_by,
        updated_at,
    }
}

/// Implements [`OrgWebhookStore`] for a store with the `account_read` and `account_write`
/// runners and a `q::record_event` (see `impl_account_store`).
macro_rules! impl_org_webhook_store {
    ($store:ty, $conn:ty) => {
        mod owq {
            use $crate::meta::MetaResult;
            use $crate::meta::events::Event;
            use $crate::meta::org_webhooks::{HookSpec, OrgWebhook, change_detail, events_text, hook_from_row};

            type Row = (i64, String, String, String, String, String, String, i64);

            const SELECT: &str = "SELECT h.id, a.name, h.url, h.scope, h.events, h.secret, h.created_by, h.updated_at
                 FROM org_webhooks h JOIN accounts a ON a.id = h.account_id";

            pub(super) async fn list(c: &mut $conn, org: Option<&str>) -> MetaResult<Vec<OrgWebhook>> {
                let sql = format!("{SELECT} WHERE ($1 IS NULL OR a.name = $1) ORDER BY h.id");
                let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(c).await?;
                Ok(rows.into_iter().map(hook_from_row).collect())
            }

            pub(super) async fn one(c: &mut $conn, org: Option<&str>, id: i64) -> MetaResult<Option<OrgWebhook>> {
                let sql = format!("{SELECT} WHERE h.id = $1 AND ($2 IS NULL OR a.name = $2)");
                let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(org).fetch_optional(c).await?;
                Ok(row.map(hook_from_row))
            }

            pub(super) async fn create(c: &mut $conn, org: &str, spec: &HookSpec, event: &Event) -> MetaResult<Option<OrgWebhook>> {
                let account: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1 AND kind = 'org'")
                    .bind(org).fetch_optional(&mut *c).await?;
                let Some(account) = account else {
                    return Ok(None);
                };
                let secret = spec.secret.as_ref().map(|s| s.0.as_str()).unwrap_or("");
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO org_webhooks (account_id, url, scope, events, secret, created_by, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(account).bind(&spec.url).bind(&spec.scope).bind(events_text(&spec.events)).bind(secret)
                .bind(&event.origin.actor).bind($crate::meta::now_ms())
                .fetch_one(&mut *c).await?;
                let hook = one(&mut *c, Some(org), id).await?;
                let event = event.clone().detail(change_detail(None, hook.as_ref(), !secret.is_empty()));
                super::q::record_event(c, &event).await?;
                Ok(hook)
            }

            pub(super) async fn update(c: &mut $conn, org: &str, id: i64, spec: &HookSpec, event: &Event) -> MetaResult<Option<OrgWebhook>> {
                let Some(old) = one(&mut *c, Some(org), id).await? else {
                    return Ok(None);
                };
                let secret = spec.secret.as_ref().map_or(old.secret.0.as_str(), |s| s.0.as_str());
                sqlx::query(
                    "UPDATE org_webhooks SET url = $2, scope = $3, events = $4, secret = $5, created_by = $6, updated_at = $7
                     WHERE id = $1",
                )
                .bind(id).bind(&spec.url).bind(&spec.scope).bind(events_text(&spec.events)).bind(secret)
                .bind(&event.origin.actor).bind($crate::meta::now_ms())
                .execute(&mut *c).await?;
                let new = one(&mut *c, Some(org), id).await?;
                let event = event.clone().detail(change_detail(Some(&old), new.as_ref(), spec.secret.is_some()));
                super::q::record_event(c, &event).await?;
                Ok(new)
            }

            pub(super) async fn delete(c: &mut $conn, org: &str, id: i64, event: &Event) -> MetaResult<Option<OrgWebhook>> {
                let Some(old) = one(&mut *c, Some(org), id).await? else {
                    return Ok(None);
                };
                sqlx::query("DELETE FROM org_webhooks WHERE id = $1").bind(id).execute(&mut *c).await?;
                let event = event.clone().detail(change_detail(Some(&old), None, false));
                super::q::record_event(c, &event).await?;
                Ok(Some(old))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::org_webhooks::OrgWebhookStore for $store {
            async fn org_webhooks(&self, org: Option<&str>) -> $crate::meta::MetaResult<Vec<$crate::meta::org_webhooks::OrgWebhook>> {
                let org = org.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [org], |c| owq::list(c, org.as_deref()))
            }
            async fn org_webhook(&self, id: i64) -> $crate::meta::MetaResult<Option<$crate::meta::org_webhooks::OrgWebhook>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| owq::one(c, None, id))
            }
            async fn create_org_webhook(&self, org: &str, spec: &$crate::meta::org_webhooks::HookSpec, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<$crate::meta::org_webhooks::OrgWebhook>> {
                let spec = spec.clone();
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, spec, event], |c| owq::create(c, &org, &spec, &event))
            }
            async fn update_org_webhook(&self, org: &str, id: i64, spec: &$crate::meta::org_webhooks::HookSpec, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<$crate::meta::org_webhooks::OrgWebhook>> {
                let spec = spec.clone();
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, spec, event], |c| owq::update(c, &org, id, &spec, &event))
            }
            async fn delete_org_webhook(&self, org: &str, id: i64, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<$crate::meta::org_webhooks::OrgWebhook>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, event], |c| owq::delete(c, &org, id, &event))
            }
        }
    };
}

pub(crate) use impl_org_webhook_store;
