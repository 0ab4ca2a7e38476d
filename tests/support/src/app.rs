//! The server in this process, over real HTTP on a loopback port, each with its own data dir.

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keebai_protocol::Scope;
use keebai_server::App;
use keebai_server::api::AppState;
use keebai_server::config::{LinkerChoice, ServeArgs};
use keebai_server::domain::AccountId;
use keebai_server::linker::whatsapp::LiveDevices;
use secrecy::ExposeSecret;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ACCOUNT;
use crate::api::Api;

/// How long [`TestApp::stop`] waits: the server's shutdown grace (3 s) plus the linker's (3 s),
/// with room to spare.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running server with a temp data dir and a token of account `acme` with every scope.
///
/// It is its own [`Api`] client (through `Deref`): `app.connect_ok()`, `app.token`. Dropping it
/// stops the server (without waiting); [`TestApp::stop`] waits.
pub struct TestApp {
    pub address: SocketAddr,
    /// The server's state, to look inside (`state.store`, `state.engine`).
    pub state: AppState,
    /// The whatsapp linker's live channels, when it runs (to look at its clients).
    pub whatsapp: Option<LiveDevices>,
    api: Api,
    args: ServeArgs,
    data_dir: Arc<TempDir>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A server with the defaults (see [`spawn_app_with`]).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server after `configure` adjusts the defaults: the simulated linker, port 0 on loopback,
/// 50 ms from `connecting` to `connected`, and the rest as documented (`ServeArgs::default`).
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("a temp dir"), configure).await
}

/// A server whose codes rotate every second, for tests of rotation.
pub async fn spawn_fast_rotating_app() -> TestApp {
    spawn_app_with(|args| {
        args.qr_first_ttl_secs = 1;
        args.qr_ttl_secs = 1;
    })
    .await
}

/// Like [`spawn_app_with`], on a fresh Postgres database of its own ([`fresh_database`]).
///
/// [`fresh_database`]: crate::fresh_database
pub async fn spawn_postgres_app(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let url = crate::fresh_database().await;
    spawn_app_with(|args| {
        args.database_url = Some(url);
        configure(args);
    })
    .await
}

/// Like [`spawn_app_with`], on a data dir that may hold data already.
pub async fn spawn_app_in(dir: TempDir, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let mut args = ServeArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        linker: LinkerChoice::Simulated,
        sim_link_delay_ms: 50,
        ..ServeArgs::default()
    };
    configure(&mut args);
    TestApp::start(Arc::new(dir), args, None).await
}

impl TestApp {
    async fn start(data_dir: Arc<TempDir>, args: ServeArgs, token: Option<String>) -> Self {
        let app =
            App::build(data_dir.path().to_owned(), args.clone()).await.expect("the app builds");
        let address = app.local_addr().expect("a bound address");
        let state = app.state().clone();
        let whatsapp = app.whatsapp().cloned();
        let shutdown = app.shutdown_token();
        let server = tokio::spawn(app.run_until_stopped());
        let token = match token {
            Some(token) => token,
            None => mint(&state, ACCOUNT, &Scope::ALL).await,
        };
        let api = Api::new(reqwest::Client::new(), format!("http://{address}"), token);
        Self { address, state, whatsapp, api, args, data_dir, shutdown, server: Some(server) }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// A new token for `account` with exactly `scopes`.
    pub async fn token(&self, account: &str, scopes: &[Scope]) -> String {
        mint(&self.state, account, scopes).await
    }

    /// The account of the default token.
    pub async fn account(&self) -> AccountId {
        let secret = self.api.token.clone().into();
        let principal = self.state.store.authenticate(&secret).await.expect("the store reads");
        principal.expect("the default token is valid").account
    }

    /// Live pairing sessions of the default token's account.
    pub async fn live_sessions(&self) -> usize {
        self.state.engine.live_sessions(self.account().await)
    }

    /// Stops the server and starts it again on the same address and data directory, as a deploy
    /// would: pairing sessions (in memory) are gone; tokens and channels stay. `configure`
    /// adjusts the settings this server had.
    pub async fn restart(mut self, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        self.stop_server().await;
        let mut args = self.args.clone();
        args.listen = self.address;
        configure(&mut args);
        Self::start(self.data_dir.clone(), args, Some(self.api.token.clone())).await
    }

    /// The server crashes and a new one starts on its data directory, on a new port: what
    /// clients see after a crash and a restart. The crash drops the serving task mid-flight, as
    /// the death of a process would: no shutdown runs (open streams get no `failed`
    /// `server_shutdown`) and the data directory's lock is released, so the new server may
    /// take it.
    pub async fn crash_and_restart(mut self) -> Self {
        let server = self.server.take().expect("the server runs until stopped once");
        server.abort();
        let _ = server.await;
        let mut args = self.args.clone();
        args.listen = SocketAddr::from((self.address.ip(), 0));
        Self::start(self.data_dir.clone(), args, Some(self.api.token.clone())).await
    }

    /// Stops the server the way SIGTERM does and waits for it to finish cleanly. The data
    /// directory is handed back, still there, to look at what the stop left.
    pub async fn stop(mut self) -> Arc<TempDir> {
        self.stop_server().await;
        self.data_dir.clone()
    }

    async fn stop_server(&mut self) {
        self.shutdown.cancel();
        let server = self.server.take().expect("the server runs until stopped once");
        tokio::time::timeout(STOP_TIMEOUT, server)
            .await
            .unwrap_or_else(|_| panic!("the server stops within {STOP_TIMEOUT:?}"))
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn mint(state: &AppState, account: &str, scopes: &[Scope]) -> String {
    let scopes = scopes.iter().copied().collect();
    let token = state.store.create_token(account, scopes).await.expect("the store writes");
    token.secret.expose_secret().to_owned()
}
