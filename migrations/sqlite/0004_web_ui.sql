-- What the web UI needs: browser sessions, and an index to find recently pushed repositories.

-- A signed-in browser. The cookie holds a random secret; only its SHA-256 is stored, so a
-- copy of the database cannot be replayed as a session. A session ends when it expires, when
-- its user signs out, or when the account's credential epoch moves (password change, disable).
CREATE TABLE ui_sessions (
    secret_hash      BLOB    PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credential_epoch INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);

-- The home page lists repositories by their latest tag push, newest first.
CREATE INDEX tags_by_update ON tags (updated_at);
