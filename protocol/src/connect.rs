//! Starting a pairing session: `POST /v1/channels/whatsapp/connect`.

use serde::{Deserialize, Serialize};

/// How the channel is connected. Only QR (a WhatsApp linked device) exists here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    Qr,
}

/// The connect body: `{"mode":"qr","name"?: string}`.
///
/// Unknown fields are rejected so that a typo (`"nmae"`) is an error, not a silently ignored option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    pub mode: ConnectMode,
    /// The channel's display name; `"WhatsApp QR"` when absent or `null`. 1 to 100 characters
    /// after trimming surrounding white space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\s\x00-\x1F\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$"
        )
    )]
    pub name: Option<String>,
}

/// The 201 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectResponse {
    /// `qrs_` followed by 32 lowercase hex digits (128 random bits).
    pub session_id: String,
    /// The relative SSE path of this session (resolve it against the API's base URL).
    pub stream_url: String,
    /// Seconds until the pairing window closes (300 by default).
    pub expires_in: u64,
}
