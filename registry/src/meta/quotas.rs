//! Quotas administrators set at run time, in SQL (see migrations/*/0026_quotas.sql), and their
//! SQL for SQLite and PostgreSQL. Each change records its audit event in the same
//! transaction, with the old and the new quota.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;
use super::events::Event;

/// The limits of one quota; at least one is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QuotaLimits {
    /// Blob bytes, each blob once.
    pub max_bytes: Option<u64>,
    /// Repositories.
    pub max_repositories: Option<u64>,
}

/// One stored quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaRecord {
    /// The namespace or repository it covers.
    pub scope: String,
    /// Its limits.
    #[serde(flatten)]
    pub limits: QuotaLimits,
    /// The administrator who set it.
    pub set_by: String,
    /// When, Unix ms.
    pub set_at: i64,
}

/// The quotas' queries.
#[async_trait]
pub trait QuotaStore {
    /// Every stored quota, by scope.
    async fn quotas(&self) -> MetaResult<Vec<QuotaRecord>>;

    /// The stored quotas that apply to repository (or namespace) `name`: its own and those of
    /// every namespace above it, by scope.
    async fn quotas_covering(&self, name: &str) -> MetaResult<Vec<QuotaRecord>>;

    /// The stored quotas of namespace `ns`: its own and those of every repository or
    /// namespace under it, by scope.
    async fn quotas_within(&self, ns: &str) -> MetaResult<Vec<QuotaRecord>>;

    /// Sets the quota of `scope` to `limits` (validated by the caller), recording `event`
    /// with the old and the new quota as its detail; the new record and the old one.
    async fn set_quota(
        &self,
        scope: &str,
        limits: QuotaLimits,
        event: &Event,
    ) -> MetaResult<(QuotaRecord, Option<QuotaRecord>)>;

    /// Deletes the quota of `scope`, recording `event` with the old quota; the quota deleted,
    /// or `None` (nothing recorded) when `scope` had none.
    async fn delete_quota(&self, scope: &str, event: &Event) -> MetaResult<Option<QuotaRecord>>;
}

/// The audit detail of a change from `old` to `new`.
pub fn change_detail(old: Option<&QuotaLimits>, new: Option<&QuotaLimits>) -> serde_json::Value {
    serde_json::json!({"old": old, "new": new})
}

/// Implements [`QuotaStore`] for a store with the `account_read` and `account_write`
/// runners and a `q::record_event` (see `impl_account_store`).
macro_rules! impl_quota_store {
    ($store:ty, $conn:ty) => {
        mod quq {
            use $crate::meta::events::Event;
            use $crate::meta::quotas::{QuotaLimits, QuotaRecord, change_detail};
            use $crate::meta::{MetaError, MetaResult};

            type Row = (String, Option<i64>, Option<i64>, String, i64);

            const SELECT: &str = "SELECT scope, max_bytes, max_repositories, set_by, set_at FROM quotas";

            fn record((scope, bytes, repos, set_by, set_at): Row) -> MetaResult<QuotaRecord> {
                let limit = |v: Option<i64>| {
                    v.map(|v| {
                        u64::try_from(v).map_err(|_| MetaError::Corrupt {
                            table: "quotas",
                            reason: format!("negative limit {v} for {scope}"),
                        })
                    })
                    .transpose()
                };
                Ok(QuotaRecord {
                    limits: QuotaLimits { max_bytes: limit(bytes)?, max_repositories: limit(repos)? },
                    scope,
                    set_by,
                    set_at,
                })
            }

            /// The quotas matching `filter`, whose `$1` (if any) is `name`.
            pub(super) async fn select(c: &mut $conn, filter: &str, name: Option<&str>) -> MetaResult<Vec<QuotaRecord>> {
                let sql = format!("{SELECT} {filter} ORDER BY scope");
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                if let Some(name) = name {
                    query = query.bind(name);
                }
                let rows: Vec<Row> = query.fetch_all(c).await?;
                rows.into_iter().map(record).collect()
            }

            // `scope` covers `$1` when equal or a namespace above it (and is within `$1` the
            // other way round). `substr` and `length` compare the same way in both databases,
            // whatever the collation, unlike a range on `/`..`0`.
            pub(super) const COVERING: &str =
                "WHERE scope = $1 OR substr($1, 1, length(scope) + 1) = scope || '/'";
            pub(super) const WITHIN: &str =
                "WHERE scope = $1 OR substr(scope, 1, length($1) + 1) = $1 || '/'";

            async fn one(c: &mut $conn, scope: &str) -> MetaResult<Option<QuotaRecord>> {
                Ok(select(c, "WHERE scope = $1", Some(scope)).await?.pop())
            }

            fn bind(v: Option<u64>) -> Option<i64> {
                // Limits are validated to at most 1 EiB, far below i64::MAX.
                v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
            }

            pub(super) async fn set(c: &mut $conn, scope: &str, limits: QuotaLimits, event: &Event) -> MetaResult<(QuotaRecord, Option<QuotaRecord>)> {
                let old = one(&mut *c, scope).await?;
                let now = $crate::meta::now_ms();
                sqlx::query(
                    "INSERT INTO quotas (scope, max_bytes, max_repositories, set_by, set_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (scope) DO UPDATE SET max_bytes = excluded.max_bytes,
                         max_repositories = excluded.max_repositories, set_by = excluded.set_by,
                         set_at = excluded.set_at",
                )
                .bind(scope)
                .bind(bind(limits.max_bytes))
                .bind(bind(limits.max_repositories))
                .bind(&event.origin.actor)
                .bind(now)
                .execute(&mut *c)
                .await?;
                let new = QuotaRecord { scope: scope.to_owned(), limits, set_by: event.origin.actor.clone(), set_at: now };
                let event = event.clone().detail(change_detail(old.as_ref().map(|o| &o.limits), Some(&limits)));
                super::q::record_event(c, &event).await?;
                Ok((new, old))
            }

            pub(super) async fn delete(c: &mut $conn, scope: &str, event: &Event) -> MetaResult<Option<QuotaRecord>> {
                let Some(old) = one(&mut *c, scope).await? else {
                    return Ok(None);
                };
                sqlx::query("DELETE FROM quotas WHERE scope = $1").bind(scope).execute(&mut *c).await?;
                let event = event.clone().detail(change_detail(Some(&old.limits), None));
                super::q::record_event(c, &event).await?;
                Ok(Some(old))
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::quotas::QuotaStore for $store {
            async fn quotas(&self) -> $crate::meta::MetaResult<Vec<$crate::meta::quotas::QuotaRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [], |c| quq::select(c, "", None))
            }
            async fn quotas_covering(&self, name: &str) -> $crate::meta::MetaResult<Vec<$crate::meta::quotas::QuotaRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [name], |c| quq::select(c, quq::COVERING, Some(&name)))
            }
            async fn quotas_within(&self, ns: &str) -> $crate::meta::MetaResult<Vec<$crate::meta::quotas::QuotaRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [ns], |c| quq::select(c, quq::WITHIN, Some(&ns)))
            }
            async fn set_quota(&self, scope: &str, limits: $crate::meta::quotas::QuotaLimits, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<($crate::meta::quotas::QuotaRecord, Option<$crate::meta::quotas::QuotaRecord>)> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [scope, event], |c| quq::set(c, &scope, limits, &event))
            }
            async fn delete_quota(&self, scope: &str, event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<Option<$crate::meta::quotas::QuotaRecord>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [scope, event], |c| quq::delete(c, &scope, &event))
            }
        }
    };
}

pub(crate) use impl_quota_store;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::audit::{AuditQuery, AuditStore};
    use crate::meta::events::{Action, Origin};

    /// Quotas are set, replaced and deleted with an audit entry each (old and new value), and
    /// cover their scope and what is under it, byte for byte.
    #[tokio::test]
    async fn quotas_are_stored_audited_and_cover_their_scope() {
        let (_dir, store) = crate::meta::acme_store().await;
        let by = Origin::system("test");
        let set = Event::new(Action::QuotaSet, &by);
        let first = QuotaLimits {
            max_bytes: Some(1 << 30),
            max_repositories: None,
        };
        let second = QuotaLimits {
            max_bytes: None,
            max_repositories: Some(3),
        };
        let (record, old) = store.set_quota("acme", first, &set).await.expect("set");
        assert_eq!((record.limits, old), (first, None));
        let (_, old) = store.set_quota("acme", second, &set).await.expect("reset");
        assert_eq!(old.map(|o| o.limits), Some(first));
        store
            .set_quota("acme/app", first, &set)
            .await
            .expect("repo");
        store.set_quota("acme_x", first, &set).await.expect("other");
        let scopes = |v: Vec<QuotaRecord>| v.into_iter().map(|r| r.scope).collect::<Vec<_>>();
        assert_eq!(
            scopes(store.quotas_covering("acme/app/sub").await.expect("c")),
            ["acme", "acme/app"]
        );
        assert_eq!(
            scopes(store.quotas_covering("acme").await.expect("c")),
            ["acme"]
        );
        assert!(
            store
                .quotas_covering("acmex/app")
                .await
                .expect("c")
                .is_empty()
        );
        assert_eq!(
            scopes(store.quotas_within("acme").await.expect("w")),
            ["acme", "acme/app"]
        );
        assert_eq!(store.quotas().await.expect("all").len(), 3);

        let delete = Event::new(Action::QuotaDelete, &by);
        let gone = store.delete_quota("acme", &delete).await.expect("delete");
        assert_eq!(gone.map(|g| g.limits), Some(second));
        assert_eq!(
            store.delete_quota("acme", &delete).await.expect("again"),
            None
        );

        let details: Vec<_> = store
            .audit_entries(AuditQuery {
                action: Some("quota"),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit")
            .into_iter()
            .map(|e| (e.action, e.detail))
            .collect();
        assert_eq!(details.len(), 5);
        assert_eq!(
            details[0],
            (
                "quota.delete".to_owned(),
                Some(change_detail(Some(&second), None))
            )
        );
        assert_eq!(
            details[3],
            (
                "quota.set".to_owned(),
                Some(change_detail(Some(&first), Some(&second)))
            )
        );
    }
}
