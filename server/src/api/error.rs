use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keebai_protocol::{ErrorBody, ErrorCode, Scope};

use crate::channels::ChannelError;
use crate::pairing::PairingError;
use crate::store::StoreError;

/// Every failure of the API. Each has one code, and each code one status ([`status_of`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `UNAUTHENTICATED`, with `WWW-Authenticate: Bearer`.
    #[error("A valid bearer token is required: send `Authorization: Bearer kbai_pk_…`.")]
    Unauthenticated,
    /// 403 `INSUFFICIENT_SCOPE`.
    #[error("This token lacks the `{0}` scope.")]
    InsufficientScope(Scope),
    /// 404 `SESSION_NOT_FOUND`.
    #[error("No such pairing session (it may have ended more than 60 seconds ago).")]
    SessionNotFound,
    /// 404 `CHANNEL_NOT_FOUND`.
    #[error("No such channel.")]
    ChannelNotFound,
    /// 404 `NOT_FOUND`: no such route.
    #[error("No such route.")]
    NoSuchRoute,
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("This method is not allowed on this route.")]
    MethodNotAllowed,
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("The request body is larger than 64 KiB.")]
    PayloadTooLarge,
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    #[error("Send the body as JSON with `Content-Type: application/json`.")]
    UnsupportedMediaType,
    /// 429 `TOO_MANY_SESSIONS`.
    #[error("This account already has {0} live pairing sessions; finish or cancel some first.")]
    TooManySessions(usize),
    /// 429 `TOO_MANY_AUTH_FAILURES`, with `Retry-After` (see [`super::limit`]).
    #[error("Too many failed authentications from this address; retry after {} s.", retry_after_secs(.0))]
    TooManyAuthFailures(std::time::Duration),
    /// A refusal whose message names what to fix (a bad field, an expired QR code, a
    /// disconnected channel): the status is the code's ([`status_of`]), always a 4xx.
    #[error("{1}")]
    Refused(ErrorCode, String),
    /// 503 `SERVICE_UNAVAILABLE`: a condition that clears by itself (store, channel, shutdown).
    /// The cause, if any, is logged once with the message, never sent.
    #[error("{0}")]
    Unavailable(String, #[source] Option<anyhow::Error>),
    /// 500 `INTERNAL`. The source is logged once, never sent.
    #[error("Internal error.")]
    Internal(#[source] anyhow::Error),
}

/// The status of each code: the one place where codes meet statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidJson
        | ErrorCode::InvalidRequest
        | ErrorCode::InvalidMode
        | ErrorCode::InvalidName
        | ErrorCode::QrModeCannotUseCoexistenceOrPipeline
        | ErrorCode::InvalidPhoneNumber
        | ErrorCode::InvalidText
        | ErrorCode::InvalidId
        | ErrorCode::InvalidWebhookUrl
        | ErrorCode::InvalidEvents
        | ErrorCode::InvalidDescription
        | ErrorCode::QrNotSupportedForTemplateOrBulk => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::SessionNotFound
        | ErrorCode::ChannelNotFound
        | ErrorCode::QrNotFound
        | ErrorCode::CodeNotFound
        | ErrorCode::WebhookNotFound
        | ErrorCode::DeliveryNotFound
        | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::QrExpired
        | ErrorCode::ChannelDisconnected
        | ErrorCode::SessionNotWaiting
        | ErrorCode::WrongCode => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::TooManySessions
        | ErrorCode::TooManyWebhooks
        | ErrorCode::TooManyAuthFailures
        | ErrorCode::TooManyCodeRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// A 4xx refusal with its own message (see [`ApiError::Refused`]).
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        debug_assert!(status_of(code).is_client_error(), "{code} is not a refusal");
        Self::Refused(code, message.into())
    }

    /// A 503 without a cause worth logging beyond its message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into(), None)
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Self::SessionNotFound => ErrorCode::SessionNotFound,
            Self::ChannelNotFound => ErrorCode::ChannelNotFound,
            Self::NoSuchRoute => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::TooManySessions(_) => ErrorCode::TooManySessions,
            Self::TooManyAuthFailures(_) => ErrorCode::TooManyAuthFailures,
            Self::Refused(code, _) => *code,
            Self::Unavailable(..) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Whole seconds to wait, rounded up (at least 1).
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = status_of(code);
        // The one place a 5xx cause is logged.
        match &self {
            Self::Internal(source) => tracing::error!(error = ?source, "internal error"),
            Self::Unavailable(message, Some(cause)) => {
                tracing::warn!(%message, cause = ?cause, "service unavailable")
            }
            Self::Unavailable(message, None) => tracing::warn!(%message, "service unavailable"),
            _ => {}
        }
        let mut response = (status, Json(ErrorBody::new(code, self.to_string()))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyAuthFailures(wait) = self {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs(&wait).into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => Self::Unavailable(
                "The store is temporarily unavailable; retry shortly.".into(),
                Some(source.into()),
            ),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<PairingError> for ApiError {
    fn from(error: PairingError) -> Self {
        match error {
            PairingError::NotFound => Self::SessionNotFound,
            PairingError::TooManySessions { limit } => Self::TooManySessions(limit),
            PairingError::ShuttingDown => Self::unavailable("The server is shutting down."),
            PairingError::Unavailable => {
                Self::unavailable("The service is unavailable right now; try again shortly.")
            }
            PairingError::NotWaiting => Self::refused(
                ErrorCode::SessionNotWaiting,
                "This session no longer waits for a phone: it was scanned already, or it ended.",
            ),
            PairingError::TooManyCodeRequests => Self::refused(
                ErrorCode::TooManyCodeRequests,
                format!(
                    "This session asked for pairing codes for {} numbers already; start a new \
                     session.",
                    crate::pairing::MAX_CODE_NUMBERS
                ),
            ),
            PairingError::CodeRefused(reason) => Self::refused(
                ErrorCode::TooManyCodeRequests,
                format!("WhatsApp gave no pairing code right now ({reason}); try again later."),
            ),
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::NotFound => Self::ChannelNotFound,
            ChannelError::Disconnected => Self::refused(
                ErrorCode::ChannelDisconnected,
                "This channel is disconnected (unlinked or logged out on the phone). Pair it again.",
            ),
            ChannelError::NotConnected => {
                Self::unavailable("This channel is not connected right now; retry shortly.")
            }
            ChannelError::Store(error) => error.into(),
            ChannelError::Send(error) => Self::Internal(error),
            ChannelError::Unconfirmed => Self::unavailable(
                "The server that runs this channel took the message but did not confirm it in \
                 time; it may have been sent. Check with the recipient before sending it again.",
            ),
            ChannelError::ClusterUnavailable => {
                Self::unavailable("The service is unavailable right now; try again shortly.")
            }
        }
    }
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub(super) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}
