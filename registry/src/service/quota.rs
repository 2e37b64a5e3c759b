//! Quotas: what the repositories of a namespace (or one repository) may hold together, in
//! blob bytes (each blob once, however many of its repositories hold it) and repositories.
//!
//! Checked where content enters a repository: an upload or mount is refused while a quota
//! covering the repository is used up, a verified blob that would take its scope past the
//! byte limit is not linked, and a new repository past the repository limit is not created.
//! The figures come from the database at each check, so every replica sees the same usage;
//! uploads finishing at the same moment can overshoot a byte limit by what they carry.

use serde::Serialize;

use super::{Registry, RegistryError, RegistryResult};
use crate::config::QuotaRule;
use crate::domain::{Digest, RepoName, human_bytes};

/// The configured quota rules.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    rules: Vec<QuotaRule>,
}

/// A quota and how much of it is used, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// The repository or namespace the quota covers.
    pub scope: String,
    /// Its byte limit, if any.
    pub max_bytes: Option<u64>,
    /// Blob bytes stored in the scope, each blob once.
    pub used_bytes: u64,
    /// Its repository limit, if any.
    pub max_repositories: Option<u64>,
    /// Repositories in the scope.
    pub repositories: u64,
}

impl Quotas {
    /// The rules, validated with the configuration.
    pub fn new(rules: &[QuotaRule]) -> Self {
        Self {
            rules: rules.to_vec(),
        }
    }

    /// Whether any rule applies to `repo`.
    pub fn cover(&self, repo: &RepoName) -> bool {
        self.covering(repo).next().is_some()
    }

    /// The rules that apply to `repo` (or to every repository of a namespace `repo`).
    fn covering<'a>(&'a self, repo: &'a RepoName) -> impl Iterator<Item = &'a QuotaRule> {
        self.rules.iter().filter(move |r| repo.is_within(&r.scope))
    }
}

fn exceeded(rule: &QuotaRule, what: String) -> RegistryError {
    RegistryError::Denied(format!(
        "quota exceeded: {what} (policies.quota for {})",
        rule.scope
    ))
}

impl Registry {
    /// Refuses an upload or mount into `repo` while a quota covering it is used up: its bytes
    /// are all taken, or `repo` would be one repository too many.
    pub(crate) async fn quota_admits_writes(&self, repo: &RepoName) -> RegistryResult<()> {
        let mut is_new = None;
        for rule in self.limits.quotas.covering(repo) {
            let used = self.meta.quota_usage(&rule.scope).await?;
            if let Some(max) = rule.max_bytes
                && used.blob_bytes >= max
            {
                return Err(exceeded(
                    rule,
                    format!(
                        "{} holds {} of its {} ({} bytes)",
                        rule.scope,
                        human_bytes(used.blob_bytes),
                        human_bytes(max),
                        max
                    ),
                ));
            }
            if let Some(max) = rule.max_repositories {
                let new = match is_new {
                    Some(new) => new,
                    None => *is_new.insert(!self.meta.repository_exists(repo).await?),
                };
                if new && used.repositories >= max {
                    return Err(exceeded(
                        rule,
                        format!(
                            "{} has {} of its {max} repositories; {repo} would be one more",
                            rule.scope, used.repositories
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
        self.quota_admits_writes(repo).await?;
        for rule in self.limits.quotas.covering(repo) {
            let Some(max) = rule.max_bytes else { continue };
            if self
                .meta
                .scope_has_blob(&rule.scope, &digest.to_string())
                .await?
            {
                continue;
            }
            let used = self.meta.quota_usage(&rule.scope).await?.blob_bytes;
            if used.saturating_add(size) > max {
                return Err(exceeded(
                    rule,
                    format!(
                        "{} holds {} of its {}; this blob needs {} more",
                        rule.scope,
                        human_bytes(used),
                        human_bytes(max),
                        human_bytes(size)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The quotas that apply to `scope` (a repository or namespace) or, without one, every
    /// quota, each with its usage.
    pub async fn quota_status(&self, scope: Option<&RepoName>) -> RegistryResult<Vec<QuotaStatus>> {
        let rules: Vec<&QuotaRule> = match scope {
            Some(scope) => self.limits.quotas.covering(scope).collect(),
            None => self.limits.quotas.rules.iter().collect(),
        };
        let mut out = Vec::with_capacity(rules.len());
        for rule in rules {
            let used = self.meta.quota_usage(&rule.scope).await?;
            out.push(QuotaStatus {
                scope: rule.scope.clone(),
                max_bytes: rule.max_bytes,
                used_bytes: used.blob_bytes,
                max_repositories: rule.max_repositories,
                repositories: used.repositories,
            });
        }
        Ok(out)
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
}
