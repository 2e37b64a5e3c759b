//! The set of keys that sign and verify registry tokens, and how it changes over a rotation.
//!
//! A rotation (`berth admin key rotate`) adds a key that starts signing only some time later
//! (`auth.key_activation_delay_secs`), so that every replica and every service reading the
//! JWKS knows it before the first token it signs reaches them. From then on the previous key
//! signs nothing, but stays accepted for one access-token lifetime (its tokens are still
//! out there), and for the refresh tokens it signed until they expire (what `docker login`
//! keeps is a refresh token: retiring it with the key would log every user out at each
//! rotation). Each key carries those times, so every replica takes each step at the same
//! moment by its own clock, whenever it last read the set.
//!
//! ```text
//!          rotate          signs_from            access_until          refresh_until
//! new key    | next          | active ...
//! old key    | active        | retiring              | retired              | gone
//!                              (access and refresh)    (refresh tokens only)
//! ```
//!
//! Times are Unix milliseconds. Nothing here reads a clock or the database: the caller passes
//! `now` and the stored rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;

use super::jwt::SigningKey;

/// Where a key is in its life at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published (accepted, in the JWKS), not yet signing.
    Next,
    /// Signing new tokens.
    Active,
    /// Replaced: signs nothing, still accepted for access and refresh tokens.
    Retiring,
    /// Accepted only for the refresh tokens it signed, until they expire; not in the JWKS.
    Retired,
    /// Accepted for nothing; its row may be deleted.
    Gone,
}

impl KeyState {
    /// The name `berth admin key list` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Gone => "gone",
        }
    }
}

/// What a token is, which decides how long a replaced key is accepted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// A registry (access) token.
    Access,
    /// A refresh token.
    Refresh,
}

/// One key of the set with its times.
#[derive(Debug, Clone)]
pub struct RingKey {
    /// The key.
    pub key: SigningKey,
    /// Its row (0 for a key from `auth.signing_key_file`); breaks ties between keys that
    /// start signing at the same moment (the later row wins).
    pub slot: i64,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// When it starts signing (Unix ms).
    pub signs_from: i64,
    /// When access tokens it signed stop being accepted; `None` until a newer key replaces it.
    pub access_until: Option<i64>,
    /// When refresh tokens it signed stop being accepted; `None` until a newer key replaces it.
    pub refresh_until: Option<i64>,
}

/// The keys one replica signs and verifies with.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// By `(signs_from, slot)`.
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// A set of keys, in any order.
    pub fn new(mut keys: Vec<RingKey>) -> Self {
        keys.sort_by_key(|k| (k.signs_from, k.slot));
        Self { keys }
    }

    /// One key that signs forever (`auth.signing_key_file`, and tests).
    pub fn single(key: SigningKey) -> Self {
        Self::new(vec![RingKey {
            key,
            slot: 0,
            created_at: 0,
            signs_from: 0,
            access_until: None,
            refresh_until: None,
        }])
    }

    /// Every key, by the time it starts signing.
    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    /// The key that signs at `now`: of the keys whose time has come, the one that came last.
    pub fn signing(&self, now: i64) -> Option<&SigningKey> {
        self.active(now).map(|k| &k.key)
    }

    fn active(&self, now: i64) -> Option<&RingKey> {
        self.keys.iter().rev().find(|k| k.signs_from <= now)
    }

    /// Where `key` is at `now`.
    pub fn state(&self, key: &RingKey, now: i64) -> KeyState {
        let open = |until: Option<i64>| until.is_none_or(|t| now < t);
        if key.signs_from > now {
            KeyState::Next
        } else if self.active(now).is_some_and(|a| a.slot == key.slot) {
            KeyState::Active
        } else if open(key.access_until) {
            KeyState::Retiring
        } else if open(key.refresh_until) {
            KeyState::Retired
        } else {
            KeyState::Gone
        }
    }

    /// The key with id `kid`, if it is accepted for `what` at `now`.
    pub fn verifying(&self, kid: &str, what: TokenUse, now: i64) -> Option<&SigningKey> {
        let key = self.keys.iter().find(|k| k.key.kid() == kid)?;
        let accepted = match (self.state(key, now), what) {
            (KeyState::Next | KeyState::Active | KeyState::Retiring, _) => true,
            (KeyState::Retired, TokenUse::Refresh) => true,
            (KeyState::Retired | KeyState::Gone, _) => false,
        };
        accepted.then_some(&key.key)
    }

    /// The JSON Web Key Set (RFC 7517) of every key accepted for access tokens at `now`:
    /// the one signing, the next one and those retiring.
    pub fn jwks(&self, now: i64) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .filter(|k| self.verifying(k.key.kid(), TokenUse::Access, now).is_some())
                .map(|k| Jwk::of(&k.key))
                .collect(),
        }
    }
}

/// A JSON Web Key Set (RFC 7517 section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The public half of a P-256 key as a JSON Web Key (RFC 7517 section 4, RFC 7518 section
/// 6.2.1): `x` and `y` are the point's coordinates, 32 bytes each, base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// Key type: `EC`.
    pub kty: &'static str,
    /// Curve: `P-256`.
    pub crv: &'static str,
    /// The x coordinate.
    pub x: String,
    /// The y coordinate.
    pub y: String,
    /// The key id registry tokens carry in their header.
    pub kid: String,
    /// What it is for: `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// The algorithm: `ES256`.
    pub alg: &'static str,
}

impl Jwk {
    /// The JWK of `key`'s public half.
    pub fn of(key: &SigningKey) -> Self {
        let (x, y) = key.public_point();
        Self {
            kty: "EC",
            crv: "P-256",
            x: B64.encode(x),
            y: B64.encode(y),
            kid: key.kid().to_owned(),
            use_: "sig",
            alg: "ES256",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(slot: i64, signs_from: i64, until: Option<(i64, i64)>) -> RingKey {
        let (key, _) = SigningKey::generate().expect("key");
        RingKey {
            key,
            slot,
            created_at: 0,
            signs_from,
            access_until: until.map(|u| u.0),
            refresh_until: until.map(|u| u.1),
        }
    }

    #[test]
    fn a_rotation_publishes_then_signs_then_retires() {
        // Rotated at 100: the new key signs from 200; the old one is accepted for access
        // tokens until 500 and for refresh tokens until 900.
        let old = key(1, 0, Some((500, 900)));
        let new = key(2, 200, None);
        let (old_kid, new_kid) = (old.key.kid().to_owned(), new.key.kid().to_owned());
        let ring = KeyRing::new(vec![new, old]);
        let states = |now| {
            ring.keys()
                .iter()
                .map(|k| ring.state(k, now))
                .collect::<Vec<_>>()
        };
        use KeyState::*;
        assert_eq!(states(150), [Active, Next]);
        assert_eq!(states(200), [Retiring, Active]);
        assert_eq!(states(500), [Retired, Active]);
        assert_eq!(states(900), [Gone, Active]);
        assert_eq!(
            ring.signing(199).map(SigningKey::kid),
            Some(old_kid.as_str())
        );
        assert_eq!(
            ring.signing(200).map(SigningKey::kid),
            Some(new_kid.as_str())
        );
        // Published before it signs; the old key leaves the JWKS when access tokens retire.
        let kids = |now| {
            ring.jwks(now)
                .keys
                .into_iter()
                .map(|k| k.kid)
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(150), [old_kid.clone(), new_kid.clone()]);
        assert_eq!(kids(499), [old_kid.clone(), new_kid.clone()]);
        assert_eq!(kids(500), [new_kid.as_str()]);
        for (now, access, refresh) in [(499, true, true), (500, false, true), (900, false, false)] {
            assert_eq!(
                ring.verifying(&old_kid, TokenUse::Access, now).is_some(),
                access,
                "{now}"
            );
            assert_eq!(
                ring.verifying(&old_kid, TokenUse::Refresh, now).is_some(),
                refresh,
                "{now}"
            );
        }
        // The next key is accepted before it signs (another replica's clock may be ahead).
        assert!(ring.verifying(&new_kid, TokenUse::Access, 150).is_some());
        assert!(
            ring.verifying("0123456789abcdef01234567", TokenUse::Access, 150)
                .is_none()
        );
    }

    #[test]
    fn the_latest_row_wins_a_tie_and_a_lone_key_signs_forever() {
        let a = key(1, 0, None);
        let b = key(2, 0, None);
        let b_kid = b.key.kid().to_owned();
        let ring = KeyRing::new(vec![b, a]);
        assert_eq!(ring.signing(0).map(SigningKey::kid), Some(b_kid.as_str()));
        let (k, _) = SigningKey::generate().expect("key");
        let kid = k.kid().to_owned();
        let single = KeyRing::single(k);
        assert_eq!(
            single.signing(i64::MAX).map(SigningKey::kid),
            Some(kid.as_str())
        );
        assert!(
            single
                .verifying(&kid, TokenUse::Refresh, i64::MAX)
                .is_some()
        );
    }

    #[test]
    fn jwks_hold_public_coordinates_only() {
        let (k, _) = SigningKey::generate().expect("key");
        let jwks = serde_json::to_value(KeyRing::single(k.clone()).jwks(0)).expect("json");
        let jwk = &jwks["keys"][0];
        let mut fields: Vec<&String> = jwk.as_object().expect("object").keys().collect();
        fields.sort();
        assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["use"], "sig");
        for c in ["x", "y"] {
            let bytes = B64
                .decode(jwk[c].as_str().expect("text"))
                .expect("base64url");
            assert_eq!(bytes.len(), 32, "{c}");
        }
        assert_eq!(jwk["kid"], k.kid());
    }
}
