use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use keebai_protocol::StreamEvent;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::config::PairingConfig;
use super::linker::Linker;
use super::registry::{Entry, Shared};
use super::session::SessionDriver;
use super::state::SessionState;
use crate::channels::ChannelBook;
use crate::domain::{AccountId, ChannelName, SessionId};

/// Why the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// 404: unknown id, another account's session, or ended more than `replay` ago.
    #[error("no such pairing session")]
    NotFound,
    /// 429: the account holds `limit` live sessions already.
    #[error("this account already has {limit} live pairing sessions")]
    TooManySessions { limit: usize },
    /// 503: the server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
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
    pub fn new(config: PairingConfig, linker: Arc<dyn Linker>, book: ChannelBook) -> Self {
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared::new(config, linker, book, shutdown.clone()));
        Self { shared, _owner: Arc::new(shutdown.drop_guard()) }
    }

    pub fn config(&self) -> &PairingConfig {
        &self.shared.config
    }

    /// Starts a session for `account`; its first QR follows on the stream.
    pub fn create(
        &self,
        account: AccountId,
        name: ChannelName,
    ) -> Result<SessionInfo, PairingError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(PairingError::ShuttingDown);
        }
        let id = SessionId::generate();
        let (state_tx, state_rx) = watch::channel(SessionState::default());
        let cancel = self.shared.shutdown.child_token();
        {
            let mut registry = self.shared.registry();
            let limit = self.shared.config.max_sessions_per_account;
            let live = registry.live_per_account.entry(account).or_default();
            if *live >= limit {
                return Err(PairingError::TooManySessions { limit });
            }
            *live += 1;
            registry
                .sessions
                .insert(id.clone(), Entry { account, state: state_rx, cancel: cancel.clone() });
        }
        let driver =
            SessionDriver::new(self.shared.clone(), id.clone(), account, name, state_tx, cancel);
        self.shared.tasks.spawn(driver.run());
        Ok(SessionInfo { id, expires_in: self.shared.config.window })
    }

    /// The events of a session for one subscriber. `last_event_id` resumes after that event.
    pub fn subscribe(
        &self,
        account: AccountId,
        id: &SessionId,
        last_event_id: Option<u64>,
    ) -> Result<EventStream, PairingError> {
        let mut state = self.lookup(account, id, |entry| entry.state.clone())?;
        let shutdown = self.shared.shutdown.clone();
        Ok(Box::pin(async_stream::stream! {
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
        }))
    }

    /// Cancels a live session (its stream gets `failed` `cancelled`). Cancelling a session that
    /// already ended changes nothing and is not an error.
    pub fn cancel(&self, account: AccountId, id: &SessionId) -> Result<(), PairingError> {
        self.lookup(account, id, |entry| entry.cancel.cancel())
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
        let registry = self.shared.registry();
        match registry.sessions.get(id) {
            // Another account's session is reported exactly like a missing one.
            Some(entry) if entry.account == account => Ok(f(entry)),
            _ => Err(PairingError::NotFound),
        }
    }
}
