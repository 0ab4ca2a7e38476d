//! [`LiveChannels`]: the boundary to whatever keeps paired channels connected and sends on them.

use futures::future::BoxFuture;

use super::channel::{Channel, LinkerKind};
use crate::domain::{ChannelId, MessageId, MessageText, PhoneNumber};

/// Why a text could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 409: the device is no longer linked (logged out or unlinked on the phone).
    #[error("the channel is not logged in")]
    NotLoggedIn,
    /// 503: the device is linked but not connected right now (reconnecting, network down).
    #[error("the channel is not connected yet")]
    NotConnected,
    /// 500: anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Paired channels at run time, as one linker keeps them: the whatsapp linker's clients (each
/// watched until the phone logs out or the server stops), or the simulated phone's inboxes.
/// Pairing hands channels over to it; [`Channels`](super::Channels) sends through it.
pub trait LiveChannels: Send + Sync + 'static {
    /// The linker whose channels these are.
    fn kind(&self) -> LinkerKind;

    /// Sends a text on a channel this linker paired.
    fn send_text<'a>(
        &'a self,
        channel: &'a Channel,
        id: &'a MessageId,
        to: &'a PhoneNumber,
        text: &'a MessageText,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    /// Cluster mode: this server now holds the channel's lease, so it keeps the channel live.
    /// Starting a channel that is live already changes nothing.
    fn start<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, ()>;

    /// Cluster mode: hands a channel over: stops its connection and waits until it has closed
    /// (and flushed what it keeps), so that the next holder starts from a settled state.
    fn stop_one<'a>(&'a self, id: &'a ChannelId) -> BoxFuture<'a, ()>;

    /// Cluster mode: whether this server keeps the channel live right now.
    fn is_live(&self, id: &ChannelId) -> bool;

    /// Stops every channel's connection and waits until each has closed (at server shutdown,
    /// after pairing has stopped). Nothing is live afterwards.
    fn stop(&self) -> BoxFuture<'_, ()>;
}
