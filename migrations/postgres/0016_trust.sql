-- Cached trust verdicts; see migrations/sqlite/0016_trust.sql.
CREATE TABLE trust_verdicts (
    manifest_id BIGINT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    keyset      TEXT COLLATE "C" NOT NULL,
    signatures  TEXT NOT NULL,
    status      TEXT NOT NULL,
    key_id      TEXT,
    detail      TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (manifest_id, keyset)
);
