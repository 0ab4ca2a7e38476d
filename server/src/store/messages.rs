use super::{Store, StoreError};
use crate::domain::{self, ChannelId, MessageId, MessageText, PhoneNumber};

impl Store {
    /// Records a message that the channel's linker accepted. The text itself is not kept: the
    /// API user has it, and a message log is a privacy liability we do not need.
    pub async fn record_sent_message(
        &self,
        id: &MessageId,
        channel: &ChannelId,
        to: &PhoneNumber,
        text: &MessageText,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO messages (id, channel_id, recipient, chars, status, created_at)
             VALUES (?, ?, ?, ?, 'sent', ?)",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(to.as_str())
        .bind(text.as_str().chars().count() as i64)
        .bind(domain::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
