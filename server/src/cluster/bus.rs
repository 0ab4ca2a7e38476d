//! Requests from one server to another: a row in `cluster_commands` and a NOTIFY to the target,
//! then the reply in the same row and a NOTIFY back. The target takes each request once
//! (`taken_at`), so a request is carried out at most once; the sender waits `call_timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::Inner;
use crate::sync::lock;

/// The channel that tells a server it has requests (payload: its id).
pub(super) const COMMANDS_CHANNEL: &str = "keebai_commands";
/// The channel that tells a server a reply came (payload: `<its id>:<request id>`).
pub(super) const REPLIES_CHANNEL: &str = "keebai_replies";

/// Serves one kind of request: takes its body, answers the reply's body (both JSON).
pub type Handler = Arc<dyn Fn(String) -> BoxFuture<'static, String> + Send + Sync>;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The target did not take the request in time (it is gone, or far behind).
    #[error("the server that owns this did not answer")]
    Unreachable,
    /// The target took the request but did not reply in time.
    #[error("the server that owns this took the request but did not reply in time")]
    NoReply,
    #[error("the cluster's database is unavailable")]
    Database(#[from] sqlx::Error),
}

#[derive(Default)]
pub(super) struct Bus {
    handlers: Mutex<HashMap<&'static str, Handler>>,
    /// Requests sent from here that wait for their reply, by request id.
    waiting: Mutex<HashMap<i64, oneshot::Sender<String>>>,
}

impl Bus {
    pub(super) fn serve(&self, kind: &'static str, handler: Handler) {
        lock(&self.handlers).insert(kind, handler);
    }

    fn handler(&self, kind: &str) -> Option<Handler> {
        lock(&self.handlers).get(kind).cloned()
    }

    /// Forgets every handler (they may hold what holds the cluster).
    pub(super) fn clear(&self) {
        lock(&self.handlers).clear();
    }

    pub(super) fn waiting_ids(&self) -> Vec<i64> {
        lock(&self.waiting).keys().copied().collect()
    }
}

pub(super) async fn call(
    inner: &Inner,
    target: &str,
    kind: &str,
    body: String,
    timeout: std::time::Duration,
) -> Result<String, BusError> {
    let (reply_tx, reply_rx) = oneshot::channel();
    let mut tx = inner.pool.begin().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO cluster_commands (target, sender, kind, body) VALUES ($1, $2, $3, $4)
         RETURNING id",
    )
    .bind(target)
    .bind(&inner.me)
    .bind(kind)
    .bind(&body)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(COMMANDS_CHANNEL)
        .bind(target)
        .execute(&mut *tx)
        .await?;
    // Registered before the commit: the reply cannot come before it.
    lock(&inner.bus.waiting).insert(id, reply_tx);
    let waited = async {
        tx.commit().await?;
        Ok::<_, sqlx::Error>(tokio::time::timeout(timeout, reply_rx).await)
    }
    .await;
    let outcome = match waited {
        Ok(Ok(Ok(reply))) => return Ok(reply),
        Ok(_) => None,
        Err(error) => Some(error),
    };
    lock(&inner.bus.waiting).remove(&id);
    if let Some(error) = outcome {
        return Err(error.into());
    }
    // No reply in time: withdraw the request unless the target took it already.
    let withdrawn = sqlx::query("DELETE FROM cluster_commands WHERE id = $1 AND taken_at IS NULL")
        .bind(id)
        .execute(&inner.pool)
        .await?
        .rows_affected();
    Err(if withdrawn == 1 { BusError::Unreachable } else { BusError::NoReply })
}

/// Takes the requests addressed to this server and serves each in its own task.
pub(super) async fn take(inner: &Arc<Inner>) -> Result<(), sqlx::Error> {
    let taken: Vec<(i64, String, String, String)> = sqlx::query_as(
        "UPDATE cluster_commands SET taken_at = now()
         WHERE id IN (SELECT id FROM cluster_commands WHERE target = $1 AND taken_at IS NULL
                      ORDER BY id FOR UPDATE SKIP LOCKED)
         RETURNING id, sender, kind, body",
    )
    .bind(&inner.me)
    .fetch_all(&inner.pool)
    .await?;
    for (id, sender, kind, body) in taken {
        let inner = inner.clone();
        let handler = inner.bus.handler(&kind);
        inner.tasks.clone().spawn(async move {
            let reply = match handler {
                Some(handler) => handler(body).await,
                None => {
                    tracing::warn!(kind, "a request of an unknown kind came from another server");
                    String::from("null")
                }
            };
            if let Err(error) = answer(&inner, id, &sender, &reply).await {
                tracing::warn!(%error, kind, "could not reply to another server's request");
            }
        });
    }
    Ok(())
}

async fn answer(inner: &Inner, id: i64, sender: &str, reply: &str) -> Result<(), sqlx::Error> {
    let mut tx = inner.pool.begin().await?;
    sqlx::query("UPDATE cluster_commands SET reply = $2 WHERE id = $1")
        .bind(id)
        .bind(reply)
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(REPLIES_CHANNEL)
        .bind(format!("{sender}:{id}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Hands replies that arrived to their waiting callers: `ids`, or every request still waiting.
pub(super) async fn collect(inner: &Inner, ids: Option<Vec<i64>>) -> Result<(), sqlx::Error> {
    let ids = ids.unwrap_or_else(|| inner.bus.waiting_ids());
    if ids.is_empty() {
        return Ok(());
    }
    let replies: Vec<(i64, String)> = sqlx::query_as(
        "DELETE FROM cluster_commands WHERE id = ANY($1) AND reply IS NOT NULL RETURNING id, reply",
    )
    .bind(&ids)
    .fetch_all(&inner.pool)
    .await?;
    let mut waiting = lock(&inner.bus.waiting);
    for (id, reply) in replies {
        if let Some(caller) = waiting.remove(&id) {
            let _ = caller.send(reply);
        }
    }
    Ok(())
}
