//! [`Channels`]: what the API does with paired channels: read them, send on them, unlink them.

use std::sync::Arc;

use keebai_protocol::ChannelStatus;

use super::book::ChannelBook;
use super::channel::{Channel, Unlinked};
use super::live::{LiveChannels, SendError};
use super::placement::{ForwardError, ForwardedSend, Placement, Runs, SendOutcome};
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
    /// 503, cluster mode: the server that runs the channel took the message but did not
    /// confirm it in time, so it may have been sent.
    #[error("the message was not confirmed")]
    Unconfirmed,
    /// 503, cluster mode: where the channel runs could not be learned (logged where it
    /// happened).
    #[error("the cluster is unavailable")]
    ClusterUnavailable,
}

/// The channels of every account, joined with the linker that keeps them live, so that the API
/// never decides which linker to call. Cheap to clone.
#[derive(Clone)]
pub struct Channels {
    book: ChannelBook,
    store: Store,
    live: Arc<dyn LiveChannels>,
    /// Cluster mode: which server runs each channel.
    placement: Option<Arc<dyn Placement>>,
}

impl Channels {
    pub fn new(book: ChannelBook, store: Store, live: Arc<dyn LiveChannels>) -> Self {
        Self { book, store, live, placement: None }
    }

    /// Cluster mode: each channel is sent on by the server that runs it.
    pub fn in_cluster(
        book: ChannelBook,
        store: Store,
        live: Arc<dyn LiveChannels>,
        placement: Arc<dyn Placement>,
    ) -> Self {
        Self { book, store, live, placement: Some(placement) }
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
        let runs = match &self.placement {
            None => Runs::Here,
            Some(placement) => match placement.runs(&channel.id).await {
                Ok(runs) => runs,
                Err(error) => {
                    tracing::warn!(channel = %channel.id, %error, "could not learn where a channel runs");
                    self.settle(&message_id, false).await;
                    return Err(ChannelError::ClusterUnavailable);
                }
            },
        };
        match (runs, &self.placement) {
            (Runs::On(server), Some(placement)) => {
                let send = ForwardedSend {
                    account_id: account.0,
                    channel_id: channel.id.to_string(),
                    message_id: message_id.to_string(),
                    to: to.to_string(),
                    text: text.as_str().to_owned(),
                };
                match placement.send_on(&server, &send).await {
                    Ok(SendOutcome::Sent) => Ok(message_id),
                    Ok(SendOutcome::NotConnected) => Err(ChannelError::NotConnected),
                    Ok(SendOutcome::NotLoggedIn) => Err(ChannelError::Disconnected),
                    Ok(SendOutcome::Failed) => Err(ChannelError::Send(anyhow::anyhow!(
                        "the server that runs the channel could not send"
                    ))),
                    Err(ForwardError::NotTaken) => {
                        self.settle(&message_id, false).await;
                        Err(ChannelError::NotConnected)
                    }
                    Err(ForwardError::Unconfirmed) => {
                        tracing::warn!(message = %message_id, %server, "a forwarded message was not confirmed in time");
                        Err(ChannelError::Unconfirmed)
                    }
                    Err(ForwardError::Database(error)) => {
                        tracing::warn!(message = %message_id, %error, "could not forward a message");
                        Err(ChannelError::ClusterUnavailable)
                    }
                }
            }
            (Runs::Here, _) => match self.send_here(&channel, &message_id, to, text).await {
                SendOutcome::Sent => Ok(message_id),
                SendOutcome::NotConnected => Err(ChannelError::NotConnected),
                SendOutcome::NotLoggedIn => Err(ChannelError::Disconnected),
                SendOutcome::Failed => {
                    Err(ChannelError::Send(anyhow::anyhow!("the linked device could not send")))
                }
            },
            (Runs::Nowhere | Runs::On(_), _) => {
                self.settle(&message_id, false).await;
                Err(ChannelError::NotConnected)
            }
        }
    }

    /// Cluster mode: sends a message that another server recorded, on a channel this server
    /// runs.
    pub async fn send_forwarded(&self, send: ForwardedSend) -> SendOutcome {
        let parsed = (
            ChannelId::parse(&send.channel_id),
            MessageId::parse(&send.message_id),
            PhoneNumber::parse(&send.to),
            MessageText::parse(&send.text),
        );
        let (Ok(id), Ok(message_id), Ok(to), Ok(text)) = parsed else {
            tracing::error!("another server forwarded a malformed message");
            return SendOutcome::Failed;
        };
        match self.book.get(AccountId(send.account_id), &id).await {
            Ok(Some(channel)) => self.send_here(&channel, &message_id, &to, &text).await,
            Ok(None) => SendOutcome::NotConnected,
            Err(error) => {
                tracing::warn!(%error, "could not read a channel to send a forwarded message");
                SendOutcome::NotConnected
            }
        }
    }

    /// Sends on a channel that this server keeps live, and records the outcome.
    async fn send_here(
        &self,
        channel: &Channel,
        message_id: &MessageId,
        to: &PhoneNumber,
        text: &MessageText,
    ) -> SendOutcome {
        let sent = self.live.send_text(channel, message_id, to, text).await;
        // The outcome is kept if the store allows; the message has gone (or not) either way.
        self.settle(message_id, sent.is_ok()).await;
        match sent {
            Ok(()) => SendOutcome::Sent,
            Err(SendError::NotLoggedIn) => {
                if let Err(error) = self.book.unlink(&channel.id, Unlinked::NotLoggedIn).await {
                    tracing::warn!(channel = %channel.id, %error, "could not mark a logged-out channel disconnected");
                }
                SendOutcome::NotLoggedIn
            }
            Err(SendError::NotConnected) => SendOutcome::NotConnected,
            Err(SendError::Other(error)) => {
                tracing::error!(channel = %channel.id, error = ?error, "sending failed");
                SendOutcome::Failed
            }
        }
    }

    /// Records a message's outcome, if the store allows.
    async fn settle(&self, id: &MessageId, sent: bool) {
        if let Err(error) = self.store.set_message_status(id, sent).await {
            tracing::warn!(message = %id, %error, "could not record a message's outcome");
        }
    }

    /// The simulated phone removed the linked device. `false` when no channel has that id.
    pub async fn unlink_simulated(&self, id: &ChannelId) -> Result<bool, StoreError> {
        self.book.unlink(id, Unlinked::Simulated).await
    }
}
