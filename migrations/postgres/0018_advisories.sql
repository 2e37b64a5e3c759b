-- The advisory database (OSV records); see migrations/sqlite/0018_advisories.sql.
CREATE TABLE advisories (
    id          TEXT COLLATE "C" PRIMARY KEY,
    modified    TEXT   NOT NULL,
    modified_ms BIGINT NOT NULL,
    published   TEXT,
    withdrawn   TEXT,
    summary     TEXT,
    aliases     TEXT   NOT NULL,
    severity    TEXT   NOT NULL,
    score       DOUBLE PRECISION,
    record      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    imported_at BIGINT NOT NULL
);

CREATE TABLE advisory_packages (
    advisory_id TEXT COLLATE "C" NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    ecosystem   TEXT COLLATE "C" NOT NULL,
    ecosystem_release TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (advisory_id, ecosystem, ecosystem_release, name)
);
CREATE INDEX advisory_packages_by_package ON advisory_packages (ecosystem, name);

CREATE TABLE advisory_sources (
    source        TEXT COLLATE "C" PRIMARY KEY,
    ecosystems    TEXT   NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    checked_at    BIGINT NOT NULL,
    imported_at   BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    new           BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    unchanged     BIGINT NOT NULL,
    malformed     BIGINT NOT NULL
);
