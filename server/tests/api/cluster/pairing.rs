//! Pairing sessions across servers.

use std::time::{Duration, Instant};

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{FailureCode, StreamEvent};
use keebai_test_support::{OwnPostgres, PHONE};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use super::{Nodes, connect, qr_of, rest, take};

#[tokio::test]
async fn a_stream_on_another_server_gets_the_same_events_and_ids() {
    let mut nodes = Nodes::new().await;
    let (_a, _b, api_a, api_b) = nodes.two().await;

    let session = connect(&api_a).await;
    let mut on_a = api_a.stream(&session).await;
    let mut on_b = api_b.stream(&session).await;

    let from_a = take(&mut on_a, 3).await;
    let from_b = take(&mut on_b, 3).await;
    assert_eq!(from_a, from_b, "the same QR events with the same ids on both servers");
    assert!(from_a.windows(2).all(|w| w[1].0 == w[0].0 + 1), "every rotation: {from_a:?}");
}

#[tokio::test]
async fn a_resume_on_another_server_gets_exactly_what_it_missed() {
    let mut nodes = Nodes::new().await;
    let (_a, _b, api_a, api_b) = nodes.two().await;
    let session = connect(&api_a).await;
    let mut on_a = api_a.stream(&session).await;

    // B's subscriber sees the first code, then goes away.
    let mut on_b = api_b.stream(&session).await;
    let (seen, first) = on_b.next().await.unwrap();
    drop(on_b);
    // Meanwhile the code rotates, and the phone scans the newest one.
    let mut history = vec![on_a.next().await.unwrap()];
    assert_eq!(history[0], (seen, first));
    history.extend(take(&mut on_a, 2).await);
    let newest = qr_of(&history[2].1).to_owned();
    api_a.scan_ok(&newest, PHONE, ScanOutcome::Success).await;
    history.extend(take(&mut on_a, 2).await);
    on_a.assert_closed().await;

    // Back on B with `Last-Event-ID`: the events after `seen`, except codes that are stale
    // (which a resume on the server that runs the session leaves out too), nothing twice.
    let got = rest(&mut api_b.stream_from(&session, Some(seen)).await).await;
    let missed: Vec<_> = history
        .iter()
        .filter(|(id, event)| *id > seen && !matches!(event, StreamEvent::Qr(_)))
        .cloned()
        .collect();
    assert_eq!(got, missed);
    assert!(matches!(got[..], [(_, StreamEvent::Connecting), (_, StreamEvent::Connected(_))]));
    assert_eq!(got[1].0, got[0].0 + 1, "no gap");
}

#[tokio::test]
async fn a_cancel_on_another_server_ends_the_session_on_both_within_a_second() {
    let mut nodes = Nodes::new().await;
    let (_a, _b, api_a, api_b) = nodes.two().await;
    let session = connect(&api_a).await;
    let mut on_a = api_a.stream(&session).await;
    let mut on_b = api_b.stream(&session).await;
    on_a.next_qr().await;
    on_b.next_qr().await;

    let asked = Instant::now();
    let cancelled = api_b.cancel(&nodes.token, &session.session_id).await;
    assert_eq!(cancelled.status(), StatusCode::NO_CONTENT);
    for stream in [&mut on_a, &mut on_b] {
        let (_, event) = stream.next_within(Duration::from_secs(1)).await.unwrap();
        assert!(
            matches!(event, StreamEvent::Failed(ref f) if f.code == FailureCode::Cancelled),
            "{event:?}"
        );
        stream.assert_closed().await;
    }
    assert!(asked.elapsed() < Duration::from_secs(1), "took {:?}", asked.elapsed());

    // Another account's token cannot cancel (or even see) it from any server.
    let other = nodes
        .binary
        .token_command_with_env(
            nodes.dirs[0].path(),
            &["create", "--account", "other", "--scope", "channels:connect"],
            &[("KEEBAI_DATABASE_URL", nodes.url.expose_secret())],
        )
        .await;
    let other = String::from_utf8(other.stdout).unwrap().trim().to_owned();
    let fresh = connect(&api_a).await;
    for api in [&api_a, &api_b] {
        let refused = api.cancel(&other, &fresh.session_id).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let refused = api.open_stream(&other, &fresh.stream_url, None).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_scan_on_another_server_connects_and_every_server_lists_the_channel() {
    let mut nodes = Nodes::new().await;
    let (a, b, c) = (nodes.start().await, nodes.start().await, nodes.start().await);
    let api_a = a.api(&nodes.token);
    let session = connect(&api_a).await;
    let mut on_c = c.api(&nodes.token).stream(&session).await;
    let qr = on_c.next_qr().await;

    b.api(&nodes.token).scan_ok(&qr, PHONE, ScanOutcome::Success).await;
    assert_eq!(on_c.next_event().await, StreamEvent::Connecting);
    let StreamEvent::Connected(connected) = on_c.next_event().await else {
        panic!("the session connects")
    };
    for server in [&a, &b, &c] {
        let numbers = server.api(&nodes.token).numbers_ok().await;
        assert_eq!(numbers.len(), 1);
        assert_eq!(numbers[0].channel_id, connected.channel_id);
    }
    // The code is used now: a second scan on any server is refused as stale.
    for server in [&a, &b] {
        let again = server.api(&nodes.token).sim_scan(&qr, PHONE, ScanOutcome::Success).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn the_sessions_of_a_killed_server_fail_with_owner_lost_within_20_s() {
    let mut nodes = Nodes::new().await;
    let (a, b) = (nodes.start().await, nodes.start().await);
    let session = connect(&a.api(&nodes.token)).await;
    let mut on_b = b.api(&nodes.token).stream(&session).await;
    on_b.next_qr().await;

    let killed = Instant::now();
    a.kill().await;
    let failed = loop {
        match on_b.next_within(Duration::from_secs(25)).await {
            Some((_, StreamEvent::Qr(_))) => continue,
            Some((_, event)) => break event,
            None => panic!("the stream ends with an event"),
        }
    };
    let took = killed.elapsed();
    assert!(
        matches!(failed, StreamEvent::Failed(ref f) if f.code == FailureCode::OwnerLost),
        "{failed:?}"
    );
    assert!(took < Duration::from_secs(20), "owner_lost after {took:?}");
    on_b.assert_closed().await;
    // New sessions still work on the servers that are left.
    let fresh = connect(&b.api(&nodes.token)).await;
    b.api(&nodes.token).stream(&fresh).await.next_qr().await;
}

#[tokio::test]
async fn a_stream_on_another_server_goes_on_after_postgres_restarts() {
    let postgres = OwnPostgres::start();
    let mut nodes = Nodes::on(postgres.url.clone()).await;
    let (_a, b, api_a, api_b) = nodes.two().await;
    let session = connect(&api_a).await;
    let mut on_a = api_a.stream(&session).await;
    let mut on_b = api_b.stream(&session).await;
    let (before, _) = on_b.next().await.unwrap();

    postgres.restart();

    // B's stream stays open and goes on with the next ids, as A's does.
    let mut from_b = take(&mut on_b, 2).await;
    let (last, qr) = from_b.last().cloned().unwrap();
    assert!(from_b[0].0 > before && from_b[1].0 > from_b[0].0, "{before} then {from_b:?}");
    api_b.scan_ok(qr_of(&qr), PHONE, ScanOutcome::Success).await;
    from_b.extend(take(&mut on_b, 2).await);
    on_b.assert_closed().await;
    assert_eq!(from_b[2], (last + 1, StreamEvent::Connecting));
    assert!(matches!(from_b[3], (id, StreamEvent::Connected(_)) if id == last + 2));

    let from_a = rest(&mut on_a).await;
    for event in &from_b {
        assert!(from_a.contains(event), "{event:?} is what A published: {from_a:?}");
    }
    // B noticed the restart (so the catch-up above is what carried the stream over it).
    assert!(b.logs().contains("the cluster listener"), "{}", b.logs());
}

#[tokio::test]
async fn a_server_stopped_with_sigterm_ends_its_sessions_for_watchers_on_other_servers() {
    let mut nodes = Nodes::new().await;
    let (a, b) = (nodes.start().await, nodes.start().await);
    let session = connect(&a.api(&nodes.token)).await;
    let mut on_b = b.api(&nodes.token).stream(&session).await;
    on_b.next_qr().await;

    let exit = a.stop().await;
    assert!(exit.status.success(), "a clean exit");
    let failed = loop {
        match on_b.next_within(Duration::from_secs(5)).await {
            Some((_, StreamEvent::Qr(_))) => continue,
            Some((_, event)) => break event,
            None => panic!("the stream ends with an event"),
        }
    };
    assert!(
        matches!(failed, StreamEvent::Failed(ref f) if f.code == FailureCode::ServerShutdown),
        "its last event reached the others before it left: {failed:?}"
    );
}

#[tokio::test]
async fn a_pairing_code_asked_and_typed_through_another_server_links_the_session() {
    let mut nodes = Nodes::new().await;
    let (_a, _b, api_a, api_b) = nodes.two().await;
    let session = connect(&api_a).await;
    let mut on_a = api_a.stream(&session).await;
    on_a.next_qr().await;

    let code = api_b.pairing_code_ok(&session, PHONE).await;
    let Some((_, StreamEvent::PairingCode(shown))) = on_a.next().await else {
        panic!("the owner's stream shows the code")
    };
    assert_eq!(shown.code, code);
    assert_eq!(
        api_b.pairing_code_ok(&session, PHONE).await,
        code,
        "the same number, the same code"
    );
    let mut on_b = api_b.stream(&session).await;
    assert_eq!(on_b.next().await.unwrap().1, StreamEvent::PairingCode(shown));

    let entered = api_b.sim_enter_code(&code, PHONE, ScanOutcome::Success).await;
    assert_eq!(entered.status(), StatusCode::ACCEPTED);
    assert_eq!(on_a.next_event().await, StreamEvent::Connecting);
    assert!(matches!(on_a.next_event().await, StreamEvent::Connected(_)));
    assert_eq!(on_b.next_event().await, StreamEvent::Connecting);
}
