//! The widget's logic: a plain state machine, tested natively. The view only renders
//! [`Machine::view`] and performs the [`Effect`]s that [`Machine::apply`] returns.
//!
//! idle → starting → waiting (a QR, or a pairing code for a phone number; the phone number form
//! opens over either) → linking → connected | expired | failed | disconnected; the last three
//! offer "Try again", which starts a new session.

use keebai_protocol::{
    ConnectResponse, ConnectedEvent, FailureCode, PairingCodeEvent, StreamEvent,
};

use crate::i18n::{Messages, Text};

/// Milliseconds since the Unix epoch (what `Date.now()` gives in a browser).
pub type Millis = f64;

/// What a waiting session offers the phone.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// A QR to scan; `None` until the first arrives.
    Qr { data: Option<String>, expires_at: Option<Millis> },
    /// A pairing code to type on the phone of `phone_number`. Once a session shows one, it
    /// shows no more QRs (the server sends none). `copied` once it is on the clipboard.
    Code { code: String, phone_number: String, expires_at: Option<Millis>, copied: bool },
}

/// The phone number form, open over the offer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    /// Why the last number was not taken.
    pub error: Option<Text>,
    /// A code request is on its way.
    pub busy: bool,
}

/// Where a pairing stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing started: offers "Connect WhatsApp".
    Idle,
    /// The session is being created.
    Starting,
    /// Waiting for the phone.
    Waiting {
        offer: Offer,
        form: Option<Form>,
    },
    /// The phone scanned the QR (or took the code); WhatsApp is linking.
    Linking {
        by_code: bool,
    },
    Connected(ConnectedEvent),
    /// The pairing window closed before the phone was linked.
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

/// Why a pairing code request was refused (the host's error code, read by the view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// `INVALID_PHONE_NUMBER`.
    InvalidPhone,
    /// `TOO_MANY_CODE_REQUESTS`: the session took as many numbers as it allows.
    TooManyNumbers,
    /// Anything else (the network, `SESSION_NOT_WAITING`: the stream says what happened).
    Other,
}

impl CodeRefusal {
    /// From the `error.code` of the host's answer.
    pub fn from_error_code(code: Option<&str>) -> Self {
        match code {
            Some("INVALID_PHONE_NUMBER") => Self::InvalidPhone,
            Some("TOO_MANY_CODE_REQUESTS") => Self::TooManyNumbers,
            _ => Self::Other,
        }
    }

    fn text(self) -> Text {
        match self {
            Self::InvalidPhone => Text::InvalidPhone,
            Self::TooManyNumbers => Text::TooManyNumbers,
            Self::Other => Text::CodeRequestFailed,
        }
    }
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
    /// `POST {start URL}/{session_id}/pairing-code` with this E.164 number.
    RequestCode { session_id: String, phone_number: String },
    /// Put this text on the clipboard.
    WriteClipboard(String),
    /// Call `on_pairing_code` with a code new on screen.
    NotifyPairingCode(PairingCodeEvent),
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
    /// "Can't scan? Link with phone number" or "Wrong number?".
    OpenPhoneForm,
    /// Back to the QR or the code.
    ClosePhoneForm,
    /// The form was sent with what the person typed.
    SubmitPhone(String),
    /// The pairing code request answered: the code itself comes on the stream (usually
    /// first), with its number.
    CodeAnswered(Result<(), CodeRefusal>),
    /// "Copy code".
    CopyCode,
    /// The clipboard took this text.
    Copied(String),
}

/// How the current phase looks, for people and screen readers, in the [`Messages`]' language.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewModel {
    /// The live status sentence (announced politely by screen readers).
    pub status: String,
    /// The QR payload to paint, if one is on offer.
    pub qr: Option<String>,
    /// The pairing code on offer (`ABCD-EFGH`), if any.
    pub pairing_code: Option<String>,
    /// Whether that code is on the clipboard.
    pub copied: bool,
    /// Whole seconds until the QR refreshes, or until the pairing code is replaced.
    pub code_seconds_left: Option<u64>,
    /// Whole seconds until the session's window closes.
    pub session_seconds_left: Option<u64>,
    /// The countdowns as a sentence ("Code refreshes in 18 s · session ends in 4:42").
    pub countdown: String,
    /// The button to show ("Connect WhatsApp" or "Try again"), if any.
    pub action: Option<String>,
    /// Whether "Can't scan? Link with phone number" (or "Wrong number?") is offered.
    pub offers_phone: bool,
    /// The phone number form, when open.
    pub form: Option<FormView>,
    /// Whether a request or linking is in progress.
    pub busy: bool,
    /// A short machine-readable name of the phase, for styling and tests.
    pub phase: &'static str,
}

/// The phone number form as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FormView {
    /// Why the last number was not taken.
    pub error: Option<String>,
    pub busy: bool,
    /// The label of the button that closes it ("Scan a QR code instead" or "Back to the code").
    pub close: String,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    session_id: Option<String>,
    session_expires_at: Option<Millis>,
}

impl Default for Machine {
    fn default() -> Self {
        Self { phase: Phase::Idle, session_id: None, session_expires_at: None }
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

/// What a person typed as an E.164 number (`+` and 8 to 15 digits, the first not 0), as the
/// API takes it. Spaces (also no-break ones and tabs), dashes, dots and brackets are dropped
/// (people type `+56 9 1234-5678`),
/// and `00` stands for `+`; nothing else is guessed.
pub fn e164(typed: &str) -> Option<String> {
    let kept: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\t' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').or_else(|| kept.strip_prefix("00"))?;
    let valid = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
}

fn seconds_until(at: Option<Millis>, now: Millis) -> Option<u64> {
    at.map(|at| ((at - now).max(0.0) / 1000.0).ceil() as u64)
}

fn minutes(seconds: u64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The text for a `failed` code.
fn failure_text(code: &str) -> Text {
    match FailureCode::from_wire(code) {
        FailureCode::DeviceLimit => Text::DeviceLimit,
        FailureCode::WhatsappUnreachable => Text::WhatsappUnreachable,
        FailureCode::CodeRejected => Text::CodeRejected,
        FailureCode::PasskeyRequired => Text::PasskeyRequired,
        FailureCode::Expired => Text::Expired,
        _ if code == "start_failed" => Text::StartFailed,
        _ if code == "session_lost" => Text::SessionLost,
        _ => Text::Failed,
    }
}

impl Machine {
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Waiting { .. } | Phase::Linking { .. })
    }

    fn end(&mut self, phase: Phase, notify: Effect) -> Vec<Effect> {
        self.phase = phase;
        self.session_id = None;
        self.session_expires_at = None;
        vec![Effect::CloseStream, notify]
    }

    fn fail(&mut self, code: &str, reason: String) -> Vec<Effect> {
        let notify = Effect::NotifyFailed { code: code.to_owned(), reason: reason.clone() };
        self.end(Phase::Failed { code: code.to_owned(), reason }, notify)
    }

    pub fn apply(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Start if self.is_live() => Vec::new(),
            Input::Start => {
                self.phase = Phase::Starting;
                self.session_id = None;
                self.session_expires_at = None;
                vec![Effect::CloseStream, Effect::StartSession]
            }
            Input::Started { session, now } if self.phase == Phase::Starting => {
                self.phase = Phase::Waiting {
                    offer: Offer::Qr { data: None, expires_at: None },
                    form: None,
                };
                self.session_id = Some(session.session_id);
                self.session_expires_at = Some(now + session.expires_in as f64 * 1000.0);
                vec![Effect::OpenStream(session.stream_url)]
            }
            Input::StartFailed { reason } if self.phase == Phase::Starting => {
                self.fail("start_failed", reason)
            }
            Input::Stream(event) if self.is_live() => self.on_event(event),
            Input::StreamLost if self.is_live() => self.fail(
                "session_lost",
                "The pairing session was lost (the server restarted).".to_owned(),
            ),
            Input::OpenPhoneForm => {
                if let Phase::Waiting { form, .. } = &mut self.phase {
                    form.get_or_insert_with(Form::default);
                }
                Vec::new()
            }
            Input::ClosePhoneForm => {
                if let Phase::Waiting { form, .. } = &mut self.phase {
                    *form = None;
                }
                Vec::new()
            }
            Input::SubmitPhone(typed) => {
                let Phase::Waiting { form: Some(form), .. } = &mut self.phase else {
                    return Vec::new();
                };
                if form.busy {
                    return Vec::new();
                }
                let (Some(phone_number), Some(session_id)) = (e164(&typed), &self.session_id)
                else {
                    form.error = Some(Text::InvalidPhone);
                    return Vec::new();
                };
                *form = Form { error: None, busy: true };
                vec![Effect::RequestCode { session_id: session_id.clone(), phone_number }]
            }
            Input::CodeAnswered(answer) => {
                let Phase::Waiting { offer, form } = &mut self.phase else { return Vec::new() };
                let Some(open) = form.as_mut().filter(|f| f.busy) else { return Vec::new() };
                match answer {
                    Ok(()) => {
                        if matches!(offer, Offer::Code { .. }) {
                            *form = None;
                        } else {
                            open.busy = false;
                        }
                    }
                    Err(refusal) => *open = Form { error: Some(refusal.text()), busy: false },
                }
                Vec::new()
            }
            Input::CopyCode => match &self.phase {
                Phase::Waiting { offer: Offer::Code { code, .. }, .. } => {
                    vec![Effect::WriteClipboard(code.clone())]
                }
                _ => Vec::new(),
            },
            Input::Copied(text) => {
                if let Phase::Waiting { offer: Offer::Code { code, copied, .. }, .. } =
                    &mut self.phase
                {
                    *copied |= *code == text;
                }
                Vec::new()
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
                if let Phase::Waiting { offer: offer @ Offer::Qr { .. }, .. } = &mut self.phase {
                    let expires_at = qr.expires_at.as_deref().and_then(parse_millis);
                    *offer = Offer::Qr { data: Some(qr.data), expires_at };
                }
                Vec::new()
            }
            StreamEvent::PairingCode(event) => {
                let Phase::Waiting { offer, form } = &mut self.phase else { return Vec::new() };
                let new = !matches!(offer, Offer::Code { code, .. } if *code == event.code);
                if new {
                    *offer = Offer::Code {
                        code: event.code.clone(),
                        phone_number: event.phone_number.clone(),
                        expires_at: parse_millis(&event.expires_at),
                        copied: false,
                    };
                }
                // The code the person asked for: the form is done. A renewal while they type
                // another number leaves the form open.
                if form.as_ref().is_some_and(|f| f.busy) {
                    *form = None;
                }
                if new { vec![Effect::NotifyPairingCode(event)] } else { Vec::new() }
            }
            StreamEvent::Connecting => {
                let by_code =
                    matches!(self.phase, Phase::Waiting { offer: Offer::Code { .. }, .. });
                self.phase = Phase::Linking { by_code };
                Vec::new()
            }
            StreamEvent::Connected(channel) => {
                let notify = Effect::NotifyConnected(channel.clone());
                self.end(Phase::Connected(channel), notify)
            }
            StreamEvent::Failed(failed) if failed.code == FailureCode::Expired => {
                let notify = Effect::NotifyFailed {
                    code: failed.code.as_str().to_owned(),
                    reason: failed.reason,
                };
                self.end(Phase::Expired, notify)
            }
            StreamEvent::Failed(failed) => self.fail(failed.code.as_str(), failed.reason),
            StreamEvent::Disconnected(disconnected) => {
                let notify = Effect::NotifyFailed {
                    code: disconnected.code.as_str().to_owned(),
                    reason: disconnected.reason.clone(),
                };
                self.end(Phase::Disconnected { reason: disconnected.reason }, notify)
            }
        }
    }

    /// How it looks at `now`, in the language of `t`.
    pub fn view(&self, now: Millis, t: &Messages) -> ViewModel {
        let session_seconds_left = seconds_until(self.session_expires_at, now);
        let try_again = Some(t.get(Text::TryAgain).to_owned());
        match &self.phase {
            Phase::Idle => ViewModel {
                status: t.get(Text::Intro).into(),
                action: Some(t.get(Text::Connect).to_owned()),
                phase: "idle",
                ..ViewModel::default()
            },
            Phase::Starting => ViewModel {
                status: t.get(Text::Preparing).into(),
                busy: true,
                phase: "starting",
                ..ViewModel::default()
            },
            Phase::Waiting { offer, form } => {
                let mut view = match offer {
                    Offer::Qr { data, expires_at } => ViewModel {
                        status: t
                            .get(if data.is_some() {
                                Text::ScanSteps
                            } else {
                                Text::WaitingForCode
                            })
                            .into(),
                        busy: data.is_none(),
                        qr: data.clone(),
                        code_seconds_left: data.as_ref().and(seconds_until(*expires_at, now)),
                        ..ViewModel::default()
                    },
                    Offer::Code { code, phone_number, expires_at, copied } => ViewModel {
                        status: t.fill(Text::EnterCode, &[("phone", phone_number)]),
                        pairing_code: Some(code.clone()),
                        copied: *copied,
                        code_seconds_left: seconds_until(*expires_at, now),
                        ..ViewModel::default()
                    },
                };
                let mut countdown = String::new();
                if let Some(left) = view.code_seconds_left {
                    countdown.push_str(&match offer {
                        Offer::Qr { .. } => {
                            t.fill(Text::QrRefreshes, &[("seconds", &left.to_string())])
                        }
                        Offer::Code { .. } => t.fill(Text::CodeValid, &[("time", &minutes(left))]),
                    });
                }
                if let Some(left) = session_seconds_left {
                    if !countdown.is_empty() {
                        countdown.push_str(" · ");
                    }
                    countdown.push_str(&t.fill(Text::SessionEnds, &[("time", &minutes(left))]));
                }
                view.countdown = countdown;
                view.session_seconds_left = session_seconds_left;
                view.offers_phone = form.is_none();
                view.phase = "waiting";
                if let Some(form) = form {
                    // The form's label and hint say what to do; the offer's status would talk
                    // about what the form hides.
                    view.status =
                        if form.busy { t.get(Text::RequestingCode).into() } else { String::new() };
                    view.form = Some(FormView {
                        error: form.error.map(|e| t.get(e).to_owned()),
                        busy: form.busy,
                        close: t
                            .get(match offer {
                                Offer::Qr { .. } => Text::UseQr,
                                Offer::Code { .. } => Text::BackToCode,
                            })
                            .into(),
                    });
                    // The form replaces the offer on screen.
                    view.qr = None;
                    view.pairing_code = None;
                    view.countdown.clear();
                    view.phase = "phone";
                }
                view
            }
            Phase::Linking { by_code } => ViewModel {
                status: t.get(if *by_code { Text::CodeEntered } else { Text::Scanned }).into(),
                busy: true,
                phase: "scanned",
                ..ViewModel::default()
            },
            Phase::Connected(channel) => {
                let number = if channel.push_name.is_empty() {
                    channel.phone_number.clone()
                } else {
                    format!("{} ({})", channel.phone_number, channel.push_name)
                };
                ViewModel {
                    status: t.fill(Text::Connected, &[("number", &number)]),
                    phase: "connected",
                    ..ViewModel::default()
                }
            }
            Phase::Expired => ViewModel {
                status: t.get(Text::Expired).into(),
                action: try_again,
                phase: "expired",
                ..ViewModel::default()
            },
            Phase::Failed { code, .. } => ViewModel {
                status: t.get(failure_text(code)).into(),
                action: try_again,
                phase: "failed",
                ..ViewModel::default()
            },
            Phase::Disconnected { .. } => ViewModel {
                status: t.get(Text::Disconnected).into(),
                action: try_again,
                phase: "disconnected",
                ..ViewModel::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use keebai_protocol::{DisconnectCode, DisconnectedEvent, FailedEvent, QrEvent};

    use super::*;
    use crate::i18n::Locale;

    #[test]
    fn times_read_natively_as_the_browser_reads_them() {
        // The same figures as the browser test `the_browser_reads_the_servers_times_…`.
        assert_eq!(parse_millis("2026-11-25T10:00:00.000Z"), Some(1_795_600_800_000.0));
        assert_eq!(parse_millis("2026-11-25T10:00:00.250Z"), Some(1_795_600_800_250.0));
        assert_eq!(parse_millis("not a time"), None);
    }

    const NOW: Millis = 1_800_000_000_000.0;

    fn en() -> Messages {
        Messages::new(Locale::En)
    }

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

    fn code_event(code: &str) -> PairingCodeEvent {
        PairingCodeEvent {
            code: code.into(),
            phone_number: "+56912345678".into(),
            expires_at: "2027-01-15T08:03:00.000Z".into(),
        }
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
        assert_eq!(machine.view(NOW, &en()).action.as_deref(), Some("Connect WhatsApp"));
        assert_eq!(machine.apply(Input::Start), vec![Effect::CloseStream, Effect::StartSession]);
        assert!(machine.view(NOW, &en()).busy);
        assert_eq!(machine.apply(Input::Start), vec![], "a second click does nothing");
        assert_eq!(
            machine.apply(Input::Started { session: session(), now: NOW }),
            vec![Effect::OpenStream("/widget/sessions/qrs_1/stream".into())]
        );
        assert_eq!(machine.view(NOW, &en()).session_seconds_left, Some(300));
    }

    #[test]
    fn codes_show_with_their_own_and_the_sessions_countdown() {
        let mut machine = waiting();
        machine.apply(qr("2@a", Some("2027-01-15T08:00:20.000Z")));
        let at = parse_millis("2027-01-15T08:00:00.000Z").unwrap();
        let view = machine.view(at, &en());
        assert_eq!(view.qr.as_deref(), Some("2@a"));
        assert_eq!(view.code_seconds_left, Some(20));
        assert!(view.status.contains("Linked devices"));
        assert!(view.offers_phone, "Can't scan? is offered beside the QR");

        machine.apply(qr("2@b", None)); // a bare string: no expiry known
        let view = machine.view(NOW + 61_000.0, &en());
        assert_eq!(view.qr.as_deref(), Some("2@b"));
        assert_eq!(view.code_seconds_left, None);
        assert_eq!(view.session_seconds_left, Some(239));
        assert_eq!(view.countdown, "session ends in 3:59");
    }

    #[test]
    fn scanned_then_connected_closes_the_stream_and_notifies() {
        let mut machine = waiting();
        machine.apply(qr("2@a", None));
        assert_eq!(machine.apply(Input::Stream(StreamEvent::Connecting)), vec![]);
        assert_eq!(machine.view(NOW, &en()).phase, "scanned");
        assert!(machine.view(NOW, &en()).qr.is_none(), "a scanned code is not shown again");
        let effects = machine.apply(Input::Stream(StreamEvent::Connected(channel())));
        assert_eq!(effects, vec![Effect::CloseStream, Effect::NotifyConnected(channel())]);
        let view = machine.view(NOW, &en());
        assert_eq!(view.status, "Connected: +56912345678 (Lucio).");
        assert_eq!(view.action, None);
        let spanish = machine.view(NOW, &Messages::new(Locale::Es));
        assert_eq!(spanish.status, "Conectado: +56912345678 (Lucio).");
    }

    #[test]
    fn expiry_and_failures_offer_try_again_which_starts_a_new_session() {
        for (event, phase, status) in [
            (FailureCode::Expired, "expired", "The code expired before it was used."),
            (FailureCode::DeviceLimit, "failed", "already has as many linked devices"),
            (FailureCode::WhatsappUnreachable, "failed", "WhatsApp could not be reached"),
            (FailureCode::CodeRejected, "failed", "typed wrong too many times"),
            (FailureCode::PasskeyRequired, "failed", "passkey"),
            (FailureCode::TemporaryBan, "failed", "Linking failed. Try again."),
        ] {
            let mut machine = waiting();
            let failed = FailedEvent { code: event, reason: "because".into() };
            let effects = machine.apply(Input::Stream(StreamEvent::Failed(failed)));
            assert_eq!(effects[0], Effect::CloseStream);
            assert_eq!(
                effects[1],
                Effect::NotifyFailed { code: event.as_str().into(), reason: "because".into() },
                "the host gets the server's own reason"
            );
            let view = machine.view(NOW, &en());
            assert_eq!((view.phase, view.action.as_deref()), (phase, Some("Try again")));
            assert!(view.status.contains(status), "{event:?}: {}", view.status);
            assert_eq!(
                machine.apply(Input::Start),
                vec![Effect::CloseStream, Effect::StartSession]
            );
        }
    }

    #[test]
    fn a_disconnect_a_lost_session_and_a_failed_start_are_shown_in_the_widgets_language() {
        let mut machine = waiting();
        let event = DisconnectedEvent { code: DisconnectCode::Unlinked, reason: "removed".into() };
        machine.apply(Input::Stream(StreamEvent::Disconnected(event)));
        assert_eq!(machine.view(NOW, &en()).status, "The phone removed this linked device.");

        let mut machine = waiting();
        machine.apply(Input::StreamLost);
        assert!(machine.view(NOW, &en()).status.contains("lost"));
        assert!(machine.view(NOW, &Messages::new(Locale::PtBr)).status.contains("perdida"));
        assert_eq!(machine.view(NOW, &en()).action.as_deref(), Some("Try again"));

        let mut machine = Machine::default();
        machine.apply(Input::Start);
        let effects = machine.apply(Input::StartFailed { reason: "offline".into() });
        assert_eq!(
            effects[1],
            Effect::NotifyFailed { code: "start_failed".into(), reason: "offline".into() }
        );
        assert!(machine.view(NOW, &en()).status.contains("could not be reached"));
    }

    #[test]
    fn events_after_the_end_change_nothing() {
        let mut machine = waiting();
        machine.apply(Input::Stream(StreamEvent::Connected(channel())));
        assert_eq!(machine.apply(qr("2@late", None)), vec![]);
        assert_eq!(machine.apply(Input::StreamLost), vec![]);
        assert_eq!(machine.apply(Input::Stream(StreamEvent::Connected(channel()))), vec![]);
        assert_eq!(machine.apply(Input::OpenPhoneForm), vec![]);
        assert_eq!(machine.apply(Input::SubmitPhone("+56912345678".into())), vec![]);
        assert_eq!(machine.view(NOW, &en()).phase, "connected");
    }

    #[test]
    fn typed_numbers_are_read_as_e164_without_guessing() {
        assert_eq!(e164("+56 9 1234 5678").as_deref(), Some("+56912345678"));
        assert_eq!(e164(" +55 (11) 91234-5678 ").as_deref(), Some("+5511912345678"));
        assert_eq!(e164("0056.9.1234.5678").as_deref(), Some("+56912345678"));
        for wrong in [
            "56912345678",
            "+0 912345678",
            "+56 9 1234",
            "+1234567890123456",
            "+56 9x12345678",
            "",
            "+",
        ] {
            assert_eq!(e164(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn a_phone_number_gets_a_code_that_replaces_the_qr_until_linked() {
        let mut machine = waiting();
        machine.apply(qr("2@a", None));
        assert_eq!(machine.apply(Input::OpenPhoneForm), vec![]);
        let view = machine.view(NOW, &en());
        assert_eq!(view.phase, "phone");
        assert!(view.qr.is_none() && !view.offers_phone);
        assert_eq!(view.status, "", "nothing about the hidden QR");
        assert_eq!(view.form.as_ref().map(|f| f.close.as_str()), Some("Scan a QR code instead"));

        // A number that is not E.164 is refused here, with no request.
        assert_eq!(machine.apply(Input::SubmitPhone("912345678".into())), vec![]);
        let form = machine.view(NOW, &en()).form.unwrap();
        assert_eq!(
            form.error.as_deref(),
            Some(Text::InvalidPhone).map(|t| en().get(t).to_owned()).as_deref()
        );

        let request = machine.apply(Input::SubmitPhone("+56 9 1234 5678".into()));
        assert_eq!(
            request,
            vec![Effect::RequestCode {
                session_id: "qrs_1".into(),
                phone_number: "+56912345678".into()
            }]
        );
        assert_eq!(machine.apply(Input::SubmitPhone("+56912345678".into())), vec![], "once");
        let view = machine.view(NOW, &en());
        assert!(view.form.unwrap().busy);
        assert_eq!(view.status, "Asking WhatsApp for a code…");

        // The stream brings the code, then the answer arrives.
        let effects =
            machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("ABCD-EFGH"))));
        assert_eq!(effects, vec![Effect::NotifyPairingCode(code_event("ABCD-EFGH"))]);
        assert_eq!(machine.apply(Input::CodeAnswered(Ok(()))), vec![]);
        let at = parse_millis("2027-01-15T08:00:00.000Z").unwrap();
        let view = machine.view(at, &en());
        assert_eq!(view.pairing_code.as_deref(), Some("ABCD-EFGH"));
        assert_eq!(view.status, "Enter this code in WhatsApp on +56912345678.");
        assert_eq!(view.code_seconds_left, Some(180));
        assert!(view.countdown.starts_with("Code valid for 3:00"), "{}", view.countdown);
        assert!(view.form.is_none() && view.offers_phone && view.qr.is_none());

        // No QR comes back; a replay of the same code is not news; a renewal is.
        machine.apply(qr("2@late", None));
        assert_eq!(machine.view(at, &en()).qr, None);
        assert_eq!(
            machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("ABCD-EFGH")))),
            vec![]
        );
        assert_eq!(
            machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("WXYZ-2345")))),
            vec![Effect::NotifyPairingCode(code_event("WXYZ-2345"))]
        );

        // Copy: the clipboard gets the code on screen; a new code is not copied yet.
        let wxyz = "WXYZ-2345".to_owned();
        assert_eq!(machine.apply(Input::CopyCode), vec![Effect::WriteClipboard(wxyz.clone())]);
        machine.apply(Input::Copied("ABCD-EFGH".into()));
        assert!(!machine.view(at, &en()).copied, "a late answer for the old code");
        machine.apply(Input::Copied(wxyz));
        assert!(machine.view(at, &en()).copied);
        machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("QRST-6789"))));
        assert!(!machine.view(at, &en()).copied);

        machine.apply(Input::Stream(StreamEvent::Connecting));
        assert_eq!(machine.view(at, &en()).status, "Code entered. Linking your phone…");
        assert_eq!(machine.apply(Input::CopyCode), vec![], "nothing to copy any more");
    }

    #[test]
    fn a_refused_request_says_why_and_the_form_can_be_closed() {
        let mut machine = waiting();
        machine.apply(qr("2@a", None));
        machine.apply(Input::OpenPhoneForm);
        machine.apply(Input::SubmitPhone("+56912345678".into()));
        machine.apply(Input::CodeAnswered(Err(CodeRefusal::TooManyNumbers)));
        let form = machine.view(NOW, &Messages::new(Locale::Es)).form.unwrap();
        assert_eq!(
            form.error.as_deref(),
            Some("Esta sesión no acepta más números. Usa el último código o empieza de nuevo.")
        );
        assert!(!form.busy, "the person may try again");
        assert_eq!(
            CodeRefusal::from_error_code(Some("INVALID_PHONE_NUMBER")),
            CodeRefusal::InvalidPhone
        );
        assert_eq!(CodeRefusal::from_error_code(None), CodeRefusal::Other);

        machine.apply(Input::ClosePhoneForm);
        let view = machine.view(NOW, &en());
        assert_eq!(view.qr.as_deref(), Some("2@a"), "back to the QR");
        // A late answer for a closed form changes nothing.
        assert_eq!(machine.apply(Input::CodeAnswered(Err(CodeRefusal::Other))), vec![]);
        assert!(machine.view(NOW, &en()).form.is_none());
    }

    #[test]
    fn wrong_number_reopens_the_form_over_the_code_and_a_renewal_keeps_it_open() {
        let mut machine = waiting();
        machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("ABCD-EFGH"))));
        machine.apply(Input::OpenPhoneForm);
        let view = machine.view(NOW, &en());
        assert_eq!(view.form.unwrap().close, "Back to the code");
        machine.apply(Input::Stream(StreamEvent::PairingCode(code_event("WXYZ-2345"))));
        assert!(machine.view(NOW, &en()).form.is_some(), "the person is still typing");
        machine.apply(Input::ClosePhoneForm);
        assert_eq!(machine.view(NOW, &en()).pairing_code.as_deref(), Some("WXYZ-2345"));
    }
}
