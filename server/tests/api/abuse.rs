//! Abuse: guessing tokens and session ids, revoked tokens, cross-origin use, leaks.

use std::time::Duration;

use keebai_protocol::{ErrorCode, FailureCode, Scope, StreamEvent};
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

/// Guessing session ids gets nowhere. Ids one character off a live one, another account's live
/// and ended sessions, an own session whose end is no longer replayed, and strings that are not
/// ids: each gets, to watching and to cancelling alike, exactly the answer an unknown id gets (404
/// `SESSION_NOT_FOUND`, the same message), so none tells an attacker more; and no session is
/// touched.
#[tokio::test]
async fn guessed_session_ids_answer_404_like_unknown_ones_and_touch_nothing() {
    let app = spawn_app().await;
    let globex = app.with_token(&app.token("globex", &Scope::ALL).await);
    let ended = app.connect_ok().await;
    app.cancel(&app.token, &ended.session_id).await;
    let replayed = app.stream(&ended).await.next_event().await;
    assert!(matches!(replayed, StreamEvent::Failed(_)), "its end is replayed for a minute");
    // The replay lasts 60 s: the clock jumps past it (no request is in flight meanwhile).
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    let acme = app.account().await;
    let id = ended.session_id.parse().unwrap();
    let forgotten = || app.state.engine.state(acme, &id).is_err();
    eventually("the ended session is forgotten", Duration::from_secs(5), forgotten).await;
    let live = app.connect_ok().await;
    let theirs = globex.connect_ok().await;
    let theirs_ended = globex.connect_ok().await;
    globex.cancel(&globex.token, &theirs_ended.session_id).await;
    let sessions = app.state.engine.session_count();

    let unknown = format!("qrs_{}", "0".repeat(32));
    let baseline = session_answers(&app, &unknown).await;
    let mut guesses: Vec<String> = one_character_off(&live.session_id);
    guesses.extend([theirs.session_id.clone(), theirs_ended.session_id.clone()]);
    guesses.push(ended.session_id.clone());
    guesses.extend(
        [
            "qrs_",
            "qrs_nothex",
            "anything",
            "qrs_%2e%2e",
            "qrs_%00",
            "%20qrs_0123456789abcdef0123456789abcdef",
            "ch_0123456789abcdef0123456789abcdef",
            "qrs_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ]
        .map(str::to_owned),
    );
    for guess in &guesses {
        assert_eq!(session_answers(&app, guess).await, baseline, "{guess}");
    }

    assert_eq!(app.state.engine.session_count(), sessions, "no session started or ended");
    assert_eq!(app.live_sessions().await, 1);
    assert!(matches!(app.stream(&live).await.next_event().await, StreamEvent::Qr(_)));
    let mut theirs = globex.stream(&theirs).await;
    assert!(matches!(theirs.next_event().await, StreamEvent::Qr(_)), "globex's session is live");
    let StreamEvent::Failed(failed) = globex.stream(&theirs_ended).await.next_event().await else {
        panic!("globex's ended session replays its end")
    };
    assert_eq!(failed.code, FailureCode::Cancelled, "and its ended one still replays its end");
}

/// Every id that differs from `id` (`qrs_` + 32 hex digits) in one character: each digit
/// changed, each letter upper-cased, the prefix's letters changed.
fn one_character_off(id: &str) -> Vec<String> {
    let mut guesses = Vec::new();
    for (at, c) in id.char_indices() {
        let mut replacements = Vec::new();
        if at < 4 {
            replacements.push(if c == '_' { '-' } else { c.to_ascii_uppercase() });
        } else {
            let digit = c.to_digit(16).unwrap();
            replacements.push(char::from_digit((digit + 1) % 16, 16).unwrap());
            if c.is_ascii_alphabetic() {
                replacements.push(c.to_ascii_uppercase());
            }
        }
        for replacement in replacements {
            let mut guess = id.to_owned();
            guess.replace_range(at..at + 1, replacement.encode_utf8(&mut [0; 4]));
            guesses.push(guess);
        }
    }
    assert!(guesses.len() >= 36 && !guesses.iter().any(|g| g == id));
    guesses
}

/// What watching and cancelling session `id` answer: 404 `SESSION_NOT_FOUND`, and their messages.
async fn session_answers(app: &TestApp, id: &str) -> (String, String) {
    let stream_url = format!("/v1/channels/whatsapp/connect/{id}/qr-stream");
    let watch = app.open_stream(&app.token, &stream_url, None).await;
    let cancel = app.cancel(&app.token, id).await;
    let statuses = (watch.status(), cancel.status());
    assert_eq!(statuses, (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "watch, cancel {id}");
    (
        assert_error(watch, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await,
        assert_error(cancel, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await,
    )
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
