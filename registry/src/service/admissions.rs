//! Pulls an enforcing trust policy admitted lately, remembered in memory for a few seconds.
//!
//! A verdict is cached in SQL per manifest and key set, but finding it still costs three or
//! four queries (the signatures under cosign's tag and as referrers, then the verdict), which
//! cut the rate of manifest `GET`s to a quarter in `bench/run`. A hot image is pulled by many
//! clients at once; remembering "admitted" for [`TTL`] makes those pulls as cheap as without a
//! policy: the cache is asked first, before the manifest is even parsed, and a lookup
//! allocates nothing. Only admissions are remembered (and artifacts, which are never refused):
//! a refusal is checked again on every pull, so an image signed a moment ago is served at once.
//!
//! What can turn an admission into a refusal is a signature going away (its manifest deleted,
//! or cosign's `.sig` tag moved) or a key leaving the policy. This replica forgets a
//! repository's admissions whenever a manifest of it is pushed or deleted; other replicas and
//! `berth gc` in another process are seen within [`TTL`]; keys change with a restart, which
//! starts empty. Bounded: at most [`CAPACITY`] entries, least recently used first out.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::{Digest, RepoName};

/// How long an admission is reused.
pub const TTL: Duration = Duration::from_secs(5);
/// How many admissions are remembered.
pub const CAPACITY: usize = 10_000;

/// (repository, manifest digest, policy key set), owned by the cache.
struct Key {
    repo: Box<str>,
    digest: Digest,
    keyset: Box<str>,
}

/// The parts of a key, owned or borrowed: a pull looks its admission up with the names it
/// already holds, allocating nothing (the `dyn` [`Borrow`] form `lru` accepts for lookups).
trait Parts {
    fn parts(&self) -> (&str, &Digest, &str);
}

impl Parts for Key {
    fn parts(&self) -> (&str, &Digest, &str) {
        (&self.repo, &self.digest, &self.keyset)
    }
}

impl Parts for (&str, &Digest, &str) {
    fn parts(&self) -> (&str, &Digest, &str) {
        (self.0, self.1, self.2)
    }
}

impl<'a> Borrow<dyn Parts + 'a> for Key {
    fn borrow(&self) -> &(dyn Parts + 'a) {
        self
    }
}

impl Hash for dyn Parts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn Parts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn Parts + '_ {}

// The owned key hashes and compares as its borrowed form, as `Borrow` requires.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Key {}

/// Recent admissions by (repository, manifest digest, policy key set).
pub struct Admissions(Mutex<lru::LruCache<Key, Instant>>);

impl Default for Admissions {
    fn default() -> Self {
        Self(Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
        )))
    }
}

impl Admissions {
    /// Whether `digest` of `repo` was admitted under `keyset` within [`TTL`]. Allocates
    /// nothing.
    pub fn admitted(&self, repo: &RepoName, digest: &Digest, keyset: &str) -> bool {
        let key = (repo.as_str(), digest, keyset);
        let key: &dyn Parts = &key;
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.get(key) {
            Some(at) if at.elapsed() < TTL => true,
            Some(_) => {
                cache.pop(key);
                false
            }
            None => false,
        }
    }

    /// Records that `digest` of `repo` was admitted under `keyset` now.
    pub fn remember(&self, repo: &RepoName, digest: &Digest, keyset: &str) {
        let key = Key {
            repo: repo.as_str().into(),
            digest: digest.clone(),
            keyset: keyset.into(),
        };
        let now = Instant::now();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, now);
    }

    /// Forgets every admission in `repo` (a manifest of it was pushed or deleted, which may
    /// have added or removed a signature).
    pub fn forget_repository(&self, repo: &RepoName) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| &*key.repo != repo.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", hex::encode([n; 32]))).expect("digest")
    }

    #[test]
    fn admissions_are_per_repository_digest_and_key_set_and_forgotten_per_repository() {
        let a = Admissions::default();
        let app = RepoName::parse("team/app").expect("name");
        let other = RepoName::parse("team/other").expect("name");
        a.remember(&app, &digest(1), "k1");
        a.remember(&other, &digest(1), "k1");
        assert!(a.admitted(&app, &digest(1), "k1"));
        assert!(!a.admitted(&app, &digest(1), "k2"));
        assert!(!a.admitted(&app, &digest(2), "k1"));
        a.forget_repository(&app);
        assert!(!a.admitted(&app, &digest(1), "k1"));
        assert!(a.admitted(&other, &digest(1), "k1"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let a = Admissions::default();
        let repo = RepoName::parse("team/app").expect("name");
        for i in 0..CAPACITY + 10 {
            let d = Digest::parse(&format!("sha256:{i:064x}")).expect("digest");
            a.remember(&repo, &d, "k");
        }
        let len = a.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        assert_eq!(len, CAPACITY);
        assert!(!a.admitted(
            &repo,
            &Digest::parse(&format!("sha256:{:064x}", 0)).expect("d"),
            "k"
        ));
    }
}
