//! [`SignalStore`]: identities, sessions, pre-keys, signed pre-keys and sender keys.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use wacore::store::error::{Result, StoreError};
use wacore::store::traits::SignalStore;

use crate::{PostgresStore, last_of_each, to_u32};

/// The upserts of the three tables keyed by address, one statement per batch: `$2` the
/// addresses, `$3` the blobs (see [`PostgresStore::put_by_address`]).
const PUT_IDENTITIES: &str = "INSERT INTO wa_identities (device, address, key) \
                              SELECT $1, * FROM UNNEST($2::text[], $3::bytea[]) \
                              ON CONFLICT (device, address) DO UPDATE SET key = EXCLUDED.key";
const PUT_SESSIONS: &str = "INSERT INTO wa_sessions (device, address, record) \
                            SELECT $1, * FROM UNNEST($2::text[], $3::bytea[]) \
                            ON CONFLICT (device, address) \
                                DO UPDATE SET record = EXCLUDED.record";
const PUT_SENDER_KEYS: &str = "INSERT INTO wa_sender_keys (device, address, record) \
                               SELECT $1, * FROM UNNEST($2::text[], $3::bytea[]) \
                               ON CONFLICT (device, address) \
                                   DO UPDATE SET record = EXCLUDED.record";

/// A batch of `(address, record)` as borrowed rows for [`PostgresStore::put_by_address`].
fn address_records(rows: &[(Arc<str>, Bytes)]) -> Vec<(&str, &[u8])> {
    rows.iter().map(|(address, record)| (&**address, &record[..])).collect()
}

impl PostgresStore {
    /// Upserts `(address, blob)` rows with `sql` (one of the `PUT_*` statements above) in one
    /// statement, the last row of an address winning: the single puts are one-row batches.
    async fn put_by_address(&self, sql: &'static str, rows: &[(&str, &[u8])]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(rows, |(address, _)| *address);
        let addresses: Vec<&str> = rows.iter().map(|(address, _)| *address).collect();
        let blobs: Vec<&[u8]> = rows.iter().map(|(_, blob)| *blob).collect();
        self.execute(self.query(sql).bind(addresses).bind(blobs)).await?;
        Ok(())
    }

    /// Upserts `(id, record)` pre-keys with their `uploaded` flag in one statement, the last
    /// row of an id winning: `store_prekey` is a one-row batch.
    async fn store_prekeys(&self, keys: &[(u32, &[u8])], uploaded: bool) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(keys, |(id, _)| *id);
        let ids: Vec<i64> = rows.iter().map(|(id, _)| i64::from(*id)).collect();
        let records: Vec<&[u8]> = rows.iter().map(|(_, record)| *record).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_prekeys (device, id, key, uploaded) \
                 SELECT $1, id, key, $4 FROM UNNEST($2::bigint[], $3::bytea[]) AS t (id, key) \
                 ON CONFLICT (device, id) DO UPDATE SET key = EXCLUDED.key, \
                     uploaded = EXCLUDED.uploaded",
            )
            .bind(ids)
            .bind(records)
            .bind(uploaded),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl SignalStore for PostgresStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put_by_address(PUT_IDENTITIES, &[(address, &key[..])]).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let rows: Vec<(&str, &[u8])> =
            identities.iter().map(|(address, key)| (&**address, &key[..])).collect();
        self.put_by_address(PUT_IDENTITIES, &rows).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        let key: Option<Vec<u8>> = self
            .fetch_optional(
                self.query_scalar(
                    "SELECT key FROM wa_identities WHERE device = $1 AND address = $2",
                )
                .bind(address),
            )
            .await?;
        key.map(|key| {
            key.try_into().map_err(|key: Vec<u8>| {
                StoreError::Validation(format!(
                    "identity key for '{address}' has invalid length {} (expected 32)",
                    key.len()
                ))
            })
        })
        .transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_identities WHERE device = $1 AND address = $2")
                .bind(address),
        )
        .await?;
        Ok(())
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        let record: Option<Vec<u8>> = self
            .fetch_optional(
                self.query_scalar(
                    "SELECT record FROM wa_sessions WHERE device = $1 AND address = $2",
                )
                .bind(address),
            )
            .await?;
        Ok(record.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put_by_address(PUT_SESSIONS, &[(address, session)]).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_by_address(PUT_SESSIONS, &address_records(sessions)).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_sessions WHERE device = $1 AND address = $2").bind(address),
        )
        .await?;
        Ok(())
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        self.fetch_one(
            self.query_scalar(
                "SELECT EXISTS (SELECT 1 FROM wa_sessions WHERE device = $1 AND address = $2)",
            )
            .bind(address),
        )
        .await
    }

    /// Overridden like the SQLite store's: the default answers `true`, which makes the library
    /// scan every device id of a user it has never talked to.
    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` (device 0) or `user:device@server`; `user` is a numeric
        // PN or LID, so it holds no LIKE wildcard (the SQLite store relies on the same).
        self.fetch_one(
            self.query_scalar(
                "SELECT EXISTS (SELECT 1 FROM wa_sessions WHERE device = $1 \
                     AND (address LIKE $2 || '@%' OR address LIKE $2 || ':%')) \
                 OR EXISTS (SELECT 1 FROM wa_identities WHERE device = $1 \
                     AND (address LIKE $2 || '@%' OR address LIKE $2 || ':%'))",
            )
            .bind(user),
        )
        .await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.store_prekeys(&[(id, record)], uploaded).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let rows: Vec<(u32, &[u8])> = keys.iter().map(|(id, record)| (*id, &record[..])).collect();
        self.store_prekeys(&rows, uploaded).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        let key: Option<Vec<u8>> = self
            .fetch_optional(
                self.query_scalar("SELECT key FROM wa_prekeys WHERE device = $1 AND id = $2")
                    .bind(i64::from(id)),
            )
            .await?;
        Ok(key.map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let rows: Vec<(i64, Vec<u8>)> = self
            .fetch_all(
                self.query_as(
                    "SELECT id, key FROM wa_prekeys WHERE device = $1 AND id = ANY($2) ORDER BY id",
                )
                .bind(ids),
            )
            .await?;
        rows.into_iter()
            .map(|(id, key)| Ok((to_u32(id, "pre-key id")?, Bytes::from(key))))
            .collect()
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        // UPDATE, never an upsert: a key consumed since the upload snapshot stays deleted.
        self.execute(
            self.query("UPDATE wa_prekeys SET uploaded = TRUE WHERE device = $1 AND id = ANY($2)")
                .bind(ids),
        )
        .await?;
        Ok(())
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_prekeys WHERE device = $1 AND id = $2").bind(i64::from(id)),
        )
        .await?;
        Ok(())
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let max: i64 = self
            .fetch_one(
                self.query_scalar("SELECT COALESCE(MAX(id), 0) FROM wa_prekeys WHERE device = $1"),
            )
            .await?;
        to_u32(max, "pre-key id")
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.execute(
            self.query(
                "INSERT INTO wa_signed_prekeys (device, id, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (device, id) DO UPDATE SET record = EXCLUDED.record",
            )
            .bind(i64::from(id))
            .bind(record),
        )
        .await?;
        Ok(())
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.fetch_optional(
            self.query_scalar("SELECT record FROM wa_signed_prekeys WHERE device = $1 AND id = $2")
                .bind(i64::from(id)),
        )
        .await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let rows: Vec<(i64, Vec<u8>)> =
            self.fetch_all(self.query_as(
                "SELECT id, record FROM wa_signed_prekeys WHERE device = $1 ORDER BY id",
            ))
            .await?;
        rows.into_iter()
            .map(|(id, record)| Ok((to_u32(id, "signed pre-key id")?, record)))
            .collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_signed_prekeys WHERE device = $1 AND id = $2")
                .bind(i64::from(id)),
        )
        .await?;
        Ok(())
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put_by_address(PUT_SENDER_KEYS, &[(address, record)]).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_by_address(PUT_SENDER_KEYS, &address_records(sender_keys)).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.fetch_optional(
            self.query_scalar(
                "SELECT record FROM wa_sender_keys WHERE device = $1 AND address = $2",
            )
            .bind(address),
        )
        .await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_sender_keys WHERE device = $1 AND address = $2")
                .bind(address),
        )
        .await?;
        Ok(())
    }
}
