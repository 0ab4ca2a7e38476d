//! The OpenAPI 3.1 document of `/v1`, generated from the code: every `/v1` route is registered
//! through a `utoipa_axum` `OpenApiRouter` with its `#[utoipa::path]` annotation, so a route
//! and its description cannot part. Served at `GET /v1/openapi.json`.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use keebai_protocol::{
    ChannelStatus, ConnectRequest, ConnectResponse, ConnectedEvent, ConnectionType, DisconnectCode,
    DisconnectedEvent, ErrorBody, ErrorCode, ErrorDetail, EventName, FailedEvent, FailureCode,
    MessageStatus, Number, NumbersResponse, QrEvent, Scope, SendTextRequest, SendTextResponse,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

/// The document's base: info, shared schemas, the bearer scheme. The routes add their paths
/// (see [`super::routes`]).
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The finished document as served, built once when the routes are assembled.
#[derive(Clone)]
pub struct Document(pub Bytes);

/// This document.
#[utoipa::path(
    get,
    path = keebai_protocol::OPENAPI_PATH,
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of /v1", content_type = "application/json")),
)]
pub async fn document(Extension(Document(json)): Extension<Document>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], json)
}
