//! Starting and stopping one whatsapp-rust client on one device file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use whatsapp_rust::async_channel;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};

use super::config::WhatsappConfig;

/// A stop waits this long for a clean disconnect, then aborts. A client whose connect is in
/// flight would otherwise wait out its 20 s transport timeout (measured).
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Opening a device store whose directory is missing hangs about 30 s in whatsapp-rust 0.7;
/// we create the directory first and still bound the open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Events of one client, in the order it emitted them.
pub type Events = async_channel::Receiver<Arc<Event>>;

/// Forwards every event, in order, to an unbounded channel (whatsapp-rust calls handlers inline).
struct Forward(async_channel::Sender<Arc<Event>>);

impl EventHandler for Forward {
    fn handle_event(&self, event: Arc<Event>) {
        // Fails only once the receiver is gone, when nobody needs the event.
        let _ = self.0.try_send(event);
    }
}

/// Builds a client on `path` (creating the file), not yet started.
pub async fn build(config: &WhatsappConfig, path: &Path) -> anyhow::Result<(Bot, Events)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let url = path.to_str().context("the device path is not UTF-8")?;
    let store = tokio::time::timeout(OPEN_TIMEOUT, SqliteStore::new(url))
        .await
        .context("opening the device store timed out")?
        .map_err(|e| anyhow::anyhow!("opening the device store: {e}"))?;
    let (sender, events) = async_channel::unbounded();
    let mut builder = Bot::builder().with_backend(store);
    if let Some(url) = &config.ws_url {
        builder = builder
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(url.clone()));
    }
    if let Some(version) = config.version {
        builder = builder.with_version(version);
    }
    let bot = builder
        .with_event_handler(Forward(sender))
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("building the WhatsApp client: {e}"))?;
    Ok((bot, events))
}

/// A running client and its events.
pub struct Device {
    pub handle: BotHandle,
    pub events: Events,
}

impl Device {
    /// Starts `bot`'s run loop.
    pub fn start(bot: Bot, events: Events) -> Self {
        Self { handle: bot.spawn(), events }
    }

    /// Stops the client (see [`stop`]).
    pub async fn stop(self) {
        stop(self.handle).await;
    }
}

/// Stops a running client: a clean disconnect when it comes quickly, else an abort; returns once
/// its run loop is gone. The device file closes when the last `Arc<Client>` is dropped.
pub async fn stop(handle: BotHandle) {
    let client = handle.client();
    if tokio::time::timeout(STOP_GRACE, client.disconnect()).await.is_err() {
        handle.abort();
    }
    drop(client);
    let _ = tokio::time::timeout(STOP_GRACE, handle).await;
}
