//! The audit log: reading it, and pruning entries older than `audit.retention_days`. Entries
//! are written by the store inside each change (see [`crate::meta::events`]).

use std::time::Duration;

use super::{Registry, RegistryResult};
use crate::domain::Digest;
use crate::meta::audit::{AuditEntry, AuditQuery};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::now_ms;

/// What [`Registry::record_policies`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRecord {
    /// The policies are the last recorded; nothing was written.
    Unchanged,
    /// Nothing was recorded before (a new registry, or one older than the audit of
    /// policies): the policies in force were recorded. Not a change anyone made.
    First,
    /// The policies differ from the last recorded; the new ones were recorded.
    Changed,
}

impl Registry {
    /// A page of the audit log, newest first (at most 1000 entries).
    pub async fn audit(&self, mut query: AuditQuery<'_>) -> RegistryResult<Vec<AuditEntry>> {
        query.limit = query.limit.clamp(1, 1000);
        Ok(self.meta.audit_entries(query).await?)
    }

    /// A page of organization `org`'s audit log, newest first: only entries about it (see
    /// [`AuditQuery::org`]), whatever else `query` asks. Callers have checked that the
    /// caller manages the organization.
    pub async fn org_audit(
        &self,
        org: &str,
        mut query: AuditQuery<'_>,
    ) -> RegistryResult<Vec<AuditEntry>> {
        query.org = Some(org);
        self.audit(query).await
    }

    /// Records a `policy.change` entry (actor `system:config`) holding `policies`, the hub
    /// policies this server enforces, unless the last one recorded holds the same. Policies
    /// live in the configuration file, so a change shows when a server starts with new ones.
    pub async fn record_policies(
        &self,
        policies: serde_json::Value,
    ) -> RegistryResult<PolicyRecord> {
        let digest = Digest::sha256_of(policies.to_string().as_bytes()).to_string();
        let last = self
            .meta
            .audit_entries(AuditQuery {
                repository: None,
                actor: None,
                action: Some(Action::PolicyChange.as_str()),
                org: None,
                since_ms: None,
                until_ms: None,
                before_id: None,
                limit: 1,
            })
            .await?;
        let unchanged = last.first().is_some_and(|e| {
            e.detail
                .as_ref()
                .and_then(|d| d.get("digest"))
                .and_then(serde_json::Value::as_str)
                == Some(digest.as_str())
        });
        if unchanged {
            return Ok(PolicyRecord::Unchanged);
        }
        let mut event = Event::new(Action::PolicyChange, &Origin::system("config"));
        event.detail = Some(serde_json::json!({"digest": digest, "policies": policies}));
        self.meta.record_event(&event, 0).await?;
        Ok(if last.is_empty() {
            PolicyRecord::First
        } else {
            PolicyRecord::Changed
        })
    }

    /// Deletes audit entries and finished webhook deliveries older than `keep`; returns how
    /// many audit entries went.
    pub async fn prune_audit(&self, keep: Duration) -> RegistryResult<u64> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        Ok(self.meta.prune_audit(now_ms().saturating_sub(keep)).await?)
    }
}
