//! The widget's budgets, measured (not asserted): its size, the time from the click to the
//! first code painted, and the time to repaint a new code.
//!
//! ```text
//! eval "$(bash scripts/setup-web.sh)"
//! trunk build --release --offline --dist target/e2e/dist-release
//! KEEBAI_E2E_DIST_RELEASE=$PWD/target/e2e/dist-release cargo bench -p keebai-e2e --bench widget
//! ```
//!
//! Timings come from the page itself: the widget records a `kbai-qr-paint` User Timing
//! measure around each code it paints. "Click to first code" runs from `performance.now()`
//! just before the click to the end of the first such measure: the session request, the
//! stream, the first `qr` event, encoding and painting, on loopback with the simulated linker.
//! `--runs N` sets how many clicks (default 30).

use std::io::Write;
use std::time::Duration;

use keebai_e2e::browser::Browser;
use keebai_e2e::server::serve_dashboard;
use keebai_e2e::{Build, wait_for};

fn gzipped_size(path: &std::path::Path) -> usize {
    let bytes = std::fs::read(path).expect("a dist file");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes).expect("gzip");
    gz.finish().expect("gzip").len()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut values: Vec<f64>, budget: f64) {
    values.sort_by(f64::total_cmp);
    let max = *values.last().expect("samples");
    println!(
        "{name}: n={} p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (budget {budget} ms: {})",
        values.len(),
        percentile(&values, 0.5),
        percentile(&values, 0.95),
        max,
        if percentile(&values, 0.95) <= budget { "within" } else { "OVER" },
    );
}

/// The `kbai-qr-paint` measures so far, as `[start, duration]` pairs.
async fn paints(browser: &Browser) -> Vec<(f64, f64)> {
    let value = browser
        .eval(
            "return performance.getEntriesByName('kbai-qr-paint', 'measure')
                 .map(m => [m.startTime, m.duration]);",
        )
        .await;
    let pairs = value.as_array().cloned().unwrap_or_default();
    pairs
        .iter()
        .map(|p| (p[0].as_f64().unwrap_or_default(), p[1].as_f64().unwrap_or_default()))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .map(|n| n.parse().expect("--runs N"))
        .unwrap_or(30);
    let dist = Build::Release.dist();

    let mut wasm = 0;
    let mut js = 0;
    for entry in std::fs::read_dir(&dist).expect("the dist dir") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.starts_with("keebai-widget") && name.ends_with("_bg.wasm") {
            wasm = gzipped_size(&path);
        } else if name.starts_with("keebai-widget") && name.ends_with(".js") {
            js = gzipped_size(&path);
        }
    }
    println!(
        "size (gzip -9): wasm {wasm} B + JS {js} B = {} B (budget 90,000 B: {})",
        wasm + js,
        if wasm + js <= 90_000 { "within" } else { "OVER" }
    );

    // Codes rotate every second, so each run also repaints a few times.
    let server = serve_dashboard(&dist, |args| {
        args.qr_first_ttl_secs = 1;
        args.qr_ttl_secs = 1;
    })
    .await;
    let browser = Browser::start(2.0).await;
    let mut first_code = Vec::new();
    let mut repaints = Vec::new();
    for _ in 0..runs {
        browser.goto(&server.url("/")).await;
        wait_for("the Connect button", || async {
            (browser.text(".kbai-action").await == "Connect WhatsApp").then_some(())
        })
        .await;
        let clicked = browser
            .eval(
                "const t = performance.now();
                 document.querySelector('.kbai-action').click();
                 return t;",
            )
            .await
            .as_f64()
            .expect("a time");
        let first =
            wait_for("the first code", || async { paints(&browser).await.first().copied() }).await;
        first_code.push(first.0 + first.1 - clicked);
        // Two more codes: repaints of a canvas already on screen.
        let all = wait_for("two repaints", || async {
            let all = paints(&browser).await;
            (all.len() >= 3).then_some(all)
        })
        .await;
        repaints.extend(all[1..].iter().map(|(_, duration)| *duration));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    summary("click to first code painted", first_code, 150.0);
    summary("repaint for a new code", repaints, 4.0);
    browser.close().await;
    server.stop().await;
}
