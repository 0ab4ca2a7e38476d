-- whatsapp-rust's storage Backend (keebai-wa-postgres). One database holds the keys of many
-- WhatsApp devices: every table carries the caller's `device` key first in its primary key.
-- Tables are prefixed `wa_` so they never meet the server's own. Integers the library holds as
-- u32 or i64 are bigint; byte strings are bytea.

CREATE TABLE wa_device (
    device TEXT PRIMARY KEY,
    -- What DeviceStore::create returns: the trait wants an i32 id per device row.
    id INTEGER GENERATED ALWAYS AS IDENTITY UNIQUE,
    lid TEXT NOT NULL,
    pn TEXT NOT NULL,
    registration_id BIGINT NOT NULL,
    noise_key BYTEA NOT NULL,
    identity_key BYTEA NOT NULL,
    signed_pre_key BYTEA NOT NULL,
    signed_pre_key_id BIGINT NOT NULL,
    signed_pre_key_signature BYTEA NOT NULL,
    adv_secret_key BYTEA NOT NULL,
    account BYTEA,
    push_name TEXT NOT NULL,
    app_version_primary BIGINT NOT NULL,
    app_version_secondary BIGINT NOT NULL,
    app_version_tertiary BIGINT NOT NULL,
    app_version_last_fetched_ms BIGINT NOT NULL,
    edge_routing_info BYTEA,
    props_hash TEXT,
    next_pre_key_id BIGINT NOT NULL,
    first_unupload_pre_key_id BIGINT NOT NULL,
    server_has_prekeys BOOLEAN NOT NULL,
    nct_salt BYTEA,
    -- The cached server cert chain: all six set, or all six null.
    cert_intermediate_key BYTEA,
    cert_intermediate_not_before BIGINT,
    cert_intermediate_not_after BIGINT,
    cert_leaf_key BYTEA,
    cert_leaf_not_before BIGINT,
    cert_leaf_not_after BIGINT,
    login_counter INTEGER NOT NULL,
    lid_migrated BOOLEAN NOT NULL,
    last_signed_pre_key_rotation_ms BIGINT NOT NULL,
    read_receipts_disabled BOOLEAN NOT NULL
);

CREATE TABLE wa_identities (
    device TEXT NOT NULL,
    address TEXT NOT NULL,
    key BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

CREATE TABLE wa_sessions (
    device TEXT NOT NULL,
    address TEXT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

CREATE TABLE wa_prekeys (
    device TEXT NOT NULL,
    id BIGINT NOT NULL,
    key BYTEA NOT NULL,
    uploaded BOOLEAN NOT NULL,
    PRIMARY KEY (device, id)
);

CREATE TABLE wa_signed_prekeys (
    device TEXT NOT NULL,
    id BIGINT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (device, id)
);

CREATE TABLE wa_sender_keys (
    device TEXT NOT NULL,
    address TEXT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (device, address)
);

CREATE TABLE wa_app_state_keys (
    device TEXT NOT NULL,
    key_id BYTEA NOT NULL,
    key_data BYTEA NOT NULL,
    fingerprint BYTEA NOT NULL,
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (device, key_id)
);

CREATE TABLE wa_app_state_versions (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    -- HashState.version is a u64, kept bit for bit.
    version BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    -- HashState.index_value_map as two parallel arrays (keys[i] maps to index_values[i]).
    index_keys TEXT[] NOT NULL,
    index_values BYTEA[] NOT NULL,
    mac_mismatch_fatal BOOLEAN NOT NULL,
    PRIMARY KEY (device, name)
);

CREATE TABLE wa_app_state_mutation_macs (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    index_mac BYTEA NOT NULL,
    version BIGINT NOT NULL,
    value_mac BYTEA NOT NULL,
    PRIMARY KEY (device, name, index_mac)
);

CREATE TABLE wa_sender_key_devices (
    device TEXT NOT NULL,
    group_jid TEXT NOT NULL,
    device_jid TEXT NOT NULL,
    has_key BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device, group_jid, device_jid)
);
CREATE INDEX wa_sender_key_devices_device_jid ON wa_sender_key_devices (device, device_jid);

CREATE TABLE wa_lid_pn_mapping (
    device TEXT NOT NULL,
    lid TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    learning_source TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device, lid)
);
CREATE INDEX wa_lid_pn_mapping_phone ON wa_lid_pn_mapping (device, phone_number, updated_at DESC);

CREATE TABLE wa_base_keys (
    device TEXT NOT NULL,
    address TEXT NOT NULL,
    message_id TEXT NOT NULL,
    base_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device, address, message_id)
);

CREATE TABLE wa_device_registry (
    device TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- Vec<DeviceInfo> as JSON, the encoding the SQLite store uses.
    devices_json TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    phash TEXT,
    raw_id BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device, user_id)
);

CREATE TABLE wa_group_metadata (
    device TEXT NOT NULL,
    group_jid TEXT NOT NULL,
    info BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device, group_jid)
);

CREATE TABLE wa_tc_tokens (
    device TEXT NOT NULL,
    jid TEXT NOT NULL,
    token BYTEA NOT NULL,
    token_timestamp BIGINT NOT NULL,
    sender_timestamp BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device, jid)
);

CREATE TABLE wa_sent_messages (
    device TEXT NOT NULL,
    chat_jid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device, chat_jid, message_id)
);
CREATE INDEX wa_sent_messages_created ON wa_sent_messages (device, created_at);

CREATE TABLE wa_pending_inbound (
    device TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT NOT NULL,
    id TEXT NOT NULL,
    message BYTEA NOT NULL,
    inserted_at BIGINT NOT NULL,
    PRIMARY KEY (device, chat, sender, id)
);
CREATE INDEX wa_pending_inbound_inserted ON wa_pending_inbound (device, inserted_at);

CREATE TABLE wa_msg_secrets (
    device TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    -- 0 = never expires.
    expires_at BIGINT NOT NULL,
    message_ts BIGINT NOT NULL,
    PRIMARY KEY (device, chat, sender, msg_id)
);
CREATE INDEX wa_msg_secrets_expires ON wa_msg_secrets (device, expires_at) WHERE expires_at <> 0;
