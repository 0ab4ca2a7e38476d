//! Abuse: guessing tokens and session ids, revoked tokens, cross-origin use, leaks.

use keebai_protocol::ErrorCode;
use keebai_server::domain::Scopes;
use keebai_test_support::*;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

/// A client whose requests come from another loopback address (127.0.0.2).
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

#[tokio::test]
async fn a_client_that_keeps_failing_authentication_gets_429_with_retry_after() {
    let app = spawn_app_with(|args| args.auth_failures_per_minute = 5).await;
    let connect = app.url("/v1/channels/whatsapp/connect");
    let attempt = |client: &reqwest::Client, token: &str| {
        client.post(&connect).bearer_auth(token).json(&json!({"mode": "qr"})).send()
    };
    for i in 0..5 {
        let guess = format!("kbai_pk_{i:032}");
        assert_error(
            attempt(&app.client, &guess).await.unwrap(),
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
        )
        .await;
    }
    let limited = attempt(&app.client, "kbai_pk_guess").await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "five a minute: one more every 12 s ({retry_after})");
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyAuthFailures).await;
    // While blocked, even the right token is not checked: the client learns nothing.
    let right = attempt(&app.client, &app.token).await.unwrap();
    assert_error(right, StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyAuthFailures).await;
    // No request without a token at all slips through either.
    let anonymous = app.client.get(app.url("/v1/whatsapp/numbers")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing was started.
    let acme = app.state.store.authenticate(&app.token.clone().into()).await.unwrap().unwrap();
    assert_eq!(app.state.engine.live_sessions(acme.account), 0);

    // Another client is not affected, and routes without tokens stay open.
    let other = client_from([127, 0, 0, 2]);
    assert_eq!(attempt(&other, &app.token).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(attempt(&other, "kbai_pk_wrong").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_token_answers_401_at_once() {
    let app = spawn_app().await;
    let token = app.state.store.create_token("acme", Scopes::all()).await.unwrap();
    let secret = token.secret.expose_secret().to_owned();
    assert_eq!(app.get("/v1/whatsapp/numbers", Some(&secret)).await.status(), StatusCode::OK);

    assert!(app.state.store.revoke_token(&token.info.id).await.unwrap());
    let response = app.get("/v1/whatsapp/numbers", Some(&secret)).await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated).await;
    // Other tokens of the account keep working.
    assert_eq!(app.get("/v1/whatsapp/numbers", Some(&app.token)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn v1_sends_no_cors_headers_so_no_page_can_use_a_token_cross_origin() {
    let app = spawn_app().await;
    let origin = "https://evil.example";
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/channels/whatsapp/connect"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    let simple = app
        .client
        .get(app.url("/v1/whatsapp/numbers"))
        .header("origin", origin)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), StatusCode::OK);
    for response in [preflight, simple] {
        let leaked: Vec<_> = response
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
    }
}

#[tokio::test]
async fn ten_thousand_guessed_session_ids_all_answer_404() {
    let app = spawn_app().await;
    // A real session exists, so the guesses have something to hit.
    let real = app.connect_ok().await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..10_000 {
        // xorshift: 128 "random" bits per guess, and a few near-misses of the real id.
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let guess = if i % 1000 == 0 {
            let mut near = real.session_id.clone().into_bytes();
            let last = near.len() - 1;
            near[last] = if near[last] == b'0' { b'1' } else { b'0' };
            String::from_utf8(near).unwrap()
        } else {
            format!("qrs_{:016x}{:016x}", next(), next())
        };
        let path = format!("/v1/channels/whatsapp/connect/{guess}/qr-stream");
        let response = app.get(&path, Some(&app.token)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{guess}");
        if i % 500 == 0 {
            assert_error(
                app.cancel(&app.token, &guess).await,
                StatusCode::NOT_FOUND,
                ErrorCode::SessionNotFound,
            )
            .await;
        }
    }
    // The real session was untouched.
    let mut stream = app.stream(&real).await;
    stream.next_qr().await;
}

#[tokio::test]
async fn no_answer_reveals_versions_or_internals() {
    let app = spawn_app().await;
    let responses = [
        app.get("/healthz", None).await,
        app.get("/v1/whatsapp/numbers", None).await,
        app.get("/v1/nope", Some(&app.token)).await,
        app.post_json("/v1/channels/whatsapp/connect", Some(&app.token), &json!({"mode": 1})).await,
        app.client
            .post(app.url("/v1/channels/whatsapp/connect"))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        for name in ["server", "x-powered-by", "via", "x-runtime", "x-version"] {
            assert!(response.headers().get(name).is_none(), "{name}");
        }
        let body = response.text().await.unwrap().to_lowercase();
        for word in [
            "axum",
            "hyper",
            "sqlx",
            "sqlite",
            "tokio",
            "serde",
            "keebai-server",
            "0.1.0",
            "panicked",
            ".rs:",
        ] {
            assert!(!body.contains(word), "{word:?} in {body}");
        }
    }
}
