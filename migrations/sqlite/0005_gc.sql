-- Online garbage collection: review queues fed in the same transaction as whatever may have
-- left something unreferenced, and tombstones for stored bytes whose row is gone.
--
-- A row in a review queue says "look at this again": last_event_at is the time of the newest
-- event (an upload or mount linked the blob, a manifest that referenced it was deleted, a tag
-- moved off the manifest...). The collector only reviews entries older than its review delay,
-- so a push in progress (layers first, manifest last) is never judged half done.

CREATE TABLE gc_blob_reviews (
    digest        TEXT    PRIMARY KEY,
    last_event_at INTEGER NOT NULL
);
CREATE INDEX gc_blob_reviews_due ON gc_blob_reviews (last_event_at);

CREATE TABLE gc_manifest_reviews (
    manifest_id   INTEGER PRIMARY KEY REFERENCES manifests (id) ON DELETE CASCADE,
    last_event_at INTEGER NOT NULL
);
CREATE INDEX gc_manifest_reviews_due ON gc_manifest_reviews (last_event_at);

-- Bytes to delete: the blob's row was removed in the transaction that wrote this row, and
-- no later row can name the same storage key (every stored copy has a key of its own), so
-- deleting the bytes and then this row is safe at any time, and retried after a crash.
CREATE TABLE gc_blob_deletions (
    id          INTEGER PRIMARY KEY,
    digest      TEXT    NOT NULL,
    storage_key TEXT,
    size        INTEGER NOT NULL,
    deleted_at  INTEGER NOT NULL
);

-- Everything stored before this migration is reviewed once.
INSERT INTO gc_blob_reviews (digest, last_event_at) SELECT digest, created_at FROM blobs;
INSERT INTO gc_manifest_reviews (manifest_id, last_event_at)
    SELECT id, created_at FROM manifests
    WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = manifests.id);

-- The generation of manifests and tags (SQLite only), bumped by every transaction that changes
-- them: a server caches manifests in memory and checks this on each read, so changes made by
-- another process (`berth gc`) are seen at once.
CREATE TABLE manifest_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO manifest_generation (id, value) VALUES (1, 0);
