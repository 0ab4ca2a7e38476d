//! [`PostgresStore::import_sqlite`]: one device moved from a whatsapp-rust SQLite device file
//! (`whatsapp-rust-sqlite-storage` 0.7.0) into the Postgres store, so a one-server install can
//! move into a cluster without relinking its phones.

use std::path::Path;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use wacore::appstate::hash::HashState;
use wacore::store::error::StoreError;
use wacore::store::traits::AppStateSyncKey;

use crate::app_sync::{INSERT_VERSION, write_version};
use crate::device::{DeviceRow, insert_device_row};
use crate::{PostgresStore, check_device_key, db_err, sqlite_wire};

/// The device a file's store works on: `SqliteStore::new` (what whatsapp-rust and the keebai
/// server open a device file with) always uses device id 1 of the file's multi-account tables;
/// other ids are only reachable through `SqliteStore::new_for_device`.
pub const SQLITE_DEVICE_ID: i32 = 1;

/// The migrations of `whatsapp-rust-sqlite-storage` 0.7.0, as diesel records them in
/// `__diesel_schema_migrations` (a directory name's part before `_`, dashes dropped). The import
/// reads exactly that schema: a file missing some lacks columns (open it once with the SQLite
/// store, which migrates it), a file with more was written by a newer whatsapp-rust and may hold
/// data the import would silently leave behind.
const SQLITE_MIGRATIONS: [&str; 23] = [
    "20250814035031",
    "202509230322320000",
    "20251204000000",
    "20251211000000",
    "20251224000000",
    "20260205000000",
    "20260212000000",
    "20260312000000",
    "20260315000000",
    "20260323000000",
    "20260326000000",
    "20260331000000",
    "20260406171140",
    "20260426000000",
    "20260513000000",
    "20260528000000",
    "20260531000000",
    "20260601000000",
    "20260610000000",
    "20260626000000",
    "20260702000000",
    "20260703000000",
    "20260703000001",
];

/// Rows sent to Postgres per statement: bounds a statement's arrays on devices with many
/// sessions or mappings.
const CHUNK: usize = 1000;

/// What [`PostgresStore::import_sqlite`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteImport {
    /// Rows written to each Postgres table, every table of a device listed (zeros included), the
    /// device row (`wa_device`) last.
    pub rows: Vec<(&'static str, u64)>,
    /// Rows of the SQLite file that were not copied because the SQLite store reads them as
    /// absent, per SQLite table: `app_state_keys` whose blob does not decode or whose master key
    /// is not 32 bytes (it re-requests such a key), `app_state_versions` whose blob does not
    /// decode (it re-syncs such a collection from version 0). Empty when every row was copied.
    pub unreadable: Vec<(&'static str, u64)>,
    /// The device's cached server cert chain did not decode, so it was left out (the SQLite store
    /// loads it as absent too; the next connect does a full handshake and caches a new one).
    pub cert_chain_dropped: bool,
    /// Device rows in the file under other ids than [`SQLITE_DEVICE_ID`] (none in a keebai
    /// device file): not the file's device, not copied.
    pub other_devices: u64,
}

impl SqliteImport {
    /// The rows written to the Postgres table `table` (0 for an unknown name).
    pub fn rows_in(&self, table: &str) -> u64 {
        self.rows.iter().find(|(name, _)| *name == table).map_or(0, |(_, n)| *n)
    }

    /// All rows written.
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

/// A u32 the SQLite store keeps in a diesel `Integer` column, in this crate's bigint form. The
/// SQLite store writes it wrapped to i32 and reads it back `as u32`; diesel reads an `Integer`
/// as the value's low 32 bits. Doing both here gives the u32 the library sees from SQLite.
fn u32_column(value: i64) -> i64 {
    i64::from(value as i32 as u32)
}

/// An i32 of a diesel `Integer` column, as diesel reads it (the low 32 bits), widened to the
/// bigint this crate keeps it in.
fn i32_column(value: i64) -> i64 {
    i64::from(value as i32)
}

/// The `device` row of a SQLite device file, every column but `id`.
#[derive(sqlx::FromRow)]
struct SqliteDevice {
    lid: String,
    pn: String,
    registration_id: i64,
    noise_key: Vec<u8>,
    identity_key: Vec<u8>,
    signed_pre_key: Vec<u8>,
    signed_pre_key_id: i64,
    signed_pre_key_signature: Vec<u8>,
    adv_secret_key: Vec<u8>,
    account: Option<Vec<u8>>,
    push_name: String,
    app_version_primary: i64,
    app_version_secondary: i64,
    app_version_tertiary: i64,
    app_version_last_fetched_ms: i64,
    edge_routing_info: Option<Vec<u8>>,
    props_hash: Option<String>,
    next_pre_key_id: i64,
    nct_salt: Option<Vec<u8>>,
    server_has_prekeys: bool,
    server_cert_chain: Option<Vec<u8>>,
    login_counter: i64,
    first_unupload_pre_key_id: i64,
    lid_migrated: bool,
    last_signed_pre_key_rotation_ms: i64,
    read_receipts_disabled: bool,
}

impl SqliteDevice {
    /// The row as `wa_device` keeps it, and whether its cert chain was dropped. Byte columns
    /// (keys, account, JIDs as text) are copied as they are: both stores decode them with the
    /// same code, so a copy loads as the original does.
    fn into_row(self) -> (DeviceRow, bool) {
        let (chain, dropped) =
            match self.server_cert_chain.as_deref().map(sqlite_wire::decode_server_cert_chain) {
                None => (None, false),
                Some(Ok(chain)) => (Some(chain), false),
                Some(Err(e)) => {
                    tracing::warn!(
                        error = %e,
                        "the SQLite device's cached server cert chain does not decode; leaving it \
                         out, as the SQLite store would (the next connect caches a new one)"
                    );
                    (None, true)
                }
            };
        let row = DeviceRow {
            lid: self.lid,
            pn: self.pn,
            registration_id: u32_column(self.registration_id),
            noise_key: self.noise_key,
            identity_key: self.identity_key,
            signed_pre_key: self.signed_pre_key,
            signed_pre_key_id: u32_column(self.signed_pre_key_id),
            signed_pre_key_signature: self.signed_pre_key_signature,
            adv_secret_key: self.adv_secret_key,
            account: self.account,
            push_name: self.push_name,
            app_version_primary: u32_column(self.app_version_primary),
            app_version_secondary: u32_column(self.app_version_secondary),
            // A BigInt column on both sides; both stores read it with the same fallback.
            app_version_tertiary: self.app_version_tertiary,
            app_version_last_fetched_ms: self.app_version_last_fetched_ms,
            edge_routing_info: self.edge_routing_info,
            props_hash: self.props_hash,
            next_pre_key_id: u32_column(self.next_pre_key_id),
            first_unupload_pre_key_id: u32_column(self.first_unupload_pre_key_id),
            server_has_prekeys: self.server_has_prekeys,
            nct_salt: self.nct_salt,
            cert_intermediate_key: None,
            cert_intermediate_not_before: None,
            cert_intermediate_not_after: None,
            cert_leaf_key: None,
            cert_leaf_not_before: None,
            cert_leaf_not_after: None,
            // An i32 on both sides, read by diesel as the low 32 bits.
            login_counter: self.login_counter as i32,
            lid_migrated: self.lid_migrated,
            last_signed_pre_key_rotation_ms: self.last_signed_pre_key_rotation_ms,
            read_receipts_disabled: self.read_receipts_disabled,
        };
        (row.with_cert_chain(chain.as_ref()), dropped)
    }
}

type AddressRows = Vec<(String, Vec<u8>)>;
/// (user_id, devices_json, timestamp, phash, raw_id, updated_at)
type RegistryRow = (String, String, i64, Option<String>, Option<i64>, i64);
/// (jid, token, token_timestamp, sender_timestamp, updated_at)
type TokenRow = (String, Vec<u8>, i64, Option<i64>, i64);
/// (chat, sender, msg_id, secret, created_at, expires_at, message_ts)
type SecretRow = (String, String, String, Vec<u8>, i64, i64, i64);

/// Everything of the file's device, read in one SQLite read transaction (one snapshot), already
/// in the form the Postgres tables keep.
struct Dump {
    device: DeviceRow,
    cert_chain_dropped: bool,
    other_devices: u64,
    identities: AddressRows,
    sessions: AddressRows,
    /// (id, key, uploaded)
    prekeys: Vec<(i64, Vec<u8>, bool)>,
    signed_prekeys: Vec<(i64, Vec<u8>)>,
    sender_keys: AddressRows,
    app_state_keys: Vec<(Vec<u8>, AppStateSyncKey)>,
    unreadable_app_state_keys: u64,
    app_state_versions: Vec<(String, HashState)>,
    unreadable_app_state_versions: u64,
    /// (name, index_mac, version, value_mac)
    mutation_macs: Vec<(String, Vec<u8>, i64, Vec<u8>)>,
    /// (group_jid, device_jid, has_key, updated_at)
    sender_key_devices: Vec<(String, String, bool, i64)>,
    /// (lid, phone_number, created_at, learning_source, updated_at)
    lid_pn_mapping: Vec<(String, String, i64, String, i64)>,
    /// (address, message_id, base_key, created_at)
    base_keys: Vec<(String, String, Vec<u8>, i64)>,
    device_registry: Vec<RegistryRow>,
    /// (group_jid, info, updated_at)
    group_metadata: Vec<(String, Vec<u8>, i64)>,
    tc_tokens: Vec<TokenRow>,
    /// (chat_jid, message_id, payload, created_at)
    sent_messages: Vec<(String, String, Vec<u8>, i64)>,
    /// (chat, sender, id, message, inserted_at)
    pending_inbound: Vec<(String, String, String, Vec<u8>, i64)>,
    msg_secrets: Vec<SecretRow>,
}

/// Renders an error with its sources, for messages that wrap it.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Checks that the file has exactly the schema this import maps (see [`SQLITE_MIGRATIONS`]).
async fn check_schema(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    let applied: Vec<String> = sqlx::query_scalar("SELECT version FROM __diesel_schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::Validation(format!(
                "{} is not a whatsapp-rust SQLite store (no migration history): {}",
                path.display(),
                with_sources(&e)
            ))
        })?;
    let unknown: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|version| !SQLITE_MIGRATIONS.contains(version))
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::Validation(format!(
            "{} was migrated by a newer whatsapp-rust than the import knows (0.7.0; unknown \
             migrations {unknown:?}) and may hold data it would leave behind",
            path.display()
        )));
    }
    let missing: Vec<&str> = SQLITE_MIGRATIONS
        .into_iter()
        .filter(|version| !applied.iter().any(|applied| applied == version))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::Validation(format!(
            "{} has an older SQLite store schema (migrations {missing:?} not applied); open it \
             once with the server (the SQLite store migrates it) and retry",
            path.display()
        )));
    }
    Ok(())
}

/// Reads the file's device. Fails with [`StoreError::DeviceNotFound`] when the file has no
/// device row, and when the row does not load as a device (what `DeviceStore::load` would fail
/// on, on either store) with the reason.
async fn read_dump(conn: &mut SqliteConnection, path: &Path) -> Result<Dump, StoreError> {
    let id = SQLITE_DEVICE_ID;
    let device: Option<SqliteDevice> = sqlx::query_as(
        "SELECT lid, pn, registration_id, noise_key, identity_key, signed_pre_key, \
             signed_pre_key_id, signed_pre_key_signature, adv_secret_key, account, push_name, \
             app_version_primary, app_version_secondary, app_version_tertiary, \
             app_version_last_fetched_ms, edge_routing_info, props_hash, next_pre_key_id, \
             nct_salt, server_has_prekeys, server_cert_chain, login_counter, \
             first_unupload_pre_key_id, lid_migrated, last_signed_pre_key_rotation_ms, \
             read_receipts_disabled \
         FROM device WHERE id = ?1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(device) = device else {
        return Err(StoreError::DeviceNotFound(id));
    };
    let (device, cert_chain_dropped) = device.into_row();
    // The row must load as the SQLite store loads it; the Postgres store loads it with the same
    // checks, so a device that imports also loads.
    device.clone().into_device().map_err(|e| {
        StoreError::Validation(format!(
            "the device row of {} does not load, so it is not imported: {}",
            path.display(),
            with_sources(&e)
        ))
    })?;
    let other_devices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM device WHERE id <> ?1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;

    let identities: AddressRows =
        sqlx::query_as("SELECT address, key FROM identities WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let sessions: AddressRows =
        sqlx::query_as("SELECT address, record FROM sessions WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let prekeys: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query_as("SELECT id, key, uploaded FROM prekeys WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let signed_prekeys: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, record FROM signed_prekeys WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let sender_keys: AddressRows =
        sqlx::query_as("SELECT address, record FROM sender_keys WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;

    let key_rows: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, key_data FROM app_state_keys WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let total_keys = key_rows.len();
    let app_state_keys: Vec<(Vec<u8>, AppStateSyncKey)> = key_rows
        .into_iter()
        .filter_map(|(key_id, blob)| match sqlite_wire::decode_app_state_sync_key(&blob) {
            Ok(key) => Some((key_id, key)),
            Err(e) => {
                tracing::warn!(error = %e, "an app-state sync key does not decode; the SQLite \
                    store reads it as absent, so it is left out (it will be re-requested)");
                None
            }
        })
        .collect();
    let version_rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT name, state_data FROM app_state_versions WHERE device_id = ?1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let total_versions = version_rows.len();
    let app_state_versions: Vec<(String, HashState)> = version_rows
        .into_iter()
        .filter_map(|(name, blob)| match sqlite_wire::decode_hash_state(&blob) {
            Ok(state) => Some((name, state)),
            Err(e) => {
                tracing::warn!(error = %e, collection = %name, "an app-state version does not \
                    decode; the SQLite store reads it as never synced, so it is left out (the \
                    collection re-syncs from version 0)");
                None
            }
        })
        .collect();
    let mutation_macs: Vec<(String, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT name, index_mac, version, value_mac FROM app_state_mutation_macs \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;

    let sender_key_devices: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT group_jid, device_jid, has_key, updated_at FROM sender_key_devices \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let lid_pn_mapping: Vec<(String, String, i64, String, i64)> = sqlx::query_as(
        "SELECT lid, phone_number, created_at, learning_source, updated_at FROM lid_pn_mapping \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let base_keys: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT address, message_id, base_key, created_at FROM base_keys WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let device_registry: Vec<RegistryRow> = sqlx::query_as(
        "SELECT user_id, devices_json, timestamp, phash, raw_id, updated_at \
             FROM device_registry WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let group_metadata: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT group_jid, info, updated_at FROM group_metadata WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let tc_tokens: Vec<TokenRow> = sqlx::query_as(
        "SELECT jid, token, token_timestamp, sender_timestamp, updated_at FROM tc_tokens \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let sent_messages: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT chat_jid, message_id, payload, created_at FROM sent_messages WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let pending_inbound: Vec<(String, String, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT chat, sender, id, message, inserted_at FROM pending_inbound_messages \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let msg_secrets: Vec<SecretRow> = sqlx::query_as(
        "SELECT chat, sender, msg_id, secret, created_at, expires_at, message_ts FROM msg_secrets \
         WHERE device_id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;

    Ok(Dump {
        device,
        cert_chain_dropped,
        other_devices: u64::try_from(other_devices).unwrap_or(0),
        identities,
        sessions,
        prekeys: prekeys.into_iter().map(|(id, key, up)| (u32_column(id), key, up)).collect(),
        signed_prekeys: signed_prekeys
            .into_iter()
            .map(|(id, record)| (u32_column(id), record))
            .collect(),
        sender_keys,
        unreadable_app_state_keys: (total_keys - app_state_keys.len()) as u64,
        app_state_keys,
        unreadable_app_state_versions: (total_versions - app_state_versions.len()) as u64,
        app_state_versions,
        mutation_macs,
        // diesel reads has_key as an i32 and the store tests it against 0.
        sender_key_devices: sender_key_devices
            .into_iter()
            .map(|(group, device, has_key, at)| (group, device, has_key as i32 != 0, at))
            .collect(),
        lid_pn_mapping,
        base_keys: base_keys
            .into_iter()
            .map(|(address, id, key, created_at)| (address, id, key, i32_column(created_at)))
            .collect(),
        // timestamp, raw_id and updated_at are i32 columns; raw_id is read back `as u32`.
        device_registry: device_registry
            .into_iter()
            .map(|(user, json, timestamp, phash, raw_id, updated_at)| {
                (
                    user,
                    json,
                    i32_column(timestamp),
                    phash,
                    raw_id.map(u32_column),
                    i32_column(updated_at),
                )
            })
            .collect(),
        group_metadata,
        tc_tokens,
        sent_messages,
        pending_inbound,
        msg_secrets,
    })
}

/// Fails unless Postgres has no row at all for `device`, in any table.
async fn check_empty(tx: &mut PgConnection, device: &str) -> Result<(), StoreError> {
    let tables = per_table!("", "");
    let queries = per_table!("SELECT EXISTS (SELECT 1 FROM ", " WHERE device = $1)");
    for (table, sql) in tables.into_iter().zip(queries) {
        let exists: bool =
            sqlx::query_scalar(sql).bind(device).fetch_one(&mut *tx).await.map_err(db_err)?;
        if exists {
            return Err(StoreError::InvalidConfig(format!(
                "device '{device}' already has rows in Postgres ({table}); the import only \
                 writes into an empty device, nothing was written"
            )));
        }
    }
    Ok(())
}

/// Writes `dump` as the rows of `device`, with plain inserts (an existing row is an error).
/// Returns the rows written per table, in `per_table!` order.
async fn write_dump(
    tx: &mut PgConnection,
    device: &str,
    dump: Dump,
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    /// Runs `$sql` once per chunk of `$rows`, binding `device` then one array per closure (each
    /// maps a row to one column), and adds up the rows written.
    macro_rules! insert_chunks {
        ($rows:expr, $sql:literal, $($column:expr),+ $(,)?) => {{
            let mut written = 0u64;
            for chunk in $rows.chunks(CHUNK) {
                let query = sqlx::query($sql).bind(device);
                $(let query = query.bind(chunk.iter().map($column).collect::<Vec<_>>());)+
                written += query.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            }
            written
        }};
    }

    let identities = insert_chunks!(
        dump.identities,
        "INSERT INTO wa_identities (device, address, key) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
    );
    let sessions = insert_chunks!(
        dump.sessions,
        "INSERT INTO wa_sessions (device, address, record) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
    );
    let prekeys = insert_chunks!(
        dump.prekeys,
        "INSERT INTO wa_prekeys (device, id, key, uploaded) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::boolean[])",
        |r| r.0,
        |r| r.1.as_slice(),
        |r| r.2,
    );
    let signed_prekeys = insert_chunks!(
        dump.signed_prekeys,
        "INSERT INTO wa_signed_prekeys (device, id, record) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[])",
        |r| r.0,
        |r| r.1.as_slice(),
    );
    let sender_keys = insert_chunks!(
        dump.sender_keys,
        "INSERT INTO wa_sender_keys (device, address, record) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
    );
    let app_state_keys = insert_chunks!(
        dump.app_state_keys,
        "INSERT INTO wa_app_state_keys (device, key_id, key_data, fingerprint, timestamp) \
         SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::bytea[], $5::bigint[])",
        |r| r.0.as_slice(),
        |r| r.1.key_data.as_slice(),
        |r| r.1.fingerprint.as_slice(),
        |r| r.1.timestamp,
    );
    // Row by row: a state holds two arrays, which UNNEST cannot carry per row. A device has a
    // handful of collections.
    let mut app_state_versions = 0u64;
    for (name, state) in dump.app_state_versions {
        app_state_versions += write_version(&mut *tx, INSERT_VERSION, device, &name, state).await?;
    }
    let mutation_macs = insert_chunks!(
        dump.mutation_macs,
        "INSERT INTO wa_app_state_mutation_macs (device, name, index_mac, version, value_mac) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::bigint[], $5::bytea[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
        |r| r.2,
        |r| r.3.as_slice(),
    );
    let sender_key_devices = insert_chunks!(
        dump.sender_key_devices,
        "INSERT INTO wa_sender_key_devices (device, group_jid, device_jid, has_key, updated_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::boolean[], $5::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2,
        |r| r.3,
    );
    let lid_pn_mapping = insert_chunks!(
        dump.lid_pn_mapping,
        "INSERT INTO wa_lid_pn_mapping \
             (device, lid, phone_number, created_at, learning_source, updated_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2,
        |r| r.3.as_str(),
        |r| r.4,
    );
    let base_keys = insert_chunks!(
        dump.base_keys,
        "INSERT INTO wa_base_keys (device, address, message_id, base_key, created_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bytea[], $5::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2.as_slice(),
        |r| r.3,
    );
    let device_registry = insert_chunks!(
        dump.device_registry,
        "INSERT INTO wa_device_registry \
             (device, user_id, devices_json, timestamp, phash, raw_id, updated_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], \
             $6::bigint[], $7::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2,
        |r| r.3.as_deref(),
        |r| r.4,
        |r| r.5,
    );
    let group_metadata = insert_chunks!(
        dump.group_metadata,
        "INSERT INTO wa_group_metadata (device, group_jid, info, updated_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
        |r| r.2,
    );
    let tc_tokens = insert_chunks!(
        dump.tc_tokens,
        "INSERT INTO wa_tc_tokens \
             (device, jid, token, token_timestamp, sender_timestamp, updated_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::bigint[], $5::bigint[], \
             $6::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_slice(),
        |r| r.2,
        |r| r.3,
        |r| r.4,
    );
    let sent_messages = insert_chunks!(
        dump.sent_messages,
        "INSERT INTO wa_sent_messages (device, chat_jid, message_id, payload, created_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bytea[], $5::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2.as_slice(),
        |r| r.3,
    );
    let pending_inbound = insert_chunks!(
        dump.pending_inbound,
        "INSERT INTO wa_pending_inbound (device, chat, sender, id, message, inserted_at) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2.as_str(),
        |r| r.3.as_slice(),
        |r| r.4,
    );
    let msg_secrets = insert_chunks!(
        dump.msg_secrets,
        "INSERT INTO wa_msg_secrets \
             (device, chat, sender, msg_id, secret, created_at, expires_at, message_ts) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[], \
             $6::bigint[], $7::bigint[], $8::bigint[])",
        |r| r.0.as_str(),
        |r| r.1.as_str(),
        |r| r.2.as_str(),
        |r| r.3.as_slice(),
        |r| r.4,
        |r| r.5,
        |r| r.6,
    );
    insert_device_row(&mut *tx, device, dump.device).await?;

    let counts = [
        identities,
        sessions,
        prekeys,
        signed_prekeys,
        sender_keys,
        app_state_keys,
        app_state_versions,
        mutation_macs,
        sender_key_devices,
        lid_pn_mapping,
        base_keys,
        device_registry,
        group_metadata,
        tc_tokens,
        sent_messages,
        pending_inbound,
        msg_secrets,
        1,
    ];
    Ok(per_table!("", "").into_iter().zip(counts).collect())
}

impl PostgresStore {
    /// Copies the device of a whatsapp-rust SQLite device file into this database under the key
    /// `device`, in one Postgres transaction: every row or none.
    ///
    /// The file is what `SqliteStore::new(path)` opens (one file per device, as the keebai
    /// server keeps them). Its tables are multi-account (a `device_id` column, the `device`
    /// table's `id`), and `SqliteStore::new` works on id [`SQLITE_DEVICE_ID`] (1); that device
    /// is the one copied. Device rows under other ids are not copied and are counted in
    /// [`SqliteImport::other_devices`].
    ///
    /// The file is opened read-only and read in one read transaction, so it is never changed,
    /// and what is copied is one consistent snapshot. The server using the file must be stopped
    /// first all the same: a device that keeps running on the file after its copy was taken
    /// would fork its Signal state.
    ///
    /// Fails, with nothing written, when:
    /// - `device` is not a valid key, or the file cannot be opened;
    /// - the file's schema is not exactly that of `whatsapp-rust-sqlite-storage` 0.7.0 (its
    ///   migration history differs), or it is not a SQLite store at all;
    /// - the file has no device row ([`StoreError::DeviceNotFound`] with id 1): a device file of
    ///   a channel that never got as far as creating its keys has nothing worth moving, and
    ///   importing its other rows (if any) without a device row would leave rows no
    ///   [`PostgresStore::devices`] lists that would block a later import;
    /// - the device row would not load (bad key lengths, an undecodable account), with the
    ///   reason;
    /// - Postgres already has any row for `device`, in any table
    ///   ([`StoreError::InvalidConfig`]): an import never merges into or replaces a device, and
    ///   a second import of the same file is refused;
    /// - any Postgres statement fails (the transaction is rolled back).
    ///
    /// # What maps to what
    ///
    /// Each SQLite table maps to the `wa_` table of the same name (`pending_inbound_messages`
    /// to `wa_pending_inbound`), each column to the column of the same name, with `device_id`
    /// replaced by `device`. Values are converted so that every trait method of the Postgres
    /// store returns what the SQLite store's returns on the file:
    /// - u32 values the SQLite store keeps wrapped in 32-bit columns (pre-key and signed
    ///   pre-key ids, registration id, signed pre-key id, app version primary and secondary,
    ///   next and first-unuploaded pre-key ids, device-list `raw_id`) are unwrapped to the u32
    ///   it reads back;
    /// - 32-bit columns it reads as i32 (device-list `timestamp` and `updated_at`, base-key
    ///   `created_at`, `login_counter`) are copied as the i32 it reads, and the sender-key
    ///   device `has_key` integer as the boolean it reads;
    /// - the protobuf blobs are decoded as the SQLite store decodes them (see `sqlite_wire`)
    ///   and written through the same column mappings `save`/`set_version` use:
    ///   `device.server_cert_chain` becomes the six `cert_*` columns,
    ///   `app_state_keys.key_data` becomes `key_data`, `fingerprint`, `timestamp`, and
    ///   `app_state_versions.state_data` becomes `version`, `hash`, `index_keys`,
    ///   `index_values`, `mac_mismatch_fatal`;
    /// - everything else (keys, session and sender-key records, the serialized account, JIDs,
    ///   the device-list JSON, timestamps, every other blob) is copied byte for byte: both
    ///   stores read those the same way.
    ///
    /// # What is not copied, and why
    ///
    /// - `device.id` and every `device_id` column: the Postgres store keys rows by `device`;
    ///   `wa_device.id` (what `DeviceStore::create` returns) is generated by Postgres.
    /// - Rows whose blob the SQLite store cannot decode, which it reads as absent: such
    ///   `app_state_keys` rows (including keys that are not 32 bytes), such
    ///   `app_state_versions` rows, and such a `device.server_cert_chain` (all six `cert_*`
    ///   columns null). The Postgres store reads the missing rows the same way; they are
    ///   counted in [`SqliteImport::unreadable`] and [`SqliteImport::cert_chain_dropped`].
    /// - `__diesel_schema_migrations`: the SQLite store's own migration history.
    /// - Rows of other device ids (see above).
    pub async fn import_sqlite(
        pool: &sqlx::PgPool,
        device: &str,
        sqlite_path: &Path,
    ) -> Result<SqliteImport, StoreError> {
        check_device_key(device)?;
        if !sqlite_path.is_file() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no SQLite device file at {}", sqlite_path.display()),
            )));
        }
        let options = SqliteConnectOptions::new().filename(sqlite_path).read_only(true);
        let mut sqlite = SqliteConnection::connect_with(&options).await.map_err(db_err)?;
        let dump = async {
            let mut snapshot = sqlite.begin().await.map_err(db_err)?;
            check_schema(&mut snapshot, sqlite_path).await?;
            let dump = read_dump(&mut snapshot, sqlite_path).await?;
            // Nothing was written: ending the read transaction is all the rollback does.
            snapshot.rollback().await.map_err(db_err)?;
            Ok::<_, StoreError>(dump)
        }
        .await;
        // Closing only releases the read-only handle; a failure to close loses nothing.
        let _ = sqlite.close().await;
        let dump = dump?;

        let mut imported = SqliteImport {
            rows: Vec::new(),
            unreadable: [
                ("app_state_keys", dump.unreadable_app_state_keys),
                ("app_state_versions", dump.unreadable_app_state_versions),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
            cert_chain_dropped: dump.cert_chain_dropped,
            other_devices: dump.other_devices,
        };
        let mut tx = pool.begin().await.map_err(db_err)?;
        check_empty(&mut tx, device).await?;
        imported.rows = write_dump(&mut tx, device, dump).await?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(
            device,
            rows = imported.total_rows(),
            path = %sqlite_path.display(),
            "imported a SQLite device file"
        );
        Ok(imported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_u32_columns_read_back_as_the_sqlite_store_reads_them() {
        // 4_000_000_123 is stored as the i32 -294_967_173.
        assert_eq!(u32_column(i64::from(4_000_000_123u32 as i32)), 4_000_000_123);
        assert_eq!(u32_column(813), 813);
        assert_eq!(u32_column(-1), i64::from(u32::MAX));
        // A value outside i32 reads as its low 32 bits, as diesel reads it.
        assert_eq!(i32_column(1_760_000_000_000), i64::from(1_760_000_000_000i64 as i32));
        assert_eq!(i32_column(-5), -5);
    }
}
