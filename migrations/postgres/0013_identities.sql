-- Accounts that sign in through an identity provider; see migrations/sqlite/0013_identities.sql.
CREATE TABLE external_identities (
    account_id    BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    provider      TEXT COLLATE "C" NOT NULL,
    subject       TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    UNIQUE (provider, subject)
);
