//! Immutable tags: rules naming tags that, once pushed, keep pointing at the same manifest.
//!
//! Two kinds of rule apply together, and a tag is immutable if any rule names it: the
//! configuration file's `[[policies.immutable]]` (instance-wide, fixed while the server runs)
//! and the rules organizations set for themselves, stored in SQL. An owner's rules can only add
//! to the configuration's, never lift them. The stored rules of a repository's namespace are
//! read on every push, tag delete and restore (one indexed query, no cache), so a rule added or
//! deleted on one replica holds on every replica from the next request on.

use crate::config::ImmutableRule;
use crate::domain::{RepoName, Tag};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::immutable_rules::{ImmutableRuleRecord, RuleAdded};
use crate::meta::retention::TagAge;

use super::{Registry, RegistryError, RegistryResult};

/// Longest tag pattern accepted (a tag is at most 128 characters).
const MAX_PATTERN_CHARS: usize = 256;
/// Most rules one organization may have.
pub const MAX_RULES_PER_ORG: usize = 100;

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub struct ImmutableTags {
    rules: Vec<(String, Vec<glob::Pattern>)>,
}

impl ImmutableTags {
    /// Compiles `rules` (validated with the configuration; an invalid pattern never matches).
    pub fn new(rules: &[ImmutableRule]) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|r| {
                    let patterns = r
                        .tags
                        .iter()
                        .filter_map(|t| glob::Pattern::new(t).ok())
                        .collect();
                    (r.scope.clone(), patterns)
                })
                .collect(),
        }
    }

    /// These rules and the stored `records`.
    pub fn with(&self, records: &[ImmutableRuleRecord]) -> Self {
        let mut rules = self.rules.clone();
        rules.extend(records.iter().filter_map(|r| {
            let pattern = glob::Pattern::new(&r.pattern).ok()?;
            Some((r.scope.clone(), vec![pattern]))
        }));
        Self { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule that makes `repo:tag` immutable, described for an error message.
    pub fn rule_for(&self, repo: &RepoName, tag: &Tag) -> Option<String> {
        self.rules.iter().find_map(|(scope, patterns)| {
            let pattern = patterns.iter().find(|p| p.matches(tag.as_str()))?;
            repo.is_within(scope)
                .then(|| format!("immutable-tag rule for {scope}: {}", pattern.as_str()))
        })
    }
}

/// Why an organization's rule could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The pattern or scope is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such organization or rule.
    #[error("{0}")]
    NotFound(String),
    /// The organization has this rule already.
    #[error("{0}")]
    Exists(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<crate::meta::MetaError> for RuleError {
    fn from(e: crate::meta::MetaError) -> Self {
        RuleError::Registry(e.into())
    }
}

/// A rule as asked for: where, and which tags.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The organization itself, or a repository or namespace under it.
    pub scope: RepoName,
    /// The tag pattern.
    pub pattern: glob::Pattern,
}

impl RuleSpec {
    /// Checks a rule for `org`: `repository` (absent: the whole organization) must lie within
    /// it, and `pattern` must be a glob of at most 256 characters.
    pub fn parse(org: &str, repository: Option<&str>, pattern: &str) -> Result<Self, RuleError> {
        let scope = repository.filter(|r| !r.is_empty()).unwrap_or(org);
        let scope = RepoName::parse(scope)
            .map_err(|e| RuleError::Invalid(format!("invalid repository: {e}")))?;
        if !scope.is_within(org) {
            return Err(RuleError::Invalid(format!(
                "repository {scope} is not in organization {org}"
            )));
        }
        if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(RuleError::Invalid(format!(
                "the tag pattern must have 1 to {MAX_PATTERN_CHARS} characters"
            )));
        }
        let pattern = glob::Pattern::new(pattern)
            .map_err(|e| RuleError::Invalid(format!("invalid tag pattern {pattern:?}: {e}")))?;
        Ok(Self { scope, pattern })
    }

    /// Whether the rule names `repo:tag`.
    fn names(&self, repo: &str, tag: &str) -> bool {
        self.pattern.matches(tag)
            && RepoName::parse(repo).is_ok_and(|r| r.is_within(self.scope.as_str()))
    }
}

impl Registry {
    /// Every immutable-tag rule that applies in `repo`: the configuration's and those its
    /// namespace's organization set (read from SQL now).
    pub(super) async fn immutable_in(&self, repo: &RepoName) -> RegistryResult<ImmutableTags> {
        let stored = self.meta.immutable_rules(Some(repo.namespace())).await?;
        Ok(self.limits.immutable.with(&stored))
    }

    /// Every immutable-tag rule of the hub, the configuration's and every organization's.
    pub(super) async fn immutable_everywhere(&self) -> RegistryResult<ImmutableTags> {
        let stored = self.meta.immutable_rules(None).await?;
        Ok(self.limits.immutable.with(&stored))
    }

    /// The rules organization `org` set.
    pub async fn org_immutable_rules(&self, org: &str) -> RegistryResult<Vec<ImmutableRuleRecord>> {
        Ok(self.meta.immutable_rules(Some(org)).await?)
    }

    /// The configuration file's rules, as written there.
    pub fn instance_immutable_rules(&self) -> &[(String, Vec<glob::Pattern>)] {
        &self.limits.immutable.rules
    }

    /// Adds a rule to `org` (audited, with the new rule); takes effect on the next push.
    pub async fn add_immutable_rule(
        &self,
        org: &str,
        rule: &RuleSpec,
        by: &Origin,
    ) -> Result<ImmutableRuleRecord, RuleError> {
        if self.meta.immutable_rules(Some(org)).await?.len() >= MAX_RULES_PER_ORG {
            return Err(RuleError::Invalid(format!(
                "an organization may have at most {MAX_RULES_PER_ORG} immutable-tag rules"
            )));
        }
        let event = Event::new(Action::ImmutableRuleAdd, by).target(org);
        match self
            .meta
            .add_immutable_rule(org, rule.scope.as_str(), rule.pattern.as_str(), &event)
            .await?
        {
            RuleAdded::Added(r) => Ok(r),
            RuleAdded::Exists => Err(RuleError::Exists(format!(
                "the rule {} in {} already exists",
                rule.pattern.as_str(),
                rule.scope
            ))),
            RuleAdded::NoOrganization => {
                Err(RuleError::NotFound(format!("organization {org} not found")))
            }
        }
    }

    /// Deletes rule `id` of `org` (audited, with the old rule).
    pub async fn delete_immutable_rule(
        &self,
        org: &str,
        id: i64,
        by: &Origin,
    ) -> Result<ImmutableRuleRecord, RuleError> {
        let event = Event::new(Action::ImmutableRuleDelete, by).target(org);
        self.meta
            .delete_immutable_rule(org, id, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("rule {id} of {org} not found")))
    }

    /// The tags that exist now and that `rule` would freeze, by repository and tag.
    pub async fn immutable_dry_run(&self, rule: &RuleSpec) -> RegistryResult<Vec<TagAge>> {
        let mut tags: Vec<TagAge> = self
            .meta
            .retention_tags(Some(rule.scope.as_str()))
            .await?
            .into_iter()
            .filter(|t| rule.names(&t.repository, &t.tag))
            .collect();
        tags.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_scope_and_pattern() {
        let rules = ImmutableTags::new(&[ImmutableRule {
            scope: "team".into(),
            tags: vec!["v*".into(), "release-?".into()],
        }]);
        let repo = |s| RepoName::parse(s).unwrap();
        let tag = |s| Tag::parse(s).unwrap();
        assert!(rules.rule_for(&repo("team/app"), &tag("v1.2")).is_some());
        assert!(rules.rule_for(&repo("team"), &tag("release-1")).is_some());
        assert!(
            rules
                .rule_for(&repo("team/app"), &tag("release-10"))
                .is_none()
        );
        assert!(rules.rule_for(&repo("teamx/app"), &tag("v1")).is_none());
        assert!(rules.rule_for(&repo("team/app"), &tag("latest")).is_none());
    }

    #[test]
    fn stored_rules_add_to_the_configured_ones() {
        let config = ImmutableTags::new(&[ImmutableRule {
            scope: "team".into(),
            tags: vec!["v*".into()],
        }]);
        let stored = |scope: &str, pattern: &str| ImmutableRuleRecord {
            id: 1,
            org: "team".into(),
            scope: scope.into(),
            pattern: pattern.into(),
            created_by: "alice".into(),
            created_at: 0,
        };
        let rules = config.with(&[stored("team/app", "stable")]);
        let repo = |s| RepoName::parse(s).unwrap();
        let tag = |s| Tag::parse(s).unwrap();
        assert!(rules.rule_for(&repo("team/app"), &tag("v1")).is_some());
        assert!(rules.rule_for(&repo("team/app"), &tag("stable")).is_some());
        assert!(
            rules
                .rule_for(&repo("team/other"), &tag("stable"))
                .is_none()
        );
        assert!(config.rule_for(&repo("team/app"), &tag("stable")).is_none());
    }

    #[test]
    fn rule_specs_stay_in_their_organization_and_need_a_glob() {
        assert!(RuleSpec::parse("acme", None, "v*").is_ok());
        assert!(RuleSpec::parse("acme", Some("acme/app"), "v*").is_ok());
        for (repository, pattern) in [
            (Some("other/app"), "v*"),
            (Some("acmex/app"), "v*"),
            (None, "[v"),
            (None, ""),
        ] {
            assert!(
                matches!(
                    RuleSpec::parse("acme", repository, pattern),
                    Err(RuleError::Invalid(_))
                ),
                "{repository:?} {pattern:?}"
            );
        }
        let rule = RuleSpec::parse("acme", Some("acme/app"), "v*").unwrap();
        assert!(rule.names("acme/app", "v1"));
        assert!(rule.names("acme/app/sub", "v1"));
        assert!(!rule.names("acme/apps", "v1"));
        assert!(!rule.names("acme/app", "latest"));
    }
}
