//! Headless Chromium (Debian's `chromium`) through `chromedriver`, one of each per test.

use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::wait_for;

pub struct Browser {
    pub client: Client,
    driver_url: String,
    _driver: tokio::process::Child,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless browser whose screen has
    /// `device_pixel_ratio` device pixels per CSS pixel.
    pub async fn start(device_pixel_ratio: f64) -> Self {
        Self::start_in(device_pixel_ratio, "en-US").await
    }

    /// As [`Browser::start`], for a person whose browser prefers `language` (a BCP 47 tag):
    /// what `navigator.languages` says and `Accept-Language` sends.
    pub async fn start_in(device_pixel_ratio: f64, language: &str) -> Self {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {chromedriver}: {e} (scripts/setup-web.sh installs it)")
            });
        let driver_url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        wait_for("chromedriver to listen", || async {
            let ready = status.get(format!("{driver_url}/status")).send().await.ok()?;
            ready.status().is_success().then_some(())
        })
        .await;

        let binary =
            std::env::var("KEEBAI_E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-dev-shm-usage", "--window-size=1200,900",
                    format!("--force-device-scale-factor={device_pixel_ratio}"),
                    format!("--lang={language}"),
                ],
                "prefs": { "intl.accept_languages": language },
            },
            // Keeps the console, which the token-confinement check reads.
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session in headless chromium");
        Self { client, driver_url, _driver: driver }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("the script runs")
    }

    /// The text content of the first element matching `css` (empty when there is none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            json!(css)
        );
        self.eval(&script).await.as_str().unwrap_or_default().to_owned()
    }

    /// Types `keys` into whatever has the keyboard focus (`fantoccini::key::Key`s as chars
    /// for Tab, Enter…), as a person at the keyboard does.
    pub async fn type_keys(&self, keys: &str) {
        let focused = self.client.active_element().await.expect("a focused element");
        focused.send_keys(keys).await.expect("the keys land");
    }

    /// The element with the keyboard focus, as `tag.class` (`input` when it has no class).
    pub async fn focused(&self) -> String {
        let focused = self
            .eval(
                "const e = document.activeElement;
                 return e.tagName.toLowerCase() + (e.className ? '.' + e.className : '');",
            )
            .await;
        focused.as_str().unwrap_or_default().to_owned()
    }

    /// Clicks the first element matching `css`, once it exists.
    pub async fn click(&self, css: &str) {
        let element =
            wait_for(css, || async { self.client.find(Locator::Css(css)).await.ok() }).await;
        element.click().await.expect("the click lands");
    }

    /// The QR code the widget shows, read from its canvas's pixels; `None` while none is shown.
    pub async fn qr_on_screen(&self) -> Option<String> {
        let url = self
            .eval(
                "const c = document.querySelector('.kbai-qr-frame:not([hidden]) canvas');
                 return c && c.width > 0 ? c.toDataURL('image/png') : null;",
            )
            .await;
        let url = url.as_str()?;
        Some(crate::qr::decode_data_url(url).unwrap_or_else(|e| panic!("the canvas: {e}")))
    }

    /// Waits until the widget shows a code other than `previous`, and returns it.
    pub async fn next_qr(&self, previous: &[&str]) -> String {
        wait_for("a new QR code on the canvas", || async {
            self.qr_on_screen().await.filter(|qr| !previous.contains(&qr.as_str()))
        })
        .await
    }

    /// Waits until the widget's status says something containing `text`.
    pub async fn status_contains(&self, text: &str) -> String {
        wait_for(&format!("the status to say {text:?}"), || async {
            let status = self.text(".kbai-status").await;
            status.contains(text).then_some(status)
        })
        .await
    }

    /// Every console message the page logged so far (chromedriver's `browser` log).
    pub async fn console(&self) -> Vec<String> {
        let session = self.client.session_id().await.ok().flatten().expect("a session id");
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a log");
        let entries = log["value"].as_array().cloned().unwrap_or_default();
        entries.iter().map(|e| e["message"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// The cookies WebDriver sees for the current page's URL (HttpOnly ones included), as
    /// `name=value` lines.
    pub async fn cookies(&self) -> String {
        let cookies = self.client.get_all_cookies().await.expect("the cookies");
        let cookies: Vec<String> =
            cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect();
        cookies.join("\n")
    }

    /// Everything the page itself can see that might hold a secret: its URL, its HTML, the
    /// URLs it loaded, its storage and its cookies.
    pub async fn visible_state(&self) -> String {
        let page = self
            .eval(
                "return JSON.stringify({
                    href: location.href,
                    html: document.documentElement.outerHTML,
                    loaded: performance.getEntries().map(e => e.name),
                    local: Object.entries(localStorage),
                    session: Object.entries(sessionStorage),
                    cookie: document.cookie,
                 });",
            )
            .await;
        format!("{}\n{}", page.as_str().unwrap_or_default(), self.cookies().await)
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
