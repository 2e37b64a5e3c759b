-- Findings: each done inventory (0019) matched against the advisory database (0018), and kept
-- matched as the database changes, reading only the stored packages.
--
-- `vulndb_generation` counts the imports that wrote records: an import bumps it (once per
-- transaction that writes a record) and stamps each record it writes with the new value in
-- `advisories.generation`. `scans.matched_generation` is the generation a manifest's findings
-- were matched at (NULL: not matched yet, as for inventories made before this migration).
-- Every replica's scan workers catch the manifests up: a manifest is matched again only when a
-- record written after its generation names one of its `scan_targets` (its packages as OSV
-- names them) or one of its findings' advisories; the others are only stamped with the new
-- generation. Writing findings is fenced by the generation, so two replicas never go back.
--
-- `scans.findings_*` are the per-manifest summary (findings per severity, and how many have a
-- fixed version); `scan_findings` the findings, most severe first (`seq`), with `aliases`,
-- `fixed_versions` and `paths` as JSON arrays. Same meaning as
-- migrations/postgres/0022_findings.sql.
CREATE TABLE vulndb_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO vulndb_generation (id, value) VALUES (1, 1);

ALTER TABLE advisories ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
CREATE INDEX advisories_by_generation ON advisories (generation);

ALTER TABLE scans ADD COLUMN matched_generation INTEGER;
ALTER TABLE scans ADD COLUMN matched_at INTEGER;
ALTER TABLE scans ADD COLUMN findings_critical INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_high INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_medium INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_low INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_none INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_unknown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN findings_fixable INTEGER NOT NULL DEFAULT 0;
CREATE INDEX scans_matched ON scans (status, matched_generation);

CREATE TABLE scan_targets (
    manifest_id       INTEGER NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    ecosystem         TEXT    NOT NULL,
    ecosystem_release TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, ecosystem, ecosystem_release, name)
);
CREATE INDEX scan_targets_by_package ON scan_targets (ecosystem, name);

CREATE TABLE scan_findings (
    manifest_id    INTEGER NOT NULL REFERENCES scans (manifest_id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    package        TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    installed      TEXT    NOT NULL,
    ecosystem      TEXT    NOT NULL,
    matched_name   TEXT    NOT NULL,
    advisory_id    TEXT    NOT NULL,
    aliases        TEXT    NOT NULL,
    summary        TEXT,
    severity       TEXT    NOT NULL,
    score          REAL,
    fixed          TEXT,
    fixed_versions TEXT    NOT NULL,
    fixable        INTEGER NOT NULL,
    paths          TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, seq)
);
CREATE INDEX scan_findings_by_advisory ON scan_findings (advisory_id);
