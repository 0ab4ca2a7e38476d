//! What the engine and its session tasks share: configuration, the linker, the channel book,
//! the shutdown token, the tasks, and the registry of sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answers::{CodeGranted, PairingError};
use super::config::PairingConfig;
use super::linker::Linker;
use super::peers::Peers;
use super::state::SessionState;
use crate::channels::ChannelBook;
use crate::domain::{AccountId, PhoneNumber, SessionId};

/// What session tasks share with the engine. Tasks hold this, never the engine itself, so that
/// dropping the engine is what stops them.
pub(super) struct Shared {
    pub(super) config: PairingConfig,
    pub(super) linker: Arc<dyn Linker>,
    pub(super) book: ChannelBook,
    /// The other servers, in cluster mode.
    pub(super) peers: Option<Arc<dyn Peers>>,
    pub(super) shutdown: CancellationToken,
    /// Every session driver and every attempt: [`super::PairingEngine::stopped`] waits for them.
    pub(super) tasks: TaskTracker,
    registry: Mutex<Registry>,
}

#[derive(Default)]
pub(super) struct Registry {
    pub(super) sessions: HashMap<SessionId, Entry>,
    pub(super) live_per_account: HashMap<AccountId, usize>,
}

pub(super) struct Entry {
    pub(super) account: AccountId,
    pub(super) state: watch::Receiver<SessionState>,
    pub(super) cancel: CancellationToken,
    /// Requests to the session's driver (a pairing code).
    pub(super) commands: futures::channel::mpsc::Sender<Command>,
}

/// What the engine asks of a session's driver.
pub(super) enum Command {
    /// Switch to a pairing code for `phone`; answered once the code is known.
    PairCode { phone: PhoneNumber, reply: oneshot::Sender<Result<CodeGranted, PairingError>> },
}

impl Shared {
    pub(super) fn new(
        config: PairingConfig,
        linker: Arc<dyn Linker>,
        book: ChannelBook,
        peers: Option<Arc<dyn Peers>>,
        shutdown: CancellationToken,
    ) -> Self {
        let registry = Mutex::new(Registry::default());
        Self { config, linker, book, peers, shutdown, tasks: TaskTracker::new(), registry }
    }

    /// The registry, locked (see [`crate::sync::lock`]).
    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        crate::sync::lock(&self.registry)
    }

    /// `f` of the session `id` of `account`. Another account's session is reported exactly like a
    /// missing one.
    pub(super) fn lookup<T>(
        &self,
        account: AccountId,
        id: &SessionId,
        f: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        match self.registry().sessions.get(id) {
            Some(entry) if entry.account == account => Some(f(entry)),
            _ => None,
        }
    }

    /// A session reached its terminal event: it no longer counts against the account's limit.
    pub(super) fn session_ended(&self, account: AccountId) {
        let mut registry = self.registry();
        if let Some(live) = registry.live_per_account.get_mut(&account) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                registry.live_per_account.remove(&account);
            }
        }
    }

    /// The session's replay time is over: forget it (its id answers 404 from now on).
    pub(super) fn remove(&self, id: &SessionId) {
        let mut registry = self.registry();
        registry.sessions.remove(id);
        // A map keeps the capacity of its busiest moment: give it back once mostly empty.
        let sessions = &mut registry.sessions;
        if sessions.capacity() > 1024 && sessions.len() < sessions.capacity() / 8 {
            sessions.shrink_to(sessions.len() * 2);
        }
    }
}
