-- Signed webhooks. Times here are milliseconds since the Unix epoch (UTC), as the sender
-- compares them with its clock.

-- Each account's endpoints. The secret is kept as given (signing needs it); `previous_secret`
-- signs beside it until `previous_until` after a rotation. `events` lists the subscribed types
-- separated by spaces.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id),
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    description     TEXT,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  INTEGER,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id);

-- The outbox: one row per event, written in the same transaction as the change it reports,
-- with its body exactly as it is signed and sent.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- One event's delivery to one endpoint, written with the event. `seq` orders each endpoint's
-- deliveries: only the lowest pending one of an endpoint is tried. A sender claims a delivery
-- until `claimed_until` while it tries it. `endpoint_id` has no foreign key on purpose: a
-- change's transaction must never fail (on Postgres) because an endpoint was removed while it
-- queued a delivery; removing an endpoint removes its deliveries itself.
CREATE TABLE webhook_deliveries (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    endpoint_id   TEXT NOT NULL,
    event_id      TEXT NOT NULL REFERENCES webhook_events (id),
    state         TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    failures      INTEGER NOT NULL DEFAULT 0,
    first_try_ms  INTEGER,
    next_ms       INTEGER NOT NULL,
    claimed_by    TEXT,
    claimed_until INTEGER,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_ms);

-- Every try of a delivery.
CREATE TABLE webhook_attempts (
    delivery_seq INTEGER NOT NULL REFERENCES webhook_deliveries (seq) ON DELETE CASCADE,
    at_ms        INTEGER NOT NULL,
    status       INTEGER,
    latency_ms   INTEGER NOT NULL,
    error        TEXT
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_seq, at_ms);
