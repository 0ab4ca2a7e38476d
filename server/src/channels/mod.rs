//! Paired channels at run time: sending on them and following their link status.
//!
//! The store keeps what a channel is; the linker that paired it is the only one that can reach it.
//! [`Channels`] joins the two so that the API never decides which linker to call.

use std::sync::Arc;

use keebai_protocol::ChannelStatus;

use crate::domain::{AccountId, ChannelId, MessageId, MessageText, PhoneNumber};
use crate::pairing::{Linker, SendError};
use crate::store::{ChannelRecord, Store, StoreError};

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

/// Channel operations; cheap to clone.
#[derive(Clone)]
pub struct Channels {
    store: Store,
    linker: Arc<dyn Linker>,
}

impl Channels {
    pub fn new(store: Store, linker: Arc<dyn Linker>) -> Self {
        Self { store, linker }
    }

    /// One of the account's channels.
    pub async fn get(
        &self,
        account: AccountId,
        id: &ChannelId,
    ) -> Result<ChannelRecord, ChannelError> {
        self.store.get_channel(account, id).await?.ok_or(ChannelError::NotFound)
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
        if channel.linker != self.linker.kind().as_str() {
            return Err(ChannelError::NotConnected);
        }
        let message_id = MessageId::generate();
        // Recorded first: what cannot be recorded is not sent (the caller gets 503 and may
        // retry without sending twice).
        self.store.record_outgoing_message(&message_id, &channel.id, to, text).await?;
        let sent = self.linker.send_text(&channel, &message_id, to, text).await;
        // The outcome is kept if the store allows; the message has gone (or not) either way.
        if let Err(error) = self.store.set_message_status(&message_id, sent.is_ok()).await {
            tracing::warn!(message = %message_id, %error, "could not record a message's outcome");
        }
        match sent {
            Ok(()) => Ok(message_id),
            Err(SendError::NotLoggedIn) => {
                self.store.set_channel_status(&channel.id, ChannelStatus::Disconnected).await?;
                Err(ChannelError::Disconnected)
            }
            Err(SendError::NotConnected) => Err(ChannelError::NotConnected),
            Err(SendError::Other(error)) => Err(ChannelError::Send(error)),
        }
    }

    /// The phone removed the linked device: the channel shows `disconnected` from now on.
    /// `false` when no channel has that id.
    pub async fn mark_unlinked(&self, id: &ChannelId) -> Result<bool, StoreError> {
        let found = self.store.set_channel_status(id, ChannelStatus::Disconnected).await?;
        if found {
            tracing::info!(channel = %id, "channel unlinked from the phone");
        }
        Ok(found)
    }
}
