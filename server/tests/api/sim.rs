use std::sync::Arc;

use keebai_protocol::ErrorCode;
use keebai_protocol::sim::ScanOutcome;
use keebai_test_support::{PHONE, assert_error, spawn_app, spawn_fast_rotating_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_replaced_code_is_409_qr_expired_and_changes_nothing() {
    let app = spawn_fast_rotating_app().await;
    let session = app.connect_ok().await;
    let mut stream = app.stream(&session).await;
    let old = stream.next_qr().await;
    let current = stream.next_qr().await;

    assert_error(
        app.sim_scan(&old, PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::QrExpired,
    )
    .await;
    let state = app
        .state
        .engine
        .state(
            app.state.store.authenticate(&app.token.clone().into()).await.unwrap().unwrap().account,
            &session.session_id.parse().unwrap(),
        )
        .unwrap();
    assert!(state.live_qr().is_some(), "still waiting for a scan");
    assert_eq!(
        app.sim_scan(&current, PHONE, ScanOutcome::Success).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_used_code_or_one_of_an_ended_session_is_409() {
    let app = spawn_app().await;
    let (_session, _stream, qr) = app.session_showing_qr().await;
    app.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_error(
        app.sim_scan(&qr, PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::QrExpired,
    )
    .await;

    let cancelled = app.connect_ok().await;
    let qr = app.stream(&cancelled).await.next_qr().await;
    app.cancel(&app.token, &cancelled.session_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_error(
        app.sim_scan(&qr, PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::QrExpired,
    )
    .await;
}

#[tokio::test]
async fn a_code_no_session_showed_is_404() {
    let app = spawn_app().await;
    let forged = "2@AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,a,b,c,9";
    assert_error(
        app.sim_scan(forged, PHONE, ScanOutcome::Success).await,
        StatusCode::NOT_FOUND,
        ErrorCode::QrNotFound,
    )
    .await;
    assert_error(
        app.sim_scan("hello", PHONE, ScanOutcome::Success).await,
        StatusCode::NOT_FOUND,
        ErrorCode::QrNotFound,
    )
    .await;
}

#[tokio::test]
async fn bad_scan_bodies_are_400() {
    let app = spawn_app().await;
    let (_session, _stream, qr) = app.session_showing_qr().await;
    assert_error(
        app.sim_scan(&qr, "56912345678", ScanOutcome::Success).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidPhoneNumber,
    )
    .await;
    let body = json!({"qr": qr, "phone_number": PHONE, "outcome": "explode"});
    assert_error(
        app.post_json("/sim/scan", None, &body).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidRequest,
    )
    .await;
    let body = json!({"phone_number": PHONE});
    assert_error(
        app.post_json("/sim/scan", None, &body).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidRequest,
    )
    .await;
    assert_eq!(
        app.sim_scan(&qr, PHONE, ScanOutcome::Success).await.status(),
        StatusCode::ACCEPTED,
        "the code is still good"
    );
}

#[tokio::test]
async fn unlink_and_messages_validate_their_channel() {
    let app = spawn_app().await;
    let unknown = json!({"channel_id": "ch_00000000000000000000000000000000"});
    assert_error(
        app.post_json("/sim/unlink", None, &unknown).await,
        StatusCode::NOT_FOUND,
        ErrorCode::ChannelNotFound,
    )
    .await;
    assert_error(
        app.post_json("/sim/unlink", None, &json!({"channel_id": "x"})).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidId,
    )
    .await;
    assert_error(
        app.get("/sim/messages", None).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidRequest,
    )
    .await;
    assert_error(
        app.get("/sim/messages?channel_id=x", None).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidId,
    )
    .await;
}

#[tokio::test]
async fn without_the_simulator_there_are_no_sim_routes() {
    let app = spawn_app().await;
    let router = keebai_server::api::app(app.state.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Arc::new(reqwest::Client::new());
    for path in ["/sim/scan", "/sim/unlink"] {
        let response =
            client.post(format!("http://{address}{path}")).json(&json!({})).send().await.unwrap();
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
}
