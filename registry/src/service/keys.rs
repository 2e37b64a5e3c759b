//! The keys that sign registry tokens: loading them, following the stored set on every
//! replica, rotating them (`berth admin key rotate`) and listing them.
//!
//! Depends on `auth::keys` and `auth::jwt` (what each key may do when) and `meta`
//! ([`AccountStore`]). A rotation works on the database alone, beside running servers; every
//! replica re-reads the set every `auth.key_reload_secs`, and at once (at most once a second)
//! when a token names a key it does not know. A new key starts signing
//! `auth.key_activation_delay_secs` after the rotation, longer than the reload interval, so
//! every replica accepts it, and the JWKS lists it, before any replica signs with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::jwt::{
    Claims, KeyError, LEEWAY_SECS, RefreshClaims, SigningKey, TokenError, TokenIssuer,
};
use crate::auth::keys::{Jwks, KeyRing, KeyState, RingKey};
use crate::meta::accounts::{KeyRetired, KeyRotation, Rotated, SigningKeyRecord};
use crate::meta::events::{Action, Event, Origin};
use crate::meta::{AccountStore, MetaError, now_ms};

use super::accounts::{AccountSettings, AccountsError, AdminError, AdminResult};

/// How often at most a token with an unknown key id makes a replica re-read the key set.
const UNKNOWN_KEY_RELOAD: Duration = Duration::from_secs(1);

/// The token keys of one process.
pub struct TokenKeys {
    store: Arc<dyn AccountStore>,
    issuer: TokenIssuer,
    /// `auth.signing_key_file` is set: one key, which the operator rotates.
    from_file: bool,
    activation_delay: Duration,
    /// When a token with an unknown key id last made us re-read the set.
    unknown_reload: tokio::sync::Mutex<Option<Instant>>,
    /// The key that signed when the set was last read (for the log).
    signing_seen: Mutex<String>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("from_file", &self.from_file)
            .finish_non_exhaustive()
    }
}

/// A key as `berth admin key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// When it was added (Unix ms; 0 for a key from a file).
    pub created_at: i64,
    /// Where it is in its life now.
    pub state: KeyState,
    /// When it starts (started) signing (Unix ms).
    pub signs_from: i64,
    /// When access tokens it signed stop being accepted (Unix ms), once replaced.
    pub access_until: Option<i64>,
    /// When refresh tokens it signed stop being accepted and it is deleted (Unix ms).
    pub refresh_until: Option<i64>,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKey {
    /// The new key's id.
    pub kid: String,
    /// When it starts signing (Unix ms).
    pub signs_from: i64,
    /// The keys it replaces.
    pub replaced: Vec<String>,
    /// Until when their access tokens are accepted (Unix ms).
    pub access_until: i64,
    /// Until when their refresh tokens are accepted (Unix ms).
    pub refresh_until: i64,
}

impl TokenKeys {
    /// Loads the configured key file, or the keys in the database (storing a first one if
    /// this is the first replica ever to start).
    pub(super) async fn open(
        store: Arc<dyn AccountStore>,
        settings: &AccountSettings,
    ) -> Result<Self, AccountsError> {
        let (ring, from_file) = match &settings.signing_key_pem {
            Some(pem) => (KeyRing::single(SigningKey::from_pem(pem)?), true),
            None => {
                let (key, pem) = SigningKey::generate()?;
                store
                    .ensure_signing_key((key.kid().to_owned(), pem))
                    .await?;
                (KeyRing::default(), false)
            }
        };
        let keys = Self {
            issuer: TokenIssuer::new(
                ring,
                &settings.issuer,
                &settings.service,
                settings.token_ttl_secs,
                settings.refresh_ttl_secs,
            ),
            store,
            from_file,
            activation_delay: settings.key_activation_delay,
            unknown_reload: tokio::sync::Mutex::new(None),
            signing_seen: Mutex::new(String::new()),
        };
        if !from_file {
            keys.reload().await?;
            if keys.issuer.ring().signing(now_ms()).is_none() {
                return Err(KeyError::Parse.into());
            }
        }
        Ok(keys)
    }

    /// The token issuer, with the keys last read.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The public keys accepted for registry tokens now.
    pub fn jwks(&self) -> Jwks {
        self.issuer.jwks()
    }

    /// Re-reads the stored keys and uses them from now on; deletes keys that nothing
    /// accepts any more. Nothing to do with a key file.
    pub async fn reload(&self) -> Result<(), MetaError> {
        if self.from_file {
            return Ok(());
        }
        let rows = self.store.signing_keys().await?;
        let previous = self.issuer.ring();
        let ring = ring_of(rows, &previous);
        let now = now_ms();
        for k in ring.keys() {
            if !previous.keys().iter().any(|p| p.key.kid() == k.key.kid()) {
                tracing::info!(
                    kid = k.key.kid(),
                    signs_from = k.signs_from,
                    "token signing key loaded"
                );
            }
        }
        if let Some(signing) = ring.signing(now) {
            let mut seen = self
                .signing_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *seen != signing.kid() {
                if !seen.is_empty() {
                    tracing::info!(kid = signing.kid(), "tokens are now signed with a new key");
                }
                signing.kid().clone_into(&mut seen);
            }
        }
        let gone = ring
            .keys()
            .iter()
            .any(|k| ring.state(k, now) == KeyState::Gone);
        self.issuer.set_ring(ring);
        if gone {
            let deleted = self.store.delete_retired_keys(now).await?;
            tracing::info!(deleted, "retired token signing keys deleted");
        }
        Ok(())
    }

    /// Verifies a registry token; a key id this replica does not know yet makes it re-read
    /// the set first (a key rotated in since the last reload).
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match self.issuer.verify(token) {
            Err(TokenError::UnknownKey) if self.reload_for_unknown(token).await => {
                self.issuer.verify(token)
            }
            verified => verified,
        }
    }

    /// Verifies a refresh token, as [`TokenKeys::verify`] does registry tokens.
    pub async fn verify_refresh(&self, token: &str) -> Result<RefreshClaims, TokenError> {
        match self.issuer.verify_refresh(token) {
            Err(TokenError::UnknownKey) if self.reload_for_unknown(token).await => {
                self.issuer.verify_refresh(token)
            }
            verified => verified,
        }
    }

    /// Re-reads the set for a token whose key id is unknown, if that id looks like one of
    /// ours and the set was not re-read for that reason within the last second (so forged
    /// ids cannot turn every request into a database read). Returns whether to verify again.
    async fn reload_for_unknown(&self, token: &str) -> bool {
        let ours = |kid: &str| {
            kid.len() == 24
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        if self.from_file || !kid.as_deref().is_some_and(ours) {
            return false;
        }
        // Requests arriving together wait for one read, then verify against its result.
        let mut last = self.unknown_reload.lock().await;
        if last.is_some_and(|t| t.elapsed() < UNKNOWN_KEY_RELOAD) {
            return true;
        }
        *last = Some(Instant::now());
        match self.reload().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the token signing keys");
                false
            }
        }
    }

    /// Adds a new signing key that starts signing after the activation delay (at once with
    /// `now`, for a leaked key: replicas that have not re-read the set meanwhile still sign
    /// with the old key until their next reload, and verify the new one at once); the keys
    /// signing until then stay accepted for one access-token lifetime after that (and for
    /// the refresh tokens they signed until those expire), then are deleted.
    pub async fn rotate(&self, by: &Origin, now: bool) -> AdminResult<RotatedKey> {
        if self.from_file {
            return Err(AdminError::Invalid(
                "auth.signing_key_file is set: that key is yours to rotate (replace the file on \
                 every replica); berth admin key rotate rotates the keys berth keeps in the \
                 database, used when auth.signing_key_file is empty"
                    .into(),
            ));
        }
        let (key, pem) = SigningKey::generate()
            .map_err(|_| AdminError::Invalid("cannot generate a signing key".into()))?;
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let delay = if now {
            Duration::ZERO
        } else {
            self.activation_delay
        };
        let signs_from = now_ms().saturating_add(ms(delay));
        // A token signed by an old key just before `signs_from` (or a little after, by a
        // replica whose clock is behind) is accepted until its expiry plus the leeway.
        let leeway = Duration::from_secs(LEEWAY_SECS);
        let access_ttl = Duration::from_secs(self.issuer.ttl_secs()) + leeway;
        let refresh_ttl =
            (Duration::from_secs(self.issuer.refresh_ttl_secs()) + leeway).max(access_ttl);
        let rotation = KeyRotation {
            kid: key.kid().to_owned(),
            private_pem: pem,
            signs_from,
            access_until: signs_from.saturating_add(ms(access_ttl)),
            refresh_until: signs_from.saturating_add(ms(refresh_ttl)),
        };
        let replacing: Vec<String> = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.access_until.is_none())
            .map(|k| k.kid)
            .collect();
        let event = Event::new(Action::KeyRotate, by)
            .target(&rotation.kid)
            .detail(serde_json::json!({
                "signs_from": rotation.signs_from,
                "replaces": replacing,
                "access_until": rotation.access_until,
                "refresh_until": rotation.refresh_until,
            }));
        match self
            .store
            .rotate_signing_key(rotation.clone(), &event)
            .await?
        {
            Rotated::Rotated { replaced } => {
                self.reload().await?;
                Ok(RotatedKey {
                    kid: rotation.kid,
                    signs_from: rotation.signs_from,
                    replaced,
                    access_until: rotation.access_until,
                    refresh_until: rotation.refresh_until,
                })
            }
            Rotated::Pending { kid, signs_from } => Err(AdminError::Invalid(format!(
                "key {kid} from the last rotation starts signing at {}; rotate again after that",
                crate::auth::jwt::format_time(signs_from)
            ))),
        }
    }

    /// Deletes a key at once (a leaked one): every replica stops accepting tokens it signed
    /// and drops it from the JWKS at its next reload (`auth.key_reload_secs`). The key that
    /// signs now cannot be retired: `rotate --now` first, so that another one signs.
    pub async fn retire(&self, kid: &str, by: &Origin) -> AdminResult<()> {
        if self.from_file {
            return Err(AdminError::Invalid(
                "auth.signing_key_file is set: replace the file on every replica instead".into(),
            ));
        }
        let event = Event::new(Action::KeyRetire, by).target(kid);
        match self.store.retire_signing_key(kid, &event).await? {
            KeyRetired::Retired => {
                self.reload().await?;
                Ok(())
            }
            KeyRetired::Unknown => Err(AdminError::NotFound(format!("key {kid}"))),
            KeyRetired::Signing => Err(AdminError::Invalid(format!(
                "key {kid} signs tokens now and is the only key that does; run berth admin key \
                 rotate --now first (another key then signs), then retire {kid}"
            ))),
            KeyRetired::Next { signs_from } => Err(AdminError::Invalid(format!(
                "key {kid} has signed nothing yet (it starts at {}); retire it after that, once \
                 a rotation has replaced it",
                crate::auth::jwt::format_time(signs_from)
            ))),
        }
    }

    /// Every key with its state, as stored (or the key file's).
    pub async fn list(&self) -> AdminResult<Vec<KeyInfo>> {
        let ring = if self.from_file {
            self.issuer.ring()
        } else {
            Arc::new(ring_of(
                self.store.signing_keys().await?,
                &KeyRing::default(),
            ))
        };
        let now = now_ms();
        Ok(ring
            .keys()
            .iter()
            .map(|k| KeyInfo {
                kid: k.key.kid().to_owned(),
                created_at: k.created_at,
                state: ring.state(k, now),
                signs_from: k.signs_from,
                access_until: k.access_until,
                refresh_until: k.refresh_until,
            })
            .collect())
    }

    /// Whether the key comes from `auth.signing_key_file`.
    pub fn from_file(&self) -> bool {
        self.from_file
    }
}

/// The ring of the stored keys, reusing the parsed keys of `previous` (parsing a PEM key is
/// the costly part of a reload). A row whose key does not parse is left out and logged.
fn ring_of(rows: Vec<SigningKeyRecord>, previous: &KeyRing) -> KeyRing {
    let keys = rows
        .into_iter()
        .filter_map(|r| {
            let key = match previous.keys().iter().find(|p| p.slot == r.slot && p.key.kid() == r.kid) {
                Some(p) => p.key.clone(),
                None => match SigningKey::from_pem(&r.private_pem) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::error!(slot = r.slot, kid = %r.kid, error = %e, "unusable token signing key in the database");
                        return None;
                    }
                },
            };
            Some(RingKey {
                key,
                slot: r.slot,
                created_at: r.created_at,
                signs_from: r.signs_from,
                access_until: r.access_until,
                refresh_until: r.refresh_until,
            })
        })
        .collect();
    KeyRing::new(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::meta::SqliteStore;

    /// Two replicas on one database: a key rotated in and signing on one is accepted by the
    /// other before its periodic re-read, because an unknown key id makes it re-read the set.
    #[tokio::test]
    async fn a_replica_meeting_an_unknown_key_rereads_the_set() {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn AccountStore> = Arc::new(
            SqliteStore::open(&dir.path().join("meta.db"), 2, true)
                .await
                .expect("db"),
        );
        let mut config = Config::default();
        // Sign at once, so the other replica cannot have read the key yet.
        config.auth.key_activation_delay_secs = 0;
        let a = crate::server::open_accounts(&config, store.clone())
            .await
            .expect("a");
        let b = crate::server::open_accounts(&config, store)
            .await
            .expect("b");
        let kid = |t: &str| jsonwebtoken::decode_header(t).expect("header").kid;
        let before = a
            .issuer()
            .issue("alice", None, None, vec![])
            .expect("token");
        let rotated = a
            .keys()
            .rotate(&Origin::system("test"), false)
            .await
            .expect("rotate");
        let after = a
            .issuer()
            .issue("alice", None, None, vec![])
            .expect("token");
        assert_eq!(kid(&after), Some(rotated.kid.clone()));
        assert_eq!(rotated.replaced, [kid(&before).expect("kid")]);
        assert!(matches!(
            b.issuer().verify(&after),
            Err(TokenError::UnknownKey)
        ));
        b.verify(&after).await.expect("re-read for the unknown key");
        b.verify(&before)
            .await
            .expect("the replaced key is still accepted");
        // A key that is not in the set stays refused after the re-read.
        let (stranger, _) = SigningKey::generate().expect("key");
        let foreign = TokenIssuer::new(KeyRing::single(stranger), "berth", "berth", 60, 60)
            .issue("alice", None, None, vec![])
            .expect("token");
        assert!(b.verify(&foreign).await.is_err());
    }
}
