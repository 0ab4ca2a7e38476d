-- Cluster mode (Postgres only; one server on SQLite needs none of this). Times here are the
-- database's own (`now()`): every lease and expiry is judged by one clock.

-- The servers that serve this database. A server is alive while its lease lasts; it renews
-- the lease every few seconds and deletes its row when it stops cleanly.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until TIMESTAMPTZ NOT NULL
);

-- Pairing sessions, each run by the server that created it (`owner`). A session whose owner's
-- lease has lapsed is ended by another server with `failed` `owner_lost`. Rows go 60 s (the
-- replay time) after the session ended, their events with them.
CREATE TABLE pairing_sessions (
    id         TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    owner      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at   TIMESTAMPTZ
);
CREATE INDEX pairing_sessions_running ON pairing_sessions (owner) WHERE ended_at IS NULL;
CREATE INDEX pairing_sessions_ended ON pairing_sessions (ended_at) WHERE ended_at IS NOT NULL;

-- Every event of a session, numbered as its stream numbers them (the SSE `id`). Each insert
-- commits together with a `pg_notify('keebai_pairing', <session ids>)`. `qr` repeats a `qr`
-- event's code, so that a simulated scan can find the session's owner.
CREATE TABLE pairing_events (
    session_id TEXT NOT NULL REFERENCES pairing_sessions (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    event      TEXT NOT NULL,
    data       TEXT NOT NULL,
    qr         TEXT,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX pairing_events_by_qr ON pairing_events (qr) WHERE qr IS NOT NULL;

-- Requests from one server to another (cancel a session, a simulated scan), each with its reply:
-- written with a `pg_notify('keebai_commands', <target>)`, taken once by the target, answered
-- with a `pg_notify('keebai_replies', '<sender>:<id>')`.
CREATE TABLE cluster_commands (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target     TEXT NOT NULL,
    sender     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    taken_at   TIMESTAMPTZ,
    reply      TEXT
);
CREATE INDEX cluster_commands_waiting ON cluster_commands (target) WHERE taken_at IS NULL;
