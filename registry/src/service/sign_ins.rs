//! Single sign-ons in progress, kept in the database between the redirect to the provider
//! and the callback (see migrations/sqlite/0017_oidc_logins.sql).
//!
//! - The browser holds only a random 256-bit id; the database keeps its SHA-256, so reading
//!   the table gives nobody a way to finish someone's sign-in.
//! - The callback deletes the record as it reads it, so a sign-in completes at most once on
//!   any replica, even if the provider would accept its code again.
//! - The table is a per-client structure, so it is bounded: records expire after
//!   [`PENDING_TTL`], expired ones are purged at each new sign-in, and past a limit of
//!   unexpired ones a new sign-in is refused ([`HoldError::Full`]) rather than stored. A
//!   smaller limit per client address ([`HoldError::FullFromAddress`]; IPv4 whole, IPv6 by
//!   its /64) keeps one client from using up everyone's room.
//!
//! Depends on `meta` ([`AccountStore`](crate::meta::AccountStore)) through [`Accounts`].

use std::net::IpAddr;
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
    /// As many sign-ins from this client address are in progress as its limit allows.
    #[error("{0} single sign-ons from this address are in progress, the most allowed")]
    FullFromAddress(u64),
    /// The system gave no randomness for the id.
    #[error("the system has no randomness")]
    NoRandomness,
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Accounts {
    /// Keeps `login` of a browser at `client` for its callback, unless `limits.0` sign-ins
    /// are already in progress, or `limits.1` from that client's address. Returns the id for
    /// the browser's cookie.
    pub async fn hold_sign_in(
        &self,
        login: PendingLogin,
        client: IpAddr,
        limits: (u64, u64),
    ) -> Result<String, HoldError> {
        let now = now_ms();
        let client = client_key(client);
        // Counted outside the write, so that concurrent sign-ins do not conflict on PostgreSQL;
        // the limits may be passed by as many sign-ins as start at the same moment.
        let (pending, from_client) = self.store().pending_logins(now, &client).await?;
        if pending >= limits.0 {
            return Err(HoldError::Full(pending));
        }
        if from_client >= limits.1 {
            return Err(HoldError::FullFromAddress(from_client));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| HoldError::NoRandomness)?;
        let id = URL_SAFE_NO_PAD.encode(raw);
        let ttl = i64::try_from(PENDING_TTL.as_millis()).unwrap_or(i64::MAX);
        self.store()
            .create_pending_login(&secret::hash(&id), &client, login, now.saturating_add(ttl))
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

/// The address a sign-in is counted under: IPv4 whole, IPv6 by its /64 (one subscriber
/// usually holds a whole /64), an IPv4-mapped IPv6 address as the IPv4 address it is.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7");
    }
}
