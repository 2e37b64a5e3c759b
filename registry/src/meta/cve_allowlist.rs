//! The CVE allowlists organizations keep for themselves, in SQL (see
//! migrations/*/0023_cve_allowlists.sql), and their SQL for SQLite and PostgreSQL. A list is
//! replaced whole; each change records its audit event in the same transaction, with the old
//! and the new list.

use async_trait::async_trait;
use berth_scan::policy::AllowItem;
use serde::Serialize;

use super::MetaResult;
use super::events::Event;

/// An organization's list as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgAllowlist {
    /// The organization.
    pub org: String,
    /// The entries, as given.
    pub entries: Vec<AllowItem>,
    /// Who set them last.
    pub updated_by: String,
    /// When, Unix ms.
    pub updated_at: i64,
}

/// What setting a list did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowlistSet {
    /// Stored; the list before, if there was one.
    Set {
        /// The list before.
        old: Option<OrgAllowlist>,
        /// The list now.
        new: OrgAllowlist,
    },
    /// There is no organization of that name.
    NoOrganization,
}

/// The lists' queries.
#[async_trait]
pub trait CveAllowlistStore {
    /// The list of organization `org`, if it set one.
    async fn org_cve_allowlist(&self, org: &str) -> MetaResult<Option<OrgAllowlist>>;

    /// Replaces the list of `org` with `entries`, recording `event` (its detail gets the old
    /// and the new entries).
    async fn set_org_cve_allowlist(
        &self,
        org: &str,
        entries: &[AllowItem],
        event: &Event,
    ) -> MetaResult<AllowlistSet>;
}

/// The audit detail of a change from `old` to `new`.
pub fn change_detail(old: Option<&[AllowItem]>, new: &[AllowItem]) -> serde_json::Value {
    serde_json::json!({"old": old, "new": new})
}

/// Entries as stored; a row that does not parse (written by a later version) reads as none,
/// logged.
pub fn entries_of(json: &str) -> Vec<AllowItem> {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "stored CVE allowlist unreadable; read as empty");
        Vec::new()
    })
}

/// Implements [`CveAllowlistStore`] for a store with the `account_read` and `account_write`
/// runners and a `q::record_event` (see `impl_account_store`).
macro_rules! impl_cve_allowlist_store {
    ($store:ty, $conn:ty) => {
        mod cq {
            use berth_scan::policy::AllowItem;
            use $crate::meta::MetaResult;
            use $crate::meta::cve_allowlist::{AllowlistSet, OrgAllowlist, change_detail, entries_of};
            use $crate::meta::events::Event;

            pub(super) async fn get(c: &mut $conn, org: &str) -> MetaResult<Option<OrgAllowlist>> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT l.entries, l.updated_by, l.updated_at
                     FROM cve_allowlists l JOIN accounts a ON a.id = l.account_id
                     WHERE a.name = $1 AND a.kind = 'org'",
                )
                .bind(org).fetch_optional(c).await?;
                Ok(row.map(|(entries, updated_by, updated_at)| OrgAllowlist {
                    org: org.to_owned(),
                    entries: entries_of(&entries),
                    updated_by,
                    updated_at,
                }))
            }

            pub(super) async fn set(c: &mut $conn, org: &str, entries: &[AllowItem], event: &Event) -> MetaResult<AllowlistSet> {
                let account: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1 AND kind = 'org'")
                    .bind(org).fetch_optional(&mut *c).await?;
                let Some(account) = account else {
                    return Ok(AllowlistSet::NoOrganization);
                };
                let old = get(&mut *c, org).await?;
                let now = $crate::meta::now_ms();
                let json = serde_json::to_string(entries).map_err(|e| $crate::meta::MetaError::Corrupt { table: "cve_allowlists", reason: e.to_string() })?;
                sqlx::query(
                    "INSERT INTO cve_allowlists (account_id, entries, updated_by, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account_id) DO UPDATE SET entries = excluded.entries,
                         updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                )
                .bind(account).bind(&json).bind(&event.origin.actor).bind(now)
                .execute(&mut *c).await?;
                let new = OrgAllowlist {
                    org: org.to_owned(),
                    entries: entries.to_vec(),
                    updated_by: event.origin.actor.clone(),
                    updated_at: now,
                };
                let detail = change_detail(old.as_ref().map(|o| o.entries.as_slice()), entries);
                super::q::record_event(c, &event.clone().detail(detail)).await?;
                Ok(AllowlistSet::Set { old, new })
            }
        }

        #[async_trait::async_trait]
        impl $crate::meta::cve_allowlist::CveAllowlistStore for $store {
            async fn org_cve_allowlist(&self, org: &str) -> $crate::meta::MetaResult<Option<$crate::meta::cve_allowlist::OrgAllowlist>> {
                $crate::meta::account_sql::run_owned!($conn; self.account_read, [org], |c| cq::get(c, &org))
            }
            async fn set_org_cve_allowlist(&self, org: &str, entries: &[berth_scan::policy::AllowItem], event: &$crate::meta::events::Event) -> $crate::meta::MetaResult<$crate::meta::cve_allowlist::AllowlistSet> {
                let entries = entries.to_vec();
                $crate::meta::account_sql::run_owned!($conn; self.account_write, [org, entries, event], |c| cq::set(c, &org, &entries, &event))
            }
        }
    };
}

pub(crate) use impl_cve_allowlist_store;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::accounts::AccountStore;
    use crate::meta::audit::{AuditQuery, AuditStore};
    use crate::meta::events::{Action, Origin};
    use berth_scan::policy::Expiry;

    /// A list is the organization's by record, replaced whole, audited with old and new value,
    /// gone with the organization.
    #[tokio::test]
    async fn lists_are_stored_audited_and_go_with_their_organization() {
        let (_dir, store) = crate::meta::acme_store().await;
        let by = Origin::system("test");
        let set = Event::new(Action::CveAllowlistSet, &by);
        let first = vec![AllowItem {
            id: "CVE-2023-1".into(),
            expires: Some(Expiry::Text("2027-01-31".into())),
            reason: Some("unreachable".into()),
        }];
        let second = vec![AllowItem {
            id: "CVE-2023-2".into(),
            expires: None,
            reason: None,
        }];
        assert_eq!(store.org_cve_allowlist("acme").await.expect("get"), None);
        let AllowlistSet::Set { old: None, new } = store
            .set_org_cve_allowlist("acme", &first, &set)
            .await
            .expect("set")
        else {
            panic!("not set");
        };
        assert_eq!(new.entries, first);
        let AllowlistSet::Set { old: Some(old), .. } = store
            .set_org_cve_allowlist("acme", &second, &set)
            .await
            .expect("replace")
        else {
            panic!("not replaced");
        };
        assert_eq!(old.entries, first);
        assert_eq!(
            store
                .org_cve_allowlist("acme")
                .await
                .expect("get")
                .map(|l| l.entries),
            Some(second.clone())
        );
        for not_an_org in ["alice", "nobody"] {
            assert_eq!(
                store
                    .set_org_cve_allowlist(not_an_org, &first, &set)
                    .await
                    .expect("set"),
                AllowlistSet::NoOrganization
            );
        }
        let entries = store
            .audit_entries(AuditQuery {
                action: Some("cve"),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let details: Vec<_> = entries.iter().map(|e| e.detail.clone()).collect();
        assert_eq!(
            details,
            [
                Some(change_detail(Some(&first), &second)),
                Some(change_detail(None, &first)),
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
        assert_eq!(store.org_cve_allowlist("acme").await.expect("get"), None);
    }
}
