-- The audit log: who pushed, deleted, restored, or changed accounts, permissions, tokens and
-- visibility, when and from where. Each row is written in the transaction of the change it
-- records (see registry/src/meta/events.rs); rows older than audit.retention_days are pruned
-- by a background pass of `berth serve`.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    -- A UUID, also the CloudEvents id of the event's webhook deliveries.
    event_id    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    -- manifest.push, tag.delete, user.create, ... (registry/src/meta/events.rs `Action`).
    action      TEXT    NOT NULL,
    -- User, org+robot, '' (anonymous), system:NAME or cli:USER.
    actor       TEXT    NOT NULL,
    -- The client's IP address, when the change came over the network.
    address     TEXT,
    repository  TEXT,
    tag         TEXT,
    digest      TEXT,
    media_type  TEXT,
    size        INTEGER,
    -- The account, team or token acted on.
    target      TEXT,
    -- Further facts, a JSON object. Never a secret.
    detail      TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_repository ON audit_log (repository, id);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
