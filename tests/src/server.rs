//! The server under test: keebai-test-support's in-process [`TestApp`] serving a built
//! dashboard.

use std::path::Path;

use keebai_server::config::ServeArgs;
use keebai_test_support::{TestApp, spawn_app_with};

/// Serves `dist` (a Trunk build of the dashboard) at `/` with the embedded widget host and the
/// simulated linker, which links 200 ms after the scan; then `configure` adjusts the settings.
pub async fn serve_dashboard(dist: &Path, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let dist = dist.to_owned();
    spawn_app_with(move |args| {
        args.sim_link_delay_ms = 200;
        args.dist_dir = dist;
        configure(args);
    })
    .await
}

/// The token the widget host minted and holds (`<data-dir>/host.pat`).
pub fn host_pat(server: &TestApp) -> String {
    let path = server.data_dir().join(keebai_server::host::HOST_PAT_FILE);
    std::fs::read_to_string(path).expect("the host minted its token").trim().to_owned()
}
