//! The hub's accounts: logging in, what a principal may do, registry tokens, and the
//! administration of users, organizations, teams, visibility and access tokens.
//!
//! Depends on `auth` (rules and cryptography) and `meta` ([`AccountStore`]). The API's token
//! endpoint and access gate, the JSON admin API and `berth admin` all go through here.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::auth::jwt::{Claims, KeyError, TokenError, TokenIssuer};
use crate::auth::password::{self, PasswordError};
use crate::auth::scope::InvalidScope;
use crate::auth::throttle::{Allowances, Throttle};
use crate::auth::{
    AccessEntry, AccountName, Actions, Grants, InvalidName, Principal, Role, ScopeRequest,
    TokenScope, access, secret,
};
use crate::domain::RepoName;
use crate::meta::accounts::{
    AccountChange, AccountKind, AccountRecord, Created, MemberRecord, NamespaceClaim,
    NamespaceRecord, SessionRecord, TeamRecord, TokenRecord,
};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::{AccountStore, MetaError, now_ms};
use crate::service::identity::{GroupMapping, Provider};

use super::keys::TokenKeys;

/// Settings of the accounts service.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Token issuer (`iss`).
    pub issuer: String,
    /// Service name (`aud`, and `service` in challenges).
    pub service: String,
    /// Access token lifetime.
    pub token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_ttl_secs: u64,
    /// A PEM private key to sign with instead of the ones stored in the database.
    pub signing_key_pem: Option<String>,
    /// How long after a rotation the new key starts signing (see [`super::keys`]).
    pub key_activation_delay: Duration,
    /// Failed password logins allowed per account and address, per address, and per account
    /// before throttling.
    pub allowances: Allowances,
    /// Window over which failures count.
    pub failure_window: Duration,
    /// First lockout after too many failures (doubles with each further failure).
    pub lockout: Duration,
    /// Lifetime of a web UI session.
    pub session_ttl: Duration,
    /// Namespaces the configuration gives a purpose (pull-through mirrors): no account may
    /// be created with these names except by an administrator adopting them.
    pub reserved_namespaces: Vec<String>,
    /// What identity providers' groups give (`[[auth.oidc.group]]`, `[[auth.ldap.group]]`).
    pub group_mappings: Vec<(Provider, GroupMapping)>,
    /// Who may sign in with a password berth keeps (others use tokens or a provider).
    pub local_passwords: LocalPasswords,
}

/// Who may sign in with a password kept by berth (`auth.local_passwords`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalPasswords {
    /// Every local user.
    #[default]
    Everyone,
    /// Hub administrators only (everyone else signs in through the identity provider, or
    /// with an access token).
    Admins,
}

/// Why a login or token failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, unknown, expired or revoked token, disabled account.
    #[error("invalid username or password")]
    BadCredentials,
    /// Too many recent failures for this account or address.
    #[error("too many failed logins; retry in {} seconds", .0.as_secs().max(1))]
    Throttled(Duration),
    /// A registry or refresh token is invalid.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The LDAP directory that decides this user's password or tokens did not answer: they
    /// are refused (nothing falls back).
    #[error(transparent)]
    Directory(#[from] crate::ldap::DirectoryError),
}

/// Why an administrative operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The name is taken.
    #[error("{0} already exists")]
    Exists(String),
    /// A name does not follow the grammar.
    #[error(transparent)]
    Name(#[from] InvalidName),
    /// A repository name does not follow the grammar.
    #[error(transparent)]
    Repository(#[from] crate::domain::NameError),
    /// A token scope does not parse.
    #[error(transparent)]
    Scope(#[from] InvalidScope),
    /// The password is not acceptable.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The request makes no sense (wrong kind of account, and so on).
    #[error("{0}")]
    Invalid(String),
    /// The name's namespace holds repositories (or is reserved) and belongs to no account:
    /// an account of that name would take over what is in it.
    #[error("{}", namespace_held_message(.name, *.repositories, *.by_admin))]
    NamespaceHeld {
        /// The name asked for.
        name: String,
        /// Repositories in the namespace (0: reserved, from a deleted account or the
        /// configuration).
        repositories: i64,
        /// Whether an administrator asked (who may adopt it explicitly).
        by_admin: bool,
    },
    /// No randomness for a secret.
    #[error(transparent)]
    Random(#[from] secret::NoRandomness),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// Result of administrative operations.
pub type AdminResult<T> = Result<T, AdminError>;

fn namespace_held_message(name: &str, repositories: i64, by_admin: bool) -> String {
    let what = match repositories {
        0 => format!("the name {name} is reserved (a deleted account or a mirror held it)"),
        1 => format!("the namespace {name} holds a repository that belongs to no account"),
        n => format!("the namespace {name} holds {n} repositories that belong to no account"),
    };
    if by_admin {
        format!(
            "{what}; to create the account and give it what is there, adopt the namespace explicitly (adopt_namespace: true, or --adopt-namespace)"
        )
    } else {
        format!("{what}; only an administrator may create an account named {name}")
    }
}

/// Who creates an account, which decides what the new account may claim. Every way an account
/// comes to be (the API, the web UI, `berth admin`, single sign-on) says which this is, and
/// [`Accounts`] alone applies the rule: an account never inherits repositories by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A user founding an organization, or an identity provisioned at sign-in: the namespace
    /// must be one nobody has used.
    SelfService,
    /// A hub administrator. With `adopt_namespace`, an ownerless namespace (repositories
    /// pushed before any account had the name, or left by a deleted account) goes to the new
    /// account, explicitly; without it, such a name is refused as for anyone.
    Administrator {
        /// Take over an ownerless namespace of that name.
        adopt_namespace: bool,
    },
}

/// A newly created access token: its record and the secret, shown once.
#[derive(Debug)]
pub struct NewToken {
    /// What is stored.
    pub record: TokenRecord,
    /// The secret.
    pub secret: String,
}

/// Credentials recently verified by password, so HTTP Basic on every `/v2/` request does not
/// pay argon2 each time. Keyed by a salted hash of name and password, never the password.
struct BasicCache {
    salt: [u8; 32],
    entries: Mutex<lru::LruCache<[u8; 32], (Principal, Instant)>>,
}

/// How long a verified password is remembered. Short, so a changed password or disabled user
/// stops working promptly on every replica.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(30);

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    session_ttl: Duration,
    reserved_namespaces: Vec<String>,
    group_mappings: Vec<(Provider, GroupMapping)>,
    local_passwords: LocalPasswords,
    keys: TokenKeys,
    throttle: Throttle,
    basic: BasicCache,
    /// `[auth.ldap]`, when on.
    directory: Option<Arc<crate::ldap::Directory>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Why the accounts service could not start.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The signing key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Accounts {
    /// Opens the service: loads the configured signing key, or the ones in the database
    /// (generating and storing one if this is the first replica ever to start).
    pub async fn open(
        store: Arc<dyn AccountStore>,
        settings: &AccountSettings,
    ) -> Result<Self, AccountsError> {
        let keys = TokenKeys::open(store.clone(), settings).await?;
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| KeyError::Generate)?;
        Ok(Self {
            store,
            session_ttl: settings.session_ttl,
            reserved_namespaces: settings.reserved_namespaces.clone(),
            group_mappings: settings.group_mappings.clone(),
            local_passwords: settings.local_passwords,
            keys,
            throttle: Throttle::new(
                settings.allowances,
                settings.failure_window,
                settings.lockout,
            ),
            basic: BasicCache {
                salt,
                entries: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(4096).unwrap_or(std::num::NonZeroUsize::MIN),
                )),
            },
            directory: None,
        })
    }

    /// Lets an LDAP directory check the passwords of users without a local one (see
    /// [`crate::ldap`] and [`Accounts::login`]).
    pub fn with_directory(mut self, directory: Option<Arc<crate::ldap::Directory>>) -> Self {
        self.directory = directory;
        self
    }

    /// The token issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        self.keys.issuer()
    }

    /// The token signing keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The account store.
    pub fn store(&self) -> &Arc<dyn AccountStore> {
        &self.store
    }

    // ---- Authentication -------------------------------------------------------------------

    /// Checks a username and a password or access-token secret. Passwords are throttled (see
    /// [`crate::auth::throttle`]); token secrets are not, since nobody can guess them, so an
    /// attack on a password never locks out its account's tokens and robots.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Principal, AuthError> {
        // A name no account can have is refused before anything is looked up or kept, so
        // what a client sends as a name never becomes server state.
        if !is_login_name(username) {
            return Err(AuthError::BadCredentials);
        }
        if secret::looks_like_secret(password) {
            return match self.check_secret(username, password).await? {
                Some(principal) => Ok(principal),
                None => {
                    tracing::info!(target: "berth::auth", user = %username, %client, "token login failed");
                    Err(AuthError::BadCredentials)
                }
            };
        }
        let attempt = self.throttle.attempt(username, client);
        self.throttle
            .check(&attempt)
            .map_err(AuthError::Throttled)?;
        let cache_key = self.basic_key(username, password);
        if let Some(p) = self.cached(&cache_key) {
            return Ok(p);
        }
        if let Some(directory) = self.directory_decides(username).await? {
            // Not kept in the Basic-auth cache: the directory keeps its own, for its TTL.
            return match self
                .check_directory(directory, username, password, client)
                .await
            {
                Ok(Some(principal)) => {
                    self.throttle.succeeded(&attempt);
                    Ok(principal)
                }
                Ok(None) => {
                    tracing::info!(target: "berth::auth", user = %username, %client, "directory login failed");
                    self.throttle.failed(&attempt, true);
                    Err(AuthError::BadCredentials)
                }
                Err(e) => {
                    tracing::warn!(target: "berth::auth", user = %username, %client, error = %e, "directory login refused");
                    Err(e)
                }
            };
        }
        match self.check_password(username, password).await? {
            Ok(principal) => {
                self.throttle.succeeded(&attempt);
                self.remember(cache_key, principal.clone());
                Ok(principal)
            }
            Err(exists) => {
                tracing::info!(target: "berth::auth", user = %username, %client, "login failed");
                self.throttle.failed(&attempt, exists);
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// The directory, if it decides `username`'s password: with `[auth.ldap]` on, for every
    /// name except local accounts (those without an external identity) and other providers'.
    async fn directory_decides(
        &self,
        username: &str,
    ) -> Result<Option<&crate::ldap::Directory>, MetaError> {
        let Some(directory) = self.directory.as_deref() else {
            return Ok(None);
        };
        let Ok(name) = AccountName::parse(username) else {
            return Ok(None);
        };
        let Some(account) = self.store.account(name.as_str()).await? else {
            return Ok(Some(directory));
        };
        Ok(match self.store.identity(account.id).await? {
            Some(i) if i.provider == Provider::Ldap.as_str() => Some(directory),
            _ => None,
        })
    }

    /// Search, then bind: the directory user's principal, or `None` for a wrong password, an
    /// unknown or disabled user, or a directory name that cannot become this account.
    async fn check_directory(
        &self,
        directory: &crate::ldap::Directory,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(found) = directory.authenticate(username, password).await? else {
            return Ok(None);
        };
        if found.identity.name != username {
            // The filter matched an entry whose name attribute says otherwise.
            return Ok(None);
        }
        self.directory_account(&found, client).await
    }

    /// The account of a user the directory vouched for: signed in (groups synced, audited)
    /// when the directory was asked just now, else looked up.
    async fn directory_account(
        &self,
        found: &crate::ldap::Found,
        client: IpAddr,
    ) -> Result<Option<Principal>, AuthError> {
        let account = if found.fresh {
            let from = Origin {
                actor: found.identity.name.clone(),
                address: Some(client.to_string()),
            };
            match self.sign_in_external(&found.identity, &from).await {
                Ok(account) => Some(account),
                Err(super::identity::SignInError::Meta(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(target: "berth::auth", user = %found.identity.name, error = %e, "directory user refused");
                    None
                }
            }
        } else {
            self.store
                .account_by_identity(Provider::Ldap.as_str(), &found.identity.subject)
                .await?
        };
        Ok(account
            .filter(|a| a.kind == AccountKind::User && !a.disabled)
            .map(|a| user_principal(&a)))
    }

    /// For a token (refresh or access) of `owner`: a directory user must still be in the
    /// directory, enabled (checked behind its cache, groups synced when asked afresh).
    async fn recheck_directory(&self, owner: &AccountRecord) -> Result<bool, AuthError> {
        let Some(identity) = self.store.identity(owner.id).await? else {
            return Ok(true);
        };
        if identity.provider != Provider::Ldap.as_str() {
            return Ok(true);
        }
        let Some(directory) = self.directory.as_deref() else {
            // `[auth.ldap]` was turned off: nobody vouches for this user any more.
            return Ok(false);
        };
        let Some(found) = directory.lookup(&identity.subject).await? else {
            tracing::info!(target: "berth::auth", user = %owner.name, "directory user gone or disabled; token refused");
            return Ok(false);
        };
        let client = IpAddr::from([0, 0, 0, 0]);
        Ok(self.directory_account(&found, client).await?.is_some())
    }

    /// How many failed logins the throttle remembers, per table (for tests of its bounds).
    pub fn throttle_sizes(&self) -> [usize; 4] {
        self.throttle.sizes()
    }

    /// The user `username` if `password` is theirs; otherwise whether such a user exists
    /// (enabled), which decides whether the failure counts against the account.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Result<Principal, bool>, MetaError> {
        let account = match AccountName::parse(username) {
            Ok(name) => self.store.account(name.as_str()).await?,
            Err(_) => None,
        };
        let account = account.filter(|a| a.kind == AccountKind::User && !a.disabled);
        // With `local_passwords = "admins"` a non-administrator's password is checked all the
        // same (the answer takes as long) but never accepted.
        let allowed = account
            .as_ref()
            .is_some_and(|a| a.admin || self.local_passwords == LocalPasswords::Everyone);
        let hash = account.as_ref().and_then(|a| a.password_hash.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, hash.as_deref()))
            .await
            .unwrap_or(false);
        Ok(match account {
            Some(a) if ok && allowed => Ok(user_principal(&a)),
            found => Err(found.is_some()),
        })
    }

    /// A token secret presented with its login name: the owning user's name for personal
    /// tokens, `org+robot` for robot accounts.
    async fn check_secret(
        &self,
        username: &str,
        secret_text: &str,
    ) -> Result<Option<Principal>, AuthError> {
        let hash = secret::hash(secret_text);
        let Some(token) = self.store.token_by_hash(&hash).await? else {
            return Ok(None);
        };
        let login = login_name(&token);
        // The name must match too (constant-time, though the secret already decided).
        if !secret::constant_time_eq(login.as_bytes(), username.as_bytes()) {
            return Ok(None);
        }
        let mut principal = self.token_principal(&token).await?;
        if principal.is_some() {
            let owner = self.store.account_by_id(token.owner_id).await?;
            let current = match &owner {
                Some(o) => self.recheck_directory(o).await?,
                None => false,
            };
            if !current {
                principal = None;
            }
        }
        if principal.is_some() {
            // Best effort: a failed bookkeeping write must not fail the login.
            if let Err(e) = self.store.touch_token(token.id).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        }
        Ok(principal)
    }

    /// The principal of a stored token, if it is active and its owner enabled.
    async fn token_principal(&self, token: &TokenRecord) -> Result<Option<Principal>, MetaError> {
        let now = now_ms();
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let Some(owner) = self.store.account_by_id(token.owner_id).await? else {
            return Ok(None);
        };
        if owner.disabled {
            return Ok(None);
        }
        let Ok(scope) = TokenScope::parse_list(&token.scopes) else {
            return Err(MetaError::Corrupt {
                table: "access_tokens",
                reason: "unparsable scope".into(),
            });
        };
        Ok(Some(Principal::Token {
            id: token.id,
            owner_id: token.owner_id,
            login: login_name(token),
            scope,
        }))
    }

    /// The principal a refresh token stands for, if its account (and token) are still valid
    /// and no password change or disabling happened since it was issued.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Principal, AuthError> {
        let claims = self.keys.verify_refresh(refresh_token).await?;
        let account = self
            .store
            .account_by_id(claims.uid)
            .await?
            .filter(|a| !a.disabled && a.credential_epoch == claims.epoch)
            .ok_or(AuthError::BadCredentials)?;
        if !self.recheck_directory(&account).await? {
            return Err(AuthError::BadCredentials);
        }
        match claims.tid {
            None if account.kind == AccountKind::User => Ok(user_principal(&account)),
            None => Err(AuthError::BadCredentials),
            Some(tid) => {
                let token = self
                    .store
                    .token_by_id(tid)
                    .await?
                    .ok_or(AuthError::BadCredentials)?;
                self.token_principal(&token)
                    .await?
                    .ok_or(AuthError::BadCredentials)
            }
        }
    }

    /// A refresh token for a principal that logged in (`None` for anonymous).
    pub async fn refresh_token_for(
        &self,
        principal: &Principal,
    ) -> Result<Option<String>, AuthError> {
        let (uid, tid) = match principal {
            Principal::Anonymous => return Ok(None),
            Principal::User { id, .. } => (*id, None),
            Principal::Token { id, owner_id, .. } => (*owner_id, Some(*id)),
        };
        let epoch = self
            .store
            .account_by_id(uid)
            .await?
            .map(|a| a.credential_epoch)
            .ok_or(AuthError::BadCredentials)?;
        Ok(Some(self.issuer().issue_refresh(
            principal.subject(),
            uid,
            tid,
            epoch,
        )?))
    }

    // ---- Web UI sessions -------------------------------------------------------------------

    /// Signs a user in with a password (never an access token: those are for registry
    /// clients) and starts a browser session. Returns the session secret for the cookie.
    pub async fn start_session(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(Principal, String), AuthError> {
        if secret::looks_like_secret(password) {
            return Err(AuthError::BadCredentials);
        }
        let principal = self.login(username, password, client).await?;
        let Principal::User { id, .. } = &principal else {
            return Err(AuthError::BadCredentials);
        };
        let account = self
            .store
            .account_by_id(*id)
            .await?
            .ok_or(AuthError::BadCredentials)?;
        let session_secret = self.open_session(&account).await?;
        Ok((principal, session_secret))
    }

    /// Starts a browser session for `account`, whose identity was checked elsewhere (a
    /// password above, or an identity provider). Returns the secret for the cookie.
    pub async fn open_session(&self, account: &AccountRecord) -> Result<String, AuthError> {
        let session_secret = secret::generate().map_err(|_| AuthError::BadCredentials)?;
        let ttl = i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX);
        self.store
            .create_session(
                &secret::hash(&session_secret),
                SessionRecord {
                    account_id: account.id,
                    credential_epoch: account.credential_epoch,
                    expires_at: now_ms().saturating_add(ttl),
                },
            )
            .await?;
        Ok(session_secret)
    }

    /// The user a session secret stands for, while the session is unexpired, the account
    /// enabled and its password unchanged since the sign-in. A directory user must also
    /// still be in the directory and enabled (asked again once its cache has let go, as for
    /// tokens): a session whose user is gone or disabled there is ended, and while the
    /// directory does not answer the session is not honoured.
    pub async fn session(&self, session_secret: &str) -> Result<Option<AccountRecord>, MetaError> {
        let hash = secret::hash(session_secret);
        let Some(session) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let Some(account) = self
            .store
            .account_by_id(session.account_id)
            .await?
            .filter(|a| {
                a.kind == AccountKind::User
                    && !a.disabled
                    && a.credential_epoch == session.credential_epoch
            })
        else {
            return Ok(None);
        };
        match self.recheck_directory(&account).await {
            Ok(true) => Ok(Some(account)),
            Ok(false) => {
                tracing::info!(target: "berth::auth", user = %account.name, "directory user gone or disabled; web session ended");
                self.store.delete_session(&hash).await?;
                Ok(None)
            }
            Err(AuthError::Meta(e)) => Err(e),
            Err(e) => {
                tracing::warn!(target: "berth::auth", user = %account.name, error = %e, "web session not honoured");
                Ok(None)
            }
        }
    }

    /// How long a new session lasts.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// Ends a session (signing out).
    pub async fn end_session(&self, session_secret: &str) -> Result<(), MetaError> {
        self.store
            .delete_session(&secret::hash(session_secret))
            .await?;
        Ok(())
    }

    /// Whether the user administers organization `org` (hub administrator or owner).
    pub async fn manages_org(&self, user: &AccountRecord, org: &str) -> AdminResult<bool> {
        if user.admin {
            return Ok(true);
        }
        let members = self.members(org).await?;
        Ok(members.iter().any(|m| m.owner && m.name == user.name))
    }

    fn basic_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.basic.salt);
        h.update(username.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let mut entries = self
            .basic
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(key) {
            Some((p, at)) if at.elapsed() < BASIC_CACHE_TTL => Some(p.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Drops every remembered password check, so a changed password, a disabled or deleted
    /// user or a changed role takes effect at once on this replica (others forget within
    /// [`BASIC_CACHE_TTL`]).
    fn forget_verified_passwords(&self) {
        self.basic
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn remember(&self, key: [u8; 32], principal: Principal) {
        let mut entries = self
            .basic
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.put(key, (principal, Instant::now()));
    }

    // ---- Authorization --------------------------------------------------------------------

    /// What the database grants the principal's account.
    pub async fn grants(&self, principal: &Principal) -> Result<Grants, MetaError> {
        match principal {
            Principal::Anonymous => Ok(Grants::default()),
            Principal::User { id, .. } => self.store.grants(*id).await,
            Principal::Token { owner_id, .. } => self.store.grants(*owner_id).await,
        }
    }

    /// What the principal (with `grants`) may do on `repository`.
    pub async fn allowed(
        &self,
        principal: &Principal,
        grants: &Grants,
        repository: &str,
    ) -> Result<Actions, MetaError> {
        let granted = access::allowed(principal, grants, repository, false);
        if granted.contains(crate::auth::Action::Pull) {
            return Ok(granted);
        }
        let public = self.store.is_public(repository).await?;
        Ok(access::allowed(principal, grants, repository, public))
    }

    /// A registry token for `principal` holding, for each requested scope, the intersection
    /// of what was asked and what is granted (scopes granting nothing are left out).
    pub async fn token_for(
        &self,
        principal: &Principal,
        requests: &[ScopeRequest],
    ) -> Result<(String, Vec<AccessEntry>), AuthError> {
        let grants = self.grants(principal).await?;
        let mut access = Vec::new();
        for request in requests {
            match request {
                ScopeRequest::Repository { name, actions } => {
                    let granted = self
                        .allowed(principal, &grants, name.as_str())
                        .await?
                        .intersect(*actions);
                    if !granted.is_empty() {
                        access.push(AccessEntry {
                            kind: "repository".into(),
                            name: name.to_string(),
                            actions: granted.names(),
                        });
                    }
                }
                // Anyone may ask to list; the listing shows only what they may read.
                ScopeRequest::Catalog => access.push(AccessEntry {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                }),
            }
        }
        let (uid, tid) = match principal {
            Principal::Anonymous => (None, None),
            Principal::User { id, .. } => (Some(*id), None),
            Principal::Token { id, owner_id, .. } => (Some(*owner_id), Some(*id)),
        };
        let token = self
            .issuer()
            .issue(principal.subject(), uid, tid, access.clone())?;
        Ok((token, access))
    }

    /// Verifies a registry token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.keys.verify(token).await
    }

    /// The principal a verified token's subject is now (to tell a client whose token is too
    /// narrow from one that may not do something at all, and to filter the catalog). A
    /// subject that no longer exists, or is disabled or revoked, is anonymous.
    pub async fn subject_principal(&self, claims: &Claims) -> Result<Principal, MetaError> {
        if claims.sub.is_empty() {
            return Ok(Principal::Anonymous);
        }
        if let Some(tid) = claims.tid {
            return Ok(match self.store.token_by_id(tid).await? {
                Some(token) => self
                    .token_principal(&token)
                    .await?
                    .unwrap_or(Principal::Anonymous),
                None => Principal::Anonymous,
            });
        }
        // By id: the name may belong to another account by now. Tokens without `uid` were
        // issued before it existed and expire within one token lifetime.
        let account = match claims.uid {
            Some(uid) => self.store.account_by_id(uid).await?,
            None => self.store.account(&claims.sub).await?,
        };
        Ok(match account {
            Some(a) if !a.disabled && a.kind == AccountKind::User && a.name == claims.sub => {
                user_principal(&a)
            }
            _ => Principal::Anonymous,
        })
    }

    // ---- Administration -------------------------------------------------------------------

    /// Creates a user (see [`Authority`] for what the new account may claim).
    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        admin: bool,
        authority: Authority,
        by: &Origin,
    ) -> AdminResult<AccountRecord> {
        let name = AccountName::parse(name)?;
        let hash = hash_password(password).await?;
        let event = Event::new(Action::UserCreate, by)
            .target(name.as_str())
            .detail(serde_json::json!({"admin": admin}));
        self.create_account(
            &name,
            AccountKind::User,
            Some(&hash),
            admin,
            authority,
            event,
        )
        .await
    }

    /// Creates an organization, owned by `owner` if given (see [`Authority`] for what the new
    /// account may claim).
    pub async fn create_org(
        &self,
        name: &str,
        owner: Option<&str>,
        authority: Authority,
        by: &Origin,
    ) -> AdminResult<AccountRecord> {
        let name = AccountName::parse(name)?;
        let owner = match owner {
            Some(o) => Some(self.account(o, Some(AccountKind::User)).await?),
            None => None,
        };
        let event = Event::new(Action::OrgCreate, by).target(name.as_str());
        let org = self
            .create_account(&name, AccountKind::Org, None, false, authority, event)
            .await?;
        if let Some(owner) = owner {
            let event = member_event(by, name.as_str(), &owner.name, Some(true));
            self.store
                .set_org_member(org.id, owner.id, Some(true), &event)
                .await?;
        }
        Ok(org)
    }

    /// The one place an account comes to be: the name must be free, and its namespace one
    /// nobody has used unless an administrator adopts it.
    async fn create_account(
        &self,
        name: &AccountName,
        kind: AccountKind,
        password_hash: Option<&str>,
        admin: bool,
        authority: Authority,
        event: Event,
    ) -> AdminResult<AccountRecord> {
        let by_admin = matches!(authority, Authority::Administrator { .. });
        let claim = match authority {
            Authority::Administrator {
                adopt_namespace: true,
            } => NamespaceClaim::Adopt,
            _ => NamespaceClaim::New,
        };
        let held = |repositories| AdminError::NamespaceHeld {
            name: name.to_string(),
            repositories,
            by_admin,
        };
        self.check_new_namespace(name, authority)?;
        let mut event = event;
        if claim == NamespaceClaim::Adopt {
            // The audit log says the account took over an ownerless namespace.
            let mut detail = event.detail.take().unwrap_or_else(|| serde_json::json!({}));
            detail["adopted_namespace"] = true.into();
            event.detail = Some(detail);
        }
        match self
            .store
            .create_account(name.as_str(), kind, password_hash, admin, claim, &event)
            .await?
        {
            Created::Account(_) => self.account(name.as_str(), Some(kind)).await,
            Created::NameTaken => Err(AdminError::Exists(format!("an account named {name}"))),
            Created::NamespaceHeld { repositories } => Err(held(repositories)),
        }
    }

    /// Refuses, before any write, a name the configuration reserves (a mirror's namespace)
    /// unless an administrator adopts it.
    pub(super) fn check_new_namespace(
        &self,
        name: &AccountName,
        authority: Authority,
    ) -> AdminResult<()> {
        let adopting = authority
            == Authority::Administrator {
                adopt_namespace: true,
            };
        if !adopting && self.reserved_namespaces.iter().any(|r| r == name.as_str()) {
            return Err(AdminError::NamespaceHeld {
                name: name.to_string(),
                repositories: 0,
                by_admin: matches!(authority, Authority::Administrator { .. }),
            });
        }
        Ok(())
    }

    /// The group mappings of `provider`, in configuration order.
    pub(super) fn group_mappings(&self, provider: Provider) -> impl Iterator<Item = &GroupMapping> {
        self.group_mappings
            .iter()
            .filter(move |(p, _)| *p == provider)
            .map(|(_, m)| m)
    }

    /// Every namespace with its owner (none: administrators alone) and its repositories.
    pub async fn namespaces(&self) -> AdminResult<Vec<NamespaceRecord>> {
        Ok(self.store.namespaces().await?)
    }

    /// An account by name, of the given kind.
    pub async fn account(
        &self,
        name: &str,
        kind: Option<AccountKind>,
    ) -> AdminResult<AccountRecord> {
        let what = match kind {
            Some(AccountKind::User) => "user",
            Some(AccountKind::Org) => "organization",
            None => "account",
        };
        self.store
            .account(name)
            .await?
            .filter(|a| kind.is_none_or(|k| a.kind == k))
            .ok_or_else(|| AdminError::NotFound(format!("{what} {}", truncate(name))))
    }

    /// Every user or organization.
    pub async fn list(&self, kind: AccountKind) -> AdminResult<Vec<AccountRecord>> {
        Ok(self.store.accounts(kind).await?)
    }

    /// Changes a user's password (refresh tokens issued before stop working).
    pub async fn set_password(&self, user: &str, password: &str, by: &Origin) -> AdminResult<()> {
        let account = self.account(user, Some(AccountKind::User)).await?;
        let hash = hash_password(password).await?;
        let event = Event::new(Action::UserPassword, by).target(&account.name);
        self.store
            .update_account(account.id, AccountChange::Password(hash), &event)
            .await?;
        self.forget_verified_passwords();
        Ok(())
    }

    /// Makes a user a hub administrator or not.
    pub async fn set_admin(&self, user: &str, admin: bool, by: &Origin) -> AdminResult<()> {
        let account = self.account(user, Some(AccountKind::User)).await?;
        let event = Event::new(Action::UserAdmin, by)
            .target(&account.name)
            .detail(serde_json::json!({"admin": admin}));
        self.store
            .update_account(account.id, AccountChange::Admin(admin), &event)
            .await?;
        self.forget_verified_passwords();
        Ok(())
    }

    /// Disables or enables a user or organization (a disabled organization's robots stop).
    pub async fn set_disabled(&self, name: &str, disabled: bool, by: &Origin) -> AdminResult<()> {
        let account = self.account(name, None).await?;
        let event = Event::new(Action::AccountDisabled, by)
            .target(&account.name)
            .detail(serde_json::json!({"disabled": disabled}));
        self.store
            .update_account(account.id, AccountChange::Disabled(disabled), &event)
            .await?;
        self.forget_verified_passwords();
        Ok(())
    }

    /// Deletes a user or organization with its memberships, teams and tokens. Its
    /// repositories stay, owned by nobody (administrators alone reach them), and its name stays
    /// reserved while they do; a namespace with no repository is released.
    pub async fn delete_account(&self, name: &str, by: &Origin) -> AdminResult<()> {
        let account = self.account(name, None).await?;
        let event = Event::new(Action::AccountDelete, by)
            .target(&account.name)
            .detail(serde_json::json!({"kind": account.kind.as_str()}));
        self.store.delete_account(account.id, &event).await?;
        self.forget_verified_passwords();
        Ok(())
    }

    /// Adds a user to an organization, as owner or member (or changes which).
    pub async fn add_member(
        &self,
        org: &str,
        user: &str,
        owner: bool,
        by: &Origin,
    ) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let user = self.account(user, Some(AccountKind::User)).await?;
        let event = member_event(by, &org.name, &user.name, Some(owner));
        self.store
            .set_org_member(org.id, user.id, Some(owner), &event)
            .await?;
        Ok(())
    }

    /// Removes a user from an organization and its teams.
    pub async fn remove_member(&self, org: &str, user: &str, by: &Origin) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let user = self.account(user, Some(AccountKind::User)).await?;
        let event = member_event(by, &org.name, &user.name, None);
        if !self
            .store
            .set_org_member(org.id, user.id, None, &event)
            .await?
        {
            return Err(AdminError::NotFound(format!(
                "member {} of {}",
                user.name, org.name
            )));
        }
        Ok(())
    }

    /// An organization's members.
    pub async fn members(&self, org: &str) -> AdminResult<Vec<MemberRecord>> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        Ok(self.store.org_members(org.id).await?)
    }

    /// Creates a team.
    pub async fn create_team(&self, org: &str, team: &str, by: &Origin) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let team = AccountName::parse(team)?;
        let event = Event::new(Action::TeamCreate, by).target(format!("{}/{team}", org.name));
        if !self
            .store
            .create_team(org.id, team.as_str(), &event)
            .await?
        {
            return Err(AdminError::Exists(format!("team {team} in {}", org.name)));
        }
        Ok(())
    }

    /// Deletes a team.
    pub async fn delete_team(&self, org: &str, team: &str, by: &Origin) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let event = Event::new(Action::TeamDelete, by).target(format!("{}/{team}", org.name));
        if !self.store.delete_team(org.id, team, &event).await? {
            return Err(AdminError::NotFound(format!(
                "team {} in {}",
                truncate(team),
                org.name
            )));
        }
        Ok(())
    }

    /// An organization's teams.
    pub async fn teams(&self, org: &str) -> AdminResult<Vec<TeamRecord>> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        Ok(self.store.teams(org.id).await?)
    }

    /// Adds a user to a team (making them a member of the organization if needed) or removes
    /// them.
    pub async fn set_team_member(
        &self,
        org: &str,
        team: &str,
        user: &str,
        member: bool,
        by: &Origin,
    ) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let user = self.account(user, Some(AccountKind::User)).await?;
        if member {
            let already = self
                .store
                .org_members(org.id)
                .await?
                .iter()
                .any(|m| m.name == user.name);
            if !already {
                let event = member_event(by, &org.name, &user.name, Some(false));
                self.store
                    .set_org_member(org.id, user.id, Some(false), &event)
                    .await?;
            }
        }
        let action = if member {
            Action::TeamMemberAdd
        } else {
            Action::TeamMemberRemove
        };
        let event = Event::new(action, by)
            .target(&user.name)
            .detail(serde_json::json!({"team": format!("{}/{team}", org.name)}));
        self.store
            .set_team_member(org.id, team, user.id, member, &event)
            .await?
            .ok_or_else(|| {
                AdminError::NotFound(format!("team {} in {}", truncate(team), org.name))
            })?;
        Ok(())
    }

    /// Gives a team a role on the whole organization (`repository = None`) or on one of its
    /// repositories, or takes it away (`role = None`).
    pub async fn set_team_grant(
        &self,
        org: &str,
        team: &str,
        repository: Option<&str>,
        role: Option<Role>,
        by: &Origin,
    ) -> AdminResult<()> {
        let org = self.account(org, Some(AccountKind::Org)).await?;
        let repository = match repository {
            Some(r) => {
                let r = RepoName::parse(r)?;
                if access::namespace_of(r.as_str()) != org.name {
                    return Err(AdminError::Invalid(format!(
                        "repository {r} is not in organization {}'s namespace",
                        org.name
                    )));
                }
                r.as_str().to_owned()
            }
            None => String::new(),
        };
        let action = if role.is_some() {
            Action::GrantSet
        } else {
            Action::GrantRemove
        };
        let mut event = Event::new(action, by)
            .target(format!("{}/{team}", org.name))
            .detail(serde_json::json!({"role": role.map(Role::as_str)}));
        if !repository.is_empty() {
            event = event.on(&repository);
        }
        self.store
            .set_team_grant(org.id, team, &repository, role, &event)
            .await?
            .ok_or_else(|| {
                AdminError::NotFound(format!("team {} in {}", truncate(team), org.name))
            })?;
        Ok(())
    }

    /// Makes a repository public (anyone may pull) or private.
    pub async fn set_public(&self, repository: &str, public: bool, by: &Origin) -> AdminResult<()> {
        let r = RepoName::parse(repository)?;
        let event = Event::new(Action::Visibility, by)
            .on(r.as_str())
            .detail(serde_json::json!({"public": public}));
        self.store.set_public(r.as_str(), public, &event).await?;
        Ok(())
    }

    /// Whether a repository is public.
    pub async fn is_public(&self, repository: &str) -> AdminResult<bool> {
        Ok(self.store.is_public(repository).await?)
    }

    /// Creates an access token for a user (personal) or organization (robot account), with
    /// scope rules like `acme/*:pull,push`, expiring after `expires_in` if given.
    pub async fn create_token(
        &self,
        owner: &str,
        name: &str,
        scopes: &[String],
        expires_in: Option<Duration>,
        by: &Origin,
    ) -> AdminResult<NewToken> {
        let owner = self.account(owner, None).await?;
        let name = AccountName::parse(name)?;
        let scope = TokenScope::parse_list(scopes)?;
        if scope.0.is_empty() {
            return Err(AdminError::Invalid(
                "a token needs at least one scope".into(),
            ));
        }
        if owner.kind == AccountKind::Org
            && let Some(rule) = scope.outside(&owner.name)
        {
            return Err(AdminError::Invalid(format!(
                "robot scope {rule} reaches outside organization {org}: use {org}/* or repositories under {org}/",
                org = owner.name
            )));
        }
        let secret = secret::generate()?;
        let expires_at = expires_in
            .map(|d| now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        // The token's name and scopes, never its secret.
        let event = Event::new(Action::TokenCreate, by)
            .target(token_target(&owner, name.as_str()))
            .detail(serde_json::json!({"scopes": scope.to_strings(), "expires_at": expires_at}));
        let id = self
            .store
            .create_token(
                owner.id,
                name.as_str(),
                &secret::hash(&secret),
                &scope.to_strings(),
                expires_at,
                &event,
            )
            .await?
            .ok_or_else(|| {
                AdminError::Exists(format!("a token named {name} for {}", owner.name))
            })?;
        let record = self
            .store
            .token_by_id(id)
            .await?
            .ok_or_else(|| AdminError::NotFound("the new token".into()))?;
        Ok(NewToken { record, secret })
    }

    /// Tokens of one user or organization, or of everyone.
    pub async fn tokens(&self, owner: Option<&str>) -> AdminResult<Vec<TokenRecord>> {
        let owner = match owner {
            Some(o) => Some(self.account(o, None).await?.id),
            None => None,
        };
        Ok(self.store.tokens(owner).await?)
    }

    /// Revokes a token by owner and name.
    pub async fn revoke_token(&self, owner: &str, name: &str, by: &Origin) -> AdminResult<()> {
        let owner = self.account(owner, None).await?;
        let event = Event::new(Action::TokenRevoke, by).target(token_target(&owner, name));
        if !self.store.revoke_token(owner.id, name, &event).await? {
            return Err(AdminError::NotFound(format!(
                "active token {} of {}",
                truncate(name),
                owner.name
            )));
        }
        Ok(())
    }
}

/// The audit event of a change of `user`'s membership of `org` (`None`: removed).
pub(super) fn member_event(by: &Origin, org: &str, user: &str, owner: Option<bool>) -> Event {
    let action = if owner.is_some() {
        Action::MemberSet
    } else {
        Action::MemberRemove
    };
    let mut detail = serde_json::json!({"org": org});
    if let Some(owner) = owner {
        detail["owner"] = owner.into();
    }
    Event::new(action, by).target(user).detail(detail)
}

/// How the audit log names a token: `owner/name` for a personal token, `org+name` for a
/// robot account.
fn token_target(owner: &AccountRecord, name: &str) -> String {
    match owner.kind {
        AccountKind::User => format!("{}/{name}", owner.name),
        AccountKind::Org => format!("{}+{name}", owner.name),
    }
}

/// The name a token logs in with: its user's name, or `org+robot`.
pub fn login_name(token: &TokenRecord) -> String {
    match token.owner_kind {
        AccountKind::User => token.owner_name.clone(),
        AccountKind::Org => format!("{}+{}", token.owner_name, token.name),
    }
}

/// The principal of a user account.
pub fn user_principal(a: &AccountRecord) -> Principal {
    Principal::User {
        id: a.id,
        name: AccountName::stored(a.name.clone()),
        admin: a.admin,
    }
}

async fn hash_password(password: &str) -> Result<String, PasswordError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|_| PasswordError::Hash)?
}

/// Whether `name` is one an account or robot can log in with: an account name, or
/// `org+robot`. Anything else (too long, odd characters) cannot succeed.
fn is_login_name(name: &str) -> bool {
    match name.split_once('+') {
        Some((org, robot)) => AccountName::parse(org).is_ok() && AccountName::parse(robot).is_ok(),
        None => AccountName::parse(name).is_ok(),
    }
}

/// A user-supplied name cut short for messages and logs.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
