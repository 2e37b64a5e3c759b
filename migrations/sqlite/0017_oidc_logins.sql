-- Single sign-on (OpenID Connect) sign-ins in progress: what the callback needs (state, nonce,
-- PKCE verifier, where to go next, the redirect URL the authorization request named), kept
-- from the redirect to the provider until the callback, at most ten minutes. The browser's
-- cookie carries only a random 256-bit id; this table keeps its SHA-256, never the id itself.
-- The callback deletes the row as it reads it (DELETE ... RETURNING), so a sign-in completes
-- at most once, whichever replica the browser comes back to. Rows are bounded: expired ones
-- are purged at every new sign-in, and beyond `auth.oidc.max_pending_logins` unexpired rows
-- (or `max_pending_logins_per_address` from one client address, `client`: IPv4 whole, IPv6
-- by its /64) a new sign-in is refused, so one client cannot use up everyone's room.
-- Same meaning as migrations/postgres/0017_oidc_logins.sql.
CREATE TABLE oidc_logins (
    id_hash    BLOB    PRIMARY KEY,
    state      TEXT    NOT NULL,
    nonce      TEXT    NOT NULL,
    verifier   TEXT    NOT NULL,
    next       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    redirect   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
CREATE INDEX oidc_logins_by_client ON oidc_logins (client, expires_at);
