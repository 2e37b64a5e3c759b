-- Garbage-collection passes, as the maintenance page and GET /api/v1/gc/passes show them:
-- when each started and finished, what ran it (`serve` on its schedule, or `berth gc`), what
-- it removed and freed, and the error if it failed. Dry runs remove nothing and are not
-- recorded. Each replica's passes are recorded; only the newest 100 rows are kept (each
-- insert deletes older ones in the same transaction). Same meaning as
-- migrations/postgres/0027_gc_passes.sql.
CREATE TABLE gc_passes (
    id                INTEGER PRIMARY KEY,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER NOT NULL,
    -- 'serve' or 'cli'.
    run_by            TEXT    NOT NULL,
    manifests_removed INTEGER NOT NULL,
    blobs_removed     INTEGER NOT NULL,
    bytes_freed       INTEGER NOT NULL,
    error             TEXT
);
