//! Webhooks organizations set for themselves: checked, created, changed and deleted (audited
//! with the old and the new hook, never the secret), tested, and their delivery log. They
//! hear of their organization's events beside the configuration's instance hooks; deliveries
//! go through the same outbox and worker (see [`super::webhooks`]), named `org:ID`.

use crate::domain::RepoName;
use crate::meta::audit::DeliveryLog;
use crate::meta::events::{Action, Event, HookEvent, Origin};
use crate::meta::org_webhooks::{HookSecret, HookSpec, OrgWebhook};

use super::immutable::RuleError;
use super::webhooks::Webhook;
use super::{Registry, RegistryResult};

/// Most webhooks one organization may have.
pub const MAX_HOOKS_PER_ORG: usize = 20;
/// Longest URL accepted.
const MAX_URL_CHARS: usize = 2048;
/// Longest secret accepted.
const MAX_SECRET_CHARS: usize = 512;

/// A hook as an owner asks for it.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    /// Where events go: an `http` or `https` URL.
    pub url: String,
    /// A repository or namespace of the organization; empty: all of it.
    pub scope: String,
    /// What it hears of; at least one.
    pub events: Vec<HookEvent>,
    /// A new signing secret; `None` keeps the current one (a new hook: none).
    pub secret: Option<String>,
}

/// Checks a hook for `org`: an http(s) URL with a host, a scope within the organization, at
/// least one event, a secret of at most 512 characters.
pub fn check_hook(org: &str, r: &HookRequest) -> Result<HookSpec, RuleError> {
    let invalid = |m: String| RuleError::Invalid(m);
    if r.url.chars().count() > MAX_URL_CHARS {
        return Err(invalid(format!(
            "the URL is longer than {MAX_URL_CHARS} characters"
        )));
    }
    let url = reqwest_tls::Url::parse(&r.url)
        .map_err(|e| invalid(format!("invalid URL {:?}: {e}", r.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!(
            "the URL must be http:// or https:// with a host, not {:?}",
            r.url
        )));
    }
    let scope = if r.scope.is_empty() { org } else { &r.scope };
    let scope = RepoName::parse(scope)
        .map_err(|e| invalid(format!("invalid repository {scope:?}: {e}")))?;
    if !scope.is_within(org) {
        return Err(invalid(format!(
            "repository {scope} is not in organization {org}"
        )));
    }
    if r.events.is_empty() {
        return Err(invalid(
            "choose at least one event: push, delete, trust, scan".into(),
        ));
    }
    let mut events = r.events.clone();
    events.sort_by_key(|e| crate::meta::org_webhooks::event_name(*e));
    events.dedup();
    if r.secret
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SECRET_CHARS)
    {
        return Err(invalid(format!(
            "the secret is longer than {MAX_SECRET_CHARS} characters"
        )));
    }
    Ok(HookSpec {
        url: url.to_string(),
        scope: scope.to_string(),
        events,
        secret: r.secret.clone().map(HookSecret),
    })
}

impl Registry {
    /// The webhooks organization `org` set (secrets not shown).
    pub async fn org_webhooks(&self, org: &str) -> RegistryResult<Vec<OrgWebhook>> {
        Ok(self.meta.org_webhooks(Some(org)).await?)
    }

    /// Every organization's webhooks (secrets not shown), for administrators.
    pub async fn all_org_webhooks(&self) -> RegistryResult<Vec<OrgWebhook>> {
        Ok(self.meta.org_webhooks(None).await?)
    }

    /// Adds a webhook to `org` (audited); it hears of the next event on every replica.
    pub async fn create_org_webhook(
        &self,
        org: &str,
        r: &HookRequest,
        by: &Origin,
    ) -> Result<OrgWebhook, RuleError> {
        let spec = self.check_hook_target(org, r).await?;
        if self.meta.org_webhooks(Some(org)).await?.len() >= MAX_HOOKS_PER_ORG {
            return Err(RuleError::Invalid(format!(
                "an organization may have at most {MAX_HOOKS_PER_ORG} webhooks"
            )));
        }
        let event = Event::new(Action::WebhookCreate, by).target(org);
        self.meta
            .create_org_webhook(org, &spec, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("organization {org} not found")))
    }

    /// Changes webhook `id` of `org` (audited; the secret is replaced only if one is given).
    pub async fn update_org_webhook(
        &self,
        org: &str,
        id: i64,
        r: &HookRequest,
        by: &Origin,
    ) -> Result<OrgWebhook, RuleError> {
        let spec = self.check_hook_target(org, r).await?;
        let event = Event::new(Action::WebhookUpdate, by).target(org);
        self.meta
            .update_org_webhook(org, id, &spec, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("webhook {id} of {org} not found")))
    }

    /// Deletes webhook `id` of `org` (audited).
    pub async fn delete_org_webhook(
        &self,
        org: &str,
        id: i64,
        by: &Origin,
    ) -> Result<OrgWebhook, RuleError> {
        let event = Event::new(Action::WebhookDelete, by).target(org);
        self.meta
            .delete_org_webhook(org, id, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("webhook {id} of {org} not found")))
    }

    /// [`check_hook`], then whether the URL's host may be reached (see
    /// [`super::webhook_targets`]); every attempt checks it again.
    async fn check_hook_target(&self, org: &str, r: &HookRequest) -> Result<HookSpec, RuleError> {
        let spec = check_hook(org, r)?;
        let host = reqwest_tls::Url::parse(&spec.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        self.limits
            .webhooks
            .targets()
            .vet(&host)
            .await
            .map_err(|refusal| {
                RuleError::Invalid(format!("webhook URL {:?} refused: {refusal}", spec.url))
            })?;
        Ok(spec)
    }

    /// Webhook `id` of `org`.
    async fn org_hook(&self, org: &str, id: i64) -> Result<OrgWebhook, RuleError> {
        self.meta
            .org_webhooks(Some(org))
            .await?
            .into_iter()
            .find(|h| h.id == id)
            .ok_or_else(|| RuleError::NotFound(format!("webhook {id} of {org} not found")))
    }

    /// Queues a test event for webhook `id` of `org` and makes its first attempt at once;
    /// the delivery with that attempt.
    pub async fn test_org_webhook(
        &self,
        org: &str,
        id: i64,
        by: &Origin,
    ) -> Result<DeliveryLog, RuleError> {
        let hook = self.org_hook(org, id).await?;
        let mut event = Event::new(Action::WebhookTest, by).target(org);
        event.deliver_to = vec![hook.name()];
        Ok(self.send_test(&hook.name(), event).await?)
    }

    /// The newest `limit` deliveries of webhook `id` of `org`, with their attempts.
    pub async fn org_webhook_deliveries(
        &self,
        org: &str,
        id: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryLog>, RuleError> {
        let hook = self.org_hook(org, id).await?;
        Ok(self
            .meta
            .deliveries(Some(&hook.name()), limit.clamp(1, 1000))
            .await?)
    }

    /// The hook a delivery is addressed to: a configured one, or an organization's (`org:ID`).
    pub(super) async fn hook_named(&self, name: &str) -> RegistryResult<Option<Webhook>> {
        if let Some(h) = self.limits.webhooks.get(name) {
            return Ok(Some(h.clone()));
        }
        let Some(id) = name
            .strip_prefix(crate::meta::org_webhooks::HOOK_PREFIX)
            .and_then(|id| id.parse::<i64>().ok())
        else {
            return Ok(None);
        };
        Ok(self.meta.org_webhook(id).await?.map(|h| {
            Webhook::of_org(
                h.name(),
                h.url,
                h.scope,
                h.events,
                h.secret.0,
                &self.limits.webhooks,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, scope: &str) -> HookRequest {
        HookRequest {
            url: url.into(),
            scope: scope.into(),
            events: vec![HookEvent::Push],
            secret: Some("s3cret".into()),
        }
    }

    #[test]
    fn hooks_need_an_http_url_a_scope_in_the_org_and_an_event() {
        let ok = check_hook("acme", &request("https://ci.example/hook", "")).expect("valid");
        assert_eq!(ok.scope, "acme");
        assert!(check_hook("acme", &request("http://127.0.0.1:9/x", "acme/app")).is_ok());
        for (r, needle) in [
            (request("ftp://example/x", ""), "http:// or https://"),
            (request("file:///etc/passwd", ""), "http:// or https://"),
            (request("not a url", ""), "invalid URL"),
            (
                request("https://x/", "beta/app"),
                "not in organization acme",
            ),
            (
                HookRequest {
                    events: vec![],
                    ..request("https://x/", "")
                },
                "at least one event",
            ),
        ] {
            match check_hook("acme", &r) {
                Err(RuleError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{r:?}: {other:?}"),
            }
        }
    }
}
