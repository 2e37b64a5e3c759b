//! The permission rules: what a principal may do on a repository.
//!
//! Everything not granted is denied. A user has every right on their own namespace (the first
//! segment of a repository name); an organization's owners have every right on its namespace;
//! its teams have the role they were granted on the whole organization or on chosen
//! repositories; administrators have every right everywhere. Public repositories add `pull`
//! for everyone, signed in or not. An access token never exceeds its owner's rights: what it
//! may do is its owner's rights intersected with its scope.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{AccountName, TokenScope};

/// One thing a client may do to a repository, as the token protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and manifests, move tags.
    Push,
    /// Delete manifests, tags and blob links.
    Delete,
}

impl Action {
    /// Every action, in protocol order.
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The protocol's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }
}

/// A set of actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Actions(u8);

impl Actions {
    /// Nothing.
    pub const NONE: Actions = Actions(0);
    /// Pull only.
    pub const PULL: Actions = Actions(1);
    /// Pull and push.
    pub const PULL_PUSH: Actions = Actions(3);
    /// Everything.
    pub const ALL: Actions = Actions(7);

    /// The set holding one action.
    pub fn of(action: Action) -> Self {
        Actions(action.bit())
    }

    /// Whether `action` is in the set.
    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether every action of `other` is in the set.
    pub fn covers(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    /// What both sets hold.
    #[must_use]
    pub fn intersect(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }

    /// The actions, in protocol order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// The protocol's names (`pull`, `push`, `delete`).
    pub fn names(self) -> Vec<String> {
        self.iter().map(|a| a.as_str().to_owned()).collect()
    }

    /// Parses a comma-separated list; `*` means everything. Unknown names are ignored, as the
    /// token protocol lets a client ask for actions a registry does not know.
    pub fn parse_list(s: &str) -> Actions {
        s.split(',').fold(Actions::NONE, |set, name| {
            set.union(match name.trim() {
                "pull" => Actions::PULL,
                "push" => Actions::of(Action::Push),
                "delete" => Actions::of(Action::Delete),
                "*" => Actions::ALL,
                _ => Actions::NONE,
            })
        })
    }
}

impl std::fmt::Display for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// A team's role on an organization or a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pull.
    Read,
    /// Pull and push.
    Write,
    /// Pull, push and delete.
    Admin,
}

impl Role {
    /// The actions the role allows.
    pub fn actions(self) -> Actions {
        match self {
            Role::Read => Actions::PULL,
            Role::Write => Actions::PULL_PUSH,
            Role::Admin => Actions::ALL,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A signed-in user.
    User {
        /// Account id.
        id: i64,
        /// User name.
        name: AccountName,
        /// Whether the user administers the whole hub.
        admin: bool,
    },
    /// An access token: a user's personal token or an organization's robot account.
    Token {
        /// Token id.
        id: i64,
        /// The owning user's or organization's id.
        owner_id: i64,
        /// The name clients log in with: the user's name, or `org+robot` for robots.
        login: String,
        /// What the token may do at most.
        scope: TokenScope,
    },
}

impl Principal {
    /// The name tokens carry in `sub`; empty for anonymous.
    pub fn subject(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User { name, .. } => name.as_str(),
            Principal::Token { login, .. } => login,
        }
    }

    /// Whether the principal presented no credentials.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }
}

/// The rights the database grants one account, loaded once per request or token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Every right everywhere (hub administrators).
    pub admin: bool,
    /// Rights on whole namespaces: the user's own, organizations they own, team roles on
    /// organizations (for a robot: its organization).
    pub namespaces: HashMap<String, Actions>,
    /// Rights on single repositories from team grants.
    pub repositories: HashMap<String, Actions>,
}

impl Grants {
    /// The rights on `repository` (public visibility not included).
    pub fn on(&self, repository: &str) -> Actions {
        if self.admin {
            return Actions::ALL;
        }
        let namespace = namespace_of(repository);
        let by_namespace = self.namespaces.get(namespace).copied().unwrap_or_default();
        let by_repository = self
            .repositories
            .get(repository)
            .copied()
            .unwrap_or_default();
        by_namespace.union(by_repository)
    }

    /// Adds rights on a namespace.
    pub fn grant_namespace(&mut self, namespace: &str, actions: Actions) {
        let entry = self.namespaces.entry(namespace.to_owned()).or_default();
        *entry = entry.union(actions);
    }

    /// Adds rights on a repository.
    pub fn grant_repository(&mut self, repository: &str, actions: Actions) {
        let entry = self.repositories.entry(repository.to_owned()).or_default();
        *entry = entry.union(actions);
    }
}

/// What `principal`, whose owner has `grants`, may do on `repository`, which is public or
/// not.
pub fn allowed(principal: &Principal, grants: &Grants, repository: &str, public: bool) -> Actions {
    let granted = match principal {
        Principal::Anonymous => Actions::NONE,
        Principal::User { .. } => grants.on(repository),
        Principal::Token { scope, .. } => grants.on(repository).intersect(scope.on(repository)),
    };
    if public {
        granted.union(Actions::PULL)
    } else {
        granted
    }
}

/// The namespace of a repository: its first path segment.
pub fn namespace_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Principal {
        Principal::User {
            id: 1,
            name: AccountName::parse("alice").expect("name"),
            admin: false,
        }
    }

    #[test]
    fn owners_teams_and_public_repositories_combine() {
        let mut g = Grants::default();
        g.grant_namespace("alice", Actions::ALL);
        g.grant_namespace("acme", Actions::PULL);
        g.grant_repository("acme/app", Actions::PULL_PUSH);
        let p = user();
        assert_eq!(allowed(&p, &g, "alice/x/y", false), Actions::ALL);
        assert_eq!(allowed(&p, &g, "acme/lib", false), Actions::PULL);
        assert_eq!(allowed(&p, &g, "acme/app", false), Actions::PULL_PUSH);
        assert_eq!(allowed(&p, &g, "bob/app", false), Actions::NONE);
        assert_eq!(allowed(&p, &g, "bob/app", true), Actions::PULL);
        // A prefix of a namespace is not the namespace.
        assert_eq!(allowed(&p, &g, "alicex/app", false), Actions::NONE);
        assert_eq!(
            allowed(&Principal::Anonymous, &g, "alice/x", false),
            Actions::NONE
        );
        assert_eq!(
            allowed(&Principal::Anonymous, &g, "alice/x", true),
            Actions::PULL
        );
    }

    #[test]
    fn tokens_never_exceed_their_owner() {
        let mut g = Grants::default();
        g.grant_namespace("alice", Actions::ALL);
        let scope = TokenScope::parse_list(&["*:pull,push,delete"]).expect("scope");
        let token = Principal::Token {
            id: 1,
            owner_id: 1,
            login: "alice".into(),
            scope,
        };
        assert_eq!(allowed(&token, &g, "alice/app", false), Actions::ALL);
        assert_eq!(allowed(&token, &g, "bob/app", false), Actions::NONE);
        let narrow = Principal::Token {
            id: 2,
            owner_id: 1,
            login: "alice".into(),
            scope: TokenScope::parse_list(&["alice/app:pull"]).expect("scope"),
        };
        assert_eq!(allowed(&narrow, &g, "alice/app", false), Actions::PULL);
        assert_eq!(allowed(&narrow, &g, "alice/other", false), Actions::NONE);
    }

    #[test]
    fn administrators_may_do_anything() {
        let g = Grants {
            admin: true,
            ..Grants::default()
        };
        assert_eq!(allowed(&user(), &g, "any/repo", false), Actions::ALL);
    }

    #[test]
    fn action_lists_parse_leniently() {
        assert_eq!(Actions::parse_list("pull,push"), Actions::PULL_PUSH);
        assert_eq!(Actions::parse_list("*"), Actions::ALL);
        assert_eq!(Actions::parse_list("pull,frobnicate"), Actions::PULL);
        assert_eq!(Actions::parse_list(""), Actions::NONE);
        assert_eq!(Actions::ALL.to_string(), "pull,push,delete");
    }
}
