use super::{Store, StoreError, on_pool};
use crate::domain::{self, ChannelId, MessageId, MessageText, PhoneNumber};

impl Store {
    /// Records a message about to be handed to WhatsApp (`sending`), before it is: a message
    /// the store cannot record is never sent, so a 503 always means "nothing happened". The
    /// text itself is not kept: the API user has it, and a message log is a privacy liability
    /// we do not need.
    pub async fn record_outgoing_message(
        &self,
        id: &MessageId,
        channel: &ChannelId,
        to: &PhoneNumber,
        text: &MessageText,
    ) -> Result<(), StoreError> {
        let chars = text.as_str().chars().count() as i64;
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO messages (id, channel_id, recipient, chars, status, created_at)
                 VALUES ($1, $2, $3, $4, 'sending', $5)",
            )
            .bind(id.as_str())
            .bind(channel.as_str())
            .bind(to.as_str())
            .bind(chars)
            .bind(domain::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The outcome of a recorded message: `sent`, or `failed` when WhatsApp did not take it.
    pub async fn set_message_status(&self, id: &MessageId, sent: bool) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE messages SET status = $1 WHERE id = $2")
                .bind(if sent { "sent" } else { "failed" })
                .bind(id.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
