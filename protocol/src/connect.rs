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

/// `POST /v1/channels/whatsapp/connect/{session_id}/pairing-code`: link by phone number instead
/// of a QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PairingCodeRequest {
    /// E.164 number of the WhatsApp account to link, e.g. `+56912345678`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^\+[1-9][0-9]{7,14}$", example = "+56912345678")
    )]
    pub phone_number: String,
}

/// The 200 answer: the code, which the stream also shows as `pairing_code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingCodeResponse {
    /// Eight characters grouped four and four, e.g. `ABCD-EFGH`.
    pub code: String,
    /// When this code stops being accepted (RFC 3339, UTC); a new one follows on the stream.
    pub expires_at: String,
}
