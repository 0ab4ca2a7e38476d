//! The OpenAPI 3.1 document of `/v1`, generated from the code: every `/v1` route is registered
//! through a `utoipa_axum` [`OpenApiRouter`] with its `#[utoipa::path]` annotation, so a route
//! and its description cannot part. Served at `GET /v1/openapi.json`.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use keebai_protocol::{
    ChannelStatus, ConnectRequest, ConnectResponse, ConnectedEvent, ConnectionType, DisconnectCode,
    DisconnectedEvent, ErrorBody, ErrorCode, ErrorDetail, EventName, FailedEvent, FailureCode,
    MessageStatus, Number, NumbersResponse, QrEvent, Scope, SendTextRequest, SendTextResponse,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keebai QR connect API",
        // The API's version, not the server's: answers never reveal software versions.
        version = "v1",
        description = "Link a WhatsApp account to a channel by QR code (a WhatsApp linked \
                       device), follow the pairing over Server-Sent Events, list numbers and \
                       send texts. Errors are `{\"error\":{\"code\",\"message\"}}`.",
    ),
    components(schemas(
        ErrorBody, ErrorDetail, ErrorCode, ConnectRequest, ConnectResponse, QrEvent,
        ConnectedEvent, FailedEvent, FailureCode, DisconnectedEvent, DisconnectCode,
        NumbersResponse, Number, ConnectionType, ChannelStatus, SendTextRequest,
        SendTextResponse, MessageStatus, Scope, EventName, super::connect::StreamMessage,
    )),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// The answers of every route that takes a token, documented once: list it in a route's
/// `responses(…)`. (`POST /v1/channels/whatsapp/connect` lists its own, as its 429 has a second
/// cause.) Never built: it only describes responses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum AuthErrors {
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

/// `Authorization: Bearer kbai_pk_…`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kbai_pk_…")
                    .description(Some("A personal access token; each route needs one scope."))
                    .build(),
            ),
        );
    }
}

/// Every `/v1` route with its description.
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(super::connect::router())
        .merge(super::numbers::router())
        .merge(super::messages::router())
        .routes(routes!(document))
}

/// The document alone (what `GET /v1/openapi.json` serves).
pub fn document_of_v1() -> utoipa::openapi::OpenApi {
    v1().into_openapi()
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of /v1", content_type = "application/json")),
)]
async fn document() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(|| {
        serde_json::to_string(&document_of_v1()).unwrap_or_else(|_| "{}".to_owned())
    });
    ([(CONTENT_TYPE, "application/json")], json.as_str())
}
