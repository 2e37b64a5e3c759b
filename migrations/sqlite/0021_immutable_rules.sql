-- Immutable-tag rules organizations set for themselves (the API's
-- /api/v1/orgs/{org}/immutable-rules). They apply together with the configuration file's
-- [[policies.immutable]] rules, which owners cannot weaken: a tag is immutable if any rule of
-- either kind names it.
--
-- A rule belongs to its organization by record (`account_id`) and goes with it. `scope` is the
-- organization's name or a repository (or namespace) under it, as in the configuration's
-- rules; `pattern` is one glob (`*`, `?`, `[...]`). A push reads the rules of the pushed
-- repository's namespace (the account of that name, then its rules by `account_id`): two
-- indexed lookups, no cache, so a rule applies on every replica at once. Same meaning as
-- migrations/postgres/0021_immutable_rules.sql.
CREATE TABLE immutable_rules (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    pattern    TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, scope, pattern)
);
