//! Accounts that come from an identity provider: OpenID Connect (the web UI's single sign-on)
//! and LDAP directories (passwords checked by the directory, for the UI and `docker login`).
//!
//! The providers themselves live elsewhere (`oidc`, `ldap`); each turns a successful sign-in
//! into an [`ExternalIdentity`] and hands it to [`Accounts::sign_in_external`], the one place
//! that provisions accounts from a provider and keeps their memberships in step with the
//! provider's groups:
//!
//! - an identity is found by `(provider, subject)`, never by name: a provider's user whose
//!   name matches a local account (or another provider's) is refused, not merged;
//! - a new identity becomes a user at its first sign-in, in a namespace nobody has used
//!   ([`Authority::SelfService`]), so provisioning can never inherit repositories;
//! - the provider's groups decide, at every sign-in, the memberships its `[[auth.*.group]]`
//!   mappings name: membership of those organizations and teams, ownership of those
//!   organizations, and hub administration when a mapping grants it. Memberships the
//!   mappings do not name are left alone.
//!
//! Depends on `meta` ([`AccountStore`](crate::meta::AccountStore)) through [`Accounts`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::accounts::{Accounts, Authority};
use crate::auth::{AccountName, InvalidName};
use crate::meta::MetaError;
use crate::meta::accounts::{AccountChange, AccountKind, AccountRecord, Created};
use crate::meta::events::{Action, Event, Origin};

/// An identity provider kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenID Connect (`[auth.oidc]`).
    Oidc,
    /// An LDAP directory or Active Directory (`[auth.ldap]`).
    Ldap,
}

impl Provider {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Oidc => "oidc",
            Provider::Ldap => "ldap",
        }
    }

    /// How people call it, for pages and messages.
    pub fn title(self) -> &'static str {
        match self {
            Provider::Oidc => "single sign-on (OpenID Connect)",
            Provider::Ldap => "the directory (LDAP)",
        }
    }

    /// The provider a stored name stands for.
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "oidc" => Some(Provider::Oidc),
            "ldap" => Some(Provider::Ldap),
            _ => None,
        }
    }
}

/// A person as a provider vouched for them at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// Who vouches.
    pub provider: Provider,
    /// The provider's stable id (OIDC: issuer and `sub`; LDAP: the entry's DN).
    pub subject: String,
    /// The user name to provision, from the configured claim or attribute (checked against
    /// berth's name rules).
    pub name: String,
    /// The provider's groups the person is in.
    pub groups: Vec<String>,
}

/// What a provider group gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappedRole {
    /// Membership of the organization (and of the team, if one is named).
    Member,
    /// Ownership of the organization.
    Owner,
    /// Hub administration (no organization).
    Admin,
}

/// One `[[auth.oidc.group]]` or `[[auth.ldap.group]]` entry: members of provider group
/// `group` get `role` in `org` (and membership of `team` there), or hub administration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The provider's group name (OIDC: a value of the groups claim; LDAP: the group's `cn` or
    /// its DN).
    pub group: String,
    /// The organization, unless `role` is `admin`.
    #[serde(default)]
    pub org: Option<String>,
    /// A team of the organization.
    #[serde(default)]
    pub team: Option<String>,
    /// `member` (the default), `owner` or `admin`.
    #[serde(default = "member")]
    pub role: MappedRole,
}

fn member() -> MappedRole {
    MappedRole::Member
}

impl GroupMapping {
    /// Checks the mapping makes sense: an organization (and team) name for `member` and
    /// `owner`, none for `admin`; a team only with `member`.
    pub fn validate(&self) -> Result<(), String> {
        if self.group.is_empty() {
            return Err("a group mapping needs a group".into());
        }
        let name = |n: &str| AccountName::parse(n).map(|_| ()).map_err(|e| e.to_string());
        match (self.role, &self.org, &self.team) {
            (MappedRole::Admin, None, None) => Ok(()),
            (MappedRole::Admin, _, _) => Err(format!(
                "group {:?}: role = \"admin\" makes hub administrators and takes no org or team",
                self.group
            )),
            (_, None, _) => Err(format!(
                "group {:?}: role {:?} needs an org",
                self.group,
                self.role_str()
            )),
            (MappedRole::Owner, Some(_), Some(_)) => Err(format!(
                "group {:?}: owners own the whole organization; leave out team",
                self.group
            )),
            (_, Some(org), team) => {
                name(org)?;
                team.as_deref().map_or(Ok(()), name)
            }
        }
    }

    fn role_str(&self) -> &'static str {
        match self.role {
            MappedRole::Member => "member",
            MappedRole::Owner => "owner",
            MappedRole::Admin => "admin",
        }
    }
}

/// Why a provider's user could not sign in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The name the provider gave does not follow berth's name rules.
    #[error("the identity provider's user name is not a valid berth account name: {0}")]
    Name(#[from] InvalidName),
    /// An account of that name exists and is not this identity (a local account, or another
    /// provider's): it is never taken over.
    #[error(
        "an account named {0} already exists and is someone else (a local account, or another identity at a provider, such as a second e-mail address with the same local part); an administrator must rename or remove one of them"
    )]
    NameTaken(String),
    /// The name's namespace holds repositories that belong to no account.
    #[error(
        "the namespace {0} holds repositories that belong to no account; an administrator must create the account (adopting the namespace) first"
    )]
    NamespaceHeld(String),
    /// The account is disabled in berth.
    #[error("the account {0} is disabled")]
    Disabled(String),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Accounts {
    /// Signs in a person a provider vouched for: finds their account by identity (or
    /// provisions it), refuses a disabled one, syncs their memberships from their groups and
    /// records the sign-in. `from` is the client, for the audit log.
    pub async fn sign_in_external(
        &self,
        identity: &ExternalIdentity,
        from: &Origin,
    ) -> Result<AccountRecord, SignInError> {
        let provider = identity.provider.as_str();
        let by = Origin {
            actor: format!("sso:{provider}"),
            address: from.address.clone(),
        };
        let account = match self
            .store()
            .account_by_identity(provider, &identity.subject)
            .await?
        {
            Some(account) => account,
            None => self.provision(identity, &by).await?,
        };
        if account.disabled {
            return Err(SignInError::Disabled(account.name));
        }
        let account = self.sync_groups(&account, identity, &by).await?;
        let event = Event::new(Action::ExternalSignIn, from)
            .target(&account.name)
            .detail(serde_json::json!({"provider": provider, "groups": identity.groups}));
        self.store().touch_identity(account.id, &event).await?;
        Ok(account)
    }

    async fn provision(
        &self,
        identity: &ExternalIdentity,
        by: &Origin,
    ) -> Result<AccountRecord, SignInError> {
        let name = AccountName::parse(&identity.name)?;
        self.check_provisioning(&name)?;
        let event = Event::new(Action::UserCreate, by)
            .target(name.as_str())
            .detail(serde_json::json!({"provider": identity.provider.as_str()}));
        match self
            .store()
            .create_external_user(
                name.as_str(),
                identity.provider.as_str(),
                &identity.subject,
                &event,
            )
            .await?
        {
            Created::Account(id) => self
                .store()
                .account_by_id(id)
                .await?
                .ok_or_else(|| SignInError::NameTaken(name.to_string())),
            Created::NameTaken => Err(SignInError::NameTaken(name.to_string())),
            Created::NamespaceHeld { .. } => Err(SignInError::NamespaceHeld(name.to_string())),
        }
    }

    /// Makes `account`'s memberships match what its groups give under the provider's
    /// mappings. Returns the account as it is now.
    async fn sync_groups(
        &self,
        account: &AccountRecord,
        identity: &ExternalIdentity,
        by: &Origin,
    ) -> Result<AccountRecord, SignInError> {
        let mappings: Vec<&GroupMapping> = self.group_mappings(identity.provider).collect();
        if mappings.is_empty() {
            return Ok(account.clone());
        }
        let has = |m: &GroupMapping| identity.groups.contains(&m.group);
        let store = self.store();
        let mut account = account.clone();
        if mappings.iter().any(|m| m.role == MappedRole::Admin) {
            let admin = mappings
                .iter()
                .any(|m| m.role == MappedRole::Admin && has(m));
            if account.admin != admin {
                let event = Event::new(Action::UserAdmin, by)
                    .target(&account.name)
                    .detail(serde_json::json!({"admin": admin}));
                store
                    .update_account(account.id, AccountChange::Admin(admin), &event)
                    .await?;
                account.admin = admin;
            }
        }
        let orgs: BTreeSet<&str> = mappings.iter().filter_map(|m| m.org.as_deref()).collect();
        for org_name in orgs {
            let Some(org) = store
                .account(org_name)
                .await?
                .filter(|o| o.kind == AccountKind::Org)
            else {
                tracing::warn!(
                    org = org_name,
                    "a group mapping names an organization that does not exist; create it"
                );
                continue;
            };
            let here: Vec<&&GroupMapping> = mappings
                .iter()
                .filter(|m| m.org.as_deref() == Some(org_name))
                .collect();
            let given: Vec<&&&GroupMapping> = here.iter().filter(|m| has(m)).collect();
            let want = if given.iter().any(|m| m.role == MappedRole::Owner) {
                Some(true)
            } else if given.is_empty() {
                None
            } else {
                Some(false)
            };
            let now = store
                .org_members(org.id)
                .await?
                .into_iter()
                .find(|m| m.name == account.name)
                .map(|m| m.owner);
            if want != now {
                let event = super::accounts::member_event(by, &org.name, &account.name, want);
                store
                    .set_org_member(org.id, account.id, want, &event)
                    .await?;
            }
            if want.is_none() {
                // Leaving the organization left its teams too.
                continue;
            }
            let teams: BTreeSet<&str> = here.iter().filter_map(|m| m.team.as_deref()).collect();
            let current = store.teams(org.id).await?;
            for team in teams {
                let Some(record) = current.iter().find(|t| t.name == team) else {
                    tracing::warn!(
                        org = org_name,
                        team,
                        "a group mapping names a team that does not exist; create it"
                    );
                    continue;
                };
                let want = here
                    .iter()
                    .any(|m| m.team.as_deref() == Some(team) && has(m));
                if record.members.contains(&account.name) != want {
                    let action = if want {
                        Action::TeamMemberAdd
                    } else {
                        Action::TeamMemberRemove
                    };
                    let event = Event::new(action, by)
                        .target(&account.name)
                        .detail(serde_json::json!({"team": format!("{}/{team}", org.name)}));
                    store
                        .set_team_member(org.id, team, account.id, want, &event)
                        .await?;
                }
            }
        }
        Ok(account)
    }

    /// Where `account`'s identity comes from: a provider, or `None` for a local account.
    pub async fn identity_provider(
        &self,
        account: &AccountRecord,
    ) -> Result<Option<Provider>, MetaError> {
        Ok(self
            .store()
            .identity(account.id)
            .await?
            .and_then(|i| Provider::parse(&i.provider)))
    }

    /// The name rules for provisioning, as for anyone founding a namespace themselves.
    fn check_provisioning(&self, name: &AccountName) -> Result<(), SignInError> {
        match self.check_new_namespace(name, Authority::SelfService) {
            Ok(()) => Ok(()),
            Err(_) => Err(SignInError::NamespaceHeld(name.to_string())),
        }
    }
}
