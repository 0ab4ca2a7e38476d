//! Cluster mode: two or three real server processes on one Postgres database, with the
//! simulated linker. Each test has a database of its own (`KEEBAI_TEST_DATABASE_URL`), or a
//! Postgres server of its own when it restarts it.

use std::path::Path;
use std::time::{Duration, Instant};

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ConnectResponse, FailureCode, Scope, StreamEvent};
use keebai_test_support::{
    Api, OwnPostgres, PHONE, Serve, ServerBinary, ServerProcess, SseReader, fresh_database,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

/// Servers on one database, and a token of its account.
struct Nodes {
    binary: ServerBinary,
    url: SecretString,
    token: String,
    dirs: Vec<TempDir>,
}

impl Nodes {
    async fn on(url: SecretString) -> Self {
        let binary = ServerBinary::new(env!("CARGO_BIN_EXE_keebai-server"));
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["create", "--account", "acme"];
        for scope in Scope::ALL {
            args.extend(["--scope", scope.as_str()]);
        }
        let created = binary
            .token_command_with_env(
                dir.path(),
                &args,
                &[("KEEBAI_DATABASE_URL", url.expose_secret())],
            )
            .await;
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        Self { binary, url, token, dirs: vec![dir] }
    }

    async fn new() -> Self {
        Self::on(fresh_database().await).await
    }

    /// A server of the cluster: codes rotate every 2 s, a scan links in 200 ms.
    fn serve(&self, dir: &Path) -> Serve {
        self.binary
            .serve(dir)
            .env("KEEBAI_DATABASE_URL", self.url.expose_secret())
            .env("KEEBAI_QR_FIRST_TTL_SECS", "2")
            .env("KEEBAI_QR_TTL_SECS", "2")
            .env("KEEBAI_SIM_LINK_DELAY_MS", "200")
    }

    /// Two servers, and the API on each.
    async fn two(&mut self) -> (ServerProcess, ServerProcess, Api, Api) {
        let (a, b) = (self.start().await, self.start().await);
        let (api_a, api_b) = (a.api(&self.token), b.api(&self.token));
        (a, b, api_a, api_b)
    }

    async fn start(&mut self) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let server = self.serve(dir.path()).spawn().await;
        self.dirs.push(dir);
        server
    }
}

/// Every event up to the end of the stream, with their ids.
async fn rest(stream: &mut SseReader) -> Vec<(u64, StreamEvent)> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    events
}

/// The next `n` events of a stream, with their ids.
async fn take(stream: &mut SseReader, n: usize) -> Vec<(u64, StreamEvent)> {
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(stream.next().await.expect("another event"));
    }
    events
}

fn qr_of(event: &StreamEvent) -> &str {
    match event {
        StreamEvent::Qr(qr) => &qr.data,
        other => panic!("expected a QR, got {other:?}"),
    }
}

async fn connect(api: &Api) -> ConnectResponse {
    api.connect_ok().await
}

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
