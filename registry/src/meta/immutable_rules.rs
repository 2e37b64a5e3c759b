//! Immutable-tag rules that organizations set for themselves, in SQL (see
//! migrations/*/0021_immutable_rules.sql), and their SQL for SQLite and PostgreSQL. Each change
//! records its audit event in the same transaction, with the old and the new rule.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;
use super::events::Event;

/// One stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImmutableRuleRecord {
    /// Its id, unique in the hub.
    pub id: i64,
    /// The organization it belongs to.
    pub org: String,
    /// The organization, or a repository or namespace under it.
    pub scope: String,
    /// The tag pattern (`*`, `?`, `[...]`).
    pub pattern: String,
    /// Who made it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_at: i64,
}

/// What adding a rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAdded {
    /// The rule was stored.
    Added(ImmutableRuleRecord),
    /// The organization already has this rule; nothing changed.
    Exists,
    /// There is no organization of that name.
    NoOrganization,
}

/// The rules' queries.
#[async_trait]
pub trait ImmutableRuleStore {
    /// The rules of organization `org`, or of every organization (`None`), by scope and
    /// pattern.
    async fn immutable_rules(&self, org: Option<&str>) -> MetaResult<Vec<ImmutableRuleRecord>>;

    /// Adds a rule of `org` made by `created_by`, recording `event` (its detail gets the old
    /// and new value) if it was added.
    async fn add_immutable_rule(
        &self,
        org: &str,
        scope: &str,
        pattern: &str,
        event: &Event,
    ) -> MetaResult<RuleAdded>;

    /// Deletes rule `id` of `org`, recording `event` with the rule deleted as the old value;
    /// the rule, or `None` when `org` has no such rule.
    async fn delete_immutable_rule(
        &self,
        org: &str,
        id: i64,
        event: &Event,
    ) -> MetaResult<Option<ImmutableRuleRecord>>;
}

/// The audit detail of a change from `old` to `new`.
pub fn change_detail(
    old: Option<&ImmutableRuleRecord>,
    new: Option<&ImmutableRuleRecord>,
) -> serde_json::Value {
    let value = |r: Option<&ImmutableRuleRecord>| {
        r.map(|r| serde_json::json!({"id": r.id, "scope": r.scope, "pattern": r.pattern}))
    };
    serde_json::json!({"old": value(old), "new": value(new)})
}

/// Implements [`ImmutableRuleStore`] for a store with the `account_read` and `account_write`
/// runners and a `q::record_event` (see `impl_account_store`).
macro_rules! impl_immutable_rule_store {
    ($store:ty, $conn:ty) => {
        mod iq {
            use $crate::meta::MetaResult;
            use $crate::meta::events::Event;
            use $crate::meta::immutable_rules::{ImmutableRuleRecord, RuleAdded, change_detail};

            type Row = (i64, String, String, String, String, i64);

            const SELECT: &str = "SELECT r.id, a.name, r.scope, r.pattern, r.created_by, r.created_at
                 FROM immutable_rules r JOIN accounts a ON a.id = r.account_id";

            fn record((id, org, scope, pattern, created_by, created_at): Row) -> ImmutableRuleRecord {
                ImmutableRuleRecord { id, org, scope, pattern, created_by, created_at }
            }

            pub(super) async fn rules(c: &mut $conn, org: Option<&str>) -> MetaResult<Vec<ImmutableRuleRecord>> {
                let sql = format!("{SELECT} WHERE ($1 IS NULL OR a.name = $1) ORDER BY a.name, r.scope, r.pattern");
                let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(c).await?;
                Ok(rows.into_iter().map(record).collect())
            }

            pub(super) async fn add(c: &mut $conn, org: &str, scope: &str, pattern: &str, event: &Event) -> MetaResult<RuleAdded> {
                let account: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1 AND kind = 'org'")
                    .bind(org).fetch_optional(&mut *c).await?;
                let Some(account) = account else {
                    return Ok(RuleAdded::NoOrganization);
                };
                let now = $crate::meta::now_ms();
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO immutable_rules (account_id, scope, pattern, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(account).bind(scope).bind(pattern).bind(&event.origin.actor).bind(now)
                .fetch_optional(&mut *c).await?;
                let Some(id) = id else {
                    return Ok(RuleAdded::Exists);
                };
                let rule = ImmutableRuleRecord {
                    id,
                    org: org.to_owned(),
                    scope: scope.to_owned(),
                    pattern: pattern.to_owned(),
                    created_by: event.origin.actor.clone(),
                    created_at: now,
                };
                let event = event.clone().detail(change_detail(None, Some(&rule)));
                super::q::record_event(c, &event).await?;
                Ok(RuleAdded::Added(rule))
            }

            pub(super) async fn delete(c: &mut $conn, org: &str, id: i64, event: &Event) -> MetaResult<Option<ImmutableRuleRecord>> {
                let sql = format!("{SELECT} WHERE a.name = $1 AND r.id = $2");
                let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(&mut *c).await?;
                let Some(rule) = row.map(record) else {
                    return Ok(None);
                };
                sqlx::query("DELETE FROM immutable_rules WHERE id = $1").bind(id).execute(&mut *c).await?;
                let event = event.clone().detail(change_detail(Some(&rule), None));
                super::q::record_event(c, &event).await?;
                Ok(Some(rule))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::immutable_rules::ImmutableRuleStore for $store {
            async fn immutable_rules(&self, org: Option<&str>) -> $crate::meta::MetaResult<Vec<$crate::meta::immutable_rules::ImmutableRuleRecord>> {
                let org = org.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [org], |c| iq::rules(c, org.as_deref()))
            }
            async fn add_immutable_rule(&self, org: &str, scope: &str, pattern: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::immutable_rules::RuleAdded> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, scope, pattern, event], |c| iq::add(c, &org, &scope, &pattern, &event))
            }
            async fn delete_immutable_rule(&self, org: &str, id: i64, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<$crate::meta::immutable_rules::ImmutableRuleRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, event], |c| iq::delete(c, &org, id, &event))
            }
        }
    };
}

pub(crate) use impl_immutable_rule_store;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::accounts::AccountStore;
    use crate::meta::audit::{AuditQuery, AuditStore};
    use crate::meta::events::{Action, Origin};

    /// Rules are the organization's by record, audited with old and new value, gone with the
    /// organization; reading them per push is cheap (the time is printed with `--nocapture`).
    #[tokio::test]
    async fn rules_are_stored_audited_and_go_with_their_organization() {
        let (_dir, store) = crate::meta::acme_store().await;
        let by = Origin::system("test");
        let add = Event::new(Action::ImmutableRuleAdd, &by);
        let RuleAdded::Added(rule) = store
            .add_immutable_rule("acme", "acme/app", "v*", &add)
            .await
            .expect("add")
        else {
            panic!("not added");
        };
        assert_eq!(
            store
                .add_immutable_rule("acme", "acme/app", "v*", &add)
                .await
                .expect("again"),
            RuleAdded::Exists
        );
        for not_an_org in ["alice", "nobody"] {
            assert_eq!(
                store
                    .add_immutable_rule(not_an_org, not_an_org, "v*", &add)
                    .await
                    .expect("add"),
                RuleAdded::NoOrganization
            );
        }
        assert_eq!(
            store.immutable_rules(Some("acme")).await.expect("list"),
            std::slice::from_ref(&rule)
        );
        assert_eq!(
            store.immutable_rules(None).await.expect("all"),
            std::slice::from_ref(&rule)
        );
        assert!(
            store
                .immutable_rules(Some("alice"))
                .await
                .expect("none")
                .is_empty()
        );

        let started = std::time::Instant::now();
        for _ in 0..1000 {
            store.immutable_rules(Some("acme")).await.expect("read");
        }
        eprintln!(
            "reading an organization's rules: {:?} each",
            started.elapsed() / 1000
        );

        let delete = Event::new(Action::ImmutableRuleDelete, &by);
        assert_eq!(
            store
                .delete_immutable_rule("alice", rule.id, &delete)
                .await
                .expect("other"),
            None
        );
        assert_eq!(
            store
                .delete_immutable_rule("acme", rule.id, &delete)
                .await
                .expect("delete"),
            Some(rule.clone())
        );
        let entries = store
            .audit_entries(AuditQuery {
                action: Some("immutable"),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let details: Vec<_> = entries
            .iter()
            .map(|e| (e.action.as_str(), e.detail.clone()))
            .collect();
        assert_eq!(
            details,
            [
                (
                    "immutable.rule.delete",
                    Some(change_detail(Some(&rule), None))
                ),
                ("immutable.rule.add", Some(change_detail(None, Some(&rule)))),
            ]
        );

        // An organization's rules go with it.
        store
            .add_immutable_rule("acme", "acme", "x*", &add)
            .await
            .expect("add");
        let id = store
            .account("acme")
            .await
            .expect("acme")
            .expect("exists")
            .id;
        store
            .delete_account(id, &Event::new(Action::AccountDelete, &by))
            .await
            .expect("delete org");
        assert!(store.immutable_rules(None).await.expect("all").is_empty());
    }
}
