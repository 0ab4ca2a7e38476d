//! [`Placement`]: in cluster mode, which server runs a channel, and a send carried out there.
//!
//! Each connected channel runs on exactly one server (the holder of its lease). A text sent
//! through any server is recorded there, then sent by the holder, which records the outcome.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::domain::ChannelId;

/// Where a channel runs right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    Here,
    /// On the server with this instance id.
    On(String),
    /// Nowhere at this moment (its holder just stopped, or it is being handed over).
    Nowhere,
}

/// A recorded message that the server running its channel is asked to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardedSend {
    pub account_id: i64,
    pub channel_id: String,
    pub message_id: String,
    pub to: String,
    pub text: String,
}

/// What the server running the channel did with a [`ForwardedSend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendOutcome {
    Sent,
    /// It does not run the channel (any more), or the channel is not connected: nothing sent.
    NotConnected,
    /// WhatsApp says the device is logged out: nothing sent, and the channel is disconnected.
    NotLoggedIn,
    /// WhatsApp did not take it (details in that server's log).
    Failed,
}

/// Why a forwarded send has no outcome.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The server that runs the channel never took the request: nothing was sent.
    #[error("the server that runs the channel did not take the message")]
    NotTaken,
    /// It took the request but did not answer in time: the message may have been sent.
    #[error("the server that runs the channel did not confirm the message in time")]
    Unconfirmed,
    #[error(transparent)]
    Database(anyhow::Error),
}

/// Cluster mode's answer to "where does this channel run?".
pub trait Placement: Send + Sync + 'static {
    fn runs<'a>(&'a self, id: &'a ChannelId) -> BoxFuture<'a, anyhow::Result<Runs>>;

    /// Asks `server` to send a recorded message on a channel it runs.
    fn send_on<'a>(
        &'a self,
        server: &'a str,
        send: &'a ForwardedSend,
    ) -> BoxFuture<'a, Result<SendOutcome, ForwardError>>;
}
