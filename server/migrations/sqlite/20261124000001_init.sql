-- Accounts own tokens and channels. Created on first use by `keebai-server token create`.
CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- Personal access tokens. Only the SHA-256 of the secret is kept; the secret is shown once.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Paired WhatsApp numbers. One row per (account, phone): re-linking reuses the channel id.
CREATE TABLE channels (
    id              TEXT PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id),
    name            TEXT NOT NULL,
    phone_number    TEXT NOT NULL,
    push_name       TEXT NOT NULL,
    connection_type TEXT NOT NULL DEFAULT 'qr' CHECK (connection_type = 'qr'),
    linker          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('connected', 'disconnected')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (account_id, phone_number)
);

-- Messages sent on channels: metadata only, the text itself is not kept.
CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    recipient  TEXT NOT NULL,
    chars      INTEGER NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_by_channel ON messages (channel_id, created_at);
