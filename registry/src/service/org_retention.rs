//! Retention rules organizations set for themselves: checked, replaced as a whole (audited with
//! the old and the new rules), tried out, and read by every retention pass (see
//! [`super::retention`] for how they combine with the configuration's policies).

use crate::config::RetentionPolicy;
use crate::domain::RepoName;
use crate::meta::events::{Action, Event, Origin};
use crate::meta::org_retention::{RetentionRule, RetentionRuleRecord};

use super::immutable::RuleError;
use super::retention::RetentionReport;
use super::{Registry, RegistryResult};

/// Most rules one organization may have.
pub const MAX_RULES_PER_ORG: usize = 50;
/// Largest `keep_newest`.
pub const MAX_KEEP_NEWEST: u32 = 10_000;
/// Largest number of days (about a century).
pub const MAX_DAYS: u32 = 36_500;
/// Most `keep_tags` patterns in one rule.
pub const MAX_KEEP_TAGS: usize = 50;
/// Longest `keep_tags` pattern (a tag is at most 128 characters).
const MAX_PATTERN_CHARS: usize = 256;

/// Checks the rules an owner of `org` asks for, all or none: each scope is the organization
/// or lies within it (an empty scope is the organization) and appears once, numbers are
/// between 1 and their bound, patterns are globs, and each rule keeps something (a rule that
/// keeps nothing would delete every tag). The rules come back with their scopes written out,
/// by scope.
pub fn check_rules(org: &str, rules: &[RetentionRule]) -> Result<Vec<RetentionRule>, RuleError> {
    let invalid = |m: String| Err(RuleError::Invalid(m));
    if rules.len() > MAX_RULES_PER_ORG {
        return invalid(format!(
            "an organization may have at most {MAX_RULES_PER_ORG} retention rules"
        ));
    }
    let mut checked: Vec<RetentionRule> = Vec::with_capacity(rules.len());
    for rule in rules {
        let scope = if rule.scope.is_empty() {
            org
        } else {
            &rule.scope
        };
        let scope = RepoName::parse(scope)
            .map_err(|e| RuleError::Invalid(format!("invalid repository {scope:?}: {e}")))?;
        if !scope.is_within(org) {
            return invalid(format!("repository {scope} is not in organization {org}"));
        }
        if checked.iter().any(|c| c.scope == scope.as_str()) {
            return invalid(format!("two rules for {scope}; give each scope one rule"));
        }
        let within = |name: &str, v: Option<u32>, max: u32| match v {
            Some(n) if n == 0 || n > max => Err(RuleError::Invalid(format!(
                "{name} of the rule for {scope} must be between 1 and {max}"
            ))),
            _ => Ok(()),
        };
        within("keep_newest", rule.keep_newest, MAX_KEEP_NEWEST)?;
        within(
            "keep_pushed_within_days",
            rule.keep_pushed_within_days,
            MAX_DAYS,
        )?;
        within(
            "keep_pulled_within_days",
            rule.keep_pulled_within_days,
            MAX_DAYS,
        )?;
        if rule.keep_tags.len() > MAX_KEEP_TAGS {
            return invalid(format!(
                "the rule for {scope} has more than {MAX_KEEP_TAGS} keep_tags patterns"
            ));
        }
        for pattern in &rule.keep_tags {
            if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS {
                return invalid(format!(
                    "a keep_tags pattern must have 1 to {MAX_PATTERN_CHARS} characters"
                ));
            }
            glob::Pattern::new(pattern)
                .map_err(|e| RuleError::Invalid(format!("invalid tag pattern {pattern:?}: {e}")))?;
        }
        if rule.keep_newest.is_none()
            && rule.keep_pushed_within_days.is_none()
            && rule.keep_pulled_within_days.is_none()
            && rule.keep_tags.is_empty()
        {
            return invalid(format!(
                "the rule for {scope} keeps nothing; it would delete every tag"
            ));
        }
        checked.push(RetentionRule {
            scope: scope.to_string(),
            ..rule.clone()
        });
    }
    checked.sort_by(|a, b| a.scope.cmp(&b.scope));
    Ok(checked)
}

/// A stored rule as a retention pass applies it.
pub fn as_policy(rule: &RetentionRule) -> RetentionPolicy {
    RetentionPolicy {
        scope: rule.scope.clone(),
        keep_newest: rule.keep_newest,
        keep_pushed_within_days: rule.keep_pushed_within_days.map(u64::from),
        keep_pulled_within_days: rule.keep_pulled_within_days.map(u64::from),
        keep_tags: rule.keep_tags.clone(),
    }
}

impl Registry {
    /// The retention rules of `org`, or of every organization (`None`), as policies.
    pub(super) async fn org_retention_policies(
        &self,
        org: Option<&str>,
    ) -> RegistryResult<Vec<RetentionPolicy>> {
        Ok(self
            .meta
            .org_retention_rules(org)
            .await?
            .iter()
            .map(|r| as_policy(&r.rule))
            .collect())
    }

    /// The retention rules organization `org` set.
    pub async fn org_retention(&self, org: &str) -> RegistryResult<Vec<RetentionRuleRecord>> {
        Ok(self.meta.org_retention_rules(Some(org)).await?)
    }

    /// The configuration file's retention policies that apply in `org` (over it or part of
    /// it).
    pub fn instance_retention_in(&self, org: &str) -> Vec<RetentionPolicy> {
        let within = |a: &str, b: &str| RepoName::parse(a).is_ok_and(|a| a.is_within(b));
        self.limits
            .retention
            .iter()
            .filter(|p| within(&p.scope, org) || within(org, &p.scope))
            .cloned()
            .collect()
    }

    /// Replaces the retention rules of `org` with `rules` (checked here; audited with the old
    /// and new rules); they apply from the next retention pass on, on every replica.
    pub async fn set_org_retention(
        &self,
        org: &str,
        rules: &[RetentionRule],
        by: &Origin,
    ) -> Result<Vec<RetentionRuleRecord>, RuleError> {
        let rules = check_rules(org, rules)?;
        let event = Event::new(Action::RetentionSet, by).target(org);
        self.meta
            .set_org_retention_rules(org, &rules, &event)
            .await?
            .ok_or_else(|| RuleError::NotFound(format!("organization {org} not found")))
    }

    /// What a retention pass would delete in `org` now, with `rules` (checked here) in place
    /// of its saved ones, or with the saved ones (`None`).
    pub async fn try_org_retention(
        &self,
        org: &str,
        rules: Option<&[RetentionRule]>,
    ) -> Result<RetentionReport, RuleError> {
        let policies = match rules {
            Some(rules) => check_rules(org, rules)?.iter().map(as_policy).collect(),
            None => self.org_retention_policies(Some(org)).await?,
        };
        Ok(self.org_retention_dry_run(org, &policies).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scope: &str) -> RetentionRule {
        RetentionRule {
            scope: scope.into(),
            keep_newest: Some(3),
            ..RetentionRule::default()
        }
    }

    #[test]
    fn rules_stay_in_their_organization_and_keep_something_sane() {
        let ok = check_rules("acme", &[rule("acme/app"), rule("")]).expect("valid");
        assert_eq!(
            ok.iter().map(|r| r.scope.as_str()).collect::<Vec<_>>(),
            ["acme", "acme/app"]
        );
        let bad = [
            (vec![rule("beta/app")], "not in organization acme"),
            (vec![rule("acmex")], "not in organization acme"),
            (vec![rule("Acme/App")], "invalid repository"),
            (vec![rule("acme"), rule("acme")], "two rules for acme"),
            (
                vec![RetentionRule {
                    keep_newest: Some(0),
                    ..rule("acme")
                }],
                "keep_newest",
            ),
            (
                vec![RetentionRule {
                    keep_pushed_within_days: Some(MAX_DAYS + 1),
                    ..rule("acme")
                }],
                "keep_pushed_within_days",
            ),
            (
                vec![RetentionRule {
                    keep_tags: vec!["[v".into()],
                    ..rule("acme")
                }],
                "invalid tag pattern",
            ),
            (
                vec![RetentionRule {
                    keep_newest: None,
                    ..rule("acme")
                }],
                "keeps nothing",
            ),
        ];
        for (rules, needle) in bad {
            match check_rules("acme", &rules) {
                Err(RuleError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{rules:?}: {other:?}"),
            }
        }
        let many: Vec<RetentionRule> = (0..=MAX_RULES_PER_ORG)
            .map(|i| rule(&format!("acme/r{i}")))
            .collect();
        assert!(check_rules("acme", &many).is_err());
    }
}
