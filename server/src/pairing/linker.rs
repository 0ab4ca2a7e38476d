use std::time::Duration;

use futures::SinkExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use keebai_protocol::{DisconnectCode, FailureCode};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::channels::{Channel, LinkerKind};
use crate::domain::{ChannelId, PhoneNumber, SessionId};

/// What one pairing attempt reports to the engine before it links, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkerEvent {
    /// A code to show, accepted by WhatsApp for `ttl` from now.
    Qr { code: String, ttl: Duration },
    /// After [`Control::PairCode`]: the code to type on the phone (eight characters, as
    /// WhatsApp gives it), accepted for `ttl` from now. A new one follows when it expires.
    PairingCode { code: String, ttl: Duration },
    /// After [`Control::PairCode`]: WhatsApp gave no code (too many requests, or the feature
    /// is not available to this number); the attempt goes on as before.
    CodeRefused { reason: String },
    /// The phone scanned a code; WhatsApp is establishing the session.
    Scanned,
    /// The attempt failed for good (the engine ends the session).
    Failed { code: FailureCode, reason: String },
    /// The device was linked and then removed again.
    Disconnected { code: DisconnectCode, reason: String },
    /// This attempt has shown all its codes (WhatsApp gives about 160 s of them per connection).
    /// The engine starts a new attempt while the pairing window is open.
    Exhausted,
}

impl LinkerEvent {
    /// After this event the attempt has nothing more to say.
    pub fn is_last(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Disconnected { .. } | Self::Exhausted)
    }
}

/// What travels from an attempt to its session: progress, or the one hand-over of a linked
/// device with the reply channel that says whether its channel was saved (dropped unsent: it
/// was not).
#[derive(Debug)]
pub enum Report {
    Event(LinkerEvent),
    Linked { phone_number: PhoneNumber, push_name: String, saved: oneshot::Sender<Channel> },
}

/// The engine stopped listening to this attempt (cancel, expiry, shutdown, or it has what it
/// needs): stop and release what the attempt holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pairing session no longer listens to this attempt")]
pub struct Gone;

/// What the engine asks of a running attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Link by phone number instead of QR: ask WhatsApp for a code for `phone`, report it as
    /// [`LinkerEvent::PairingCode`], stop offering QR codes, and keep a fresh code coming until
    /// the attempt ends.
    PairCode { phone: PhoneNumber },
}

/// One pairing attempt handed to a linker.
#[derive(Debug)]
pub struct Attempt {
    pub session_id: SessionId,
    /// 1 for the first attempt of a session, then 2, 3, … after each exhaustion.
    pub number: u32,
    /// The id the channel gets if this attempt links a phone the account does not have yet.
    /// A linker that keeps per-device state names it after this id, so a new channel needs no
    /// rename (see [`Attempt::linked`]).
    pub device: ChannelId,
    /// Fires on cancel, expiry, shutdown or once the engine has what it needs. The attempt must
    /// then stop promptly and release what it holds.
    pub cancel: CancellationToken,
    /// What the engine asks of the attempt while it runs.
    pub control: mpsc::Receiver<Control>,
    /// (A `futures` channel allocates per message; tokio's allocates a 32-slot block per
    /// channel up front, which is 1.5 KiB per live session.)
    reports: mpsc::Sender<Report>,
}

impl Attempt {
    /// A new attempt, the receiving end of its reports, and the sending end of its controls
    /// (the engine's, or a test's).
    pub fn new(
        session_id: SessionId,
        number: u32,
        cancel: CancellationToken,
    ) -> (Self, mpsc::Receiver<Report>, mpsc::Sender<Control>) {
        let (reports, receiver) = mpsc::channel(8);
        let (controls, control) = mpsc::channel(1);
        let device = ChannelId::generate();
        let attempt = Self { session_id, number, device, cancel, control, reports };
        (attempt, receiver, controls)
    }

    /// Reports progress. `Err(Gone)`: nobody listens any more; stop.
    pub async fn report(&mut self, event: LinkerEvent) -> Result<(), Gone> {
        self.reports.send(Report::Event(event)).await.map_err(|_| Gone)
    }

    /// Hands the linked device over: the engine records its channel and answers with it.
    /// `Some(channel)`: the channel's id is `device` for a new phone, or the existing channel's
    /// when the phone was linked before; the device now serves it. `None`: nothing was saved
    /// (the store failed, or the session ended meanwhile); release the device.
    ///
    /// It takes the attempt: a device is handed over at most once, and a linked attempt
    /// reports nothing else.
    pub async fn linked(mut self, phone_number: PhoneNumber, push_name: String) -> Option<Channel> {
        let (saved, channel) = oneshot::channel();
        let report = Report::Linked { phone_number, push_name, saved };
        self.reports.send(report).await.ok()?;
        channel.await.ok()
    }
}

/// The WhatsApp side of pairing. Implementations are `whatsapp` (whatsapp-rust) and
/// `simulated`; the engine and the API never know which one runs. What happens to a channel
/// after pairing is [`LiveChannels`](crate::channels::LiveChannels)' business.
pub trait Linker: Send + Sync + 'static {
    fn kind(&self) -> LinkerKind;

    /// One attempt, from its first code to its end. The engine runs the future as a task it
    /// owns and waits for at shutdown. The attempt reports through [`Attempt::report`], ends
    /// after `Failed`, `Disconnected` or `Exhausted`, after [`Attempt::linked`] (once the
    /// device serves its channel or is released), or promptly after `attempt.cancel` fires,
    /// having released what it holds.
    fn attempt(&self, attempt: Attempt) -> BoxFuture<'static, ()>;

    /// How long the engine waits for an attempt's first QR before failing the session with
    /// `whatsapp_unreachable`. `None` when the linker needs no such deadline.
    fn first_qr_timeout(&self) -> Option<Duration>;
}
