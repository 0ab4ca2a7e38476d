//! The real keebai server, in this process, with the simulated linker and a temp data dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keebai_protocol::sim::{ScanOutcome, SimScanRequest};
use keebai_server::App;
use keebai_server::config::{LinkerChoice, ServeArgs};
use tokio_util::sync::CancellationToken;

pub struct Server {
    pub address: SocketAddr,
    dist: PathBuf,
    data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: reqwest::Client,
}

/// The settings of a test server: the simulated linker (links 200 ms after the scan), the
/// embedded widget host, `dist` served at `/`.
fn settings(listen: SocketAddr, dist: &Path, configure: impl FnOnce(&mut ServeArgs)) -> ServeArgs {
    let mut args = ServeArgs {
        listen,
        linker: LinkerChoice::Simulated,
        sim_link_delay_ms: 200,
        dist_dir: dist.to_owned(),
        ..ServeArgs::default()
    };
    configure(&mut args);
    args
}

impl Server {
    /// Serves `dist` on a free loopback port, after `configure` adjusts the settings.
    pub async fn start(dist: &Path, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let data_dir = tempfile::tempdir().expect("a temp dir");
        let listen = "127.0.0.1:0".parse().expect("an address");
        Self::run(dist, data_dir, settings(listen, dist, configure)).await
    }

    async fn run(dist: &Path, data_dir: tempfile::TempDir, args: ServeArgs) -> Self {
        let app = App::build(data_dir.path().to_owned(), args).await.expect("the server starts");
        let address = app.local_addr().expect("a bound address");
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(app.run_until_stopped());
        Self {
            address,
            dist: dist.to_owned(),
            data_dir,
            shutdown,
            task,
            client: reqwest::Client::new(),
        }
    }

    /// Stops the server and starts a new one on the same address and data directory, as a
    /// deploy or a crash and restart would: pairing sessions (in memory) are gone, channels
    /// stay.
    pub async fn restart(self, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let Self { address, dist, data_dir, shutdown, task, .. } = self;
        shutdown.cancel();
        let _ = task.await;
        Self::run(&dist, data_dir, settings(address, &dist, configure)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The token the widget host minted and holds (`<data-dir>/host.pat`).
    pub fn host_pat(&self) -> String {
        let path = self.data_dir.path().join(keebai_server::host::HOST_PAT_FILE);
        std::fs::read_to_string(path).expect("the host minted its token").trim().to_owned()
    }

    /// The simulated phone scans `qr` (straight to the server: the phone is not the browser).
    pub async fn scan(&self, qr: &str, phone_number: &str, push_name: &str) -> reqwest::StatusCode {
        let scan = SimScanRequest {
            qr: qr.to_owned(),
            phone_number: phone_number.to_owned(),
            push_name: push_name.to_owned(),
            outcome: ScanOutcome::Success,
        };
        let response = self.client.post(self.url("/sim/scan")).json(&scan).send().await;
        response.expect("the server answers").status()
    }

    /// Stops the server gracefully.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
