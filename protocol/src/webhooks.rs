//! Signed webhooks: the routes under `/v1/webhooks` and the events they deliver.
//!
//! Deliveries follow the Standard Webhooks specification (standardwebhooks.com): an HTTP POST
//! whose body is one [`WebhookEvent`], with the `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers, so that a receiver checks it with that specification's library in
//! its own language.

use serde::{Deserialize, Serialize};

use crate::FailureCode;

/// What a webhook reports. The wire names are `channel.connected` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEventType {
    /// A phone number was linked as a new channel.
    #[serde(rename = "channel.connected")]
    ChannelConnected,
    /// A channel stopped working: the device was logged out on the phone, WhatsApp ended its
    /// connection, or a send found it logged out. `data` says why.
    #[serde(rename = "channel.disconnected")]
    ChannelDisconnected,
    /// A number the account had linked before was linked again: its channel (same id) is
    /// connected again.
    #[serde(rename = "channel.reconnected")]
    ChannelReconnected,
    /// A pairing session ended without a channel (expired, refused, cancelled, …).
    #[serde(rename = "pairing.failed")]
    PairingFailed,
    /// A text was handed to WhatsApp.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// A text could not be sent.
    #[serde(rename = "message.failed")]
    MessageFailed,
    /// Sent by `POST /v1/webhooks/{webhook_id}/test`, to that endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl WebhookEventType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [WebhookEventType; 7] = [
        Self::ChannelConnected,
        Self::ChannelDisconnected,
        Self::ChannelReconnected,
        Self::PairingFailed,
        Self::MessageSent,
        Self::MessageFailed,
        Self::WebhookTest,
    ];

    /// The types an endpoint can subscribe to (all but `webhook.test`, which every endpoint gets
    /// when it is tested).
    pub const SUBSCRIBABLE: [WebhookEventType; 6] = [
        Self::ChannelConnected,
        Self::ChannelDisconnected,
        Self::ChannelReconnected,
        Self::PairingFailed,
        Self::MessageSent,
        Self::MessageFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChannelConnected => "channel.connected",
            Self::ChannelDisconnected => "channel.disconnected",
            Self::ChannelReconnected => "channel.reconnected",
            Self::PairingFailed => "pairing.failed",
            Self::MessageSent => "message.sent",
            Self::MessageFailed => "message.failed",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// The type of a wire name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/webhooks`: `{url, events?, description?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries go: `https://…` (or `http://…` where the operator allows it), at most
    /// 2000 characters, without a user name or password. Addresses in private, loopback and
    /// link-local ranges are refused (when the URL is created, and again when each delivery
    /// resolves its host) unless the operator allows them.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2000, example = "https://example.com/keebai/webhooks")
    )]
    pub url: String,
    /// The event types to deliver; all of them when left out. Not empty; `webhook.test` is
    /// always delivered by the test route and need not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub events: Option<Vec<WebhookEventType>>,
    /// Up to 200 characters, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub description: Option<String>,
}

/// An endpoint as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// `wh_` and 32 hex digits.
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// The 201 answer of `POST /v1/webhooks`: the endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and the base64 of 32 random bytes: what a Standard Webhooks library verifies
    /// deliveries with. Shown once; rotate it to get a new one.
    pub secret: String,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    pub data: Vec<Webhook>,
}

/// `POST /v1/webhooks/{webhook_id}/rotate-secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretRotated {
    pub webhook_id: String,
    /// The new secret, shown once. It signs every delivery from now on.
    pub secret: String,
    /// Until then (RFC 3339, 24 hours from now) the previous secret signs too, beside the new
    /// one, so that receivers can switch without losing a delivery.
    pub previous_secret_expires_at: String,
}

/// What happened to one event at one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its turn or for its next try.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after 24 hours of tries (it can be sent again by hand).
    Failed,
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// When it was sent (RFC 3339).
    pub attempted_at: String,
    /// The endpoint's HTTP status; absent when it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// From sending to the answer's head (or to the failure), in milliseconds.
    pub latency_ms: u64,
    /// Why there was no answer (time-out, refused connection, an address that is not
    /// allowed), or the start of a non-2xx answer's body (at most 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event's delivery to one endpoint, with its tries (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// `dlv_` and 32 hex digits.
    pub delivery_id: String,
    /// The `webhook-id` header: the same on every try and every resend of the event, so that
    /// receivers can drop duplicates.
    pub event_id: String,
    pub event_type: WebhookEventType,
    pub status: DeliveryStatus,
    /// RFC 3339.
    pub created_at: String,
    /// When the next try is due (pending deliveries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

/// `GET /v1/webhooks/{webhook_id}/deliveries`: the 50 most recent, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryList {
    pub data: Vec<Delivery>,
}

/// The 202 answer of the test route and of a resend: the delivery that was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryQueued {
    pub delivery_id: String,
    pub event_id: String,
}

/// The body of every delivery: `{type, timestamp, data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    /// When the change happened (RFC 3339, UTC, milliseconds). The `webhook-timestamp` header is
    /// the time of the try instead.
    pub timestamp: String,
    pub data: WebhookEventData,
}

/// The `data` of an event, by its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum WebhookEventData {
    /// `channel.*`.
    Channel(ChannelEventData),
    /// `pairing.failed`.
    Pairing(PairingFailedData),
    /// `message.*`.
    Message(MessageEventData),
    /// `webhook.test`.
    Test(WebhookTestData),
}

/// `data` of `channel.connected`, `channel.disconnected` and `channel.reconnected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelEventData {
    pub channel_id: String,
    /// E.164.
    pub phone_number: String,
    /// `channel.disconnected` only: why, as a stable code: `removed_on_phone`,
    /// `not_logged_in` (a send found the device logged out), `device_gone` (not linked any more
    /// when the server started), `simulated` (the simulated phone), or the code of the reason
    /// WhatsApp gave for ending the connection (`logged_out`, `stream_replaced`,
    /// `temporary_ban`, `connect_failure`, `client_outdated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `channel.disconnected` only: the same, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `data` of `pairing.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingFailedData {
    pub session_id: String,
    /// The `failed` event's code on the session's stream.
    pub code: FailureCode,
    pub reason: String,
}

/// `data` of `message.sent` and `message.failed`. The text is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageEventData {
    pub message_id: String,
    pub channel_id: String,
}

/// `data` of `webhook.test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTestData {
    pub webhook_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_use_their_wire_names() {
        for t in WebhookEventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(WebhookEventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(WebhookEventType::parse("channel.*"), None);
    }
}
