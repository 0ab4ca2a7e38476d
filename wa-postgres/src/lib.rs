//! whatsapp-rust's storage [`Backend`](wacore::store::traits::Backend) on Postgres.
//!
//! whatsapp-rust ships one durable backend, a SQLite file per process
//! (`whatsapp-rust-sqlite-storage`). A keebai server that runs on Postgres, possibly as several
//! instances behind one database, cannot keep a channel's Signal keys in a local file: the channel
//! would lose its WhatsApp session whenever another instance took it over. [`PostgresStore`]
//! keeps those keys in the same Postgres database as the rest of the server's state.
//!
//! One database holds the keys of many devices. Each [`PostgresStore`] is bound to one `device`
//! key chosen by the caller (the server passes the channel id) and every table carries that key
//! first in its primary key, so two stores never see each other's rows and
//! [`PostgresStore::delete_device`] can drop one device without touching the others.
//!
//! Behaviour follows the SQLite store method by method (upserts, batch semantics, expiry
//! cut-offs, merge rules, what an unreadable row reads as), so the library cannot tell the two
//! apart; `tests/conformance.rs` runs the same calls against both and requires equal results.
//! The deliberate differences are listed on [`PostgresStore`].

mod app_sync;
mod device;
mod msg_secrets;
mod protocol;
mod query;
mod signal;
mod sqlite_wire;

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use wacore::store::error::StoreError;

/// Where this crate records which of its migrations ran. Not sqlx's default
/// `_sqlx_migrations`: the server migrates the same database from its own directory without
/// `ignore_missing`, so a version of ours in the shared table would make its migrator fail with
/// "previously applied but missing" (and ours likewise). Separate tables let both run in
/// either order.
pub const MIGRATIONS_TABLE: &str = "_keebai_wa_migrations";

/// The store of one WhatsApp device in a Postgres database shared by many devices.
///
/// Cheap to clone (a pool handle and the device key); build one per device with
/// [`PostgresStore::new`] after [`PostgresStore::migrate`] has run once per database.
///
/// Differences from the SQLite store, all deliberate:
/// - u32 ids (pre-keys, signed pre-keys, registration id) and device-list timestamps are `bigint`,
///   where SQLite keeps them in 32-bit columns; values of 2^31 and up (never produced by the
///   library) therefore keep their value and order instead of wrapping.
/// - LID-PN mappings do not require the device row to exist first (SQLite enforces a foreign key
///   to its `device` table); [`PostgresStore::delete_device`] does the cleanup instead.
/// - Lists the trait leaves unordered (signed pre-keys, sender-key devices, LID mappings, tc token
///   jids, batched pre-key loads) come back sorted by key, so the order is stable.
/// - [`DeviceStore::create`](wacore::store::traits::DeviceStore::create) returns an id Postgres
///   generates per device row (1 for the first device of a database), not a caller-chosen one.
/// - [`snapshot_db`](wacore::store::traits::DeviceStore::snapshot_db) is the trait's no-op: a
///   database snapshot is the operator's `pg_dump`, not something to write next to a file.
///
/// A device kept by the SQLite store moves here with [`PostgresStore::import_sqlite`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    device: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("device", &self.device).finish_non_exhaustive()
    }
}

/// Longest device key accepted: keys are primary-key columns of every table, so a runaway key
/// would bloat every index.
const MAX_DEVICE_KEY_LEN: usize = 200;

/// One statement per table of a device's rows, `$head <table> $tail`, device row last (table
/// names cannot be parameters, and the list is fixed).
macro_rules! per_table {
    ($head:literal, $tail:literal) => {
        [
            concat!($head, "wa_identities", $tail),
            concat!($head, "wa_sessions", $tail),
            concat!($head, "wa_prekeys", $tail),
            concat!($head, "wa_signed_prekeys", $tail),
            concat!($head, "wa_sender_keys", $tail),
            concat!($head, "wa_app_state_keys", $tail),
            concat!($head, "wa_app_state_versions", $tail),
            concat!($head, "wa_app_state_mutation_macs", $tail),
            concat!($head, "wa_sender_key_devices", $tail),
            concat!($head, "wa_lid_pn_mapping", $tail),
            concat!($head, "wa_base_keys", $tail),
            concat!($head, "wa_device_registry", $tail),
            concat!($head, "wa_group_metadata", $tail),
            concat!($head, "wa_tc_tokens", $tail),
            concat!($head, "wa_sent_messages", $tail),
            concat!($head, "wa_pending_inbound", $tail),
            concat!($head, "wa_msg_secrets", $tail),
            concat!($head, "wa_device", $tail),
        ]
    };
}

// After per_table!, which it uses.
mod sqlite_import;

pub use sqlite_import::{SQLITE_DEVICE_ID, SqliteImport};

impl PostgresStore {
    /// A store for the device named `device` in the database behind `pool`.
    ///
    /// Touches no table: run [`PostgresStore::migrate`] once per database first. Fails only on a
    /// key that is empty or over 200 bytes, which would be a caller bug.
    pub fn new(pool: PgPool, device: &str) -> Result<Self, StoreError> {
        check_device_key(device)?;
        Ok(Self { pool, device: Arc::from(device) })
    }

    /// The device key this store reads and writes under.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Creates or updates this crate's tables. Idempotent, safe to run from several instances at
    /// once (sqlx takes an advisory lock), and independent of the server's own migrations: the
    /// history lives in [`MIGRATIONS_TABLE`], not in `_sqlx_migrations`.
    pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
        migrator().run(pool).await.map_err(|e| StoreError::Migration(Box::new(e)))
    }

    /// Deletes every row of `device` (its keys, sessions, caches and the device row itself), in
    /// one transaction. The server calls it when a channel is unlinked: the keys of a logged-out
    /// device must not outlive it. Deleting an unknown device does nothing.
    pub async fn delete_device(pool: &PgPool, device: &str) -> Result<(), StoreError> {
        check_device_key(device)?;
        let mut tx = pool.begin().await.map_err(db_err)?;
        for sql in per_table!("DELETE FROM ", " WHERE device = $1") {
            sqlx::query(sql).bind(device).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// Moves every row of device `from` to device `to`, replacing whatever `to` had, in one
    /// transaction: a pairing attempt names its device before it knows which channel it will
    /// serve, and a phone linked again keeps its old channel id. Do it only while no client uses
    /// either device.
    pub async fn rename_device(pool: &PgPool, from: &str, to: &str) -> Result<(), StoreError> {
        check_device_key(from)?;
        check_device_key(to)?;
        let mut tx = pool.begin().await.map_err(db_err)?;
        for sql in per_table!("DELETE FROM ", " WHERE device = $1") {
            sqlx::query(sql).bind(to).execute(&mut *tx).await.map_err(db_err)?;
        }
        for sql in per_table!("UPDATE ", " SET device = $2 WHERE device = $1") {
            sqlx::query(sql).bind(from).bind(to).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// The keys of every device that has a device row.
    pub async fn devices(pool: &PgPool) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT device FROM wa_device ORDER BY device")
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|(device,)| device).collect())
    }

    /// Whether `device` has a device row (it was created, and saved by a client).
    pub async fn device_exists(pool: &PgPool, device: &str) -> Result<bool, StoreError> {
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM wa_device WHERE device = $1)")
                .bind(device)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
        Ok(exists)
    }
}

/// This crate's migrations, recorded in [`MIGRATIONS_TABLE`] (see there for why).
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

fn check_device_key(device: &str) -> Result<(), StoreError> {
    if device.is_empty() || device.len() > MAX_DEVICE_KEY_LEN {
        return Err(StoreError::InvalidConfig(format!(
            "device key must be 1 to {MAX_DEVICE_KEY_LEN} bytes, got {}",
            device.len()
        )));
    }
    Ok(())
}

/// Maps a sqlx error into the library's error type, keeping it as the source so callers can
/// still inspect it. Failures to reach the database are `Connection`, the rest `Database`.
/// sqlx's errors never carry the connection URL (the pool was built elsewhere), so nothing
/// secret is passed on.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Connection(Box::new(e)),
        e => StoreError::Database(Box::new(e)),
    }
}

/// A u32 read back from a `bigint` column this crate wrote from a u32.
pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Validation(format!("{what} {value} is out of the u32 range")))
}

/// The items of a batch with only the last one of each key kept, for single-statement batch
/// upserts: Postgres refuses to update one row twice in a statement, while the SQLite store
/// writes a batch row by row, so the last write of a key wins. Keeping exactly that row gives
/// the same result.
pub(crate) fn last_of_each<'a, T, K: Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items.iter().rev().filter(|item| seen.insert(key(item))).collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_of_each_keeps_the_last_write_of_a_key_in_order() {
        let items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let kept: Vec<_> = last_of_each(&items, |item| item.0).into_iter().copied().collect();
        assert_eq!(kept, vec![("a", 3), ("c", 4), ("b", 5)]);
    }

    #[test]
    fn device_keys_are_bounded() {
        assert!(check_device_key("").is_err());
        assert!(check_device_key(&"x".repeat(MAX_DEVICE_KEY_LEN + 1)).is_err());
        assert!(check_device_key("ch_0123").is_ok());
    }

    #[test]
    fn migrations_use_their_own_table_and_do_not_collide_with_the_server() {
        let migrator = migrator();
        assert_eq!(migrator.table_name, MIGRATIONS_TABLE);
        for server_version in [20261124000001, 20261202000001, 20261202000002] {
            assert!(!migrator.version_exists(server_version));
        }
    }
}
