use keebai_protocol::{ErrorCode, Scope};
use keebai_test_support::{assert_error, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn connect_answers_201_with_a_session_id_a_relative_stream_url_and_300_seconds() {
    let app = spawn_app().await;
    let response = app.connect(&app.token, json!({"mode": "qr", "name": "Ventas"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();

    let id = body["session_id"].as_str().unwrap();
    assert!(id.starts_with("qrs_") && id.len() == 36, "{id}");
    assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["stream_url"], format!("/v1/channels/whatsapp/connect/{id}/qr-stream"));
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn expires_in_follows_the_configured_pairing_ttl() {
    let app = spawn_app_with(|args| args.pairing_ttl_secs = 42).await;
    assert_eq!(app.connect_ok().await.expires_in, 42);
}

#[tokio::test]
async fn connect_without_a_valid_token_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let body = json!({"mode": "qr"});
    let revoked = app.token("acme", &Scope::ALL).await;
    let id = app.state.store.list_tokens().await.unwrap().last().unwrap().id.clone();
    app.state.store.revoke_token(&id).await.unwrap();

    let mut attempts = vec![
        app.post_json("/v1/channels/whatsapp/connect", None, &body).await,
        app.connect("kbai_pk_0000000000000000000000000000000000000000000000", body.clone()).await,
        app.connect("not-even-a-keebai-token", body.clone()).await,
        app.connect(&revoked, body.clone()).await,
    ];
    attempts.push(
        app.client
            .post(app.url("/v1/channels/whatsapp/connect"))
            .header("Authorization", format!("Basic {}", app.token))
            .json(&body)
            .send()
            .await
            .unwrap(),
    );
    for response in attempts {
        assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
        assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated).await;
    }
    assert_eq!(app.state.engine.session_count(), 0);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/channels/whatsapp/connect"))
        .header("Authorization", format!("bearer {}", app.token))
        .json(&json!({"mode": "qr"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn connect_needs_the_channels_connect_scope() {
    let app = spawn_app().await;
    let token = app.token("acme", &[Scope::ChannelsRead, Scope::MessagesSend]).await;
    let message = assert_error(
        app.connect(&token, json!({"mode": "qr"})).await,
        StatusCode::FORBIDDEN,
        ErrorCode::InsufficientScope,
    )
    .await;
    assert!(message.contains("channels:connect"), "{message}");
    assert_eq!(app.state.engine.session_count(), 0);
}

#[tokio::test]
async fn every_bad_body_gets_a_400_class_error_and_starts_nothing() {
    let app = spawn_app().await;
    let raw = |body: &'static str, content_type: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/channels/whatsapp/connect"))
                .bearer_auth(&app.token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let json = "application/json";
    let cases: Vec<(reqwest::Response, StatusCode, ErrorCode)> = vec![
        (raw("{\"mode\":", json).await, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
        (raw("mode=qr", json).await, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
        (raw("", json).await, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
        (
            raw("{\"mode\":\"qr\"}", "text/plain").await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
        ),
        (
            app.connect(&app.token, json!("qr")).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        ),
        (app.connect(&app.token, json!({})).await, StatusCode::BAD_REQUEST, ErrorCode::InvalidMode),
        (
            app.connect(&app.token, json!({"mode": "cloud_api"})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMode,
        ),
        (
            app.connect(&app.token, json!({"mode": ["qr"]})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMode,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "name": 7})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "nmae": "typo"})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "name": ""})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidName,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "name": "   "})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidName,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "name": "x".repeat(101)})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidName,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "pipeline_id": "p_1"})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::QrModeCannotUseCoexistenceOrPipeline,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "coexistence_enabled": true})).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::QrModeCannotUseCoexistenceOrPipeline,
        ),
        (
            app.connect(&app.token, json!({"mode": "qr", "name": "x".repeat(70 * 1024)})).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
        ),
    ];
    for (response, status, code) in cases {
        assert_error(response, status, code).await;
    }
    assert_eq!(app.state.engine.session_count(), 0, "no bad body started a session");
}

#[tokio::test]
async fn a_body_over_64_kib_sent_in_chunks_is_also_413() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/v1/channels/whatsapp/connect"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge).await;
}

#[tokio::test]
async fn live_sessions_over_the_account_limit_get_429() {
    let app = spawn_app_with(|args| args.max_sessions_per_account = 2).await;
    let first = app.connect_ok().await;
    app.connect_ok().await;
    assert_error(
        app.connect(&app.token, json!({"mode": "qr"})).await,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManySessions,
    )
    .await;

    let other = app.token("other", &[Scope::ChannelsConnect]).await;
    assert_eq!(
        app.connect(&other, json!({"mode": "qr"})).await.status(),
        StatusCode::CREATED,
        "per account"
    );

    assert_eq!(app.cancel(&app.token, &first.session_id).await.status(), StatusCode::NO_CONTENT);
    let mut retried = app.connect(&app.token, json!({"mode": "qr"})).await;
    for _ in 0..50 {
        if retried.status() == StatusCode::CREATED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        retried = app.connect(&app.token, json!({"mode": "qr"})).await;
    }
    assert_eq!(retried.status(), StatusCode::CREATED, "a cancelled session frees its slot");
}

/// Random bodies, well-formed JSON or not, straight over HTTP: never a 5xx, always either a 201
/// or a 4xx in the error shape, and a session only for a body the contract accepts.
#[tokio::test]
async fn random_connect_bodies_never_get_a_5xx() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let app = spawn_app_with(|args| args.max_sessions_per_account = 1_000_000).await;
    let json_ish = prop_oneof![
        Just(r#"{"mode":"qr"}"#.to_owned()),
        "[ -~]{0,200}",
        prop::collection::vec(
            prop_oneof![
                Just("\"mode\":\"qr\"".to_owned()),
                Just("\"name\":".to_owned()),
                Just("\"pipeline_id\":1".to_owned()),
                "\"[a-z_]{0,10}\":(null|true|1|-0.5e9|\"[ -~]{0,110}\"|\\[\\]|\\{\\})",
            ],
            0..4
        )
        .prop_map(|fields| format!("{{{}}}", fields.join(","))),
    ];
    let mut runner = TestRunner::new(Config { cases: 256, ..Config::default() });
    let bodies: Vec<String> =
        (0..256).map(|_| json_ish.new_tree(&mut runner).unwrap().current()).collect();

    let mut created = 0;
    for body in &bodies {
        let response = app
            .client
            .post(app.url("/v1/channels/whatsapp/connect"))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status == StatusCode::CREATED || status.is_client_error(), "{status} for {body}");
        if status == StatusCode::CREATED {
            created += 1;
            let value: Value = serde_json::from_str(body).unwrap();
            assert_eq!(value["mode"], "qr", "accepted {body}");
        } else {
            let error: keebai_protocol::ErrorBody = response.json().await.expect("the error shape");
            assert!(!error.error.message.is_empty());
        }
    }
    assert!(created > 0 && created < bodies.len(), "both paths were exercised: {created}");
    assert_eq!(app.state.engine.session_count(), created, "only accepted bodies started sessions");
}
