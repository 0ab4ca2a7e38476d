//! The real `keebai-server` binary as a child process: its `token` commands, serving, stopping.
//!
//! Only a test or bench of the server's own package knows where cargo built the binary
//! (`env!("CARGO_BIN_EXE_keebai-server")`); the end-to-end tests get the release build's path
//! from the environment. Either way the path comes in through [`ServerBinary::new`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keebai_protocol::Scope;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

use crate::api::Api;

/// How long [`Serve::spawn`] waits for the server to listen, unless told otherwise.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`ServerProcess::stop`] waits after SIGTERM before it sends SIGKILL: the server's
/// shutdown grace (3 s) plus the linker's (3 s), with room to spare.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A built `keebai-server` binary.
#[derive(Debug, Clone)]
pub struct ServerBinary {
    path: PathBuf,
}

impl ServerBinary {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `keebai-server token <args>` on `data_dir`, run to the end.
    pub async fn token_command(&self, data_dir: &Path, args: &[&str]) -> Output {
        self.token_command_with_env(data_dir, args, &[]).await
    }

    /// [`Self::token_command`] with more environment variables (`KEEBAI_DATABASE_URL`).
    pub async fn token_command_with_env(
        &self,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let args: Vec<&str> = std::iter::once("token").chain(args.iter().copied()).collect();
        self.command(data_dir, &args, env).await
    }

    /// `keebai-server <args>` on `data_dir` with more environment variables, run to the end
    /// (a subcommand such as `migrate`, not `serve`).
    pub async fn command(&self, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(&self.path);
        clean_env(&mut command);
        command.envs(env.iter().copied());
        let output =
            command.env("KEEBAI_DATA_DIR", data_dir).args(args).kill_on_drop(true).output();
        tokio::time::timeout(START_TIMEOUT, output)
            .await
            .expect("the command ends")
            .expect("the binary runs")
    }

    /// A token of `account` with exactly `scopes`, from `token create`.
    pub async fn create_token(&self, data_dir: &Path, account: &str, scopes: &[Scope]) -> String {
        let mut args = vec!["create", "--account", account];
        for scope in scopes {
            args.extend(["--scope", scope.as_str()]);
        }
        let output = self.token_command(data_dir, &args).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("a UTF-8 token").trim().to_owned()
    }

    /// `keebai-server` serving `data_dir`, to adjust and then [`Serve::spawn`]. By default: the
    /// simulated linker, port 0 on loopback, `RUST_LOG=info`.
    pub fn serve(&self, data_dir: &Path) -> Serve {
        Serve {
            binary: self.clone(),
            data_dir: data_dir.to_owned(),
            env: vec![("KEEBAI_LINKER".into(), Some("simulated".into()))],
            free_port: false,
            wrapper: Vec::new(),
            echo_logs: false,
            start_timeout: START_TIMEOUT,
        }
    }
}

/// How to start a server process (see [`ServerBinary::serve`]).
pub struct Serve {
    binary: ServerBinary,
    data_dir: PathBuf,
    /// Set (`Some`) or removed (`None`), in order.
    env: Vec<(OsString, Option<OsString>)>,
    free_port: bool,
    wrapper: Vec<OsString>,
    echo_logs: bool,
    start_timeout: Duration,
}

impl Serve {
    /// Sets an environment variable of the server (`KEEBAI_*` settings, `RUST_LOG`).
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// `KEEBAI_LINKER`: `simulated` or `whatsapp`.
    pub fn linker(self, linker: &str) -> Self {
        self.env("KEEBAI_LINKER", linker)
    }

    /// Leaves `KEEBAI_LINKER` unset: the server's own default.
    pub fn default_linker(mut self) -> Self {
        self.env.push(("KEEBAI_LINKER".into(), None));
        self
    }

    /// Listens on a port picked here rather than port 0, and waits for it to accept
    /// connections rather than for the `listening` log line: for servers whose logs say less
    /// than `info`, or that run under a wrapper. (The port could be taken in between; port 0
    /// cannot, so it is the default.)
    pub fn free_port(mut self) -> Self {
        self.free_port = true;
        self
    }

    /// Runs the server under `wrapper` (a profiler such as `valgrind --tool=dhat`).
    pub fn wrapper(mut self, wrapper: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Copies the server's log lines to this process's stderr as they come, besides keeping
    /// them.
    pub fn echo_logs(mut self) -> Self {
        self.echo_logs = true;
        self
    }

    /// How long to wait for the server to listen (default 20 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts the server and waits until it serves; panics with its log if it exits first.
    pub async fn spawn(self) -> ServerProcess {
        self.try_spawn()
            .await
            .unwrap_or_else(|logs| panic!("the server exited before it listened:\n{logs}"))
    }

    /// Like [`Serve::spawn`]; a server that exits before it listens gives its log instead.
    pub async fn try_spawn(self) -> Result<ServerProcess, String> {
        let port = if self.free_port { free_port() } else { 0 };
        let mut child = self.command(port).spawn().expect("the server binary runs");
        let logs = Logs { lines: Arc::default(), echo: self.echo_logs };
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        let serving = async {
            if self.free_port {
                let address = SocketAddr::from(([127, 0, 0, 1], port));
                let log_reader = tokio::spawn(logs.clone().keep(stderr));
                if accepting(address, &mut child).await {
                    Some((address, log_reader))
                } else {
                    let _ = log_reader.await;
                    None
                }
            } else {
                let address = logs.until_listening(&mut stderr).await?;
                Some((address, tokio::spawn(logs.clone().keep(stderr))))
            }
        };
        let within = self.start_timeout;
        let serving = tokio::time::timeout(within, serving)
            .await
            .unwrap_or_else(|_| panic!("the server listens within {within:?}:\n{}", logs.text()));
        let Some((address, log_reader)) = serving else { return Err(logs.text()) };
        Ok(ServerProcess {
            child,
            address,
            logs,
            log_reader,
            binary: self.binary,
            data_dir: self.data_dir,
            client: reqwest::Client::new(),
        })
    }

    fn command(&self, port: u16) -> Command {
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(self.binary.path());
                command
            }
            None => Command::new(self.binary.path()),
        };
        clean_env(&mut command);
        command
            .env("KEEBAI_DATA_DIR", &self.data_dir)
            .env("KEEBAI_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info");
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// A running `keebai-server` process. Dropping it kills the process (SIGKILL); [`stop`] ends it
/// the way a service manager does.
///
/// [`stop`]: ServerProcess::stop
pub struct ServerProcess {
    child: Child,
    address: SocketAddr,
    logs: Logs,
    log_reader: JoinHandle<()>,
    binary: ServerBinary,
    data_dir: PathBuf,
    client: reqwest::Client,
}

/// How a server process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// It did not exit within the grace after SIGTERM, and was killed.
    pub forced: bool,
    /// Its whole log (stderr).
    pub logs: String,
}

impl ServerProcess {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The process id (e.g. for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server has not been reaped")
    }

    /// A client of this server acting with `token`.
    pub fn api(&self, token: &str) -> Api {
        Api::new(self.client.clone(), format!("http://{}", self.address), token.to_owned())
    }

    /// A new token of `account` with exactly `scopes`, from the binary's `token create` (on the
    /// same data dir, while the server runs).
    pub async fn token(&self, account: &str, scopes: &[Scope]) -> String {
        self.binary.create_token(&self.data_dir, account, scopes).await
    }

    /// Its log (stderr) so far.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub async fn kill(mut self) -> Exit {
        self.child.start_kill().expect("the server can be killed");
        self.exit(true).await
    }

    /// SIGTERM, then up to 15 s for the server to exit (SIGKILL after that).
    pub async fn stop(self) -> Exit {
        self.stop_within(STOP_GRACE).await
    }

    /// SIGTERM, then up to `grace` for the server to exit (SIGKILL after that).
    pub async fn stop_within(mut self, grace: Duration) -> Exit {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions; the pid
        // is our own child's, which we have not reaped yet.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                status.expect("the server is waited for");
                self.exit(false).await
            }
            Err(_) => {
                self.child.start_kill().expect("the server can be killed");
                self.exit(true).await
            }
        }
    }

    async fn exit(mut self, forced: bool) -> Exit {
        let status = self.child.wait().await.expect("the server is waited for");
        // Its stderr is closed now: the reader ends once it has kept every line.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.log_reader).await;
        Exit { status, forced, logs: self.logs.text() }
    }
}

/// The server's log lines, kept as they come.
#[derive(Clone)]
struct Logs {
    lines: Arc<Mutex<Vec<String>>>,
    echo: bool,
}

impl Logs {
    fn push(&self, line: String) {
        if self.echo {
            eprintln!("{line}");
        }
        self.lines.lock().expect("no reader panicked").push(line);
    }

    fn text(&self) -> String {
        self.lines.lock().expect("no reader panicked").join("\n")
    }

    /// Reads up to the `listening` line and returns its address; `None` if stderr closes first
    /// (the server exited).
    async fn until_listening(
        &self,
        stderr: &mut Lines<BufReader<ChildStderr>>,
    ) -> Option<SocketAddr> {
        while let Ok(Some(line)) = stderr.next_line().await {
            let address = line
                .split("address=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|address| address.parse().ok());
            self.push(line);
            if address.is_some() {
                return address;
            }
        }
        None
    }

    /// Keeps every further line until stderr closes.
    async fn keep(self, mut stderr: Lines<BufReader<ChildStderr>>) {
        while let Ok(Some(line)) = stderr.next_line().await {
            self.push(line);
        }
    }
}

/// Waits until `address` accepts connections (`true`) or `child` exits (`false`).
async fn accepting(address: SocketAddr, child: &mut Child) -> bool {
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return true;
        }
        if child.try_wait().expect("the child can be polled").is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

/// Removes this process's `KEEBAI_*` variables: a developer's shell must not change what a test
/// runs.
fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEEBAI_") {
            command.env_remove(key);
        }
    }
}
