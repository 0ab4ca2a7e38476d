use std::time::Duration;

use keebai_protocol::ErrorCode;
use keebai_test_support::{assert_error, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_answers_200_without_a_token() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_answer_404_in_the_error_shape() {
    let app = spawn_app().await;
    assert_error(
        app.get("/v2/nothing", Some(&app.token)).await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_answers_405_in_the_error_shape() {
    let app = spawn_app().await;
    for path in ["/v1/whatsapp/numbers", "/healthz", "/sim/scan"] {
        let response = app.client.put(app.url(path)).send().await.unwrap();
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed).await;
    }
}

#[tokio::test]
async fn no_answer_reveals_the_server_software() {
    let app = spawn_app().await;
    for response in [app.get("/healthz", None).await, app.get("/v1/whatsapp/numbers", None).await] {
        assert!(response.headers().get("server").is_none());
        assert!(response.headers().get("x-powered-by").is_none());
    }
}

#[tokio::test]
async fn a_graceful_stop_returns_promptly_with_the_port_and_the_store_closed() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let mut stream = app.stream(&session).await;
    stream.next_qr().await;
    let (address, data_dir) = (app.address, app.data_dir().to_owned());
    let wal = data_dir.join("keebai.db-wal");
    assert!(wal.exists(), "the store is open in WAL mode");

    let dir = tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the stop returns within its bounds");

    assert!(tokio::net::TcpStream::connect(address).await.is_err(), "the port is closed");
    // SQLite deletes the WAL file when its last connection closes.
    assert!(!wal.exists(), "the store was closed (WAL checkpointed and removed)");
    drop(dir);
}
