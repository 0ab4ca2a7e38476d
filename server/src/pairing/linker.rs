use std::time::Duration;

use futures::channel::mpsc;
use futures::future::BoxFuture;
use keebai_protocol::{DisconnectCode, FailureCode};
use tokio_util::sync::CancellationToken;

use crate::domain::{ChannelId, MessageId, MessageText, PhoneNumber, SessionId};
use crate::store::ChannelRecord;

/// Which implementation links devices. Stored with each channel: only the linker that paired a
/// channel can send on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkerKind {
    /// whatsapp-rust, a real WhatsApp linked device.
    Whatsapp,
    /// The declared test and demo device.
    Simulated,
}

impl LinkerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Simulated => "simulated",
        }
    }
}

/// What one pairing attempt reports to the engine, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkerEvent {
    /// A code to show, accepted by WhatsApp for `ttl` from now.
    Qr { code: String, ttl: Duration },
    /// The phone scanned a code; WhatsApp is establishing the session.
    Scanned,
    /// The device is linked to this phone.
    Linked { phone_number: PhoneNumber, push_name: String },
    /// The attempt failed for good (the engine ends the session).
    Failed { code: FailureCode, reason: String },
    /// The device was linked and then removed again.
    Disconnected { code: DisconnectCode, reason: String },
    /// This attempt has shown all its codes (WhatsApp gives about 160 s of them per connection).
    /// The engine starts a new attempt while the pairing window is open.
    Exhausted,
}

/// One pairing attempt handed to a linker.
#[derive(Debug)]
pub struct Attempt {
    pub session_id: SessionId,
    /// 1 for the first attempt of a session, then 2, 3, … after each exhaustion.
    pub number: u32,
    /// The id the channel gets if this attempt links a phone the account does not have yet.
    /// A linker that keeps per-device state names it after this id, so a new channel needs no
    /// rename (see [`Linker::settle`]).
    pub device: ChannelId,
    /// Where to report (`futures::SinkExt::send`). A send error means the engine no longer
    /// listens: stop. (A `futures` channel allocates per message; tokio's allocates a 32-slot
    /// block per channel up front, which is 1.5 KiB per live session.)
    pub events: mpsc::Sender<LinkerEvent>,
    /// Fires on cancel, expiry, shutdown or once the engine has what it needs. The attempt must
    /// then stop promptly and release what it holds.
    pub cancel: CancellationToken,
}

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

/// The WhatsApp side of pairing and of paired channels. Implementations are `whatsapp`
/// (whatsapp-rust) and `simulated`; the engine and the API never know which one runs.
pub trait Linker: Send + Sync + 'static {
    fn kind(&self) -> LinkerKind;

    /// Starts one attempt in the background and returns at once. The attempt reports through
    /// `attempt.events` and ends after `Failed`, `Disconnected`, `Linked` or `Exhausted`, or when
    /// `attempt.cancel` fires.
    fn start(&self, attempt: Attempt);

    /// How long the engine waits for an attempt's first QR before failing the session with
    /// `whatsapp_unreachable`. `None` when the linker needs no such deadline.
    fn first_qr_timeout(&self) -> Option<Duration>;

    /// After an attempt reported `Linked`, the engine saved its channel (`Some`, whose id is
    /// `device` for a new phone or the existing channel's id when the phone is linked again) or
    /// could not (`None`: release the device). Called exactly once per `Linked`.
    fn settle<'a>(
        &'a self,
        device: &'a ChannelId,
        channel: Option<&'a ChannelRecord>,
    ) -> BoxFuture<'a, ()> {
        let _ = (device, channel);
        Box::pin(async {})
    }

    /// Stops every live connection cleanly (at server shutdown, after the HTTP server).
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Sends a text on a channel this linker paired.
    fn send_text<'a>(
        &'a self,
        channel: &'a ChannelRecord,
        id: &'a MessageId,
        to: &'a PhoneNumber,
        text: &'a MessageText,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}
