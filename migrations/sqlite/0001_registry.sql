-- berth registry metadata, SQLite flavour.
--
-- Times are Unix milliseconds in INTEGER columns and booleans are avoided, so the PostgreSQL
-- schema can use BIGINT with the same values and the same SQL text ($1 placeholders) runs on
-- both. Blob bytes live in object storage; every row here that names a blob digest is written
-- only after the bytes are stored and verified.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- One row per distinct blob stored in object storage (deduplicated across repositories).
CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Which repositories may serve which blobs (pushed or mounted there).
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL REFERENCES blobs (digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Manifests with their exact bytes, per repository.
CREATE TABLE manifests (
    id             INTEGER PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT    NOT NULL,
    media_type     TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    content        BLOB    NOT NULL,
    -- What the referrers API needs without re-parsing content.
    artifact_type  TEXT,
    subject_digest TEXT,
    annotations    TEXT,
    created_at     INTEGER NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository_id, subject_digest, digest)
    WHERE subject_digest IS NOT NULL;

-- Blobs a manifest references (config and layers): kept so garbage collection knows what is live.
CREATE TABLE manifest_blobs (
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    digest      TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_by_digest ON manifest_blobs (digest);

-- Child manifests an index references.
CREATE TABLE manifest_children (
    parent_id    INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    child_digest TEXT    NOT NULL,
    PRIMARY KEY (parent_id, child_digest)
);
CREATE INDEX manifest_children_by_child ON manifest_children (child_digest);

CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    manifest_id   INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_by_manifest ON tags (manifest_id);

-- Upload sessions. The bytes received so far live in storage; the offset and the serialized
-- hash state live here, so any replica can continue any session.
CREATE TABLE uploads (
    id             TEXT    PRIMARY KEY,
    repository     TEXT    NOT NULL,
    received_bytes INTEGER NOT NULL,
    hash_state     BLOB    NOT NULL,
    -- A request writing to the session holds it: its random token, and until when (ms).
    lease_owner    INTEGER,
    lease_until    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX uploads_by_update ON uploads (updated_at);
