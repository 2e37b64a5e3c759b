-- Quotas administrators set at run time (the API's /api/v1/quotas/{scope}, the usage pages).
-- They apply together with the configuration file's [[policies.quota]] rules: every rule whose
-- scope covers a repository is checked, so the strictest wins and a quota here can never
-- loosen one there.
--
-- `scope` is a namespace (an organization or a user: that name and every repository under
-- `scope/`) or a repository, one quota per scope. It is kept by name, not by account: a quota
-- only ever refuses writes, so a quota outliving its account takes nothing from anyone, and
-- an administrator sees and removes it on the overview. At least one of the limits is set.
-- Pushes read the quotas covering the pushed repository from here (one query), so a change
-- applies on every replica from the next request on. Same meaning as
-- migrations/sqlite/0026_quotas.sql.
CREATE TABLE quotas (
    scope            TEXT    PRIMARY KEY,
    max_bytes        BIGINT,
    max_repositories BIGINT,
    set_by           TEXT    NOT NULL,
    set_at           BIGINT  NOT NULL,
    CHECK (max_bytes IS NOT NULL OR max_repositories IS NOT NULL),
    CHECK (max_bytes IS NULL OR max_bytes >= 0),
    CHECK (max_repositories IS NULL OR max_repositories >= 0)
);
