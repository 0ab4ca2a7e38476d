//! Cluster mode: several servers on one Postgres database, behind a plain load balancer.
//!
//! - `membership`: this server's row in `instances` and its lease (renewed every 5 s for 15 s,
//!   judged by the database's clock); a server that cannot renew for 10 s fences itself.
//! - `relay`: the events of the sessions that run here, written in order to `pairing_events`
//!   with a `pg_notify`; and replicas of the sessions that run elsewhere, followed while someone
//!   here watches them.
//! - `bus`: requests from one server to another through `cluster_commands` (a durable row and a
//!   NOTIFY each way), served by handlers that the application registers.
//! - `listener`: the one LISTEN connection of this server; it dispatches notifications to the
//!   relay and the bus, and catches up from the tables after a reconnect and on a slow poll,
//!   because a notification sent while the connection was down is lost.
//! - `sweeper`: ends the sessions of servers whose lease lapsed (`failed` `owner_lost`), and
//!   removes what is no longer needed.
//!
//! [`Cluster`] ties them together and implements [`crate::pairing::Peers`].

mod bus;
mod listener;
mod membership;
mod placement;
mod relay;
mod sweeper;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use keebai_protocol::StreamEvent;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bus::{BusError, Handler};
pub use placement::SEND_TEXT;

use crate::domain::{AccountId, ChannelId, PhoneNumber, SessionId, random_hex};
use crate::pairing::{CodeGranted, PairingError, Replica};

/// The timings of cluster mode.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How long a renewed lease lasts.
    pub lease_ttl: Duration,
    /// How often a server renews its lease.
    pub renew_every: Duration,
    /// A server that could not renew its lease for this long stops speaking for its sessions
    /// (shorter than `lease_ttl`, so that it stops before any other server takes over).
    pub fence_after: Duration,
    /// How often the sweeper looks for lapsed servers, and the listener catches up from the
    /// tables in case a notification was lost.
    pub poll_every: Duration,
    /// How long an ended session stays replayable (the engine's `replay`).
    pub replay: Duration,
    /// How long a request to another server waits for its reply.
    pub call_timeout: Duration,
    /// How long a text forwarded to the server that runs its channel waits to be confirmed.
    pub send_timeout: Duration,
    /// How often a server reconciles the channels it runs with the leases it holds.
    pub place_every: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            fence_after: Duration::from_secs(10),
            poll_every: Duration::from_secs(2),
            replay: Duration::from_secs(60),
            call_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            place_every: Duration::from_secs(1),
        }
    }
}

/// This server's part in a cluster. Cheap to clone; [`Cluster::stop`] ends its tasks and gives
/// up its lease.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// This server's id in `instances` (`ins_` + 64 random bits).
    me: String,
    config: ClusterConfig,
    lease: membership::Lease,
    relay: relay::Relay,
    bus: bus::Bus,
    /// Set once channels are placed ([`Cluster::place_channels`]).
    placer: std::sync::Mutex<Option<Arc<placement::Placer>>>,
    /// Another server released channels: reconcile now.
    released: tokio::sync::Notify,
    /// A safety poll is running (one at a time).
    resyncing: std::sync::atomic::AtomicBool,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Cluster {
    /// Registers this server and starts its lease, listener and sweeper.
    pub async fn join(pool: PgPool, config: ClusterConfig) -> anyhow::Result<Self> {
        let me = format!("ins_{}", random_hex(8));
        membership::register(&pool, &me, config.lease_ttl).await?;
        let (relay, queues) = relay::Relay::new();
        let inner = Arc::new(Inner {
            pool,
            me,
            config,
            lease: membership::Lease::new(),
            relay,
            bus: bus::Bus::default(),
            placer: std::sync::Mutex::new(None),
            released: tokio::sync::Notify::new(),
            resyncing: std::sync::atomic::AtomicBool::new(false),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        });
        inner.tasks.spawn(membership::keep(inner.clone()));
        inner.tasks.spawn(relay::write(inner.clone(), queues.events));
        inner.tasks.spawn(relay::record_creations(inner.clone(), queues.creations));
        inner.tasks.spawn(listener::listen(inner.clone()));
        inner.tasks.spawn(sweeper::sweep(inner.clone()));
        tracing::info!(instance = %inner.me, "joined the cluster");
        Ok(Self { inner })
    }

    /// This server's id among the cluster's instances.
    pub fn instance_id(&self) -> &str {
        &self.inner.me
    }

    /// Serves requests of `kind` from other servers with `handler`.
    pub fn serve(&self, kind: &'static str, handler: Handler) {
        self.inner.bus.serve(kind, handler);
    }

    /// Sends a request of `kind` to the server `target` and waits for its reply.
    pub async fn call(&self, target: &str, kind: &str, body: String) -> Result<String, BusError> {
        bus::call(&self.inner, target, kind, body, self.inner.config.call_timeout).await
    }

    /// The server that runs the session which showed `qr`, if any server does.
    pub async fn owner_of_qr(&self, qr: &str) -> anyhow::Result<Option<String>> {
        relay::owner_of_qr(&self.inner, qr).await
    }

    /// Stops: hands its channels over (each stopped here before its lease is released),
    /// writes the events still queued (bounded by the caller), ends the tasks, and deletes this
    /// server's row, so the others do not wait for its lease to lapse.
    pub async fn stop(&self) {
        self.inner.relay.close();
        self.inner.stop.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.bus.clear();
        crate::sync::lock(&self.inner.placer).take();
        membership::leave(&self.inner.pool, &self.inner.me).await;
    }
}

/// What another server is asked to cancel.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct CancelRequest {
    pub session_id: String,
    pub account_id: i64,
}

/// The kind of request that cancels a session on the server that runs it.
pub const CANCEL_SESSION: &str = "cancel_session";

/// What another server is asked for a pairing code.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct CodeRequest {
    pub session_id: String,
    pub account_id: i64,
    pub phone_number: String,
}

/// The answer to a [`CodeRequest`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeAnswer {
    Granted(CodeGranted),
    NotFound,
    NotWaiting,
    TooMany,
    Refused(String),
    Unavailable,
}

impl CodeAnswer {
    pub fn of(result: Result<CodeGranted, PairingError>) -> Self {
        match result {
            Ok(granted) => Self::Granted(granted),
            Err(PairingError::NotFound) => Self::NotFound,
            Err(PairingError::NotWaiting) => Self::NotWaiting,
            Err(PairingError::TooManyCodeRequests) => Self::TooMany,
            Err(PairingError::CodeRefused(reason)) => Self::Refused(reason),
            Err(_) => Self::Unavailable,
        }
    }

    fn into_result(self) -> Option<Result<CodeGranted, PairingError>> {
        Some(match self {
            Self::Granted(granted) => Ok(granted),
            Self::NotFound => return None,
            Self::NotWaiting => Err(PairingError::NotWaiting),
            Self::TooMany => Err(PairingError::TooManyCodeRequests),
            Self::Refused(reason) => Err(PairingError::CodeRefused(reason)),
            Self::Unavailable => Err(PairingError::Unavailable),
        })
    }
}

/// The kind of request that asks the server running a session for a pairing code.
pub const PAIRING_CODE: &str = "pairing_code";

impl Cluster {
    /// Where a session of `account` runs: `None`, no such session; `Some(None)`, it is over
    /// (or it ran here and is gone from memory); else the server that runs it.
    async fn running_owner(
        &self,
        account: AccountId,
        id: &SessionId,
    ) -> anyhow::Result<Option<Option<String>>> {
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT owner, ended_at IS NOT NULL FROM pairing_sessions
             WHERE id = $1 AND account_id = $2",
        )
        .bind(id.as_str())
        .bind(account.0)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(found.map(|(owner, ended)| (!ended && owner != self.inner.me).then_some(owner)))
    }
}

impl crate::pairing::Peers for Cluster {
    fn created<'a>(
        &'a self,
        id: &'a SessionId,
        account: AccountId,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(relay::created(&self.inner, id, account))
    }

    fn published(&self, id: &SessionId, seq: u64, event: &StreamEvent) {
        self.inner.relay.publish(id, seq, event);
    }

    fn replica<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
    ) -> BoxFuture<'a, anyhow::Result<Option<Replica>>> {
        Box::pin(async move { Ok(relay::follow(&self.inner, account, id).await?) })
    }

    fn cancel<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let owner = match self.running_owner(account, id).await? {
                None => return Ok(false),
                // Over already (or run here and gone from memory): nothing to cancel.
                Some(None) => return Ok(true),
                Some(Some(owner)) => owner,
            };
            let request = CancelRequest { session_id: id.to_string(), account_id: account.0 };
            let reply = self.call(&owner, CANCEL_SESSION, serde_json::to_string(&request)?).await?;
            Ok(serde_json::from_str::<bool>(&reply)?)
        })
    }

    fn request_code<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
        phone: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<Result<CodeGranted, PairingError>>>> {
        Box::pin(async move {
            let Some(owner) = self.running_owner(account, id).await? else { return Ok(None) };
            let Some(owner) = owner else { return Ok(Some(Err(PairingError::NotWaiting))) };
            let request = CodeRequest {
                session_id: id.to_string(),
                account_id: account.0,
                phone_number: phone.to_string(),
            };
            let reply = self.call(&owner, PAIRING_CODE, serde_json::to_string(&request)?).await?;
            Ok(serde_json::from_str::<CodeAnswer>(&reply)?.into_result())
        })
    }

    fn linked<'a>(&'a self, channel: &'a ChannelId) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.hold_linked(channel))
    }

    fn fence(&self) -> CancellationToken {
        self.inner.lease.fence()
    }
}
