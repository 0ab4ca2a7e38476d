//! What the engine and its session tasks share: configuration, the linker, the store, the
//! shutdown token, and the registry of sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::PairingConfig;
use super::linker::Linker;
use super::state::SessionState;
use crate::domain::{AccountId, SessionId};
use crate::store::Store;

/// What session tasks share with the engine. Tasks hold this, never the engine itself, so that
/// dropping the engine is what stops them.
pub(super) struct Shared {
    pub(super) config: PairingConfig,
    pub(super) linker: Arc<dyn Linker>,
    pub(super) store: Store,
    pub(super) shutdown: CancellationToken,
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
}

impl Shared {
    pub(super) fn new(
        config: PairingConfig,
        linker: Arc<dyn Linker>,
        store: Store,
        shutdown: CancellationToken,
    ) -> Self {
        Self { config, linker, store, shutdown, registry: Mutex::new(Registry::default()) }
    }

    /// The registry is behind a `std` mutex: every section is a few map operations with no
    /// `.await`, so an async mutex would only add overhead. A panic inside one cannot leave the
    /// maps half-updated in a harmful way, so a poisoned lock is simply taken over.
    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
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
