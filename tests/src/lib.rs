//! keebai QR connect end to end: the real server (simulated linker) serving a built dashboard,
//! a recording proxy between it and the browser, and headless Chromium driven over WebDriver.
//!
//! - [`server`]: the server in this process (keebai-test-support's `TestApp`) serving the dashboard.
//! - [`recorder`]: an HTTP proxy that keeps every byte the browser sends and receives.
//! - [`browser`]: Debian's chromium through chromedriver (fantoccini).
//! - [`qr`]: reads the QR code back from the pixels of the widget's canvas.
//!
//! The dashboard must be built first (Trunk); `scripts/test.sh` builds it twice (debug, and
//! release with wasm-opt) and names the two directories in `KEEBAI_E2E_DIST_DEBUG` and
//! `KEEBAI_E2E_DIST_RELEASE`.

pub mod browser;
pub mod qr;
pub mod recorder;
pub mod server;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Which Trunk build of the dashboard a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `trunk build`: unoptimized WebAssembly.
    Debug,
    /// `trunk build --release`: the `wasm-release` profile and wasm-opt, as shipped.
    Release,
}

impl Build {
    /// The directory Trunk built this flavour into.
    pub fn dist(self) -> PathBuf {
        let variable = match self {
            Self::Debug => "KEEBAI_E2E_DIST_DEBUG",
            Self::Release => "KEEBAI_E2E_DIST_RELEASE",
        };
        let dir = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "{variable} is not set: the end-to-end tests need the dashboard built by Trunk. \
                 Run `bash scripts/test.sh`, or build it yourself (`trunk build --offline \
                 [--release] --dist DIR`) and set {variable}=DIR."
            )
        });
        assert!(
            dir.join("index.html").is_file(),
            "{variable}={} holds no index.html",
            dir.display()
        );
        dir
    }
}

/// How long a test waits for anything on screen before it fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `probe` every 50 ms until it gives a value; panics after [`WAIT`] naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
