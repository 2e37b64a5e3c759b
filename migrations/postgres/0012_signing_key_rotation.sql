-- Key rotation; see migrations/sqlite/0012_signing_key_rotation.sql.
ALTER TABLE signing_keys ADD COLUMN signs_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN access_until BIGINT;
ALTER TABLE signing_keys ADD COLUMN refresh_until BIGINT;
