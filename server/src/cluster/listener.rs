//! The one LISTEN connection of this server.
//!
//! sqlx's `PgListener` reconnects by itself, but what was notified while it was away is lost
//! (`recv` says nothing; `try_recv` answers `None`). So after every (re)connection, and on a
//! slow poll, the relay and the bus catch up from their tables, which hold everything the
//! notifications only point at.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification};

use super::Inner;
use super::bus::{self, COMMANDS_CHANNEL, REPLIES_CHANNEL};
use super::placement::CHANNELS_CHANNEL;
use super::relay::{self, PAIRING_CHANNEL};
use crate::domain::SessionId;

pub(super) async fn listen(inner: Arc<Inner>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            connected = connect(&inner) => connected,
            () = inner.stop.cancelled() => return,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "the cluster listener could not connect; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = inner.stop.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        resync(&inner).await;
        let mut poll = tokio::time::interval(inner.config.poll_every);
        poll.tick().await;
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(first)) => {
                        let mut batch = vec![first];
                        while let Some(next) = listener.next_buffered() {
                            batch.push(next);
                        }
                        dispatch(&inner, batch).await;
                    }
                    // Lost and connected again (sqlx's eager reconnect): catch up on the gap.
                    Ok(None) => {
                        tracing::info!("the cluster listener reconnected; catching up");
                        resync(&inner).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the cluster listener lost its connection");
                        break;
                    }
                },
                // Beside the dispatch, so that a slow poll (thousands of followed sessions) never
                // holds back the notifications that arrive meanwhile; applying is idempotent.
                _ = poll.tick() => {
                    if !inner.resyncing.swap(true, std::sync::atomic::Ordering::AcqRel) {
                        let inner = inner.clone();
                        inner.tasks.clone().spawn(async move {
                            resync(&inner).await;
                            inner.resyncing.store(false, std::sync::atomic::Ordering::Release);
                        });
                    }
                }
                () = inner.stop.cancelled() => return,
            }
        }
    }
}

async fn connect(inner: &Inner) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(&inner.pool).await?;
    listener
        .listen_all([PAIRING_CHANNEL, COMMANDS_CHANNEL, REPLIES_CHANNEL, CHANNELS_CHANNEL])
        .await?;
    Ok(listener)
}

/// Everything a notification could have pointed at: replicas, requests, replies.
async fn resync(inner: &Arc<Inner>) {
    if let Err(error) = relay::catch_up(inner, None).await {
        tracing::warn!(%error, "could not catch up on other servers' pairing events");
    }
    if let Err(error) = bus::take(inner).await {
        tracing::warn!(%error, "could not take requests from other servers");
    }
    if let Err(error) = bus::collect(inner, None).await {
        tracing::warn!(%error, "could not collect replies from other servers");
    }
}

async fn dispatch(inner: &Arc<Inner>, batch: Vec<PgNotification>) {
    let mut sessions = Vec::new();
    let mut requests = false;
    let mut replies = Vec::new();
    for notification in &batch {
        let payload = notification.payload();
        match notification.channel() {
            PAIRING_CHANNEL => {
                sessions.extend(payload.split(' ').filter_map(|id| SessionId::parse(id).ok()));
            }
            COMMANDS_CHANNEL => requests |= payload == inner.me,
            CHANNELS_CHANNEL => inner.released.notify_one(),
            REPLIES_CHANNEL => {
                if let Some((sender, id)) = payload.split_once(':')
                    && sender == inner.me
                    && let Ok(id) = id.parse::<i64>()
                {
                    replies.push(id);
                }
            }
            _ => {}
        }
    }
    if !sessions.is_empty() {
        sessions.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        sessions.dedup();
        if let Err(error) = relay::catch_up(inner, Some(&sessions)).await {
            tracing::warn!(%error, "could not read other servers' pairing events");
        }
    }
    if requests && let Err(error) = bus::take(inner).await {
        tracing::warn!(%error, "could not take requests from other servers");
    }
    if !replies.is_empty()
        && let Err(error) = bus::collect(inner, Some(replies)).await
    {
        tracing::warn!(%error, "could not collect replies from other servers");
    }
}
