//! Signed webhooks (Standard Webhooks): a customer's endpoints, the outbox that records every
//! change in the change's own transaction, and the sender that delivers it.
//!
//! - [`event`]: [`Event`], a change as its webhook reports it, and its JSON body.
//! - [`outbox`]: [`Outbox`], which queues an event (one delivery per subscribed endpoint) on
//!   the connection of the change's transaction, on both backends.
//! - [`endpoints`]: [`Webhooks`], what the API calls: create, list, remove, rotate a secret,
//!   test, list deliveries, send one again.
//! - [`sender`]: [`Sender`], the background task that claims due deliveries and sends them.
//! - [`signing`]: Standard Webhooks signatures and `whsec_` secrets.
//! - [`target`]: which URLs and addresses a webhook may reach (server-side request forgery).
//! - [`deliver`]: one signed POST and its outcome (status, latency, the start of the answer).
//! - [`retry`]: when a failed delivery is tried again (back-off with jitter, 24 hours).
//!
//! Who writes events: [`crate::channels::ChannelBook`] (a channel linked, linked again,
//! disconnected), the message store (a text sent or failed), and the pairing engine (a session
//! failed; a session is not stored, so its event is the one write of that change).

pub mod deliver;
pub mod endpoints;
pub mod event;
pub mod outbox;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod target;

pub use endpoints::{WebhookError, Webhooks};
pub use event::Event;
pub(crate) use outbox::Outbox;
pub use sender::{Sender, SenderConfig};

use crate::domain::AccountId;
use crate::store::{BeginWrite, Store, StoreError, on_pool};

/// Queues `event` for `account` in a transaction of its own: for changes that write nothing
/// else (a pairing session's end).
pub async fn record(store: &Store, account: AccountId, event: &Event) -> Result<(), StoreError> {
    let queued = on_pool!(store, |pool| {
        let mut tx = pool.begin_write().await?;
        let queued = tx.enqueue(account, event).await?;
        tx.commit().await?;
        queued
    });
    if queued {
        store.wake_outbox();
    }
    Ok(())
}
