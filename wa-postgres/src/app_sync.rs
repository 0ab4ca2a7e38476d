//! [`AppSyncStore`]: app-state sync keys, collection versions and mutation MACs.

use std::collections::HashMap;

use async_trait::async_trait;
use wacore::appstate::hash::HashState;
use wacore::appstate::processor::AppStateMutationMAC;
use wacore::store::error::{Result, StoreError};
use wacore::store::traits::{AppStateSyncKey, AppSyncStore};

use crate::{PostgresStore, db_err, last_of_each};

/// Length of an app-state master key. The SQLite store reads a key of any other length as
/// absent (its decoder rejects it, so the library re-requests the key instead of deriving bad
/// sub-keys from it); this store does the same with the same rule.
pub(crate) const APP_STATE_KEY_LEN: usize = 32;

/// The insert of a collection's hash state, completed by `set_version` (an upsert) and the
/// SQLite import (a plain insert, so an existing row is an error).
macro_rules! insert_version {
    () => {
        "INSERT INTO wa_app_state_versions \
             (device, name, version, hash, index_keys, index_values, mac_mismatch_fatal) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
}

/// `set_version`: the insert, or the existing row replaced.
const SET_VERSION: &str = concat!(
    insert_version!(),
    " ON CONFLICT (device, name) DO UPDATE SET version = EXCLUDED.version, \
     hash = EXCLUDED.hash, index_keys = EXCLUDED.index_keys, \
     index_values = EXCLUDED.index_values, mac_mismatch_fatal = EXCLUDED.mac_mismatch_fatal"
);

/// The SQLite import: the insert alone.
pub(crate) const INSERT_VERSION: &str = insert_version!();

/// Writes `state` as the hash state of collection `name` of `device` with `sql` (SET_VERSION
/// or INSERT_VERSION): the one mapping of a `HashState` to columns. Returns the rows written.
pub(crate) async fn write_version<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    sql: &'static str,
    device: &str,
    name: &str,
    state: HashState,
) -> Result<u64> {
    let (index_keys, index_values): (Vec<String>, Vec<Vec<u8>>) =
        state.index_value_map.into_iter().unzip();
    let done = sqlx::query(sql)
        .bind(device)
        .bind(name)
        // bigint has no unsigned form: the u64 is kept bit for bit and cast back on read.
        .bind(state.version as i64)
        .bind(&state.hash[..])
        .bind(index_keys)
        .bind(index_values)
        .bind(state.mac_mismatch_fatal)
        .execute(executor)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

#[async_trait]
impl AppSyncStore for PostgresStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        let row: Option<(Vec<u8>, Vec<u8>, i64)> = self
            .fetch_optional(
                self.query_as(
                    "SELECT key_data, fingerprint, timestamp FROM wa_app_state_keys \
                     WHERE device = $1 AND key_id = $2",
                )
                .bind(key_id),
            )
            .await?;
        Ok(row.and_then(|(key_data, fingerprint, timestamp)| {
            if key_data.len() != APP_STATE_KEY_LEN {
                tracing::warn!(
                    len = key_data.len(),
                    "app-state sync key has a bad length; treating it as absent, it will be \
                     re-requested"
                );
                return None;
            }
            Some(AppStateSyncKey { key_data, fingerprint, timestamp })
        }))
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.execute(
            self.query(
                "INSERT INTO wa_app_state_keys (device, key_id, key_data, fingerprint, timestamp) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device, key_id) DO UPDATE SET key_data = EXCLUDED.key_data, \
                     fingerprint = EXCLUDED.fingerprint, timestamp = EXCLUDED.timestamp",
            )
            .bind(key_id)
            .bind(key.key_data)
            .bind(key.fingerprint)
            .bind(key.timestamp),
        )
        .await?;
        Ok(())
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        let row: Option<(i64, Vec<u8>, Vec<String>, Vec<Vec<u8>>, bool)> = self
            .fetch_optional(
                self.query_as(
                    "SELECT version, hash, index_keys, index_values, mac_mismatch_fatal \
                     FROM wa_app_state_versions WHERE device = $1 AND name = $2",
                )
                .bind(name),
            )
            .await?;
        let Some((version, hash, index_keys, index_values, mac_mismatch_fatal)) = row else {
            return Ok(HashState::default());
        };
        let len = hash.len();
        let hash: [u8; 128] = hash.try_into().map_err(|_| {
            StoreError::Validation(format!("app-state hash of '{name}' is {len} bytes, not 128"))
        })?;
        if index_keys.len() != index_values.len() {
            return Err(StoreError::Validation(format!(
                "app-state index map of '{name}' has {} keys for {} values",
                index_keys.len(),
                index_values.len()
            )));
        }
        Ok(HashState {
            // Stored bit for bit from the u64 (see set_version).
            version: version as u64,
            hash,
            index_value_map: index_keys.into_iter().zip(index_values).collect(),
            mac_mismatch_fatal,
        })
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        write_version(&self.pool, SET_VERSION, &self.device, name, state).await?;
        Ok(())
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(mutations, |m| m.index_mac.clone());
        let index_macs: Vec<&[u8]> = rows.iter().map(|m| &m.index_mac[..]).collect();
        let value_macs: Vec<&[u8]> = rows.iter().map(|m| &m.value_mac[..]).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_app_state_mutation_macs \
                     (device, name, index_mac, version, value_mac) \
                 SELECT $1, $2, index_mac, $3, value_mac \
                 FROM UNNEST($4::bytea[], $5::bytea[]) AS t (index_mac, value_mac) \
                 ON CONFLICT (device, name, index_mac) DO UPDATE SET version = EXCLUDED.version, \
                     value_mac = EXCLUDED.value_mac",
            )
            .bind(name)
            .bind(version as i64)
            .bind(index_macs)
            .bind(value_macs),
        )
        .await?;
        Ok(())
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.fetch_optional(
            self.query_scalar(
                "SELECT value_mac FROM wa_app_state_mutation_macs \
                 WHERE device = $1 AND name = $2 AND index_mac = $3",
            )
            .bind(name)
            .bind(index_mac),
        )
        .await
    }

    /// One query for the whole batch, as the SQLite store does (the default makes one per MAC).
    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        if index_macs.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<&[u8]> = index_macs.iter().map(|m| &m[..]).collect();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self
            .fetch_all(
                self.query_as(
                    "SELECT index_mac, value_mac FROM wa_app_state_mutation_macs \
                     WHERE device = $1 AND name = $2 AND index_mac = ANY($3)",
                )
                .bind(name)
                .bind(keys),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(index_mac, value_mac)| {
                <[u8; 32]>::try_from(index_mac.as_slice()).ok().map(|k| (k, value_mac))
            })
            .collect())
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        if index_macs.is_empty() {
            return Ok(());
        }
        self.execute(
            self.query(
                "DELETE FROM wa_app_state_mutation_macs \
                 WHERE device = $1 AND name = $2 AND index_mac = ANY($3)",
            )
            .bind(name)
            .bind(index_macs),
        )
        .await?;
        Ok(())
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_app_state_mutation_macs WHERE device = $1 AND name = $2")
                .bind(name),
        )
        .await?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        // The greatest key id whose key is usable: a key that get_sync_key reads as absent must
        // not be picked here either, or outbound patches would fail on it later.
        self.fetch_optional(
            self.query_scalar(
                "SELECT key_id FROM wa_app_state_keys \
                 WHERE device = $1 AND octet_length(key_data) = $2 \
                 ORDER BY key_id DESC LIMIT 1",
            )
            .bind(APP_STATE_KEY_LEN as i32),
        )
        .await
    }
}
