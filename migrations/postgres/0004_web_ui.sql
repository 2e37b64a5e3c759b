-- What the web UI needs. Same meaning as migrations/sqlite/0004_web_ui.sql.

CREATE TABLE ui_sessions (
    secret_hash      BYTEA  PRIMARY KEY,
    account_id       BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credential_epoch BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);

CREATE INDEX tags_by_update ON tags (updated_at);
