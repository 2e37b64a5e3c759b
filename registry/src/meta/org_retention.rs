//! Retention rules that organizations set for themselves, in SQL (see
//! migrations/*/0024_org_retention.sql), and their SQL for SQLite and PostgreSQL. An
//! organization's rules are replaced as a whole, in one transaction that also records the
//! audit event with the old and the new rules.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::MetaResult;
use super::events::Event;

/// One rule, as stored and as the API shows it (without who set it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The organization, or a repository or namespace under it.
    pub scope: String,
    /// Keep each repository's N most recently pushed tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_newest: Option<u32>,
    /// Keep tags pushed within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_pushed_within_days: Option<u32>,
    /// Keep tags pulled within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_pulled_within_days: Option<u32>,
    /// Always keep tags matching these globs.
    #[serde(default)]
    pub keep_tags: Vec<String>,
}

/// An organization's stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionRuleRecord {
    /// The organization it belongs to.
    pub org: String,
    /// The rule.
    #[serde(flatten)]
    pub rule: RetentionRule,
    /// Who set it.
    pub updated_by: String,
    /// When, Unix ms.
    pub updated_at: i64,
}

/// The rules' queries.
#[async_trait]
pub trait OrgRetentionStore {
    /// The rules of organization `org`, or of every organization (`None`), by organization
    /// and scope.
    async fn org_retention_rules(&self, org: Option<&str>) -> MetaResult<Vec<RetentionRuleRecord>>;

    /// Replaces the rules of `org` with `rules` (validated by the caller), recording `event`
    /// with the old and the new rules as its detail; the new records, or `None` when there is
    /// no organization of that name (nothing changed).
    async fn set_org_retention_rules(
        &self,
        org: &str,
        rules: &[RetentionRule],
        event: &Event,
    ) -> MetaResult<Option<Vec<RetentionRuleRecord>>>;
}

/// The audit detail of a change from `old` to `new`.
pub fn change_detail(old: &[RetentionRule], new: &[RetentionRule]) -> serde_json::Value {
    serde_json::json!({"old": old, "new": new})
}

/// Implements [`OrgRetentionStore`] for a store with the `account_read` and `account_write`
/// runners and a `q::record_event` (see `impl_account_store`).
macro_rules! impl_org_retention_store {
    ($store:ty, $conn:ty) => {
        mod orq {
            use $crate::meta::MetaResult;
            use $crate::meta::events::Event;
            use $crate::meta::org_retention::{RetentionRule, RetentionRuleRecord, change_detail};

            type Row = (String, String, Option<i64>, Option<i64>, Option<i64>, String, String, i64);

            fn record((org, scope, newest, pushed, pulled, tags, updated_by, updated_at): Row) -> RetentionRuleRecord {
                let number = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
                RetentionRuleRecord {
                    org,
                    rule: RetentionRule {
                        scope,
                        keep_newest: number(newest),
                        keep_pushed_within_days: number(pushed),
                        keep_pulled_within_days: number(pulled),
                        keep_tags: serde_json::from_str(&tags).unwrap_or_default(),
                    },
                    updated_by,
                    updated_at,
                }
            }

            pub(super) async fn rules(c: &mut $conn, org: Option<&str>) -> MetaResult<Vec<RetentionRuleRecord>> {
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT a.name, r.scope, r.keep_newest, r.keep_pushed_within_days,
                            r.keep_pulled_within_days, r.keep_tags, r.updated_by, r.updated_at
                     FROM org_retention_rules r JOIN accounts a ON a.id = r.account_id
                     WHERE ($1 IS NULL OR a.name = $1) ORDER BY a.name, r.scope",
                )
                .bind(org)
                .fetch_all(c)
                .await?;
                Ok(rows.into_iter().map(record).collect())
            }

            pub(super) async fn set(c: &mut $conn, org: &str, new: &[RetentionRule], event: &Event) -> MetaResult<Option<Vec<RetentionRuleRecord>>> {
                let account: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1 AND kind = 'org'")
                    .bind(org).fetch_optional(&mut *c).await?;
                let Some(account) = account else {
                    return Ok(None);
                };
                let old: Vec<RetentionRule> = rules(&mut *c, Some(org)).await?.into_iter().map(|r| r.rule).collect();
                sqlx::query("DELETE FROM org_retention_rules WHERE account_id = $1").bind(account).execute(&mut *c).await?;
                let now = $crate::meta::now_ms();
                let mut records = Vec::with_capacity(new.len());
                for rule in new {
                    let tags = serde_json::to_string(&rule.keep_tags).unwrap_or_else(|_| "[]".into());
                    sqlx::query(
                        "INSERT INTO org_retention_rules (account_id, scope, keep_newest, keep_pushed_within_days,
                             keep_pulled_within_days, keep_tags, updated_by, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(account)
                    .bind(&rule.scope)
                    .bind(rule.keep_newest.map(i64::from))
                    .bind(rule.keep_pushed_within_days.map(i64::from))
                    .bind(rule.keep_pulled_within_days.map(i64::from))
                    .bind(tags)
                    .bind(&event.origin.actor)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    records.push(RetentionRuleRecord {
                        org: org.to_owned(),
                        rule: rule.clone(),
                        updated_by: event.origin.actor.clone(),
                        updated_at: now,
                    });
                }
                records.sort_by(|a, b| a.rule.scope.cmp(&b.rule.scope));
                let event = event.clone().detail(change_detail(&old, new));
                super::q::record_event(c, &event).await?;
                Ok(Some(records))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::org_retention::OrgRetentionStore for $store {
            async fn org_retention_rules(&self, org: Option<&str>) -> $crate::meta::MetaResult<Vec<$crate::meta::org_retention::RetentionRuleRecord>> {
                let org = org.map(str::to_owned);
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [org], |c| orq::rules(c, org.as_deref()))
            }
            async fn set_org_retention_rules(&self, org: &str, rules: &[$crate::meta::org_retention::RetentionRule], event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<Vec<$crate::meta::org_retention::RetentionRuleRecord>>> {
                let rules = rules.to_vec();
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, rules, event], |c| orq::set(c, &org, &rules, &event))
            }
        }
    };
}

pub(crate) use impl_org_retention_store;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::accounts::AccountStore;
    use crate::meta::audit::{AuditQuery, AuditStore};
    use crate::meta::events::{Action, Origin};

    /// Rules are replaced as a whole, audited with old and new value, and go with their
    /// organization.
    #[tokio::test]
    async fn rules_are_replaced_audited_and_go_with_their_organization() {
        let (_dir, store) = crate::meta::acme_store().await;
        let by = Origin::system("test");
        let set = Event::new(Action::RetentionSet, &by);
        let first = vec![
            RetentionRule {
                scope: "acme".into(),
                keep_newest: Some(5),
                keep_tags: vec!["v*".into(), "latest".into()],
                ..RetentionRule::default()
            },
            RetentionRule {
                scope: "acme/ci".into(),
                keep_pushed_within_days: Some(7),
                keep_pulled_within_days: Some(30),
                ..RetentionRule::default()
            },
        ];
        let records = store
            .set_org_retention_rules("acme", &first, &set)
            .await
            .expect("set")
            .expect("org");
        assert_eq!(records.len(), 2);
        for not_an_org in ["alice", "nobody"] {
            assert_eq!(
                store
                    .set_org_retention_rules(not_an_org, &first, &set)
                    .await
                    .expect("set"),
                None
            );
        }
        let stored: Vec<RetentionRule> = store
            .org_retention_rules(Some("acme"))
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.rule)
            .collect();
        assert_eq!(stored, first);
        let second = vec![first[1].clone()];
        store
            .set_org_retention_rules("acme", &second, &set)
            .await
            .expect("replace");
        assert_eq!(store.org_retention_rules(None).await.expect("all").len(), 1);
        let details: Vec<_> = store
            .audit_entries(AuditQuery {
                action: Some("retention"),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.detail)
            .collect();
        assert_eq!(
            details,
            [
                Some(change_detail(&first, &second)),
                Some(change_detail(&[], &first))
            ]
        );

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
        assert!(
            store
                .org_retention_rules(None)
                .await
                .expect("all")
                .is_empty()
        );
    }
}
