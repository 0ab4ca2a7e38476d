//! Pairing API benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p keebai-server --bench pairing` (`-- --quick`: 1,000 streams only;
//! `-- --streams N`: only the stream figures at N; `-- --stalled N`: with N more subscribers
//! that never read; `-- --soak MINUTES`: the soak, see [`soak`]).
//!
//! It runs the real `keebai-server` binary (release build, simulated linker) as a separate
//! process, so the RSS it reads from `/proc/<pid>/status` is the server's alone, and drives it
//! over loopback HTTP:
//! 1. sessions created per second: `POST /v1/channels/whatsapp/connect` from 64 concurrent
//!    keep-alive clients;
//! 2. at 1,000 and 10,000 concurrent open streams (one session each): server RSS per session and
//!    per stream, and the latency from the engine publishing a `qr` event to the SSE client
//!    parsing it. Codes rotate every 5 s; a code's publish time is `expires_at - 5 s` (both
//!    processes read the same system clock, and `expires_at` has millisecond precision).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{percentile, raise_fd_limit};
use keebai_protocol::{Scope, StreamEvent};
use keebai_test_support::{Api, ServerBinary, ServerProcess, StalledSubscriber};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

const BIN: &str = env!("CARGO_BIN_EXE_keebai-server");
const QR_TTL_SECS: u64 = 5;
/// How long a stream may go without an event (codes rotate every 5 s) before the bench fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Long enough for a profiler wrapping the server to write its report after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(60);

struct Server {
    process: ServerProcess,
    /// Acting with a token of account `bench`.
    api: Api,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with_ttl(3600).await
    }

    /// With pairing sessions that expire after `pairing_ttl_secs`.
    async fn start_with_ttl(pairing_ttl_secs: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let binary = ServerBinary::new(BIN);
        let token = binary.create_token(dir.path(), "bench", &[Scope::ChannelsConnect]).await;
        // `KEEBAI_BENCH_SERVER_WRAPPER="valgrind --tool=dhat"` runs the server under a profiler
        // (with `--no-default-features`: valgrind sees the system allocator, not jemalloc);
        // `KEEBAI_BENCH_SERVER_LOG` sets its `RUST_LOG`, `warn` by default: too quiet for the
        // `listening` line, so the server gets a free port and is waited for by connecting.
        let wrapper = std::env::var("KEEBAI_BENCH_SERVER_WRAPPER").unwrap_or_default();
        let log = std::env::var("KEEBAI_BENCH_SERVER_LOG").unwrap_or("warn".into());
        let process = binary
            .serve(dir.path())
            .free_port()
            .wrapper(wrapper.split_whitespace())
            .echo_logs()
            .start_timeout(Duration::from_secs(120))
            .env("KEEBAI_PAIRING_TTL_SECS", pairing_ttl_secs.to_string())
            .env("KEEBAI_QR_FIRST_TTL_SECS", QR_TTL_SECS.to_string())
            .env("KEEBAI_QR_TTL_SECS", QR_TTL_SECS.to_string())
            .env("KEEBAI_MAX_SESSIONS_PER_ACCOUNT", "1000000")
            .env("RUST_LOG", log)
            .spawn()
            .await;
        let api = process.api(&token);
        Self { process, api, _dir: dir }
    }

    /// Resident set size of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// With `KEEBAI_BENCH_SMAPS=<dir>`, copies the server's `/proc/<pid>/smaps` to
    /// `<dir>/<label>.smaps`, to see which mappings hold its memory.
    fn save_smaps(&self, label: &str) {
        if let Ok(dir) = std::env::var("KEEBAI_BENCH_SMAPS") {
            let smaps = std::fs::read(format!("/proc/{}/smaps", self.process.pid())).unwrap();
            std::fs::write(format!("{dir}/{label}.smaps"), smaps).unwrap();
        }
    }

    /// A `/proc/<pid>/status` figure in KiB (`VmRSS:`, `RssAnon:`, `RssFile:`).
    fn status_kib(&self, field: &str) -> u64 {
        common::status_kib(self.process.pid(), field)
    }

    /// SIGTERM (so a profiler wrapping the server can write its report), SIGKILL after a minute.
    async fn stop(self) {
        let exit = self.process.stop_within(STOP_GRACE).await;
        if exit.forced || !exit.status.success() {
            eprintln!(
                "the server did not stop cleanly: {:?} (forced: {})",
                exit.status, exit.forced
            );
        }
    }
}

async fn sessions_per_second(total: usize, workers: usize) {
    let server = Server::start().await;
    server.api.connect_ok().await; // warm the pool and the store
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let api = server.api.clone();
            tokio::spawn(async move {
                for _ in 0..total / workers {
                    api.connect_ok().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let created = total / workers * workers;
    println!(
        "sessions created: {created} in {:.2} s with {workers} concurrent clients = {:.0} sessions/s",
        elapsed.as_secs_f64(),
        created as f64 / elapsed.as_secs_f64()
    );
    server.stop().await;
}

async fn streams(count: usize, stalled: usize) {
    let server = Server::start().await;
    server.api.connect_ok().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = server.rss_kib();

    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(server.api.connect_ok().await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sessions = server.rss_kib();

    // Each stream on its own connection, as browsers do; opened 256 at a time.
    let opening = Arc::new(Semaphore::new(256));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<()>(count);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(count);
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::with_capacity(count);
    for session in &sessions {
        let permit = opening.clone().acquire_owned().await.unwrap();
        let (api, session) = (server.api.clone(), session.clone());
        let (first_tx, done_tx, samples, measuring) =
            (first_tx.clone(), done_tx.clone(), samples.clone(), measuring.clone());
        readers.push(tokio::spawn(async move {
            let mut events = api.stream(&session).await;
            drop(permit);
            let mut measured = 0;
            let mut first = true;
            while let Some((_, event)) = events.next_within(READ_TIMEOUT).await {
                let received = OffsetDateTime::now_utc();
                let StreamEvent::Qr(qr) = event else { continue };
                if first {
                    first = false;
                    let _ = first_tx.send(()).await;
                    continue;
                }
                if !measuring.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                let expires =
                    OffsetDateTime::parse(qr.expires_at.as_deref().unwrap(), &Rfc3339).unwrap();
                let published = expires - Duration::from_secs(QR_TTL_SECS);
                let latency_ms = (received - published).as_seconds_f64() * 1000.0;
                samples.lock().unwrap().push(latency_ms);
                measured += 1;
                if measured == 2 {
                    let _ = done_tx.send(()).await;
                }
            }
        }));
    }
    for _ in 0..count {
        first_rx.recv().await.unwrap();
    }
    // Subscribers that stop reading, on the same sessions as healthy ones. Their connections
    // fill after about 130 codes (11 minutes at one every 5 s), so during the two rotations
    // measured here they are idle readers rather than blocked ones; the server's behaviour with
    // blocked ones is tested by `stalled_subscribers_do_not_hold_back_healthy_ones`.
    let mut stalled_subscribers = Vec::with_capacity(stalled);
    for session in sessions.iter().take(stalled) {
        let (address, token) = (server.process.address(), &server.api.token);
        stalled_subscribers
            .push(StalledSubscriber::open(address, token, &session.stream_url).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = server.rss_kib();
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
            .await
            .expect("rotations arrive")
            .unwrap();
    }
    let peak = server.rss_kib();

    let mut samples = std::mem::take(&mut *samples.lock().unwrap());
    samples.sort_by(f64::total_cmp);
    drop(stalled_subscribers);
    for reader in readers {
        reader.abort();
    }
    server.stop().await;
    println!("{count} concurrent streams (one session each), {stalled} stalled subscribers:");
    println!(
        "  server RSS: baseline {} KiB, +{count} sessions {} KiB, +{count} open streams {} KiB, during rotation {} KiB",
        baseline, with_sessions, with_streams, peak
    );
    println!(
        "  per session {:.1} KiB, per open stream {:.1} KiB, session + stream {:.1} KiB",
        (with_sessions - baseline) as f64 / count as f64,
        (with_streams - with_sessions) as f64 / count as f64,
        (with_streams - baseline) as f64 / count as f64,
    );
    println!(
        "  qr delivery latency over {} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

/// The soak: for `minutes`, 1,000 streams are always open, each on its own session that
/// expires after 60 s and is replaced at once by a new one (so about 1,000 sessions are created
/// and expire every minute). Then everything ends, and the server's RSS is compared with its
/// baseline (after start-up and a first session).
async fn soak(minutes: u64) {
    const STREAMS: usize = 1_000;
    let server = Arc::new(Server::start_with_ttl(60).await);
    server.api.connect_ok().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = server.rss_kib();
    let (baseline_anon, baseline_file) =
        (server.status_kib("RssAnon:"), server.status_kib("RssFile:"));
    server.save_smaps("baseline");
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let opening = Arc::new(Semaphore::new(64));
    let workers: Vec<_> = (0..STREAMS)
        .map(|i| {
            let (api, created, opening) = (server.api.clone(), created.clone(), opening.clone());
            tokio::spawn(async move {
                // Spread the first sessions over the first minute, as a steady state would.
                tokio::time::sleep(Duration::from_millis(60_000 * i as u64 / STREAMS as u64)).await;
                while Instant::now() < deadline {
                    let permit = opening.acquire().await.unwrap();
                    let session = api.connect_ok().await;
                    let mut events = api.stream(&session).await;
                    drop(permit);
                    created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Read until the session expires and the stream closes.
                    while events.next_within(READ_TIMEOUT).await.is_some() {}
                }
            })
        })
        .collect();
    let mut peak = 0;
    let started = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let rss = server.rss_kib();
        peak = peak.max(rss);
        println!(
            "  {:>4.1} min: {} sessions created, RSS {rss} KiB",
            started.elapsed().as_secs_f64() / 60.0,
            created.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    for worker in workers {
        worker.await.unwrap();
    }
    // Ended sessions stay replayable for 60 s before they are freed.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let after = server.rss_kib();
    let (after_anon, after_file) = (server.status_kib("RssAnon:"), server.status_kib("RssFile:"));
    server.save_smaps("after");
    let total = created.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "soak: {minutes} min, {total} sessions created and expired ({:.0}/min), {STREAMS} streams open",
        total as f64 / minutes as f64
    );
    println!(
        "  server RSS: baseline {baseline} KiB, peak {peak} KiB, after all ended {after} KiB ({:+.1}% of baseline)",
        (after as f64 - baseline as f64) * 100.0 / baseline as f64
    );
    println!(
        "  of which anonymous (heap, stacks) {baseline_anon} -> {after_anon} KiB, file-backed (code) {baseline_file} -> {after_file} KiB"
    );
    Arc::into_inner(server).expect("the workers are done").stop().await;
}

/// The value after `flag` in `args`, parsed.
fn value_of<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; we read `--quick` (1,000 streams only), `--streams N`
    // and `--stalled N` (that many extra subscribers that never read, on the measured sessions).
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<usize> = value_of(&args, "--streams");
    let stalled: usize = value_of(&args, "--stalled").unwrap_or(0);
    let soak_minutes: Option<u64> = value_of(&args, "--soak");
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        if let Some(minutes) = soak_minutes {
            return soak(minutes).await;
        }
        if let Some(count) = only {
            return streams(count, stalled).await;
        }
        sessions_per_second(20_000, 64).await;
        streams(1_000, stalled).await;
        if !quick {
            streams(10_000, stalled).await;
        }
    });
}
