//! Sending on a channel: `POST /v1/messages/text`.

use serde::{Deserialize, Serialize};

/// `{channel_id, to, text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendTextRequest {
    pub channel_id: String,
    /// E.164 recipient, e.g. `+56912345678`.
    pub to: String,
    /// 1 to 4096 characters.
    pub text: String,
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Handed to WhatsApp through the linked device.
    Sent,
}

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendTextResponse {
    pub message_id: String,
    pub status: MessageStatus,
}
