-- Scrub: re-hashing stored blobs and checking references, incrementally and resumably.
--
-- A blob whose bytes are missing or do not hash to its digest is quarantined: its row stays
-- (manifests still name it) but no request is served from it, and the next upload of the
-- same content replaces its storage key and lifts the quarantine (the bad copy is then
-- deleted through a gc_blob_deletions tombstone).
-- The orphan sweep asks whether a stored copy is some blob's.
CREATE INDEX blobs_by_storage_key ON blobs (storage_key) WHERE storage_key IS NOT NULL;

ALTER TABLE blobs ADD COLUMN quarantined_at INTEGER;

-- What scrubs found, kept after repair (repaired_at) as a record.
CREATE TABLE scrub_findings (
    id          INTEGER PRIMARY KEY,
    -- 'missing' or 'corrupt' (a blob), 'manifest_corrupt' or 'dangling_reference' (a manifest).
    problem     TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    repository  TEXT,
    storage_key TEXT,
    detail      TEXT    NOT NULL,
    found_at    INTEGER NOT NULL,
    repaired_at INTEGER
);
CREATE INDEX scrub_findings_open ON scrub_findings (digest) WHERE repaired_at IS NULL;

-- Where the current round stands: blobs in digest order, then manifests in row order.
CREATE TABLE scrub_progress (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    blob_cursor      TEXT    NOT NULL,
    manifest_cursor  INTEGER NOT NULL,
    round_started_at INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
INSERT INTO scrub_progress VALUES (1, '', 0, 0, 0);
