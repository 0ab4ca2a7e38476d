use keebai_protocol::{ChannelStatus, ConnectionType, ErrorCode, Scope};
use keebai_test_support::{PHONE, assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_paired_channel_is_listed_as_a_connected_qr_channel() {
    let app = spawn_app().await;
    assert!(app.numbers_ok().await.is_empty());
    let channel_id = app.pair(PHONE).await;

    let response = app.numbers(&app.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let number = &body["data"][0];
    assert_eq!(number["channel_id"], channel_id);
    assert_eq!(number["name"], "WhatsApp QR");
    assert_eq!(number["phone_number"], PHONE);
    assert_eq!(number["push_name"], "Lucio");
    assert_eq!(number["connection_type"], "qr");
    assert_eq!(number["status"], "connected");
    assert!(number["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn relinking_the_same_phone_reuses_its_channel_id() {
    let app = spawn_app().await;
    let first = app.pair(PHONE).await;
    let second = app.pair(PHONE).await;
    let other = app.pair("+14155550100").await;
    assert_eq!(first, second);
    assert_ne!(first, other);
    assert_eq!(app.numbers_ok().await.len(), 2);
}

#[tokio::test]
async fn the_name_given_at_connect_names_the_channel() {
    let app = spawn_app().await;
    let response = app.connect(&app.token, json!({"mode": "qr", "name": "  Ventas Chile  "})).await;
    let session: keebai_protocol::ConnectResponse = response.json().await.unwrap();
    let mut stream = app.stream(&session).await;
    let qr = stream.next_qr().await;
    app.sim_scan(&qr, PHONE, Default::default()).await;
    stream.next_event().await;
    stream.next_event().await;
    let numbers = app.numbers_ok().await;
    assert_eq!(numbers[0].name, "Ventas Chile");
    assert_eq!(numbers[0].connection_type, ConnectionType::Qr);
    assert_eq!(numbers[0].status, ChannelStatus::Connected);
}

#[tokio::test]
async fn numbers_are_per_account_and_need_channels_read() {
    let app = spawn_app().await;
    app.pair(PHONE).await;
    let other = app.token("other", &Scope::ALL).await;
    let response = app.numbers(&other).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"data": []}));

    let no_read = app.token("acme", &[Scope::ChannelsConnect]).await;
    assert_error(app.numbers(&no_read).await, StatusCode::FORBIDDEN, ErrorCode::InsufficientScope)
        .await;
    assert_error(
        app.get("/v1/whatsapp/numbers", None).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
    )
    .await;
}
