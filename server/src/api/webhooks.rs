//! `/v1/webhooks`: an account's signed webhook endpoints and their deliveries (scope
//! `webhooks:manage`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keebai_protocol::{
    CreateWebhookRequest, DeliveryList, DeliveryQueued, ErrorBody, ErrorCode, Scope, SecretRotated,
    WebhookCreated, WebhookList,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::responses::{AuthErrors, BodyErrors};
use super::{ApiError, AppState, Authenticated};
use crate::domain::{DeliveryId, WebhookId};
use crate::webhooks::WebhookError;
use crate::webhooks::endpoints::NewEndpoint;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(resend))
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        let code = match &error {
            WebhookError::Store(_) => match error {
                WebhookError::Store(error) => return error.into(),
                _ => unreachable!("matched just above"),
            },
            WebhookError::Url(_) => ErrorCode::InvalidWebhookUrl,
            WebhookError::NoEvents => ErrorCode::InvalidEvents,
            WebhookError::Description => ErrorCode::InvalidDescription,
            WebhookError::TooMany => ErrorCode::TooManyWebhooks,
            WebhookError::NotFound => ErrorCode::WebhookNotFound,
            WebhookError::DeliveryNotFound => ErrorCode::DeliveryNotFound,
        };
        ApiError::refused(code, error.to_string())
    }
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(raw)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidId, format!("`webhook_id`: {e}.")))
}

fn delivery_id(raw: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(raw)
        .map_err(|e| ApiError::refused(ErrorCode::InvalidId, format!("`delivery_id`: {e}.")))
}

/// Creates an endpoint. The answer holds its signing secret, shown this once.
#[utoipa::path(
    post,
    path = keebai_protocol::WEBHOOKS_PATH,
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = WebhookCreated),
        BodyErrors,
        AuthErrors,
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn create(
    auth: Authenticated,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    let new = NewEndpoint {
        url: &body.url,
        events: body.events.as_deref(),
        description: body.description.as_deref(),
    };
    let created = state.webhooks.create(account, new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The account's endpoints, oldest first, without their secrets.
#[utoipa::path(
    get,
    path = keebai_protocol::WEBHOOKS_PATH,
    tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints of the token’s account", body = WebhookList),
        AuthErrors,
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn list(
    auth: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<WebhookList>, ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    Ok(Json(WebhookList { data: state.webhooks.list(account).await? }))
}

/// Removes an endpoint; its pending deliveries are not sent.
#[utoipa::path(
    delete,
    path = keebai_protocol::WEBHOOK_ROUTE,
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_` + 32 hex digits")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A malformed id (`INVALID_ID`)", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such endpoint for this account (`WEBHOOK_NOT_FOUND`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn remove(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    state.webhooks.remove(account, &webhook_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new signing secret. The previous one keeps signing beside it for 24 hours (each
/// delivery then carries two `v1,` signatures), so receivers switch without losing one.
#[utoipa::path(
    post,
    path = keebai_protocol::WEBHOOK_ROTATE_ROUTE,
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_` + 32 hex digits")),
    responses(
        (status = 200, description = "The new secret, shown this once", body = SecretRotated),
        (status = 400, description = "A malformed id (`INVALID_ID`)", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such endpoint for this account (`WEBHOOK_NOT_FOUND`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn rotate_secret(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<SecretRotated>, ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    Ok(Json(state.webhooks.rotate(account, &webhook_id(&raw_id)?).await?))
}

/// Queues a `webhook.test` event for this endpoint (whatever it subscribes to).
#[utoipa::path(
    post,
    path = keebai_protocol::WEBHOOK_TEST_ROUTE,
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_` + 32 hex digits")),
    responses(
        (status = 202, description = "Queued; follow it in the deliveries list", body = DeliveryQueued),
        (status = 400, description = "A malformed id (`INVALID_ID`)", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such endpoint for this account (`WEBHOOK_NOT_FOUND`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn test(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryQueued>), ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    let queued = state.webhooks.test(account, &webhook_id(&raw_id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// The endpoint's 50 most recent deliveries, newest first, each with its tries (status and
/// latency).
#[utoipa::path(
    get,
    path = keebai_protocol::WEBHOOK_DELIVERIES_ROUTE,
    tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_` + 32 hex digits")),
    responses(
        (status = 200, description = "Recent deliveries", body = DeliveryList),
        (status = 400, description = "A malformed id (`INVALID_ID`)", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such endpoint for this account (`WEBHOOK_NOT_FOUND`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn deliveries(
    auth: Authenticated,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    Ok(Json(DeliveryList {
        data: state.webhooks.deliveries(account, &webhook_id(&raw_id)?).await?,
    }))
}

/// Sends a delivery's event again: a new delivery at the end of the endpoint's order, with the
/// same `webhook-id`.
#[utoipa::path(
    post,
    path = keebai_protocol::WEBHOOK_RETRY_ROUTE,
    tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "`wh_` + 32 hex digits"),
        ("delivery_id" = String, Path, description = "`dlv_` + 32 hex digits"),
    ),
    responses(
        (status = 202, description = "Queued again", body = DeliveryQueued),
        (status = 400, description = "A malformed id (`INVALID_ID`)", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such endpoint (`WEBHOOK_NOT_FOUND`) or delivery (`DELIVERY_NOT_FOUND`)", body = ErrorBody),
        (status = 503, description = "The store is unavailable right now; retry (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
async fn resend(
    auth: Authenticated,
    State(state): State<AppState>,
    Path((raw_id, raw_delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryQueued>), ApiError> {
    let account = auth.require(Scope::WebhooksManage)?;
    let (id, delivery) = (webhook_id(&raw_id)?, delivery_id(&raw_delivery)?);
    let queued = state.webhooks.resend(account, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}
