//! The audit log: reading it, and pruning entries older than `audit.retention_days`. Entries
//! are written by the store inside each change (see [`crate::meta::events`]).

use std::time::Duration;

use super::{Registry, RegistryResult};
use crate::domain::Digest;
use crate::meta::audit::{AuditEntry, AuditQuery};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::now_ms;

impl Registry {
    /// A page of the audit log, newest first (at most 1000 entries).
    pub async fn audit(&self, mut query: AuditQuery<'_>) -> RegistryResult<Vec<AuditEntry>> {
        query.limit = query.limit.clamp(1, 1000);
        Ok(self.meta.audit_entries(query).await?)
    }

    /// Records a `policy.change` entry (actor `system:config`) holding `policies`, the hub
    /// policies this server enforces, unless the last one recorded holds the same. Policies
    /// live in the configuration file, so a change shows when a server starts with new ones.
    /// Returns whether an entry was recorded.
    pub async fn record_policies(&self, policies: serde_json::Value) -> RegistryResult<bool> {
        let digest = Digest::sha256_of(policies.to_string().as_bytes()).to_string();
        let last = self
            .meta
            .audit_entries(AuditQuery {
                repository: None,
                actor: None,
                action: Some(Action::PolicyChange.as_str()),
                since_ms: None,
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
            return Ok(false);
        }
        let mut event = Event::new(Action::PolicyChange, &Origin::system("config"));
        event.detail = Some(serde_json::json!({"digest": digest, "policies": policies}));
        self.meta.record_event(&event, 0).await?;
        Ok(true)
    }

    /// Deletes audit entries and finished webhook deliveries older than `keep`; returns how
    /// many audit entries went.
    pub async fn prune_audit(&self, keep: Duration) -> RegistryResult<u64> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        Ok(self.meta.prune_audit(now_ms().saturating_sub(keep)).await?)
    }
}
