use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keebai_protocol::{ErrorBody, ErrorCode, Scope};

use crate::channels::ChannelError;
use crate::pairing::PairingError;
use crate::store::StoreError;

/// Every failure of the API, each with one status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `UNAUTHENTICATED`, with `WWW-Authenticate: Bearer`.
    #[error("A valid bearer token is required: send `Authorization: Bearer kbai_pk_…`.")]
    Unauthenticated,
    /// 403 `INSUFFICIENT_SCOPE`.
    #[error("This token lacks the `{0}` scope.")]
    InsufficientScope(Scope),
    /// 400 with the given code (bad body, field or id).
    #[error("{1}")]
    BadRequest(ErrorCode, String),
    /// 404 `SESSION_NOT_FOUND`.
    #[error("No such pairing session (it may have ended more than 60 seconds ago).")]
    SessionNotFound,
    /// 404 `CHANNEL_NOT_FOUND`.
    #[error("No such channel.")]
    ChannelNotFound,
    /// 404 with the given code (`NOT_FOUND` for routes, `QR_NOT_FOUND`).
    #[error("{1}")]
    NotFound(ErrorCode, String),
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("This method is not allowed on this route.")]
    MethodNotAllowed,
    /// 409 with the given code (`QR_EXPIRED`, `CHANNEL_DISCONNECTED`).
    #[error("{1}")]
    Conflict(ErrorCode, String),
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
    /// 503 `SERVICE_UNAVAILABLE`: a condition that clears by itself (store, channel, shutdown).
    #[error("{0}")]
    Unavailable(String),
    /// 500 `INTERNAL`. The source is logged once, never sent.
    #[error("Internal error.")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadRequest(code, message.into())
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            Self::InsufficientScope(_) => (StatusCode::FORBIDDEN, ErrorCode::InsufficientScope),
            Self::BadRequest(code, _) => (StatusCode::BAD_REQUEST, *code),
            Self::SessionNotFound => (StatusCode::NOT_FOUND, ErrorCode::SessionNotFound),
            Self::ChannelNotFound => (StatusCode::NOT_FOUND, ErrorCode::ChannelNotFound),
            Self::NotFound(code, _) => (StatusCode::NOT_FOUND, *code),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Self::Conflict(code, _) => (StatusCode::CONFLICT, *code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType)
            }
            Self::TooManySessions(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManySessions),
            Self::TooManyAuthFailures(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyAuthFailures)
            }
            Self::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable)
            }
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

/// Whole seconds to wait, rounded up (at least 1).
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Internal(source) => tracing::error!(error = ?source, "internal error"),
            Self::Unavailable(message) => tracing::warn!(%message, "service unavailable"),
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
            StoreError::Unavailable(source) => {
                tracing::warn!(error = ?source, "store unavailable");
                Self::Unavailable("The store is temporarily unavailable; retry shortly.".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<PairingError> for ApiError {
    fn from(error: PairingError) -> Self {
        match error {
            PairingError::NotFound => Self::SessionNotFound,
            PairingError::TooManySessions { limit } => Self::TooManySessions(limit),
            PairingError::ShuttingDown => Self::Unavailable("The server is shutting down.".into()),
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::NotFound => Self::ChannelNotFound,
            ChannelError::Disconnected => Self::Conflict(
                ErrorCode::ChannelDisconnected,
                "This channel is disconnected (unlinked or logged out on the phone). Pair it again.".into(),
            ),
            ChannelError::NotConnected => {
                Self::Unavailable("This channel is not connected right now; retry shortly.".into())
            }
            ChannelError::Store(error) => error.into(),
            ChannelError::Send(error) => Self::Internal(error),
        }
    }
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound(ErrorCode::NotFound, "No such route.".into())
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub(super) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
