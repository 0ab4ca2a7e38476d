//! Path and body values that several routes parse alike.

use keebai_protocol::ErrorCode;

use super::error::ApiError;
use crate::domain::{ChannelId, PhoneNumber};

/// A `channel_id` field or parameter: 400 `INVALID_ID` unless it is `ch_` and 32 hex digits.
pub fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(raw)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidId, format!("`channel_id`: {e}.")))
}

/// A phone number field named `field`: 400 `INVALID_PHONE_NUMBER` unless it is E.164.
pub fn phone_number(field: &str, raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidPhoneNumber, format!("`{field}`: {e}.")))
}
