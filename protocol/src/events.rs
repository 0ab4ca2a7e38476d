//! The Server-Sent Events of a pairing session's QR stream.
//!
//! Each SSE message has `event: <name>`, `id: <decimal, increasing within the session>` and
//! `data: <JSON>`. `connected`, `failed` and `disconnected` are terminal: the server closes the
//! stream right after sending one.

use serde::{Deserialize, Serialize};

/// The SSE `event:` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    Qr,
    PairingCode,
    Connecting,
    Connected,
    Failed,
    Disconnected,
}

impl EventName {
    /// Every event name, in the order a session can show them.
    pub const ALL: [EventName; 6] = [
        Self::Qr,
        Self::PairingCode,
        Self::Connecting,
        Self::Connected,
        Self::Failed,
        Self::Disconnected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qr => "qr",
            Self::PairingCode => "pairing_code",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Failed => "failed",
            Self::Disconnected => "disconnected",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "qr" => Self::Qr,
            "pairing_code" => Self::PairingCode,
            "connecting" => Self::Connecting,
            "connected" => Self::Connected,
            "failed" => Self::Failed,
            "disconnected" => Self::Disconnected,
            _ => return None,
        })
    }

    /// After a terminal event the session is over and the stream closes.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Connected | Self::Failed | Self::Disconnected)
    }
}

/// A QR code to show. Servers send the object form; clients also accept a bare JSON string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QrEvent {
    /// The string to encode into the QR symbol, e.g. `2@…,<noise>,<identity>,<adv>`.
    pub data: String,
    /// When this code stops being accepted (RFC 3339, UTC). `None` only in the bare-string form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl<'de> Deserialize<'de> for QrEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Bare(String),
            Object {
                data: String,
                #[serde(default)]
                expires_at: Option<String>,
            },
        }
        Ok(match Wire::deserialize(d)? {
            Wire::Bare(data) => QrEvent { data, expires_at: None },
            Wire::Object { data, expires_at } => QrEvent { data, expires_at },
        })
    }
}

/// A code to type on the phone (WhatsApp > Linked devices > Link a device > Link with phone
/// number instead), after `POST …/pairing-code`. Replaces the QR codes for the rest of the
/// session; a new one comes when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingCodeEvent {
    /// Eight characters grouped four and four, e.g. `ABCD-EFGH`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))]
    pub code: String,
    /// The number whose phone gets the notification (E.164).
    pub phone_number: String,
    /// When this code stops being accepted (RFC 3339, UTC).
    pub expires_at: String,
}

/// The channel that the session created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectedEvent {
    pub channel_id: String,
    /// E.164, e.g. `+56912345678`.
    pub phone_number: String,
    /// The WhatsApp profile name; empty when WhatsApp did not tell it.
    pub push_name: String,
}

/// Why a session failed. Clients must accept codes they do not know ([`FailureCode::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The pairing window (5 minutes) closed without a scan.
    Expired,
    /// The phone already has the maximum number of linked devices (4).
    DeviceLimit,
    /// WhatsApp's servers could not be reached.
    WhatsappUnreachable,
    /// WhatsApp or the phone refused the pairing.
    PairingRejected,
    /// The session was cancelled with `DELETE`.
    Cancelled,
    /// The phone scanned but linking did not finish in time.
    LinkTimeout,
    /// The server is shutting down; start a new session once it is back.
    ServerShutdown,
    /// WhatsApp logged this device out during pairing.
    LoggedOut,
    /// Another connection took over this device's session during pairing.
    StreamReplaced,
    /// WhatsApp temporarily banned the account.
    TemporaryBan,
    /// WhatsApp refused the connection (the reason says why).
    ConnectFailure,
    /// WhatsApp considers this client version outdated.
    ClientOutdated,
    /// The server could not complete the pairing (details in its log).
    Internal,
    /// WhatsApp asked to confirm the new linked device with a passkey of the account, which
    /// only WhatsApp's own apps can do; link with another method or from WhatsApp Web.
    PasskeyRequired,
    /// The code was typed wrong on the phone as many times as WhatsApp allows (3).
    CodeRejected,
    /// Cluster mode: the server that ran this session stopped answering (it crashed or lost the
    /// database), so another server ended it; start a new session.
    OwnerLost,
    #[serde(other)]
    Other,
}

impl FailureCode {
    /// Every named code (not [`FailureCode::Other`]).
    pub const ALL: [Self; 16] = [
        Self::Expired,
        Self::DeviceLimit,
        Self::WhatsappUnreachable,
        Self::PairingRejected,
        Self::Cancelled,
        Self::LinkTimeout,
        Self::ServerShutdown,
        Self::LoggedOut,
        Self::StreamReplaced,
        Self::TemporaryBan,
        Self::ConnectFailure,
        Self::ClientOutdated,
        Self::Internal,
        Self::PasskeyRequired,
        Self::OwnerLost,
        Self::CodeRejected,
    ];

    /// The code named `code` on the wire; [`FailureCode::Other`] for a name this version does not
    /// know (as serde reads it).
    pub fn from_wire(code: &str) -> Self {
        Self::ALL.into_iter().find(|c| c.as_str() == code).unwrap_or(Self::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::DeviceLimit => "device_limit",
            Self::WhatsappUnreachable => "whatsapp_unreachable",
            Self::PairingRejected => "pairing_rejected",
            Self::Cancelled => "cancelled",
            Self::LinkTimeout => "link_timeout",
            Self::ServerShutdown => "server_shutdown",
            Self::LoggedOut => "logged_out",
            Self::StreamReplaced => "stream_replaced",
            Self::TemporaryBan => "temporary_ban",
            Self::ConnectFailure => "connect_failure",
            Self::ClientOutdated => "client_outdated",
            Self::Internal => "internal",
            Self::PasskeyRequired => "passkey_required",
            Self::OwnerLost => "owner_lost",
            Self::CodeRejected => "code_rejected",
            Self::Other => "other",
        }
    }
}

/// `failed` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedEvent {
    pub code: FailureCode,
    pub reason: String,
}

/// Why a linked device was disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DisconnectCode {
    /// The phone removed this linked device.
    Unlinked,
    #[serde(other)]
    Other,
}

impl DisconnectCode {
    /// The code named `code` on the wire; [`DisconnectCode::Other`] for one this version does
    /// not know.
    pub fn from_wire(code: &str) -> Self {
        if code == Self::Unlinked.as_str() { Self::Unlinked } else { Self::Other }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlinked => "unlinked",
            Self::Other => "other",
        }
    }
}

/// `disconnected` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisconnectedEvent {
    pub code: DisconnectCode,
    pub reason: String,
}

/// One event of the stream, with its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Qr(QrEvent),
    PairingCode(PairingCodeEvent),
    Connecting,
    Connected(ConnectedEvent),
    Failed(FailedEvent),
    Disconnected(DisconnectedEvent),
}

/// An SSE message whose data does not match its event name.
#[derive(Debug)]
pub struct EventParseError(pub String);

impl std::fmt::Display for EventParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventParseError {}

impl StreamEvent {
    pub fn name(&self) -> EventName {
        match self {
            Self::Qr(_) => EventName::Qr,
            Self::PairingCode(_) => EventName::PairingCode,
            Self::Connecting => EventName::Connecting,
            Self::Connected(_) => EventName::Connected,
            Self::Failed(_) => EventName::Failed,
            Self::Disconnected(_) => EventName::Disconnected,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.name().is_terminal()
    }

    /// The JSON of the SSE `data:` field.
    pub fn data_json(&self) -> String {
        let value = match self {
            Self::Qr(qr) => serde_json::to_string(qr),
            Self::PairingCode(code) => serde_json::to_string(code),
            Self::Connecting => Ok("{}".to_owned()),
            Self::Connected(c) => serde_json::to_string(c),
            Self::Failed(f) => serde_json::to_string(f),
            Self::Disconnected(d) => serde_json::to_string(d),
        };
        // Serializing these plain structs of strings and unit enums cannot fail.
        value.unwrap_or_else(|_| "{}".to_owned())
    }

    /// Parses an SSE message's `event:` and `data:` fields.
    pub fn parse(event: &str, data: &str) -> Result<Self, EventParseError> {
        let name = EventName::parse(event)
            .ok_or_else(|| EventParseError(format!("unknown event `{event}`")))?;
        let mut data = serde_json::Deserializer::from_str(data);
        let parsed = Self::from_data(name, &mut data)
            .and_then(|parsed| data.end().map(|()| parsed))
            .map_err(|e| EventParseError(format!("bad `{event}` data: {e}")))?;
        Ok(parsed)
    }

    /// The event `name` with its `data:` read from any serde data format.
    pub fn from_data<'de, D: serde::Deserializer<'de>>(
        name: EventName,
        data: D,
    ) -> Result<Self, D::Error> {
        Ok(match name {
            EventName::Qr => Self::Qr(Deserialize::deserialize(data)?),
            EventName::PairingCode => Self::PairingCode(Deserialize::deserialize(data)?),
            // `connecting` carries `{}`; what it holds is not used.
            EventName::Connecting => {
                serde::de::IgnoredAny::deserialize(data)?;
                Self::Connecting
            }
            EventName::Connected => Self::Connected(Deserialize::deserialize(data)?),
            EventName::Failed => Self::Failed(Deserialize::deserialize(data)?),
            EventName::Disconnected => Self::Disconnected(Deserialize::deserialize(data)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_reads_back_and_all_lists_each_once() {
        let names: std::collections::HashSet<_> = EventName::ALL.iter().collect();
        assert_eq!(names.len(), EventName::ALL.len());
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(name));
            // The variant's serde name is its wire name.
            assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
            // A match without a wildcard: a new variant fails to compile here, the reminder to
            // list it in `ALL` too.
            match name {
                EventName::Qr
                | EventName::PairingCode
                | EventName::Connecting
                | EventName::Connected
                | EventName::Failed
                | EventName::Disconnected => {}
            }
        }
    }

    #[test]
    fn qr_data_parses_as_object_or_bare_string() {
        let object =
            StreamEvent::parse("qr", r#"{"data":"2@abc","expires_at":"2026-01-01T00:00:00Z"}"#)
                .unwrap();
        let bare = StreamEvent::parse("qr", r#""2@abc""#).unwrap();
        assert_eq!(
            object,
            StreamEvent::Qr(QrEvent {
                data: "2@abc".into(),
                expires_at: Some("2026-01-01T00:00:00Z".into())
            })
        );
        assert_eq!(bare, StreamEvent::Qr(QrEvent { data: "2@abc".into(), expires_at: None }));
    }

    #[test]
    fn events_round_trip_through_their_wire_form() {
        let events = [
            StreamEvent::Qr(QrEvent { data: "x".into(), expires_at: Some("t".into()) }),
            StreamEvent::Connecting,
            StreamEvent::Connected(ConnectedEvent {
                channel_id: "ch_1".into(),
                phone_number: "+56912345678".into(),
                push_name: "Lucio".into(),
            }),
            StreamEvent::Failed(FailedEvent { code: FailureCode::Expired, reason: "r".into() }),
            StreamEvent::Disconnected(DisconnectedEvent {
                code: DisconnectCode::Unlinked,
                reason: "r".into(),
            }),
        ];
        for event in events {
            let parsed = StreamEvent::parse(event.name().as_str(), &event.data_json()).unwrap();
            assert_eq!(parsed, event);
        }
    }

    #[test]
    fn from_wire_reads_codes_as_serde_does() {
        // Naming every variant here (no wildcard) makes a new one fail to compile until it is in
        // `ALL`.
        let listed = |code: FailureCode| match code {
            FailureCode::Expired
            | FailureCode::DeviceLimit
            | FailureCode::WhatsappUnreachable
            | FailureCode::PairingRejected
            | FailureCode::Cancelled
            | FailureCode::LinkTimeout
            | FailureCode::ServerShutdown
            | FailureCode::LoggedOut
            | FailureCode::StreamReplaced
            | FailureCode::TemporaryBan
            | FailureCode::ConnectFailure
            | FailureCode::ClientOutdated
            | FailureCode::Internal
            | FailureCode::PasskeyRequired
            | FailureCode::OwnerLost
            | FailureCode::CodeRejected => FailureCode::ALL.contains(&code),
            FailureCode::Other => !FailureCode::ALL.contains(&code),
        };
        for code in FailureCode::ALL.into_iter().chain([FailureCode::Other]) {
            assert!(listed(code), "{code:?}");
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
            let by_serde: FailureCode = serde_json::from_str(&wire).unwrap();
            assert_eq!(FailureCode::from_wire(code.as_str()), by_serde);
        }
        assert_eq!(FailureCode::from_wire("brand_new"), FailureCode::Other);
        for code in [DisconnectCode::Unlinked, DisconnectCode::Other] {
            let by_serde: DisconnectCode =
                serde_json::from_str(&serde_json::to_string(&code).unwrap()).unwrap();
            assert_eq!(DisconnectCode::from_wire(code.as_str()), by_serde);
        }
        assert_eq!(DisconnectCode::from_wire("brand_new"), DisconnectCode::Other);
    }

    #[test]
    fn unknown_failure_codes_still_parse() {
        let event = StreamEvent::parse("failed", r#"{"code":"brand_new","reason":"r"}"#).unwrap();
        assert_eq!(
            event,
            StreamEvent::Failed(FailedEvent { code: FailureCode::Other, reason: "r".into() })
        );
    }

    #[test]
    fn only_connected_failed_and_disconnected_are_terminal() {
        assert!(!EventName::Qr.is_terminal());
        assert!(!EventName::Connecting.is_terminal());
        assert!(EventName::Connected.is_terminal());
        assert!(EventName::Failed.is_terminal());
        assert!(EventName::Disconnected.is_terminal());
    }
}
