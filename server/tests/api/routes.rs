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
    let response = app.client.put(app.url("/v1/whatsapp/numbers")).send().await.unwrap();
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed).await;
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
async fn graceful_stop_finishes() {
    let app = spawn_app().await;
    app.stop().await;
}
