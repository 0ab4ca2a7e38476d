//! The events of pairing sessions across servers.
//!
//! The server that runs a session queues each event it publishes; one writer task writes them in
//! order, in batches, each batch in one transaction with a `pg_notify('keebai_pairing', …)` that
//! names the sessions (ids only: a payload holds at most 8000 bytes, and the rows hold the data).
//! A server that someone watches another server's session on keeps a replica of its state,
//! brought up to date from the table whenever the session is named, after a reconnect of the
//! listener, and on the safety poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keebai_protocol::StreamEvent;
use tokio::sync::{mpsc, oneshot, watch};

use super::Inner;
use crate::domain::{AccountId, SessionId, code_key};
use crate::pairing::{Replica, SessionState};
use crate::store::StoreError;
use crate::sync::lock;

/// The channel that names sessions with new events.
pub(super) const PAIRING_CHANNEL: &str = "keebai_pairing";
/// The most events written in one transaction.
const BATCH: usize = 512;

/// One event on its way to the table.
pub(super) struct Outgoing {
    session: SessionId,
    seq: u64,
    event: StreamEvent,
}

/// A session to record before its id is handed out, and who waits for that.
pub(super) struct Creation {
    id: String,
    account: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the relay's tasks take from its queues.
pub(super) struct Queues {
    pub(super) events: mpsc::UnboundedReceiver<Outgoing>,
    pub(super) creations: mpsc::UnboundedReceiver<Creation>,
}

pub(super) struct Relay {
    writer: Mutex<Option<mpsc::UnboundedSender<Outgoing>>>,
    creations: Mutex<Option<mpsc::UnboundedSender<Creation>>>,
    replicas: Mutex<HashMap<SessionId, Followed>>,
}

/// A session of another server that someone here watches.
struct Followed {
    state: watch::Sender<SessionState>,
    watchers: usize,
}

impl Relay {
    pub(super) fn new() -> (Self, Queues) {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (creations_tx, creations) = mpsc::unbounded_channel();
        let relay = Self {
            writer: Mutex::new(Some(events_tx)),
            creations: Mutex::new(Some(creations_tx)),
            replicas: Mutex::new(HashMap::new()),
        };
        (relay, Queues { events, creations })
    }

    /// Queues an event of a session that runs here. Unbounded: a session publishes a few
    /// dozen events in its life, and while the database is away they wait here, in order.
    pub(super) fn publish(&self, session: &SessionId, seq: u64, event: &StreamEvent) {
        let outgoing = Outgoing { session: session.clone(), seq, event: event.clone() };
        let sent = lock(&self.writer).as_ref().map(|writer| writer.send(outgoing).is_ok());
        if sent != Some(true) {
            tracing::debug!(session = %session, "an event published after the cluster stopped was dropped");
        }
    }

    /// No more events or sessions: the writers finish their queues and end.
    pub(super) fn close(&self) {
        lock(&self.writer).take();
        lock(&self.creations).take();
    }

    /// The followed sessions and the last event each has applied.
    pub(super) fn positions(&self, only: Option<&[SessionId]>) -> (Vec<String>, Vec<i64>) {
        let replicas = lock(&self.replicas);
        let mut ids = Vec::new();
        let mut after = Vec::new();
        let mut add = |id: &SessionId, followed: &Followed| {
            ids.push(id.to_string());
            after.push(i64::try_from(followed.state.borrow().last_id()).unwrap_or(i64::MAX));
        };
        match only {
            Some(only) => only.iter().for_each(|id| {
                if let Some(followed) = replicas.get(id) {
                    add(id, followed);
                }
            }),
            None => replicas.iter().for_each(|(id, followed)| add(id, followed)),
        }
        (ids, after)
    }

    /// Applies fetched events, in order, to the replicas still followed.
    fn apply(&self, rows: Vec<(String, i64, String, String)>) {
        let replicas = lock(&self.replicas);
        let mut current: Option<(&str, bool)> = None;
        for (session, seq, name, data) in &rows {
            if let Some((id, in_order)) = current
                && id == session
                && !in_order
            {
                continue;
            }
            let Ok(id) = SessionId::parse(session) else { continue };
            let Some(followed) = replicas.get(&id) else { continue };
            let event = match StreamEvent::parse(name, data) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(session, seq, %error, "a stored pairing event could not be read");
                    current = Some((session, false));
                    continue;
                }
            };
            let seq = u64::try_from(*seq).unwrap_or_default();
            let mut in_order = true;
            followed.state.send_if_modified(|state| {
                let before = state.last_id();
                in_order = state.apply(seq, event);
                state.last_id() != before
            });
            current = Some((session, in_order));
        }
    }
}

/// Writes queued events in order until the relay is closed and the queue is empty. A batch
/// that the database cannot take right now is retried (the stream on another server pauses
/// and then goes on from the next id); one it refuses for good is logged and dropped.
pub(super) async fn write(inner: Arc<Inner>, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut delay = Duration::from_millis(50);
        loop {
            match write_batch(&inner, &batch).await {
                Ok(()) => break,
                Err(StoreError::Unavailable(error)) => {
                    tracing::warn!(%error, events = batch.len(), "the database cannot take pairing events right now; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(error) => {
                    tracing::error!(error = ?error, events = batch.len(), "pairing events could not be written");
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Session ids per notification: 150 of 36 characters stay well under the payload limit.
const NAMED_PER_NOTIFICATION: i64 = 150;

/// Writes one batch in one statement (so one round trip, and atomic): the sessions' rows are
/// locked, only sessions that have not ended take events (a session that the sweeper ended with
/// `owner_lost` while this server was away stays ended), a terminal event ends its session, and
/// the sessions are named on [`PAIRING_CHANNEL`].
async fn write_batch(inner: &Inner, batch: &[Outgoing]) -> Result<(), StoreError> {
    let (mut ids, mut seqs, mut names, mut datas, mut qrs, mut terminal) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for outgoing in batch {
        ids.push(outgoing.session.to_string());
        seqs.push(i64::try_from(outgoing.seq).unwrap_or(i64::MAX));
        names.push(outgoing.event.name().as_str());
        datas.push(outgoing.event.data_json());
        // What the phone acts on: a QR, or a pairing code without its dash (how a typed code
        // finds its session's server).
        qrs.push(match &outgoing.event {
            StreamEvent::Qr(qr) => Some(qr.data.clone()),
            StreamEvent::PairingCode(code) => Some(code_key(&code.code)),
            _ => None,
        });
        terminal.push(outgoing.event.is_terminal());
    }
    sqlx::query(
        "WITH open AS (
             SELECT id FROM pairing_sessions WHERE id = ANY($1) AND ended_at IS NULL
             ORDER BY id FOR UPDATE
         ), batch AS (
             SELECT b.* FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[],
                                    $6::bool[]) AS b (session_id, seq, event, data, qr, terminal)
             WHERE b.session_id IN (SELECT id FROM open)
         ), inserted AS (
             INSERT INTO pairing_events (session_id, seq, event, data, qr)
             SELECT session_id, seq, event, data, qr FROM batch
             ON CONFLICT DO NOTHING
         ), ended AS (
             UPDATE pairing_sessions SET ended_at = now()
             WHERE id IN (SELECT session_id FROM batch WHERE terminal)
         ), named AS (
             SELECT session_id, (row_number() OVER (ORDER BY session_id) - 1) / $7 AS part
             FROM (SELECT DISTINCT session_id FROM batch) sessions
         )
         SELECT pg_notify($8, string_agg(session_id, ' ')) FROM named GROUP BY part",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&names)
    .bind(&datas)
    .bind(&qrs)
    .bind(&terminal)
    .bind(NAMED_PER_NOTIFICATION)
    .bind(PAIRING_CHANNEL)
    .execute(&inner.pool)
    .await?;
    Ok(())
}

/// Names `sessions` on [`PAIRING_CHANNEL`], in as few notifications as fit.
pub(super) async fn notify(
    tx: &mut sqlx::PgConnection,
    sessions: &[&String],
) -> Result<(), sqlx::Error> {
    for part in sessions.chunks(NAMED_PER_NOTIFICATION as usize) {
        let payload = part.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(" ");
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PAIRING_CHANNEL)
            .bind(&payload)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Records a session created here, before its id is handed out. Sessions created at the same
/// time are recorded together, in one statement ([`record_creations`]): one round trip each
/// would cap how many sessions a server creates per second.
pub(super) async fn created(
    inner: &Inner,
    id: &SessionId,
    account: AccountId,
) -> anyhow::Result<()> {
    let (done, recorded) = oneshot::channel();
    let creation = Creation { id: id.to_string(), account: account.0, done };
    let queued = lock(&inner.relay.creations).as_ref().map(|queue| queue.send(creation).is_ok());
    anyhow::ensure!(queued == Some(true), "the cluster is stopping");
    match recorded.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(anyhow::anyhow!("recording the session: {error}")),
        Err(_) => Err(anyhow::anyhow!("the cluster is stopping")),
    }
}

/// Records queued sessions, all that are waiting in one statement, until the relay is closed.
pub(super) async fn record_creations(
    inner: Arc<Inner>,
    mut queue: mpsc::UnboundedReceiver<Creation>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let ids: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
        let accounts: Vec<i64> = batch.iter().map(|c| c.account).collect();
        let recorded = sqlx::query(
            "INSERT INTO pairing_sessions (id, account_id, owner)
             SELECT id, account_id, $3 FROM UNNEST($1::text[], $2::int8[]) AS s (id, account_id)",
        )
        .bind(&ids)
        .bind(&accounts)
        .bind(&inner.me)
        .execute(&inner.pool)
        .await
        .map(|_| ())
        .map_err(|error| error.to_string());
        for creation in batch.drain(..) {
            let _ = creation.done.send(recorded.clone());
        }
    }
}

/// Follows a session of `account` that another server runs. `None`: no such session.
pub(super) async fn follow(
    inner: &Arc<Inner>,
    account: AccountId,
    id: &SessionId,
) -> Result<Option<Replica>, sqlx::Error> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT account_id FROM pairing_sessions WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&inner.pool)
            .await?;
    if found != Some((account.0,)) {
        return Ok(None);
    }
    let state = {
        let mut replicas = lock(&inner.relay.replicas);
        let followed = replicas.entry(id.clone()).or_insert_with(|| Followed {
            state: watch::Sender::new(SessionState::default()),
            watchers: 0,
        });
        followed.watchers += 1;
        followed.state.subscribe()
    };
    let following = Following { inner: inner.clone(), id: id.clone() };
    // Events that arrive while this runs are applied once either way.
    catch_up(inner, Some(std::slice::from_ref(id))).await?;
    Ok(Some(Replica { state, following: Box::new(following) }))
}

/// One watcher of a replica; the last one dropped stops following the session.
struct Following {
    inner: Arc<Inner>,
    id: SessionId,
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut replicas = lock(&self.inner.relay.replicas);
        if let Some(followed) = replicas.get_mut(&self.id) {
            followed.watchers -= 1;
            if followed.watchers == 0 {
                replicas.remove(&self.id);
            }
        }
        let capacity = replicas.capacity();
        if capacity > 1024 && replicas.len() < capacity / 8 {
            let len = replicas.len();
            replicas.shrink_to(len * 2);
        }
    }
}

/// Brings replicas up to date from the table: `only` those sessions, or every one followed.
pub(super) async fn catch_up(inner: &Inner, only: Option<&[SessionId]>) -> Result<(), sqlx::Error> {
    let (ids, after) = inner.relay.positions(only);
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT e.session_id, e.seq, e.event, e.data
         FROM UNNEST($1::text[], $2::int8[]) AS followed (id, after)
         JOIN pairing_events e ON e.session_id = followed.id AND e.seq > followed.after
         ORDER BY e.session_id, e.seq",
    )
    .bind(&ids)
    .bind(&after)
    .fetch_all(&inner.pool)
    .await?;
    inner.relay.apply(rows);
    Ok(())
}

/// The server that runs the (live) session that showed `qr`.
pub(super) async fn owner_of_qr(inner: &Inner, qr: &str) -> anyhow::Result<Option<String>> {
    let owner: Option<(String,)> = sqlx::query_as(
        "SELECT s.owner FROM pairing_events e JOIN pairing_sessions s ON s.id = e.session_id
         WHERE e.qr = $1 LIMIT 1",
    )
    .bind(qr)
    .fetch_optional(&inner.pool)
    .await?;
    Ok(owner.map(|(owner,)| owner))
}
