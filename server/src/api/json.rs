use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use keebai_protocol::ErrorCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// `axum::Json`, with every rejection turned into an [`ApiError`] so that bad bodies answer in
/// the same shape as every other error.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| Self(v)).map_err(ApiError::from)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                ApiError::refused(ErrorCode::InvalidRequest, serde_detail(&e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::refused(
                ErrorCode::InvalidJson,
                format!("The body is not valid JSON: {}", serde_detail(&e.body_text())),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::refused(ErrorCode::InvalidRequest, other.body_text()),
        }
    }
}

/// axum prefixes serde's message with its own sentence; keep serde's precise part.
fn serde_detail(text: &str) -> String {
    match text.split_once(": ") {
        Some((_, detail)) => detail.to_owned(),
        None => text.to_owned(),
    }
}
