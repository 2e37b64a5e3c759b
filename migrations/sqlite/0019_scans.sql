-- Image inventories (SBOMs), made in the background by every replica's scan workers.
--
-- `scans` is both the job queue and the result: one row per image manifest to inventory,
-- written in the transaction that stores the manifest (`INSERT ... ON CONFLICT DO NOTHING`, so
-- a re-push of the same digest adds no second job). Rows go with their manifest.
-- - `status`: queued, running (claimed: `lease_owner` holds it until `lease_until`, Unix ms;
--   after that any worker may take it over), done or failed;
-- - `attempts`: claims so far; a job is given up (`failed`) after the configured number;
-- - `reason`: why a job failed (or how an attempt failed, while it is queued again);
-- - `os_*`: the image's /etc/os-release; `problems`: the inventory's own problems (layers
--   skipped or cut short, files that did not parse) as a JSON array of
--   {layer, path?, message};
-- - `sbom_digest`: the SBOM referrer berth pushed for the manifest, replaced by the next scan.
--
-- `scan_packages` holds a done scan's packages, in the inventory's order (`seq`): what
-- matching against the advisory database (0018) reads, by (type, name). Same meaning as
-- migrations/postgres/0019_scans.sql.
CREATE TABLE scans (
    manifest_id  INTEGER PRIMARY KEY REFERENCES manifests (id) ON DELETE CASCADE,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  INTEGER,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    queued_at    INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    duration_ms  INTEGER,
    reason       TEXT,
    os_id        TEXT,
    os_version   TEXT,
    os_name      TEXT,
    problems     TEXT,
    sbom_digest  TEXT
);
CREATE INDEX scans_due ON scans (status, queued_at);

CREATE TABLE scan_packages (
    manifest_id    INTEGER NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    source_name    TEXT,
    source_version TEXT,
    arch           TEXT,
    path           TEXT    NOT NULL,
    purl           TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, seq)
);
CREATE INDEX scan_packages_by_name ON scan_packages (type, name);
