-- Image inventories (SBOMs) and their job queue; see migrations/sqlite/0019_scans.sql.
CREATE TABLE scans (
    manifest_id  BIGINT PRIMARY KEY REFERENCES manifests (id) ON DELETE CASCADE,
    status       TEXT   NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    lease_owner  BIGINT,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    queued_at    BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    duration_ms  BIGINT,
    reason       TEXT,
    os_id        TEXT,
    os_version   TEXT,
    os_name      TEXT,
    problems     TEXT,
    sbom_digest  TEXT
);
CREATE INDEX scans_due ON scans (status, queued_at);

CREATE TABLE scan_packages (
    manifest_id    BIGINT NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    type           TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    version        TEXT   NOT NULL,
    source_name    TEXT,
    source_version TEXT,
    arch           TEXT,
    path           TEXT   NOT NULL,
    purl           TEXT   NOT NULL,
    PRIMARY KEY (manifest_id, seq)
);
CREATE INDEX scan_packages_by_name ON scan_packages (type, name);
