//! Ends the sessions of servers whose lease lapsed, and removes what nobody needs any more.

use std::sync::Arc;

use keebai_protocol::{FailedEvent, FailureCode, StreamEvent};

use super::Inner;
use super::membership::seconds;
use super::relay::notify;

/// What a session of a lapsed server ends with.
fn owner_lost() -> StreamEvent {
    StreamEvent::Failed(FailedEvent {
        code: FailureCode::OwnerLost,
        reason: "The server that ran this pairing session stopped answering. Start a new session."
            .into(),
    })
}

/// Every this many polls the sweeper also looks for sessions of servers that left no row at
/// all (a clean stop whose last events did not make it), which the quick check cannot see.
const FULL_SWEEP_EVERY: u32 = 15;

pub(super) async fn sweep(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(inner.config.poll_every);
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = inner.stop.cancelled() => return,
        }
        round = round.wrapping_add(1);
        // The quick check reads only the few rows of `instances`: the full query scans every
        // running session, which is too much work to do every 2 s for nothing.
        let lapsed =
            round.is_multiple_of(FULL_SWEEP_EVERY) || any_lapsed(&inner).await.unwrap_or(true);
        if lapsed && let Err(error) = end_lost_sessions(&inner).await {
            tracing::warn!(%error, "could not end the sessions of lapsed servers");
        }
        if let Err(error) = remove_old(&inner).await {
            tracing::warn!(%error, "could not remove old cluster rows");
        }
    }
}

/// Whether a server whose lease lapsed still owns running sessions (an index lookup per
/// lapsed server, whose row stays for a day).
async fn any_lapsed(inner: &Inner) -> Result<bool, sqlx::Error> {
    let (lapsed,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (
             SELECT 1 FROM instances i WHERE i.lease_until <= now() AND EXISTS (
                 SELECT 1 FROM pairing_sessions s WHERE s.owner = i.id AND s.ended_at IS NULL))",
    )
    .fetch_one(&inner.pool)
    .await?;
    Ok(lapsed)
}

/// Every running session whose owner holds no live lease gets `failed` `owner_lost` as its next
/// event. Rows are locked with `SKIP LOCKED`: a session that its owner is writing to right now
/// (so it is not lost after all), or that another server is ending, is left for the next round.
async fn end_lost_sessions(inner: &Inner) -> Result<(), sqlx::Error> {
    let lost = owner_lost();
    let mut tx = inner.pool.begin().await?;
    let ended: Vec<(String,)> = sqlx::query_as(
        "WITH lost AS (
             SELECT s.id FROM pairing_sessions s
             WHERE s.ended_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = s.owner AND i.lease_until > now())
             FOR UPDATE OF s SKIP LOCKED
         ), failed AS (
             INSERT INTO pairing_events (session_id, seq, event, data)
             SELECT lost.id,
                    COALESCE((SELECT max(e.seq) FROM pairing_events e WHERE e.session_id = lost.id), 0) + 1,
                    $1, $2
             FROM lost
         )
         UPDATE pairing_sessions SET ended_at = now() WHERE id IN (SELECT id FROM lost)
         RETURNING id",
    )
    .bind(lost.name().as_str())
    .bind(lost.data_json())
    .fetch_all(&mut *tx)
    .await?;
    if ended.is_empty() {
        return tx.commit().await;
    }
    let ids: Vec<&String> = ended.iter().map(|(id,)| id).collect();
    notify(&mut tx, &ids).await?;
    tx.commit().await?;
    tracing::warn!(
        sessions = ended.len(),
        "ended the pairing sessions of a server that stopped answering"
    );
    Ok(())
}

/// Sessions past their replay time, answered requests nobody collected, and servers long gone.
async fn remove_old(inner: &Inner) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pairing_sessions WHERE ended_at < now() - make_interval(secs => $1)")
        .bind(seconds(inner.config.replay))
        .execute(&inner.pool)
        .await?;
    sqlx::query("DELETE FROM cluster_commands WHERE created_at < now() - interval '10 minutes'")
        .execute(&inner.pool)
        .await?;
    sqlx::query("DELETE FROM instances WHERE lease_until < now() - interval '1 day'")
        .execute(&inner.pool)
        .await?;
    Ok(())
}
