-- Findings per manifest and the advisory database's generation; see
-- migrations/sqlite/0022_findings.sql.
CREATE TABLE vulndb_generation (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO vulndb_generation (id, value) VALUES (1, 1);

ALTER TABLE advisories ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
CREATE INDEX advisories_by_generation ON advisories (generation);

ALTER TABLE scans ADD COLUMN matched_generation BIGINT;
ALTER TABLE scans ADD COLUMN matched_at BIGINT;
ALTER TABLE scans ADD COLUMN findings_critical BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_high BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_medium BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_low BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_none BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_unknown BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_fixable BIGINT NOT NULL DEFAULT 0;
CREATE INDEX scans_matched ON scans (status, matched_generation);

CREATE TABLE scan_targets (
    manifest_id       BIGINT NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    ecosystem         TEXT COLLATE "C" NOT NULL,
    ecosystem_release TEXT COLLATE "C" NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (manifest_id, ecosystem, ecosystem_release, name)
);
CREATE INDEX scan_targets_by_package ON scan_targets (ecosystem, name);

CREATE TABLE scan_findings (
    manifest_id    BIGINT NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    package        TEXT   NOT NULL,
    type           TEXT   NOT NULL,
    installed      TEXT   NOT NULL,
    ecosystem      TEXT   NOT NULL,
    matched_name   TEXT   NOT NULL,
    advisory_id    TEXT COLLATE "C" NOT NULL,
    aliases        TEXT   NOT NULL,
    summary        TEXT,
    severity       TEXT   NOT NULL,
    score          DOUBLE PRECISION,
    fixed          TEXT,
    fixed_versions TEXT   NOT NULL,
    fixable        BIGINT NOT NULL,
    paths          TEXT   NOT NULL,
    PRIMARY KEY (manifest_id, seq)
);
CREATE INDEX scan_findings_by_advisory ON scan_findings (advisory_id);
