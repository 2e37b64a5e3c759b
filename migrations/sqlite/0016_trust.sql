-- What a trust policy concluded about a manifest, cached so a pull of a verified image costs a
-- lookup, never cryptography. A verdict holds only for the key set and the signatures it was
-- reached with: `keyset` is part of the key, and `signatures` (the digests of the signature
-- manifests considered) is compared at each read, so adding or removing a key or a signature
-- makes the next read verify again. Verdicts go with their manifest. Same meaning as
-- migrations/postgres/0016_trust.sql.
CREATE TABLE trust_verdicts (
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    keyset      TEXT    NOT NULL,
    signatures  TEXT    NOT NULL,
    -- verified | unsigned | untrusted | invalid
    status      TEXT    NOT NULL,
    key_id      TEXT,
    detail      TEXT    NOT NULL,
    checked_at  INTEGER NOT NULL,
    PRIMARY KEY (manifest_id, keyset)
);
