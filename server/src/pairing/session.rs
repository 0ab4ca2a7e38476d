use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use keebai_protocol::{
    ConnectedEvent, DisconnectedEvent, FailedEvent, FailureCode, PairingCodeEvent, QrEvent,
    StreamEvent,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::answers::{CodeGranted, MAX_CODE_NUMBERS, PairingError};
use super::linker::{Attempt, Control, LinkerEvent, Report};
use super::registry::Command;
use super::registry::Shared;
use super::state::SessionState;
use crate::channels::{Channel, NewLink};
use crate::domain::{
    AccountId, ChannelId, ChannelName, PhoneNumber, SessionId, WallAnchor, grouped_code, never,
    rfc3339_millis,
};
use crate::webhooks::{self, Event};

/// How long `connected` waits for a linked device to start serving its channel (closing a
/// previous device of the same phone takes about a second).
const HAND_OVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Drives one session from creation to its terminal event, then keeps that event replayable for
/// `replay` and removes the session.
pub(super) struct SessionDriver {
    shared: Arc<Shared>,
    id: SessionId,
    account: AccountId,
    name: ChannelName,
    state: watch::Sender<SessionState>,
    cancel: CancellationToken,
    /// In a cluster: fires when this server lost its lease (see [`super::Peers::fence`]).
    fence: Option<CancellationToken>,
    /// The engine's requests (taken by [`SessionDriver::run`]).
    commands: Option<mpsc::Receiver<Command>>,
    anchor: WallAnchor,
    window_end: Instant,
}

/// How a driver is connected to its engine.
pub(super) struct Wiring {
    /// Where it publishes the session's state.
    pub(super) state: watch::Sender<SessionState>,
    /// Cancel (DELETE) and shutdown.
    pub(super) cancel: CancellationToken,
    /// In a cluster: this server's lease lapsed.
    pub(super) fence: Option<CancellationToken>,
    /// The engine's requests (a pairing code).
    pub(super) commands: mpsc::Receiver<Command>,
}

fn failed(code: FailureCode, reason: impl Into<String>) -> StreamEvent {
    StreamEvent::Failed(FailedEvent { code, reason: reason.into() })
}

/// A session that links by phone number: the number, how many numbers it asked codes for,
/// the current code, and who waits for the next one.
struct CodeMode {
    phone: PhoneNumber,
    numbers: u32,
    current: Option<(CodeGranted, Instant)>,
    waiting: Vec<oneshot::Sender<Result<CodeGranted, PairingError>>>,
}

impl SessionDriver {
    pub(super) fn new(
        shared: Arc<Shared>,
        id: SessionId,
        account: AccountId,
        name: ChannelName,
        wiring: Wiring,
    ) -> Self {
        let window_end = Instant::now() + shared.config.window;
        let anchor = WallAnchor::now();
        let Wiring { state, cancel, fence, commands } = wiring;
        let commands = Some(commands);
        Self { shared, id, account, name, state, cancel, fence, commands, anchor, window_end }
    }

    pub(super) async fn run(mut self) {
        let mut commands = self.commands.take();
        let outcome = match &mut commands {
            Some(commands) => self.pair(commands).await,
            None => self.pair(&mut mpsc::channel(0).1).await,
        };
        // Requests that come while the terminal event replays are answered: not waiting.
        drop(commands);
        tracing::info!(session = %self.id, outcome = outcome.name().as_str(), "pairing session ended");
        // `server_shutdown` is not reported: the server is stopping (its store with it), and
        // the session's failure says nothing about the customer's pairing.
        let failed = match &outcome {
            StreamEvent::Failed(failed) if failed.code != FailureCode::ServerShutdown => {
                Some(Event::pairing_failed(&self.id, failed.code, &failed.reason))
            }
            _ => None,
        };
        self.publish(outcome);
        self.shared.session_ended(self.account);
        // A session is not stored: the outbox row is the one durable record of its failure.
        // Written beside the replay rather than before it, so that the session's end (its
        // slot, its replay time) never waits for the store.
        if let Some(event) = failed {
            let (store, id, account) =
                (self.shared.book.store().clone(), self.id.clone(), self.account);
            self.shared.tasks.spawn(async move {
                if let Err(error) = webhooks::record(&store, account, &event).await {
                    tracing::warn!(session = %id, %error, "could not queue the pairing.failed webhook");
                }
            });
        }
        if !self.shared.shutdown.is_cancelled() {
            tokio::select! {
                () = tokio::time::sleep(self.shared.config.replay) => {}
                () = self.shared.shutdown.cancelled() => {}
            }
        }
        self.shared.remove(&self.id);
    }

    fn publish(&self, event: StreamEvent) {
        match &self.shared.peers {
            None => {
                self.state.send_modify(|state| {
                    state.push(event);
                });
            }
            Some(peers) => {
                let mut seq = None;
                self.state.send_modify(|state| seq = state.push(event.clone()));
                if let Some(seq) = seq {
                    peers.published(&self.id, seq, &event);
                }
            }
        }
    }

    /// Resolves when this server lost its cluster lease; never on a server on its own.
    async fn fenced(&self) {
        match &self.fence {
            Some(fence) => fence.cancelled().await,
            None => std::future::pending().await,
        }
    }

    fn stopped(&self) -> StreamEvent {
        if self.shared.shutdown.is_cancelled() {
            failed(
                FailureCode::ServerShutdown,
                "The server is shutting down. Start a new session once it is back.",
            )
        } else {
            failed(FailureCode::Cancelled, "The pairing session was cancelled.")
        }
    }

    /// Runs attempts until one ends the session; returns the terminal event.
    async fn pair(&self, commands: &mut mpsc::Receiver<Command>) -> StreamEvent {
        let linker = &self.shared.linker;
        let mut scanned_at: Option<Instant> = None;
        let mut code: Option<CodeMode> = None;
        let mut number = 0;
        loop {
            number += 1;
            let attempt_cancel = self.cancel.child_token();
            // Whatever way this attempt ends (terminal event, exhaustion, cancel), it is stopped.
            let _stop_attempt = attempt_cancel.clone().drop_guard();
            let (attempt, mut reports, mut controls) =
                Attempt::new(self.id.clone(), number, attempt_cancel);
            // A new attempt of a session that links by code asks for a code at once.
            if let Some(mode) = &code {
                let _ = controls.try_send(Control::PairCode { phone: mode.phone.clone() });
            }
            let device = attempt.device.clone();
            let running = self.shared.tasks.spawn(linker.attempt(attempt));
            let first_qr_timeout = linker.first_qr_timeout();
            let mut first_qr_deadline = first_qr_timeout.map(|t| Instant::now() + t);
            let mut saw_qr = false;
            loop {
                let link_deadline = scanned_at.map(|at| at + self.shared.config.link_timeout);
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return self.stopped(),
                    () = self.fenced() => {
                        return failed(FailureCode::OwnerLost, "This server lost its connection to the cluster's database and can no longer run this session. Start a new session.");
                    }
                    () = sleep_until(self.window_end), if scanned_at.is_none() => {
                        return failed(FailureCode::Expired, "The QR code was not scanned in time. Start again to get a new one.");
                    }
                    () = sleep_until(link_deadline.unwrap_or_else(never)), if link_deadline.is_some() => {
                        return failed(FailureCode::LinkTimeout, "The phone scanned the code but linking did not finish in time. Try again.");
                    }
                    () = sleep_until(first_qr_deadline.unwrap_or_else(never)), if first_qr_deadline.is_some() => {
                        let secs = first_qr_timeout.unwrap_or_default().as_secs();
                        return failed(
                            FailureCode::WhatsappUnreachable,
                            format!("WhatsApp's servers could not be reached: no QR code arrived within {secs} s. Check the server's network access to WhatsApp."),
                        );
                    }
                    Some(command) = commands.next() => match command {
                        Command::PairCode { phone, reply } => {
                            let answer = self.code_requested(&mut code, scanned_at.is_some(), phone, reply);
                            if let Some(phone) = answer {
                                let _ = controls.try_send(Control::PairCode { phone });
                            }
                        }
                    },
                    report = reports.next() => match report {
                        Some(Report::Event(LinkerEvent::PairingCode { code: typed, ttl })) => {
                            first_qr_deadline = None;
                            if let Some(mode) = &mut code && scanned_at.is_none() {
                                let expires = (Instant::now() + ttl).min(self.window_end);
                                let granted = CodeGranted {
                                    code: grouped_code(&typed),
                                    expires_at: rfc3339_millis(self.anchor.wall_at(expires)),
                                };
                                self.publish(StreamEvent::PairingCode(PairingCodeEvent {
                                    code: granted.code.clone(),
                                    phone_number: mode.phone.to_string(),
                                    expires_at: granted.expires_at.clone(),
                                }));
                                for waiting in mode.waiting.drain(..) {
                                    let _ = waiting.send(Ok(granted.clone()));
                                }
                                mode.current = Some((granted, expires));
                            }
                        }
                        Some(Report::Event(LinkerEvent::CodeRefused { reason })) => {
                            if let Some(mode) = &mut code {
                                for waiting in mode.waiting.drain(..) {
                                    let _ = waiting.send(Err(PairingError::CodeRefused(reason.clone())));
                                }
                                // Nothing was shown yet: the session goes on with QR codes.
                                if mode.current.is_none() {
                                    code = None;
                                }
                            }
                        }
                        Some(Report::Event(LinkerEvent::Qr { code: _, ttl: _ })) if code.is_some() => {
                            saw_qr = true;
                            first_qr_deadline = None;
                        }
                        Some(Report::Event(LinkerEvent::Qr { code, ttl })) => {
                            saw_qr = true;
                            first_qr_deadline = None;
                            if scanned_at.is_none() {
                                let expires = (Instant::now() + ttl).min(self.window_end);
                                let expires_at = rfc3339_millis(self.anchor.wall_at(expires));
                                self.publish(StreamEvent::Qr(QrEvent { data: code, expires_at: Some(expires_at) }));
                            }
                        }
                        Some(Report::Event(LinkerEvent::Scanned)) => {
                            if scanned_at.is_none() {
                                scanned_at = Some(Instant::now());
                                self.publish(StreamEvent::Connecting);
                            }
                        }
                        Some(Report::Linked { phone_number, push_name, saved }) => {
                            // Boxed: a session waits for codes far longer than it saves, and
                            // the store's future would otherwise size every waiting session.
                            let save = self.save_channel(&device, phone_number, push_name, saved, running);
                            return Box::pin(save).await;
                        }
                        Some(Report::Event(LinkerEvent::Failed { code, reason })) => return failed(code, reason),
                        Some(Report::Event(LinkerEvent::Disconnected { code, reason })) => {
                            return StreamEvent::Disconnected(DisconnectedEvent { code, reason });
                        }
                        // A new attempt keeps codes coming; the client sees no gap.
                        Some(Report::Event(LinkerEvent::Exhausted)) if scanned_at.is_none() => break,
                        Some(Report::Event(LinkerEvent::Exhausted)) => {}
                        None if saw_qr && scanned_at.is_none() => break,
                        None => {
                            tracing::error!(session = %self.id, attempt = number, "linker attempt stopped without an outcome");
                            return failed(FailureCode::Internal, "The WhatsApp client stopped unexpectedly. Try again.");
                        }
                    },
                }
            }
            tracing::debug!(session = %self.id, attempt = number, "codes exhausted, starting a new attempt");
        }
    }

    /// A request for a pairing code. Answers it at once when it can (not waiting any more, too
    /// many numbers, or the current code of the same number); otherwise it waits for the
    /// attempt's code, and the number the attempt must ask for is returned.
    fn code_requested(
        &self,
        code: &mut Option<CodeMode>,
        scanned: bool,
        phone: PhoneNumber,
        reply: oneshot::Sender<Result<CodeGranted, PairingError>>,
    ) -> Option<PhoneNumber> {
        if scanned {
            let _ = reply.send(Err(PairingError::NotWaiting));
            return None;
        }
        match code {
            Some(mode) if mode.phone == phone => {
                match &mode.current {
                    Some((granted, expires)) if *expires > Instant::now() => {
                        let _ = reply.send(Ok(granted.clone()));
                    }
                    // The next code is on its way.
                    _ => mode.waiting.push(reply),
                }
                None
            }
            Some(mode) if mode.numbers >= MAX_CODE_NUMBERS => {
                let _ = reply.send(Err(PairingError::TooManyCodeRequests));
                None
            }
            _ => {
                let numbers = code.as_ref().map_or(0, |mode| mode.numbers) + 1;
                for waiting in code.take().into_iter().flat_map(|mode| mode.waiting) {
                    let _ = waiting.send(Err(PairingError::NotWaiting));
                }
                tracing::info!(session = %self.id, "the session links by phone number");
                *code = Some(CodeMode {
                    phone: phone.clone(),
                    numbers,
                    current: None,
                    waiting: vec![reply],
                });
                Some(phone)
            }
        }
    }

    /// Records the channel of a linked device and answers the attempt; `connected` is
    /// published once the attempt has put the device to work (so that a text sent right after
    /// `connected` finds the channel live).
    async fn save_channel(
        &self,
        device: &ChannelId,
        phone: PhoneNumber,
        push_name: String,
        saved: oneshot::Sender<Channel>,
        attempt: JoinHandle<()>,
    ) -> StreamEvent {
        let link = NewLink {
            account: self.account,
            proposed: device,
            name: &self.name,
            phone: &phone,
            push_name: &push_name,
            linker: self.shared.linker.kind(),
        };
        let channel = match self.shared.book.link(link).await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::error!(session = %self.id, error = ?error, "could not save the linked channel");
                // Dropping `saved` tells the attempt to release its device.
                return failed(
                    FailureCode::Internal,
                    "The phone linked, but the channel could not be saved. Try again.",
                );
            }
        };
        if let Some(peers) = &self.shared.peers
            && let Err(error) = peers.linked(&channel.id).await
        {
            // The channel is saved; the servers' placement runs it within seconds.
            tracing::warn!(session = %self.id, %error, "could not take the lease of a linked channel");
        }
        let connected = StreamEvent::Connected(ConnectedEvent {
            channel_id: channel.id.to_string(),
            phone_number: channel.phone_number.to_string(),
            push_name: channel.push_name.clone(),
        });
        if saved.send(channel).is_ok()
            && tokio::time::timeout(HAND_OVER_TIMEOUT, attempt).await.is_err()
        {
            tracing::warn!(session = %self.id, "the linked device took long to start serving its channel");
        }
        connected
    }
}
