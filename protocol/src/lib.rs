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
//! - [`webhooks`]: webhook endpoints, their deliveries, and the events they carry.

pub mod connect;
pub mod error;
pub mod events;
pub mod messages;
pub mod numbers;
pub mod scope;
pub mod sim;
pub mod webhooks;

pub use connect::{
    ConnectMode, ConnectRequest, ConnectResponse, PairingCodeRequest, PairingCodeResponse,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use events::{
    ConnectedEvent, DisconnectCode, DisconnectedEvent, EventName, FailedEvent, FailureCode,
    PairingCodeEvent, QrEvent, StreamEvent,
};
pub use messages::{MessageStatus, SendTextRequest, SendTextResponse};
pub use numbers::{ChannelStatus, ConnectionType, Number, NumbersResponse};
pub use scope::Scope;
pub use webhooks::{
    ChannelEventData, CreateWebhookRequest, Delivery, DeliveryAttempt, DeliveryList,
    DeliveryQueued, DeliveryStatus, MessageEventData, PairingFailedData, SecretRotated, Webhook,
    WebhookCreated, WebhookEvent, WebhookEventData, WebhookEventType, WebhookList, WebhookTestData,
};

/// The path prefix of every public API route.
pub const API_PREFIX: &str = "/v1";
/// Where sessions are started.
pub const CONNECT_PATH: &str = "/v1/channels/whatsapp/connect";
/// A session (`DELETE` cancels it), as a route with its `{session_id}` parameter.
pub const SESSION_ROUTE: &str = "/v1/channels/whatsapp/connect/{session_id}";
/// A session's Server-Sent Events, as a route with its `{session_id}` parameter.
pub const STREAM_ROUTE: &str = "/v1/channels/whatsapp/connect/{session_id}/qr-stream";
/// Switching a session to a pairing code, as a route with its `{session_id}` parameter.
pub const PAIRING_CODE_ROUTE: &str = "/v1/channels/whatsapp/connect/{session_id}/pairing-code";
/// The account's paired numbers.
pub const NUMBERS_PATH: &str = "/v1/whatsapp/numbers";
/// Sending a text.
pub const TEXT_PATH: &str = "/v1/messages/text";
/// Template messages (not for QR channels).
pub const TEMPLATE_PATH: &str = "/v1/messages/template";
/// Bulk messages (not for QR channels).
pub const BULK_PATH: &str = "/v1/messages/bulk";
/// Webhook endpoints: create (`POST`) and list (`GET`).
pub const WEBHOOKS_PATH: &str = "/v1/webhooks";
/// One webhook endpoint (`DELETE`).
pub const WEBHOOK_ROUTE: &str = "/v1/webhooks/{webhook_id}";
/// Issues a new signing secret; the old one signs beside it for 24 hours.
pub const WEBHOOK_ROTATE_ROUTE: &str = "/v1/webhooks/{webhook_id}/rotate-secret";
/// Sends a `webhook.test` event to one endpoint.
pub const WEBHOOK_TEST_ROUTE: &str = "/v1/webhooks/{webhook_id}/test";
/// An endpoint's recent deliveries.
pub const WEBHOOK_DELIVERIES_ROUTE: &str = "/v1/webhooks/{webhook_id}/deliveries";
/// Sends one delivery's event again.
pub const WEBHOOK_RETRY_ROUTE: &str = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry";
/// The OpenAPI document of `/v1`.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";
/// Liveness.
pub const HEALTH_PATH: &str = "/healthz";
/// The widget host's sessions (browser-facing, same origin as the dashboard).
pub const WIDGET_SESSIONS_PATH: &str = "/widget/sessions";
/// One of the widget host's sessions (`DELETE` cancels it), with its `{id}` parameter.
pub const WIDGET_SESSION_ROUTE: &str = "/widget/sessions/{id}";
/// The widget host's relay of a session's SSE, with its `{id}` parameter.
pub const WIDGET_STREAM_ROUTE: &str = "/widget/sessions/{id}/stream";
/// The widget host's relay of a session's pairing code request, with its `{id}` parameter.
pub const WIDGET_PAIRING_CODE_ROUTE: &str = "/widget/sessions/{id}/pairing-code";
/// The widget host's view of the account's numbers.
pub const WIDGET_NUMBERS_PATH: &str = "/widget/numbers";

/// A session's path.
pub fn session_path(session_id: &str) -> String {
    SESSION_ROUTE.replace("{session_id}", session_id)
}

/// The relative SSE path of a session, as `stream_url` reports it.
pub fn stream_path(session_id: &str) -> String {
    STREAM_ROUTE.replace("{session_id}", session_id)
}

/// A session's pairing code request.
pub fn pairing_code_path(session_id: &str) -> String {
    PAIRING_CODE_ROUTE.replace("{session_id}", session_id)
}

/// The widget host's relay of a session's SSE, as its `stream_url` reports it.
pub fn widget_stream_path(session_id: &str) -> String {
    WIDGET_STREAM_ROUTE.replace("{id}", session_id)
}

/// The path of one webhook endpoint's route, e.g. [`WEBHOOK_TEST_ROUTE`].
pub fn webhook_path(route: &str, webhook_id: &str) -> String {
    route.replace("{webhook_id}", webhook_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_fill_in_their_routes() {
        assert_eq!(super::session_path("qrs_1"), "/v1/channels/whatsapp/connect/qrs_1");
        assert_eq!(super::stream_path("qrs_1"), "/v1/channels/whatsapp/connect/qrs_1/qr-stream");
        assert_eq!(super::widget_stream_path("qrs_1"), "/widget/sessions/qrs_1/stream");
        assert_eq!(
            super::pairing_code_path("qrs_1"),
            "/v1/channels/whatsapp/connect/qrs_1/pairing-code"
        );
    }
}
