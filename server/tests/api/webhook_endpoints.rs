//! `/v1/webhooks`: endpoints per account, shown secrets, refusals that change nothing.

use keebai_protocol::{
    ErrorCode, Scope, WEBHOOK_DELIVERIES_ROUTE, WEBHOOK_ROTATE_ROUTE, WEBHOOK_ROUTE,
    WEBHOOK_TEST_ROUTE, WEBHOOKS_PATH, WebhookList, webhook_path,
};
use keebai_test_support::{TestApp, assert_error, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::webhook_delivery::add;

async fn list(app: &TestApp, token: &str) -> WebhookList {
    let response = app.get(WEBHOOKS_PATH, Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::Response {
    app.client.request(method, app.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn endpoints_are_created_listed_without_secrets_and_removed() {
    let app = spawn_app().await;
    let created = add(&app, "https://example.com/keebai", None).await;
    assert!(created.webhook.webhook_id.starts_with("wh_"));
    assert!(created.secret.starts_with("whsec_"), "{}", created.secret);
    let all: Vec<&str> = created.webhook.events.iter().map(|e| e.as_str()).collect();
    assert_eq!(
        all,
        [
            "channel.connected",
            "channel.disconnected",
            "channel.reconnected",
            "pairing.failed",
            "message.sent",
            "message.failed"
        ]
    );
    let some = app
        .post_json(
            WEBHOOKS_PATH,
            Some(&app.token),
            &json!({"url": "https://example.com/b", "events": ["message.failed", "channel.disconnected", "message.failed"], "description": "Ventas"}),
        )
        .await;
    assert_eq!(some.status(), StatusCode::CREATED);
    let some: Value = some.json().await.unwrap();
    assert_eq!(some["events"], json!(["channel.disconnected", "message.failed"]));

    let raw = app.get(WEBHOOKS_PATH, Some(&app.token)).await.text().await.unwrap();
    assert!(!raw.contains("whsec_") && !raw.contains("secret"), "{raw}");
    let listed = list(&app, &app.token).await;
    assert_eq!(listed.data.len(), 2);
    assert_eq!(listed.data[0].webhook_id, created.webhook.webhook_id);
    assert_eq!(listed.data[1].description.as_deref(), Some("Ventas"));

    let path = webhook_path(WEBHOOK_ROUTE, &created.webhook.webhook_id);
    assert_eq!(
        call(&app, Method::DELETE, &path, &app.token).await.status(),
        StatusCode::NO_CONTENT
    );
    let again = call(&app, Method::DELETE, &path, &app.token).await;
    assert_error(again, StatusCode::NOT_FOUND, ErrorCode::WebhookNotFound).await;
    assert_eq!(list(&app, &app.token).await.data.len(), 1);
}

#[tokio::test]
async fn another_accounts_endpoints_are_invisible() {
    let app = spawn_app().await;
    let created = add(&app, "https://example.com/keebai", None).await;
    let other = app.token("other", &Scope::ALL).await;
    assert!(list(&app, &other).await.data.is_empty());
    let id = &created.webhook.webhook_id;
    for (method, path) in [
        (Method::DELETE, webhook_path(WEBHOOK_ROUTE, id)),
        (Method::POST, webhook_path(WEBHOOK_ROTATE_ROUTE, id)),
        (Method::POST, webhook_path(WEBHOOK_TEST_ROUTE, id)),
        (Method::GET, webhook_path(WEBHOOK_DELIVERIES_ROUTE, id)),
    ] {
        let response = call(&app, method, &path, &other).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::WebhookNotFound).await;
    }
    assert_eq!(list(&app, &app.token).await.data.len(), 1, "nothing changed");
}

#[tokio::test]
async fn the_scope_is_webhooks_manage() {
    let app = spawn_app().await;
    let without = app.token("acme", &[Scope::ChannelsConnect, Scope::MessagesSend]).await;
    let response = app.get(WEBHOOKS_PATH, Some(&without)).await;
    let message = assert_error(response, StatusCode::FORBIDDEN, ErrorCode::InsufficientScope).await;
    assert!(message.contains("webhooks:manage"), "{message}");
    let response =
        app.post_json(WEBHOOKS_PATH, Some(&without), &json!({"url": "https://example.com"})).await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::InsufficientScope).await;
    let with = app.token("acme", &[Scope::WebhooksManage]).await;
    assert!(list(&app, &with).await.data.is_empty());
}

#[tokio::test]
async fn bad_bodies_and_ids_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let long_url = format!("https://example.com/{}", "a".repeat(2000));
    let cases = [
        (json!({"url": "ftp://example.com"}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": "http://example.com/hooks"}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": "https://user:pw@example.com/hooks"}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": "not a url"}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": "https://169.254.169.254/"}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": long_url}), ErrorCode::InvalidWebhookUrl),
        (json!({"url": "https://example.com", "events": []}), ErrorCode::InvalidEvents),
        (
            json!({"url": "https://example.com", "events": ["webhook.test"]}),
            ErrorCode::InvalidEvents,
        ),
        (json!({"url": "https://example.com", "events": ["channel.*"]}), ErrorCode::InvalidRequest),
        (
            json!({"url": "https://example.com", "description": "d".repeat(201)}),
            ErrorCode::InvalidDescription,
        ),
        (json!({"url": "https://example.com", "secret": "whsec_mine"}), ErrorCode::InvalidRequest),
        (json!({"events": ["message.sent"]}), ErrorCode::InvalidRequest),
    ];
    for (body, code) in cases {
        let response = app.post_json(WEBHOOKS_PATH, Some(&app.token), &body).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert!(!message.contains("user:pw"), "the URL's password is never echoed: {message}");
    }
    for path in [
        webhook_path(WEBHOOK_ROUTE, "wh_nope"),
        webhook_path(WEBHOOK_TEST_ROUTE, "ch_0123456789abcdef0123456789abcdef"),
        format!(
            "{}/dlv_x/retry",
            webhook_path(WEBHOOK_DELIVERIES_ROUTE, "wh_0123456789abcdef0123456789abcdef")
        ),
    ] {
        let method = if path.ends_with("wh_nope") { Method::DELETE } else { Method::POST };
        let response = call(&app, method, &path, &app.token).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidId).await;
    }
    assert!(list(&app, &app.token).await.data.is_empty());
}

#[tokio::test]
async fn an_account_has_at_most_twenty_endpoints() {
    let app = spawn_app().await;
    for n in 0..20 {
        add(&app, &format!("https://example.com/{n}"), None).await;
    }
    let response = app
        .post_json(WEBHOOKS_PATH, Some(&app.token), &json!({"url": "https://example.com/21"}))
        .await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyWebhooks).await;
    assert_eq!(list(&app, &app.token).await.data.len(), 20);
}

#[tokio::test]
async fn a_resend_of_an_unknown_delivery_is_a_404() {
    let app = spawn_app_with(|args| args.webhook_allow_http = false).await;
    let created = add(&app, "https://example.com/keebai", None).await;
    let path = format!(
        "{}/dlv_0123456789abcdef0123456789abcdef/retry",
        webhook_path(WEBHOOK_DELIVERIES_ROUTE, &created.webhook.webhook_id)
    );
    let response = call(&app, Method::POST, &path, &app.token).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::DeliveryNotFound).await;
}
