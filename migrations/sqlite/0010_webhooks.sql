-- The webhook outbox and delivery log. A change inserts one delivery per webhook that listens,
-- in its own transaction (registry/src/meta/events.rs); the worker in `berth serve`
-- (registry/src/service/webhooks.rs) claims due deliveries, sends them and records each
-- attempt, so deliveries survive restarts and never hold up the request that caused them.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    -- The webhook's name in the configuration.
    hook            TEXT    NOT NULL,
    -- The event's id (audit_log.event_id, the CloudEvents id).
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    -- The exact JSON body sent on every attempt.
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt is due (while neither delivered nor given up).
    next_attempt_at INTEGER NOT NULL,
    -- A worker claimed it until then (another replica may take it over after).
    lease_until     INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER,
    -- Given up after the webhook's max_attempts (or the webhook was removed).
    failed_at       INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (hook, id);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (created_at);

-- Every attempt of a delivery: the response status, or why there was none.
CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    -- The HTTP status; NULL when no response came (connection refused, timeout).
    status      INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
