//! Answers that several routes document alike, written once for the OpenAPI document. Never
//! built: they only describe responses.

use keebai_protocol::ErrorBody;

/// The answers of every route that takes a token, documented once: list it in a route's
/// `responses(…)`. (`POST /v1/channels/whatsapp/connect` lists its own, as its 429 has a second
/// cause.) Never built: it only describes responses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum AuthErrors {
    #[response(status = 401, description = "No valid token (`UNAUTHENTICATED`)")]
    Unauthenticated(ErrorBody),
    #[response(status = 403, description = "The token lacks the scope (`INSUFFICIENT_SCOPE`)")]
    InsufficientScope(ErrorBody),
    #[response(
        status = 429,
        description = "Too many failed authentications from this address (`TOO_MANY_AUTH_FAILURES`)"
    )]
    TooManyAuthFailures(ErrorBody),
}

/// What every route that reads a JSON body answers to a bad one. Never built: it only
/// describes responses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(
        status = 400,
        description = "A bad body (`INVALID_JSON`, `INVALID_REQUEST`, … see the code)"
    )]
    BadRequest(ErrorBody),
    #[response(status = 413, description = "The body is over 64 KiB (`PAYLOAD_TOO_LARGE`)")]
    PayloadTooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "The body is not sent as JSON (`UNSUPPORTED_MEDIA_TYPE`)"
    )]
    UnsupportedMediaType(ErrorBody),
}

/// What `/v1/messages/template` and `/v1/messages/bulk` answer besides [`AuthErrors`]. Never
/// built: it only describes responses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum TemplateOrBulkErrors {
    #[response(
        status = 400,
        description = "`QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK`, or a bad body"
    )]
    BadRequest(ErrorBody),
    #[response(status = 413, description = "The body is over 64 KiB (`PAYLOAD_TOO_LARGE`)")]
    PayloadTooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "The body is not sent as JSON (`UNSUPPORTED_MEDIA_TYPE`)"
    )]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 404,
        description = "No such channel for this account (`CHANNEL_NOT_FOUND`)"
    )]
    ChannelNotFound(ErrorBody),
    #[response(
        status = 503,
        description = "The store or the channel is unavailable right now; retry (`SERVICE_UNAVAILABLE`)"
    )]
    ServiceUnavailable(ErrorBody),
}
