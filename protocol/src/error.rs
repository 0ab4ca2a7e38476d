//! The error body every non-2xx JSON answer carries: `{"error":{"code":"UPPER_SNAKE","message":"…"}}`.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients branch on this, never on `message`.
///
/// Unknown codes from a newer server deserialize as [`ErrorCode::Unknown`] so old clients keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 401: no bearer token, or one that is unknown or revoked.
    Unauthenticated,
    /// 403: the token is valid but lacks the route's scope.
    InsufficientScope,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the body is JSON but not of the expected shape (wrong type, unknown field, not an object).
    InvalidRequest,
    /// 400: `mode` is missing or not `"qr"`.
    InvalidMode,
    /// 400: the channel name is empty or over 100 characters.
    InvalidName,
    /// 400: `pipeline_id` or `coexistence_enabled` sent with QR mode.
    QrModeCannotUseCoexistenceOrPipeline,
    /// 400: a phone number that is not E.164 (`+` and 8 to 15 digits).
    InvalidPhoneNumber,
    /// 400: a message text that is empty or too long.
    InvalidText,
    /// 400: an id that is not of the expected form (`ch_…`, `qrs_…`).
    InvalidId,
    /// 400: a webhook URL that is not an allowed target (not `https://`, holds a user name or
    /// password, names a private address, or is too long).
    InvalidWebhookUrl,
    /// 400: a webhook's `events` is empty or names an unknown type.
    InvalidEvents,
    /// 400: a webhook's description is over 200 characters.
    InvalidDescription,
    /// 400: template and bulk messages cannot be sent on a QR (linked-device) channel.
    QrNotSupportedForTemplateOrBulk,
    /// 404: no such pairing session for this account (or it ended more than 60 s ago).
    SessionNotFound,
    /// 404: no such channel for this account.
    ChannelNotFound,
    /// 404: the simulated phone scanned a string that no session ever showed.
    QrNotFound,
    /// 404: the simulated phone typed a pairing code, but no session asked for one for its
    /// number.
    CodeNotFound,
    /// 404: no such webhook endpoint for this account.
    WebhookNotFound,
    /// 404: no such delivery of this endpoint.
    DeliveryNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the scanned QR is no longer the session's current one.
    QrExpired,
    /// 409: the channel is not connected (unlinked or logged out on the phone).
    ChannelDisconnected,
    /// 409: a pairing code was asked for a session that the phone already scanned, or that
    /// ended.
    SessionNotWaiting,
    /// 409: the simulated phone typed a pairing code that is not its session's current code.
    WrongCode,
    /// 413: the request body is over 64 KiB.
    PayloadTooLarge,
    /// 415: a JSON body was sent without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 429: too many live pairing sessions for this account.
    TooManySessions,
    /// 429: too many failed authentications from this client; wait `Retry-After` seconds.
    TooManyAuthFailures,
    /// 429: this session asked for pairing codes for too many numbers, or WhatsApp refuses more
    /// codes for now.
    TooManyCodeRequests,
    /// 429: the account has as many webhook endpoints as allowed (20).
    TooManyWebhooks,
    /// 500: something failed inside the server; the details are in its log, never in the answer.
    Internal,
    /// 503: the server cannot serve this now (store unavailable, channel not ready, shutting down).
    ServiceUnavailable,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire spelling, e.g. `"SESSION_NOT_FOUND"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::InvalidJson => "INVALID_JSON",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidMode => "INVALID_MODE",
            Self::InvalidName => "INVALID_NAME",
            Self::QrModeCannotUseCoexistenceOrPipeline => {
                "QR_MODE_CANNOT_USE_COEXISTENCE_OR_PIPELINE"
            }
            Self::InvalidPhoneNumber => "INVALID_PHONE_NUMBER",
            Self::InvalidText => "INVALID_TEXT",
            Self::InvalidId => "INVALID_ID",
            Self::InvalidWebhookUrl => "INVALID_WEBHOOK_URL",
            Self::InvalidEvents => "INVALID_EVENTS",
            Self::InvalidDescription => "INVALID_DESCRIPTION",
            Self::WebhookNotFound => "WEBHOOK_NOT_FOUND",
            Self::DeliveryNotFound => "DELIVERY_NOT_FOUND",
            Self::TooManyWebhooks => "TOO_MANY_WEBHOOKS",
            Self::QrNotSupportedForTemplateOrBulk => "QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::ChannelNotFound => "CHANNEL_NOT_FOUND",
            Self::QrNotFound => "QR_NOT_FOUND",
            Self::CodeNotFound => "CODE_NOT_FOUND",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::QrExpired => "QR_EXPIRED",
            Self::ChannelDisconnected => "CHANNEL_DISCONNECTED",
            Self::SessionNotWaiting => "SESSION_NOT_WAITING",
            Self::WrongCode => "WRONG_CODE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManySessions => "TOO_MANY_SESSIONS",
            Self::TooManyAuthFailures => "TOO_MANY_AUTH_FAILURES",
            Self::TooManyCodeRequests => "TOO_MANY_CODE_REQUESTS",
            Self::Internal => "INTERNAL",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_spelling() {
        for code in [
            ErrorCode::QrModeCannotUseCoexistenceOrPipeline,
            ErrorCode::QrNotSupportedForTemplateOrBulk,
            ErrorCode::SessionNotFound,
            ErrorCode::Unauthenticated,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn unknown_codes_from_a_newer_server_still_parse() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"SOMETHING_NEW","message":"x"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }
}
