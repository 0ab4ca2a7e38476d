//! The OpenAPI document describes exactly the `/v1` routes the server serves.

use keebai_protocol::ErrorCode;
use keebai_test_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The `/v1` contract (DESIGN.md): adding a route without describing it, or describing one
/// that does not exist, fails here.
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/channels/whatsapp/connect"),
    ("delete", "/v1/channels/whatsapp/connect/{session_id}"),
    ("get", "/v1/channels/whatsapp/connect/{session_id}/qr-stream"),
    ("post", "/v1/channels/whatsapp/connect/{session_id}/pairing-code"),
    ("get", "/v1/whatsapp/numbers"),
    ("post", "/v1/messages/text"),
    ("post", "/v1/messages/template"),
    ("post", "/v1/messages/bulk"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("delete", "/v1/webhooks/{webhook_id}"),
    ("post", "/v1/webhooks/{webhook_id}/rotate-secret"),
    ("post", "/v1/webhooks/{webhook_id}/test"),
    ("get", "/v1/webhooks/{webhook_id}/deliveries"),
    ("post", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/v1/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

fn operations(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.push((method.clone(), path.clone()));
            }
        }
    }
    operations.sort();
    operations
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_exactly_the_v1_routes() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    assert_eq!(document["info"]["version"], "v1", "the API's version, not the software's");
    let mut contract: Vec<(String, String)> =
        CONTRACT.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    contract.sort();
    assert_eq!(operations(&document), contract);

    // The stream is described as `text/event-stream`; every route that needs a token says so
    // and documents the error shape.
    let stream = &document["paths"]["/v1/channels/whatsapp/connect/{session_id}/qr-stream"]["get"];
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object(), "{stream}");
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (method, path) in CONTRACT.iter().filter(|(_, p)| *p != "/v1/openapi.json") {
        let operation = &document["paths"][path][method];
        let unauthorized = &operation["responses"]["401"]["content"]["application/json"]["schema"];
        assert_eq!(unauthorized["$ref"], "#/components/schemas/ErrorBody", "{method} {path}");
    }
    let codes = &document["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(codes.as_array().unwrap().contains(&json!("QR_NOT_SUPPORTED_FOR_TEMPLATE_OR_BULK")));

    // Every event a webhook delivers is described under `webhooks`, with the Standard Webhooks
    // headers and the event's schema.
    let webhooks = document["webhooks"].as_object().expect("a webhooks section");
    let names: Vec<&str> = webhooks.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> =
        keebai_protocol::WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
    expected.sort();
    assert_eq!(names, expected);
    for (name, item) in webhooks {
        let post = &item["post"];
        let headers: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(headers, ["webhook-id", "webhook-timestamp", "webhook-signature"], "{name}");
        let schema = &post["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["$ref"], "#/components/schemas/WebhookEvent", "{name}");
    }
    for schema in ["WebhookEvent", "ChannelEventData", "PairingFailedData", "MessageEventData"] {
        assert!(document["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let id = "qrs_00000000000000000000000000000000";
    for (method, path) in operations(&document) {
        let url = app.url(&path.replace("{session_id}", id));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = app.client.request(method.clone(), &url).bearer_auth(&app.token);
        if method == Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if response.status() == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            assert_ne!(body["error"]["code"], ErrorCode::NotFound.as_str(), "{method} {path}");
        }
    }
}
