//! [`Webhooks`]: an account's endpoints and their deliveries, as the API manages them.

use std::time::Duration;

use keebai_protocol::{
    Delivery, DeliveryAttempt, DeliveryQueued, DeliveryStatus, SecretRotated, Webhook,
    WebhookCreated, WebhookEventType,
};
use time::OffsetDateTime;

use super::outbox::{Rows, now_ms};
use super::signing::Secret;
use super::target::{TargetError, TargetPolicy};
use super::{Event, Outbox};
use crate::domain::{AccountId, DeliveryId, EventId, WebhookId, rfc3339_millis};
use crate::store::{BeginWrite, Store, StoreError, on_pool};

/// How many endpoints an account may have.
pub const MAX_ENDPOINTS_PER_ACCOUNT: i64 = 20;
/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2000;
/// The longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
/// How many deliveries the deliveries list shows.
pub const LISTED_DELIVERIES: i64 = 50;

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("`url` {0}.")]
    Url(String),
    #[error("`events` must list at least one event type.")]
    NoEvents,
    #[error("`description` must be at most 200 characters.")]
    Description,
    #[error(
        "This account already has {MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints; remove one first."
    )]
    TooMany,
    #[error("No such webhook endpoint.")]
    NotFound,
    #[error("No such delivery of this webhook endpoint.")]
    DeliveryNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WebhookError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// An endpoint to create, as the API parsed it.
#[derive(Debug)]
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    /// `None`: every type an endpoint can subscribe to.
    pub events: Option<&'a [WebhookEventType]>,
    pub description: Option<&'a str>,
}

/// The webhook endpoints of every account. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Webhooks {
    store: Store,
    policy: TargetPolicy,
}

/// A row of `webhook_endpoints` as listed: id, url, events, description, created.
type EndpointRow = (String, String, String, Option<String>, i64);

fn millis(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    rfc3339_millis(at)
}

fn events_of(stored: &str) -> Vec<WebhookEventType> {
    stored.split_whitespace().filter_map(WebhookEventType::parse).collect()
}

fn listed(row: EndpointRow) -> Webhook {
    let (webhook_id, url, events, description, created) = row;
    Webhook {
        webhook_id,
        url,
        events: events_of(&events),
        description,
        created_at: millis(created),
    }
}

impl Webhooks {
    pub fn new(store: Store, policy: TargetPolicy) -> Self {
        Self { store, policy }
    }

    /// Checks a URL as an endpoint's target: length, scheme, credentials, and (for addresses
    /// written in it) the address ranges. Names are checked when each delivery resolves them.
    pub fn check_url(&self, url: &str) -> Result<(), WebhookError> {
        if url.chars().count() > MAX_URL_CHARS {
            return Err(WebhookError::Url(format!("must be at most {MAX_URL_CHARS} characters")));
        }
        self.policy.check(url).map(drop).map_err(|error| {
            WebhookError::Url(match error {
                TargetError::Scheme if self.policy.allow_http => {
                    "must start with https:// or http://".to_owned()
                }
                TargetError::Private => "points at a private, loopback or link-local address, \
                                         which webhooks may not reach"
                    .to_owned(),
                other => other.to_string().trim_start_matches("the URL ").to_owned(),
            })
        })
    }

    /// Creates an endpoint with a fresh secret (returned this once).
    pub async fn create(
        &self,
        account: AccountId,
        new: NewEndpoint<'_>,
    ) -> Result<WebhookCreated, WebhookError> {
        self.check_url(new.url)?;
        let mut events: Vec<WebhookEventType> = match new.events {
            None => WebhookEventType::SUBSCRIBABLE.to_vec(),
            Some([]) => return Err(WebhookError::NoEvents),
            Some(events) => {
                events.iter().copied().filter(|t| *t != WebhookEventType::WebhookTest).collect()
            }
        };
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(WebhookError::NoEvents);
        }
        if new.description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
            return Err(WebhookError::Description);
        }
        let (id, secret, now) = (WebhookId::generate(), Secret::generate(), now_ms());
        let stored = events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ");
        let inserted = on_pool!(self.store, |pool| {
            // The count and the insert in one statement, so that two concurrent creations
            // cannot both pass the limit on SQLite (one writer at a time).
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, account_id, url, events, description, secret, created_ms)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = $2) < $8",
            )
            .bind(id.as_str())
            .bind(account.0)
            .bind(new.url)
            .bind(&stored)
            .bind(new.description)
            .bind(secret.expose())
            .bind(now)
            .bind(MAX_ENDPOINTS_PER_ACCOUNT)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(WebhookError::TooMany);
        }
        tracing::info!(webhook = %id, "webhook endpoint created");
        Ok(WebhookCreated {
            webhook: Webhook {
                webhook_id: id.to_string(),
                url: new.url.to_owned(),
                events,
                description: new.description.map(str::to_owned),
                created_at: millis(now),
            },
            secret: secret.expose().to_owned(),
        })
    }

    /// The account's endpoints, oldest first, without secrets.
    pub async fn list(&self, account: AccountId) -> Result<Vec<Webhook>, WebhookError> {
        let rows: Vec<EndpointRow> = on_pool!(self.store, |pool| {
            sqlx::query_as(
                "SELECT id, url, events, description, created_ms FROM webhook_endpoints
                 WHERE account_id = $1 ORDER BY created_ms, id",
            )
            .bind(account.0)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(listed).collect())
    }

    /// Removes an endpoint with its deliveries (pending ones are not sent).
    pub async fn remove(&self, account: AccountId, id: &WebhookId) -> Result<(), WebhookError> {
        let removed = on_pool!(self.store, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed =
                sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                    .bind(id.as_str())
                    .bind(account.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if removed == 1 {
                sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            removed
        });
        if removed == 0 {
            return Err(WebhookError::NotFound);
        }
        tracing::info!(webhook = %id, "webhook endpoint removed");
        Ok(())
    }

    /// Issues a new secret; the current one keeps signing beside it for
    /// [`ROTATION_OVERLAP`]. (A secret rotated out earlier stops signing at once.)
    pub async fn rotate(
        &self,
        account: AccountId,
        id: &WebhookId,
    ) -> Result<SecretRotated, WebhookError> {
        let secret = Secret::generate();
        let until = now_ms() + ROTATION_OVERLAP.as_millis() as i64;
        let changed = on_pool!(self.store, |pool| {
            sqlx::query(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $1, secret = $2
                 WHERE id = $3 AND account_id = $4",
            )
            .bind(until)
            .bind(secret.expose())
            .bind(id.as_str())
            .bind(account.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(WebhookError::NotFound);
        }
        tracing::info!(webhook = %id, "webhook secret rotated");
        Ok(SecretRotated {
            webhook_id: id.to_string(),
            secret: secret.expose().to_owned(),
            previous_secret_expires_at: millis(until),
        })
    }

    /// Queues a `webhook.test` event for one endpoint.
    pub async fn test(
        &self,
        account: AccountId,
        id: &WebhookId,
    ) -> Result<DeliveryQueued, WebhookError> {
        let queued = on_pool!(self.store, |pool| {
            let mut tx = pool.begin_write().await?;
            let queued = tx.enqueue_for(account, id, &Event::test(id)).await?;
            tx.commit().await?;
            queued
        });
        let (delivery, event) = queued.ok_or(WebhookError::NotFound)?;
        self.store.wake_outbox();
        Ok(DeliveryQueued { delivery_id: delivery.to_string(), event_id: event.to_string() })
    }

    /// Queues a delivery's event again, at the end of the endpoint's order, with the same
    /// `webhook-id` (a receiver that got it already can tell).
    pub async fn resend(
        &self,
        account: AccountId,
        id: &WebhookId,
        delivery: &DeliveryId,
    ) -> Result<DeliveryQueued, WebhookError> {
        let queued: Option<(DeliveryId, String)> = on_pool!(self.store, |pool| {
            let mut tx = pool.begin_write().await?;
            let event: Option<(String,)> = sqlx::query_as(
                "SELECT d.event_id FROM webhook_deliveries d
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id
                 WHERE d.id = $1 AND e.id = $2 AND e.account_id = $3",
            )
            .bind(delivery.as_str())
            .bind(id.as_str())
            .bind(account.0)
            .fetch_optional(&mut *tx)
            .await?;
            let queued = match event {
                Some((event,)) => {
                    let parsed =
                        EventId::parse(&event).map_err(|e| sqlx::Error::Decode(e.into()))?;
                    Some((tx.insert_delivery(id.as_str(), &parsed, now_ms()).await?, event))
                }
                None => None,
            };
            tx.commit().await?;
            queued
        });
        let Some((again, event)) = queued else {
            return Err(if self.exists(account, id).await? {
                WebhookError::DeliveryNotFound
            } else {
                WebhookError::NotFound
            });
        };
        self.store.wake_outbox();
        Ok(DeliveryQueued { delivery_id: again.to_string(), event_id: event })
    }

    async fn exists(&self, account: AccountId, id: &WebhookId) -> Result<bool, WebhookError> {
        let found: Option<(String,)> = on_pool!(self.store, |pool| {
            sqlx::query_as("SELECT id FROM webhook_endpoints WHERE id = $1 AND account_id = $2")
                .bind(id.as_str())
                .bind(account.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    /// The endpoint's most recent deliveries (newest first), each with its tries.
    pub async fn deliveries(
        &self,
        account: AccountId,
        id: &WebhookId,
    ) -> Result<Vec<Delivery>, WebhookError> {
        if !self.exists(account, id).await? {
            return Err(WebhookError::NotFound);
        }
        type DeliveryRow = (i64, String, String, String, String, i64, i64);
        type AttemptRow = (i64, i64, Option<i64>, i64, Option<String>);
        let (deliveries, attempts): (Vec<DeliveryRow>, Vec<AttemptRow>) =
            on_pool!(self.store, |pool| {
                let deliveries = sqlx::query_as(
                    "SELECT d.seq, d.id, d.event_id, m.type, d.state, d.created_ms, d.next_ms
                     FROM webhook_deliveries d JOIN webhook_events m ON m.id = d.event_id
                     WHERE d.endpoint_id = $1 ORDER BY d.seq DESC LIMIT $2",
                )
                .bind(id.as_str())
                .bind(LISTED_DELIVERIES)
                .fetch_all(pool)
                .await?;
                let attempts = sqlx::query_as(
                    "SELECT delivery_seq, at_ms, status, latency_ms, error FROM webhook_attempts
                     WHERE delivery_seq IN (SELECT seq FROM webhook_deliveries
                                            WHERE endpoint_id = $1 ORDER BY seq DESC LIMIT $2)
                     ORDER BY at_ms DESC",
                )
                .bind(id.as_str())
                .bind(LISTED_DELIVERIES)
                .fetch_all(pool)
                .await?;
                (deliveries, attempts)
            });
        Ok(deliveries
            .into_iter()
            .map(|(seq, delivery_id, event_id, kind, state, created, next)| {
                let status = match state.as_str() {
                    "delivered" => DeliveryStatus::Delivered,
                    "failed" => DeliveryStatus::Failed,
                    _ => DeliveryStatus::Pending,
                };
                Delivery {
                    delivery_id,
                    event_id,
                    event_type: WebhookEventType::parse(&kind)
                        .unwrap_or(WebhookEventType::WebhookTest),
                    status,
                    created_at: millis(created),
                    next_attempt_at: (status == DeliveryStatus::Pending).then(|| millis(next)),
                    attempts: attempts
                        .iter()
                        .filter(|a| a.0 == seq)
                        .map(|(_, at, code, latency, error)| DeliveryAttempt {
                            attempted_at: millis(*at),
                            status_code: code.and_then(|c| u16::try_from(c).ok()),
                            latency_ms: u64::try_from(*latency).unwrap_or(0),
                            error: error.clone(),
                        })
                        .collect(),
                }
            })
            .collect())
    }
}
