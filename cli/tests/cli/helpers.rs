//! What the CLI's tests share besides keebai-test-support's server: the `keebai` binary run with
//! piped output or in a pseudo-terminal (whose screen is read and its QR codes decoded), and a TCP
//! proxy whose connections can be cut.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keebai_test_support::TestApp;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::net::{TcpListener, TcpStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_keebai");
const ROWS: std::num::NonZeroU16 = std::num::NonZeroU16::new(60).unwrap();
const COLS: std::num::NonZeroU16 = std::num::NonZeroU16::new(120).unwrap();
/// Upper bound for anything a test waits for, so a bug fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A `keebai` command aimed at `server`, with piped output.
pub fn keebai(server: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env("KEEBAI_API_URL", server.base_url())
        .env("KEEBAI_TOKEN", &server.token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The whole run of a command: exit code, stdout, stderr.
pub async fn run(mut command: tokio::process::Command) -> (i32, String, String) {
    let output =
        tokio::time::timeout(PATIENCE, command.output()).await.expect("the command ends").unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `keebai` running in a pseudo-terminal, its output fed to a terminal emulator: the screen is
/// what a person would see.
pub struct Terminal {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Terminal {
    pub fn spawn(server: &TestApp, args: &[&str]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize { rows: 60, cols: 120, pixel_width: 0, pixel_height: 0 })
            .unwrap();
        let mut command = CommandBuilder::new(BIN);
        command.args(args);
        command.env("KEEBAI_API_URL", server.base_url());
        command.env("KEEBAI_TOKEN", &server.token);
        command.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(command).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buffer[..n]);
            }
        });
        Self { child, writer, screen, _master: pair.master }
    }

    pub fn rows(&self) -> Vec<String> {
        let parser = self.screen.lock().unwrap();
        parser.screen().rows(0, 120).collect()
    }

    pub fn text(&self) -> String {
        self.rows().join("\n")
    }

    /// Waits until the screen satisfies `ready`.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Terminal) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !ready(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The QR codes on screen, decoded, top to bottom.
    pub fn qr_codes(&self) -> Vec<String> {
        qr_blocks(&self.rows()).iter().map(|block| decode(block)).collect()
    }

    /// Ctrl-C, typed.
    pub fn interrupt(&mut self) {
        self.writer.write_all(b"\x03").unwrap();
        self.writer.flush().unwrap();
    }

    pub async fn exit_code(&mut self) -> u32 {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "keebai did not exit; screen:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn is_block(c: char) -> bool {
    matches!(c, '█' | '▀' | '▄')
}

/// Runs of screen rows that contain half blocks, each run one drawn QR code.
fn qr_blocks(rows: &[String]) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for row in rows {
        if row.chars().any(is_block) {
            current.push(row.clone());
        } else if !current.is_empty() {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// Reads half-block rows into modules and decodes them like a phone's camera would.
fn decode(block: &[String]) -> String {
    let modules: Vec<Vec<bool>> = block
        .iter()
        .flat_map(|row| {
            let cells: Vec<char> = row.chars().collect();
            let top = cells.iter().map(|c| matches!(c, '█' | '▀')).collect();
            let bottom = cells.iter().map(|c| matches!(c, '█' | '▄')).collect();
            [top, bottom]
        })
        .collect();
    let (scale, margin) = (4, 8);
    let width = modules.iter().map(Vec::len).max().unwrap() + 2 * margin;
    let height = modules.len() + 2 * margin;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width * scale, height * scale, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = my >= margin
                && mx >= margin
                && modules
                    .get(my - margin)
                    .and_then(|row| row.get(mx - margin))
                    .copied()
                    .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the block");
    grids[0].decode().expect("the drawn QR code decodes").1
}

/// A TCP proxy in front of the server whose connections can be cut, as a flaky network would.
pub struct Proxy {
    pub url: String,
    target: Arc<Mutex<SocketAddr>>,
    accepted: Arc<AtomicUsize>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let target = Arc::new(Mutex::new(target));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let (count, list, to) = (accepted.clone(), tasks.clone(), target.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let target = *to.lock().unwrap();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task);
            }
        });
        Self { url, target, accepted, tasks }
    }

    /// New connections go to `target` from now on.
    pub fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops every open connection.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
