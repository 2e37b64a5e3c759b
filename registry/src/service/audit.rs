//! The audit log: reading it, and pruning entries older than `audit.retention_days`. Entries
//! are written by the store inside each change (see [`crate::meta::events`]).

use std::time::Duration;

use super::{Registry, RegistryResult};
use crate::meta::audit::{AuditEntry, AuditQuery};
use crate::meta::now_ms;

impl Registry {
    /// A page of the audit log, newest first (at most 1000 entries).
    pub async fn audit(&self, mut query: AuditQuery<'_>) -> RegistryResult<Vec<AuditEntry>> {
        query.limit = query.limit.clamp(1, 1000);
        Ok(self.meta.audit_entries(query).await?)
    }

    /// Deletes audit entries and finished webhook deliveries older than `keep`; returns how
    /// many audit entries went.
    pub async fn prune_audit(&self, keep: Duration) -> RegistryResult<u64> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        Ok(self.meta.prune_audit(now_ms().saturating_sub(keep)).await?)
    }
}
