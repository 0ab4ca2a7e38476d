use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keebai_protocol::{
    ConnectedEvent, DisconnectedEvent, FailedEvent, FailureCode, QrEvent, StreamEvent,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::linker::{Attempt, LinkerEvent, Report};
use super::registry::Shared;
use super::state::SessionState;
use crate::channels::{Channel, NewLink};
use crate::domain::{
    AccountId, ChannelId, ChannelName, PhoneNumber, SessionId, WallAnchor, rfc3339_millis,
};

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
    anchor: WallAnchor,
    window_end: Instant,
}

fn failed(code: FailureCode, reason: impl Into<String>) -> StreamEvent {
    StreamEvent::Failed(FailedEvent { code, reason: reason.into() })
}

/// A deadline that never comes, for `select!` arms that are disabled.
fn never() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

impl SessionDriver {
    pub(super) fn new(
        shared: Arc<Shared>,
        id: SessionId,
        account: AccountId,
        name: ChannelName,
        state: watch::Sender<SessionState>,
        cancel: CancellationToken,
        fence: Option<CancellationToken>,
    ) -> Self {
        let window_end = Instant::now() + shared.config.window;
        let anchor = WallAnchor::now();
        Self { shared, id, account, name, state, cancel, fence, anchor, window_end }
    }

    pub(super) async fn run(self) {
        let outcome = self.pair().await;
        tracing::info!(session = %self.id, outcome = outcome.name().as_str(), "pairing session ended");
        self.publish(outcome);
        self.shared.session_ended(self.account);
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
    async fn pair(&self) -> StreamEvent {
        let linker = &self.shared.linker;
        let mut scanned_at: Option<Instant> = None;
        let mut number = 0;
        loop {
            number += 1;
            let attempt_cancel = self.cancel.child_token();
            // Whatever way this attempt ends (terminal event, exhaustion, cancel), it is stopped.
            let _stop_attempt = attempt_cancel.clone().drop_guard();
            let (attempt, mut reports) = Attempt::new(self.id.clone(), number, attempt_cancel);
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
                    report = reports.next() => match report {
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
