use super::{Store, StoreError, on_pool};
use crate::domain::{self, AccountId, ChannelId, MessageId, MessageText, PhoneNumber};
use crate::webhooks::{Event, Outbox};

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

    /// The outcome of a recorded message: `sent`, or `failed` when WhatsApp did not take it,
    /// with its webhook (`message.sent` or `message.failed`) in the same transaction.
    pub async fn set_message_status(&self, id: &MessageId, sent: bool) -> Result<(), StoreError> {
        let queued = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let channel: Option<(String, i64)> = sqlx::query_as(
                "UPDATE messages SET status = $1 WHERE id = $2 AND status = 'sending'
                 RETURNING channel_id, (SELECT account_id FROM channels WHERE channels.id = messages.channel_id)",
            )
            .bind(if sent { "sent" } else { "failed" })
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let queued = match channel {
                Some((channel, account)) => {
                    let channel =
                        ChannelId::parse(&channel).map_err(|e| sqlx::Error::Decode(e.into()))?;
                    tx.enqueue(AccountId(account), &Event::message(sent, id, &channel)).await?
                }
                None => false,
            };
            tx.commit().await?;
            queued
        });
        if queued {
            self.wake_outbox();
        }
        Ok(())
    }
}
