//! Building and running the application: store, linker, engine, HTTP, shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::channels::Channels;
use crate::config::{LinkerChoice, ServeArgs};
use crate::linker::SimulatedLinker;
use crate::pairing::{Linker, PairingEngine};
use crate::store::Store;

/// After shutdown starts, connections still open this long are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A built, bound, not yet serving application.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
}

impl App {
    /// Opens the store, sets up the linker and the engine, and binds the listener.
    pub async fn build(data_dir: PathBuf, args: ServeArgs) -> anyhow::Result<Self> {
        let (linker, sim): (Arc<dyn Linker>, _) = match args.linker {
            LinkerChoice::Simulated => {
                let sim = SimulatedLinker::new(args.sim());
                (Arc::new(sim.clone()), Some(sim))
            }
            LinkerChoice::Whatsapp => bail!(
                "the `whatsapp` linker is not available in this build yet. To try the product \
                 without WhatsApp, run with `--linker simulated` (KEEBAI_LINKER=simulated): a \
                 declared test device that is never used unless asked for"
            ),
        };
        let store = Store::open(&data_dir).await?;
        let engine = PairingEngine::new(args.pairing(), linker.clone(), store.clone());
        let channels = Channels::new(store.clone(), linker);
        let state = AppState {
            store,
            engine,
            channels,
            sim,
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("could not listen on {}", args.listen))?;
        raise_open_file_limit();
        Ok(Self {
            router: api::app(state.clone()),
            listener,
            state,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled. Open streams then get `failed`
    /// `server_shutdown` and end within a second; connections still open after a short grace are
    /// dropped; the store is closed last.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            state,
            shutdown,
        } = self;
        let engine = state.engine.clone();
        let signal = shutdown.clone();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            signal.cancelled().await;
            tracing::info!("shutting down");
            engine.shutdown();
        });
        tokio::select! {
            served = server.into_future() => served.context("the HTTP server failed")?,
            () = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("connections still open after the shutdown grace; closing them");
            }
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Each open stream is a socket: let this process use the hard limit of file descriptors rather
/// than the (often 1024) soft one.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
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
