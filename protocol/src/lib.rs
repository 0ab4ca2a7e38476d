//! keebai QR connect wire types: the one place where names that cross the wire are spelled.
//!
//! Every crate (server, widget, CLI) speaks through these types, so a renamed field or event shows
//! up as a compile error rather than a silent mismatch. The crate is serde only and builds for
//! `wasm32-unknown-unknown` as well as native targets.
//!
//! - [`error`]: the JSON error body and its stable [`ErrorCode`]s.
//! - [`connect`]: starting a pairing session.
//! - [`events`]: the Server-Sent Events of a pairing session's QR stream.
//! - [`numbers`], [`messages`]: paired channels and sending on them.
//! - [`scope`]: token scopes.
//! - [`sim`]: the simulated phone's routes (test and demo device only).

pub mod connect;
pub mod error;
pub mod events;
pub mod messages;
pub mod numbers;
pub mod scope;
pub mod sim;

pub use connect::{ConnectMode, ConnectRequest, ConnectResponse};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use events::{
    ConnectedEvent, DisconnectCode, DisconnectedEvent, EventName, FailedEvent, FailureCode,
    QrEvent, StreamEvent,
};
pub use messages::{MessageStatus, SendTextRequest, SendTextResponse};
pub use numbers::{ChannelStatus, ConnectionType, Number, NumbersResponse};
pub use scope::Scope;

/// The path prefix of every public API route.
pub const API_PREFIX: &str = "/v1";
/// Where sessions are started.
pub const CONNECT_PATH: &str = "/v1/channels/whatsapp/connect";
/// The account's paired numbers.
pub const NUMBERS_PATH: &str = "/v1/whatsapp/numbers";
/// Sending a text.
pub const TEXT_PATH: &str = "/v1/messages/text";
/// The widget host's sessions (browser-facing, same origin as the dashboard).
pub const WIDGET_SESSIONS_PATH: &str = "/widget/sessions";
/// The widget host's view of the account's numbers.
pub const WIDGET_NUMBERS_PATH: &str = "/widget/numbers";

/// A session's path (`DELETE` cancels it).
pub fn session_path(session_id: &str) -> String {
    format!("{CONNECT_PATH}/{session_id}")
}

/// The relative SSE path of a session, as `stream_url` reports it.
pub fn stream_path(session_id: &str) -> String {
    format!("{CONNECT_PATH}/{session_id}/qr-stream")
}

/// The widget host's relay of a session's SSE, as its `stream_url` reports it.
pub fn widget_stream_path(session_id: &str) -> String {
    format!("{WIDGET_SESSIONS_PATH}/{session_id}/stream")
}
