//! Which server runs each connected channel: leases in `channel_leases`, good while the
//! holder's own lease in `instances` is, so one renewal per server keeps all its channels.
//!
//! Every server reconciles once a second: it keeps live exactly the channels it holds, claims
//! channels that nobody holds (or whose holder lapsed) up to its fair share (the connected
//! channels over the live servers, rounded up), and hands over what it holds beyond that share:
//! it stops the channel first and releases the lease after, so that a channel is never live on
//! two servers. Claims lock rows with `SKIP LOCKED`, so servers never wait on each other.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Cluster, Inner};
use crate::channels::{
    ChannelBook, ForwardError, ForwardedSend, LinkerKind, LiveChannels, Runs, SendOutcome,
};
use crate::domain::{ChannelId, rfc3339_millis};
use time::OffsetDateTime;

/// The channel that tells the servers that channels were released, so they claim at once.
pub(super) const CHANNELS_CHANNEL: &str = "keebai_channels";

/// The kind of request that sends a recorded message on the server that runs its channel.
pub const SEND_TEXT: &str = "send_text";
/// The kind of request that asks a server to hand a channel over now.
const RELEASE_CHANNEL: &str = "release_channel";

/// A channel this server runs may be held without being live for this long (a linked device is
/// adopted a moment after its lease is taken); after that the holder starts it again, as when
/// another server's connection replaced it while this one holds the newest claim.
const ADOPTION_GRACE: Duration = Duration::from_secs(5);

/// How long a freshly linked channel is left to the server that linked it before any server
/// may claim it (its lease row normally comes from that server within milliseconds).
const LINKED_GRACE: Duration = Duration::from_secs(10);

/// What this server runs, by channel: the epoch of the claim it runs under, and since when.
type Running = HashMap<ChannelId, (i64, Instant)>;

/// The channels this server runs. Held across each reconcile and hand-over (an async lock:
/// they await the linker).
pub(super) struct Placer {
    live: Arc<dyn LiveChannels>,
    book: ChannelBook,
    running: Mutex<Running>,
}

impl Cluster {
    /// Starts placing the channels of `live`'s linker on the servers of the cluster.
    pub fn place_channels(&self, live: Arc<dyn LiveChannels>, book: ChannelBook) {
        let placer = Arc::new(Placer { live, book, running: Mutex::new(HashMap::new()) });
        let inner = self.inner.clone();
        let released = placer.clone();
        self.serve(
            RELEASE_CHANNEL,
            Arc::new(move |body: String| {
                let (inner, placer) = (inner.clone(), released.clone());
                Box::pin(async move {
                    let Ok(id) = serde_json::from_str::<String>(&body)
                        .map_err(|_| ())
                        .and_then(|id| ChannelId::parse(&id).map_err(|_| ()))
                    else {
                        return "false".to_owned();
                    };
                    release(&inner, &placer, &[id]).await.is_ok().to_string()
                })
            }),
        );
        *crate::sync::lock(&self.inner.placer) = Some(placer.clone());
        self.inner.tasks.spawn(reconcile_forever(self.inner.clone(), placer));
    }

    /// A channel that this server just linked runs here: its lease is taken over from whoever
    /// held it (who hands it over first). The linker keeps the linked device live itself.
    pub async fn hold_linked(&self, id: &ChannelId) -> anyhow::Result<()> {
        let Some(placer) = crate::sync::lock(&self.inner.placer).clone() else { return Ok(()) };
        let inner = &self.inner;
        for _ in 0..3 {
            if let Some(holder) = live_holder(inner, id).await?
                && holder != inner.me
            {
                // Graceful: the holder stops the channel and releases it, then we take it.
                let body = serde_json::to_string(id.as_str())?;
                if let Err(error) = self.call(&holder, RELEASE_CHANNEL, body).await {
                    tracing::warn!(channel = %id, %error, "the holder of a re-linked channel did not hand it over");
                    return Ok(());
                }
            }
            let claimed: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO channel_leases (channel_id, holder, epoch) VALUES ($1, $2, 1)
                 ON CONFLICT (channel_id) DO UPDATE SET holder = $2, epoch = channel_leases.epoch + 1
                 WHERE channel_leases.holder IS NULL OR channel_leases.holder = $2
                    OR NOT EXISTS (SELECT 1 FROM instances i
                                   WHERE i.id = channel_leases.holder AND i.lease_until > now())
                 RETURNING epoch",
            )
            .bind(id.as_str())
            .bind(&inner.me)
            .fetch_optional(&inner.pool)
            .await?;
            if let Some((epoch,)) = claimed {
                placer.running.lock().await.insert(id.clone(), (epoch, Instant::now()));
                return Ok(());
            }
        }
        Ok(())
    }
}

async fn reconcile_forever(inner: Arc<Inner>, placer: Arc<Placer>) {
    let mut ticks = tokio::time::interval(inner.config.place_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let fence = inner.lease.fence();
        tokio::select! {
            _ = ticks.tick() => {}
            () = inner.released.notified() => {}
            () = fence.cancelled(), if !fence.is_cancelled() => {}
            () = inner.stop.cancelled() => break,
        }
        if inner.lease.fence().is_cancelled() {
            // No lease: the others may take these channels any moment; stop them all now.
            stop_all(&placer).await;
            continue;
        }
        if let Err(error) = reconcile(&inner, &placer).await {
            tracing::warn!(%error, "could not place channels");
        }
    }
    // Stopping: hand everything over at once.
    let held: Vec<ChannelId> = placer.running.lock().await.keys().cloned().collect();
    if let Err(error) = release(&inner, &placer, &held).await {
        tracing::warn!(%error, "could not release this server's channels");
    }
}

async fn stop_all(placer: &Placer) {
    let stopping: Vec<ChannelId> = placer.running.lock().await.drain().map(|(id, _)| id).collect();
    futures::future::join_all(stopping.iter().map(|id| placer.live.stop_one(id))).await;
}

/// Stops `ids` here, then gives up their leases.
async fn release(inner: &Inner, placer: &Placer, ids: &[ChannelId]) -> Result<(), sqlx::Error> {
    let mut running = placer.running.lock().await;
    release_locked(inner, placer, &mut running, ids).await
}

/// [`release`], with the running channels already locked.
async fn release_locked(
    inner: &Inner,
    placer: &Placer,
    running: &mut Running,
    ids: &[ChannelId],
) -> Result<(), sqlx::Error> {
    // In parallel: a whatsapp client takes up to a second to flush and close, and a stopping
    // server hands everything over within its shutdown grace.
    let stopping: Vec<&ChannelId> = ids.iter().filter(|id| running.remove(*id).is_some()).collect();
    futures::future::join_all(stopping.into_iter().map(|id| placer.live.stop_one(id))).await;
    let ids: Vec<&str> = ids.iter().map(ChannelId::as_str).collect();
    // Released, and the others told at once (they claim on their next round otherwise).
    sqlx::query(
        "WITH released AS (
             UPDATE channel_leases SET holder = NULL WHERE channel_id = ANY($1) AND holder = $2
             RETURNING channel_id
         )
         SELECT pg_notify($3, '') FROM (SELECT 1 FROM released LIMIT 1) any_released",
    )
    .bind(&ids)
    .bind(&inner.me)
    .bind(CHANNELS_CHANNEL)
    .execute(&inner.pool)
    .await?;
    Ok(())
}

async fn reconcile(inner: &Inner, placer: &Placer) -> anyhow::Result<()> {
    let kind = placer.live.kind();
    let mut running = placer.running.lock().await;
    // Every connected channel has a lease row; a disconnected one is held by nobody. A channel
    // linked in the last seconds gets its row from the server that linked it (which runs its
    // device), so that no other server claims it in between.
    let settled = rfc3339_millis(OffsetDateTime::now_utc() - LINKED_GRACE);
    sqlx::query(
        "INSERT INTO channel_leases (channel_id)
         SELECT id FROM channels WHERE status = 'connected' AND linker = $1 AND updated_at < $2
         ON CONFLICT DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(settled)
    .execute(&inner.pool)
    .await?;
    sqlx::query(
        "UPDATE channel_leases SET holder = NULL WHERE holder = $1
         AND channel_id IN (SELECT id FROM channels WHERE status <> 'connected')",
    )
    .bind(&inner.me)
    .execute(&inner.pool)
    .await?;
    let mut held = held_here(inner).await?;

    // The fair share, and claims or hand-overs towards it.
    let (connected, servers): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM channels WHERE status = 'connected' AND linker = $1),
                (SELECT count(*) FROM instances WHERE lease_until > now())",
    )
    .bind(kind.as_str())
    .fetch_one(&inner.pool)
    .await?;
    let share = usize::try_from((connected + servers.max(1) - 1) / servers.max(1)).unwrap_or(0);
    if held.len() < share {
        held.extend(claim(inner, kind, share - held.len()).await?);
    } else if held.len() > share {
        let mut ids: Vec<ChannelId> = held.keys().cloned().collect();
        ids.sort_unstable_by(|a, b| b.as_str().cmp(a.as_str()));
        ids.truncate(held.len() - share);
        release_locked(inner, placer, &mut running, &ids).await?;
        for id in &ids {
            held.remove(id);
        }
        tracing::info!(channels = ids.len(), "handed channels over to the other servers");
    }

    // Live here: exactly what is held, each under the claim it is held by.
    let stale: Vec<ChannelId> = running
        .iter()
        .filter(|(id, (epoch, _))| held.get(*id) != Some(epoch))
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        running.remove(&id);
        placer.live.stop_one(&id).await;
    }
    let to_start = |id: &ChannelId, running: &Running| match running.get(id) {
        None => true,
        Some((_, since)) => since.elapsed() > ADOPTION_GRACE && !placer.live.is_live(id),
    };
    if held.keys().any(|id| to_start(id, &running)) {
        for channel in placer.book.connected(kind).await? {
            if let Some(epoch) = held.get(&channel.id)
                && to_start(&channel.id, &running)
            {
                placer.live.start(&channel).await;
                running.insert(channel.id.clone(), (*epoch, Instant::now()));
            }
        }
    }
    Ok(())
}

/// The server holding `id`'s lease while its own lease lasts; `None` when nobody does.
async fn live_holder(inner: &Inner, id: &ChannelId) -> Result<Option<String>, sqlx::Error> {
    let holder: Option<(String,)> = sqlx::query_as(
        "SELECT l.holder FROM channel_leases l
         JOIN instances i ON i.id = l.holder AND i.lease_until > now()
         WHERE l.channel_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&inner.pool)
    .await?;
    Ok(holder.map(|(holder,)| holder))
}

/// The channels whose lease this server holds, with their epochs.
async fn held_here(inner: &Inner) -> Result<HashMap<ChannelId, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT channel_id, epoch FROM channel_leases WHERE holder = $1")
            .bind(&inner.me)
            .fetch_all(&inner.pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, epoch)| Some((ChannelId::parse(&id).ok()?, epoch)))
        .collect())
}

/// Claims up to `n` connected channels that nobody holds, or whose holder lapsed.
async fn claim(
    inner: &Inner,
    kind: LinkerKind,
    n: usize,
) -> Result<Vec<(ChannelId, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE channel_leases SET holder = $1, epoch = epoch + 1
         WHERE channel_id IN (
             SELECT l.channel_id FROM channel_leases l JOIN channels c ON c.id = l.channel_id
             WHERE c.status = 'connected' AND c.linker = $2
               AND (l.holder IS NULL OR NOT EXISTS (
                   SELECT 1 FROM instances i WHERE i.id = l.holder AND i.lease_until > now()))
             ORDER BY l.channel_id LIMIT $3
             FOR UPDATE OF l SKIP LOCKED)
         RETURNING channel_id, epoch",
    )
    .bind(&inner.me)
    .bind(kind.as_str())
    .bind(i64::try_from(n).unwrap_or(i64::MAX))
    .fetch_all(&inner.pool)
    .await?;
    if !rows.is_empty() {
        tracing::info!(channels = rows.len(), "claimed channels");
    }
    Ok(rows
        .into_iter()
        .filter_map(|(id, epoch)| Some((ChannelId::parse(&id).ok()?, epoch)))
        .collect())
}

impl crate::channels::Placement for Cluster {
    fn runs<'a>(&'a self, id: &'a ChannelId) -> BoxFuture<'a, anyhow::Result<Runs>> {
        Box::pin(async move {
            let holder = live_holder(&self.inner, id).await?;
            Ok(match holder {
                Some(holder) if holder == self.inner.me => Runs::Here,
                Some(holder) => Runs::On(holder),
                None => Runs::Nowhere,
            })
        })
    }

    fn send_on<'a>(
        &'a self,
        server: &'a str,
        send: &'a ForwardedSend,
    ) -> BoxFuture<'a, Result<SendOutcome, ForwardError>> {
        Box::pin(async move {
            let body = serde_json::to_string(send).map_err(|e| ForwardError::Database(e.into()))?;
            let timeout = self.inner.config.send_timeout;
            match super::bus::call(&self.inner, server, SEND_TEXT, body, timeout).await {
                Ok(reply) => Ok(serde_json::from_str(&reply).unwrap_or(SendOutcome::Failed)),
                Err(super::BusError::Unreachable) => Err(ForwardError::NotTaken),
                Err(super::BusError::NoReply) => Err(ForwardError::Unconfirmed),
                Err(super::BusError::Database(error)) => Err(ForwardError::Database(error.into())),
            }
        })
    }
}
