//! Configuration: built-in defaults, overridden by a TOML file, overridden by environment
//! variables `BERTH_<SECTION>_<KEY>` (then by command-line flags, in the binary).
//!
//! Every key is documented with its default in `config.example.toml`, which a test parses.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file, or the settings merged into it, do not form a valid configuration.
    #[error("invalid configuration{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Invalid {
        /// The file, when the error is in it.
        path: Option<PathBuf>,
        /// The parser's explanation (names the key).
        message: String,
    },
    /// An environment variable names no setting or has a value of the wrong type.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP server and registry limits.
    pub server: ServerConfig,
    /// The metadata database.
    pub database: DatabaseConfig,
    /// Blob storage.
    pub storage: StorageConfig,
    /// HTTPS served by berth itself.
    pub tls: TlsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Accounts and Docker token authentication.
    pub auth: AuthConfig,
    /// Garbage collection.
    pub gc: GcConfig,
    /// Scrubbing stored content.
    pub scrub: ScrubConfig,
    /// Retention policies.
    pub retention: RetentionConfig,
    /// Hub policies: immutable tags, quotas.
    pub policies: PoliciesConfig,
    /// Request rate limits.
    pub ratelimit: RateLimitConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Webhooks.
    pub webhooks: WebhooksConfig,
    /// Pull-through caches of upstream registries.
    pub proxy: ProxyConfig,
    /// Image signature policies.
    pub trust: TrustConfig,
    /// Vulnerability scanning: the advisory database.
    pub scan: ScanConfig,
}

/// `[scan]`: vulnerability scanning: the advisory database's sources, and the inventory of
/// pushed images (`serve`'s scan workers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// What `berth vulndb update` imports without `--from`: OSV `all.zip` URLs, or paths of
    /// such archives, of directories of records or of record files.
    pub vulndb_sources: Vec<String>,
    /// `serve` imports each of `vulndb_sources` again once its last check is this many
    /// seconds old (0: only `berth vulndb update` imports).
    pub vulndb_refresh_secs: u64,
    /// Inventory every image manifest pushed from now on, in the background, and attach its
    /// SBOM as a referrer.
    pub enabled: bool,
    /// Scan workers per `serve` process (each inventories one image at a time).
    pub workers: u32,
    /// The SBOM format berth attaches.
    pub sbom_format: SbomFormat,
    /// How long a worker holds a job before another replica may take it over (renewed while
    /// the worker is alive).
    pub lease_secs: u64,
    /// Claims of one job before it is given up as failed.
    pub max_attempts: u32,
    /// How often an idle worker looks for jobs.
    pub poll_interval_ms: u64,
    /// The longest one image's inventory may take; the walk stops there and says so.
    pub timeout_secs: u64,
    /// Uncompressed layer bytes one inventory reads at most (a decompression bomb stops
    /// here), in MiB.
    pub max_unpacked_mib: u64,
    /// Vulnerability policies (`[[scan.policy]]`): CVE allowlists with expiry and the
    /// `prevent_vulnerable` threshold per namespace or repository; the most specific scope
    /// covering a repository applies.
    pub policy: Vec<berth_scan::policy::PolicyConfig>,
}

impl ScanConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.policy.iter().enumerate() {
            crate::domain::RepoName::parse(rule.scope.trim_end_matches('/'))
                .map_err(|e| format!("scan.policy[{i}]: invalid scope {:?}: {e}", rule.scope))?;
        }
        berth_scan::policy::Policies::load(&self.policy)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            vulndb_sources: Vec::new(),
            vulndb_refresh_secs: 0,
            enabled: false,
            workers: 1,
            sbom_format: SbomFormat::Cyclonedx,
            lease_secs: 300,
            max_attempts: 3,
            poll_interval_ms: 1000,
            timeout_secs: 1800,
            max_unpacked_mib: 256 * 1024,
            policy: Vec::new(),
        }
    }
}

/// `[scan] sbom_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `[trust]` and its `[[trust.policy]]` tables: which keys must sign the images of a namespace
/// or repository, and whether unsigned pulls are refused (`enforce`) or only shown (`audit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// The policies; the most specific scope covering a repository applies.
    pub policy: Vec<berth_trust::PolicyConfig>,
}

impl TrustConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.policy.iter().enumerate() {
            crate::domain::RepoName::parse(rule.scope.trim_end_matches('/'))
                .map_err(|e| format!("trust.policy[{i}]: invalid scope {:?}: {e}", rule.scope))?;
        }
        Ok(())
    }
}

/// `[proxy]` and its `[[proxy.upstream]]` entries: namespaces that mirror another registry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// The mirrored registries, one local namespace each.
    pub upstream: Vec<UpstreamConfig>,
}

/// One pull-through cache: pulls of `namespace/REPO` that miss locally fetch `REPO` from
/// the registry at `url`, store it and serve it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The local namespace (first path component) the upstream's repositories appear under.
    pub namespace: String,
    /// The upstream registry's base URL (`https://host[:port][/prefix]`; `/v2/` is added).
    pub url: String,
    /// User name for the upstream (HTTP Basic, or at its token endpoint); empty: anonymous.
    #[serde(default)]
    pub username: String,
    /// That user's password or access token.
    #[serde(default)]
    pub password: Secret,
    /// A file holding the password (its first line), instead of `password`.
    #[serde(default)]
    pub password_file: String,
    /// Upstream repository names that may be mirrored (`*`, `?`, `[...]` within a path
    /// component, `**` across components); empty: every repository.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Seconds a tag fetched or checked upstream is served without asking the upstream again.
    #[serde(default = "default_manifest_ttl_secs")]
    pub manifest_ttl_secs: u64,
    /// Seconds to connect, to receive a manifest, or to wait for the next bytes of a blob.
    #[serde(default = "default_upstream_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_manifest_ttl_secs() -> u64 {
    300
}

fn default_upstream_timeout_secs() -> u64 {
    30
}

impl ProxyConfig {
    fn validate(&self) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for (i, u) in self.upstream.iter().enumerate() {
            let which = format!("proxy.upstream[{i}] (namespace {:?})", u.namespace);
            let ns = crate::domain::RepoName::parse(&u.namespace)
                .map_err(|e| format!("{which}: invalid namespace: {e}"))?;
            if ns.as_str().contains('/') {
                return Err(format!(
                    "{which}: the namespace must be one path component, without '/'"
                ));
            }
            if seen.contains(&ns.as_str()) {
                return Err(format!(
                    "{which}: another upstream already uses this namespace"
                ));
            }
            seen.push(&u.namespace);
            crate::upstream::base_url(&u.url).map_err(|e| format!("{which}: url: {e}"))?;
            let has_password = !u.password.0.is_empty() || !u.password_file.is_empty();
            if !u.password.0.is_empty() && !u.password_file.is_empty() {
                return Err(format!("{which}: set password or password_file, not both"));
            }
            if u.username.is_empty() == has_password {
                return Err(format!(
                    "{which}: username and a password (or password_file) go together"
                ));
            }
            for pattern in &u.repositories {
                glob::Pattern::new(pattern)
                    .map_err(|e| format!("{which}: invalid pattern {pattern:?}: {e}"))?;
            }
            if u.timeout_secs == 0 {
                return Err(format!("{which}: timeout_secs must be at least 1"));
            }
        }
        Ok(())
    }
}

/// `[audit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Days audit entries (and finished webhook deliveries) are kept; 0 keeps them forever.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

/// `[webhooks]` and its `[[webhooks.hook]]` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Milliseconds between looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Milliseconds before the first retry; each further retry waits twice as long (with
    /// jitter), up to `retry_max_ms`.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Host names, addresses and CIDR ranges organizations' webhooks may reach although they
    /// are loopback, private, link-local or otherwise special-purpose (refused by default).
    pub org_allow_targets: Vec<String>,
    /// Host names, addresses and CIDR ranges organizations' webhooks may never reach, even
    /// public ones; they win over `org_allow_targets`.
    pub org_deny_targets: Vec<String>,
    /// Seconds one attempt at an organization's webhook may take.
    pub org_timeout_secs: u64,
    /// Attempts at an organization's webhook before a delivery is given up.
    pub org_max_attempts: u32,
    /// The webhooks.
    pub hook: Vec<WebhookConfig>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            retry_base_ms: 10_000,
            retry_max_ms: 3_600_000,
            org_allow_targets: Vec::new(),
            org_deny_targets: Vec::new(),
            org_timeout_secs: 10,
            org_max_attempts: 6,
            hook: Vec::new(),
        }
    }
}

/// One webhook: events of the repositories in `scope` are POSTed to `url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// A unique name (`berth webhook test NAME`).
    pub name: String,
    /// Where to POST the events (http or https).
    pub url: String,
    /// A repository or namespace (that name and everything under `scope/`); empty: all.
    pub scope: String,
    /// The events to send: `push` (manifests pushed, tags restored) and `delete`.
    pub events: Vec<crate::meta::events::HookEvent>,
    /// The HMAC-SHA256 key of the `X-Berth-Signature-256` header.
    pub secret: Secret,
    /// A file holding the key instead (trailing whitespace ignored).
    pub secret_file: String,
    /// An environment variable holding the key instead.
    pub secret_env: String,
    /// Seconds an attempt may take.
    pub timeout_secs: u64,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        use crate::meta::events::HookEvent;
        Self {
            name: String::new(),
            url: String::new(),
            scope: String::new(),
            events: vec![HookEvent::Push, HookEvent::Delete],
            secret: Secret::default(),
            secret_file: String::new(),
            secret_env: String::new(),
            timeout_secs: 10,
            max_attempts: 8,
        }
    }
}

impl WebhooksConfig {
    fn validate(&self) -> Result<(), String> {
        crate::service::webhook_targets::TargetPolicy::new(
            &self.org_allow_targets,
            &self.org_deny_targets,
        )?;
        if !(1..=300).contains(&self.org_timeout_secs) {
            return Err("webhooks.org_timeout_secs must be between 1 and 300".into());
        }
        if !(1..=50).contains(&self.org_max_attempts) {
            return Err("webhooks.org_max_attempts must be between 1 and 50".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in self.hook.iter().enumerate() {
            let which = format!("webhooks.hook[{i}] (name {:?})", h.name);
            crate::auth::AccountName::parse(&h.name)
                .map_err(|e| format!("{which}: invalid name: {e}"))?;
            if !names.insert(h.name.as_str()) {
                return Err(format!("{which}: another webhook has this name"));
            }
            let uri: http::Uri = h
                .url
                .parse()
                .map_err(|e| format!("{which}: invalid url {:?}: {e}", h.url))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(format!(
                    "{which}: url must be http://HOST/... or https://HOST/..."
                ));
            }
            if !h.scope.is_empty() {
                crate::domain::RepoName::parse(&h.scope)
                    .map_err(|e| format!("{which}: invalid scope: {e}"))?;
            }
            if h.events.is_empty() {
                return Err(format!("{which}: events is empty"));
            }
            let secrets = [
                !h.secret.0.is_empty(),
                !h.secret_file.is_empty(),
                !h.secret_env.is_empty(),
            ];
            if secrets.iter().filter(|s| **s).count() > 1 {
                return Err(format!(
                    "{which}: set one of secret, secret_file and secret_env"
                ));
            }
            if h.max_attempts == 0 || h.timeout_secs == 0 {
                return Err(format!(
                    "{which}: max_attempts and timeout_secs must be at least 1"
                ));
            }
        }
        Ok(())
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// A separate address to serve `/metrics` on (e.g. `127.0.0.1:9090`); empty means the
    /// main listener.
    pub listen: String,
    /// A bearer token scrapers must send (`Authorization: Bearer TOKEN`); empty means none.
    pub token: Secret,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: String::new(),
            token: Secret::default(),
        }
    }
}

impl MetricsConfig {
    /// The separate listen address, if one is set.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        self.listen
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("metrics.listen {:?}: {e}", self.listen))
    }
}

/// `[ratelimit]`: requests a minute per client address and per account, for each class of
/// request; 0 is no limit. A key may use a whole minute's budget at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Reads of the registry API, per client address.
    pub pull_per_address: u32,
    /// Reads of the registry API, per account.
    pub pull_per_account: u32,
    /// Writes (uploads, manifest pushes, deletes), per client address.
    pub push_per_address: u32,
    /// Writes, per account.
    pub push_per_account: u32,
    /// Token requests, per client address.
    pub token_per_address: u32,
    /// Token requests, per account.
    pub token_per_account: u32,
}

/// `[policies]`: its `[[policies.immutable]]` and `[[policies.quota]]` rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
    /// Tags that, once pushed, may not be moved or deleted.
    pub immutable: Vec<ImmutableRule>,
    /// Storage quotas.
    pub quota: Vec<QuotaRule>,
}

/// A quota: what the repositories of `scope` may hold together. Every rule whose scope
/// covers a repository applies to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRule {
    /// A repository, or a namespace: that name and every repository under `scope/`.
    pub scope: String,
    /// Blob bytes (layers and configs), each blob counted once however many repositories of
    /// the scope hold it: a number, or a string with a unit (`"500MB"`, `"20GiB"`).
    #[serde(default, deserialize_with = "size::optional")]
    pub max_bytes: Option<u64>,
    /// Repositories.
    pub max_repositories: Option<u64>,
}

/// An immutable-tags rule: in the repositories of `scope`, tags matching `tags` cannot be
/// pushed over (to another manifest), deleted or restored to another manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutableRule {
    /// A repository, or a namespace: that name and every repository under `scope/`.
    pub scope: String,
    /// Tag patterns (`*`, `?`, `[...]`).
    pub tags: Vec<String>,
}

impl PoliciesConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.immutable.iter().enumerate() {
            let which = format!("policies.immutable[{i}] (scope {:?})", rule.scope);
            crate::domain::RepoName::parse(&rule.scope)
                .map_err(|e| format!("{which}: invalid scope: {e}"))?;
            if rule.tags.is_empty() {
                return Err(format!("{which}: tags is empty"));
            }
            for pattern in &rule.tags {
                glob::Pattern::new(pattern)
                    .map_err(|e| format!("{which}: invalid pattern {pattern:?}: {e}"))?;
            }
        }
        for (i, rule) in self.quota.iter().enumerate() {
            let which = format!("policies.quota[{i}] (scope {:?})", rule.scope);
            crate::domain::RepoName::parse(&rule.scope)
                .map_err(|e| format!("{which}: invalid scope: {e}"))?;
            if rule.max_bytes.is_none() && rule.max_repositories.is_none() {
                return Err(format!(
                    "{which}: sets neither max_bytes nor max_repositories"
                ));
            }
        }
        Ok(())
    }
}

/// Sizes written as a number of bytes or with a unit.
pub(crate) mod size {
    use serde::{Deserialize, Deserializer};

    /// Decimal (`kB`, `MB`, `GB`, `TB`, `PB`, `EB`) and binary (`KiB`, `MiB`, `GiB`, `TiB`,
    /// `PiB`, `EiB`) units.
    const UNITS: [(&str, u64); 13] = [
        ("B", 1),
        ("kB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("TB", 1_000_000_000_000),
        ("PB", 1_000_000_000_000_000),
        ("EB", 1_000_000_000_000_000_000),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
        ("PiB", 1 << 50),
        ("EiB", 1 << 60),
    ];

    /// Parses `"20GiB"`, `"1.5 GB"`, `"123"`.
    pub fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = (&text[..split], text[split..].trim());
        let factor = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    format!(
                        "unknown size unit {unit:?} (use B, kB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB or EiB)"
                    )
                })?
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid size {text:?}"))?;
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("size {text:?} is out of range"));
        }
        Ok(bytes.round() as u64)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }

    /// An optional size.
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Number(n)) => Ok(Some(n)),
            Some(Raw::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sizes_with_and_without_units() {
            assert_eq!(super::parse("123"), Ok(123));
            assert_eq!(super::parse("20GiB"), Ok(20 << 30));
            assert_eq!(super::parse("1.5 MB"), Ok(1_500_000));
            assert_eq!(super::parse("2kB"), Ok(2000));
            assert!(super::parse("2 parsecs").is_err());
            assert!(super::parse("GiB").is_err());
            assert!(super::parse("").is_err());
        }
    }
}

/// `[retention]` and its `[[retention.policy]]` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Apply the policies inside `serve` every `interval_secs`.
    pub enabled: bool,
    /// Seconds between scheduled runs.
    pub interval_secs: u64,
    /// Seconds a server gathers the tags pulled before recording them (pull times are
    /// accurate to this).
    pub pulls_flush_secs: u64,
    /// The policies; a repository follows the one with the longest matching scope.
    pub policy: Vec<RetentionPolicy>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_secs: 86_400,
            pulls_flush_secs: 30,
            policy: Vec::new(),
        }
    }
}

/// One retention policy: the tags of the repositories in `scope` that no `keep_` rule keeps
/// are deleted (and stay restorable for `gc.tag_history_secs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// A repository, or a namespace: that name and every repository under `scope/`.
    pub scope: String,
    /// Keep each repository's N most recently pushed tags.
    pub keep_newest: Option<u32>,
    /// Keep tags pushed within this many days.
    pub keep_pushed_within_days: Option<u64>,
    /// Keep tags pulled within this many days.
    pub keep_pulled_within_days: Option<u64>,
    /// Always keep tags matching these patterns (`*`, `?`, `[...]`, like shell globs).
    #[serde(default)]
    pub keep_tags: Vec<String>,
}

impl RetentionConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, p) in self.policy.iter().enumerate() {
            let which = format!("retention.policy[{i}] (scope {:?})", p.scope);
            crate::domain::RepoName::parse(&p.scope)
                .map_err(|e| format!("{which}: invalid scope: {e}"))?;
            for pattern in &p.keep_tags {
                glob::Pattern::new(pattern)
                    .map_err(|e| format!("{which}: invalid pattern {pattern:?}: {e}"))?;
            }
            if p.keep_newest.is_none()
                && p.keep_pushed_within_days.is_none()
                && p.keep_pulled_within_days.is_none()
                && p.keep_tags.is_empty()
            {
                return Err(format!(
                    "{which}: no keep_ rule; a policy that keeps nothing would delete every tag"
                ));
            }
        }
        Ok(())
    }
}

/// `[scrub]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrubConfig {
    /// Run scrub passes inside `serve` (they resume one round wherever the last pass, on
    /// any replica, stopped).
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_secs: u64,
    /// Blobs and manifests checked per pass.
    pub items_per_pass: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_secs: 600,
            items_per_pass: 1000,
        }
    }
}

/// `[gc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Run garbage-collection passes inside `serve` (every replica may; they share the work).
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_secs: u64,
    /// Seconds a change must be old before what it left unreferenced is removed: the time a
    /// push has to finish (uploaded layers count as garbage until a manifest refers to them).
    pub review_delay_secs: u64,
    /// Remove manifests no tag, index or subject keeps (off: untagged manifests stay and are
    /// still pulled by digest).
    pub collect_untagged: bool,
    /// Remove referrers (signatures, SBOMs) once their subject is gone.
    pub collect_orphan_referrers: bool,
    /// Seconds a moved or deleted tag can be restored: its history is kept this long, and
    /// the manifest it pointed at with it.
    pub tag_history_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3600,
            review_delay_secs: 24 * 60 * 60,
            collect_untagged: false,
            collect_orphan_referrers: true,
            tag_history_secs: 14 * 24 * 60 * 60,
        }
    }
}

impl GcConfig {
    /// How a pass runs under this configuration.
    pub fn options(&self, dry_run: bool) -> crate::service::gc::GcOptions {
        crate::service::gc::GcOptions {
            review_delay: std::time::Duration::from_secs(self.review_delay_secs),
            tag_history: std::time::Duration::from_secs(self.tag_history_secs),
            collect_untagged: self.collect_untagged,
            collect_orphan_referrers: self.collect_orphan_referrers,
            dry_run,
            requeue: false,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for everything stored on embedded defaults (database and blobs).
    pub data_dir: PathBuf,
    /// Largest manifest accepted, in bytes; larger pushes get `413`.
    pub max_manifest_bytes: u64,
    /// Descriptors per page of the referrers API.
    pub referrers_page_size: u32,
    /// Seconds a request may hold an upload session without renewing its claim.
    pub upload_lease_secs: u64,
    /// Seconds a request body may stall (no bytes arriving) before the request is aborted.
    pub body_idle_timeout_secs: u64,
    /// Seconds to keep serving after SIGINT/SIGTERM while reporting not-ready, so load
    /// balancers stop routing here before the listener closes.
    pub shutdown_drain_secs: u64,
    /// Seconds to let requests in flight finish after the drain before exiting anyway.
    pub shutdown_timeout_secs: u64,
    /// Seconds an upload session may stay idle before it expires and its bytes are removed.
    pub upload_ttl_secs: u64,
    /// Seconds between sweeps for expired upload sessions.
    pub upload_cleanup_interval_secs: u64,
    /// Take the client's scheme and host from `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// (set this only behind a reverse proxy that overwrites them).
    pub trust_forwarded_headers: bool,
    /// Serve on a non-loopback address with authentication off, letting anyone who reaches
    /// the port push and delete. Off by default: berth refuses to start that way.
    pub allow_unauthenticated_network: bool,
    /// Connections served at once; more are refused right after accept. Lowered at start to
    /// what the open-file limit allows ([`crate::connections::fd_budget`]).
    pub max_connections: u32,
    /// Connections served at once from one client address (IPv6: one /64 network); 0 is no
    /// per-address limit (behind a reverse proxy every connection comes from the proxy).
    pub max_connections_per_address: u32,
    /// Seconds a client has to send a complete request head: every request's on HTTP/1.1
    /// (also the wait for the next request on a kept-alive connection), the first request's
    /// on HTTP/2.
    pub header_read_timeout_secs: u64,
    /// Seconds an HTTP/2 connection may stay open with no request in progress.
    pub idle_timeout_secs: u64,
    /// Requests one HTTP/2 connection may have in progress at once.
    pub http2_max_concurrent_streams: u32,
    /// Seconds between HTTP/2 pings when the client sends nothing; a ping unanswered for as
    /// long closes the connection. 0 sends no pings.
    pub http2_keepalive_interval_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./berth-data"),
            max_manifest_bytes: 4 * 1024 * 1024,
            referrers_page_size: 1000,
            upload_lease_secs: 60,
            body_idle_timeout_secs: 60,
            shutdown_drain_secs: 3,
            shutdown_timeout_secs: 30,
            upload_ttl_secs: 24 * 60 * 60,
            upload_cleanup_interval_secs: 600,
            trust_forwarded_headers: false,
            allow_unauthenticated_network: false,
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            http2_max_concurrent_streams: 100,
            http2_keepalive_interval_secs: 20,
        }
    }
}

impl ServerConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("server.max_connections must be at least 1".into());
        }
        if self.header_read_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return Err(
                "server.header_read_timeout_secs and server.idle_timeout_secs must be at least 1"
                    .into(),
            );
        }
        if self.http2_max_concurrent_streams == 0 {
            return Err("server.http2_max_concurrent_streams must be at least 1".into());
        }
        Ok(())
    }
}

/// `[database]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; empty means
    /// `sqlite://<data_dir>/berth.db`.
    pub url: String,
    /// Connections to the database (SQLite: read connections, plus one writer).
    pub max_connections: u32,
    /// Apply pending schema migrations at start (`berth migrate` applies them explicitly).
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            auto_migrate: true,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("auto_migrate", &self.auto_migrate)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host` URL, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Which blob storage backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A local directory.
    Filesystem,
    /// Amazon S3 or an S3-compatible store (MinIO, Ceph, R2, moto...).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// A secret setting: shown as `***` in debug output and logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The backend.
    pub backend: StorageBackend,
    /// Directory of the filesystem backend; empty means `<data_dir>/blobs`.
    pub path: String,
    /// Bucket (S3, GCS) or container (Azure) of the cloud backends.
    pub bucket: String,
    /// S3 region; empty means `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: String,
    /// S3 endpoint URL for S3-compatible stores; empty means AWS.
    pub endpoint: String,
    /// S3 path-style requests (`endpoint/bucket/key`) instead of virtual-hosted style.
    pub path_style: bool,
    /// Allow plain HTTP to the endpoint (for stores on a private network or loopback).
    pub allow_http: bool,
    /// S3 access key id; empty means the standard AWS environment and credential chain.
    pub access_key_id: String,
    /// S3 secret access key; empty means the standard AWS environment and credential chain.
    pub secret_access_key: Secret,
    /// Size of multipart-upload parts sent to cloud stores, MiB (S3 needs at least 5).
    pub part_size_mib: u64,
    /// Answer blob downloads with redirects to short-lived presigned URLs (cloud backends).
    pub redirect: bool,
    /// Lifetime of presigned URLs, seconds.
    pub redirect_ttl_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Filesystem,
            path: String::new(),
            bucket: String::new(),
            region: String::new(),
            endpoint: String::new(),
            path_style: true,
            allow_http: false,
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            part_size_mib: 16,
            redirect: false,
            redirect_ttl_secs: 300,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require authentication: accounts, teams and tokens decide who may pull, push and
    /// delete; clients log in through the Docker token flow or HTTP Basic.
    pub enabled: bool,
    /// The service name in challenges and the audience of registry tokens.
    pub service: String,
    /// The issuer of registry tokens.
    pub issuer: String,
    /// Absolute URL of the token endpoint in challenges; empty means `/token` on the URL the
    /// client used.
    pub realm: String,
    /// Lifetime of registry tokens, seconds.
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (what `docker login` keeps), seconds.
    pub refresh_token_ttl_secs: u64,
    /// PEM file with the ECDSA P-256 (PKCS#8) key that signs tokens; empty means a key
    /// generated at first start and kept in the database, shared by every replica.
    pub signing_key_file: String,
    /// Seconds between re-reads of the signing keys in the database, so a rotation by
    /// `berth admin key rotate` reaches every replica without a restart.
    pub key_reload_secs: u64,
    /// Seconds after a rotation before the new key signs: every replica and every reader of
    /// the JWKS must have it by then. At least twice `key_reload_secs`.
    pub key_activation_delay_secs: u64,
    /// Failed password logins allowed per account from one client address before that
    /// address is throttled for that account.
    pub login_free_failures: u32,
    /// Failed password logins allowed from one client address (an IPv6 /64), over every
    /// account, before the address is throttled.
    pub login_address_free_failures: u32,
    /// Failed password logins allowed per account from every address together before new
    /// addresses are throttled for it (addresses it signed in from stay exempt).
    pub login_account_free_failures: u32,
    /// Seconds over which failed logins count.
    pub login_failure_window_secs: u64,
    /// Seconds of the first lockout after too many failures; doubles with each further one.
    pub login_lockout_secs: u64,
    /// Lifetime of a web UI sign-in, seconds.
    pub session_ttl_secs: u64,
    /// Who may sign in with a password berth keeps: `everyone`, or `admins` (everyone else
    /// signs in through the identity provider or with an access token).
    pub local_passwords: crate::service::accounts::LocalPasswords,
    /// `[auth.oidc]`: single sign-on through an OpenID Connect provider; absent means none.
    pub oidc: Option<OidcConfig>,
    /// `[auth.ldap]`: passwords checked by an LDAP directory or Active Directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<crate::ldap::LdapConfig>,
}

/// `[auth.oidc]`: the web UI signs people in through an OpenID Connect provider
/// (authorization code flow with PKCE); see [`crate::auth::oidc`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (prefer `client_secret_file` or `BERTH_AUTH_OIDC_CLIENT_SECRET`);
    /// empty means a public client (PKCE only).
    pub client_secret: String,
    /// A file holding the client secret (trailing whitespace ignored).
    pub client_secret_file: String,
    /// The button's label: "Sign in with <display_name>".
    pub display_name: String,
    /// Scopes to ask for; empty means `openid profile email` (and `groups` when mappings are
    /// configured).
    pub scopes: Vec<String>,
    /// The claim whose value becomes the berth user name.
    pub username_claim: String,
    /// What is done to that claim's value before berth's name rules check it (e-mail style
    /// names: `localpart` keeps what comes before the `@`).
    pub username_transform: crate::oidc::UsernameTransform,
    /// The claim listing the person's groups.
    pub groups_claim: String,
    /// The callback URL registered with the provider; empty means
    /// `<the URL the browser used>/ui/login/oidc/callback`.
    pub redirect_url: String,
    /// PEM file of extra CA certificates to trust for the issuer (private issuers).
    pub ca_file: String,
    /// Signing out of berth also signs out at the provider (RP-initiated logout through the
    /// discovery document's `end_session_endpoint`).
    pub logout: bool,
    /// Seconds of clock difference tolerated when checking an ID token's times.
    pub clock_skew_secs: u64,
    /// Sign-ins in progress (started, not yet back from the provider) kept at most; past it
    /// a new sign-in is refused until some finish or expire (after ten minutes).
    pub max_pending_logins: u64,
    /// Of those, kept at most from one client address (IPv6: one /64), so that one client
    /// cannot use up everyone's room. Behind a reverse proxy, set
    /// `server.trust_forwarded_headers`, or every sign-in comes from the proxy's address.
    pub max_pending_logins_per_address: u64,
    /// `[[auth.oidc.group]]`: provider groups to organizations, teams, roles and
    /// administrators, synced at every sign-in.
    pub group: Vec<crate::service::identity::GroupMapping>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            client_secret_file: String::new(),
            display_name: "single sign-on".into(),
            scopes: Vec::new(),
            username_claim: "preferred_username".into(),
            username_transform: crate::oidc::UsernameTransform::None,
            groups_claim: "groups".into(),
            redirect_url: String::new(),
            ca_file: String::new(),
            logout: false,
            clock_skew_secs: 60,
            max_pending_logins: 10_000,
            max_pending_logins_per_address: 64,
            group: Vec::new(),
        }
    }
}

/// The environment variable that may carry the OIDC client secret.
pub const OIDC_CLIENT_SECRET_ENV: &str = "BERTH_AUTH_OIDC_CLIENT_SECRET";

impl OidcConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.issuer.starts_with("https://") && !self.issuer.starts_with("http://") {
            return Err(format!(
                "[auth.oidc] issuer must be an http(s) URL, got {:?}",
                self.issuer
            ));
        }
        if self.client_id.is_empty() {
            return Err("[auth.oidc] client_id is required".into());
        }
        if !self.client_secret.is_empty() && !self.client_secret_file.is_empty() {
            return Err("[auth.oidc] set client_secret or client_secret_file, not both".into());
        }
        if self.username_claim.is_empty() || self.groups_claim.is_empty() {
            return Err("[auth.oidc] username_claim and groups_claim cannot be empty".into());
        }
        if self.clock_skew_secs > 600 {
            return Err("[auth.oidc] clock_skew_secs is at most 600".into());
        }
        if self.max_pending_logins == 0 || self.max_pending_logins_per_address == 0 {
            return Err(
                "[auth.oidc] max_pending_logins and max_pending_logins_per_address must be at least 1"
                    .into(),
            );
        }
        self.group
            .iter()
            .try_for_each(|g| g.validate().map_err(|e| format!("[[auth.oidc.group]] {e}")))
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret never reaches logs.
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &if self.client_secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("display_name", &self.display_name)
            .field("scopes", &self.scopes)
            .field("username_claim", &self.username_claim)
            .field("username_transform", &self.username_transform)
            .field("groups_claim", &self.groups_claim)
            .field("redirect_url", &self.redirect_url)
            .field("ca_file", &self.ca_file)
            .field("logout", &self.logout)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("max_pending_logins", &self.max_pending_logins)
            .field(
                "max_pending_logins_per_address",
                &self.max_pending_logins_per_address,
            )
            .field("group", &self.group)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            service: "berth".into(),
            issuer: "berth".into(),
            realm: String::new(),
            token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            signing_key_file: String::new(),
            key_reload_secs: 10,
            key_activation_delay_secs: 60,
            login_free_failures: 5,
            login_address_free_failures: 20,
            login_account_free_failures: 100,
            login_failure_window_secs: 300,
            login_lockout_secs: 30,
            session_ttl_secs: 12 * 60 * 60,
            local_passwords: crate::service::accounts::LocalPasswords::Everyone,
            oidc: None,
            ldap: None,
        }
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), String> {
        if self.key_reload_secs == 0 {
            return Err("auth.key_reload_secs must be at least 1".into());
        }
        if self.key_activation_delay_secs < self.key_reload_secs.saturating_mul(2) {
            return Err(format!(
                "auth.key_activation_delay_secs ({}) must be at least twice auth.key_reload_secs \
                 ({}): every replica must know a new key before any signs with it",
                self.key_activation_delay_secs, self.key_reload_secs
            ));
        }
        Ok(())
    }
}

/// `[tls]`: berth serves HTTPS itself when both files are set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first; empty means plain HTTP.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_file: PathBuf,
    /// Seconds between checks of the files' modification times; a changed pair is loaded
    /// for new connections without a restart.
    pub reload_interval_secs: u64,
    /// `max-age` of the `Strict-Transport-Security` header sent over HTTPS, seconds; 0 sends
    /// no header.
    pub hsts_max_age_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            reload_interval_secs: 10,
            hsts_max_age_secs: 365 * 24 * 60 * 60,
        }
    }
}

impl TlsConfig {
    /// Whether HTTPS is configured (either file set; [`crate::tls`] insists on both).
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty() || !self.key_file.as_os_str().is_empty()
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Filter in `tracing` syntax, e.g. `info` or `berth=debug,sqlx=warn`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then `BERTH_<SECTION>_<KEY>` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Invalid {
                    path: Some(path.to_owned()),
                    message: e.message().to_owned(),
                })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
                path: file.map(Path::to_owned),
                message: e.message().to_owned(),
            })?;
        config
            .server
            .validate()
            .and_then(|()| config.retention.validate())
            .and_then(|()| config.policies.validate())
            .and_then(|()| config.metrics.listen_addr().map(drop))
            .and_then(|()| config.webhooks.validate())
            .and_then(|()| config.proxy.validate())
            .and_then(|()| config.trust.validate())
            .and_then(|()| config.scan.validate())
            .and_then(|()| config.auth.validate())
            .and_then(|()| {
                config
                    .auth
                    .oidc
                    .as_ref()
                    .map_or(Ok(()), OidcConfig::validate)
            })
            .and_then(|()| config.auth.ldap.as_ref().map_or(Ok(()), |l| l.validate()))
            .map_err(|message| ConfigError::Invalid {
                path: file.map(Path::to_owned),
                message,
            })?;
        Ok(config)
    }

    /// The database URL, with the embedded default filled in.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("berth.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    /// The blob directory of the filesystem backend, with the default filled in.
    pub fn storage_path(&self) -> PathBuf {
        if self.storage.path.is_empty() {
            self.server.data_dir.join("blobs")
        } else {
            PathBuf::from(&self.storage.path)
        }
    }
}

/// Variables of `berth`'s runtime commands whose names read like a setting of a configuration
/// section (`BERTH_AUTH_FILE` is not `[auth] file`): `berth scan` and `berth sign` load the
/// configuration with them set.
const RUNTIME_ENV: &[&str] = &["BERTH_AUTH_FILE"];

/// Sets each `BERTH_<SECTION>_<KEY>` variable into `table`, typed like the key's default.
/// Variables whose section is not a configuration section (such as the runtime's
/// `BERTH_ROOT`) are left alone; an unknown key in a known section is an error, so typos do
/// not pass silently.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Invalid {
        path: None,
        message: e.to_string(),
    })?;
    let vars: BTreeMap<String, String> = env
        .into_iter()
        // The OIDC client secret is read where it is used, never into the configuration; the
        // runtime's own variables are not settings even where they look like one.
        .filter(|(k, _)| {
            k.starts_with("BERTH_")
                && k != OIDC_CLIENT_SECRET_ENV
                && !RUNTIME_ENV.contains(&k.as_str())
        })
        .collect();
    for (var, value) in vars {
        if var == crate::ldap::BIND_PASSWORD_ENV {
            // A secret of a subsection: kept out of the file, set only if the section is.
            if let Some(toml::Value::Table(ldap)) = table
                .get_mut("auth")
                .and_then(|a| a.as_table_mut())
                .and_then(|a| a.get_mut("ldap"))
            {
                ldap.insert("bind_password".into(), toml::Value::String(value));
            }
            continue;
        }
        let Some((section, key)) = var["BERTH_".len()..].split_once('_') else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let Some(toml::Value::Table(section_defaults)) = defaults.get(&section) else {
            continue;
        };
        let err = |reason: String| ConfigError::Env {
            var: var.clone(),
            reason,
        };
        let typed = match section_defaults.get(&key) {
            Some(toml::Value::Integer(_)) => toml::Value::Integer(
                value
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("expected an integer, got {value:?}")))?,
            ),
            // A list: comma-separated items (`BERTH_SCAN_VULNDB_SOURCES=URL1,URL2`).
            Some(toml::Value::Array(_)) => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            ),
            Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
                value
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("expected true or false, got {value:?}")))?,
            ),
            Some(_) => toml::Value::String(value),
            None => {
                let known: Vec<String> = section_defaults
                    .keys()
                    .map(|k| format!("BERTH_{}_{}", section.to_uppercase(), k.to_uppercase()))
                    .collect();
                return Err(err(format!("no such setting; known: {}", known.join(", "))));
            }
        };
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key, typed);
            }
            _ => return Err(err(format!("[{section}] in the file is not a table"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:5000");
        assert_eq!(c.database_url(), "sqlite://./berth-data/berth.db");
        assert_eq!(c.storage_path(), PathBuf::from("./berth-data/blobs"));
    }

    #[test]
    fn a_list_setting_comes_from_the_environment_comma_separated() {
        let c = Config::load(
            None,
            env(&[(
                "BERTH_SCAN_VULNDB_SOURCES",
                "https://a.example/all.zip, /srv/osv,",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.scan.vulndb_sources,
            ["https://a.example/all.zip", "/srv/osv"]
        );
    }

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.example.toml");
        let c = Config::load(Some(&path), env(&[])).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        assert_eq!(toml::Table::try_from(c).unwrap(), defaults);
        // And it documents every key: each default key appears in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        for (section, keys) in &defaults {
            assert!(
                text.contains(&format!("[{section}]")),
                "[{section}] missing"
            );
            for key in keys.as_table().unwrap().keys() {
                // Arrays of tables are documented by an example entry.
                assert!(
                    text.contains(&format!("\n{key} = "))
                        || text.contains(&format!("[[{section}.{key}]]")),
                    "{section}.{key} missing"
                );
            }
        }
    }

    #[test]
    fn the_kubernetes_config_map_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/berth.yaml");
        let yaml = std::fs::read_to_string(path).unwrap();
        let toml: String = yaml
            .lines()
            .skip_while(|l| !l.trim_end().ends_with("berth.toml: |"))
            .skip(1)
            .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
            .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
            .collect();
        assert!(toml.contains("[storage]"), "{toml}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, toml).unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!(c.storage.backend, StorageBackend::S3);
        assert_eq!(c.server.shutdown_drain_secs, 5);
        assert!(c.auth.enabled && c.server.trust_forwarded_headers);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"0.0.0.0:80\"\nmax_manifest_bytes = 10\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("BERTH_SERVER_LISTEN", "127.0.0.1:6000"),
                ("BERTH_DATABASE_URL", "sqlite:///tmp/x.db"),
                ("BERTH_LOG_FORMAT", "json"),
                ("BERTH_ROOT", "/var/lib/berth"),
                ("BERTH_AUTH_FILE", "/root/.config/berth/auth.json"),
                ("BERTH_TLS_CERT_FILE", "/etc/berth/cert.pem"),
                ("BERTH_TLS_RELOAD_INTERVAL_SECS", "2"),
                ("BERTH_METRICS_LISTEN", "127.0.0.1:9090"),
                ("BERTH_METRICS_TOKEN", "scrape-secret"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(c.server.max_manifest_bytes, 10);
        assert_eq!(c.database_url(), "sqlite:///tmp/x.db");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.tls.cert_file, PathBuf::from("/etc/berth/cert.pem"));
        assert_eq!(c.tls.reload_interval_secs, 2);
        assert!(c.tls.enabled());
        assert_eq!(
            c.metrics.listen_addr().unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
        );
        assert_eq!(c.metrics.token.0, "scrape-secret");
        assert!(!format!("{c:?}").contains("scrape-secret"));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Config::load(None, env(&[("BERTH_SERVER_LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("BERTH_SERVER_LISTN"), "{e}");
        let e =
            Config::load(None, env(&[("BERTH_SERVER_MAX_MANIFEST_BYTES", "lots")])).unwrap_err();
        assert!(e.to_string().contains("expected an integer"), "{e}");
        let e = Config::load(None, env(&[("BERTH_SERVER_LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("invalid configuration"), "{e}");
        let e = Config::load(None, env(&[("BERTH_METRICS_LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("metrics.listen"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten_addr = \"x\"\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
    }

    #[test]
    fn bad_webhooks_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let hook = |body: &str| format!("[[webhooks.hook]]\nname = \"ci\"\n{body}\n");
        for (body, complaint) in [
            ("url = \"ftp://x/\"", "url must be"),
            ("url = \"not a url\"", "invalid url"),
            (
                "url = \"http://x/\"\nscope = \"Bad Scope\"",
                "invalid scope",
            ),
            ("url = \"http://x/\"\nevents = []", "events is empty"),
            (
                "url = \"http://x/\"\nevents = [\"pull\"]",
                "unknown variant",
            ),
            ("url = \"http://x/\"\nmax_attempts = 0", "at least 1"),
            (
                "url = \"http://x/\"\nsecret = \"a\"\nsecret_env = \"B\"",
                "set one of",
            ),
        ] {
            std::fs::write(&path, hook(body)).unwrap();
            let e = Config::load(Some(&path), env(&[])).unwrap_err();
            assert!(e.to_string().contains(complaint), "{body}: {e}");
        }
        std::fs::write(&path, hook("url = \"http://x/\"").repeat(2)).unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(
            e.to_string().contains("another webhook has this name"),
            "{e}"
        );
        std::fs::write(&path, hook("url = \"https://ci.example/hook\"")).unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.webhooks.hook[0].max_attempts, 8);
        assert_eq!(c.webhooks.org_max_attempts, 6);
        for (text, complaint) in [
            (
                "org_allow_targets = [\"10.0.0.0/33\"]",
                "webhooks.org_allow_targets",
            ),
            (
                "org_deny_targets = [\"not a host\"]",
                "webhooks.org_deny_targets",
            ),
            ("org_timeout_secs = 0", "org_timeout_secs"),
            ("org_max_attempts = 1000", "org_max_attempts"),
        ] {
            std::fs::write(&path, format!("[webhooks]\n{text}\n")).unwrap();
            let e = Config::load(Some(&path), env(&[])).unwrap_err();
            assert!(e.to_string().contains(complaint), "{text}: {e}");
        }
    }

    #[test]
    fn proxy_upstreams_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), env(&[]))
        };
        let c = load(
            "[[proxy.upstream]]\nnamespace = \"hub\"\nurl = \"https://registry-1.docker.io\"\n\
             repositories = [\"library/*\"]\n\
             [[proxy.upstream]]\nnamespace = \"ghcr\"\nurl = \"https://ghcr.io\"\n\
             username = \"me\"\npassword = \"hunter2\"\nmanifest_ttl_secs = 60\n",
        )
        .unwrap();
        let [hub, ghcr] = &c.proxy.upstream[..] else {
            panic!("{:?}", c.proxy)
        };
        assert_eq!((hub.manifest_ttl_secs, hub.timeout_secs), (300, 30));
        assert_eq!(ghcr.manifest_ttl_secs, 60);
        assert!(!format!("{ghcr:?}").contains("hunter2"));
        let entry = |extra: &str| {
            format!("[[proxy.upstream]]\nnamespace = \"hub\"\nurl = \"https://h.example\"\n{extra}")
        };
        for (text, complaint) in [
            (entry("") + &entry(""), "already uses this namespace"),
            (entry("username = \"u\"\n"), "go together"),
            (entry("password = \"p\"\n"), "go together"),
            (
                entry("username = \"u\"\npassword = \"p\"\npassword_file = \"/f\"\n"),
                "not both",
            ),
            (entry("repositories = [\"[\"]\n"), "invalid pattern"),
            (entry("timeout_secs = 0\n"), "timeout_secs"),
            (entry("colour = 1\n"), "colour"),
            (
                "[[proxy.upstream]]\nnamespace = \"a/b\"\nurl = \"https://h.example\"\n".into(),
                "one path component",
            ),
            (
                "[[proxy.upstream]]\nnamespace = \"Hub\"\nurl = \"https://h.example\"\n".into(),
                "invalid namespace",
            ),
            (
                "[[proxy.upstream]]\nnamespace = \"hub\"\nurl = \"h.example\"\n".into(),
                "not a URL",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert!(e.to_string().contains(complaint), "{text}: {e}");
        }
    }

    #[test]
    fn passwords_are_redacted_in_debug_output() {
        let db = DatabaseConfig {
            url: "postgres://berth:hunter2@db:5432/berth".into(),
            max_connections: 1,
            auto_migrate: true,
        };
        let shown = format!("{db:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("berth:***@db:5432/berth"), "{shown}");
    }
}
