//! Webhooks: which webhooks hear of a change, and the worker that empties the outbox.
//!
//! A change queues one delivery per listening webhook in its own transaction (see
//! [`crate::meta::events`]); [`deliver_forever`] runs in `berth serve`, claims due deliveries
//! (on PostgreSQL each replica claims different ones), POSTs them, and records every attempt
//! with its response status, retrying with exponential backoff and jitter up to the webhook's
//! `max_attempts`. A request never waits for a receiver, and a restart loses nothing: a
//! delivery claimed by a process that died is taken again when its claim runs out, so
//! receivers get each event at least once (the CloudEvents `id` tells repeats apart).
//!
//! Each request carries `X-Berth-Signature-256: sha256=HEX`, the HMAC-SHA256 of the exact
//! body under the webhook's secret (as GitHub's `X-Hub-Signature-256`), and
//! `X-Berth-Timestamp` (Unix seconds of the attempt); the body's `time` is signed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};

use super::{Registry, RegistryError, RegistryResult};
use crate::config::{Secret, WebhookConfig, WebhooksConfig};
use crate::domain::RepoName;
use crate::meta::audit::{Attempt, AttemptOutcome, Delivery, DeliveryLog};
use crate::meta::events::{Action, Event, HookEvent, Origin};
use crate::meta::now_ms;

use super::webhook_targets::{GuardedResolver, TargetPolicy};

/// Deliveries claimed at once by one worker.
const BATCH: u32 = 16;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-berth-signature-256";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-berth-timestamp";

/// A configured webhook, its secret read.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its name.
    pub name: String,
    /// Where events go.
    pub url: String,
    /// The repository or namespace it covers (`""`: all).
    pub scope: String,
    /// What it hears of.
    pub events: Vec<HookEvent>,
    /// The signing key (empty: requests are not signed).
    secret: Secret,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// An organization's hook: it may reach only the targets `[webhooks]` allows them
    /// (see [`super::webhook_targets`]).
    restricted: bool,
}

impl Webhook {
    /// An organization's hook (`org:ID`), as the worker sends to it.
    pub(super) fn of_org(
        name: String,
        url: String,
        scope: String,
        events: Vec<HookEvent>,
        secret: String,
        hooks: &Webhooks,
    ) -> Self {
        Self {
            name,
            url,
            scope,
            events,
            secret: Secret(secret),
            timeout: hooks.org_timeout,
            max_attempts: hooks.org_max_attempts,
            restricted: true,
        }
    }
}

/// Why the webhooks cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    /// A secret file could not be read.
    #[error("webhook {name}: cannot read secret_file {path}")]
    SecretFile {
        /// The webhook.
        name: String,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret variable is not set.
    #[error("webhook {name}: environment variable {var} is not set")]
    SecretEnv {
        /// The webhook.
        name: String,
        /// The variable.
        var: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the webhook HTTP client")]
    Client(#[source] reqwest_tls::Error),
    /// A target rule is not a host, address or range.
    #[error("{0}")]
    Targets(String),
}

/// Every configured webhook, the retry schedule, and the HTTP client (organizations may add
/// webhooks at any time, so a server always has one).
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    hooks: Arc<[Webhook]>,
    retry_base: Duration,
    retry_max: Duration,
    /// For the configuration's hooks.
    client: Option<reqwest_tls::Client>,
    /// For organizations' hooks: resolves names through the target policy, and never through
    /// a proxy (which would reach what the policy refuses on berth's behalf).
    org_client: Option<reqwest_tls::Client>,
    targets: Arc<TargetPolicy>,
    org_timeout: Duration,
    org_max_attempts: u32,
}

impl Webhooks {
    /// The webhooks of `[webhooks]`, with their secrets read from files or the environment.
    pub fn new(config: &WebhooksConfig) -> Result<Self, WebhookSetupError> {
        let hooks = config
            .hook
            .iter()
            .map(|h| {
                Ok(Webhook {
                    name: h.name.clone(),
                    url: h.url.clone(),
                    scope: h.scope.clone(),
                    events: h.events.clone(),
                    secret: read_secret(h)?,
                    timeout: Duration::from_secs(h.timeout_secs.max(1)),
                    max_attempts: h.max_attempts.max(1),
                    restricted: false,
                })
            })
            .collect::<Result<Vec<_>, WebhookSetupError>>()?;
        let targets = Arc::new(
            TargetPolicy::new(&config.org_allow_targets, &config.org_deny_targets)
                .map_err(WebhookSetupError::Targets)?,
        );
        Ok(Self {
            client: Some(client(builder())?),
            org_client: Some(client(
                builder()
                    .no_proxy()
                    .dns_resolver(GuardedResolver::new(Arc::clone(&targets))),
            )?),
            targets,
            org_timeout: Duration::from_secs(config.org_timeout_secs.max(1)),
            org_max_attempts: config.org_max_attempts.max(1),
            hooks: hooks.into(),
            retry_base: Duration::from_millis(config.retry_base_ms),
            retry_max: Duration::from_millis(config.retry_max_ms.max(config.retry_base_ms)),
        })
    }

    /// Where organizations' hooks may send.
    pub fn targets(&self) -> &TargetPolicy {
        &self.targets
    }

    /// How long one attempt at an organization's hook may take.
    pub fn org_timeout(&self) -> Duration {
        self.org_timeout
    }

    /// Attempts at an organization's hook before a delivery is given up.
    pub fn org_max_attempts(&self) -> u32 {
        self.org_max_attempts
    }

    /// How long a worker claims a delivery from `now`: past the slowest attempt, so no other
    /// worker takes one still being sent; one whose worker died is taken after that.
    fn claim_until(&self, now: i64) -> i64 {
        let longest = self
            .hooks
            .iter()
            .map(|h| h.timeout)
            .chain([self.org_timeout])
            .max()
            .unwrap_or_default();
        now.saturating_add(millis(longest + Duration::from_secs(30)))
    }

    /// Whether no webhook is configured (organizations' own are in the database).
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// The names of the webhooks that hear of `event` in `repo`.
    pub fn listening(&self, repo: &RepoName, event: HookEvent) -> Vec<String> {
        self.hooks
            .iter()
            .filter(|h| {
                h.events.contains(&event) && (h.scope.is_empty() || repo.is_within(&h.scope))
            })
            .map(|h| h.name.clone())
            .collect()
    }

    /// A webhook by name.
    pub fn get(&self, name: &str) -> Option<&Webhook> {
        self.hooks.iter().find(|h| h.name == name)
    }

    /// Every webhook.
    pub fn all(&self) -> &[Webhook] {
        &self.hooks
    }

    /// How long to wait after failed attempt number `attempt` (1 for the first): the base
    /// doubled for each earlier failure, capped, times a random factor in [0.5, 1.5) so
    /// deliveries failing together do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.retry_max);
        let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65536.0;
        doubled.mul_f64(jitter)
    }
}

fn read_secret(h: &WebhookConfig) -> Result<Secret, WebhookSetupError> {
    if !h.secret_file.is_empty() {
        let text = std::fs::read_to_string(&h.secret_file).map_err(|source| {
            WebhookSetupError::SecretFile {
                name: h.name.clone(),
                path: h.secret_file.clone(),
                source,
            }
        })?;
        return Ok(Secret(text.trim_end().to_owned()));
    }
    if !h.secret_env.is_empty() {
        return std::env::var(&h.secret_env).map(Secret).map_err(|_| {
            WebhookSetupError::SecretEnv {
                name: h.name.clone(),
                var: h.secret_env.clone(),
            }
        });
    }
    Ok(h.secret.clone())
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` under `secret`, as `X-Berth-Signature-256` carries.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How the HTTP clients deliveries go through start: no redirects (a request only ever goes
/// to the hook's URL), TLS through rustls.
fn builder() -> reqwest_tls::ClientBuilder {
    reqwest_tls::Client::builder()
        .redirect(reqwest_tls::redirect::Policy::none())
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
}

fn client(builder: reqwest_tls::ClientBuilder) -> Result<reqwest_tls::Client, WebhookSetupError> {
    // Installing the ring provider twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    builder.build().map_err(WebhookSetupError::Client)
}

impl Registry {
    /// An event of `action` by `by` in `repo`, addressed to the webhooks that hear of `hook`.
    pub(super) fn event(
        &self,
        action: Action,
        by: &Origin,
        repo: &RepoName,
        hook: Option<HookEvent>,
    ) -> Event {
        let mut event = Event::new(action, by).on(repo.as_str());
        if let Some(hook) = hook {
            event.deliver_to = self.limits.webhooks.listening(repo, hook);
        }
        event.hook = hook;
        event
    }

    /// The configured webhooks.
    pub fn webhooks(&self) -> &Webhooks {
        &self.limits.webhooks
    }

    /// Sends the deliveries due now (only delivery `only`, if given); returns how the
    /// attempts ended.
    pub async fn deliver_due(&self, only: Option<i64>) -> RegistryResult<DeliveryTally> {
        let mut tally = DeliveryTally::default();
        if self.limits.webhooks.client.is_none() {
            return Ok(tally);
        }
        let now = now_ms();
        let lease = self.limits.webhooks.claim_until(now);
        let claimed = self.meta.claim_deliveries(now, lease, BATCH, only).await?;
        let attempts = claimed.into_iter().map(|d| self.attempt(d));
        for result in futures_util::future::join_all(attempts).await {
            match result? {
                AttemptOutcome::Delivered => tally.delivered += 1,
                AttemptOutcome::RetryAt(_) => tally.failed += 1,
                AttemptOutcome::GiveUp => tally.dropped += 1,
            }
        }
        Ok(tally)
    }

    /// Makes one attempt at a claimed delivery and records it; returns how it ended.
    async fn attempt(&self, d: Delivery) -> RegistryResult<AttemptOutcome> {
        let number = d.attempts.saturating_add(1);
        let at = now_ms();
        let started = Instant::now();
        let Some(hook) = self.hook_named(&d.hook).await? else {
            let attempt = Attempt {
                attempt: number,
                at,
                status: None,
                error: Some("the webhook is no longer configured".into()),
                duration_ms: 0,
            };
            self.meta
                .finish_attempt(d.id, &attempt, AttemptOutcome::GiveUp)
                .await?;
            return Ok(AttemptOutcome::GiveUp);
        };
        let hooks = &self.limits.webhooks;
        let client = if hook.restricted {
            &hooks.org_client
        } else {
            &hooks.client
        };
        let Some(client) = client else {
            // Not reached: both clients exist together, and without them `deliver_due`
            // claims nothing.
            return Ok(AttemptOutcome::RetryAt(now_ms()));
        };
        let refused = if hook.restricted {
            refused_literal(&hooks.targets, &hook.url)
        } else {
            None
        };
        let mut request = client
            .post(&hook.url)
            .timeout(hook.timeout)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header(TIMESTAMP_HEADER, (at / 1000).to_string())
            .header("x-berth-delivery", d.id.to_string())
            .header("x-berth-event", &d.event_type);
        if !hook.secret.0.is_empty() {
            request = request.header(
                SIGNATURE_HEADER,
                signature(hook.secret.0.as_bytes(), d.payload.as_bytes()),
            );
        }
        let sent = match refused {
            // An address in the URL itself is not resolved, so the resolver cannot judge it.
            Some(refusal) => Err(refusal),
            None => request
                .body(d.payload.clone())
                .send()
                .await
                .map_err(|e| crate::telemetry::error_chain(&e.without_url())),
        };
        let (status, error) = match sent {
            Ok(response) if response.status().is_success() => {
                (Some(response.status().as_u16()), None)
            }
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("the receiver answered {}", response.status())),
            ),
            Err(e) => (None, Some(e)),
        };
        let outcome = if error.is_none() {
            AttemptOutcome::Delivered
        } else if number >= hook.max_attempts {
            AttemptOutcome::GiveUp
        } else {
            AttemptOutcome::RetryAt(
                now_ms().saturating_add(millis(self.limits.webhooks.backoff(number))),
            )
        };
        if let Some(error) = &error {
            tracing::warn!(webhook = %hook.name, delivery = d.id, attempt = number, %error, "webhook delivery failed");
        }
        let attempt = Attempt {
            attempt: number,
            at,
            status,
            error,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        self.meta.finish_attempt(d.id, &attempt, outcome).await?;
        Ok(outcome)
    }

    /// Queues a test event for webhook `name` and makes its first attempt at once; returns the
    /// delivery with that attempt (a failed one is retried like any other).
    pub async fn test_webhook(&self, name: &str, by: &Origin) -> RegistryResult<DeliveryLog> {
        if self.limits.webhooks.get(name).is_none() {
            return Err(RegistryError::WebhookUnknown(name.to_owned()));
        }
        let mut event = Event::new(Action::WebhookTest, by).target(name);
        event.deliver_to = vec![name.to_owned()];
        self.send_test(name, event).await
    }

    /// Records the test `event` for webhook `name` and makes its first attempt.
    pub(super) async fn send_test(&self, name: &str, event: Event) -> RegistryResult<DeliveryLog> {
        // Claimed as it is queued, so a running server's worker leaves the first attempt to
        // this call.
        let claim = self.limits.webhooks.claim_until(now_ms());
        let ids = self.meta.record_event(&event, claim).await?;
        for id in &ids {
            self.deliver_due(Some(*id)).await?;
        }
        self.meta
            .deliveries(Some(name), 16)
            .await?
            .into_iter()
            .find(|d| ids.contains(&d.id))
            .ok_or_else(|| RegistryError::WebhookUnknown(name.to_owned()))
    }

    /// The newest `limit` deliveries of webhook `name` (or of all), with their attempts.
    pub async fn webhook_deliveries(
        &self,
        name: Option<&str>,
        limit: u32,
    ) -> RegistryResult<Vec<DeliveryLog>> {
        let log = self.meta.deliveries(name, limit.clamp(1, 1000)).await?;
        match name {
            Some(n) if log.is_empty() && self.limits.webhooks.get(n).is_none() => {
                Err(RegistryError::WebhookUnknown(n.to_owned()))
            }
            _ => Ok(log),
        }
    }
}

/// Why the address in `url`, if it names one, is refused by `targets`.
fn refused_literal(targets: &TargetPolicy, url: &str) -> Option<String> {
    // The URL parser has already turned every IPv4 spelling (0x7f.1, 2130706433) into
    // dotted decimal.
    let url = reqwest_tls::Url::parse(url).ok()?;
    targets
        .check_literal(url.host_str()?)?
        .err()
        .map(|r| format!("refused: {r}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How the attempts of a pass ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTally {
    /// Answered with a 2xx status.
    pub delivered: u32,
    /// Failed, to be retried.
    pub failed: u32,
    /// Failed for the last time: given up.
    pub dropped: u32,
}

impl DeliveryTally {
    fn attempted(&self) -> u32 {
        self.delivered + self.failed + self.dropped
    }
}

/// Sends due deliveries every `poll`, on every replica, telling `record` how each pass's
/// attempts ended; a pass that finds a full batch looks again at once.
pub async fn deliver_forever(
    registry: Registry,
    poll: Duration,
    record: impl Fn(&DeliveryTally) + Send + 'static,
) {
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match registry.deliver_due(None).await {
                Ok(tally) => {
                    record(&tally);
                    if tally.attempted() < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook deliveries failed; retried next interval");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks() -> Webhooks {
        let config: WebhooksConfig = toml::from_str(
            r#"
            retry_base_ms = 100
            retry_max_ms = 1000
            [[hook]]
            name = "all"
            url = "http://127.0.0.1:1/"
            [[hook]]
            name = "acme-push"
            url = "http://127.0.0.1:1/"
            scope = "acme"
            events = ["push"]
            "#,
        )
        .unwrap();
        Webhooks::new(&config).unwrap()
    }

    #[test]
    fn webhooks_hear_of_their_scope_and_events_only() {
        let h = hooks();
        let repo = |n: &str| RepoName::parse(n).unwrap();
        assert_eq!(
            h.listening(&repo("acme/app"), HookEvent::Push),
            ["all", "acme-push"]
        );
        assert_eq!(h.listening(&repo("acme/app"), HookEvent::Delete), ["all"]);
        assert_eq!(h.listening(&repo("acmecorp/app"), HookEvent::Push), ["all"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let h = hooks();
        for (attempt, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let wait = h.backoff(attempt).as_millis();
            assert!(
                wait >= base / 2 && wait < base * 3 / 2,
                "attempt {attempt}: {wait} ms"
            );
        }
    }

    #[test]
    fn signatures_match_the_hmac_sha256_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
