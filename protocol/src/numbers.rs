//! Paired channels: `GET /v1/whatsapp/numbers`.

use serde::{Deserialize, Serialize};

/// How a channel is connected to WhatsApp. Every channel paired here is `qr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    Qr,
}

/// Whether the linked device is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Connected,
    /// Unlinked or logged out from the phone; pair again to use this number.
    Disconnected,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// One paired number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Number {
    pub channel_id: String,
    pub name: String,
    pub phone_number: String,
    pub push_name: String,
    pub connection_type: ConnectionType,
    pub status: ChannelStatus,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// `{"data":[…]}`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NumbersResponse {
    pub data: Vec<Number>,
}
