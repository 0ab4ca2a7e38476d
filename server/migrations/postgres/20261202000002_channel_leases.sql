-- Cluster mode: each connected channel runs on exactly one server, the holder of its lease.
-- A lease is good while its holder's row in `instances` is (the holder renews one row for all
-- its channels). `epoch` grows with every claim, so a server can tell that it lost a channel
-- and took it back.
CREATE TABLE channel_leases (
    channel_id TEXT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    holder     TEXT,
    epoch      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX channel_leases_by_holder ON channel_leases (holder);

-- The simulated phone's side of WhatsApp in cluster mode: what each simulated channel sent, as
-- WhatsApp received it, whichever server sent it (one server keeps this in memory).
CREATE TABLE sim_messages (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX sim_messages_by_channel ON sim_messages (channel_id, seq);
