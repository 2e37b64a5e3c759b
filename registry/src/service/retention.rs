//! Retention policies: delete the tags no keep rule of their repository's policy keeps, and
//! record when tags are pulled (in batches) so "pulled within" rules can be judged.
//!
//! Deleted tags go through the tag history (restorable for `gc.tag_history_secs`); what they
//! pointed at is left to garbage collection.

use std::collections::HashSet;
use std::sync::Mutex;

use serde::Serialize;

use super::{Registry, RegistryResult};
use crate::config::RetentionPolicy;
use crate::domain::{Reference, RepoName, Tag};
use crate::meta::events::{Action, HookEvent, Origin};
use crate::meta::now_ms;
use crate::meta::retention::TagAge;

const DAY_MS: i64 = 86_400_000;

/// A tag a run deleted (or, dry, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// Its repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest it pointed at.
    pub digest: String,
    /// The scope of the policy that let it go.
    pub policy: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Tags judged.
    pub tags_judged: u64,
    /// Tags deleted (or to delete), by repository and newest push first.
    pub deleted: Vec<Expired>,
}

/// Tags pulled since the last flush, by (repository, tag or digest).
#[derive(Debug, Default)]
pub struct PullLog {
    pending: Mutex<HashSet<(String, String)>>,
}

/// Distinct pulls noted between two flushes at most. Only reads of stored manifests are
/// noted, so this bounds memory on a huge registry, not against a client: beyond it, further
/// pulls until the next flush go unrecorded (a tag pulled only then may look unpulled for one
/// flush interval longer).
const MAX_PENDING_PULLS: usize = 100_000;

impl PullLog {
    fn record(&self, repo: &RepoName, reference: &Reference) {
        if let Ok(mut pending) = self.pending.lock()
            && pending.len() < MAX_PENDING_PULLS
        {
            pending.insert((repo.to_string(), reference.to_string()));
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        self.pending
            .lock()
            .map(|mut p| p.drain().collect())
            .unwrap_or_default()
    }
}

/// Whether a tag is kept by `policy`, given its rank among its repository's tags by push
/// time (0 = newest).
fn keeps(
    policy: &RetentionPolicy,
    patterns: &[glob::Pattern],
    t: &TagAge,
    rank: usize,
    now: i64,
) -> bool {
    let within = |days: Option<u64>, at: Option<i64>| match (days, at) {
        (Some(days), Some(at)) => {
            at >= now.saturating_sub(
                i64::try_from(days)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(DAY_MS),
            )
        }
        _ => false,
    };
    policy.keep_newest.is_some_and(|n| rank < n as usize)
        || within(policy.keep_pushed_within_days, Some(t.pushed_at))
        || within(policy.keep_pulled_within_days, t.pulled_at)
        || patterns.iter().any(|p| p.matches(&t.tag))
}

/// The policy for `repo`: the one with the longest scope that contains it.
fn policy_for(policies: &[RetentionPolicy], repo: &RepoName) -> Option<usize> {
    policies
        .iter()
        .enumerate()
        .filter(|(_, p)| repo.is_within(&p.scope))
        .max_by_key(|(_, p)| p.scope.len())
        .map(|(i, _)| i)
}

impl Registry {
    /// Applies `policies` once: every tag of a repository with a policy that no keep rule
    /// keeps is deleted (each only if it did not move since it was judged).
    #[tracing::instrument(skip(self, policies))]
    pub async fn apply_retention(
        &self,
        policies: &[RetentionPolicy],
        dry_run: bool,
    ) -> RegistryResult<RetentionReport> {
        self.flush_pulls().await?;
        let patterns: Vec<Vec<glob::Pattern>> = policies
            .iter()
            .map(|p| {
                p.keep_tags
                    .iter()
                    .filter_map(|t| glob::Pattern::new(t).ok())
                    .collect()
            })
            .collect();
        let immutable = self.immutable_everywhere().await?;
        let now = now_ms();
        let mut report = RetentionReport {
            dry_run,
            ..RetentionReport::default()
        };
        // Policies whose scope lies inside another's are read again; each tag is judged once,
        // under its most specific policy.
        let mut judged: HashSet<(String, String)> = HashSet::new();
        for policy in policies {
            let tags = self.meta.retention_tags(Some(&policy.scope)).await?;
            let mut rank = 0;
            let mut repo = String::new();
            for t in tags {
                if t.repository != repo {
                    repo.clone_from(&t.repository);
                    rank = 0;
                }
                let this_rank = rank;
                rank += 1;
                let (Ok(name), Ok(tag)) = (RepoName::parse(&t.repository), Tag::parse(&t.tag))
                else {
                    continue;
                };
                let Some(i) = policy_for(policies, &name) else {
                    continue;
                };
                if !judged.insert((t.repository.clone(), t.tag.clone())) {
                    continue;
                }
                report.tags_judged += 1;
                // Immutable tags stay, whatever the policy says.
                if keeps(&policies[i], &patterns[i], &t, this_rank, now)
                    || immutable.rule_for(&name, &tag).is_some()
                {
                    continue;
                }
                if !dry_run {
                    let mut event = self.event(
                        Action::TagDelete,
                        &Origin::system("retention"),
                        &name,
                        Some(HookEvent::Delete),
                    );
                    event.tag = Some(t.tag.clone());
                    event.detail = Some(serde_json::json!({"policy": policies[i].scope}));
                    if !self
                        .meta
                        .retention_delete_tag(&name, &tag, t.pushed_at, &event)
                        .await?
                    {
                        continue;
                    }
                }
                report.deleted.push(Expired {
                    repository: t.repository,
                    tag: t.tag,
                    digest: t.digest,
                    policy: policies[i].scope.clone(),
                });
            }
        }
        tracing::info!(
            judged = report.tags_judged,
            deleted = report.deleted.len(),
            dry_run,
            "retention applied"
        );
        Ok(report)
    }

    /// Notes a manifest read, for "pulled within" rules (recorded by [`Self::flush_pulls`]).
    pub(super) fn note_pull(&self, repo: &RepoName, reference: &Reference) {
        self.pulls.record(repo, reference);
    }

    /// Records the pulls noted since the last flush.
    pub async fn flush_pulls(&self) -> RegistryResult<()> {
        let pulls = self.pulls.take();
        if !pulls.is_empty() {
            self.meta.record_pulls(&pulls, now_ms()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(scope: &str) -> RetentionPolicy {
        RetentionPolicy {
            scope: scope.into(),
            keep_newest: Some(1),
            ..RetentionPolicy::default()
        }
    }

    #[test]
    fn the_longest_scope_containing_the_repository_applies() {
        let policies = [policy("team"), policy("team/app"), policy("other")];
        let of = |repo: &str| policy_for(&policies, &RepoName::parse(repo).unwrap());
        assert_eq!(of("team/app"), Some(1));
        assert_eq!(of("team/app/sub"), Some(1));
        assert_eq!(of("team/apple"), Some(0));
        assert_eq!(of("team"), Some(0));
        assert_eq!(of("teams/x"), None);
    }

    #[test]
    fn any_rule_keeps_a_tag() {
        let now = 100 * DAY_MS;
        let p = RetentionPolicy {
            scope: "t".into(),
            keep_newest: Some(2),
            keep_pushed_within_days: Some(7),
            keep_pulled_within_days: Some(30),
            keep_tags: vec!["v*".into()],
        };
        let patterns = vec![glob::Pattern::new("v*").unwrap()];
        let tag = |name: &str, pushed_days_ago: i64, pulled_days_ago: Option<i64>| TagAge {
            repository: "t/a".into(),
            tag: name.into(),
            digest: String::new(),
            pushed_at: now - pushed_days_ago * DAY_MS,
            pulled_at: pulled_days_ago.map(|d| now - d * DAY_MS),
        };
        let old = tag("dev", 50, None);
        assert!(keeps(&p, &patterns, &old, 1, now), "among the newest two");
        assert!(!keeps(&p, &patterns, &old, 2, now));
        assert!(
            keeps(&p, &patterns, &tag("dev", 6, None), 5, now),
            "pushed recently"
        );
        assert!(
            keeps(&p, &patterns, &tag("dev", 50, Some(29)), 5, now),
            "pulled recently"
        );
        assert!(!keeps(&p, &patterns, &tag("dev", 50, Some(31)), 5, now));
        assert!(
            keeps(&p, &patterns, &tag("v2", 50, None), 5, now),
            "pattern"
        );
    }
}
