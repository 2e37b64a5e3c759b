//! The audit log and the webhook outbox in SQL: reading and pruning the entries that
//! [`events`](super::events) records inside each change, recording standalone events (a
//! webhook's test event), and the delivery worker's claims and attempts.

use async_trait::async_trait;
use serde::Serialize;

use super::MetaResult;
use super::events::Event;

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Its id: later entries have larger ids (a pagination cursor).
    pub id: i64,
    /// The event's id (the CloudEvents id of its webhook deliveries).
    pub event_id: String,
    /// When, in Unix milliseconds.
    pub at: i64,
    /// What happened (`manifest.push`, `user.create`, ...).
    pub action: String,
    /// Who (`""` for anonymous).
    pub actor: String,
    /// From which IP address.
    pub address: Option<String>,
    /// The repository changed.
    pub repository: Option<String>,
    /// The tag.
    pub tag: Option<String>,
    /// The manifest's digest.
    pub digest: Option<String>,
    /// The manifest's media type.
    pub media_type: Option<String>,
    /// The manifest's size.
    pub size: Option<u64>,
    /// The account, team or token acted on.
    pub target: Option<String>,
    /// Further facts.
    pub detail: Option<serde_json::Value>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditQuery<'a> {
    /// Only entries about this repository or the repositories under it (a namespace).
    pub repository: Option<&'a str>,
    /// Only this actor's entries.
    pub actor: Option<&'a str>,
    /// Only this action, or with a prefix such as `tag`, every `tag.*` action.
    pub action: Option<&'a str>,
    /// Only entries about this organization: its repositories (the organization's name or
    /// under `ORG/`), the organization itself, its teams (`ORG/TEAM`), its robots
    /// (`ORG+ROBOT`), and its members joining or leaving it or its teams. Exact names, never
    /// a pattern: organization `a` sees nothing of `ab` or `ab/app`.
    pub org: Option<&'a str>,
    /// Only entries at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only entries before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only entries older than this id (the previous page's last id).
    pub before_id: Option<i64>,
    /// At most this many entries.
    pub limit: u32,
}

/// A webhook delivery claimed for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The webhook's name.
    pub hook: String,
    /// The event's id.
    pub event_id: String,
    /// The CloudEvents type.
    pub event_type: String,
    /// The body to send.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it was made (Unix ms).
    pub at: i64,
    /// The response's HTTP status, if a response came.
    pub status: Option<u16>,
    /// Why it failed, when it did (no response, or a status other than 2xx).
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver took it.
    Delivered,
    /// Try again at this time (Unix ms).
    RetryAt(i64),
    /// No more attempts.
    GiveUp,
}

/// A delivery with its attempts, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryLog {
    /// Its id.
    pub id: i64,
    /// The webhook's name.
    pub hook: String,
    /// The event's id.
    pub event_id: String,
    /// The CloudEvents type.
    pub event_type: String,
    /// When it was queued (Unix ms).
    pub created_at: i64,
    /// `pending`, `delivered` or `failed`.
    pub state: &'static str,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<i64>,
    /// Every attempt so far, first first.
    pub attempts: Vec<Attempt>,
}

/// The audit log and webhook outbox queries.
#[async_trait]
pub trait AuditStore {
    /// A page of the audit log, newest first.
    async fn audit_entries(&self, query: AuditQuery<'_>) -> MetaResult<Vec<AuditEntry>>;

    /// Deletes audit entries, and finished webhook deliveries, from before `before_ms`;
    /// returns how many audit entries went.
    async fn prune_audit(&self, before_ms: i64) -> MetaResult<u64>;

    /// Records an event that is not part of another change (a webhook's test event), its
    /// deliveries claimed by the caller until `claim_until` (Unix ms); returns their ids.
    async fn record_event(&self, event: &Event, claim_until: i64) -> MetaResult<Vec<i64>>;

    /// Claims up to `limit` deliveries due at `now` until `lease_until`: no other worker
    /// takes them before then, unless their attempt is recorded first. With `only`, just
    /// that delivery, which its caller claimed already (see [`Self::record_event`]).
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
        only: Option<i64>,
    ) -> MetaResult<Vec<Delivery>>;

    /// Records an attempt at delivery `id` and what becomes of the delivery.
    async fn finish_attempt(
        &self,
        id: i64,
        attempt: &Attempt,
        outcome: AttemptOutcome,
    ) -> MetaResult<()>;

    /// The newest `limit` deliveries (of one webhook, if given) with their attempts, newest
    /// first.
    async fn deliveries(&self, hook: Option<&str>, limit: u32) -> MetaResult<Vec<DeliveryLog>>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::meta::events::{Action, Origin};

    /// An organization's entries are exactly those about it: organization `a` sees nothing
    /// of `ab`, `ab/app`, a user's token or a member joining another organization.
    #[tokio::test]
    async fn an_organizations_entries_are_exactly_its_own() {
        let (_dir, store) = crate::meta::acme_store().await;
        let by = Origin::system("test");
        let event = |action, f: &dyn Fn(Event) -> Event| f(Event::new(action, &by));
        let about_a = [
            event(Action::ManifestPush, &|e| e.on("a/app")),
            event(Action::Visibility, &|e| e.on("a")),
            event(Action::OrgCreate, &|e| e.target("a")),
            event(Action::TeamCreate, &|e| e.target("a/devs")),
            event(Action::TokenCreate, &|e| e.target("a+ci")),
            event(Action::MemberSet, &|e| {
                e.target("alice").detail(json!({"org": "a", "owner": true}))
            }),
            event(Action::TeamMemberAdd, &|e| {
                e.target("alice").detail(json!({"team": "a/devs"}))
            }),
        ];
        let elsewhere = [
            event(Action::ManifestPush, &|e| e.on("ab/app")),
            event(Action::ManifestPush, &|e| e.on("ab")),
            event(Action::OrgCreate, &|e| e.target("ab")),
            event(Action::TeamCreate, &|e| e.target("ab/devs")),
            event(Action::TokenCreate, &|e| e.target("ab+ci")),
            event(Action::MemberSet, &|e| {
                e.target("bob").detail(json!({"org": "ab", "owner": true}))
            }),
            event(Action::TeamMemberAdd, &|e| {
                e.target("alice").detail(json!({"team": "ab/devs"}))
            }),
            // A detail that merely mentions the organization is no membership of it.
            event(Action::UserCreate, &|e| {
                e.target("bob").detail(json!({"org": "a"}))
            }),
        ];
        for e in about_a.iter().chain(&elsewhere) {
            store.record_event(e, 0).await.expect("record");
        }
        let entries = store
            .audit_entries(AuditQuery {
                org: Some("a"),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let seen: Vec<(String, Option<String>, Option<String>)> = entries
            .into_iter()
            .rev()
            .map(|e| (e.action, e.repository, e.target))
            .collect();
        let wanted: Vec<(String, Option<String>, Option<String>)> = about_a
            .iter()
            .map(|e| {
                (
                    e.action.as_str().to_owned(),
                    e.repository.clone(),
                    e.target.clone(),
                )
            })
            .collect();
        assert_eq!(seen, wanted);

        // Other filters narrow within the organization; a time window too.
        let pushes = store
            .audit_entries(AuditQuery {
                org: Some("a"),
                action: Some("manifest"),
                until_ms: Some(i64::MAX),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        assert_eq!(pushes.len(), 1);
        let none = store
            .audit_entries(AuditQuery {
                org: Some("a"),
                until_ms: Some(0),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        assert!(none.is_empty());
    }
}
