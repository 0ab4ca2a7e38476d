//! Starting and stopping one whatsapp-rust client on one device's keys.

use std::sync::Arc;
use std::time::Duration;

use whatsapp_rust::async_channel;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};

use super::config::WhatsappConfig;
use super::devices::DeviceKeys;
use crate::domain::ChannelId;

/// A stop waits this long for a clean disconnect, then aborts. A client whose connect is in
/// flight would otherwise wait out its 20 s transport timeout (measured).
const STOP_GRACE: Duration = Duration::from_millis(500);

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

/// Builds a client on device `id`'s keys (created on first use), not yet started.
pub async fn build(
    config: &WhatsappConfig,
    keys: &DeviceKeys,
    id: &ChannelId,
) -> anyhow::Result<(Bot, Events)> {
    let store = keys.open(id).await?;
    let (sender, events) = async_channel::unbounded();
    let mut builder = Bot::builder().with_backend_arc(store);
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
