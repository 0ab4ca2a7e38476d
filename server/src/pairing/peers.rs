//! [`Peers`]: the other servers of a cluster, as the engine sees them.
//!
//! On one server (SQLite) there are none and the engine keeps every session to itself. In cluster
//! mode (Postgres) the server that creates a session runs it (its linker, its deadlines), and
//! `Peers` makes the session visible everywhere else: its events are written in order for every
//! server to replay, and a cancel that reaches another server is carried to this one.

use futures::future::BoxFuture;
use keebai_protocol::StreamEvent;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::answers::{CodeGranted, PairingError};
use super::state::SessionState;
use crate::domain::{AccountId, ChannelId, PhoneNumber, SessionId};

/// Another server's session, replayed here: kept up to date while this value lives.
pub struct Replica {
    pub state: watch::Receiver<SessionState>,
    /// Dropped with the last subscriber: this server stops following the session.
    pub following: Box<dyn Send + Sync>,
}

/// What the engine needs from the other servers of its cluster. An error means the cluster
/// (its database) cannot be reached right now: the engine logs it and answers 503.
pub trait Peers: Send + Sync + 'static {
    /// Makes a session created here known to every server, before its id is handed out (a
    /// client may open its stream on another server right away).
    fn created<'a>(
        &'a self,
        id: &'a SessionId,
        account: AccountId,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// A session that runs here published `event` as its event `seq`. Returns at once; the
    /// events of a session reach the other servers in order, each once.
    fn published(&self, id: &SessionId, seq: u64, event: &StreamEvent);

    /// A session of `account` that another server runs, replayed here. `None`: there is no such
    /// session of that account.
    fn replica<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
    ) -> BoxFuture<'a, anyhow::Result<Option<Replica>>>;

    /// Asks the server that runs a session of `account` to cancel it. `false`: there is no
    /// such session of that account.
    fn cancel<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// Asks the server that runs a session of `account` for a pairing code for `phone`.
    /// `None`: there is no such session of that account.
    fn request_code<'a>(
        &'a self,
        account: AccountId,
        id: &'a SessionId,
        phone: &'a PhoneNumber,
    ) -> BoxFuture<'a, anyhow::Result<Option<Result<CodeGranted, PairingError>>>>;

    /// A device linked on this server and its channel is saved: the channel runs here (the
    /// server that held it before, if any, hands it over first). Called before `connected`.
    fn linked<'a>(&'a self, channel: &'a ChannelId) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Fires when this server can no longer speak for its sessions (it could not renew its
    /// lease, so the others treat it as gone): the sessions it runs end with `owner_lost`, and
    /// it starts none until the token is replaced by a live one.
    fn fence(&self) -> CancellationToken;
}
