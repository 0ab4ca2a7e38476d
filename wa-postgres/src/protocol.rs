//! [`ProtocolStore`]: sender-key distribution, LID-PN mappings, base keys, device lists, group
//! metadata, tc tokens, sent messages and the pending inbound buffer.

use async_trait::async_trait;
use wacore::store::error::{Result, StoreError};
use wacore::store::traits::{
    DeviceInfo, DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow,
    ProtocolStore, TcTokenEntry,
};
use wacore::time::now_secs;

use crate::{PostgresStore, last_of_each, to_u32};

type LidRow = (String, String, i64, i64, String);

fn lid_entry(
    (lid, phone_number, created_at, updated_at, learning_source): LidRow,
) -> LidPnMappingEntry {
    LidPnMappingEntry { lid, phone_number, created_at, updated_at, learning_source }
}

type DeviceListRow = (String, String, i64, Option<String>, Option<i64>);

fn device_list(
    (user, devices_json, timestamp, phash, raw_id): DeviceListRow,
) -> Result<DeviceListRecord> {
    let devices: Vec<DeviceInfo> =
        serde_json::from_str(&devices_json).map_err(|e| StoreError::Serialization(Box::new(e)))?;
    Ok(DeviceListRecord {
        user,
        devices,
        timestamp,
        phash,
        raw_id: raw_id.map(|raw_id| to_u32(raw_id, "device list raw_id")).transpose()?,
    })
}

#[async_trait]
impl ProtocolStore for PostgresStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        self.fetch_all(
            self.query_as(
                "SELECT device_jid, has_key FROM wa_sender_key_devices \
                 WHERE device = $1 AND group_jid = $2 ORDER BY device_jid",
            )
            .bind(group_jid),
        )
        .await
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(entries, |(device_jid, _)| *device_jid);
        let device_jids: Vec<&str> = rows.iter().map(|(device_jid, _)| *device_jid).collect();
        let has_keys: Vec<bool> = rows.iter().map(|(_, has_key)| *has_key).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_sender_key_devices \
                     (device, group_jid, device_jid, has_key, updated_at) \
                 SELECT $1, $2, device_jid, has_key, $5 \
                 FROM UNNEST($3::text[], $4::boolean[]) AS t (device_jid, has_key) \
                 ON CONFLICT (device, group_jid, device_jid) DO UPDATE SET \
                     has_key = EXCLUDED.has_key, updated_at = EXCLUDED.updated_at",
            )
            .bind(group_jid)
            .bind(device_jids)
            .bind(has_keys)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_sender_key_devices WHERE device = $1 AND group_jid = $2")
                .bind(group_jid),
        )
        .await?;
        Ok(())
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        self.execute(
            self.query(
                "DELETE FROM wa_sender_key_devices WHERE device = $1 AND device_jid = ANY($2)",
            )
            .bind(device_jids),
        )
        .await?;
        Ok(())
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.execute(self.query("DELETE FROM wa_sender_key_devices WHERE device = $1")).await?;
        Ok(())
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        let row: Option<LidRow> = self
            .fetch_optional(
                self.query_as(
                    "SELECT lid, phone_number, created_at, updated_at, learning_source \
                     FROM wa_lid_pn_mapping WHERE device = $1 AND lid = $2",
                )
                .bind(lid),
            )
            .await?;
        Ok(row.map(lid_entry))
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        let row: Option<LidRow> = self
            .fetch_optional(
                self.query_as(
                    "SELECT lid, phone_number, created_at, updated_at, learning_source \
                     FROM wa_lid_pn_mapping WHERE device = $1 AND phone_number = $2 \
                     ORDER BY updated_at DESC LIMIT 1",
                )
                .bind(phone),
            )
            .await?;
        Ok(row.map(lid_entry))
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    /// One statement for the batch. On conflict `created_at` stays the first one learned, the
    /// rest takes the new entry, as in the SQLite store; within one batch the SQLite store
    /// writes row by row, so a repeated LID keeps the first `created_at` it was ever given and
    /// the last entry's other fields, which is what is sent here.
    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(entries, |entry| entry.lid.as_str());
        let first_created_at = |lid: &str| {
            entries.iter().find(|entry| entry.lid == lid).map_or(0, |entry| entry.created_at)
        };
        let lids: Vec<&str> = rows.iter().map(|entry| entry.lid.as_str()).collect();
        let phones: Vec<&str> = rows.iter().map(|entry| entry.phone_number.as_str()).collect();
        let created: Vec<i64> = rows.iter().map(|entry| first_created_at(&entry.lid)).collect();
        let updated: Vec<i64> = rows.iter().map(|entry| entry.updated_at).collect();
        let sources: Vec<&str> = rows.iter().map(|entry| entry.learning_source.as_str()).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_lid_pn_mapping \
                     (device, lid, phone_number, created_at, updated_at, learning_source) \
                 SELECT $1, * \
                 FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[]) \
                 ON CONFLICT (device, lid) DO UPDATE SET phone_number = EXCLUDED.phone_number, \
                     learning_source = EXCLUDED.learning_source, updated_at = EXCLUDED.updated_at",
            )
            .bind(lids)
            .bind(phones)
            .bind(created)
            .bind(updated)
            .bind(sources),
        )
        .await?;
        Ok(())
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        let rows: Vec<LidRow> = self
            .fetch_all(self.query_as(
                "SELECT lid, phone_number, created_at, updated_at, learning_source \
                 FROM wa_lid_pn_mapping WHERE device = $1 ORDER BY lid",
            ))
            .await?;
        Ok(rows.into_iter().map(lid_entry).collect())
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.execute(
            self.query(
                "INSERT INTO wa_base_keys (device, address, message_id, base_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device, address, message_id) \
                     DO UPDATE SET base_key = EXCLUDED.base_key",
            )
            .bind(address)
            .bind(message_id)
            .bind(base_key)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        let stored: Option<Vec<u8>> = self
            .fetch_optional(
                self.query_scalar(
                    "SELECT base_key FROM wa_base_keys \
                     WHERE device = $1 AND address = $2 AND message_id = $3",
                )
                .bind(address)
                .bind(message_id),
            )
            .await?;
        Ok(stored.as_deref() == Some(current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.execute(
            self.query(
                "DELETE FROM wa_base_keys WHERE device = $1 AND address = $2 AND message_id = $3",
            )
            .bind(address)
            .bind(message_id),
        )
        .await?;
        Ok(())
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(&records, |record| record.user.as_str());
        let users: Vec<&str> = rows.iter().map(|record| record.user.as_str()).collect();
        let devices_json = rows
            .iter()
            .map(|record| serde_json::to_string(&record.devices))
            .collect::<std::result::Result<Vec<String>, _>>()
            .map_err(|e| StoreError::Serialization(Box::new(e)))?;
        let timestamps: Vec<i64> = rows.iter().map(|record| record.timestamp).collect();
        let phashes: Vec<Option<&str>> =
            rows.iter().map(|record| record.phash.as_deref()).collect();
        let raw_ids: Vec<Option<i64>> =
            rows.iter().map(|record| record.raw_id.map(i64::from)).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_device_registry \
                     (device, user_id, devices_json, timestamp, phash, raw_id, updated_at) \
                 SELECT $1, user_id, devices_json, timestamp, phash, raw_id, $7 \
                 FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[]) \
                     AS t (user_id, devices_json, timestamp, phash, raw_id) \
                 ON CONFLICT (device, user_id) DO UPDATE SET devices_json = EXCLUDED.devices_json, \
                     timestamp = EXCLUDED.timestamp, phash = EXCLUDED.phash, \
                     raw_id = EXCLUDED.raw_id, updated_at = EXCLUDED.updated_at",
            )
            .bind(users)
            .bind(devices_json)
            .bind(timestamps)
            .bind(phashes)
            .bind(raw_ids)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        let row: Option<DeviceListRow> = self.fetch_optional(self.query_as(
            "SELECT user_id, devices_json, timestamp, phash, raw_id FROM wa_device_registry \
             WHERE device = $1 AND user_id = $2",
        ).bind(user)).await?;
        row.map(device_list).transpose()
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_device_registry WHERE device = $1 AND user_id = $2")
                .bind(user),
        )
        .await?;
        Ok(())
    }

    /// Overridden (the default keeps nothing) so a restart keeps the participant-hash skip.
    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.fetch_optional(
            self.query_scalar(
                "SELECT info FROM wa_group_metadata WHERE device = $1 AND group_jid = $2",
            )
            .bind(group_jid),
        )
        .await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.execute(
            self.query(
                "INSERT INTO wa_group_metadata (device, group_jid, info, updated_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (device, group_jid) DO UPDATE SET info = EXCLUDED.info, \
                     updated_at = EXCLUDED.updated_at",
            )
            .bind(group_jid)
            .bind(blob)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_group_metadata WHERE device = $1 AND group_jid = $2")
                .bind(group_jid),
        )
        .await?;
        Ok(())
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        let row: Option<(Vec<u8>, i64, Option<i64>)> = self
            .fetch_optional(
                self.query_as(
                    "SELECT token, token_timestamp, sender_timestamp FROM wa_tc_tokens \
                     WHERE device = $1 AND jid = $2",
                )
                .bind(jid),
            )
            .await?;
        Ok(row.map(|(token, token_timestamp, sender_timestamp)| TcTokenEntry {
            token,
            token_timestamp,
            sender_timestamp,
        }))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.execute(
            self.query(
                "INSERT INTO wa_tc_tokens \
                     (device, jid, token, token_timestamp, sender_timestamp, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (device, jid) DO UPDATE SET token = EXCLUDED.token, \
                     token_timestamp = EXCLUDED.token_timestamp, \
                     sender_timestamp = EXCLUDED.sender_timestamp, \
                     updated_at = EXCLUDED.updated_at",
            )
            .bind(jid)
            .bind(&entry.token)
            .bind(entry.token_timestamp)
            .bind(entry.sender_timestamp)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.execute(
            self.query("DELETE FROM wa_tc_tokens WHERE device = $1 AND jid = $2").bind(jid),
        )
        .await?;
        Ok(())
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        self.fetch_all(
            self.query_scalar("SELECT jid FROM wa_tc_tokens WHERE device = $1 ORDER BY jid"),
        )
        .await
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // A row goes only when both halves are dead: the received token expired or absent, and
        // the sender bucket expired or absent.
        let deleted = self
            .execute(
                self.query(
                    "DELETE FROM wa_tc_tokens WHERE device = $1 \
                     AND (token = ''::bytea OR token_timestamp < $2) \
                     AND (sender_timestamp IS NULL OR sender_timestamp < $3)",
                )
                .bind(token_cutoff)
                .bind(sender_cutoff),
            )
            .await?;
        Ok(saturating_u32(deleted))
    }

    /// Overridden with one atomic statement: the default reads then writes, which could let a
    /// stale token overwrite a fresher one written in between.
    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        // Newer wins: an existing row is overwritten only when it is a byte-less placeholder
        // or the incoming token is at least as new. The sender bucket is never touched.
        self.execute(
            self.query(
                "INSERT INTO wa_tc_tokens \
                     (device, jid, token, token_timestamp, sender_timestamp, updated_at) \
                 VALUES ($1, $2, $3, $4, NULL, $5) \
                 ON CONFLICT (device, jid) DO UPDATE SET token = EXCLUDED.token, \
                     token_timestamp = EXCLUDED.token_timestamp, updated_at = EXCLUDED.updated_at \
                 WHERE wa_tc_tokens.token = ''::bytea \
                     OR EXCLUDED.token_timestamp >= wa_tc_tokens.token_timestamp",
            )
            .bind(jid)
            .bind(token)
            .bind(token_timestamp)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    /// Overridden with one atomic upsert, for the reason given on `store_received_tc_token`.
    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        // A new row is a byte-less placeholder; an existing one only has its sender bucket
        // moved forward, its token is left alone.
        self.execute(
            self.query(
                "INSERT INTO wa_tc_tokens \
                     (device, jid, token, token_timestamp, sender_timestamp, updated_at) \
                 VALUES ($1, $2, ''::bytea, $3, $3, $4) \
                 ON CONFLICT (device, jid) DO UPDATE SET \
                     sender_timestamp = GREATEST(COALESCE(wa_tc_tokens.sender_timestamp, $3), $3), \
                     updated_at = EXCLUDED.updated_at",
            )
            .bind(jid)
            .bind(sender_timestamp)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        // A re-store replaces the row, fresh timestamp included (SQLite's REPLACE INTO).
        self.execute(
            self.query(
                "INSERT INTO wa_sent_messages (device, chat_jid, message_id, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device, chat_jid, message_id) DO UPDATE SET \
                     payload = EXCLUDED.payload, created_at = EXCLUDED.created_at",
            )
            .bind(chat_jid)
            .bind(message_id)
            .bind(payload)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        // One statement reads and deletes, so two concurrent retry receipts cannot both get it.
        self.fetch_optional(
            self.query_scalar(
                "DELETE FROM wa_sent_messages \
                 WHERE device = $1 AND chat_jid = $2 AND message_id = $3 \
                 RETURNING payload",
            )
            .bind(chat_jid)
            .bind(message_id),
        )
        .await
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        let deleted = self
            .execute(
                self.query("DELETE FROM wa_sent_messages WHERE device = $1 AND created_at < $2")
                    .bind(cutoff_timestamp),
            )
            .await?;
        Ok(saturating_u32(deleted))
    }

    /// Implemented (the default fails closed) so the server can use the durability hook.
    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        self.store_pending_inbound_batch(&[PendingInboundRow { chat, sender, id, message }]).await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.fetch_optional(
            self.query_scalar(
                "SELECT message FROM wa_pending_inbound \
                 WHERE device = $1 AND chat = $2 AND sender = $3 AND id = $4",
            )
            .bind(chat)
            .bind(sender)
            .bind(id),
        )
        .await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_pending_inbound_batch(&[PendingInboundKey { chat, sender, id }]).await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        let deleted = self
            .execute(
                self.query("DELETE FROM wa_pending_inbound WHERE device = $1 AND inserted_at < $2")
                    .bind(cutoff_timestamp),
            )
            .await?;
        Ok(saturating_u32(deleted))
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // A re-store replaces the row, fresh timestamp included (SQLite's REPLACE INTO).
        let rows = last_of_each(rows, |row| (row.chat, row.sender, row.id));
        let chats: Vec<&str> = rows.iter().map(|row| row.chat).collect();
        let senders: Vec<&str> = rows.iter().map(|row| row.sender).collect();
        let ids: Vec<&str> = rows.iter().map(|row| row.id).collect();
        let messages: Vec<&[u8]> = rows.iter().map(|row| row.message).collect();
        self.execute(
            self.query(
                "INSERT INTO wa_pending_inbound (device, chat, sender, id, message, inserted_at) \
                 SELECT $1, chat, sender, id, message, $6 \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[]) \
                     AS t (chat, sender, id, message) \
                 ON CONFLICT (device, chat, sender, id) DO UPDATE SET \
                     message = EXCLUDED.message, inserted_at = EXCLUDED.inserted_at",
            )
            .bind(chats)
            .bind(senders)
            .bind(ids)
            .bind(messages)
            .bind(now_secs()),
        )
        .await?;
        Ok(())
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let chats: Vec<&str> = keys.iter().map(|key| key.chat).collect();
        let senders: Vec<&str> = keys.iter().map(|key| key.sender).collect();
        let ids: Vec<&str> = keys.iter().map(|key| key.id).collect();
        self.execute(
            self.query(
                "DELETE FROM wa_pending_inbound AS p \
                 USING UNNEST($2::text[], $3::text[], $4::text[]) AS k (chat, sender, id) \
                 WHERE p.device = $1 AND p.chat = k.chat AND p.sender = k.sender AND p.id = k.id",
            )
            .bind(chats)
            .bind(senders)
            .bind(ids),
        )
        .await?;
        Ok(())
    }
}

/// A row count as the trait's u32. Deleting over four billion rows at once is not something a
/// device store does; saturating keeps the answer meaningful if it ever happens.
pub(crate) fn saturating_u32(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}
