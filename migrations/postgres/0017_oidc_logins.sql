-- Single sign-on sign-ins in progress; see migrations/sqlite/0017_oidc_logins.sql.
CREATE TABLE oidc_logins (
    id_hash    BYTEA  PRIMARY KEY,
    state      TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    verifier   TEXT   NOT NULL,
    next       TEXT   NOT NULL,
    client     TEXT   NOT NULL,
    redirect   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
CREATE INDEX oidc_logins_by_client ON oidc_logins (client, expires_at);
