//! [`Channels`]: what the API does with paired channels: read them, send on them, unlink them.

use std::sync::Arc;

use keebai_protocol::ChannelStatus;

use super::book::ChannelBook;
use super::channel::{Channel, Unlinked};
use super::live::{LiveChannels, SendError};
use crate::domain::{AccountId, ChannelId, MessageId, MessageText, PhoneNumber};
use crate::store::{Store, StoreError};

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// 404: no such channel for this account.
    #[error("no such channel")]
    NotFound,
    /// 409: unlinked or logged out on the phone; pair it again.
    #[error("the channel is disconnected")]
    Disconnected,
    /// 503: linked, but not reachable right now (or paired by a linker this server does not run).
    #[error("the channel is not connected right now")]
    NotConnected,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500.
    #[error("sending failed")]
    Send(#[source] anyhow::Error),
}

/// The channels of every account, joined with the linker that keeps them live, so that the API
/// never decides which linker to call. Cheap to clone.
#[derive(Clone)]
pub struct Channels {
    book: ChannelBook,
    store: Store,
    live: Arc<dyn LiveChannels>,
}

impl Channels {
    pub fn new(book: ChannelBook, store: Store, live: Arc<dyn LiveChannels>) -> Self {
        Self { book, store, live }
    }

    /// The book of channel rows (what pairing records a linked device in).
    pub fn book(&self) -> &ChannelBook {
        &self.book
    }

    /// The account's channels, oldest first.
    pub async fn list(&self, account: AccountId) -> Result<Vec<Channel>, ChannelError> {
        Ok(self.book.list(account).await?)
    }

    /// One of the account's channels.
    pub async fn get(&self, account: AccountId, id: &ChannelId) -> Result<Channel, ChannelError> {
        self.book.get(account, id).await?.ok_or(ChannelError::NotFound)
    }

    /// Sends a text on one of the account's channels and records it.
    pub async fn send_text(
        &self,
        account: AccountId,
        id: &ChannelId,
        to: &PhoneNumber,
        text: &MessageText,
    ) -> Result<MessageId, ChannelError> {
        let channel = self.get(account, id).await?;
        if channel.status == ChannelStatus::Disconnected {
            return Err(ChannelError::Disconnected);
        }
        if channel.linker != self.live.kind() {
            return Err(ChannelError::NotConnected);
        }
        let message_id = MessageId::generate();
        // Recorded first: what cannot be recorded is not sent (the caller gets 503 and may
        // retry without sending twice).
        self.store.record_outgoing_message(&message_id, &channel.id, to, text).await?;
        let sent = self.live.send_text(&channel, &message_id, to, text).await;
        // The outcome is kept if the store allows; the message has gone (or not) either way.
        if let Err(error) = self.store.set_message_status(&message_id, sent.is_ok()).await {
            tracing::warn!(message = %message_id, %error, "could not record a message's outcome");
        }
        match sent {
            Ok(()) => Ok(message_id),
            Err(SendError::NotLoggedIn) => {
                self.book.unlink(&channel.id, Unlinked::NotLoggedIn).await?;
                Err(ChannelError::Disconnected)
            }
            Err(SendError::NotConnected) => Err(ChannelError::NotConnected),
            Err(SendError::Other(error)) => Err(ChannelError::Send(error)),
        }
    }

    /// The simulated phone removed the linked device. `false` when no channel has that id.
    pub async fn unlink_simulated(&self, id: &ChannelId) -> Result<bool, StoreError> {
        self.book.unlink(id, Unlinked::Simulated).await
    }
}
