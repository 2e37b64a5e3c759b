//! Scopes: what a client asks the token endpoint for (`repository:NAME:pull,push`), what a
//! registry token grants (its `access` claim), and what an access token is limited to.

use serde::{Deserialize, Serialize};

use super::Actions;
use super::access::namespace_of;
use crate::domain::RepoName;

/// One scope a client asked for, as Distribution's token specification writes it:
/// `repository:NAME:ACTIONS` or `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRequest {
    /// Actions on one repository.
    Repository {
        /// The repository name, with the grammar `/v2/` routes use: a name no route would
        /// accept (`a/../b`, `a/b/`) never reaches a token.
        name: RepoName,
        /// The actions asked for.
        actions: Actions,
    },
    /// Listing the catalog.
    Catalog,
}

impl ScopeRequest {
    /// Parses one scope. Unknown resource types and invalid repository names give `None`
    /// (and are left out of the token), as the specification allows for what a registry
    /// does not know.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        // `repository(plugin):name:pull` carries a resource class; the class changes nothing.
        let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
        match kind {
            "repository" => Some(ScopeRequest::Repository {
                name: RepoName::parse(name).ok()?,
                actions: Actions::parse_list(actions),
            }),
            "registry" if name == "catalog" => Some(ScopeRequest::Catalog),
            _ => None,
        }
    }

    /// Parses every `scope` value of a request; each may hold several scopes separated by
    /// spaces (the OAuth2 form).
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Self> {
        values
            .into_iter()
            .flat_map(str::split_whitespace)
            .filter_map(Self::parse)
            .collect()
    }
}

impl std::fmt::Display for ScopeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeRequest::Repository { name, actions } => {
                f.write_str(&repository_scope(name.as_str(), *actions))
            }
            ScopeRequest::Catalog => f.write_str("registry:catalog:*"),
        }
    }
}

/// The scope of `actions` on repository `name`, as a challenge names it.
pub fn repository_scope(name: &str, actions: Actions) -> String {
    format!("repository:{name}:{actions}")
}

/// One entry of a registry token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// The granted actions.
    pub actions: Vec<String>,
}

impl AccessEntry {
    /// The granted actions on repository `name`, if this entry is about it.
    pub fn actions_on(&self, name: &str) -> Option<Actions> {
        (self.kind == "repository" && self.name == name)
            .then(|| Actions::parse_list(&self.actions.join(",")))
    }

    /// Whether this entry grants listing the catalog.
    pub fn is_catalog(&self) -> bool {
        self.kind == "registry" && self.name == "catalog" && !self.actions.is_empty()
    }
}

/// What one rule of an access token's scope covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Everything its owner may reach (`*`).
    Any,
    /// Every repository of a namespace (`ns/*`).
    Namespace(String),
    /// One repository (`ns/repo`).
    Repository(String),
}

/// One rule of an access token's scope: `TARGET:ACTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRule {
    /// What it covers.
    pub target: Target,
    /// What it allows there.
    pub actions: Actions,
}

/// The most an access token may do (always further limited by its owner's rights).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenScope(pub Vec<ScopeRule>);

/// A scope rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid token scope {0:?}: expected TARGET:ACTIONS, where TARGET is '*', 'namespace/*' or a repository and ACTIONS is a comma-separated list of pull, push, delete"
)]
pub struct InvalidScope(pub String);

impl TokenScope {
    /// Parses rules like `acme/*:pull,push`, `acme/app:pull` or `*:pull`.
    pub fn parse_list<S: AsRef<str>>(rules: &[S]) -> Result<Self, InvalidScope> {
        rules
            .iter()
            .map(|r| parse_rule(r.as_ref()))
            .collect::<Result<_, _>>()
            .map(TokenScope)
    }

    /// What the scope allows on `repository`.
    pub fn on(&self, repository: &str) -> Actions {
        self.0
            .iter()
            .filter(|rule| match &rule.target {
                Target::Any => true,
                Target::Namespace(ns) => namespace_of(repository) == ns,
                Target::Repository(r) => r == repository,
            })
            .fold(Actions::NONE, |set, rule| set.union(rule.actions))
    }

    /// The first rule that reaches outside `namespace` (`*`, another namespace, or a
    /// repository of another namespace), as text. A robot's scope must stay in its
    /// organization: its rights would be cut to the organization's anyway, but a scope that
    /// names more than it can ever grant misleads whoever reads it.
    pub fn outside(&self, namespace: &str) -> Option<String> {
        let rule = self.0.iter().find(|rule| match &rule.target {
            Target::Any => true,
            Target::Namespace(ns) => ns != namespace,
            Target::Repository(r) => namespace_of(r) != namespace,
        })?;
        TokenScope(vec![rule.clone()]).to_strings().pop()
    }

    /// The rules as text, as stored and shown.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|rule| {
                let target = match &rule.target {
                    Target::Any => "*".to_owned(),
                    Target::Namespace(ns) => format!("{ns}/*"),
                    Target::Repository(r) => r.clone(),
                };
                format!("{target}:{}", rule.actions)
            })
            .collect()
    }
}

fn parse_rule(s: &str) -> Result<ScopeRule, InvalidScope> {
    let bad = || InvalidScope(s.chars().take(200).collect());
    let (target, actions) = s.rsplit_once(':').ok_or_else(bad)?;
    let valid_actions = !actions.is_empty()
        && actions
            .split(',')
            .all(|a| matches!(a, "pull" | "push" | "delete" | "*"));
    if !valid_actions {
        return Err(bad());
    }
    let target = if target == "*" {
        Target::Any
    } else if let Some(ns) = target.strip_suffix("/*") {
        super::AccountName::parse(ns).map_err(|_| bad())?;
        Target::Namespace(ns.to_owned())
    } else {
        crate::domain::RepoName::parse(target).map_err(|_| bad())?;
        Target::Repository(target.to_owned())
    };
    Ok(ScopeRule {
        target,
        actions: Actions::parse_list(actions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_scopes_stay_in_their_namespace() {
        let scope = |rules: &[&str]| TokenScope::parse_list(rules).expect("parses");
        assert_eq!(
            scope(&["acme/*:pull", "acme/app:push"]).outside("acme"),
            None
        );
        assert_eq!(
            scope(&["acme/*:pull", "*:pull"]).outside("acme"),
            Some("*:pull".into())
        );
        assert_eq!(
            scope(&["acmeco/*:pull"]).outside("acme"),
            Some("acmeco/*:pull".into())
        );
        assert_eq!(
            scope(&["beta/app:pull,push"]).outside("acme"),
            Some("beta/app:pull,push".into())
        );
    }

    #[test]
    fn client_scopes_parse_as_docker_sends_them() {
        assert_eq!(
            ScopeRequest::parse("repository:acme/app:pull,push"),
            Some(ScopeRequest::Repository {
                name: RepoName::parse("acme/app").expect("name"),
                actions: Actions::PULL_PUSH
            })
        );
        assert_eq!(
            ScopeRequest::parse("repository(plugin):a/b:pull"),
            Some(ScopeRequest::Repository {
                name: RepoName::parse("a/b").expect("name"),
                actions: Actions::PULL
            })
        );
        assert_eq!(
            ScopeRequest::parse("registry:catalog:*"),
            Some(ScopeRequest::Catalog)
        );
        assert_eq!(ScopeRequest::parse("nonsense"), None);
        // Names `/v2/` would refuse are never granted, whatever their first segment.
        for bad in [
            "repository:bob/../acme/app:pull",
            "repository:bob/x/:push",
            "repository:bob/x:acme/app:push",
            "repository:Bob/app:pull",
        ] {
            assert_eq!(ScopeRequest::parse(bad), None, "{bad}");
        }
        assert_eq!(ScopeRequest::parse("repository::pull"), None);
        let all = ScopeRequest::parse_all(["repository:a:pull repository:b:push", "x:y:z"]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].to_string(), "repository:b:push");
    }

    #[test]
    fn token_scopes_match_namespaces_and_repositories() {
        let scope =
            TokenScope::parse_list(&["acme/*:pull", "acme/app:push", "*:delete"]).expect("scope");
        assert_eq!(scope.on("acme/lib"), Actions::parse_list("pull,delete"));
        assert_eq!(scope.on("acme/app"), Actions::ALL);
        assert_eq!(scope.on("other/app"), Actions::parse_list("delete"));
        assert_eq!(
            scope.to_strings(),
            ["acme/*:pull", "acme/app:push", "*:delete"]
        );
        for bad in [
            "acme",
            "acme/*:",
            "acme/*:fly",
            "Acme/*:pull",
            "../x:pull",
            ":pull",
        ] {
            assert!(TokenScope::parse_list(&[bad]).is_err(), "{bad}");
        }
    }
}
