//! Building and running the application: store, linker, engine, HTTP, shutdown.
//!
//! The accept loop is ours rather than `axum::serve`: that one sniffs each connection for HTTP/2
//! through a rewind buffer, which makes hyper double its HTTP/1 read buffer to 16 KiB, and
//! rebuilds the route table per connection. With thousands of idle SSE connections those were
//! 23 of the 39 KiB each cost (measured with `cargo bench --bench pairing` under DHAT). We
//! serve HTTP/1.1, which is what browsers' `EventSource` and the CLI use here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::api::{self, AppState};
use crate::channels::{ChannelBook, Channels, ForwardedSend, LiveChannels, SendOutcome};
use crate::cluster::{
    CANCEL_SESSION, CancelRequest, Cluster, ClusterConfig, CodeAnswer, CodeRequest, PAIRING_CODE,
    SEND_TEXT,
};
use crate::config::{LinkerChoice, ServeArgs};
use crate::domain::{AccountId, PhoneNumber, SessionId};
use crate::host::{self, ApiClient, HostState, load_or_mint_pat};
use crate::linker::whatsapp::{DeviceFiles, DeviceKeys, LiveDevices};
use crate::linker::{SimulatedLinker, WhatsappLinker};
use crate::pairing::{Linker, PairingEngine, WeakEngine};
use crate::store::{DataDirLock, Store};
use crate::webhooks::{Sender, Webhooks};
use keebai_wa_postgres::PostgresStore;

/// Why a test build refuses to dial WhatsApp (see `linker::whatsapp::guard`).
pub const UNSAFE_BUILD: &str = "this keebai-server build accepts WhatsApp servers whose \
    certificates WhatsApp did not sign (whatsapp-rust's test-only danger-skip-cert-chain-verify \
    feature, which `cargo test` and `cargo bench` builds enable); it will not dial WhatsApp. \
    Build the server with `cargo build --release -p keebai-server` (scripts/run.sh does).";

/// After shutdown starts, connections still open this long are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// A client must send a request's headers within this time (slowloris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A built, bound, not yet serving application.
pub struct App {
    listener: TcpListener,
    /// With its state applied once: every connection shares this route table (cloning a
    /// `Router` is an `Arc` clone).
    router: Router,
    state: AppState,
    /// The running linker's channels, stopped after pairing at shutdown.
    live: Arc<dyn LiveChannels>,
    /// The same, when the whatsapp linker runs (for tests that look at its clients).
    whatsapp: Option<LiveDevices>,
    /// Delivers webhooks while the server runs.
    sender: Sender,
    shutdown: CancellationToken,
    /// This process's hold on the data directory, released after the store is closed.
    data_dir_lock: DataDirLock,
}

impl App {
    /// Takes the data directory (refused while another server serves it), opens the store, sets
    /// up the linker and the engine, and binds the listener.
    pub async fn build(data_dir: PathBuf, args: ServeArgs) -> anyhow::Result<Self> {
        let data_dir_lock = DataDirLock::acquire(&data_dir)?;
        let store = Store::open_configured(&data_dir, args.database_url.as_ref()).await?;
        tracing::info!(store = ?store.backend(), "store open");
        let pairing = args.pairing();
        let cluster = match store.postgres() {
            Some(pool) => {
                let config = ClusterConfig { replay: pairing.replay, ..ClusterConfig::default() };
                Some(Cluster::join(pool.clone(), config).await?)
            }
            None => None,
        };
        let book = ChannelBook::new(store.clone());
        let (linker, live, sim, whatsapp): (Arc<dyn Linker>, Arc<dyn LiveChannels>, _, _) =
            match args.linker {
                LinkerChoice::Simulated => {
                    let sim = match store.postgres() {
                        Some(pool) => SimulatedLinker::in_cluster(args.sim(), pool.clone()),
                        None => SimulatedLinker::new(args.sim()),
                    };
                    (Arc::new(sim.clone()), Arc::new(sim.clone()), Some(sim), None)
                }
                LinkerChoice::Whatsapp => {
                    if args.whatsapp_ws_url.is_none()
                        && crate::linker::whatsapp::accepts_unsigned_certificates()
                    {
                        anyhow::bail!(UNSAFE_BUILD);
                    }
                    let config = args.whatsapp(&data_dir);
                    let keys = match store.postgres() {
                        Some(pool) => {
                            PostgresStore::migrate(pool)
                                .await
                                .map_err(|e| anyhow::anyhow!("migrating the device store: {e}"))?;
                            DeviceKeys::Postgres(pool.clone())
                        }
                        None => DeviceKeys::Files(DeviceFiles::new(config.devices_dir.clone())),
                    };
                    let whatsapp = WhatsappLinker::with_keys(config, keys, book.clone());
                    whatsapp.live().remove_leftovers().await?;
                    let live = whatsapp.live().clone();
                    (Arc::new(whatsapp), Arc::new(live.clone()), None, Some(live))
                }
            };
        let kind = linker.kind();
        let engine = match &cluster {
            Some(cluster) => {
                let engine = PairingEngine::in_cluster(
                    pairing.clone(),
                    linker,
                    book.clone(),
                    Arc::new(cluster.clone()),
                );
                serve_cancels(cluster, engine.downgrade());
                serve_code_requests(cluster, engine.downgrade());
                engine
            }
            None => PairingEngine::new(pairing.clone(), linker, book.clone()),
        };
        // In a cluster each channel runs on the server that holds its lease.
        let channels = match &cluster {
            Some(cluster) => {
                let channels = Channels::in_cluster(
                    book.clone(),
                    store.clone(),
                    live.clone(),
                    Arc::new(cluster.clone()),
                );
                serve_sends(cluster, channels.clone());
                cluster.place_channels(live.clone(), book);
                channels
            }
            None => Channels::new(book, store.clone(), live.clone()),
        };
        let per_minute = std::num::NonZeroU32::new(args.auth_failures_per_minute)
            .context("--auth-failures-per-minute must be at least 1")?;
        let auth_failures = Arc::new(crate::api::limit::AuthFailures::new(per_minute));
        let webhook_config = args.webhooks();
        let webhooks = Webhooks::new(store.clone(), webhook_config.policy);
        let sender = Sender::new(store.clone(), webhook_config)?;
        let state = AppState { store, engine, channels, webhooks, cluster, auth_failures };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        raise_open_file_limit();
        if let (Some(whatsapp), None) = (&whatsapp, &state.cluster) {
            // In the background: the API serves while channels reconnect. (In a cluster, each
            // server starts the channels it claims.)
            whatsapp.resume_all();
        }
        tracing::info!(linker = kind.as_str(), "linker ready");
        let host_api = match (args.host_api_url.clone(), args.host_pat.clone()) {
            (Some(url), Some(pat)) => ApiClient::remote(url, pat)?,
            (Some(_), None) => anyhow::bail!(
                "--host-api-url needs --host-pat (KEEBAI_HOST_PAT): the token the widget host \
                 calls it with"
            ),
            (None, pat) => ApiClient::InProcess {
                api: api::app(state.clone(), sim.clone()),
                pat: match pat {
                    Some(pat) => pat,
                    None => load_or_mint_pat(&data_dir, &state.store).await?,
                },
            },
        };
        let host =
            HostState::new(host_api, pairing.window + pairing.replay + Duration::from_secs(60));
        let router = api::layers(
            api::routes(state.clone(), sim)
                .merge(host::router(host))
                .fallback_service(host::pages(&args.dist_dir, host::not_found_service())),
        );
        let shutdown = CancellationToken::new();
        Ok(Self { router, listener, state, live, whatsapp, sender, shutdown, data_dir_lock })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The whatsapp linker's live channels, when it runs.
    pub fn whatsapp(&self) -> Option<&LiveDevices> {
        self.whatsapp.as_ref()
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled. Open streams then get `failed`
    /// `server_shutdown` and end within a second; connections still open after a short grace are
    /// dropped. Then pairing stops (every attempt releases its device or hands it over), then
    /// the live channels, each bounded by the same grace; the store is closed last.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self { listener, router, state, live, sender, shutdown, data_dir_lock, .. } = self;
        let sending = tokio::spawn(sender.run(shutdown.clone()));
        let connections = GracefulShutdown::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Typically EMFILE (out of file descriptors): back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let _ = stream.set_nodelay(true);
            // Handlers see the peer's address (the failed-authentication limit is per client).
            let service = router.clone().map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let connection = connections.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        tracing::info!("shutting down");
        state.engine.shutdown();
        tokio::select! {
            () = connections.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("connections still open after the shutdown grace; closing them");
            }
        }
        // Attempts close their clients and delete their device files (about a second).
        if tokio::time::timeout(SHUTDOWN_GRACE, state.engine.stopped()).await.is_err() {
            tracing::warn!("pairing attempts still running after the shutdown grace");
        }
        // The last events of this server's sessions reach the others; then it leaves.
        if let Some(cluster) = &state.cluster
            && tokio::time::timeout(SHUTDOWN_GRACE, cluster.stop()).await.is_err()
        {
            tracing::warn!("the cluster's database did not take this server's last events in time");
        }
        // Live WhatsApp connections flush and close (each bounded to about a second).
        if tokio::time::timeout(SHUTDOWN_GRACE, live.stop()).await.is_err() {
            tracing::warn!("linked devices still open after the shutdown grace");
        }
        // The sender stops its tries and gives their claims back (the deliveries stay queued).
        if tokio::time::timeout(SHUTDOWN_GRACE, sending).await.is_err() {
            tracing::warn!("webhook tries still running after the shutdown grace");
        }
        state.store.close().await;
        drop(data_dir_lock);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Another server's request to cancel a session that runs here.
fn serve_cancels(cluster: &Cluster, engine: WeakEngine) {
    cluster.serve(
        CANCEL_SESSION,
        Arc::new(move |body: String| {
            let found = match serde_json::from_str::<CancelRequest>(&body) {
                Ok(request) => match SessionId::parse(&request.session_id) {
                    Ok(id) => engine.cancel_here(AccountId(request.account_id), &id).is_ok(),
                    Err(_) => false,
                },
                Err(_) => false,
            };
            Box::pin(std::future::ready(found.to_string()))
        }),
    );
}

/// Another server's request for a pairing code of a session that runs here.
fn serve_code_requests(cluster: &Cluster, engine: WeakEngine) {
    cluster.serve(
        PAIRING_CODE,
        Arc::new(move |body: String| {
            let engine = engine.clone();
            Box::pin(async move {
                let answer = match serde_json::from_str::<CodeRequest>(&body) {
                    Ok(request) => {
                        let parsed = (
                            SessionId::parse(&request.session_id),
                            PhoneNumber::parse(&request.phone_number),
                        );
                        match parsed {
                            (Ok(id), Ok(phone)) => CodeAnswer::of(
                                engine
                                    .request_code_here(AccountId(request.account_id), &id, phone)
                                    .await,
                            ),
                            _ => CodeAnswer::NotFound,
                        }
                    }
                    Err(_) => CodeAnswer::NotFound,
                };
                serde_json::to_string(&answer).unwrap_or_else(|_| "\"unavailable\"".to_owned())
            })
        }),
    );
}

/// Another server's request to send a recorded message on a channel that runs here.
fn serve_sends(cluster: &Cluster, channels: Channels) {
    cluster.serve(
        SEND_TEXT,
        Arc::new(move |body: String| {
            let channels = channels.clone();
            Box::pin(async move {
                let outcome = match serde_json::from_str::<ForwardedSend>(&body) {
                    Ok(send) => channels.send_forwarded(send).await,
                    Err(_) => SendOutcome::Failed,
                };
                serde_json::to_string(&outcome).unwrap_or_else(|_| "\"failed\"".to_owned())
            })
        }),
    );
}

/// Each open stream is a socket: let this process use the hard limit of file descriptors rather
/// than the (often 1024) soft one.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass, which lives on our stack.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        token.cancel();
    });
}
