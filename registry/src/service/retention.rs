//! Retention policies: delete the tags no keep rule of their repository's policy keeps, and
//! record when tags are pulled (in batches) so "pulled within" rules can be judged.
//!
//! Deleted tags go through the tag history (restorable for `gc.tag_history_secs`); what they
//! pointed at is left to garbage collection.

use std::collections::HashSet;
use std::sync::Mutex;

use serde::Serialize;

use super::immutable::ImmutableTags;
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

/// Policies with their tag patterns compiled.
struct Compiled<'a> {
    policies: &'a [RetentionPolicy],
    patterns: Vec<Vec<glob::Pattern>>,
}

impl<'a> Compiled<'a> {
    fn new(policies: &'a [RetentionPolicy]) -> Self {
        let patterns = policies
            .iter()
            .map(|p| {
                p.keep_tags
                    .iter()
                    .filter_map(|t| glob::Pattern::new(t).ok())
                    .collect()
            })
            .collect();
        Self { policies, patterns }
    }

    /// The scope of the policy for `repo` and whether it keeps `t`; `None` if none applies.
    fn judge(&self, repo: &RepoName, t: &TagAge, rank: usize, now: i64) -> Option<(&str, bool)> {
        let i = policy_for(self.policies, repo)?;
        let p = &self.policies[i];
        Some((&p.scope, keeps(p, &self.patterns[i], t, rank, now)))
    }
}

/// What a pass judges tags by: the configuration's policies, the organizations' rules and
/// the immutable-tag rules.
///
/// A repository follows the configuration's policy with the longest scope containing it and
/// its organization's rule with the longest such scope. A tag is deleted only when every one
/// of them that applies lets it go and no immutable-tag rule names it: an owner's rule can
/// keep more than the instance's policy, never less, and decides alone where the instance
/// has no policy.
struct Judge<'a> {
    instance: Compiled<'a>,
    orgs: Compiled<'a>,
    immutable: ImmutableTags,
    now: i64,
}

impl Judge<'_> {
    /// The policies that let `t` (ranked `rank` by push time in its repository) go, described
    /// for the report; `None` when it stays (or no policy covers it).
    fn expires(&self, repo: &RepoName, tag: &Tag, t: &TagAge, rank: usize) -> Option<String> {
        let instance = self.instance.judge(repo, t, rank, self.now);
        let org = self.orgs.judge(repo, t, rank, self.now);
        if instance.is_none() && org.is_none()
            || instance.is_some_and(|(_, keep)| keep)
            || org.is_some_and(|(_, keep)| keep)
            || self.immutable.rule_for(repo, tag).is_some()
        {
            return None;
        }
        let mut why: Vec<String> = Vec::new();
        if let Some((scope, _)) = instance {
            why.push(scope.to_owned());
        }
        if let Some((scope, _)) = org {
            why.push(format!("{scope} (organization rule)"));
        }
        Some(why.join(" + "))
    }

    /// Whether any policy covers `repo`.
    fn covers(&self, repo: &RepoName) -> bool {
        policy_for(self.instance.policies, repo).is_some()
            || policy_for(self.orgs.policies, repo).is_some()
    }
}

/// The scopes to read so that every tag under any of `scopes` is read once: those not
/// inside another.
fn outermost<'a>(scopes: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut all: Vec<&str> = scopes.collect();
    all.sort_unstable();
    all.dedup();
    all.iter()
        .copied()
        .filter(|s| {
            !all.iter()
                .any(|o| o != s && RepoName::parse(s).is_ok_and(|name| name.is_within(o)))
        })
        .collect()
}

impl Registry {
    /// Applies the retention policies once, the configuration's and every organization's (read
    /// now): every tag no applicable policy keeps is deleted (each only if it did not move
    /// since it was judged). See [`Judge`] for how the two kinds combine.
    #[tracing::instrument(skip(self))]
    pub async fn apply_retention(&self, dry_run: bool) -> RegistryResult<RetentionReport> {
        self.flush_pulls().await?;
        let org_rules = self.org_retention_policies(None).await?;
        let instance = &self.limits.retention;
        let scopes = outermost(instance.iter().chain(&org_rules).map(|p| p.scope.as_str()));
        let judge = Judge {
            instance: Compiled::new(instance),
            orgs: Compiled::new(&org_rules),
            immutable: self.immutable_everywhere().await?,
            now: now_ms(),
        };
        let mut report = RetentionReport {
            dry_run,
            ..RetentionReport::default()
        };
        for scope in scopes {
            self.retain_in(&judge, scope, dry_run, &mut report).await?;
        }
        tracing::info!(
            judged = report.tags_judged,
            deleted = report.deleted.len(),
            dry_run,
            "retention applied"
        );
        Ok(report)
    }

    /// What a pass would delete now in organization `org` if its rules were `rules` (the
    /// configuration's policies applying as in a pass); deletes nothing.
    pub async fn org_retention_dry_run(
        &self,
        org: &str,
        rules: &[RetentionPolicy],
    ) -> RegistryResult<RetentionReport> {
        self.flush_pulls().await?;
        let judge = Judge {
            instance: Compiled::new(&self.limits.retention),
            orgs: Compiled::new(rules),
            immutable: self.immutable_everywhere().await?,
            now: now_ms(),
        };
        let mut report = RetentionReport {
            dry_run: true,
            ..RetentionReport::default()
        };
        self.retain_in(&judge, org, true, &mut report).await?;
        Ok(report)
    }

    /// Judges (and unless `dry_run`, deletes) the tags of the repositories in `scope`.
    async fn retain_in(
        &self,
        judge: &Judge<'_>,
        scope: &str,
        dry_run: bool,
        report: &mut RetentionReport,
    ) -> RegistryResult<()> {
        let tags = self.meta.retention_tags(Some(scope)).await?;
        let mut rank = 0;
        let mut repo = String::new();
        for t in tags {
            if t.repository != repo {
                repo.clone_from(&t.repository);
                rank = 0;
            }
            let this_rank = rank;
            rank += 1;
            let (Ok(name), Ok(tag)) = (RepoName::parse(&t.repository), Tag::parse(&t.tag)) else {
                continue;
            };
            if !judge.covers(&name) {
                continue;
            }
            report.tags_judged += 1;
            let Some(policy) = judge.expires(&name, &tag, &t, this_rank) else {
                continue;
            };
            if !dry_run {
                let mut event = self.event(
                    Action::TagDelete,
                    &Origin::system("retention"),
                    &name,
                    Some(HookEvent::Delete),
                );
                event.tag = Some(t.tag.clone());
                event.detail = Some(serde_json::json!({"policy": policy}));
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
                policy,
            });
        }
        Ok(())
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

    #[test]
    fn nested_scopes_are_read_once() {
        let scopes = ["team/app", "team", "other/x", "team", "teams"];
        assert_eq!(outermost(scopes.into_iter()), ["other/x", "team", "teams"]);
    }

    /// Where the instance has a policy an organization's rule can only keep more; where it
    /// has none, the organization's rule decides.
    #[test]
    fn a_tag_goes_only_when_every_applicable_policy_lets_it_go() {
        let now = 100 * DAY_MS;
        let instance = [RetentionPolicy {
            scope: "acme/app".into(),
            keep_newest: Some(1),
            ..RetentionPolicy::default()
        }];
        let org = [RetentionPolicy {
            scope: "acme".into(),
            keep_tags: vec!["v*".into()],
            ..RetentionPolicy::default()
        }];
        let judge = Judge {
            instance: Compiled::new(&instance),
            orgs: Compiled::new(&org),
            immutable: ImmutableTags::default(),
            now,
        };
        let t = |repo: &str, tag: &str| TagAge {
            repository: repo.into(),
            tag: tag.into(),
            digest: String::new(),
            pushed_at: now - 50 * DAY_MS,
            pulled_at: None,
        };
        let expires = |repo: &str, tag: &str, rank| {
            judge.expires(
                &RepoName::parse(repo).unwrap(),
                &Tag::parse(tag).unwrap(),
                &t(repo, tag),
                rank,
            )
        };
        // Kept by the instance's policy (newest), whatever the owner's says.
        assert_eq!(expires("acme/app", "dev", 0), None);
        // Kept by the owner's rule although the instance's would let it go.
        assert_eq!(expires("acme/app", "v1", 3), None);
        // Both let it go.
        assert_eq!(
            expires("acme/app", "dev", 3).as_deref(),
            Some("acme/app + acme (organization rule)")
        );
        // No instance policy: the owner's rule alone.
        assert_eq!(
            expires("acme/web", "dev", 0).as_deref(),
            Some("acme (organization rule)")
        );
        assert_eq!(expires("acme/web", "v2", 0), None);
        // No policy at all: never judged.
        assert!(!judge.covers(&RepoName::parse("beta/app").unwrap()));
    }
}
