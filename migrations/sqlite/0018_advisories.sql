-- The advisory database: OSV records imported by `berth vulndb update`, shaped for matching an
-- image's stored package inventory later without reading any record's JSON.
--
-- `advisories` has one row per record id. `modified_ms` is the record's `modified` time as Unix
-- ms: an import replaces a row only when the record it brings is newer, so a re-run of an
-- interrupted import skips what it already wrote. A withdrawn record keeps its row (with
-- `withdrawn` set), so that a later match can tell "withdrawn" from "never heard of".
-- `aliases` is a JSON array of strings (CVE ids, mostly); `severity` is the record's level
-- (unknown, none, low, medium, high, critical) and `score` its CVSS base score, if it has one.
--
-- `advisory_packages` has one row per (advisory, ecosystem, release, package name) the record
-- affects: `ecosystem` is OSV's name before the first `:` (`Debian`), `ecosystem_release` what
-- follows (`12`; '' for none), and PyPI names are in PEP 503 normal form. Matching looks packages up by
-- (ecosystem, name), then evaluates the record's ranges.
--
-- `advisory_sources` has one row per source imported (an URL, or an absolute file or directory
-- path): the HTTP validators for a conditional download, and the counts of its last import. It
-- is written when an import completes, so an interrupted one is redone in full (its records
-- then count as unchanged). Same meaning as migrations/postgres/0018_advisories.sql.
CREATE TABLE advisories (
    id          TEXT    PRIMARY KEY,
    modified    TEXT    NOT NULL,
    modified_ms INTEGER NOT NULL,
    published   TEXT,
    withdrawn   TEXT,
    summary     TEXT,
    aliases     TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    score       REAL,
    record      TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    imported_at INTEGER NOT NULL
);

CREATE TABLE advisory_packages (
    advisory_id       TEXT NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    ecosystem         TEXT NOT NULL,
    ecosystem_release TEXT NOT NULL,
    name              TEXT NOT NULL,
    PRIMARY KEY (advisory_id, ecosystem, ecosystem_release, name)
);
CREATE INDEX advisory_packages_by_package ON advisory_packages (ecosystem, name);

CREATE TABLE advisory_sources (
    source        TEXT    PRIMARY KEY,
    ecosystems    TEXT    NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    checked_at    INTEGER NOT NULL,
    imported_at   INTEGER NOT NULL,
    records       INTEGER NOT NULL,
    new           INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    unchanged     INTEGER NOT NULL,
    malformed     INTEGER NOT NULL
);
