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
    WebhookEventType,
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
        keebai_protocol::WebhookEvent, keebai_protocol::WebhookEventData,
        keebai_protocol::ChannelEventData, keebai_protocol::PairingFailedData,
        keebai_protocol::MessageEventData, keebai_protocol::WebhookTestData, WebhookEventType,
    )),
    modifiers(&BearerToken, &Webhooks),
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

/// The deliveries a webhook endpoint receives, as OpenAPI 3.1 `webhooks`: one POST per event
/// type, with the Standard Webhooks headers.
struct Webhooks;

impl Modify for Webhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::response::ResponseBuilder;
        use utoipa::openapi::{
            ContentBuilder, HttpMethod, ObjectBuilder, PathItem, PathsBuilder, Ref, Required, Type,
        };
        let header = |name: &str, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        let mut webhooks = PathsBuilder::new();
        for kind in WebhookEventType::ALL {
            let (what, data) = match kind {
                WebhookEventType::ChannelConnected => {
                    ("A phone number was linked as a new channel.", "ChannelEventData")
                }
                WebhookEventType::ChannelDisconnected => (
                    "A connected channel became `disconnected`; `data.code` and `data.reason` say why.",
                    "ChannelEventData",
                ),
                WebhookEventType::ChannelReconnected => (
                    "A number the account had linked before was linked again; its channel (same id) is connected again.",
                    "ChannelEventData",
                ),
                WebhookEventType::PairingFailed => {
                    ("A pairing session ended with `failed`.", "PairingFailedData")
                }
                WebhookEventType::MessageSent => {
                    ("A text was handed to WhatsApp.", "MessageEventData")
                }
                WebhookEventType::MessageFailed => {
                    ("A text could not be sent.", "MessageEventData")
                }
                WebhookEventType::WebhookTest => {
                    ("Sent by `POST /v1/webhooks/{webhook_id}/test`.", "WebhookTestData")
                }
            };
            let operation = OperationBuilder::new()
                .summary(Some(kind.as_str()))
                .description(Some(format!(
                    "{what} The body is a `WebhookEvent` with `type` `{kind}` and a `{data}` as \
                     `data`, signed as Standard Webhooks specifies (verify it with a \
                     `standardwebhooks` library and the endpoint's `whsec_` secret). Answer 2xx \
                     within 10 s; anything else is retried with back-off for 24 hours."
                )))
                .parameter(header("webhook-id", "The event's id (`evt_…`): the same on every try; drop duplicates by it."))
                .parameter(header("webhook-timestamp", "Seconds since the Unix epoch when this try was signed."))
                .parameter(header("webhook-signature", "`v1,<base64 HMAC-SHA256>`, space-separated: one per live secret (two during a rotation)."))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("WebhookEvent"))).build(),
                        )
                        .required(Some(Required::True))
                        .build(),
                ))
                .response("2XX", ResponseBuilder::new().description("Received").build())
                .build();
            webhooks = webhooks.path(kind.as_str(), PathItem::new(HttpMethod::Post, operation));
        }
        openapi.webhooks = Some(webhooks.build());
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
