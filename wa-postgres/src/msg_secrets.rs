//! [`MsgSecretStore`]: the secrets of sent and received messages that later add-ons (poll
//! votes, reactions, edits) are encrypted with.

use std::collections::HashMap;

use async_trait::async_trait;
use wacore::store::error::Result;
use wacore::store::traits::{
    MsgSecretEntry, MsgSecretStore, merge_msg_secret_expiry, merge_msg_secret_message_ts,
};
use wacore::time::now_secs;

use crate::PostgresStore;
use crate::protocol::saturating_u32;

/// One row per key of a batch, merged the way the SQLite store's row-by-row upsert would leave
/// it: the last secret, the merged deadline (`0` = never wins, else the later) and the later
/// parent time. Both merges are associative, so merging within the batch first and with the
/// stored row afterwards (in SQL) gives the same result.
fn merge_batch(entries: &[MsgSecretEntry]) -> Vec<MsgSecretEntry> {
    let mut index: HashMap<(&str, &str, &str), usize> = HashMap::with_capacity(entries.len());
    let mut merged: Vec<MsgSecretEntry> = Vec::with_capacity(entries.len());
    for entry in entries {
        let key = (&*entry.chat, &*entry.sender, &*entry.msg_id);
        match index.get(&key) {
            Some(&at) => {
                let row = &mut merged[at];
                row.secret = entry.secret;
                row.expires_at = merge_msg_secret_expiry(row.expires_at, entry.expires_at);
                row.message_ts = merge_msg_secret_message_ts(row.message_ts, entry.message_ts);
            }
            None => {
                index.insert(key, merged.len());
                merged.push(entry.clone());
            }
        }
    }
    merged
}

#[async_trait]
impl MsgSecretStore for PostgresStore {
    /// Returns the number of entries written, counting each entry of the batch once, as the
    /// SQLite store does (its upsert reports every row, inserted or updated).
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let rows = merge_batch(&entries);
        let chats: Vec<&str> = rows.iter().map(|row| &*row.chat).collect();
        let senders: Vec<&str> = rows.iter().map(|row| &*row.sender).collect();
        let msg_ids: Vec<&str> = rows.iter().map(|row| &*row.msg_id).collect();
        let secrets: Vec<&[u8]> = rows.iter().map(|row| &row.secret[..]).collect();
        let expires: Vec<i64> = rows.iter().map(|row| row.expires_at).collect();
        let message_ts: Vec<i64> = rows.iter().map(|row| row.message_ts).collect();
        // The conflict rules are merge_msg_secret_expiry and merge_msg_secret_message_ts in SQL.
        self.execute(
            self.query(
                "INSERT INTO wa_msg_secrets \
                     (device, chat, sender, msg_id, secret, created_at, expires_at, message_ts) \
                 SELECT $1, chat, sender, msg_id, secret, $8, expires_at, message_ts \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], \
                     $7::bigint[]) AS t (chat, sender, msg_id, secret, expires_at, message_ts) \
                 ON CONFLICT (device, chat, sender, msg_id) DO UPDATE SET \
                     secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, \
                     expires_at = CASE \
                         WHEN wa_msg_secrets.expires_at = 0 OR EXCLUDED.expires_at = 0 \
                         THEN 0 ELSE GREATEST(wa_msg_secrets.expires_at, EXCLUDED.expires_at) END, \
                     message_ts = GREATEST(wa_msg_secrets.message_ts, EXCLUDED.message_ts)",
            )
            .bind(chats)
            .bind(senders)
            .bind(msg_ids)
            .bind(secrets)
            .bind(expires)
            .bind(message_ts)
            .bind(now_secs()),
        )
        .await?;
        Ok(entries.len())
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self.get_msg_secret_with_ts(chat, sender, msg_id).await?.map(|(secret, _)| secret))
    }

    /// Overridden because this store keeps `message_ts` (the default reports 0).
    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        self.fetch_optional(
            self.query_as(
                "SELECT secret, message_ts FROM wa_msg_secrets \
                 WHERE device = $1 AND chat = $2 AND sender = $3 AND msg_id = $4",
            )
            .bind(chat)
            .bind(sender)
            .bind(msg_id),
        )
        .await
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // expires_at = 0 means never.
        let deleted = self
            .execute(
                self.query(
                    "DELETE FROM wa_msg_secrets \
                     WHERE device = $1 AND expires_at <> 0 AND expires_at <= $2",
                )
                .bind(cutoff_timestamp),
            )
            .await?;
        Ok(saturating_u32(deleted))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entry(msg_id: &str, secret: u8, expires_at: i64, message_ts: i64) -> MsgSecretEntry {
        MsgSecretEntry {
            chat: Arc::from("c@s.whatsapp.net"),
            sender: Arc::from("s@s.whatsapp.net"),
            msg_id: Arc::from(msg_id),
            secret: [secret; 32],
            expires_at,
            message_ts,
        }
    }

    #[test]
    fn a_batch_merges_repeated_keys_like_row_by_row_upserts() {
        let merged = merge_batch(&[
            entry("a", 1, 100, 5),
            entry("b", 2, 50, 0),
            entry("a", 3, 200, 0),
            entry("b", 4, 0, 7),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!((merged[0].secret[0], merged[0].expires_at, merged[0].message_ts), (3, 200, 5));
        assert_eq!((merged[1].secret[0], merged[1].expires_at, merged[1].message_ts), (4, 0, 7));
    }
}
