//! The widget's logic: a plain state machine, tested natively. The view only renders
//! [`Machine::view`] and performs the [`Effect`]s that [`Machine::apply`] returns.
//!
//! idle → starting → waiting for scan (QR, code and session countdowns) → scanned (linking…)
//! → connected | expired | failed | disconnected; the last three offer "Try again", which
//! starts a new session.

use keebai_protocol::{ConnectResponse, ConnectedEvent, FailureCode, StreamEvent};

/// Milliseconds since the Unix epoch (what `Date.now()` gives in a browser).
pub type Millis = f64;

/// Where a pairing stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing started: offers "Connect WhatsApp".
    Idle,
    /// The session is being created.
    Starting,
    /// Waiting for the phone; `qr` is `None` until the first code arrives.
    WaitingForScan {
        qr: Option<String>,
        code_expires_at: Option<Millis>,
    },
    /// The phone scanned; WhatsApp is linking.
    Scanned,
    Connected(ConnectedEvent),
    /// The pairing window closed without a scan.
    Expired,
    /// Pairing failed; `code` is the stream's failure code (or `start_failed`, `session_lost`).
    Failed {
        code: String,
        reason: String,
    },
    /// The device was removed right after linking.
    Disconnected {
        reason: String,
    },
}

/// What the view must do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `POST` the start URL.
    StartSession,
    /// Open an `EventSource` on this (same-origin) URL.
    OpenStream(String),
    /// Close the `EventSource` (harmless when none is open).
    CloseStream,
    /// Call `on_connected`.
    NotifyConnected(ConnectedEvent),
    /// Call `on_failed` with the code and reason.
    NotifyFailed { code: String, reason: String },
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// "Connect WhatsApp" or "Try again".
    Start,
    /// The start request answered.
    Started { session: ConnectResponse, now: Millis },
    /// The start request failed (network, or an error answer).
    StartFailed { reason: String },
    /// An event from the stream.
    Stream(StreamEvent),
    /// The stream answered 404 on reconnect: the server no longer knows the session.
    StreamLost,
}

/// How the current phase looks, for people and screen readers.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewModel {
    /// The live status sentence (announced politely by screen readers).
    pub status: String,
    /// The QR payload to paint, if a code is live.
    pub qr: Option<String>,
    /// Whole seconds until the code refreshes.
    pub code_seconds_left: Option<u64>,
    /// Whole seconds until the session's window closes.
    pub session_seconds_left: Option<u64>,
    /// The button to show (`Connect WhatsApp` or `Try again`), if any.
    pub action: Option<&'static str>,
    /// Whether a request or linking is in progress.
    pub busy: bool,
    /// A short machine-readable name of the phase, for styling and tests.
    pub phase: &'static str,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    session_expires_at: Option<Millis>,
}

impl Default for Machine {
    fn default() -> Self {
        Self { phase: Phase::Idle, session_expires_at: None }
    }
}

/// An RFC 3339 time as [`Millis`]. In the browser `Date.parse` reads it, which keeps a date
/// library out of the bundle; natively (the machine's tests) the `time` crate does. The browser
/// tests check that both agree on what the server writes.
pub fn parse_millis(rfc3339: &str) -> Option<Millis> {
    #[cfg(target_arch = "wasm32")]
    {
        let at = js_sys::Date::parse(rfc3339);
        (!at.is_nan()).then_some(at)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use time::format_description::well_known::Rfc3339;
        let at = time::OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
        Some((at.unix_timestamp_nanos() / 1_000_000) as f64)
    }
}

fn seconds_until(at: Option<Millis>, now: Millis) -> Option<u64> {
    at.map(|at| ((at - now).max(0.0) / 1000.0).ceil() as u64)
}

impl Machine {
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::WaitingForScan { .. } | Phase::Scanned)
    }

    fn end(&mut self, phase: Phase, notify: Effect) -> Vec<Effect> {
        self.phase = phase;
        self.session_expires_at = None;
        vec![Effect::CloseStream, notify]
    }

    pub fn apply(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Start if self.is_live() => Vec::new(),
            Input::Start => {
                self.phase = Phase::Starting;
                self.session_expires_at = None;
                vec![Effect::CloseStream, Effect::StartSession]
            }
            Input::Started { session, now } if self.phase == Phase::Starting => {
                self.phase = Phase::WaitingForScan { qr: None, code_expires_at: None };
                self.session_expires_at = Some(now + session.expires_in as f64 * 1000.0);
                vec![Effect::OpenStream(session.stream_url)]
            }
            Input::StartFailed { reason } if self.phase == Phase::Starting => {
                let code = "start_failed".to_owned();
                let notify = Effect::NotifyFailed { code: code.clone(), reason: reason.clone() };
                self.end(Phase::Failed { code, reason }, notify)
            }
            Input::Stream(event) if self.is_live() => self.on_event(event),
            Input::StreamLost if self.is_live() => {
                let code = "session_lost".to_owned();
                let reason =
                    "The pairing session was lost (the server restarted). Try again.".to_owned();
                let notify = Effect::NotifyFailed { code: code.clone(), reason: reason.clone() };
                self.end(Phase::Failed { code, reason }, notify)
            }
            // Late answers and events of an ended session change nothing.
            Input::Started { .. }
            | Input::StartFailed { .. }
            | Input::Stream(_)
            | Input::StreamLost => Vec::new(),
        }
    }

    fn on_event(&mut self, event: StreamEvent) -> Vec<Effect> {
        match event {
            StreamEvent::Qr(qr) => {
                if let Phase::WaitingForScan { .. } = self.phase {
                    let code_expires_at = qr.expires_at.as_deref().and_then(parse_millis);
                    self.phase = Phase::WaitingForScan { qr: Some(qr.data), code_expires_at };
                }
                Vec::new()
            }
            // Linking by phone number is asked for through the API; the widget's own way to ask
            // (and to show the code) is not built yet, so it keeps what it shows.
            StreamEvent::PairingCode(_) => Vec::new(),
            StreamEvent::Connecting => {
                self.phase = Phase::Scanned;
                Vec::new()
            }
            StreamEvent::Connected(channel) => {
                let notify = Effect::NotifyConnected(channel.clone());
                self.end(Phase::Connected(channel), notify)
            }
            StreamEvent::Failed(failed) => {
                let code = failed.code.as_str().to_owned();
                let notify =
                    Effect::NotifyFailed { code: code.clone(), reason: failed.reason.clone() };
                let phase = if failed.code == FailureCode::Expired {
                    Phase::Expired
                } else {
                    Phase::Failed { code, reason: failed.reason }
                };
                self.end(phase, notify)
            }
            StreamEvent::Disconnected(disconnected) => {
                let notify = Effect::NotifyFailed {
                    code: disconnected.code.as_str().to_owned(),
                    reason: disconnected.reason.clone(),
                };
                self.end(Phase::Disconnected { reason: disconnected.reason }, notify)
            }
        }
    }

    /// How it looks at `now`.
    pub fn view(&self, now: Millis) -> ViewModel {
        let session_seconds_left = seconds_until(self.session_expires_at, now);
        let base = ViewModel {
            status: String::new(),
            qr: None,
            code_seconds_left: None,
            session_seconds_left: None,
            action: None,
            busy: false,
            phase: "idle",
        };
        match &self.phase {
            Phase::Idle => ViewModel {
                status: "Link a WhatsApp number by scanning a QR code with your phone.".into(),
                action: Some("Connect WhatsApp"),
                ..base
            },
            Phase::Starting => ViewModel { status: "Preparing a code…".into(), busy: true, phase: "starting", ..base },
            Phase::WaitingForScan { qr: None, .. } => ViewModel {
                status: "Waiting for a code from WhatsApp…".into(),
                busy: true,
                session_seconds_left,
                phase: "waiting",
                ..base
            },
            Phase::WaitingForScan { qr: Some(qr), code_expires_at } => ViewModel {
                status: "Scan this code with WhatsApp on your phone: Settings › Linked devices › Link a device."
                    .into(),
                qr: Some(qr.clone()),
                code_seconds_left: seconds_until(*code_expires_at, now),
                session_seconds_left,
                phase: "waiting",
                ..base
            },
            Phase::Scanned => ViewModel {
                status: "Scanned. Linking your phone…".into(),
                busy: true,
                phase: "scanned",
                ..base
            },
            Phase::Connected(channel) => {
                let name = if channel.push_name.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", channel.push_name)
                };
                ViewModel {
                    status: format!("Connected: {}{name}.", channel.phone_number),
                    phase: "connected",
                    ..base
                }
            }
            Phase::Expired => ViewModel {
                status: "The code expired before it was scanned.".into(),
                action: Some("Try again"),
                phase: "expired",
                ..base
            },
            Phase::Failed { reason, .. } => {
                ViewModel { status: reason.clone(), action: Some("Try again"), phase: "failed", ..base }
            }
            Phase::Disconnected { reason } => {
                ViewModel { status: reason.clone(), action: Some("Try again"), phase: "disconnected", ..base }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use keebai_protocol::{DisconnectCode, DisconnectedEvent, FailedEvent, QrEvent};

    use super::*;

    #[test]
    fn times_read_natively_as_the_browser_reads_them() {
        // The same figures as the browser test `the_browser_reads_the_servers_times_…`.
        assert_eq!(parse_millis("2026-11-25T10:00:00.000Z"), Some(1_795_600_800_000.0));
        assert_eq!(parse_millis("2026-11-25T10:00:00.250Z"), Some(1_795_600_800_250.0));
        assert_eq!(parse_millis("not a time"), None);
    }

    const NOW: Millis = 1_800_000_000_000.0;

    fn session() -> ConnectResponse {
        ConnectResponse {
            session_id: "qrs_1".into(),
            stream_url: "/widget/sessions/qrs_1/stream".into(),
            expires_in: 300,
        }
    }

    fn qr(data: &str, expires_at: Option<&str>) -> Input {
        Input::Stream(StreamEvent::Qr(QrEvent {
            data: data.into(),
            expires_at: expires_at.map(Into::into),
        }))
    }

    fn channel() -> ConnectedEvent {
        ConnectedEvent {
            channel_id: "ch_1".into(),
            phone_number: "+56912345678".into(),
            push_name: "Lucio".into(),
        }
    }

    fn waiting() -> Machine {
        let mut machine = Machine::default();
        machine.apply(Input::Start);
        machine.apply(Input::Started { session: session(), now: NOW });
        machine
    }

    #[test]
    fn start_posts_then_opens_the_stream_it_was_given() {
        let mut machine = Machine::default();
        assert_eq!(machine.view(NOW).action, Some("Connect WhatsApp"));
        assert_eq!(machine.apply(Input::Start), vec![Effect::CloseStream, Effect::StartSession]);
        assert!(machine.view(NOW).busy);
        assert_eq!(machine.apply(Input::Start), vec![], "a second click does nothing");
        assert_eq!(
            machine.apply(Input::Started { session: session(), now: NOW }),
            vec![Effect::OpenStream("/widget/sessions/qrs_1/stream".into())]
        );
        assert_eq!(machine.view(NOW).session_seconds_left, Some(300));
    }

    #[test]
    fn codes_show_with_their_own_and_the_sessions_countdown() {
        let mut machine = waiting();
        machine.apply(qr("2@a", Some("2027-01-15T08:00:20.000Z")));
        let at = parse_millis("2027-01-15T08:00:00.000Z").unwrap();
        let view = machine.view(at);
        assert_eq!(view.qr.as_deref(), Some("2@a"));
        assert_eq!(view.code_seconds_left, Some(20));
        assert!(view.status.contains("Linked devices"));

        machine.apply(qr("2@b", None)); // a bare string: no expiry known
        let view = machine.view(NOW + 61_000.0);
        assert_eq!(view.qr.as_deref(), Some("2@b"));
        assert_eq!(view.code_seconds_left, None);
        assert_eq!(view.session_seconds_left, Some(239));
    }

    #[test]
    fn scanned_then_connected_closes_the_stream_and_notifies() {
        let mut machine = waiting();
        machine.apply(qr("2@a", None));
        assert_eq!(machine.apply(Input::Stream(StreamEvent::Connecting)), vec![]);
        assert_eq!(machine.view(NOW).phase, "scanned");
        assert!(machine.view(NOW).qr.is_none(), "a scanned code is not shown again");
        let effects = machine.apply(Input::Stream(StreamEvent::Connected(channel())));
        assert_eq!(effects, vec![Effect::CloseStream, Effect::NotifyConnected(channel())]);
        let view = machine.view(NOW);
        assert_eq!(view.status, "Connected: +56912345678 (Lucio).");
        assert_eq!(view.action, None);
    }

    #[test]
    fn expiry_and_failures_offer_try_again_which_starts_a_new_session() {
        for (event, phase) in [
            (FailureCode::Expired, "expired"),
            (FailureCode::DeviceLimit, "failed"),
            (FailureCode::WhatsappUnreachable, "failed"),
        ] {
            let mut machine = waiting();
            let failed = FailedEvent { code: event, reason: "because".into() };
            let effects = machine.apply(Input::Stream(StreamEvent::Failed(failed)));
            assert_eq!(effects[0], Effect::CloseStream);
            assert!(
                matches!(&effects[1], Effect::NotifyFailed { code, .. } if code == event.as_str())
            );
            let view = machine.view(NOW);
            assert_eq!((view.phase, view.action), (phase, Some("Try again")));
            assert_eq!(
                machine.apply(Input::Start),
                vec![Effect::CloseStream, Effect::StartSession]
            );
        }
    }

    #[test]
    fn a_disconnect_a_lost_session_and_a_failed_start_are_shown_with_their_reason() {
        let mut machine = waiting();
        let event = DisconnectedEvent { code: DisconnectCode::Unlinked, reason: "removed".into() };
        machine.apply(Input::Stream(StreamEvent::Disconnected(event)));
        assert_eq!(machine.view(NOW).status, "removed");

        let mut machine = waiting();
        machine.apply(Input::StreamLost);
        assert!(machine.view(NOW).status.contains("lost"));
        assert_eq!(machine.view(NOW).action, Some("Try again"));

        let mut machine = Machine::default();
        machine.apply(Input::Start);
        let effects = machine.apply(Input::StartFailed { reason: "offline".into() });
        assert_eq!(
            effects[1],
            Effect::NotifyFailed { code: "start_failed".into(), reason: "offline".into() }
        );
    }

    #[test]
    fn events_after_the_end_change_nothing() {
        let mut machine = waiting();
        machine.apply(Input::Stream(StreamEvent::Connected(channel())));
        assert_eq!(machine.apply(qr("2@late", None)), vec![]);
        assert_eq!(machine.apply(Input::StreamLost), vec![]);
        assert_eq!(machine.apply(Input::Stream(StreamEvent::Connected(channel()))), vec![]);
        assert_eq!(machine.view(NOW).phase, "connected");
    }
}
