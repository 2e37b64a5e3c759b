//! Events: what changed, who changed it and from where, recorded in the transaction of the
//! change itself: one row of the audit log, and one webhook delivery per webhook that listens
//! (the outbox the delivery worker in `service::webhooks` empties). A crash therefore never
//! leaves a change without its audit entry, nor a delivery for a change that was rolled back.
//!
//! The service layer builds an [`Event`] before it calls the store (it knows the actor, the
//! address and the webhooks of the repository); the store fills in what only the transaction
//! knows (the digest a deleted tag pointed at) and records it only if the change happened.

use serde::Serialize;
use serde_json::{Value, json};

/// Who made a change and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// A user name, `org+robot` for a robot token, `""` for anonymous, or `system:NAME` for
    /// berth's own background work (retention) and `cli:USER` for the command line.
    pub actor: String,
    /// The client's IP address, if the change came over the network.
    pub address: Option<String>,
}

impl Origin {
    /// Whether the actor is an organization's robot: only robot logins contain `+`, which
    /// account names cannot.
    pub fn is_robot(&self) -> bool {
        self.actor.contains('+')
    }

    /// A change berth makes by itself (`system:retention`).
    pub fn system(name: &str) -> Self {
        Self {
            actor: format!("system:{name}"),
            address: None,
        }
    }
}

/// What kind of change an event records. The names are stable: they are stored, filtered on
/// (`berth audit --action tag` matches every `tag.*`) and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A manifest was stored (and tagged, if pushed by tag).
    ManifestPush,
    /// A manifest was deleted by digest, with every tag on it.
    ManifestDelete,
    /// A tag was deleted (by a client or a retention policy).
    TagDelete,
    /// A tag was pointed back at a manifest from its history.
    TagRestore,
    /// A user was created.
    UserCreate,
    /// A user signed in through an identity provider (OpenID Connect, LDAP).
    ExternalSignIn,
    /// A user's password was changed.
    UserPassword,
    /// A user was made an administrator, or no longer one.
    UserAdmin,
    /// A user or organization was disabled or enabled.
    AccountDisabled,
    /// A user or organization was deleted.
    AccountDelete,
    /// An organization was created.
    OrgCreate,
    /// A user joined an organization or changed between owner and member.
    MemberSet,
    /// A user left an organization.
    MemberRemove,
    /// A team was created.
    TeamCreate,
    /// A team was deleted.
    TeamDelete,
    /// A user joined a team.
    TeamMemberAdd,
    /// A user left a team.
    TeamMemberRemove,
    /// A team was given a role on the organization or a repository.
    GrantSet,
    /// A team's role was taken away.
    GrantRemove,
    /// A repository was made public or private.
    Visibility,
    /// An access token or robot account was created.
    TokenCreate,
    /// An access token or robot account was revoked.
    TokenRevoke,
    /// A webhook's test event was sent.
    WebhookTest,
    /// The hub policies in force (immutable tags, quotas, retention, rate limits) changed:
    /// a server started with other ones than the last recorded.
    PolicyChange,
    /// A new token signing key was added (`berth admin key rotate`); the keys signing until
    /// then retire.
    KeyRotate,
    /// A manifest's signature verdict under its trust policy was reached for the first time,
    /// or changed (a signature added, a key trusted or no longer trusted).
    TrustVerdict,
    /// A token signing key was deleted at once (`berth admin key retire`, for a leaked key).
    KeyRetire,
    /// An organization's immutable-tag rule was added (detail: old and new rule).
    ImmutableRuleAdd,
    /// An organization's immutable-tag rule was deleted (detail: old and new rule).
    ImmutableRuleDelete,
    /// An image's findings were matched for the first time, or changed when the advisory
    /// database did (detail: trigger, generation, packages, summary).
    ScanCompleted,
    /// An organization's retention rules were replaced (detail: old and new rules).
    RetentionSet,
    /// An organization's webhook was created (detail: old and new hook, never the secret).
    WebhookCreate,
    /// An organization's webhook was changed (detail: old and new hook, whether the secret
    /// changed).
    WebhookUpdate,
    /// An organization's webhook was deleted (detail: old and new hook).
    WebhookDelete,
    /// An organization's CVE allowlist was set (detail: old and new entries).
    CveAllowlistSet,
    /// An administrator set a quota (detail: old and new limits).
    QuotaSet,
    /// An administrator removed a quota (detail: old and new limits).
    QuotaDelete,
}

/// The events webhooks subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookEvent {
    /// Manifests pushed and tags restored.
    Push,
    /// Manifests and tags deleted.
    Delete,
    /// Signature verdicts reached or changed (`trust.verdict`).
    Trust,
    /// Vulnerability findings matched or changed (`scan.completed`).
    Scan,
}

impl Action {
    /// Every action, for parsing stored names.
    pub const ALL: [Action; 37] = [
        Action::ManifestPush,
        Action::ManifestDelete,
        Action::TagDelete,
        Action::TagRestore,
        Action::UserCreate,
        Action::ExternalSignIn,
        Action::UserPassword,
        Action::UserAdmin,
        Action::AccountDisabled,
        Action::AccountDelete,
        Action::OrgCreate,
        Action::MemberSet,
        Action::MemberRemove,
        Action::TeamCreate,
        Action::TeamDelete,
        Action::TeamMemberAdd,
        Action::TeamMemberRemove,
        Action::GrantSet,
        Action::GrantRemove,
        Action::Visibility,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::WebhookTest,
        Action::PolicyChange,
        Action::KeyRotate,
        Action::TrustVerdict,
        Action::KeyRetire,
        Action::ImmutableRuleAdd,
        Action::ImmutableRuleDelete,
        Action::ScanCompleted,
        Action::RetentionSet,
        Action::WebhookCreate,
        Action::WebhookUpdate,
        Action::WebhookDelete,
        Action::CveAllowlistSet,
        Action::QuotaSet,
        Action::QuotaDelete,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ManifestPush => "manifest.push",
            Action::ManifestDelete => "manifest.delete",
            Action::TagDelete => "tag.delete",
            Action::TagRestore => "tag.restore",
            Action::UserCreate => "user.create",
            Action::ExternalSignIn => "user.signin.external",
            Action::UserPassword => "user.password",
            Action::UserAdmin => "user.admin",
            Action::AccountDisabled => "account.disabled",
            Action::AccountDelete => "account.delete",
            Action::OrgCreate => "org.create",
            Action::MemberSet => "member.set",
            Action::MemberRemove => "member.remove",
            Action::TeamCreate => "team.create",
            Action::TeamDelete => "team.delete",
            Action::TeamMemberAdd => "team.member.add",
            Action::TeamMemberRemove => "team.member.remove",
            Action::GrantSet => "grant.set",
            Action::GrantRemove => "grant.remove",
            Action::Visibility => "repository.visibility",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::WebhookTest => "webhook.test",
            Action::PolicyChange => "policy.change",
            Action::KeyRotate => "key.rotate",
            Action::TrustVerdict => "trust.verdict",
            Action::KeyRetire => "key.retire",
            Action::ImmutableRuleAdd => "immutable.rule.add",
            Action::ImmutableRuleDelete => "immutable.rule.delete",
            Action::ScanCompleted => "scan.completed",
            Action::RetentionSet => "retention.set",
            Action::WebhookCreate => "webhook.create",
            Action::WebhookUpdate => "webhook.update",
            Action::WebhookDelete => "webhook.delete",
            Action::CveAllowlistSet => "cve.allowlist.set",
            Action::QuotaSet => "quota.set",
            Action::QuotaDelete => "quota.delete",
        }
    }

    /// The action a stored name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The webhook subscription that hears of it, if any.
    pub fn hook_event(self) -> Option<HookEvent> {
        match self {
            Action::ManifestPush | Action::TagRestore => Some(HookEvent::Push),
            Action::ManifestDelete | Action::TagDelete => Some(HookEvent::Delete),
            Action::TrustVerdict => Some(HookEvent::Trust),
            Action::ScanCompleted => Some(HookEvent::Scan),
            _ => None,
        }
    }

    /// The CloudEvents `type` of its webhook deliveries.
    pub fn cloud_event_type(self) -> &'static str {
        match self {
            Action::ManifestPush => "dev.berth.image.pushed",
            Action::ManifestDelete => "dev.berth.image.deleted",
            Action::TagDelete => "dev.berth.tag.deleted",
            Action::TagRestore => "dev.berth.tag.restored",
            Action::WebhookTest => "dev.berth.webhook.test",
            Action::TrustVerdict => "dev.berth.trust.verdict",
            Action::ScanCompleted => "dev.berth.scan.completed",
            // Account changes reach no webhook; a stable name all the same.
            _ => "dev.berth.audit",
        }
    }
}

/// One change, as the audit log records it and webhooks hear of it. Never carries a secret
/// (token values, passwords): `detail` says what changed, not to what secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub action: Action,
    /// Who did it, from where.
    pub origin: Origin,
    /// The repository changed, if any.
    pub repository: Option<String>,
    /// The tag, if one was pushed, deleted or restored.
    pub tag: Option<String>,
    /// The manifest's digest.
    pub digest: Option<String>,
    /// The manifest's media type.
    pub media_type: Option<String>,
    /// The manifest's size in bytes.
    pub size: Option<u64>,
    /// The account, team or token acted on (`alice`, `acme/devs`, `acme+ci`).
    pub target: Option<String>,
    /// Further facts as a JSON object (`{"admin": true}`).
    pub detail: Option<Value>,
    /// The webhooks to deliver it to, by name.
    pub deliver_to: Vec<String>,
    /// The subscription it is for: the hooks its repository's organization set for that
    /// event and scope hear of it too (read when it is recorded).
    pub hook: Option<HookEvent>,
}

impl Event {
    /// An event without repository, target or details yet.
    pub fn new(action: Action, origin: &Origin) -> Self {
        Self {
            action,
            origin: origin.clone(),
            repository: None,
            tag: None,
            digest: None,
            media_type: None,
            size: None,
            target: None,
            detail: None,
            deliver_to: Vec::new(),
            hook: None,
        }
    }

    /// The event about `repository`.
    pub fn on(mut self, repository: &str) -> Self {
        self.repository = Some(repository.to_owned());
        self
    }

    /// The event about `target` (an account, team or token).
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The event with further facts.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The CloudEvents 1.0 structured-mode JSON of its webhook deliveries
    /// (<https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md>): `id` is the
    /// event's, shared by every delivery and retry of it so receivers can drop duplicates.
    pub fn cloud_event(&self, id: &str, at_ms: i64) -> String {
        let subject = match (&self.repository, &self.tag, &self.digest) {
            (Some(r), Some(t), _) => Some(format!("{r}:{t}")),
            (Some(r), None, Some(d)) => Some(format!("{r}@{d}")),
            (Some(r), None, None) => Some(r.clone()),
            (None, ..) => self.target.clone(),
        };
        let mut data = json!({
            "action": self.action.as_str(),
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "actor": self.origin.actor,
        });
        if let Some(detail) = &self.detail {
            data["detail"] = detail.clone();
        }
        let mut event = json!({
            "specversion": "1.0",
            "id": id,
            "source": "berth",
            "type": self.action.cloud_event_type(),
            "time": rfc3339(at_ms),
            "datacontenttype": "application/json",
            "data": data,
        });
        if let Some(subject) = subject {
            event["subject"] = Value::String(subject);
        }
        event.to_string()
    }
}

/// Unix milliseconds as an RFC 3339 UTC time with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::auth::jwt::civil_time(ms.div_euclid(1000));
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("nope"), None);
    }

    #[test]
    fn a_push_becomes_a_cloud_event() {
        let mut e = Event::new(
            Action::ManifestPush,
            &Origin {
                actor: "alice".into(),
                address: Some("10.0.0.1".into()),
            },
        )
        .on("acme/app");
        e.tag = Some("v1".into());
        e.digest = Some("sha256:ab".into());
        e.size = Some(12);
        let v: Value = serde_json::from_str(&e.cloud_event("id-1", 1_700_000_000_123)).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "id-1");
        assert_eq!(v["type"], "dev.berth.image.pushed");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["subject"], "acme/app:v1");
        assert_eq!(v["data"]["repository"], "acme/app");
        assert_eq!(v["data"]["digest"], "sha256:ab");
        assert_eq!(v["data"]["size"], 12);
        assert_eq!(v["data"]["actor"], "alice");
        // The address is for the audit log, not for third parties.
        assert!(!v.to_string().contains("10.0.0.1"));
    }
}
