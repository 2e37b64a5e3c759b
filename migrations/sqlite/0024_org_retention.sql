-- Retention rules organizations set for themselves (the API's /api/v1/orgs/{org}/retention).
-- A repository's tags are judged by the configuration file's [[retention.policy]] with the
-- longest scope containing it and by its organization's rule with the longest such scope; a
-- tag is deleted only if every one of them that applies lets it go (so an owner can keep more
-- where the instance has a policy, and decides alone where it has none).
--
-- A rule belongs to its organization by record (`account_id`) and goes with it. `scope` is the
-- organization's name or a repository (or namespace) under it, one rule per scope; the
-- organization's rules are replaced as a whole (PUT). `keep_tags` is a JSON array of globs.
-- Every retention pass reads the rules from here, so a change applies at the next pass on
-- every replica. Same meaning as migrations/postgres/0024_org_retention.sql.
CREATE TABLE org_retention_rules (
    id                      INTEGER PRIMARY KEY,
    account_id              INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope                   TEXT    NOT NULL,
    keep_newest             INTEGER,
    keep_pushed_within_days INTEGER,
    keep_pulled_within_days INTEGER,
    keep_tags               TEXT    NOT NULL,
    updated_by              TEXT    NOT NULL,
    updated_at              INTEGER NOT NULL,
    UNIQUE (account_id, scope)
);
