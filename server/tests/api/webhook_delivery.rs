//! Webhooks end to end: changes made through the API reach receivers written with the
//! `standardwebhooks` libraries (PyPI and npm), through the outbox and the sender, over real
//! HTTP on loopback; with failing, hanging and absent receivers, a `kill -9`, both backends,
//! and targets that must be refused.

use std::time::Duration;

use keebai_protocol::{
    DeliveryList, ErrorCode, Scope, SecretRotated, WEBHOOK_DELIVERIES_ROUTE, WEBHOOK_ROTATE_ROUTE,
    WEBHOOK_TEST_ROUTE, WEBHOOKS_PATH, WebhookCreated, webhook_path,
};
use keebai_server::config::ServeArgs;
use keebai_test_support::{
    Api, PHONE, ServerBinary, TestApp, assert_error, spawn_app_with, spawn_postgres_app,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::webhooks::{Language, Receiver};

/// Receivers on loopback, over http, retried after 50 ms.
fn open(args: &mut ServeArgs) {
    args.webhook_allow_http = true;
    args.webhook_allow_private = true;
    args.webhook_first_retry_ms = 50;
}

async fn app() -> TestApp {
    spawn_app_with(open).await
}

/// Adds an endpoint for `url` (all events unless `events`).
pub(crate) async fn add(api: &Api, url: &str, events: Option<&[&str]>) -> WebhookCreated {
    let mut body = json!({ "url": url });
    if let Some(events) = events {
        body["events"] = json!(events);
    }
    let response = api.post_json(WEBHOOKS_PATH, Some(&api.token), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// `POST …/test`: the event id it queued.
pub(crate) async fn test_event(api: &Api, webhook_id: &str) -> String {
    let path = webhook_path(WEBHOOK_TEST_ROUTE, webhook_id);
    let response = api.post_json(&path, Some(&api.token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued: Value = response.json().await.unwrap();
    queued["event_id"].as_str().unwrap().to_owned()
}

async fn deliveries(api: &Api, webhook_id: &str) -> DeliveryList {
    let response =
        api.get(&webhook_path(WEBHOOK_DELIVERIES_ROUTE, webhook_id), Some(&api.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn unlink(api: &Api, channel_id: &str) {
    let response = api.post_json("/sim/unlink", None, &json!({ "channel_id": channel_id })).await;
    assert!(response.status().is_success(), "{}", response.status());
}

/// The type of a delivered body.
fn kind(body: &Value) -> &str {
    body["type"].as_str().unwrap()
}

#[tokio::test]
async fn channel_message_and_pairing_events_reach_python_and_node_receivers() {
    let app = app().await;
    let (mut python, _) = receiver_for(&app, Language::Python, None).await;
    let subscribed = ["channel.connected", "message.sent", "pairing.failed"];
    let (mut node, _) = receiver_for(&app, Language::Node, Some(&subscribed)).await;

    let channel = app.pair(PHONE).await;
    for receiver in [&mut python, &mut node] {
        let (_, body) = receiver.next_verified().await;
        assert_eq!(kind(&body), "channel.connected");
        assert_eq!(body["data"]["channel_id"], channel.as_str());
        assert_eq!(body["data"]["phone_number"], PHONE);
    }

    let text = "the text itself is never in a webhook";
    let sent: Value = app
        .send_text(&app.token, json!({"channel_id": channel, "to": "+56987654321", "text": text}))
        .await
        .json()
        .await
        .unwrap();
    for receiver in [&mut python, &mut node] {
        let (_, body) = receiver.next_verified().await;
        assert_eq!(kind(&body), "message.sent");
        assert_eq!(body["data"]["message_id"], sent["message_id"]);
        assert_eq!(body["data"]["channel_id"], channel.as_str());
        assert!(!body.to_string().contains("text itself"), "{body}");
    }

    let session = app.connect_ok().await;
    app.cancel(&app.token, &session.session_id).await;
    for receiver in [&mut python, &mut node] {
        let (_, body) = receiver.next_verified().await;
        assert_eq!(kind(&body), "pairing.failed");
        assert_eq!(body["data"]["session_id"], session.session_id.as_str());
        assert_eq!(body["data"]["code"], "cancelled");
    }

    // Only the Python endpoint subscribes to channel.disconnected.
    unlink(&app, &channel).await;
    let (_, body) = python.next_verified().await;
    assert_eq!(kind(&body), "channel.disconnected");
    assert_eq!(body["data"]["code"], "simulated");
    assert!(node.quiet_for(Duration::from_millis(500)).await, "an event it did not subscribe to");
}

/// An endpoint and a receiver that trusts its secret, on the port the endpoint names.
async fn receiver_for(
    app: &Api,
    language: Language,
    events: Option<&[&str]>,
) -> (Receiver, WebhookCreated) {
    receiver_with(app, language, events, &[]).await
}

async fn receiver_with(
    app: &Api,
    language: Language,
    events: Option<&[&str]>,
    options: &[&str],
) -> (Receiver, WebhookCreated) {
    let port = free_port();
    let created = add(app, &format!("http://127.0.0.1:{port}/hooks"), events).await;
    let port = port.to_string();
    let mut options = options.to_vec();
    options.extend(["--port", &port]);
    let receiver = Receiver::start_with(language, &[&created.secret], &options).await;
    (receiver, created)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_either_receiver_verifies() {
    let app = app().await;
    for language in [Language::Python, Language::Node] {
        let port = free_port();
        let created = add(&app, &format!("http://127.0.0.1:{port}/hooks"), None).await;
        let path = webhook_path(WEBHOOK_ROTATE_ROUTE, &created.webhook.webhook_id);
        let response = app.post_json(&path, Some(&app.token), &json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rotated: SecretRotated = response.json().await.unwrap();
        assert_ne!(rotated.secret, created.secret);
        assert!(rotated.secret.starts_with("whsec_"));

        // One receiver checks with the old secret and, separately, with the new one.
        let port = port.to_string();
        let mut receiver =
            Receiver::start_with(language, &[&created.secret, &rotated.secret], &["--port", &port])
                .await;
        let id = test_event(&app, &created.webhook.webhook_id).await;
        let said = receiver.next().await;
        assert_eq!(said["id"], id.as_str(), "{language:?}");
        assert_eq!(said["verified"], json!([true, true]), "{language:?}: {said}");
    }
}

#[tokio::test]
async fn a_receiver_that_fails_five_times_gets_the_event_once_more_with_the_same_id() {
    let app = app().await;
    let (mut receiver, created) =
        receiver_with(&app, Language::Python, None, &["--fail", "5"]).await;
    let id = test_event(&app, &created.webhook.webhook_id).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let said = receiver.next().await;
        assert_eq!(said["id"], id.as_str(), "the same webhook-id on every try");
        assert_eq!(said["ok"], true, "{said}");
        statuses.push(said["status"].as_u64().unwrap());
    }
    assert_eq!(statuses, [500, 500, 500, 500, 500, 204]);
    assert!(receiver.quiet_for(Duration::from_secs(1)).await, "nothing after the 2xx");

    let list = deliveries(&app, &created.webhook.webhook_id).await;
    let [delivery] = &list.data[..] else { panic!("one delivery: {list:?}") };
    assert_eq!(delivery.event_id, id);
    assert_eq!(delivery.status, keebai_protocol::DeliveryStatus::Delivered);
    let codes: Vec<Option<u16>> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(
        codes,
        [Some(204), Some(500), Some(500), Some(500), Some(500), Some(500)],
        "newest first"
    );
    assert!(delivery.attempts[1].error.as_deref().is_some_and(|e| e.starts_with("HTTP 500")));

    // Sent again by hand: a new delivery, the same event id.
    let path = format!(
        "{}/{}/retry",
        webhook_path(WEBHOOK_DELIVERIES_ROUTE, &created.webhook.webhook_id),
        delivery.delivery_id
    );
    let response = app.post_json(&path, Some(&app.token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (again, _) = receiver.next_verified().await;
    assert_eq!(again, id);
    assert_eq!(deliveries(&app, &created.webhook.webhook_id).await.data.len(), 2);
}

#[tokio::test]
async fn a_delivery_given_up_is_marked_failed_and_the_next_one_goes() {
    // Tried for no time at all: the first failure gives it up.
    let app = spawn_app_with(|args| {
        open(args);
        args.webhook_give_up_secs = 0;
    })
    .await;
    let (mut receiver, created) = receiver_with(&app, Language::Node, None, &["--fail", "1"]).await;
    let first = test_event(&app, &created.webhook.webhook_id).await;
    let second = test_event(&app, &created.webhook.webhook_id).await;
    let said = receiver.next().await;
    assert_eq!((said["id"].as_str(), said["status"].as_u64()), (Some(first.as_str()), Some(500)));
    let said = receiver.next().await;
    assert_eq!((said["id"].as_str(), said["status"].as_u64()), (Some(second.as_str()), Some(204)));
    // The receiver reports before the server records its answer.
    use keebai_protocol::DeliveryStatus::{Delivered, Failed};
    let expected = [(second, Delivered), (first, Failed)];
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let list = deliveries(&app, &created.webhook.webhook_id).await;
        statuses = list.data.iter().map(|d| (d.event_id.clone(), d.status)).collect();
        if statuses == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn a_hanging_receiver_delays_no_other_endpoint() {
    let app = app().await;
    let (mut hanging, _) = receiver_with(&app, Language::Python, None, &["--hang"]).await;
    let (mut good, _) = receiver_for(&app, Language::Node, None).await;

    let channel = app.pair(PHONE).await;
    unlink(&app, &channel).await;
    app.pair(PHONE).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (_, body) = good.next_verified().await;
        kinds.push(kind(&body).to_owned());
    }
    assert_eq!(kinds, ["channel.connected", "channel.disconnected", "channel.reconnected"]);
    // The hanging endpoint still holds its first event, unanswered.
    let (_, body) = hanging.next_verified().await;
    assert_eq!(kind(&body), "channel.connected");
}

/// Ten channel changes in a row reach one endpoint in order, though its first try fails (so
/// all ten queue behind it).
async fn ten_changes_arrive_in_order(app: &TestApp) {
    let (mut receiver, _) = receiver_with(app, Language::Python, None, &["--fail", "1"]).await;
    let channel = app.pair(PHONE).await;
    for _ in 0..4 {
        unlink(app, &channel).await;
        app.pair(PHONE).await;
    }
    unlink(app, &channel).await;

    let mut got = Vec::new();
    while got.len() < 10 {
        let said = receiver.next().await;
        if said["status"] == 500 {
            continue;
        }
        let body: Value = serde_json::from_str(said["body"].as_str().unwrap()).unwrap();
        got.push((kind(&body).to_owned(), body["timestamp"].as_str().unwrap().to_owned()));
    }
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    let (c, d, r) = ("channel.connected", "channel.disconnected", "channel.reconnected");
    assert_eq!(kinds, [c, d, r, d, r, d, r, d, r, d]);
    let times: Vec<&String> = got.iter().map(|(_, t)| t).collect();
    assert!(times.is_sorted(), "{times:?}");
}

#[tokio::test]
async fn ten_changes_arrive_in_order_on_sqlite() {
    ten_changes_arrive_in_order(&app().await).await;
}

#[tokio::test]
async fn ten_changes_arrive_in_order_on_postgres() {
    ten_changes_arrive_in_order(&spawn_postgres_app(open).await).await;
}

#[tokio::test]
async fn private_and_link_local_targets_are_refused_unless_allowed() {
    // http is allowed (receivers here have no certificate), private addresses are not.
    let app = spawn_app_with(|args| {
        args.webhook_allow_http = true;
        args.webhook_first_retry_ms = 50;
    })
    .await;
    let receiver_port = free_port();
    for url in [
        format!("http://127.0.0.1:{receiver_port}/hooks"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/hooks".to_owned(),
        "http://10.0.0.1/hooks".to_owned(),
        "http://[::ffff:127.0.0.1]/hooks".to_owned(),
    ] {
        let response = app.post_json(WEBHOOKS_PATH, Some(&app.token), &json!({"url": url})).await;
        let message =
            assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidWebhookUrl).await;
        assert!(message.contains("private"), "{url}: {message}");
    }
    // A name is resolved when a delivery is sent, and refused then.
    let created = add(&app, &format!("http://localhost:{receiver_port}/hooks"), None).await;
    let port = receiver_port.to_string();
    let mut receiver =
        Receiver::start_with(Language::Python, &[&created.secret], &["--port", &port]).await;
    test_event(&app, &created.webhook.webhook_id).await;
    let mut tried = None;
    for _ in 0..100 {
        let list = deliveries(&app, &created.webhook.webhook_id).await;
        if let Some(attempt) = list.data.first().and_then(|d| d.attempts.last().cloned()) {
            tried = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempt = tried.expect("a try is recorded");
    assert_eq!(attempt.status_code, None);
    let error = attempt.error.unwrap();
    assert!(error.contains("not an allowed address") && !error.contains("localhost"), "{error}");
    assert!(receiver.quiet_for(Duration::from_millis(500)).await, "nothing reached the receiver");
    assert!(list_is(&app).await, "the refused URLs created nothing");
}

/// The account has exactly the one endpoint created by name.
async fn list_is(app: &TestApp) -> bool {
    let list: Value = app.get(WEBHOOKS_PATH, Some(&app.token)).await.json().await.unwrap();
    list["data"].as_array().unwrap().len() == 1
}

/// The receiver is down while the server is killed (`kill -9`) and started again; once the
/// receiver is back, every event arrives.
#[tokio::test]
async fn events_survive_a_dead_receiver_and_a_kill_9() {
    let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
    let dir = tempfile::tempdir().unwrap();
    let serve = || {
        binary
            .serve(dir.path())
            .env("KEEBAI_WEBHOOK_ALLOW_HTTP", "true")
            .env("KEEBAI_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("KEEBAI_WEBHOOK_FIRST_RETRY_MS", "100")
            .env("RUST_LOG", "debug")
    };
    let token = binary.create_token(dir.path(), "acme", &[Scope::WebhooksManage]).await;
    let server = serve().spawn().await;
    let api = server.api(&token);
    let port = free_port();
    let created = add(&api, &format!("http://127.0.0.1:{port}/hooks"), None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(test_event(&api, &created.webhook.webhook_id).await);
    }
    // Let the first tries fail against the absent receiver.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_logs = server.kill().await.logs;

    let server = serve().spawn().await;
    let port = port.to_string();
    let mut receiver =
        Receiver::start_with(Language::Python, &[&created.secret], &["--port", &port]).await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let (id, _) = receiver.next_verified().await;
        if !got.contains(&id) {
            got.push(id);
        }
    }
    assert_eq!(got, ids, "every event, in order");
    let logs = first_logs + &server.stop().await.logs;
    for secret in [created.secret.as_str(), token.as_str()] {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
}
