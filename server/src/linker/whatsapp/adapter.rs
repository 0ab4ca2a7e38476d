//! From whatsapp-rust's events to the engine's [`LinkerEvent`]s: plain code, no I/O, so that
//! every row of the mapping is tested with events made by the crate's own builders.
//!
//! | whatsapp-rust event | becomes |
//! |---|---|
//! | `PairingQrCode { code, timeout }` | `qr` (expires after `timeout`) |
//! | `PairingQrCodesExhausted` (about 160 s of codes) | a new attempt (invisible to clients) |
//! | `PairSuccess { id, business_name, … }` | `connecting`; the phone number comes from `id` |
//! | `Connected` after `PairSuccess` | `connected` (after the push name, below) |
//! | `PairError { error, … }` | `failed` `pairing_rejected` |
//! | `QrScannedWithoutMultidevice` | `failed` `pairing_rejected` |
//! | `LoggedOut { reason, … }` | `failed` `logged_out` |
//! | `StreamReplaced` | `failed` `stream_replaced` |
//! | `TemporaryBan { code, expire, … }` | `failed` `temporary_ban` |
//! | `ConnectFailure { reason, message, … }` | `failed` `connect_failure`; ignored for 500 and 503, after which whatsapp-rust reconnects by itself |
//! | `ClientOutdated` | `failed` `client_outdated` |
//! | `PairPasskeyRequest` (the account confirms new devices with a passkey) | `failed` `passkey_required` |
//! | `SelfPushNameUpdated { new_name, … }` | the push name, if it comes in time |
//!
//! Push name, first that is not empty: the client's own (`Client::push_name`, usually synced
//! before `Connected`), a `SelfPushNameUpdated` within a short wait, the `business_name` of
//! `PairSuccess`, else empty.

use keebai_protocol::FailureCode;
use whatsapp_rust::Jid;
use whatsapp_rust::types::events::Event;

use crate::domain::PhoneNumber;
use crate::pairing::LinkerEvent;

/// What an attempt does with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Tell the engine.
    Report(LinkerEvent),
    /// The device is linked to `phone`; settle the push name, then report `Linked`.
    Linked { phone: PhoneNumber },
    /// A push name arrived.
    PushName(String),
    /// Linking by phone number: ask WhatsApp for a new code.
    NewCode,
    /// Nothing to do.
    Ignore,
}

/// The state of one pairing attempt, as far as events tell it.
#[derive(Debug, Default)]
pub struct PairingAdapter {
    paired: Option<PhoneNumber>,
    business_name: String,
    push_name: String,
}

/// The E.164 number of a phone-number JID (`56912345678:3@s.whatsapp.net` → `+56912345678`).
pub fn phone_of(jid: &Jid) -> Option<PhoneNumber> {
    PhoneNumber::parse(&format!("+{}", jid.user_base())).ok()
}

fn failed(code: FailureCode, reason: String) -> Reaction {
    Reaction::Report(LinkerEvent::Failed { code, reason })
}

impl PairingAdapter {
    pub fn react(&mut self, event: &Event) -> Reaction {
        match event {
            Event::PairingQrCode(qr) => {
                Reaction::Report(LinkerEvent::Qr { code: qr.code.clone(), ttl: qr.timeout })
            }
            // With a pairing code outstanding the client keeps its connection (and the code
            // stays valid): only a closed connection ends the attempt.
            Event::PairingQrCodesExhausted(exhausted) if !exhausted.disconnected => {
                Reaction::Ignore
            }
            Event::PairingQrCodesExhausted(_) => Reaction::Report(LinkerEvent::Exhausted),
            // The client gives up waiting for the phone after a code (60 s after `primary_hello`,
            // whatsapp-rust 0.7.0 `pair_code.rs:957-976`) or the server asks for a new code.
            Event::PairingCodeRefresh(_) => Reaction::NewCode,
            Event::PairSuccess(success) => match phone_of(&success.id) {
                Some(phone) => {
                    self.paired = Some(phone);
                    self.business_name = success.business_name.clone();
                    Reaction::Report(LinkerEvent::Scanned)
                }
                None => failed(
                    FailureCode::PairingRejected,
                    format!(
                        "WhatsApp paired an account whose id `{}` is not a phone number.",
                        success.id
                    ),
                ),
            },
            Event::Connected(_) => match &self.paired {
                Some(phone) => Reaction::Linked { phone: phone.clone() },
                None => Reaction::Ignore,
            },
            Event::PairError(error) => failed(
                FailureCode::PairingRejected,
                format!(
                    "WhatsApp rejected the pairing ({}). Scan a new code to try again.",
                    error.error
                ),
            ),
            Event::QrScannedWithoutMultidevice(_) => failed(
                FailureCode::PairingRejected,
                "The phone scanned the code without multi-device support. Update WhatsApp on the \
                 phone, then try again."
                    .into(),
            ),
            Event::LoggedOut(logged_out) => failed(
                FailureCode::LoggedOut,
                format!("WhatsApp logged this device out ({:?}).", logged_out.reason),
            ),
            Event::StreamReplaced(_) => failed(
                FailureCode::StreamReplaced,
                "Another connection took over this device while pairing. Try again.".into(),
            ),
            Event::TemporaryBan(ban) => failed(
                FailureCode::TemporaryBan,
                format!(
                    "WhatsApp has temporarily banned this account ({:?}) for another {} minutes.",
                    ban.code,
                    ban.expire.num_minutes().max(0)
                ),
            ),
            Event::ConnectFailure(failure) if failure.reason.should_reconnect() => Reaction::Ignore,
            Event::ConnectFailure(failure) => failed(
                FailureCode::ConnectFailure,
                format!(
                    "WhatsApp refused the connection ({:?}{}).",
                    failure.reason,
                    failure.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                ),
            ),
            Event::ClientOutdated(_) => failed(
                FailureCode::ClientOutdated,
                "WhatsApp considers this client outdated; the server needs a newer whatsapp-rust."
                    .into(),
            ),
            // WhatsApp asks for a WebAuthn assertion by a passkey already registered to the
            // account, for the relying party web.whatsapp.com: only WhatsApp's own apps and
            // WhatsApp Web can produce it, never a server (whatsapp-rust `passkey/mod.rs`).
            // Failing at once beats waiting out the window for a step nobody can take.
            Event::PairPasskeyRequest(_) => failed(
                FailureCode::PasskeyRequired,
                "WhatsApp asks to confirm this new linked device with the account's passkey, \
                 which only WhatsApp's own apps can do. Link from WhatsApp Web once, or turn off \
                 the passkey requirement, then try again."
                    .into(),
            ),
            Event::SelfPushNameUpdated(update) => {
                if !update.new_name.is_empty() {
                    self.push_name = update.new_name.clone();
                }
                Reaction::PushName(update.new_name.clone())
            }
            _ => Reaction::Ignore,
        }
    }

    /// The push name to report: the client's, a pushed update, the business name, or empty.
    pub fn push_name(&self, from_client: &str) -> String {
        [from_client, &self.push_name, &self.business_name]
            .into_iter()
            .find(|name| !name.is_empty())
            .unwrap_or_default()
            .to_owned()
    }
}

/// How a live channel's client ended for good: whatsapp-rust does not reconnect after these
/// (`handle_stream_error`, `handle_connect_failure` in its `client/node_io.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEnding {
    /// The phone removed the device, or WhatsApp logged it out: the link is gone.
    Unlinked,
    /// WhatsApp ended the connection and the client stopped (replaced, banned for a while,
    /// outdated, refused); the link may still be valid. The code names the cause.
    Stopped(FailureCode),
}

/// Whether `event` ends a live channel's client, and how.
pub fn live_ending(event: &Event) -> Option<LiveEnding> {
    match event {
        Event::LoggedOut(_) => Some(LiveEnding::Unlinked),
        Event::ConnectFailure(failure) if failure.reason.should_reconnect() => None,
        Event::StreamReplaced(_)
        | Event::TemporaryBan(_)
        | Event::ClientOutdated(_)
        | Event::ConnectFailure(_) => match PairingAdapter::default().react(event) {
            Reaction::Report(LinkerEvent::Failed { code, .. }) => Some(LiveEnding::Stopped(code)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use whatsapp_rust::types::events::{
        ClientOutdated, ConnectFailure, ConnectFailureReason, Connected, LoggedOut, PairError,
        PairPasskeyRequest, PairSuccess, PairingQrCode, PairingQrCodesExhausted,
        QrScannedWithoutMultidevice, SelfPushNameUpdated, StreamReplaced, TempBanReason,
        TemporaryBan,
    };

    use super::*;

    fn pair_success(business_name: &str) -> Event {
        Event::PairSuccess(
            PairSuccess::builder()
                .id("56912345678:3@s.whatsapp.net".parse::<Jid>().unwrap())
                .lid(Jid::lid("123456"))
                .business_name(business_name.to_owned())
                .platform("android".to_owned())
                .build(),
        )
    }

    fn failure_code(reaction: Reaction) -> FailureCode {
        match reaction {
            Reaction::Report(LinkerEvent::Failed { code, reason }) => {
                assert!(!reason.is_empty());
                code
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_qr_code_becomes_qr_with_its_timeout() {
        let event = Event::PairingQrCode(
            PairingQrCode::builder()
                .code("2@ref,noise,id,adv".to_owned())
                .timeout(Duration::from_secs(60))
                .build(),
        );
        assert_eq!(
            PairingAdapter::default().react(&event),
            Reaction::Report(LinkerEvent::Qr {
                code: "2@ref,noise,id,adv".into(),
                ttl: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn exhausted_codes_ask_for_a_new_attempt() {
        let event = Event::PairingQrCodesExhausted(
            PairingQrCodesExhausted::builder().disconnected(true).build(),
        );
        assert_eq!(
            PairingAdapter::default().react(&event),
            Reaction::Report(LinkerEvent::Exhausted)
        );
    }

    #[test]
    fn pair_success_is_connecting_and_connected_then_links_the_phone_of_the_jid() {
        let mut adapter = PairingAdapter::default();
        let connected = Event::Connected(Connected::builder().build());
        assert_eq!(adapter.react(&connected), Reaction::Ignore, "not before pairing");
        assert_eq!(adapter.react(&pair_success("")), Reaction::Report(LinkerEvent::Scanned));
        assert_eq!(
            adapter.react(&connected),
            Reaction::Linked { phone: PhoneNumber::parse("+56912345678").unwrap() }
        );
    }

    #[test]
    fn the_push_name_prefers_the_client_then_an_update_then_the_business_name() {
        let mut adapter = PairingAdapter::default();
        adapter.react(&pair_success("Ferretería Lucio"));
        assert_eq!(adapter.push_name(""), "Ferretería Lucio");
        let update = Event::SelfPushNameUpdated(
            SelfPushNameUpdated::builder()
                .from_server(true)
                .old_name(String::new())
                .new_name("Lucio".into())
                .build(),
        );
        assert_eq!(adapter.react(&update), Reaction::PushName("Lucio".into()));
        assert_eq!(adapter.push_name(""), "Lucio");
        assert_eq!(adapter.push_name("Lucio B"), "Lucio B");
        assert_eq!(PairingAdapter::default().push_name(""), "");
    }

    #[test]
    fn pair_error_and_a_scan_without_multidevice_are_pairing_rejected() {
        let error = Event::PairError(
            PairError::builder()
                .id("56912345678:3@s.whatsapp.net".parse::<Jid>().unwrap())
                .lid(Jid::lid("1"))
                .business_name(String::new())
                .platform(String::new())
                .error("signature-mismatch".into())
                .build(),
        );
        let reaction = PairingAdapter::default().react(&error);
        if let Reaction::Report(LinkerEvent::Failed { reason, .. }) = &reaction {
            assert!(reason.contains("signature-mismatch"), "{reason}");
        }
        assert_eq!(failure_code(reaction), FailureCode::PairingRejected);
        let scanned =
            Event::QrScannedWithoutMultidevice(QrScannedWithoutMultidevice::builder().build());
        assert_eq!(
            failure_code(PairingAdapter::default().react(&scanned)),
            FailureCode::PairingRejected
        );
    }

    #[test]
    fn each_way_whatsapp_ends_a_connection_has_its_own_code() {
        let cases = [
            (
                Event::LoggedOut(
                    LoggedOut::builder()
                        .on_connect(true)
                        .reason(ConnectFailureReason::LoggedOut)
                        .build(),
                ),
                FailureCode::LoggedOut,
            ),
            (Event::StreamReplaced(StreamReplaced::builder().build()), FailureCode::StreamReplaced),
            (
                Event::TemporaryBan(
                    TemporaryBan::builder()
                        .code(TempBanReason::SentToTooManyPeople)
                        .expire(whatsapp_rust::chrono::Duration::minutes(90))
                        .build(),
                ),
                FailureCode::TemporaryBan,
            ),
            (
                Event::ConnectFailure(
                    ConnectFailure::builder().reason(ConnectFailureReason::BadUserAgent).build(),
                ),
                FailureCode::ConnectFailure,
            ),
            (Event::ClientOutdated(ClientOutdated::builder().build()), FailureCode::ClientOutdated),
            (
                Event::PairPasskeyRequest(
                    PairPasskeyRequest::builder().request_options_json("{}".into()).build(),
                ),
                FailureCode::PasskeyRequired,
            ),
        ];
        for (event, code) in cases {
            assert_eq!(failure_code(PairingAdapter::default().react(&event)), code, "{event:?}");
        }
    }

    #[test]
    fn a_live_channel_ends_unlinked_on_logout_and_stopped_on_other_endings() {
        let logout = Event::LoggedOut(
            LoggedOut::builder().on_connect(true).reason(ConnectFailureReason::LoggedOut).build(),
        );
        assert_eq!(live_ending(&logout), Some(LiveEnding::Unlinked));
        let replaced = Event::StreamReplaced(StreamReplaced::builder().build());
        assert_eq!(live_ending(&replaced), Some(LiveEnding::Stopped(FailureCode::StreamReplaced)));
        let outdated = Event::ClientOutdated(ClientOutdated::builder().build());
        assert_eq!(live_ending(&outdated), Some(LiveEnding::Stopped(FailureCode::ClientOutdated)));
        let retried = Event::ConnectFailure(
            ConnectFailure::builder().reason(ConnectFailureReason::ServiceUnavailable).build(),
        );
        assert_eq!(live_ending(&retried), None, "whatsapp-rust reconnects by itself");
        assert_eq!(live_ending(&Event::Connected(Connected::builder().build())), None);
    }

    #[test]
    fn a_refusal_whatsapp_rust_retries_by_itself_is_not_a_failure() {
        for reason in
            [ConnectFailureReason::ServiceUnavailable, ConnectFailureReason::InternalServerError]
        {
            let event = Event::ConnectFailure(ConnectFailure::builder().reason(reason).build());
            assert_eq!(PairingAdapter::default().react(&event), Reaction::Ignore);
        }
    }

    #[test]
    fn other_events_are_ignored() {
        let event = Event::Connected(Connected::builder().build());
        assert_eq!(PairingAdapter::default().react(&event), Reaction::Ignore);
    }
}
