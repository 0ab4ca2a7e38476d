//! Cluster-mode benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p keebai-server --bench cluster` (`-- --quick`: 1,000 streams only;
//! `-- --streams N`: only the cross-server figures at N; `-- --sessions`: only sessions/s). It
//! starts a throwaway Postgres of its own (`scripts/postgres.sh`: fsync off, so the database's
//! disk is not what is measured) and real `keebai-server` processes (release build, simulated
//! linker), and drives them over loopback HTTP:
//! 1. sessions created per second by one server, then by two (64 concurrent clients either
//!    way, split between the servers);
//! 2. cross-server QR delivery: sessions created on A (evenly over one code period, so codes
//!    rotate evenly, as in steady use), each watched by a stream on B; the latency from A's engine
//!    publishing a `qr` event to the SSE client on B parsing it (a code's publish time is
//!    `expires_at` minus its validity; both processes read the same clock), at 1,000 and 10,000
//!    streams with WhatsApp's 20 s codes, with the memory each costs on A (per session) and on B
//!    (per followed stream);
//! 3. the notification rate at which delivery degrades: codes rotating every second on more and
//!    more sessions, with the pairing events per second, the notifications per second (counted
//!    by a listener of this process), and the latency.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{percentile, raise_fd_limit};
use keebai_protocol::{Scope, StreamEvent};
use keebai_test_support::{Api, OwnPostgres, ServerBinary, ServerProcess};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const BIN: &str = env!("CARGO_BIN_EXE_keebai-server");
const READ_TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    process: ServerProcess,
    api: Api,
    _dir: tempfile::TempDir,
}

impl Node {
    fn rss_kib(&self) -> u64 {
        common::status_kib(self.process.pid(), "VmRSS:")
    }
}

struct Bench {
    postgres: OwnPostgres,
    token: String,
}

impl Bench {
    async fn new() -> Self {
        let postgres = OwnPostgres::start();
        let dir = tempfile::tempdir().unwrap();
        let created = ServerBinary::new(BIN)
            .token_command_with_env(
                dir.path(),
                &["create", "--account", "bench", "--scope", Scope::ChannelsConnect.as_str()],
                &[("KEEBAI_DATABASE_URL", postgres.url.expose_secret())],
            )
            .await;
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        Self { postgres, token }
    }

    /// A server whose codes are valid for `qr_ttl` seconds each.
    async fn node(&self, qr_ttl: u64) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let process = ServerBinary::new(BIN)
            .serve(dir.path())
            .free_port()
            .echo_logs()
            .start_timeout(Duration::from_secs(120))
            .env("KEEBAI_DATABASE_URL", self.postgres.url.expose_secret())
            .env("KEEBAI_PAIRING_TTL_SECS", "3600")
            .env("KEEBAI_QR_FIRST_TTL_SECS", qr_ttl.to_string())
            .env("KEEBAI_QR_TTL_SECS", qr_ttl.to_string())
            .env("KEEBAI_MAX_SESSIONS_PER_ACCOUNT", "1000000")
            .env("RUST_LOG", "warn")
            .spawn()
            .await;
        let api = process.api(&self.token);
        Node { process, api, _dir: dir }
    }
}

async fn sessions_per_second(bench: &Bench, servers: usize, total: usize, workers: usize) {
    let mut nodes = Vec::new();
    for _ in 0..servers {
        let node = bench.node(20).await;
        node.api.connect_ok().await;
        nodes.push(node);
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let api = nodes[worker % servers].api.clone();
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
    let elapsed = started.elapsed().as_secs_f64();
    let created = total / workers * workers;
    println!(
        "sessions created on {servers} server(s): {created} in {elapsed:.2} s with {workers} concurrent clients = {:.0} sessions/s",
        created as f64 / elapsed
    );
    for node in nodes {
        node.process.stop().await;
    }
}

/// Counts the notifications on `keebai_pairing` while it lives.
fn count_notifications(bench: &Bench) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let count = Arc::new(AtomicU64::new(0));
    let url = bench.postgres.url.expose_secret().to_owned();
    let counted = count.clone();
    let task = tokio::spawn(async move {
        let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
        listener.listen("keebai_pairing").await.unwrap();
        while listener.recv().await.is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    (count, task)
}

struct Delivery {
    latencies: Vec<f64>,
    events_per_s: f64,
    notifications_per_s: f64,
    a_per_session_kib: f64,
    b_per_stream_kib: f64,
}

/// `count` sessions on A, a stream on B for each; codes valid `qr_ttl` s; `rotations` measured
/// per stream. Sessions start evenly over one code period, so that codes rotate evenly over
/// time, as they do in steady use (sessions started in one burst would all rotate in the same
/// millisecond).
async fn delivery(bench: &Bench, count: usize, qr_ttl: u64, rotations: usize) -> Delivery {
    let (a, b) = (bench.node(qr_ttl).await, bench.node(qr_ttl).await);
    b.api.stream(&a.api.connect_ok().await).await.next_qr().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a_base, b_base) = (a.rss_kib(), b.rss_kib());

    let samples = Arc::new(Mutex::new(Vec::new()));
    let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<()>(count);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(count);
    let measuring = Arc::new(AtomicBool::new(false));
    let period = Duration::from_secs(qr_ttl);
    let mut readers = Vec::with_capacity(count);
    for i in 0..count {
        let (api_a, api_b) = (a.api.clone(), b.api.clone());
        let (first_tx, done_tx, samples, measuring) =
            (first_tx.clone(), done_tx.clone(), samples.clone(), measuring.clone());
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(period * i as u32 / count as u32).await;
            let session = api_a.connect_ok().await;
            let mut events = api_b.stream(&session).await;
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
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                let expires =
                    OffsetDateTime::parse(qr.expires_at.as_deref().unwrap(), &Rfc3339).unwrap();
                let published = expires - Duration::from_secs(qr_ttl);
                samples.lock().unwrap().push((received - published).as_seconds_f64() * 1000.0);
                measured += 1;
                if measured == rotations {
                    let _ = done_tx.send(()).await;
                }
            }
        }));
    }
    for _ in 0..count {
        first_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a_with_sessions, b_with_streams) = (a.rss_kib(), b.rss_kib());
    let (notifications, listener) = count_notifications(bench);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(180), done_rx.recv())
            .await
            .expect("rotations arrive")
            .unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let notified = notifications.load(Ordering::Relaxed) as f64;
    listener.abort();
    let mut latencies = std::mem::take(&mut *samples.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    for reader in readers {
        reader.abort();
    }
    let delivery = Delivery {
        events_per_s: latencies.len() as f64 / elapsed,
        notifications_per_s: notified / elapsed,
        latencies,
        a_per_session_kib: (a_with_sessions - a_base) as f64 / count as f64,
        b_per_stream_kib: (b_with_streams - b_base) as f64 / count as f64,
    };
    b.process.stop().await;
    a.process.stop().await;
    delivery
}

async fn cross_server(bench: &Bench, count: usize) {
    let d = delivery(bench, count, 20, 2).await;
    println!("{count} sessions on A, each streamed from B (codes every 20 s, as WhatsApp's):");
    println!(
        "  memory: {:.1} KiB per session on A, {:.1} KiB per followed stream on B",
        d.a_per_session_kib, d.b_per_stream_kib
    );
    println!(
        "  qr delivery A -> B over {} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        d.latencies.len(),
        percentile(&d.latencies, 0.5),
        percentile(&d.latencies, 0.99),
        d.latencies.last().copied().unwrap_or_default()
    );
}

async fn notify_rate(bench: &Bench, counts: &[usize]) {
    println!("codes every 1 s on N sessions of A, streamed from B:");
    for &count in counts {
        let d = delivery(bench, count, 1, 3).await;
        println!(
            "  N={count}: {:.0} events/s in {:.0} notifications/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            d.events_per_s,
            d.notifications_per_s,
            percentile(&d.latencies, 0.5),
            percentile(&d.latencies, 0.99),
            d.latencies.last().copied().unwrap_or_default()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<usize> =
        args.iter().position(|a| a == "--streams").and_then(|at| args.get(at + 1)?.parse().ok());
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let bench = Bench::new().await;
        if let Some(count) = only {
            return cross_server(&bench, count).await;
        }
        if args.iter().any(|a| a == "--sessions") {
            sessions_per_second(&bench, 1, 20_000, 64).await;
            return sessions_per_second(&bench, 2, 20_000, 64).await;
        }
        sessions_per_second(&bench, 1, 20_000, 64).await;
        sessions_per_second(&bench, 2, 20_000, 64).await;
        cross_server(&bench, 1_000).await;
        if !quick {
            cross_server(&bench, 10_000).await;
        }
        let counts: &[usize] = if quick { &[1_000] } else { &[1_000, 2_000, 4_000, 8_000] };
        notify_rate(&bench, counts).await;
    });
}
