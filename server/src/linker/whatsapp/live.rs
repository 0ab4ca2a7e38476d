//! Live channels: the clients of linked devices, each watched by a task until the phone logs
//! it out, WhatsApp ends it for good, or the server stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use keebai_protocol::FailureCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::adapter::{self, LiveEnding};
use super::client::{self, Device};
use super::config::WhatsappConfig;
use super::devices::{DeviceFiles, DeviceKeys};
use super::send;
use crate::channels::{Channel, ChannelBook, LinkerKind, LiveChannels, SendError, Unlinked};
use crate::domain::{ChannelId, MessageId, MessageText, PhoneNumber};
use crate::sync::lock;

/// A live channel: its client, and the watcher task that owns the client's handle.
struct Live {
    client: Arc<whatsapp_rust::Client>,
    /// Cancelling it makes the watcher stop the client (closing its device file) and end.
    stop: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

/// The whatsapp linker's live channels; cheap to clone.
#[derive(Clone)]
pub struct LiveDevices {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: Arc<WhatsappConfig>,
    pub(super) files: DeviceKeys,
    pub(super) book: ChannelBook,
    /// Live channels, by channel id.
    live: Mutex<HashMap<ChannelId, Live>>,
    /// Stops every watcher and the start-up resume (each watcher has a child token).
    pub(super) shutdown: CancellationToken,
    /// The watchers and the start-up resume: [`LiveChannels::stop`] waits for them.
    pub(super) tasks: TaskTracker,
}

impl LiveDevices {
    pub(super) fn new(config: Arc<WhatsappConfig>, files: DeviceKeys, book: ChannelBook) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                files,
                book,
                live: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Where the devices' files live; `None` in cluster mode, where keys live in Postgres.
    pub fn device_files(&self) -> Option<&DeviceFiles> {
        match &self.inner.files {
            DeviceKeys::Files(files) => Some(files),
            DeviceKeys::Postgres(_) => None,
        }
    }

    /// Channels with a running client.
    pub fn live_channels(&self) -> Vec<ChannelId> {
        lock(&self.inner.live).keys().cloned().collect()
    }

    #[cfg(test)]
    pub(super) fn client_of(&self, channel: &ChannelId) -> Option<Arc<whatsapp_rust::Client>> {
        lock(&self.inner.live).get(channel).map(|live| live.client.clone())
    }

    /// A linked device starts serving `channel`, the channel pairing recorded for it.
    /// `device_id` is the id the attempt named the device's files after.
    pub(super) async fn adopt(&self, device_id: &ChannelId, channel: &Channel, device: Device) {
        if channel.id == *device_id {
            return self.go_live(channel.id.clone(), device);
        }
        // The phone was linked before: the channel keeps its id, so the new device replaces the
        // old one's files. SQLite files are moved only while closed.
        self.stop_live(&channel.id).await;
        device.stop().await;
        if let Err(error) = self.inner.files.rename(device_id, &channel.id).await {
            tracing::error!(channel = %channel.id, error = ?error, "cannot move the device's keys");
            return;
        }
        self.resume(channel).await;
    }

    /// Starts the client of a stored channel; a channel whose device is gone or not linked is
    /// unlinked.
    pub(super) async fn resume(&self, channel: &Channel) {
        let exists = match self.inner.files.exists(&channel.id).await {
            Ok(exists) => exists,
            Err(error) => {
                tracing::warn!(channel = %channel.id, error = ?error, "cannot read the channel's device");
                return;
            }
        };
        let linked = if exists {
            match client::build(&self.inner.config, &self.inner.files, &channel.id).await {
                Ok((bot, events)) if bot.client().pn().is_some() => Some((bot, events)),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(channel = %channel.id, error = ?error, "cannot open the channel's device");
                    return;
                }
            }
        } else {
            None
        };
        match linked {
            Some((bot, events)) => {
                tracing::info!(channel = %channel.id, "resuming WhatsApp channel");
                self.go_live(channel.id.clone(), Device::start(bot, events));
            }
            None => self.inner.unlink(&channel.id, Unlinked::DeviceGone).await,
        }
    }

    /// A linked device starts serving its channel; a watcher follows it until logout or stop.
    pub(super) fn go_live(&self, channel: ChannelId, device: Device) {
        let client = device.handle.client();
        let stop = self.inner.shutdown.child_token();
        let inner = self.inner.clone();
        let (id, own, stopped) = (channel.clone(), client.clone(), stop.clone());
        // Spawned and registered under one lock, so the watcher's own removal comes after.
        let mut live = lock(&self.inner.live);
        let watcher = self.inner.tasks.spawn(async move {
            let Device { handle, events } = device;
            let ending = loop {
                tokio::select! {
                    () = stopped.cancelled() => break None,
                    event = events.recv() => match event {
                        Ok(event) => {
                            if let Some(ending) = adapter::live_ending(&event) {
                                break Some(ending);
                            }
                        }
                        Err(_) => break None,
                    },
                }
            };
            {
                // Only its own entry: after a re-link the channel may already have a new client.
                let mut live = lock(&inner.live);
                if live.get(&id).is_some_and(|l| Arc::ptr_eq(&l.client, &own)) {
                    live.remove(&id);
                }
            }
            drop(own);
            client::stop(handle).await;
            drop(events);
            match ending {
                None => {}
                Some(LiveEnding::Unlinked) => {
                    inner.unlink(&id, Unlinked::RemovedOnPhone).await;
                    if let Err(error) = inner.files.remove(&id).await {
                        tracing::warn!(channel = %id, error = ?error, "cannot delete the device's keys");
                    }
                }
                // Cluster mode: another server connected with these keys, so it holds the
                // channel now (or will restart it if this one still holds the newest claim,
                // see `cluster::placement`); the channel stays connected.
                Some(LiveEnding::Stopped(FailureCode::StreamReplaced))
                    if matches!(inner.files, DeviceKeys::Postgres(_)) =>
                {
                    tracing::info!(channel = %id, "another server took this channel's connection over");
                }
                // The link may be intact; whatsapp-rust will not retry, and neither do we:
                // re-linking the phone reconnects the channel.
                Some(LiveEnding::Stopped(cause)) => {
                    inner.unlink(&id, Unlinked::Stopped(cause)).await
                }
            }
        });
        if let Some(replaced) = live.insert(channel, Live { client, stop, watcher }) {
            // Callers stop a channel before replacing it; never leave a watcher orphaned.
            replaced.stop.cancel();
        }
    }

    /// Stops a live channel's client and waits until its device file is closed.
    async fn stop_live(&self, channel: &ChannelId) {
        let live = lock(&self.inner.live).remove(channel);
        if let Some(live) = live {
            live.stop.cancel();
            drop(live.client);
            let _ = live.watcher.await;
        }
    }
}

impl Inner {
    async fn unlink(&self, channel: &ChannelId, why: Unlinked) {
        if let Err(error) = self.book.unlink(channel, why).await {
            tracing::error!(channel = %channel, error = ?error, "cannot mark the channel disconnected");
        }
    }
}

impl LiveChannels for LiveDevices {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Whatsapp
    }

    fn send_text<'a>(
        &'a self,
        channel: &'a Channel,
        _id: &'a MessageId,
        to: &'a PhoneNumber,
        text: &'a MessageText,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let client = lock(&self.inner.live)
                .get(&channel.id)
                .map(|live| live.client.clone())
                .ok_or(SendError::NotConnected)?;
            send::send_text(&client, to, text).await
        })
    }

    fn start<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !lock(&self.inner.live).contains_key(&channel.id) {
                self.resume(channel).await;
            }
        })
    }

    fn stop_one<'a>(&'a self, id: &'a ChannelId) -> BoxFuture<'a, ()> {
        Box::pin(self.stop_live(id))
    }

    fn is_live(&self, id: &ChannelId) -> bool {
        lock(&self.inner.live).contains_key(id)
    }

    /// Each client flushes and closes (bounded to about a second each, in parallel).
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.shutdown.cancel();
            self.inner.tasks.close();
            self.inner.tasks.wait().await;
        })
    }
}
