-- Accounts that sign in through an identity provider (OpenID Connect or an LDAP directory):
-- which provider vouches for them and under which stable subject. A user has at most one;
-- local accounts (the first administrator, robots' organizations, users with a berth password)
-- have none. An identity is found by (provider, subject), never by the account's name, so a
-- provider's user can never sign in as a local account that happens to bear the same name.
-- Same meaning as migrations/postgres/0013_identities.sql.
CREATE TABLE external_identities (
    account_id    INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- 'oidc' or 'ldap'.
    provider      TEXT    NOT NULL,
    -- OpenID Connect: the issuer and `sub`, as "ISSUER SUB"; LDAP: the entry's DN.
    subject       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    UNIQUE (provider, subject)
);
