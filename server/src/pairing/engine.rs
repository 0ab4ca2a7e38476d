use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use keebai_protocol::StreamEvent;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::answers::{CodeGranted, PairingError};
use super::config::PairingConfig;
use super::linker::Linker;
use super::peers::Peers;
use super::registry::{Command, Entry, Shared};
use super::session::{SessionDriver, Wiring};
use super::state::SessionState;
use crate::channels::ChannelBook;
use crate::domain::{AccountId, ChannelName, PhoneNumber, SessionId};

/// Asks a session's driver for a code; a driver that is gone (the session ended) no longer
/// waits for a phone.
async fn request_code_here(
    mut commands: futures::channel::mpsc::Sender<Command>,
    phone: PhoneNumber,
) -> Result<CodeGranted, PairingError> {
    use futures::SinkExt;
    let (reply, answer) = tokio::sync::oneshot::channel();
    commands
        .send(Command::PairCode { phone, reply })
        .await
        .map_err(|_| PairingError::NotWaiting)?;
    answer.await.map_err(|_| PairingError::NotWaiting)?
}

/// See [`PairingEngine::downgrade`].
#[derive(Clone)]
pub struct WeakEngine(std::sync::Weak<Shared>);

impl WeakEngine {
    /// [`PairingEngine::request_code_here`], while the engine lives.
    pub async fn request_code_here(
        &self,
        account: AccountId,
        id: &SessionId,
        phone: PhoneNumber,
    ) -> Result<CodeGranted, PairingError> {
        let shared = self.0.upgrade().ok_or(PairingError::ShuttingDown)?;
        let commands = shared
            .lookup(account, id, |entry| entry.commands.clone())
            .ok_or(PairingError::NotFound)?;
        drop(shared);
        request_code_here(commands, phone).await
    }

    /// [`PairingEngine::cancel_here`], while the engine lives.
    pub fn cancel_here(&self, account: AccountId, id: &SessionId) -> Result<(), PairingError> {
        let shared = self.0.upgrade().ok_or(PairingError::ShuttingDown)?;
        shared.lookup(account, id, |entry| entry.cancel.cancel()).ok_or(PairingError::NotFound)
    }
}

/// A session that was just created.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub expires_in: Duration,
}

/// A subscriber's events: `(id, event)`, ending right after a terminal event.
pub type EventStream = BoxStream<'static, (u64, StreamEvent)>;

/// The registry of pairing sessions. Cheap to clone; the last clone dropped cancels every session
/// task (they end with `failed` `server_shutdown`), as does [`PairingEngine::shutdown`]. The
/// engine owns every task it starts (session drivers and linker attempts):
/// [`PairingEngine::stopped`] waits for all of them.
#[derive(Clone)]
pub struct PairingEngine {
    shared: Arc<Shared>,
    _owner: Arc<DropGuard>,
}

impl PairingEngine {
    /// An engine on its own: every session it knows runs here (one server, SQLite).
    pub fn new(config: PairingConfig, linker: Arc<dyn Linker>, book: ChannelBook) -> Self {
        Self::build(config, linker, book, None)
    }

    /// An engine in a cluster: sessions that run here are published to `peers`, and sessions
    /// that other servers run can be watched and cancelled here too.
    pub fn in_cluster(
        config: PairingConfig,
        linker: Arc<dyn Linker>,
        book: ChannelBook,
        peers: Arc<dyn Peers>,
    ) -> Self {
        Self::build(config, linker, book, Some(peers))
    }

    fn build(
        config: PairingConfig,
        linker: Arc<dyn Linker>,
        book: ChannelBook,
        peers: Option<Arc<dyn Peers>>,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared::new(config, linker, book, peers, shutdown.clone()));
        Self { shared, _owner: Arc::new(shutdown.drop_guard()) }
    }

    pub fn config(&self) -> &PairingConfig {
        &self.shared.config
    }

    /// Starts a session for `account`; its first QR follows on the stream. In a cluster the
    /// session is known to every server when this returns.
    pub async fn create(
        &self,
        account: AccountId,
        name: ChannelName,
    ) -> Result<SessionInfo, PairingError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(PairingError::ShuttingDown);
        }
        let fence = self.shared.peers.as_ref().map(|peers| peers.fence());
        if fence.as_ref().is_some_and(CancellationToken::is_cancelled) {
            tracing::warn!("a pairing session was refused: this server holds no cluster lease");
            return Err(PairingError::Unavailable);
        }
        let id = SessionId::generate();
        let (state_tx, state_rx) = watch::channel(SessionState::default());
        let (commands, command_rx) = futures::channel::mpsc::channel(1);
        let cancel = self.shared.shutdown.child_token();
        {
            let mut registry = self.shared.registry();
            let limit = self.shared.config.max_sessions_per_account;
            let live = registry.live_per_account.entry(account).or_default();
            if *live >= limit {
                return Err(PairingError::TooManySessions { limit });
            }
            *live += 1;
            let entry = Entry { account, state: state_rx, cancel: cancel.clone(), commands };
            registry.sessions.insert(id.clone(), entry);
        }
        if let Some(peers) = &self.shared.peers
            && let Err(error) = peers.created(&id, account).await
        {
            tracing::warn!(%error, "a pairing session could not be shared with the cluster");
            self.shared.session_ended(account);
            self.shared.remove(&id);
            return Err(PairingError::Unavailable);
        }
        let wiring = Wiring { state: state_tx, cancel, fence, commands: command_rx };
        let driver = SessionDriver::new(self.shared.clone(), id.clone(), account, name, wiring);
        self.shared.tasks.spawn(driver.run());
        Ok(SessionInfo { id, expires_in: self.shared.config.window })
    }

    /// The events of a session for one subscriber. `last_event_id` resumes after that event.
    /// In a cluster, a session that another server runs is replayed from its events.
    pub async fn subscribe(
        &self,
        account: AccountId,
        id: &SessionId,
        last_event_id: Option<u64>,
    ) -> Result<EventStream, PairingError> {
        let local = self.lookup(account, id, |entry| entry.state.clone());
        match (local, &self.shared.peers) {
            (Ok(state), _) => Ok(self.events(state, None, last_event_id)),
            (Err(PairingError::NotFound), Some(peers)) => match peers.replica(account, id).await {
                Ok(Some(replica)) => {
                    Ok(self.events(replica.state, Some(replica.following), last_event_id))
                }
                Ok(None) => Err(PairingError::NotFound),
                Err(error) => {
                    tracing::warn!(%error, session = %id, "could not follow another server's session");
                    Err(PairingError::Unavailable)
                }
            },
            (Err(error), _) => Err(error),
        }
    }

    fn events(
        &self,
        mut state: watch::Receiver<SessionState>,
        following: Option<Box<dyn Send + Sync>>,
        last_event_id: Option<u64>,
    ) -> EventStream {
        let shutdown = self.shared.shutdown.clone();
        Box::pin(async_stream::stream! {
            // Held as long as the stream: a replica is followed while someone watches it.
            let _following = following;
            let mut seen = last_event_id;
            loop {
                let batch = state.borrow_and_update().events_for(seen);
                for (event_id, event) in batch {
                    seen = Some(event_id);
                    let terminal = event.is_terminal();
                    yield (event_id, event);
                    if terminal {
                        return;
                    }
                }
                tokio::select! {
                    changed = state.changed() => if changed.is_err() { return },
                    // On shutdown the session publishes `failed` `server_shutdown` at once; this
                    // bound only guarantees that no stream outlives shutdown by more than 500 ms.
                    () = async {
                        shutdown.cancelled().await;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    } => return,
                }
            }
        })
    }

    /// Cancels a live session (its stream gets `failed` `cancelled`). Cancelling a session that
    /// already ended changes nothing and is not an error. In a cluster, a session that another
    /// server runs is cancelled there.
    pub async fn cancel(&self, account: AccountId, id: &SessionId) -> Result<(), PairingError> {
        let local = self.cancel_here(account, id);
        match (local, &self.shared.peers) {
            (Err(PairingError::NotFound), Some(peers)) => match peers.cancel(account, id).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(PairingError::NotFound),
                Err(error) => {
                    tracing::warn!(%error, session = %id, "could not cancel another server's session");
                    Err(PairingError::Unavailable)
                }
            },
            (result, _) => result,
        }
    }

    /// Switches a session that waits for a phone from QR codes to a pairing code for `phone`,
    /// and answers the code once WhatsApp gave it. Asking again for the same number answers
    /// the current code. In a cluster, a session that another server runs is asked there.
    pub async fn request_code(
        &self,
        account: AccountId,
        id: &SessionId,
        phone: PhoneNumber,
    ) -> Result<CodeGranted, PairingError> {
        let local = self.lookup(account, id, |entry| entry.commands.clone());
        match (local, &self.shared.peers) {
            (Err(PairingError::NotFound), Some(peers)) => {
                match peers.request_code(account, id, &phone).await {
                    Ok(Some(answer)) => answer,
                    Ok(None) => Err(PairingError::NotFound),
                    Err(error) => {
                        tracing::warn!(%error, session = %id, "could not ask another server for a pairing code");
                        Err(PairingError::Unavailable)
                    }
                }
            }
            (local, _) => request_code_here(local?, phone).await,
        }
    }

    /// [`PairingEngine::request_code`] for a session that runs here (what another server asks).
    pub async fn request_code_here(
        &self,
        account: AccountId,
        id: &SessionId,
        phone: PhoneNumber,
    ) -> Result<CodeGranted, PairingError> {
        request_code_here(self.lookup(account, id, |entry| entry.commands.clone())?, phone).await
    }

    /// Cancels a session that runs on this server.
    pub fn cancel_here(&self, account: AccountId, id: &SessionId) -> Result<(), PairingError> {
        self.lookup(account, id, |entry| entry.cancel.cancel())
    }

    /// A handle that does not keep the engine alive, for callbacks that the engine's own parts
    /// hold (another server's request to cancel a session that runs here).
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.shared))
    }

    /// A copy of a session's current state.
    pub fn state(&self, account: AccountId, id: &SessionId) -> Result<SessionState, PairingError> {
        self.lookup(account, id, |entry| entry.state.borrow().clone())
    }

    /// Sessions held in memory, live or replaying their terminal event.
    pub fn session_count(&self) -> usize {
        self.shared.registry().sessions.len()
    }

    /// Live sessions of one account.
    pub fn live_sessions(&self, account: AccountId) -> usize {
        self.shared.registry().live_per_account.get(&account).copied().unwrap_or(0)
    }

    /// Ends every session with `failed` `server_shutdown` and refuses new ones; returns at once
    /// ([`PairingEngine::stopped`] waits for the tasks to finish).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// After [`PairingEngine::shutdown`]: returns once every session driver and every attempt
    /// has ended, having released what it held (clients closed, device files deleted).
    pub async fn stopped(&self) {
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    fn lookup<T>(
        &self,
        account: AccountId,
        id: &SessionId,
        f: impl FnOnce(&Entry) -> T,
    ) -> Result<T, PairingError> {
        self.shared.lookup(account, id, f).ok_or(PairingError::NotFound)
    }
}
