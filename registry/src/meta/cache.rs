//! A read-through cache of manifests by (repository, tag or digest), for the single-process
//! SQLite store, where every write passes through this process and can invalidate it.
//!
//! Invalidation is by generation: every write that changes manifests or tags bumps the
//! generation after it commits, which invalidates every entry at once. A reader records the
//! generation before its query and caches the row only if the generation is unchanged
//! afterwards, so a row read before a concurrent write can never be cached as current.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lru::LruCache;

use super::ManifestRecord;

/// Bytes of manifest content the cache holds at most.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Entries the cache holds at most.
const MAX_ENTRIES: usize = 4096;

struct Entry {
    generation: u64,
    record: ManifestRecord,
}

struct Inner {
    entries: LruCache<(String, String), Entry>,
    bytes: usize,
}

/// The cache.
pub(super) struct ManifestCache {
    generation: AtomicU64,
    /// The database's own generation when last looked at (changes by other processes).
    database: std::sync::atomic::AtomicI64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ManifestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestCache")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ManifestCache {
    pub(super) fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            database: std::sync::atomic::AtomicI64::new(i64::MIN),
            inner: Mutex::new(Inner {
                entries: LruCache::new(NonZeroUsize::new(MAX_ENTRIES).unwrap_or(NonZeroUsize::MIN)),
                bytes: 0,
            }),
        }
    }

    /// The current generation, to pass to [`ManifestCache::insert`] after a query.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Invalidates everything; call after committing a change to manifests or tags.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes the database's generation, read before a lookup: when it moved (another
    /// process changed manifests or tags), everything cached is invalidated.
    pub(super) fn observe(&self, database: i64) {
        if self.database.swap(database, Ordering::AcqRel) != database {
            self.invalidate();
        }
    }

    /// A current entry, if any.
    pub(super) fn get(&self, repo: &str, reference: &str) -> Option<ManifestRecord> {
        let generation = self.generation();
        let mut inner = self.inner.lock().ok()?;
        let key = (repo.to_owned(), reference.to_owned());
        match inner.entries.get(&key) {
            Some(e) if e.generation == generation => Some(e.record.clone()),
            _ => None,
        }
    }

    /// Caches `record`, read by a query that started at `generation`, unless a write has
    /// committed since.
    pub(super) fn insert(
        &self,
        generation: u64,
        repo: &str,
        reference: &str,
        record: &ManifestRecord,
    ) {
        let size = record.content.len();
        if size > MAX_BYTES / 16 || self.generation() != generation {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let entry = Entry {
            generation,
            record: record.clone(),
        };
        if let Some((_, old)) = inner
            .entries
            .push((repo.to_owned(), reference.to_owned()), entry)
        {
            inner.bytes -= old.record.content.len();
        }
        inner.bytes += size;
        while inner.bytes > MAX_BYTES {
            match inner.entries.pop_lru() {
                Some((_, old)) => inner.bytes -= old.record.content.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Digest;

    fn record(content: &[u8]) -> ManifestRecord {
        ManifestRecord {
            digest: Digest::sha256_of(content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: content.len() as u64,
            content: bytes::Bytes::copy_from_slice(content),
        }
    }

    #[test]
    fn entries_are_served_until_a_write_invalidates_them() {
        let cache = ManifestCache::new();
        let g = cache.generation();
        cache.insert(g, "app", "latest", &record(b"one"));
        assert_eq!(cache.get("app", "latest").unwrap().content.as_ref(), b"one");
        assert!(cache.get("app", "other").is_none());
        cache.invalidate();
        assert!(cache.get("app", "latest").is_none());
    }

    #[test]
    fn a_row_read_before_a_write_is_not_cached() {
        let cache = ManifestCache::new();
        let before = cache.generation();
        cache.invalidate(); // a write commits while the query runs
        cache.insert(before, "app", "latest", &record(b"stale"));
        assert!(cache.get("app", "latest").is_none());
    }

    #[test]
    fn a_change_by_another_process_empties_the_cache() {
        let cache = ManifestCache::new();
        cache.observe(7);
        let g = cache.generation();
        cache.insert(g, "app", "latest", &record(b"one"));
        cache.observe(7);
        assert!(
            cache.get("app", "latest").is_some(),
            "same database generation"
        );
        cache.observe(8);
        assert!(
            cache.get("app", "latest").is_none(),
            "another process wrote"
        );
    }

    #[test]
    fn the_byte_budget_evicts_least_recently_used_entries() {
        let cache = ManifestCache::new();
        let g = cache.generation();
        let big = vec![0u8; MAX_BYTES / 16];
        for i in 0..20 {
            cache.insert(g, "app", &format!("t{i}"), &record(&big));
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= MAX_BYTES);
        assert!(inner.entries.len() < 20);
        assert!(inner.entries.peek(&("app".into(), "t19".into())).is_some());
        assert!(inner.entries.peek(&("app".into(), "t0".into())).is_none());
    }
}
