use keebai_protocol::{ErrorCode, Scope};
use keebai_test_support::{PHONE, assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_text_is_sent_through_the_channels_linker() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let body =
        json!({"channel_id": channel_id, "to": "+14155550100", "text": "Hola 👋\nbienvenido"});

    let response = app.send_text(&app.token, body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let sent: Value = response.json().await.unwrap();
    assert!(sent["message_id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(sent["status"], "sent");

    let inbox = app.sim_inbox(&channel_id).await;
    assert_eq!(inbox.data.len(), 1);
    assert_eq!(inbox.data[0].message_id, sent["message_id"]);
    assert_eq!(inbox.data[0].to, "+14155550100");
    assert_eq!(inbox.data[0].text, "Hola 👋\nbienvenido");
}

#[tokio::test]
async fn bad_texts_are_rejected_and_nothing_is_sent() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let ok_to = "+14155550100";
    let cases = [
        (
            json!({"channel_id": channel_id, "to": "14155550100", "text": "x"}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPhoneNumber,
        ),
        (
            json!({"channel_id": channel_id, "to": "+1 415 555 0100", "text": "x"}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPhoneNumber,
        ),
        (
            json!({"channel_id": channel_id, "to": ok_to, "text": ""}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidText,
        ),
        (
            json!({"channel_id": channel_id, "to": ok_to, "text": "x".repeat(4097)}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidText,
        ),
        (
            json!({"channel_id": "nope", "to": ok_to, "text": "x"}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidId,
        ),
        (
            json!({"channel_id": channel_id, "to": ok_to}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        ),
        (
            json!({"channel_id": channel_id, "to": 5, "text": "x"}),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        ),
        (
            json!({"channel_id": "ch_00000000000000000000000000000000", "to": ok_to, "text": "x"}),
            StatusCode::NOT_FOUND,
            ErrorCode::ChannelNotFound,
        ),
    ];
    for (body, status, code) in cases {
        assert_error(app.send_text(&app.token, body).await, status, code).await;
    }
    let inbox = app.sim_inbox(&channel_id).await;
    assert!(inbox.data.is_empty());
}

#[tokio::test]
async fn another_accounts_channel_is_not_found_and_sending_needs_messages_send() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let body = json!({"channel_id": channel_id, "to": "+14155550100", "text": "x"});
    let intruder = app.token("intruder", &Scope::ALL).await;
    assert_error(
        app.send_text(&intruder, body.clone()).await,
        StatusCode::NOT_FOUND,
        ErrorCode::ChannelNotFound,
    )
    .await;
    let no_send = app.token("acme", &[Scope::ChannelsConnect, Scope::ChannelsRead]).await;
    assert_error(
        app.send_text(&no_send, body).await,
        StatusCode::FORBIDDEN,
        ErrorCode::InsufficientScope,
    )
    .await;
}

#[tokio::test]
async fn an_unlinked_channel_shows_disconnected_and_refuses_to_send() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let response = app.post_json("/sim/unlink", None, &json!({"channel_id": channel_id})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.numbers_ok().await[0].status, keebai_protocol::ChannelStatus::Disconnected);
    let body = json!({"channel_id": channel_id, "to": "+14155550100", "text": "x"});
    assert_error(
        app.send_text(&app.token, body).await,
        StatusCode::CONFLICT,
        ErrorCode::ChannelDisconnected,
    )
    .await;

    app.pair(PHONE).await;
    assert_eq!(
        app.numbers_ok().await[0].status,
        keebai_protocol::ChannelStatus::Connected,
        "relinking reconnects it"
    );
}

#[tokio::test]
async fn template_and_bulk_on_a_qr_channel_answer_qr_not_supported() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let bodies = [
        (
            "/v1/messages/template",
            json!({"channel_id": channel_id, "to": "+14155550100", "template": {"name": "hello", "language": "es"}}),
        ),
        ("/v1/messages/template", json!({"channel_id": channel_id, "garbage": true})),
        (
            "/v1/messages/bulk",
            json!({"channel_id": channel_id, "messages": [{"to": "+14155550100", "text": "x"}]}),
        ),
        ("/v1/messages/bulk", json!({"channel_id": channel_id})),
    ];
    for (path, body) in bodies {
        let message = assert_error(
            app.post_json(path, Some(&app.token), &body).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::QrNotSupportedForTemplateOrBulk,
        )
        .await;
        assert!(message.contains("/v1/messages/text"), "{message}");
    }
}

#[tokio::test]
async fn template_and_bulk_resolve_the_token_and_channel_first() {
    let app = spawn_app().await;
    let channel_id = app.pair(PHONE).await;
    let intruder = app.token("intruder", &Scope::ALL).await;
    for path in ["/v1/messages/template", "/v1/messages/bulk"] {
        let body = json!({"channel_id": channel_id});
        assert_error(
            app.post_json(path, None, &body).await,
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
        )
        .await;
        assert_error(
            app.post_json(path, Some(&intruder), &body).await,
            StatusCode::NOT_FOUND,
            ErrorCode::ChannelNotFound,
        )
        .await;
        assert_error(
            app.post_json(path, Some(&app.token), &json!({})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        )
        .await;
    }
}
