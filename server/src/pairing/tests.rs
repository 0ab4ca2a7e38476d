//! Engine tests on tokio's paused clock: the window, rotation across attempts, replay, limits,
//! slow subscribers, cancel and shutdown, in virtual time.
//!
//! They never write to SQLite while the clock is paused: sqlx runs queries on its own threads,
//! and a paused runtime that waits on them auto-advances to its next timer, which would make
//! timings flaky. The path that saves a channel is covered by the HTTP tests in real time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{FailureCode, StreamEvent};
use tokio::time::Instant;

use super::*;
use crate::channels::{ChannelBook, LinkerKind};
use crate::domain::{AccountId, ChannelName, PhoneNumber, Scopes, SessionId};
use crate::linker::{SimConfig, SimulatedLinker};
use crate::store::Store;

struct Setup {
    _dir: tempfile::TempDir,
    engine: PairingEngine,
    book: ChannelBook,
    sim: SimulatedLinker,
    account: AccountId,
    other: AccountId,
}

/// Opens a store and two accounts in real time, then pauses the clock.
async fn setup(config: PairingConfig, sim: SimConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let mut accounts = Vec::new();
    for name in ["acme", "other"] {
        let token = store.create_token(name, Scopes::all()).await.unwrap();
        accounts.push(store.authenticate(&token.secret).await.unwrap().unwrap().account);
    }
    let linker = SimulatedLinker::new(sim);
    let book = ChannelBook::new(store);
    let engine = PairingEngine::new(config, Arc::new(linker.clone()), book.clone());
    tokio::time::pause();
    Setup { _dir: dir, engine, book, sim: linker, account: accounts[0], other: accounts[1] }
}

async fn default_setup() -> Setup {
    setup(PairingConfig::default(), SimConfig::default()).await
}

/// tokio's timer rounds each deadline up to the next millisecond: "at 300 s" means within a few ms.
#[track_caller]
fn assert_elapsed(since: Instant, secs: u64) {
    let elapsed = since.elapsed();
    let expected = Duration::from_secs(secs);
    assert!(
        elapsed >= expected && elapsed < expected + Duration::from_millis(20),
        "{elapsed:?} != {expected:?}"
    );
}

fn name() -> ChannelName {
    ChannelName::default_name()
}

fn failure_code(event: &StreamEvent) -> FailureCode {
    match event {
        StreamEvent::Failed(f) => f.code,
        other => panic!("expected failed, got {other:?}"),
    }
}

fn qr_data(event: &StreamEvent) -> &str {
    match event {
        StreamEvent::Qr(qr) => &qr.data,
        other => panic!("expected qr, got {other:?}"),
    }
}

#[tokio::test]
async fn codes_keep_coming_across_attempts_until_the_window_closes() {
    let s = default_setup().await;
    let started = Instant::now();
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut stream = s.engine.subscribe(s.account, &session.id, None).await.unwrap();

    let mut qr_times = Vec::new();
    let mut ids = Vec::new();
    let terminal = loop {
        let (id, event) = stream.next().await.expect("the stream ends only after a terminal event");
        ids.push(id);
        if event.is_terminal() {
            break event;
        }
        qr_times.push(started.elapsed().as_secs());
    };

    // One WhatsApp connection gives 60 s then 20 s codes, six in all (160 s); the engine then
    // opens a new attempt so codes keep coming until 300 s.
    assert_eq!(qr_times, [0, 60, 80, 100, 120, 140, 160, 220, 240, 260, 280]);
    assert_eq!(failure_code(&terminal), FailureCode::Expired);
    assert_elapsed(started, 300);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert!(stream.next().await.is_none(), "the stream closes after the terminal event");
    assert_eq!(s.sim.live_codes(), 0, "the last attempt was stopped");
}

#[tokio::test]
async fn no_code_outlives_the_window() {
    let s = default_setup().await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut stream = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    let created = time::OffsetDateTime::now_utc();
    let mut last_expiry = None;
    while let Some((_, event)) = stream.next().await {
        if let StreamEvent::Qr(qr) = event {
            last_expiry = qr.expires_at;
        }
    }
    let last_expiry = time::OffsetDateTime::parse(
        &last_expiry.unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let window_end = created + Duration::from_secs(300);
    assert!(
        (last_expiry - window_end).abs() < time::Duration::milliseconds(50),
        "{last_expiry} vs {window_end}"
    );
}

#[tokio::test]
async fn a_terminal_event_is_replayed_for_60_seconds_then_the_session_is_forgotten() {
    let s = default_setup().await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    s.engine.cancel(s.account, &session.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;

    let (_, replayed) =
        s.engine.subscribe(s.account, &session.id, None).await.unwrap().next().await.unwrap();
    assert_eq!(failure_code(&replayed), FailureCode::Cancelled);

    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(
        s.engine.subscribe(s.account, &session.id, None).await.is_ok(),
        "still replayable at 59 s"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.engine.subscribe(s.account, &session.id, None).await.err(),
        Some(PairingError::NotFound)
    );
    assert_eq!(s.engine.session_count(), 0, "the session's memory is freed");
    assert_eq!(s.engine.live_sessions(s.account), 0);
}

#[tokio::test]
async fn another_accounts_session_looks_exactly_like_a_missing_one() {
    let s = default_setup().await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    assert_eq!(
        s.engine.subscribe(s.other, &session.id, None).await.err(),
        Some(PairingError::NotFound)
    );
    assert_eq!(s.engine.cancel(s.other, &session.id).await, Err(PairingError::NotFound));
    let (_, event) =
        s.engine.subscribe(s.account, &session.id, None).await.unwrap().next().await.unwrap();
    assert!(matches!(event, StreamEvent::Qr(_)), "the owner's session was not touched");
}

#[tokio::test]
async fn live_sessions_per_account_are_capped_and_ended_ones_free_their_slot() {
    let config = PairingConfig { max_sessions_per_account: 2, ..PairingConfig::default() };
    let s = setup(config, SimConfig::default()).await;
    let first = s.engine.create(s.account, name()).await.unwrap();
    s.engine.create(s.account, name()).await.unwrap();

    assert_eq!(
        s.engine.create(s.account, name()).await.err(),
        Some(PairingError::TooManySessions { limit: 2 })
    );
    assert!(s.engine.create(s.other, name()).await.is_ok(), "the cap is per account");

    s.engine.cancel(s.account, &first.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(
        s.engine.create(s.account, name()).await.is_ok(),
        "a cancelled session no longer counts"
    );
}

#[tokio::test]
async fn a_new_subscriber_gets_the_live_code_at_once_and_a_resuming_one_only_what_it_missed() {
    let s = default_setup().await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut first = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    let (id1, qr1) = first.next().await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;

    // 61 s in, the second code is live; a new subscriber gets it without waiting for the third.
    let late = Instant::now();
    let (id2, qr2) =
        s.engine.subscribe(s.account, &session.id, None).await.unwrap().next().await.unwrap();
    assert_eq!(late.elapsed(), Duration::ZERO);
    assert!(id2 > id1);
    assert_ne!(qr_data(&qr1), qr_data(&qr2));

    // Resuming after the first code gives the current one; resuming after the current one waits.
    let (resumed_id, _) =
        s.engine.subscribe(s.account, &session.id, Some(id1)).await.unwrap().next().await.unwrap();
    assert_eq!(resumed_id, id2);
    let mut caught_up = s.engine.subscribe(s.account, &session.id, Some(id2)).await.unwrap();
    let (next_id, _) = caught_up.next().await.unwrap();
    assert!(next_id > id2);
    assert_elapsed(late, 19); // it waited for the next rotation
}

#[tokio::test]
async fn a_stalled_subscriber_delays_no_one_and_skips_only_stale_codes() {
    let s = setup(
        PairingConfig::default(),
        SimConfig { link_delay: Duration::from_secs(5), ..SimConfig::default() },
    )
    .await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut stalled = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    let mut healthy = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    let (_, first) = stalled.next().await.unwrap();

    let started = Instant::now();
    let mut healthy_codes = vec![qr_data(&healthy.next().await.unwrap().1).to_owned()];
    for expected in [60, 80, 100] {
        let (_, event) = healthy.next().await.unwrap();
        assert_eq!(started.elapsed().as_secs(), expected, "the healthy subscriber is on time");
        healthy_codes.push(qr_data(&event).to_owned());
    }
    // The phone scans the live code; then the session ends (cancelled) before it links.
    s.sim
        .scan(
            healthy_codes.last().unwrap(),
            PhoneNumber::parse("+56912345678").unwrap(),
            String::new(),
            ScanOutcome::Success,
        )
        .unwrap();
    assert_eq!(healthy.next().await.unwrap().1, StreamEvent::Connecting);
    s.engine.cancel(s.account, &session.id).await.unwrap();
    assert_eq!(failure_code(&healthy.next().await.unwrap().1), FailureCode::Cancelled);

    // The stalled subscriber wakes up: it skipped the replaced codes but not `connecting` or the
    // terminal event.
    assert_eq!(qr_data(&first), healthy_codes[0]);
    let rest: Vec<_> = stalled.map(|(_, e)| e).collect().await;
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest[0], StreamEvent::Connecting);
    assert_eq!(failure_code(&rest[1]), FailureCode::Cancelled);
}

#[tokio::test]
async fn after_a_scan_the_window_no_longer_expires_but_linking_is_bounded() {
    let never_links = SimConfig { link_delay: Duration::from_secs(3600), ..SimConfig::default() };
    let s = setup(PairingConfig::default(), never_links).await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut stream = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(280)).await;
    let code = s.engine.state(s.account, &session.id).unwrap().live_qr().unwrap().data.clone();
    s.sim
        .scan(
            &code,
            PhoneNumber::parse("+56912345678").unwrap(),
            String::new(),
            ScanOutcome::Success,
        )
        .unwrap();

    let scanned = Instant::now();
    let events: Vec<_> = (&mut stream).map(|(_, e)| e).collect().await;
    assert_eq!(events[events.len() - 2], StreamEvent::Connecting);
    assert_eq!(failure_code(events.last().unwrap()), FailureCode::LinkTimeout);
    assert_elapsed(scanned, 60); // not cut at the 300 s window
}

#[tokio::test]
async fn each_failed_outcome_of_the_phone_ends_the_session_with_its_code() {
    let s = setup(
        PairingConfig::default(),
        SimConfig { link_delay: Duration::ZERO, ..SimConfig::default() },
    )
    .await;
    for (outcome, expected) in [
        (
            ScanOutcome::DeviceLimit,
            StreamEvent::Failed(keebai_protocol::FailedEvent {
                code: FailureCode::DeviceLimit,
                reason: String::new(),
            }),
        ),
        (
            ScanOutcome::Rejected,
            StreamEvent::Failed(keebai_protocol::FailedEvent {
                code: FailureCode::PairingRejected,
                reason: String::new(),
            }),
        ),
        (
            ScanOutcome::Unlinked,
            StreamEvent::Disconnected(keebai_protocol::DisconnectedEvent {
                code: keebai_protocol::DisconnectCode::Unlinked,
                reason: String::new(),
            }),
        ),
    ] {
        let session = s.engine.create(s.account, name()).await.unwrap();
        let mut stream = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
        let code = qr_data(&stream.next().await.unwrap().1).to_owned();
        s.sim
            .scan(&code, PhoneNumber::parse("+56912345678").unwrap(), String::new(), outcome)
            .unwrap();
        let last = stream.map(|(_, e)| e).collect::<Vec<_>>().await.pop().unwrap();
        assert_eq!(last.name(), expected.name(), "{outcome:?}");
        match (last, expected) {
            (StreamEvent::Failed(a), StreamEvent::Failed(b)) => assert_eq!(a.code, b.code),
            (StreamEvent::Disconnected(a), StreamEvent::Disconnected(b)) => {
                assert_eq!(a.code, b.code)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_ends_every_stream_with_server_shutdown_and_refuses_new_sessions() {
    let s = default_setup().await;
    let session = s.engine.create(s.account, name()).await.unwrap();
    let mut stream = s.engine.subscribe(s.account, &session.id, None).await.unwrap();
    stream.next().await.unwrap();

    s.engine.shutdown();
    let ended = Instant::now();
    let (_, last) = stream.next().await.unwrap();
    assert_eq!(failure_code(&last), FailureCode::ServerShutdown);
    assert!(stream.next().await.is_none());
    assert!(ended.elapsed() < Duration::from_secs(1));
    assert_eq!(s.engine.create(s.account, name()).await.err(), Some(PairingError::ShuttingDown));
}

#[tokio::test]
async fn dropping_the_engine_stops_every_session_task() {
    let s = default_setup().await;
    for _ in 0..3 {
        s.engine.create(s.account, name()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(s.sim.live_codes(), 3);
    drop(s.engine);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(s.sim.live_codes(), 0, "every attempt was cancelled");
}

/// A linker that reaches no one: it shows no code, as whatsapp-rust does without network. Once
/// cancelled, it takes `cleanup` of (virtual) time to release what it holds, then counts itself
/// in `released`.
#[derive(Default)]
struct Unreachable {
    cleanup: Duration,
    released: Arc<std::sync::atomic::AtomicUsize>,
}

impl Linker for Unreachable {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Whatsapp
    }
    fn attempt(&self, attempt: Attempt) -> futures::future::BoxFuture<'static, ()> {
        let (cleanup, released) = (self.cleanup, self.released.clone());
        Box::pin(async move {
            // Held to the end, so that the engine keeps listening (no code, no outcome).
            let attempt = attempt;
            attempt.cancel.cancelled().await;
            tokio::time::sleep(cleanup).await;
            released.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(attempt);
        })
    }
    fn first_qr_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(20))
    }
}

async fn unreachable_engine(linker: Unreachable) -> (tempfile::TempDir, PairingEngine) {
    let dir = tempfile::tempdir().unwrap();
    let book = ChannelBook::new(Store::open(dir.path()).await.unwrap());
    (dir, PairingEngine::new(PairingConfig::default(), Arc::new(linker), book))
}

#[tokio::test]
async fn no_code_within_the_connect_timeout_fails_the_session_as_whatsapp_unreachable() {
    let (_dir, engine) = unreachable_engine(Unreachable::default()).await;
    tokio::time::pause();
    let started = Instant::now();
    let session = engine.create(AccountId(1), name()).await.unwrap();
    let events: Vec<_> =
        engine.subscribe(AccountId(1), &session.id, None).await.unwrap().collect().await;
    assert_eq!(events.len(), 1);
    let StreamEvent::Failed(failed) = &events[0].1 else { panic!("{events:?}") };
    assert_eq!(failed.code, FailureCode::WhatsappUnreachable);
    assert!(failed.reason.contains("20 s"), "{}", failed.reason);
    assert_elapsed(started, 20);
}

#[tokio::test]
async fn a_stopped_engine_has_waited_for_every_attempt_to_release_what_it_held() {
    let released = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let linker = Unreachable { cleanup: Duration::from_secs(2), released: released.clone() };
    let (_dir, engine) = unreachable_engine(linker).await;
    tokio::time::pause();
    for _ in 0..3 {
        engine.create(AccountId(1), name()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    engine.shutdown();
    let stopping = Instant::now();
    engine.stopped().await;

    assert_eq!(released.load(std::sync::atomic::Ordering::SeqCst), 3, "every attempt cleaned up");
    assert_elapsed(stopping, 2);
    assert_eq!(engine.session_count(), 0, "no driver outlived the stop");
}

/// The engine's side of [`Peers`], recorded: what a cluster sees of this server's sessions.
#[derive(Default)]
struct RecordedPeers {
    created: std::sync::Mutex<Vec<SessionId>>,
    published: std::sync::Mutex<Vec<(SessionId, u64, StreamEvent)>>,
    fence: std::sync::Mutex<tokio_util::sync::CancellationToken>,
}

impl Peers for RecordedPeers {
    fn created<'a>(
        &'a self,
        id: &'a SessionId,
        _account: AccountId,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
        self.created.lock().unwrap().push(id.clone());
        Box::pin(async { Ok(()) })
    }

    fn published(&self, id: &SessionId, seq: u64, event: &StreamEvent) {
        self.published.lock().unwrap().push((id.clone(), seq, event.clone()));
    }

    fn replica<'a>(
        &'a self,
        _account: AccountId,
        _id: &'a SessionId,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<Option<Replica>>> {
        Box::pin(async { Ok(None) })
    }

    fn cancel<'a>(
        &'a self,
        _account: AccountId,
        _id: &'a SessionId,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    fn request_code<'a>(
        &'a self,
        _account: AccountId,
        _id: &'a SessionId,
        _phone: &'a PhoneNumber,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<Option<Result<CodeGranted, PairingError>>>>
    {
        Box::pin(async { Ok(None) })
    }

    fn linked<'a>(
        &'a self,
        _channel: &'a crate::domain::ChannelId,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn fence(&self) -> tokio_util::sync::CancellationToken {
        self.fence.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn in_a_cluster_every_event_is_published_with_its_stream_id_and_a_fence_ends_sessions() {
    let s = default_setup().await;
    let peers = Arc::new(RecordedPeers::default());
    let linker = Arc::new(s.sim.clone());
    let engine =
        PairingEngine::in_cluster(PairingConfig::default(), linker, s.book.clone(), peers.clone());
    let session = engine.create(s.account, name()).await.unwrap();
    assert_eq!(
        peers.created.lock().unwrap().as_slice(),
        std::slice::from_ref(&session.id),
        "known before it runs"
    );
    let mut stream = engine.subscribe(s.account, &session.id, None).await.unwrap();
    let mut seen = vec![stream.next().await.unwrap()];
    tokio::time::advance(Duration::from_secs(61)).await;
    seen.push(stream.next().await.unwrap());

    // The lease is lost: the session ends with `owner_lost`, and no new one starts.
    peers.fence.lock().unwrap().cancel();
    let (id, last) = stream.next().await.unwrap();
    assert_eq!(failure_code(&last), FailureCode::OwnerLost);
    seen.push((id, last));
    assert!(stream.next().await.is_none());
    assert_eq!(engine.create(s.account, name()).await.err(), Some(PairingError::Unavailable));

    let published: Vec<(u64, StreamEvent)> = peers
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(session_id, seq, event)| {
            assert_eq!(session_id, &session.id);
            (*seq, event.clone())
        })
        .collect();
    assert_eq!(published, seen, "each event once, in order, with the id its stream showed");
}
