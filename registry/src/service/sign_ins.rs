//! Single sign-ons in progress, kept in the database between the redirect to the provider
//! and the callback (see migrations/sqlite/0017_oidc_logins.sql).
//!
//! - The browser holds only a random 256-bit id; the database keeps its SHA-256, so reading
//!   the table gives nobody a way to finish someone's sign-in.
//! - The callback deletes the record as it reads it, so a sign-in completes at most once on
//!   any replica, even if the provider would accept its code again.
//! - The table is a per-client structure, so it is bounded: records expire after
//!   [`PENDING_TTL`], expired ones are purged at each new sign-in, and past a limit of
//!   unexpired ones a new sign-in is refused ([`HoldError::Full`]) rather than stored.
//!
//! Depends on `meta` ([`AccountStore`](crate::meta::AccountStore)) through [`Accounts`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::accounts::Accounts;
use crate::auth::secret;
use crate::meta::accounts::PendingLogin;
use crate::meta::{MetaError, now_ms};

/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// Length of an id in the cookie: 32 random bytes in unpadded base64url.
const ID_LEN: usize = 43;

/// Why a sign-in could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// As many sign-ins are in progress as the limit allows.
    #[error("{0} single sign-ons are in progress, the most allowed")]
    Full(u64),
    /// The system gave no randomness for the id.
    #[error("the system has no randomness")]
    NoRandomness,
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Accounts {
    /// Keeps `login` for its callback, unless `limit` sign-ins are already in progress.
    /// Returns the id for the browser's cookie.
    pub async fn hold_sign_in(&self, login: PendingLogin, limit: u64) -> Result<String, HoldError> {
        let now = now_ms();
        // Counted outside the write, so that concurrent sign-ins do not conflict on PostgreSQL;
        // the limit may be passed by as many sign-ins as start at the same moment.
        let pending = self.store().pending_logins(now).await?;
        if pending >= limit {
            return Err(HoldError::Full(pending));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| HoldError::NoRandomness)?;
        let id = URL_SAFE_NO_PAD.encode(raw);
        let ttl = i64::try_from(PENDING_TTL.as_millis()).unwrap_or(i64::MAX);
        self.store()
            .create_pending_login(&secret::hash(&id), login, now.saturating_add(ttl))
            .await?;
        Ok(id)
    }

    /// Takes the sign-in in progress `id` stands for: it is deleted whether or not it has
    /// expired, and `None` when there is none (never started, expired, or already taken).
    pub async fn take_sign_in(&self, id: &str) -> Result<Option<PendingLogin>, MetaError> {
        if id.len() != ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Ok(None);
        }
        self.store().take_pending_login(&secret::hash(id)).await
    }
}
