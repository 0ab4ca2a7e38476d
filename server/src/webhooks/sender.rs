//! [`Sender`]: the background task that delivers the outbox.
//!
//! Each round it claims due deliveries, at most one per endpoint and only the endpoint's
//! oldest pending one (so each endpoint receives its events in order), and tries each in its
//! own task, up to [`SenderConfig::concurrency`] at once: an endpoint that hangs holds one
//! task until the time-out and delays no other endpoint. A claim lasts [`CLAIM_LEASE`]; in
//! cluster mode a claim takes rows with `FOR UPDATE SKIP LOCKED`, so that each delivery is
//! sent by one server, and a server that dies mid-try leaves a claim that lapses. A round
//! starts when a change queued deliveries on this server, when a try ends, when the next
//! retry is due, and at least every second (for what other servers queued).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::deliver::{Message, Outcome, post};
use super::outbox::now_ms;
use super::retry::{Schedule, jitter};
use super::signing::Secret;
use super::target::TargetPolicy;
use crate::domain::random_hex;
use crate::store::{Pool, Store, StoreError, on_pool};

/// How long a claim on a delivery lasts: the try's time-out and a margin.
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// The longest pause between two rounds.
const POLL: Duration = Duration::from_secs(1);
/// How long a delivery that ended (delivered or given up) stays listed, with its tries.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How often ended deliveries older than [`RETENTION`] are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// The deliveries `d` that are the oldest pending one of their endpoint and that nobody has
/// claimed (or whose claim lapsed) at `$now`: those a sender may try. (The heads come from one
/// grouped pass over the pending index; a `NOT EXISTS` over earlier deliveries made Postgres
/// compare every pending pair: 26 ms a round with 2,000 queued, against 3 ms.)
macro_rules! unclaimed_heads {
    ($now:literal) => {
        concat!(
            "d.seq IN (SELECT MIN(h.seq) FROM webhook_deliveries h WHERE h.state = 'pending'
                       GROUP BY h.endpoint_id)
             AND (d.claimed_until IS NULL OR d.claimed_until < ",
            $now,
            ")"
        )
    };
}

/// Claims (`$1` sender, `$2` until) up to `$4` unclaimed heads due at `$3`, the earliest due
/// first; `$lock` locks the rows it picks (Postgres).
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2 WHERE seq IN (
                 SELECT d.seq FROM webhook_deliveries d WHERE d.next_ms <= $3 AND ",
            unclaimed_heads!("$3"),
            " ORDER BY d.next_ms LIMIT $4",
            $lock,
            ") RETURNING seq"
        )
    };
}

/// How deliveries are sent.
#[derive(Debug, Clone, Copy)]
pub struct SenderConfig {
    pub policy: TargetPolicy,
    /// Each try's time-out, connection included.
    pub timeout: Duration,
    pub schedule: Schedule,
    /// Tries in flight at once, over all endpoints.
    pub concurrency: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            policy: TargetPolicy::default(),
            timeout: Duration::from_secs(10),
            schedule: Schedule::default(),
            concurrency: 32,
        }
    }
}

/// Delivers the outbox; one per server.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: reqwest::Client,
    config: SenderConfig,
    /// This server's name on its claims.
    me: String,
}

/// A claimed delivery with what its try needs.
struct Claimed {
    seq: i64,
    endpoint: String,
    event: String,
    failures: i64,
    first_try_ms: Option<i64>,
    url: String,
    secrets: Vec<Secret>,
    body: String,
}

type ClaimedRow =
    (i64, String, String, i64, Option<i64>, String, String, Option<String>, Option<i64>, String);

impl Sender {
    pub fn new(store: Store, config: SenderConfig) -> anyhow::Result<Self> {
        let client = config.policy.client(config.timeout)?;
        let me = format!("sender_{}", random_hex(8));
        Ok(Self { inner: Arc::new(Inner { store, client, config, me }) })
    }

    /// Sends until `shutdown`; then stops the tries in flight and gives their claims back.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        if let Err(error) = inner.release_stale_claims().await {
            tracing::warn!(%error, "could not release the webhook claims of a previous run");
        }
        let permits = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
        let mut tries = JoinSet::new();
        let mut pruned = None;
        loop {
            while tries.try_join_next().is_some() {}
            if pruned.is_none_or(|at: tokio::time::Instant| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(tokio::time::Instant::now());
                if let Err(error) = inner.prune().await {
                    tracing::warn!(%error, "could not remove old webhook deliveries");
                }
            }
            let mut pause = POLL;
            let free = permits.available_permits();
            if free > 0 {
                match inner.claim(free).await {
                    Ok(claimed) => {
                        for claimed in claimed {
                            let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                            tries.spawn(Inner::attempt(self.inner.clone(), claimed, permit));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not claim webhook deliveries"),
                }
                if let Ok(Some(due)) = inner.next_due().await {
                    let wait = u64::try_from(due - now_ms()).unwrap_or(0);
                    pause = pause.min(Duration::from_millis(wait));
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = inner.store.outbox_woken() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        tries.shutdown().await;
        if let Err(error) = inner.release_own_claims().await {
            tracing::warn!(%error, "could not give back webhook claims at shutdown");
        }
    }
}

impl Inner {
    /// One SQLite server is the only sender of its store: claims left by a previous run (a
    /// crash, `kill -9`) need not lapse first.
    async fn release_stale_claims(&self) -> Result<(), StoreError> {
        if let Pool::Sqlite(pool) = self.store.pool() {
            sqlx::query(
                "UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by IS NOT NULL",
            )
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// Removes deliveries that ended more than [`RETENTION`] ago (their tries go with them),
    /// and events left without deliveries.
    async fn prune(&self) -> Result<(), StoreError> {
        let before = now_ms() - RETENTION.as_millis() as i64;
        on_pool!(self.store, |pool| {
            sqlx::query(
                "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_ms < $1",
            )
            .bind(before)
            .execute(pool)
            .await?;
            sqlx::query(
                "DELETE FROM webhook_events WHERE created_ms < $1 AND NOT EXISTS
                     (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
            )
            .bind(before)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn release_own_claims(&self) -> Result<(), StoreError> {
        on_pool!(self.store, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by = $1",
            )
            .bind(&self.me)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Claims up to `limit` due deliveries, each the oldest pending one of its endpoint.
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let until = now + CLAIM_LEASE.as_millis() as i64;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One backend locks what it claims; the other has one writer at a time, so the
        // statement alone is the claim.
        let seqs: Vec<(i64,)> = match self.store.pool() {
            Pool::Postgres(pool) => {
                sqlx::query_as(claim!(" FOR UPDATE SKIP LOCKED"))
                    .bind(&self.me)
                    .bind(until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Pool::Sqlite(pool) => {
                sqlx::query_as(claim!(""))
                    .bind(&self.me)
                    .bind(until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        let mut claimed = Vec::with_capacity(seqs.len());
        for (seq,) in seqs {
            let row: Option<ClaimedRow> = on_pool!(self.store, |pool| {
                sqlx::query_as(
                    "SELECT d.seq, d.endpoint_id, d.event_id, d.failures, d.first_try_ms, e.url,
                            e.secret, e.previous_secret, e.previous_until, m.body
                     FROM webhook_deliveries d
                     JOIN webhook_endpoints e ON e.id = d.endpoint_id
                     JOIN webhook_events m ON m.id = d.event_id
                     WHERE d.seq = $1",
                )
                .bind(seq)
                .fetch_optional(pool)
                .await?
            });
            let Some((
                seq,
                endpoint,
                event,
                failures,
                first_try_ms,
                url,
                secret,
                previous,
                until,
                body,
            )) = row
            else {
                // Its endpoint was removed while a change queued it (see the migration).
                on_pool!(self.store, |pool| {
                    sqlx::query(
                        "DELETE FROM webhook_deliveries WHERE seq = $1 AND NOT EXISTS
                             (SELECT 1 FROM webhook_endpoints e
                              WHERE e.id = webhook_deliveries.endpoint_id)",
                    )
                    .bind(seq)
                    .execute(pool)
                    .await?;
                });
                continue;
            };
            let mut secrets = Vec::with_capacity(2);
            secrets.extend(Secret::parse(&secret).ok());
            if until.is_some_and(|until| until > now) {
                secrets.extend(previous.as_deref().and_then(|p| Secret::parse(p).ok()));
            }
            claimed.push(Claimed {
                seq,
                endpoint,
                event,
                failures,
                first_try_ms,
                url,
                secrets,
                body,
            });
        }
        Ok(claimed)
    }

    /// When the earliest unclaimed head of an endpoint's order is due.
    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let now = now_ms();
        let (due,): (Option<i64>,) = on_pool!(self.store, |pool| {
            sqlx::query_as(concat!(
                "SELECT MIN(d.next_ms) FROM webhook_deliveries d WHERE ",
                unclaimed_heads!("$1")
            ))
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(due)
    }

    /// Tries one claimed delivery and records what came of it.
    async fn attempt(self: Arc<Self>, claimed: Claimed, _permit: OwnedSemaphorePermit) {
        let started = now_ms();
        let outcome = match self.config.policy.check(&claimed.url) {
            Ok(url) => {
                let message = Message {
                    id: &claimed.event,
                    timestamp: started / 1000,
                    body: claimed.body.as_bytes(),
                };
                post(&self.client, url, &claimed.secrets, &message).await
            }
            // The operator no longer allows this target.
            Err(error) => Outcome {
                status: None,
                latency: Duration::ZERO,
                detail: format!("not sent: {error}"),
            },
        };
        match self.settle(&claimed, started, &outcome).await {
            Ok(state) => tracing::info!(
                webhook = %claimed.endpoint,
                event = %claimed.event,
                status = outcome.status,
                latency_ms = outcome.latency.as_millis() as u64,
                state,
                "webhook delivery tried"
            ),
            // The claim lapses and the delivery is tried again.
            Err(error) => {
                tracing::warn!(webhook = %claimed.endpoint, %error, "could not record a webhook try")
            }
        }
        self.store.wake_outbox();
    }

    /// Records a try: delivered, or failed with the next try scheduled (or given up).
    async fn settle(
        &self,
        claimed: &Claimed,
        started: i64,
        outcome: &Outcome,
    ) -> Result<&'static str, StoreError> {
        let now = now_ms();
        let first = claimed.first_try_ms.unwrap_or(started);
        let failures = claimed.failures + 1;
        let (state, next) = if outcome.delivered() {
            ("delivered", now)
        } else {
            let age = Duration::from_millis(u64::try_from(now - first).unwrap_or(0));
            let failures = u32::try_from(failures).unwrap_or(u32::MAX);
            match self.config.schedule.next_try(age, failures, jitter()) {
                Some(wait) => ("pending", now + wait.as_millis() as i64),
                None => ("failed", now),
            }
        };
        let error = match (outcome.delivered(), outcome.status) {
            (true, _) => None,
            (false, Some(status)) => Some(format!("HTTP {status}: {}", outcome.detail)),
            (false, None) => Some(outcome.detail.clone()),
        };
        let failures = if outcome.delivered() { claimed.failures } else { failures };
        on_pool!(self.store, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_seq, at_ms, status, latency_ms, error)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(claimed.seq)
            .bind(started)
            .bind(outcome.status.map(i64::from))
            .bind(outcome.latency.as_millis() as i64)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET state = $1, failures = $2, first_try_ms = $3, next_ms = $4,
                     claimed_by = NULL, claimed_until = NULL
                 WHERE seq = $5 AND claimed_by = $6",
            )
            .bind(state)
            .bind(failures)
            .bind(first)
            .bind(next)
            .bind(claimed.seq)
            .bind(&self.me)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(state)
    }
}
