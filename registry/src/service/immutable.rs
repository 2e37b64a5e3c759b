//! Immutable tags: rules naming tags that, once pushed, keep pointing at the same manifest.

use crate::config::ImmutableRule;
use crate::domain::{RepoName, Tag};

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
}
