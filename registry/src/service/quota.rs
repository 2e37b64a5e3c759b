//! Quotas: what the repositories of a namespace (or one repository) may hold together, in
//! blob bytes (each blob once, however many of its repositories hold it) and repositories.
//!
//! Two kinds apply together: the configuration file's `[[policies.quota]]` (instance-wide,
//! fixed while the server runs) and the quotas administrators set at run time, stored in SQL
//! (see migrations/*/0026_quotas.sql). Every quota whose scope covers a repository is checked,
//! so the strictest wins and a stored quota can never loosen a configured one. Organization
//! owners see their quotas but cannot change them.
//!
//! Checked where content enters a repository: an upload or mount is refused while a quota
//! covering the repository is used up, a verified blob that would take its scope past the
//! byte limit is not linked, and a new repository past the repository limit is not created.
//! The stored quotas and the figures come from the database at each check, so every replica
//! sees the same quotas and usage from the next request on; uploads finishing at the same
//! moment can overshoot a byte limit by what they carry.

use serde::Serialize;

use super::immutable::RuleError;
use super::{Registry, RegistryError, RegistryResult};
use crate::config::QuotaRule;
use crate::domain::{Digest, RepoName, human_bytes};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::quotas::{QuotaLimits, QuotaRecord};

/// Largest byte limit accepted: 1 EiB. Anything larger is a typing mistake.
pub const MAX_QUOTA_BYTES: u64 = 1 << 60;
/// Largest repository limit accepted.
pub const MAX_QUOTA_REPOSITORIES: u64 = 1_000_000_000;

/// The configured quota rules.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    rules: Vec<QuotaRule>,
}

/// Where a quota comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaSource {
    /// The configuration file's `[[policies.quota]]`: instance-wide, changed by a restart.
    Config,
    /// Set by an administrator over the API or the UI.
    Admin,
}

/// One quota in force, of either source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Limit {
    scope: String,
    limits: QuotaLimits,
    source: QuotaSource,
    set_by: Option<String>,
    set_at: Option<i64>,
}

impl From<&QuotaRule> for Limit {
    fn from(r: &QuotaRule) -> Self {
        Limit {
            scope: r.scope.clone(),
            limits: QuotaLimits {
                max_bytes: r.max_bytes,
                max_repositories: r.max_repositories,
            },
            source: QuotaSource::Config,
            set_by: None,
            set_at: None,
        }
    }
}

impl From<QuotaRecord> for Limit {
    fn from(r: QuotaRecord) -> Self {
        Limit {
            scope: r.scope,
            limits: r.limits,
            source: QuotaSource::Admin,
            set_by: Some(r.set_by),
            set_at: Some(r.set_at),
        }
    }
}

/// A quota and how much of it is used, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// The repository or namespace the quota covers.
    pub scope: String,
    /// Where the quota comes from.
    pub source: QuotaSource,
    /// Its byte limit, if any.
    pub max_bytes: Option<u64>,
    /// Blob bytes stored in the scope, each blob once.
    pub used_bytes: u64,
    /// Its repository limit, if any.
    pub max_repositories: Option<u64>,
    /// Repositories in the scope.
    pub repositories: u64,
    /// The administrator who set it (stored quotas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// When, Unix ms (stored quotas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_at: Option<i64>,
}

impl QuotaStatus {
    /// The larger share of its limits in use, in percent (100 and more: used up).
    pub fn percent_used(&self) -> u64 {
        let share = |used: u64, max: Option<u64>| match max {
            Some(0) => 100,
            Some(max) => {
                u64::try_from(u128::from(used) * 100 / u128::from(max)).unwrap_or(u64::MAX)
            }
            None => 0,
        };
        share(self.used_bytes, self.max_bytes).max(share(self.repositories, self.max_repositories))
    }
}

impl Quotas {
    /// The rules, validated with the configuration.
    pub fn new(rules: &[QuotaRule]) -> Self {
        Self {
            rules: rules.to_vec(),
        }
    }

    /// The rules that apply to `repo` (or to every repository of a namespace `repo`).
    fn covering<'a>(&'a self, repo: &'a RepoName) -> impl Iterator<Item = &'a QuotaRule> {
        self.rules.iter().filter(move |r| repo.is_within(&r.scope))
    }
}

/// A size as asked for: a number of bytes, or a string with a unit (`"10GiB"`, `"500 MB"`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum SizeInput {
    /// A JSON number.
    Number(serde_json::Number),
    /// A string, with or without a unit.
    Text(String),
}

fn invalid(message: String) -> RuleError {
    RuleError::Invalid(message)
}

/// Parses a byte limit: whole bytes, or a number with a unit (`B`, `kB`..`EB`, `KiB`..`EiB`),
/// at most 1 EiB; refuses negative numbers, fractions of a byte and unknown units.
pub fn parse_bytes(input: &SizeInput) -> Result<u64, RuleError> {
    let bytes = match input {
        SizeInput::Number(n) => match n.as_u64() {
            Some(n) => n,
            None if n.as_f64().is_some_and(|f| f < 0.0) => {
                return Err(invalid(format!("max_bytes {n} is negative")));
            }
            None => {
                return Err(invalid(format!(
                    "max_bytes {n} is not a whole number of bytes"
                )));
            }
        },
        SizeInput::Text(text) => {
            let text = text.trim();
            if text.starts_with('-') {
                return Err(invalid(format!("max_bytes {text:?} is negative")));
            }
            if text.is_empty() || text.len() > 32 {
                return Err(invalid(
                    "max_bytes must be a size such as 500MB or 10GiB".into(),
                ));
            }
            crate::config::size::parse(text).map_err(|e| invalid(format!("max_bytes: {e}")))?
        }
    };
    if bytes > MAX_QUOTA_BYTES {
        return Err(invalid(format!(
            "max_bytes {} is over the largest quota, 1 EiB",
            human_bytes(bytes)
        )));
    }
    Ok(bytes)
}

/// Checks a quota as asked for: `scope` must be a valid repository or namespace name, and at
/// least one limit must be set, each within its bounds.
pub fn parse_quota(
    scope: &str,
    max_bytes: Option<&SizeInput>,
    max_repositories: Option<&SizeInput>,
) -> Result<(RepoName, QuotaLimits), RuleError> {
    let scope = RepoName::parse(scope).map_err(|e| invalid(format!("invalid quota scope: {e}")))?;
    let max_bytes = max_bytes.map(parse_bytes).transpose()?;
    let max_repositories = max_repositories
        .map(|r| {
            let n = match r {
                SizeInput::Number(n) => n.as_u64(),
                SizeInput::Text(t) => t.trim().parse::<u64>().ok(),
            };
            n.filter(|n| *n <= MAX_QUOTA_REPOSITORIES).ok_or_else(|| {
                invalid(format!(
                    "max_repositories must be a whole number from 0 to {MAX_QUOTA_REPOSITORIES}"
                ))
            })
        })
        .transpose()?;
    if max_bytes.is_none() && max_repositories.is_none() {
        return Err(invalid(
            "a quota needs max_bytes, max_repositories or both".into(),
        ));
    }
    Ok((
        scope,
        QuotaLimits {
            max_bytes,
            max_repositories,
        },
    ))
}

fn exceeded(limit: &Limit, what: String) -> RegistryError {
    let rule = match limit.source {
        QuotaSource::Config => "policies.quota",
        QuotaSource::Admin => "quota set by an administrator",
    };
    RegistryError::Denied(format!(
        "quota exceeded: {what} ({rule} for {})",
        limit.scope
    ))
}

impl Registry {
    /// Every quota that applies to `repo`: the configuration's and the stored ones (read
    /// now).
    async fn quotas_covering(&self, repo: &RepoName) -> RegistryResult<Vec<Limit>> {
        let mut limits: Vec<Limit> = self.limits.quotas.covering(repo).map(Limit::from).collect();
        let stored = self.meta.quotas_covering(repo.as_str()).await?;
        limits.extend(stored.into_iter().map(Limit::from));
        Ok(limits)
    }

    /// Whether any quota applies to `repo`.
    pub(crate) async fn quota_covers(&self, repo: &RepoName) -> RegistryResult<bool> {
        Ok(self.limits.quotas.covering(repo).next().is_some()
            || !self.meta.quotas_covering(repo.as_str()).await?.is_empty())
    }

    /// Refuses an upload or mount into `repo` while a quota covering it is used up: its bytes
    /// are all taken, or `repo` would be one repository too many.
    pub(crate) async fn quota_admits_writes(&self, repo: &RepoName) -> RegistryResult<()> {
        let limits = self.quotas_covering(repo).await?;
        self.limits_admit_writes(repo, &limits).await
    }

    async fn limits_admit_writes(&self, repo: &RepoName, limits: &[Limit]) -> RegistryResult<()> {
        let mut is_new = None;
        for limit in limits {
            let used = self.meta.quota_usage(&limit.scope).await?;
            if let Some(max) = limit.limits.max_bytes
                && used.blob_bytes >= max
            {
                return Err(exceeded(
                    limit,
                    format!(
                        "{} holds {} of its {} ({} bytes)",
                        limit.scope,
                        human_bytes(used.blob_bytes),
                        human_bytes(max),
                        max
                    ),
                ));
            }
            if let Some(max) = limit.limits.max_repositories {
                let new = match is_new {
                    Some(new) => new,
                    None => *is_new.insert(!self.meta.repository_exists(repo).await?),
                };
                if new && used.repositories >= max {
                    return Err(exceeded(
                        limit,
                        format!(
                            "{} has {} of its {max} repositories; {repo} would be one more",
                            limit.scope, used.repositories
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Refuses to link a verified blob of `size` bytes into `repo` when that would take a
    /// scope covering it past its byte limit. A blob the scope already holds adds nothing.
    pub(crate) async fn quota_admits_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> RegistryResult<()> {
        let limits = self.quotas_covering(repo).await?;
        self.limits_admit_writes(repo, &limits).await?;
        for limit in &limits {
            let Some(max) = limit.limits.max_bytes else {
                continue;
            };
            if self
                .meta
                .scope_has_blob(&limit.scope, &digest.to_string())
                .await?
            {
                continue;
            }
            let used = self.meta.quota_usage(&limit.scope).await?.blob_bytes;
            if used.saturating_add(size) > max {
                return Err(exceeded(
                    limit,
                    format!(
                        "{} holds {} of its {}; this blob needs {} more",
                        limit.scope,
                        human_bytes(used),
                        human_bytes(max),
                        human_bytes(size)
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn with_usage(&self, limits: Vec<Limit>) -> RegistryResult<Vec<QuotaStatus>> {
        let mut out = Vec::with_capacity(limits.len());
        for limit in limits {
            let used = self.meta.quota_usage(&limit.scope).await?;
            out.push(QuotaStatus {
                scope: limit.scope,
                source: limit.source,
                max_bytes: limit.limits.max_bytes,
                used_bytes: used.blob_bytes,
                max_repositories: limit.limits.max_repositories,
                repositories: used.repositories,
                set_by: limit.set_by,
                set_at: limit.set_at,
            });
        }
        Ok(out)
    }

    /// The quotas that apply to `scope` (a repository or namespace) or, without one, every
    /// quota, each with its usage: the configuration's first, then the stored ones.
    pub async fn quota_status(&self, scope: Option<&RepoName>) -> RegistryResult<Vec<QuotaStatus>> {
        let limits = match scope {
            Some(scope) => self.quotas_covering(scope).await?,
            None => {
                let mut all: Vec<Limit> =
                    self.limits.quotas.rules.iter().map(Limit::from).collect();
                all.extend(self.meta.quotas().await?.into_iter().map(Limit::from));
                all
            }
        };
        self.with_usage(limits).await
    }

    /// The quotas of namespace `ns` with their usage: those covering it and those of the
    /// repositories and namespaces under it, of both sources, by scope.
    pub async fn namespace_quotas(&self, ns: &RepoName) -> RegistryResult<Vec<QuotaStatus>> {
        let mut limits: Vec<Limit> = self
            .limits
            .quotas
            .rules
            .iter()
            .filter(|r| {
                ns.is_within(&r.scope)
                    || RepoName::parse(&r.scope).is_ok_and(|s| s.is_within(ns.as_str()))
            })
            .map(Limit::from)
            .collect();
        limits.extend(
            self.meta
                .quotas_covering(ns.as_str())
                .await?
                .into_iter()
                .map(Limit::from),
        );
        for r in self.meta.quotas_within(ns.as_str()).await? {
            if r.scope != ns.as_str() {
                limits.push(r.into());
            }
        }
        limits.sort_by(|a, b| a.scope.cmp(&b.scope));
        self.with_usage(limits).await
    }

    /// Sets the quota of `scope` (audited with the old and the new limits); applies from the
    /// next push on, on every replica.
    pub async fn set_quota(
        &self,
        scope: &RepoName,
        limits: QuotaLimits,
        by: &Origin,
    ) -> Result<QuotaRecord, RuleError> {
        let event = Event::new(Action::QuotaSet, by).target(scope.as_str());
        let (record, _) = self.meta.set_quota(scope.as_str(), limits, &event).await?;
        Ok(record)
    }

    /// Removes the quota of `scope` (audited with the old limits). The configuration's
    /// quotas stay.
    pub async fn delete_quota(&self, scope: &str, by: &Origin) -> Result<QuotaRecord, RuleError> {
        let event = Event::new(Action::QuotaDelete, by).target(scope);
        self.meta
            .delete_quota(scope, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("no quota set for {scope}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_their_scope_only() {
        let quotas = Quotas::new(&[
            QuotaRule {
                scope: "team".into(),
                max_bytes: Some(10),
                max_repositories: None,
            },
            QuotaRule {
                scope: "team/app".into(),
                max_bytes: None,
                max_repositories: Some(1),
            },
        ]);
        let scopes = |name: &str| {
            let repo = RepoName::parse(name).unwrap();
            quotas
                .covering(&repo)
                .map(|r| r.scope.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(scopes("team/app"), ["team", "team/app"]);
        assert_eq!(scopes("team/app/sub"), ["team", "team/app"]);
        assert_eq!(scopes("team/other"), ["team"]);
        assert!(scopes("teams/app").is_empty());
    }

    fn text(s: &str) -> SizeInput {
        SizeInput::Text(s.into())
    }

    fn number(v: serde_json::Value) -> SizeInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sizes_parse_with_units_and_within_bounds() {
        for (input, bytes) in [
            (text("10GiB"), 10u64 << 30),
            (text(" 500 MB "), 500_000_000),
            (text("1.5KiB"), 1536),
            (text("0"), 0),
            (text("1EiB"), 1 << 60),
            (number(serde_json::json!(1024)), 1024),
        ] {
            assert_eq!(parse_bytes(&input).expect("valid"), bytes, "{input:?}");
        }
        for input in [
            text("-1"),
            text("-5GiB"),
            text("10 GiBs"),
            text("10XB"),
            text("0x10"),
            text("GiB"),
            text(""),
            text("1.5.3GB"),
            text("1025PiB"),
            text("2EiB"),
            text("NaN"),
            number(serde_json::json!(-1)),
            number(serde_json::json!(1.5)),
            number(serde_json::json!(2_000_000_000_000_000_000u64)),
        ] {
            assert!(
                matches!(parse_bytes(&input), Err(RuleError::Invalid(_))),
                "{input:?}"
            );
        }
    }

    #[test]
    fn quotas_need_a_valid_scope_and_a_limit() {
        let bytes = text("1GiB");
        let repos = number(serde_json::json!(3));
        let (scope, limits) = parse_quota("acme/app", Some(&bytes), Some(&repos)).expect("ok");
        assert_eq!(scope.as_str(), "acme/app");
        assert_eq!(
            limits,
            QuotaLimits {
                max_bytes: Some(1 << 30),
                max_repositories: Some(3)
            }
        );
        let negative = number(serde_json::json!(-3));
        let huge = text("99999999999");
        for (scope, b, r) in [
            ("Acme", Some(&bytes), None),
            ("acme//app", Some(&bytes), None),
            ("../etc", Some(&bytes), None),
            ("acme", None, None),
            ("acme", None, Some(&negative)),
            ("acme", None, Some(&huge)),
        ] {
            assert!(
                matches!(parse_quota(scope, b, r), Err(RuleError::Invalid(_))),
                "{scope} {b:?} {r:?}"
            );
        }
    }

    #[test]
    fn percent_used_is_the_fuller_limit() {
        let status = QuotaStatus {
            scope: "acme".into(),
            source: QuotaSource::Admin,
            max_bytes: Some(200),
            used_bytes: 50,
            max_repositories: Some(4),
            repositories: 3,
            set_by: None,
            set_at: None,
        };
        assert_eq!(status.percent_used(), 75);
        let full = QuotaStatus {
            max_bytes: Some(0),
            max_repositories: None,
            ..status
        };
        assert_eq!(full.percent_used(), 100);
    }
}
