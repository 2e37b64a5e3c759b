-- CVE allowlists organizations keep for themselves (the API's
-- /api/v1/orgs/{org}/cve-allowlist). Their entries are added to those of the configuration's
-- [[scan.policy]] table covering a repository of the organization; owners cannot remove the
-- configuration's entries.
--
-- One row per organization, by record (`account_id`), gone with it. `entries` is the JSON
-- array of entries as given (`[{"id": "CVE-2023-1234", "expires": "2027-01-31", "reason":
-- "..."}]`), replaced whole by each PUT; the audit log keeps the old and the new list. A pull
-- in an enforcing scope reads it with one indexed lookup (the account by name, its row by
-- key), and only when the admission is not cached. Same meaning as
-- migrations/sqlite/0023_cve_allowlists.sql.
CREATE TABLE cve_allowlists (
    account_id BIGINT  PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    entries    TEXT    NOT NULL,
    updated_by TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
