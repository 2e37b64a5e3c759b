-- Webhooks organizations set for themselves (the API's /api/v1/orgs/{org}/webhooks). They
-- hear of the events of their organization's repositories (or of a repository or namespace in
-- it, `scope`), beside the configuration file's [[webhooks.hook]], which stay instance hooks.
--
-- A hook belongs to its organization by record (`account_id`) and goes with it. `events` is a
-- comma-wrapped list (",push,delete,"), so one LIKE finds the hooks of an event. `secret`
-- signs the deliveries (HMAC-SHA256); the API never returns it, only whether there is one.
-- Deliveries name a hook `org:ID` in webhook_deliveries.hook; a change queues them in its own
-- transaction, reading the hooks from here, so a hook applies on every replica at once. Same
-- meaning as migrations/postgres/0025_org_webhooks.sql.
CREATE TABLE org_webhooks (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    events     TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX org_webhooks_by_account ON org_webhooks (account_id);
