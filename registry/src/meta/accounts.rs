//! Accounts, organizations, teams, grants, visibility, access tokens and the signing keys in
//! SQL: the [`AccountStore`] half of the metadata seam.
//!
//! The statements are written once in [`account_queries!`] for both databases, and
//! [`impl_account_store!`] implements the trait on each store from its own read connection
//! and write transaction, so SQLite and PostgreSQL cannot drift apart.

use async_trait::async_trait;

use super::MetaResult;
use super::events::Event;
use crate::auth::{Grants, Role};

/// A user's or an organization's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A person (or service) that logs in.
    User,
    /// An organization: owns a namespace, has members and teams, never logs in.
    Org,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Org => "org",
        }
    }
}

/// An account as stored.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    /// Id.
    pub id: i64,
    /// Name (also its namespace).
    pub name: String,
    /// User or organization.
    pub kind: AccountKind,
    /// argon2id hash (users only).
    pub password_hash: Option<String>,
    /// Administers the hub.
    pub admin: bool,
    /// May not log in.
    pub disabled: bool,
    /// Bumped by password changes and disabling; refresh tokens from older epochs fail.
    pub credential_epoch: i64,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// A change to an account.
#[derive(Debug, Clone)]
pub enum AccountChange {
    /// A new password hash (invalidates refresh tokens).
    Password(String),
    /// Grant or take away hub administration.
    Admin(bool),
    /// Disable (invalidates refresh tokens) or enable.
    Disabled(bool),
}

/// An access token as stored (never its secret).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Id.
    pub id: i64,
    /// The owning user or organization.
    pub owner_id: i64,
    /// Its name.
    pub owner_name: String,
    /// Personal token (user) or robot account (organization).
    pub owner_kind: AccountKind,
    /// The token's name.
    pub name: String,
    /// Scope rules (`target:actions`).
    pub scopes: Vec<String>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Expiry (Unix ms), if any.
    pub expires_at: Option<i64>,
    /// Last successful use (Unix ms, updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Revocation time (Unix ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// A team with its members and grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRecord {
    /// Team name.
    pub name: String,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// Grants: repository (`""` for the whole organization) and role, sorted.
    pub grants: Vec<(String, Role)>,
}

/// An organization member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// User name.
    pub name: String,
    /// Whether they own the organization.
    pub owner: bool,
}

/// A signed-in browser session of the web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The signed-in user.
    pub account_id: i64,
    /// The account's credential epoch when the session began; a later password change or
    /// disabling moves the account's epoch and so ends the session.
    pub credential_epoch: i64,
    /// When the session ends (Unix ms).
    pub expires_at: i64,
}

/// A single sign-on in progress, between the redirect to the provider and the callback
/// (see migrations/sqlite/0017_oidc_logins.sql).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `state` sent to the provider.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where to go after signing in.
    pub next: String,
    /// The `redirect_uri` of the authorization request, which the token request must repeat
    /// (replicas behind different addresses would derive different ones).
    pub redirect: String,
}

/// How a new account comes by the namespace of its name (see
/// migrations/sqlite/0011_namespaces.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceClaim {
    /// Only a namespace nobody has used: no repositories, not reserved by a deleted account.
    New,
    /// Also a namespace that belongs to nobody: the account takes over the repositories in it.
    Adopt,
}

/// What creating an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The account was created, with this id, and owns its namespace.
    Account(i64),
    /// An account of that name exists.
    NameTaken,
    /// The namespace of that name exists and belongs to nobody (and [`NamespaceClaim::New`]
    /// was asked); nothing was written.
    NamespaceHeld {
        /// Repositories in the namespace.
        repositories: i64,
    },
}

/// The identity provider an account signs in through (see
/// migrations/sqlite/0013_identities.sql).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// `oidc` or `ldap`.
    pub provider: String,
    /// The provider's stable id for the person.
    pub subject: String,
    /// When the account was provisioned (Unix ms).
    pub created_at: i64,
    /// The last sign-in through the provider (Unix ms).
    pub last_login_at: Option<i64>,
}

/// A namespace as stored, with what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRecord {
    /// The namespace (first segment of its repositories' names).
    pub name: String,
    /// The owning user or organization; `None`: administrators alone.
    pub owner: Option<String>,
    /// Repositories in it.
    pub repositories: i64,
    /// When it was first used (Unix ms).
    pub created_at: i64,
}

/// A token signing key as stored (see `auth::keys` for what its times mean).
#[derive(Clone)]
pub struct SigningKeyRecord {
    /// Its row: 1 for the first key, then increasing.
    pub slot: i64,
    /// Key id.
    pub kid: String,
    /// PKCS#8 PEM private key.
    pub private_pem: String,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// When it starts signing (Unix ms).
    pub signs_from: i64,
    /// When access tokens it signed stop being accepted (Unix ms); `None` until replaced.
    pub access_until: Option<i64>,
    /// When refresh tokens it signed stop being accepted (Unix ms); `None` until replaced.
    pub refresh_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("slot", &self.slot)
            .field("kid", &self.kid)
            .field("signs_from", &self.signs_from)
            .field("access_until", &self.access_until)
            .field("refresh_until", &self.refresh_until)
            .finish_non_exhaustive()
    }
}

/// A key rotation: the new key, when it starts signing, and until when the keys it replaces
/// stay accepted.
#[derive(Clone)]
pub struct KeyRotation {
    /// The new key's id.
    pub kid: String,
    /// The new key (PKCS#8 PEM).
    pub private_pem: String,
    /// When it starts signing (Unix ms).
    pub signs_from: i64,
    /// Until when access tokens of the replaced keys are accepted (Unix ms).
    pub access_until: i64,
    /// Until when refresh tokens of the replaced keys are accepted (Unix ms).
    pub refresh_until: i64,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The new key is stored, and the keys signing now retire at the given times.
    Rotated {
        /// The keys it replaces.
        replaced: Vec<String>,
    },
    /// Nothing: a key added by an earlier rotation has not started signing yet.
    Pending {
        /// That key's id.
        kid: String,
        /// When it starts signing (Unix ms).
        signs_from: i64,
    },
}

/// What retiring a key at once did (`berth admin key retire`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRetired {
    /// The key is deleted: accepted for nothing, gone from every replica's set at its next
    /// reload.
    Retired,
    /// No key has that id.
    Unknown,
    /// It is the key that signs now: nothing changed (another key must sign first).
    Signing,
    /// It has not started signing yet: nothing changed.
    Next {
        /// When it starts signing (Unix ms).
        signs_from: i64,
    },
}

/// Accounts and permissions in the metadata database. Each method is one transaction; each
/// change records its `event` in the audit log in that transaction, if it changed anything.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates an account owning the namespace of its name, if the name is free and the
    /// namespace may be claimed as `claim` says; writes nothing otherwise.
    async fn create_account(
        &self,
        name: &str,
        kind: AccountKind,
        password_hash: Option<&str>,
        admin: bool,
        claim: NamespaceClaim,
        event: &Event,
    ) -> MetaResult<Created>;

    /// Creates a user who signs in through `provider` as `subject`, in a namespace nobody has
    /// used ([`NamespaceClaim::New`]); writes nothing when it cannot.
    async fn create_external_user(
        &self,
        name: &str,
        provider: &str,
        subject: &str,
        event: &Event,
    ) -> MetaResult<Created>;

    /// The account `provider` knows as `subject`, if one was provisioned.
    async fn account_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> MetaResult<Option<AccountRecord>>;

    /// The identity provider of an account, if it has one.
    async fn identity(&self, account: i64) -> MetaResult<Option<IdentityRecord>>;

    /// Records a sign-in through the account's identity provider, with its audit `event`.
    async fn touch_identity(&self, account: i64, event: &Event) -> MetaResult<bool>;

    /// An account by name.
    async fn account(&self, name: &str) -> MetaResult<Option<AccountRecord>>;

    /// An account by id.
    async fn account_by_id(&self, id: i64) -> MetaResult<Option<AccountRecord>>;

    /// Every account of a kind, by name.
    async fn accounts(&self, kind: AccountKind) -> MetaResult<Vec<AccountRecord>>;

    /// Changes an account; returns whether it exists.
    async fn update_account(
        &self,
        id: i64,
        change: AccountChange,
        event: &Event,
    ) -> MetaResult<bool>;

    /// Deletes an account with its memberships, teams and tokens; returns whether it existed.
    /// Its namespace is released if it holds no repository, and otherwise stays, owned by
    /// nobody, so that its name cannot be taken over with what is in it.
    async fn delete_account(&self, id: i64, event: &Event) -> MetaResult<bool>;

    /// Every namespace, by name, with its owner and how many repositories it holds.
    async fn namespaces(&self) -> MetaResult<Vec<NamespaceRecord>>;

    /// Adds a user to an organization (or changes whether they own it) with `Some`, removes
    /// them (and from its teams) with `None`. Returns whether anything changed.
    async fn set_org_member(
        &self,
        org: i64,
        user: i64,
        owner: Option<bool>,
        event: &Event,
    ) -> MetaResult<bool>;

    /// An organization's members, by name.
    async fn org_members(&self, org: i64) -> MetaResult<Vec<MemberRecord>>;

    /// Creates a team; `false` when the organization already has one of that name.
    async fn create_team(&self, org: i64, name: &str, event: &Event) -> MetaResult<bool>;

    /// Deletes a team; returns whether it existed.
    async fn delete_team(&self, org: i64, name: &str, event: &Event) -> MetaResult<bool>;

    /// An organization's teams, by name.
    async fn teams(&self, org: i64) -> MetaResult<Vec<TeamRecord>>;

    /// Adds (`true`) or removes a team member; `None` when the team does not exist, else
    /// whether anything changed.
    async fn set_team_member(
        &self,
        org: i64,
        team: &str,
        user: i64,
        member: bool,
        event: &Event,
    ) -> MetaResult<Option<bool>>;

    /// Sets (`Some`) or removes a team's role on the organization (`repository = ""`) or a
    /// repository; `None` when the team does not exist.
    async fn set_team_grant(
        &self,
        org: i64,
        team: &str,
        repository: &str,
        role: Option<Role>,
        event: &Event,
    ) -> MetaResult<Option<bool>>;

    /// What the account may do: its own namespace, organizations it owns, its teams' grants
    /// (for an organization, as a robot owner: its own namespace).
    async fn grants(&self, account: i64) -> MetaResult<Grants>;

    /// Makes a repository public or private; returns whether anything changed.
    async fn set_public(&self, repository: &str, public: bool, event: &Event) -> MetaResult<bool>;

    /// Whether a repository is public.
    async fn is_public(&self, repository: &str) -> MetaResult<bool>;

    /// Public repository names in `(after, upto]`, in byte order (`upto = None`: no bound).
    async fn public_between(&self, after: &str, upto: Option<&str>) -> MetaResult<Vec<String>>;

    /// Which of `names` are public repositories, in byte order.
    async fn public_among(&self, names: &[String]) -> MetaResult<Vec<String>>;

    /// Stores a new access token; `None` when the owner already has one of that name.
    async fn create_token(
        &self,
        owner: i64,
        name: &str,
        secret_hash: &[u8],
        scopes: &[String],
        expires_at: Option<i64>,
        event: &Event,
    ) -> MetaResult<Option<i64>>;

    /// The token whose secret hashes to `secret_hash`.
    async fn token_by_hash(&self, secret_hash: &[u8]) -> MetaResult<Option<TokenRecord>>;

    /// A token by id.
    async fn token_by_id(&self, id: i64) -> MetaResult<Option<TokenRecord>>;

    /// Tokens of one owner, or of everyone, by owner and name.
    async fn tokens(&self, owner: Option<i64>) -> MetaResult<Vec<TokenRecord>>;

    /// Revokes a token of `owner` by name; returns whether it was active.
    async fn revoke_token(&self, owner: i64, name: &str, event: &Event) -> MetaResult<bool>;

    /// Records a use of a token (at most one write a minute per token).
    async fn touch_token(&self, id: i64) -> MetaResult<()>;

    /// Stores a browser session under the hash of its secret, and drops expired sessions.
    async fn create_session(&self, secret_hash: &[u8], session: SessionRecord) -> MetaResult<()>;

    /// The unexpired session whose secret hashes to `secret_hash`.
    async fn session(&self, secret_hash: &[u8]) -> MetaResult<Option<SessionRecord>>;

    /// Ends a session; returns whether it existed.
    async fn delete_session(&self, secret_hash: &[u8]) -> MetaResult<bool>;

    /// How many single sign-ons in progress are unexpired at `now` (Unix ms): in all, and
    /// from `client` (an address key, see [`crate::service::sign_ins`]).
    async fn pending_logins(&self, now: i64, client: &str) -> MetaResult<(u64, u64)>;

    /// Stores a single sign-on in progress of `client` under the hash of its id until
    /// `expires_at` (Unix ms), and drops expired ones.
    async fn create_pending_login(
        &self,
        id_hash: &[u8],
        client: &str,
        login: PendingLogin,
        expires_at: i64,
    ) -> MetaResult<()>;

    /// Deletes the sign-in in progress whose id hashes to `id_hash` and returns it if it
    /// had not expired: one statement, so of two callbacks with the same id (on any
    /// replicas) at most one gets it.
    async fn take_pending_login(&self, id_hash: &[u8]) -> MetaResult<Option<PendingLogin>>;

    /// Stores `candidate` (kid, PEM) as the first signing key if there is no key at all.
    /// Every replica calls this at start; the first one's key wins.
    async fn ensure_signing_key(&self, candidate: (String, String)) -> MetaResult<()>;

    /// Every stored signing key, by slot.
    async fn signing_keys(&self) -> MetaResult<Vec<SigningKeyRecord>>;

    /// Adds a key that signs from `rotation.signs_from`, and sets the retirement times of the
    /// keys it replaces (those already signing and not yet replaced), unless a key added
    /// earlier has not started signing yet (then nothing changes).
    async fn rotate_signing_key(&self, rotation: KeyRotation, event: &Event)
    -> MetaResult<Rotated>;

    /// Deletes key `kid` at once (a leaked key), unless it is the key that signs now or has
    /// not started signing yet.
    async fn retire_signing_key(&self, kid: &str, event: &Event) -> MetaResult<KeyRetired>;

    /// Deletes the keys accepted for nothing at `now` (Unix ms); returns how many.
    async fn delete_retired_keys(&self, now: i64) -> MetaResult<u64>;
}
