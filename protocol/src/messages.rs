//! Sending on a channel: `POST /v1/messages/text`.

use serde::{Deserialize, Serialize};

/// `{channel_id, to, text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendTextRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^ch_[0-9a-f]{32}$"))]
    pub channel_id: String,
    /// E.164 recipient, e.g. `+56912345678`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^\+[1-9][0-9]{7,14}$", example = "+56912345678")
    )]
    pub to: String,
    /// 1 to 4096 characters, not only white space; line breaks and tabs are the only control
    /// characters allowed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 4096,
            pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
        )
    )]
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
