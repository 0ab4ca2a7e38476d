//! The outbox: [`Outbox::enqueue`] writes an event, and one delivery per endpoint that wants
//! it, on the connection of the transaction that makes the change. Both commit together or
//! not at all, so every change that happened is delivered (at least once) and nothing is
//! delivered for a change that did not happen, on SQLite and on Postgres alike.

use keebai_protocol::WebhookEventType;

use super::Event;
use crate::domain::{AccountId, DeliveryId, EventId, WebhookId};

/// Milliseconds since the Unix epoch, as the webhook tables keep time.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A `LIKE` pattern that matches a space-separated list of types holding `kind` (the list is
/// padded with spaces by the query). Type names hold no `%` or `_`.
fn subscribed(kind: WebhookEventType) -> String {
    format!("% {} %", kind.as_str())
}

/// Writes webhook events on a database connection: implemented for both backends'
/// connections, so that a change's own transaction (which derefs to one) writes its event.
pub(crate) trait Outbox {
    /// Queues `event` for every endpoint of `account` subscribed to its type. `true` when it
    /// queued something (then wake the sender after the commit: [`crate::store::Store::wake_outbox`]).
    async fn enqueue(&mut self, account: AccountId, event: &Event) -> Result<bool, sqlx::Error>;

    /// Queues `event` for one endpoint of `account`, whatever it subscribes to (`webhook.test`).
    /// `None` when the account has no such endpoint.
    async fn enqueue_for(
        &mut self,
        account: AccountId,
        endpoint: &WebhookId,
        event: &Event,
    ) -> Result<Option<(DeliveryId, EventId)>, sqlx::Error>;
}

/// The two statements every queued event is made of, for [`Outbox`]'s implementations.
pub(super) trait Rows {
    /// The event, with its body stamped now.
    async fn insert_event(
        &mut self,
        account: AccountId,
        event: &Event,
        now: i64,
    ) -> Result<EventId, sqlx::Error>;

    /// One delivery of `event` to `endpoint`, unless the endpoint is gone (another server
    /// may have removed it meanwhile; see the migration).
    async fn insert_delivery(
        &mut self,
        endpoint: &str,
        event: &EventId,
        now: i64,
    ) -> Result<DeliveryId, sqlx::Error>;
}

macro_rules! outbox_for {
    ($connection:ty) => {
        impl Rows for $connection {
            async fn insert_event(
                &mut self,
                account: AccountId,
                event: &Event,
                now: i64,
            ) -> Result<EventId, sqlx::Error> {
                let id = EventId::generate();
                sqlx::query(
                    "INSERT INTO webhook_events (id, account_id, type, body, created_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.as_str())
                .bind(account.0)
                .bind(event.kind().as_str())
                .bind(event.body())
                .bind(now)
                .execute(&mut *self)
                .await?;
                Ok(id)
            }

            async fn insert_delivery(
                &mut self,
                endpoint: &str,
                event: &EventId,
                now: i64,
            ) -> Result<DeliveryId, sqlx::Error> {
                let id = DeliveryId::generate();
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, state, next_ms, created_ms)
                     SELECT $1, id, $2, 'pending', $3, $3 FROM webhook_endpoints WHERE id = $4",
                )
                .bind(id.as_str())
                .bind(event.as_str())
                .bind(now)
                .bind(endpoint)
                .execute(&mut *self)
                .await?;
                Ok(id)
            }
        }

        impl Outbox for $connection {
            async fn enqueue(
                &mut self,
                account: AccountId,
                event: &Event,
            ) -> Result<bool, sqlx::Error> {
                let endpoints: Vec<(String,)> = sqlx::query_as(
                    "SELECT id FROM webhook_endpoints
                     WHERE account_id = $1 AND (' ' || events || ' ') LIKE $2 ORDER BY id",
                )
                .bind(account.0)
                .bind(subscribed(event.kind()))
                .fetch_all(&mut *self)
                .await?;
                if endpoints.is_empty() {
                    return Ok(false);
                }
                let now = now_ms();
                let id = self.insert_event(account, event, now).await?;
                for (endpoint,) in endpoints {
                    self.insert_delivery(&endpoint, &id, now).await?;
                }
                Ok(true)
            }

            async fn enqueue_for(
                &mut self,
                account: AccountId,
                endpoint: &WebhookId,
                event: &Event,
            ) -> Result<Option<(DeliveryId, EventId)>, sqlx::Error> {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM webhook_endpoints WHERE id = $1 AND account_id = $2",
                )
                .bind(endpoint.as_str())
                .bind(account.0)
                .fetch_optional(&mut *self)
                .await?;
                if found.is_none() {
                    return Ok(None);
                }
                let now = now_ms();
                let id = self.insert_event(account, event, now).await?;
                let delivery = self.insert_delivery(endpoint.as_str(), &id, now).await?;
                Ok(Some((delivery, id)))
            }
        }
    };
}

outbox_for!(sqlx::SqliteConnection);
outbox_for!(sqlx::PgConnection);
