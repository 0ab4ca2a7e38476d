use std::time::Duration;

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ErrorCode, FailureCode, Scope, StreamEvent};
use keebai_test_support::{
    PHONE, SseReader, StalledSubscriber, assert_error, spawn_app, spawn_app_with,
    spawn_fast_rotating_app,
};
use reqwest::StatusCode;
use serde_json::json;

fn failure(event: StreamEvent) -> FailureCode {
    match event {
        StreamEvent::Failed(f) => f.code,
        other => panic!("expected failed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_stream_starts_with_the_live_qr_and_has_sse_headers() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let response = app.open_stream(&app.token, &session.stream_url, None).await;

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");

    let mut stream = SseReader::new(response);
    let (id, event) = stream.next().await.unwrap();
    assert!(id >= 1);
    let StreamEvent::Qr(qr) = event else { panic!("{event:?}") };
    assert_eq!(qr.data.split(',').count(), 5, "WhatsApp's QR shape: {}", qr.data);
    let expires_at = time::OffsetDateTime::parse(
        &qr.expires_at.unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ttl = expires_at - time::OffsetDateTime::now_utc();
    assert!(
        ttl > time::Duration::seconds(55) && ttl <= time::Duration::seconds(60),
        "first code lasts 60 s: {ttl}"
    );
}

#[tokio::test]
async fn a_scan_goes_through_connecting_to_connected_and_the_stream_closes() {
    let app = spawn_app().await;
    let (_session, mut stream, qr) = app.session_showing_qr().await;

    app.scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    let (connecting_id, connecting) = stream.next().await.unwrap();
    let (connected_id, connected) = stream.next().await.unwrap();

    assert_eq!(connecting, StreamEvent::Connecting);
    assert!(connected_id > connecting_id);
    let StreamEvent::Connected(channel) = connected else { panic!("{connected:?}") };
    assert!(channel.channel_id.starts_with("ch_"));
    assert_eq!(channel.phone_number, PHONE);
    assert_eq!(channel.push_name, "Lucio");
    stream.assert_closed().await;
}

#[tokio::test]
async fn codes_rotate_by_themselves_with_increasing_ids() {
    let app = spawn_fast_rotating_app().await;
    let session = app.connect_ok().await;
    let mut stream = app.stream(&session).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (id, event) = stream.next().await.unwrap();
        let StreamEvent::Qr(qr) = event else { panic!("{event:?}") };
        seen.push((id, qr.data));
    }
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1), "{seen:?}");
}

#[tokio::test]
async fn an_unscanned_session_expires_and_its_stream_closes() {
    let app = spawn_app_with(|args| args.pairing_ttl_secs = 1).await;
    let (_session, mut stream, _) = app.session_showing_qr().await;
    assert_eq!(failure(stream.next_event().await), FailureCode::Expired);
    stream.assert_closed().await;
}

#[tokio::test]
async fn a_late_subscriber_gets_the_terminal_event_and_a_resuming_one_what_it_missed() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let mut first = app.stream(&session).await;
    let (qr_id, event) = first.next().await.unwrap();
    let StreamEvent::Qr(qr) = event else { panic!() };
    drop(first); // the client's connection drops right after the QR

    app.sim_scan(&qr.data, PHONE, ScanOutcome::Success).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // connected by now (50 ms link delay)

    let mut resumed = app.stream_from(&session, Some(qr_id)).await;
    assert_eq!(resumed.next_event().await, StreamEvent::Connecting);
    assert!(matches!(resumed.next_event().await, StreamEvent::Connected(_)));
    resumed.assert_closed().await;

    let mut late = app.stream(&session).await;
    assert!(matches!(late.next_event().await, StreamEvent::Connected(_)), "only the current state");
    late.assert_closed().await;
}

#[tokio::test]
async fn several_subscribers_see_the_same_events() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let mut a = app.stream(&session).await;
    let mut b = app.stream(&session).await;
    let qr_a = a.next().await.unwrap();
    let qr_b = b.next().await.unwrap();
    assert_eq!(qr_a, qr_b);
    let StreamEvent::Qr(qr) = qr_a.1 else { panic!() };
    app.sim_scan(&qr.data, PHONE, ScanOutcome::Success).await;
    for stream in [&mut a, &mut b] {
        assert_eq!(stream.next_event().await, StreamEvent::Connecting);
        assert!(matches!(stream.next_event().await, StreamEvent::Connected(_)));
        stream.assert_closed().await;
    }
}

#[tokio::test]
async fn cancel_ends_the_stream_with_failed_cancelled_and_is_idempotent() {
    let app = spawn_app().await;
    let (session, mut stream, _) = app.session_showing_qr().await;

    assert_eq!(app.cancel(&app.token, &session.session_id).await.status(), StatusCode::NO_CONTENT);
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::Cancelled);
    stream.assert_closed().await;
    assert_eq!(app.cancel(&app.token, &session.session_id).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn another_account_cannot_watch_or_cancel_a_session() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let intruder = app.token("intruder", &Scope::ALL).await;

    let response = app.open_stream(&intruder, &session.stream_url, None).await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await;
    assert_error(
        app.cancel(&intruder, &session.session_id).await,
        StatusCode::NOT_FOUND,
        ErrorCode::SessionNotFound,
    )
    .await;

    let mut stream = app.stream(&session).await;
    assert!(matches!(stream.next_event().await, StreamEvent::Qr(_)), "the session is untouched");
}

#[tokio::test]
async fn unknown_and_malformed_session_ids_answer_404() {
    let app = spawn_app().await;
    for id in ["qrs_00000000000000000000000000000000", "qrs_nothex", "anything", "qrs_%2e%2e"] {
        let response = app
            .open_stream(&app.token, &format!("/v1/channels/whatsapp/connect/{id}/qr-stream"), None)
            .await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::SessionNotFound).await;
        assert_error(
            app.cancel(&app.token, id).await,
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
        )
        .await;
    }
}

#[tokio::test]
async fn the_stream_needs_a_token_with_channels_connect() {
    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let reader = app.token("acme", &[Scope::ChannelsRead]).await;
    let response = app.client.get(app.url(&session.stream_url)).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated).await;
    let response = app.open_stream(&reader, &session.stream_url, None).await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::InsufficientScope).await;
}

#[tokio::test]
async fn each_phone_outcome_reaches_the_stream() {
    let app = spawn_app().await;
    for (outcome, name, code) in [
        (ScanOutcome::DeviceLimit, "failed", "device_limit"),
        (ScanOutcome::Rejected, "failed", "pairing_rejected"),
        (ScanOutcome::Unlinked, "disconnected", "unlinked"),
    ] {
        let session = app.connect_ok().await;
        let mut stream = app.stream(&session).await;
        let qr = stream.next_qr().await;
        app.scan_ok(&qr, PHONE, outcome).await;
        let mut last = stream.next_event().await;
        if last == StreamEvent::Connecting {
            last = stream.next_event().await;
        }
        assert_eq!(last.name().as_str(), name);
        let data: serde_json::Value = serde_json::from_str(&last.data_json()).unwrap();
        assert_eq!(data["code"], code);
        assert!(!data["reason"].as_str().unwrap().is_empty());
        if outcome == ScanOutcome::DeviceLimit {
            assert!(data["reason"].as_str().unwrap().contains("linked devices"));
        }
        stream.assert_closed().await;
    }
    assert!(app.numbers_ok().await.is_empty(), "no outcome but success creates a channel");
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams_within_a_second() {
    let app = spawn_app().await;
    let (_session, mut stream, _) = app.session_showing_qr().await;

    let started = std::time::Instant::now();
    let stop = tokio::spawn(app.stop());
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::ServerShutdown);
    stream.assert_closed().await;
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    tokio::time::timeout(Duration::from_secs(5), stop).await.expect("the server stops").unwrap();
}

#[tokio::test]
async fn keep_alive_comments_flow_every_15_seconds() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = spawn_app().await;
    let session = app.connect_ok().await;
    let router = keebai_server::api::app(app.state.clone(), None);
    let request = axum::http::Request::get(&session.stream_url)
        .header("authorization", format!("Bearer {}", app.token))
        .body(axum::body::Body::empty())
        .unwrap();
    let mut body = router.oneshot(request).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: qr"));

    // No store access from here on, so the paused clock can run ahead safely.
    tokio::time::pause();
    let waited = tokio::time::Instant::now();
    let next = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(String::from_utf8_lossy(&next).trim(), ":");
    let elapsed = waited.elapsed();
    assert!(elapsed >= Duration::from_secs(15) && elapsed < Duration::from_secs(16), "{elapsed:?}");
    let _ = json!({});
}

/// Subscribers that never read do not hold back healthy subscribers of the same session: while
/// the server cannot write to 50 stalled ones, two healthy ones get every code, each within two
/// rotations, and then the session's end.
///
/// Codes rotate every second, and the clock is paused once every subscriber is in, so it jumps
/// to the next rotation whenever everything waits: 1,000 codes (about 250 KB per subscriber)
/// come as fast as the server can make them, several times what a stalled subscriber's
/// connection holds. A subscriber handed codes late would skip some (a session keeps only its
/// current code), so "none skipped" means "never behind". The stalled ones, read at the end,
/// did skip most: proof that they were stalled. Latency with and without stalled subscribers is
/// measured by `cargo bench -p keebai-server --bench pairing -- --stalled 100`.
#[tokio::test]
async fn stalled_subscribers_do_not_hold_back_healthy_ones() {
    const STALLED: usize = 50;
    const ROTATIONS: u64 = 1_000;
    let app = spawn_app_with(|args| {
        args.qr_first_ttl_secs = 1;
        args.qr_ttl_secs = 1;
        args.pairing_ttl_secs = 3_600;
    })
    .await;
    let session = app.connect_ok().await;
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(StalledSubscriber::open(app.address, &app.token, &session.stream_url).await);
    }
    let mut healthy = [app.stream(&session).await, app.stream(&session).await];
    let mut last_ids = [0; 2];
    for (stream, last_id) in healthy.iter_mut().zip(&mut last_ids) {
        *last_id = stream.next().await.expect("the current code").0;
    }

    // From here until `resume`, nothing may touch the store: its pool's timeouts would jump too.
    tokio::time::pause();
    for _ in 0..ROTATIONS {
        for (stream, last_id) in healthy.iter_mut().zip(&mut last_ids) {
            let (id, event) =
                stream.next_within(Duration::from_secs(2)).await.expect("the stream goes on");
            assert!(matches!(event, StreamEvent::Qr(_)), "{event:?}");
            assert_eq!(id, *last_id + 1, "a healthy subscriber gets every code");
            *last_id = id;
        }
    }
    tokio::time::resume();

    assert_eq!(app.cancel(&app.token, &session.session_id).await.status(), StatusCode::NO_CONTENT);
    for stream in &mut healthy {
        let ending = stream.rest().await.into_iter().find(|e| !matches!(e, StreamEvent::Qr(_)));
        let cancelled =
            matches!(&ending, Some(StreamEvent::Failed(f)) if f.code == FailureCode::Cancelled);
        assert!(cancelled, "{ending:?}");
    }
    for subscriber in &mut stalled {
        subscriber.read_until("event: failed").await;
        let ids = subscriber.ids();
        let span = ids[ids.len() - 1] - ids[0] + 1;
        let skipped = span - ids.len() as u64;
        assert!(
            skipped > ROTATIONS / 2,
            "a stalled subscriber fell behind and skipped most codes: it got {} of {span}",
            ids.len()
        );
    }
}
