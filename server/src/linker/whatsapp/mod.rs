//! The real linker: a WhatsApp linked device (multi-device, as WhatsApp Web) through
//! whatsapp-rust.
//!
//! - `adapter`: whatsapp-rust events to engine events (the mapping table lives there).
//! - `devices`: the device files under `<data-dir>/devices/`.
//! - `client`: starting and stopping one client on one device file.
//! - `guard`: whether this build trusts only WhatsApp's own certificates.
//!
//! One pairing attempt runs one client on a fresh device file named after the channel id it
//! will get. Without network, whatsapp-rust emits no event at all and retries forever; the
//! engine fails such a session with `whatsapp_unreachable` when no code arrives within
//! `--whatsapp-connect-timeout-secs` (20 s). When codes run out (about 160 s) the client ends
//! itself; the engine starts a new attempt. After `PairSuccess` WhatsApp closes the stream
//! (515) and the client reconnects by itself before `Connected`.
//!
//! A linked device becomes a *live channel*: its client keeps running, is resumed at every
//! start, and sends the channel's texts. A logout from the phone marks the channel
//! `disconnected` and deletes its device file. Any other ending after which whatsapp-rust does
//! not reconnect (replaced by another connection, a temporary ban, an outdated client, a
//! refusal) also marks it `disconnected`, keeping the device file; re-linking reconnects it.
//! An attempt that ends any other way (cancel, expiry, failure, shutdown) stops its client
//! within a second and deletes its files.

mod adapter;
mod client;
mod devices;
mod guard;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::SinkExt;
use futures::future::BoxFuture;
use keebai_protocol::{ChannelStatus, FailureCode};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use whatsapp_rust::Jid;
use whatsapp_rust::bot::BotHandle;

pub use adapter::{LiveEnding, PairingAdapter, Reaction, phone_of};
pub use devices::DeviceFiles;
pub use guard::accepts_unsigned_certificates;

use crate::domain::{ChannelId, MessageId, MessageText, PhoneNumber};
use crate::pairing::{Attempt, Linker, LinkerEvent, LinkerKind, SendError};
use crate::store::{ChannelRecord, Store};

/// How the whatsapp linker runs.
#[derive(Debug, Clone)]
pub struct WhatsappConfig {
    /// Where device files live (`<data-dir>/devices`).
    pub devices_dir: PathBuf,
    /// No QR from WhatsApp by then: `failed` `whatsapp_unreachable`.
    pub connect_timeout: Duration,
    /// How long to wait for the push name after `Connected`.
    pub push_name_wait: Duration,
    /// Channels resumed at once at start.
    pub resume_concurrency: usize,
    /// Tests only: the WebSocket URL instead of WhatsApp's.
    pub ws_url: Option<String>,
    /// Tests only: a WhatsApp Web version, which skips fetching it over HTTPS.
    pub version: Option<(u32, u32, u32)>,
}

impl WhatsappConfig {
    pub fn new(data_dir: &std::path::Path, connect_timeout: Duration) -> Self {
        Self {
            devices_dir: data_dir.join("devices"),
            connect_timeout,
            push_name_wait: Duration::from_secs(3),
            resume_concurrency: 4,
            ws_url: None,
            version: None,
        }
    }
}

/// A running client.
struct Device {
    handle: BotHandle,
    events: client::Events,
}

/// A live channel: its client, and the watcher task that owns the client's handle.
struct Live {
    client: Arc<whatsapp_rust::Client>,
    /// Cancelling it makes the watcher stop the client (closing its device file) and end.
    stop: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

/// The whatsapp linker; cheap to clone.
#[derive(Clone)]
pub struct WhatsappLinker {
    inner: Arc<Inner>,
}

struct Inner {
    config: WhatsappConfig,
    files: DeviceFiles,
    store: Store,
    /// Linked devices waiting for the engine to save their channel, by device id.
    pending: Mutex<HashMap<ChannelId, Device>>,
    /// Live channels, by channel id.
    live: Mutex<HashMap<ChannelId, Live>>,
    /// Stops every live channel's watcher (each has a child token).
    shutdown: CancellationToken,
    /// Watchers of live channels (each owns its client's handle).
    watchers: tokio_util::task::TaskTracker,
}

/// Short sections with no `.await` inside; a poisoned map is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WhatsappLinker {
    pub fn new(config: WhatsappConfig, store: Store) -> Self {
        let files = DeviceFiles::new(config.devices_dir.clone());
        Self {
            inner: Arc::new(Inner {
                config,
                files,
                store,
                pending: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                watchers: tokio_util::task::TaskTracker::new(),
            }),
        }
    }

    /// At start, in the background: removes device files of attempts that never became channels,
    /// then resumes every connected channel, a few at a time. Startup and the API do not wait.
    pub fn start_up(&self) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(error) = inner.start_up().await {
                tracing::error!(error = ?error, "resuming WhatsApp channels failed");
            }
        })
    }

    /// Channels with a running client.
    pub fn live_channels(&self) -> Vec<ChannelId> {
        lock(&self.inner.live).keys().cloned().collect()
    }

    pub fn device_files(&self) -> &DeviceFiles {
        &self.inner.files
    }
}

impl Inner {
    async fn start_up(self: &Arc<Self>) -> anyhow::Result<()> {
        let kind = LinkerKind::Whatsapp.as_str();
        let known: HashSet<ChannelId> = self.store.channel_ids(kind).await?.into_iter().collect();
        for leftover in self.files.leftovers(&known)? {
            tracing::info!(device = %leftover, "removing the device file of an unfinished pairing");
            self.files.remove(&leftover)?;
        }
        let channels = self.store.connected_channels(kind).await?;
        let limit = Arc::new(Semaphore::new(self.config.resume_concurrency.max(1)));
        let mut resumed = tokio::task::JoinSet::new();
        for channel in channels {
            let (inner, limit) = (self.clone(), limit.clone());
            resumed.spawn(async move {
                let _permit = limit.acquire().await;
                inner.resume(&channel).await;
            });
        }
        while resumed.join_next().await.is_some() {}
        Ok(())
    }

    /// Starts the client of a stored channel; a channel whose device is gone or not linked is
    /// marked `disconnected`.
    async fn resume(self: &Arc<Self>, channel: &ChannelRecord) {
        let path = self.files.path(&channel.id);
        let linked = if path.exists() {
            match client::build(&self.config, &path).await {
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
                self.go_live(channel.id.clone(), Device { handle: bot.spawn(), events });
            }
            None => {
                tracing::warn!(channel = %channel.id, "the channel's device is not linked any more");
                self.mark_disconnected(&channel.id).await;
            }
        }
    }

    /// A linked device starts serving its channel; a watcher follows it until logout or stop.
    fn go_live(self: &Arc<Self>, channel: ChannelId, device: Device) {
        let client = device.handle.client();
        let stop = self.shutdown.child_token();
        let inner = self.clone();
        let (id, own, stopped) = (channel.clone(), client.clone(), stop.clone());
        // Spawned and registered under one lock, so the watcher's own removal comes after.
        let mut live = lock(&self.live);
        let watcher = self.watchers.spawn(async move {
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
                    tracing::info!(channel = %id, "the phone removed this linked device");
                    inner.mark_disconnected(&id).await;
                    if let Err(error) = inner.files.remove(&id) {
                        tracing::warn!(channel = %id, %error, "cannot delete the device file");
                    }
                }
                Some(LiveEnding::Stopped(cause)) => {
                    // The link may be intact; whatsapp-rust will not retry, and neither do we:
                    // re-linking the phone reconnects the channel.
                    tracing::warn!(channel = %id, cause = cause.as_str(), "WhatsApp ended this channel's connection");
                    inner.mark_disconnected(&id).await;
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
        let live = lock(&self.live).remove(channel);
        if let Some(live) = live {
            live.stop.cancel();
            drop(live.client);
            let _ = live.watcher.await;
        }
    }

    async fn mark_disconnected(&self, channel: &ChannelId) {
        if let Err(error) =
            self.store.set_channel_status(channel, ChannelStatus::Disconnected).await
        {
            tracing::error!(channel = %channel, error = ?error, "cannot mark the channel disconnected");
        }
    }

    /// Stops a device that will not serve a channel, and deletes its files.
    async fn discard(&self, id: &ChannelId, device: Device) {
        client::stop(device.handle).await;
        drop(device.events);
        if let Err(error) = self.files.remove(id) {
            tracing::warn!(device = %id, %error, "cannot delete a device file");
        }
    }

    async fn run_attempt(self: Arc<Self>, mut attempt: Attempt) {
        let id = attempt.device.clone();
        let path = self.files.path(&id);
        let built = tokio::select! {
            built = client::build(&self.config, &path) => built,
            () = attempt.cancel.cancelled() => {
                let _ = self.files.remove(&id);
                return;
            }
        };
        let (bot, events) = match built {
            Ok(built) => built,
            Err(error) => {
                tracing::error!(session = %attempt.session_id, error = ?error, "cannot start a WhatsApp client");
                let _ = self.files.remove(&id);
                let reason = "The server could not start a WhatsApp client. Try again.".to_owned();
                let _ = attempt
                    .events
                    .send(LinkerEvent::Failed { code: FailureCode::Internal, reason })
                    .await;
                return;
            }
        };
        let device = Device { handle: bot.spawn(), events };
        let mut adapter = PairingAdapter::default();
        let linked = loop {
            tokio::select! {
                () = attempt.cancel.cancelled() => break None,
                event = device.events.recv() => {
                    let Ok(event) = event else { break None };
                    match adapter.react(&event) {
                        Reaction::Report(report) => {
                            let last = matches!(
                                report,
                                LinkerEvent::Failed { .. } | LinkerEvent::Disconnected { .. } | LinkerEvent::Exhausted
                            );
                            if attempt.events.send(report).await.is_err() || last {
                                break None;
                            }
                        }
                        Reaction::Linked { phone } => break Some(phone),
                        Reaction::PushName(_) | Reaction::Ignore => {}
                    }
                }
            }
        };
        let Some(phone) = linked else {
            return self.discard(&id, device).await;
        };
        let push_name = self.settle_push_name(&mut adapter, &device, &attempt).await;
        // Handed over before reporting, so that `settle` finds it.
        lock(&self.pending).insert(id.clone(), device);
        let reported =
            attempt.events.send(LinkerEvent::Linked { phone_number: phone, push_name }).await;
        if reported.is_err() {
            // Nobody will settle it (cancelled or shutting down).
            let device = lock(&self.pending).remove(&id);
            if let Some(device) = device {
                self.discard(&id, device).await;
            }
        }
    }

    /// The push name: the client's if known, else one pushed within `push_name_wait`, else the
    /// business name, else empty.
    async fn settle_push_name(
        &self,
        adapter: &mut PairingAdapter,
        device: &Device,
        attempt: &Attempt,
    ) -> String {
        let client = device.handle.client();
        if !client.push_name().is_empty() {
            return adapter.push_name(&client.push_name());
        }
        let wait = tokio::time::sleep(self.config.push_name_wait);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                () = attempt.cancel.cancelled() => break,
                event = device.events.recv() => match event {
                    Ok(event) => {
                        if let Reaction::PushName(name) = adapter.react(&event) && !name.is_empty() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
            }
        }
        adapter.push_name(&client.push_name())
    }
}

impl Linker for WhatsappLinker {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Whatsapp
    }

    fn start(&self, attempt: Attempt) {
        tokio::spawn(self.inner.clone().run_attempt(attempt));
    }

    fn first_qr_timeout(&self) -> Option<Duration> {
        Some(self.inner.config.connect_timeout)
    }

    fn settle<'a>(
        &'a self,
        device: &'a ChannelId,
        channel: Option<&'a ChannelRecord>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            let Some(linked) = lock(&inner.pending).remove(device) else {
                tracing::error!(device = %device, "settle without a linked device");
                return;
            };
            match channel {
                None => inner.discard(device, linked).await,
                Some(channel) if channel.id == *device => inner.go_live(channel.id.clone(), linked),
                Some(channel) => {
                    // The phone was linked before: the channel keeps its id, so the new device
                    // replaces the old one's files. SQLite files are moved only while closed.
                    inner.stop_live(&channel.id).await;
                    client::stop(linked.handle).await;
                    drop(linked.events);
                    if let Err(error) = inner.files.rename(device, &channel.id) {
                        tracing::error!(channel = %channel.id, %error, "cannot move the device file");
                        return;
                    }
                    inner.resume(channel).await;
                }
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.shutdown.cancel();
            self.inner.watchers.close();
            self.inner.watchers.wait().await;
        })
    }

    fn send_text<'a>(
        &'a self,
        channel: &'a ChannelRecord,
        _id: &'a MessageId,
        to: &'a PhoneNumber,
        text: &'a MessageText,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let client = lock(&self.inner.live)
                .get(&channel.id)
                .map(|live| live.client.clone())
                .ok_or(SendError::NotConnected)?;
            // whatsapp-rust would wait for a socket; the API answers 503 at once instead, so
            // callers can retry on their own schedule.
            if !client.is_connected() {
                return Err(SendError::NotConnected);
            }
            let jid = Jid::pn(to.as_str().trim_start_matches('+'));
            match client.send_text(jid, text.as_str()).await {
                Ok(_) => Ok(()),
                // A linked device that is merely offline also says "not logged in"; only a
                // device without a phone number has really lost its link.
                Err(whatsapp_rust::send::SendError::NotLoggedIn) if client.pn().is_none() => {
                    Err(SendError::NotLoggedIn)
                }
                Err(whatsapp_rust::send::SendError::NotLoggedIn) => Err(SendError::NotConnected),
                Err(error) if whatsapp_rust::ErrorChainExt::is_transport_unavailable(&error) => {
                    Err(SendError::NotConnected)
                }
                Err(error) => Err(SendError::Other(anyhow::anyhow!("sending failed: {error}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use keebai_protocol::StreamEvent;
    use whatsapp_rust::types::events::{
        ConnectFailureReason, Event, LoggedOut, PairingQrCode, PairingQrCodesExhausted,
    };

    use super::*;
    use crate::domain::{AccountId, ChannelName, Scopes};
    use crate::pairing::{PairingConfig, PairingEngine};

    /// Replays whatsapp-rust's QR schedule through the real adapter: six codes (60 s, then 20 s
    /// each), then `PairingQrCodesExhausted`, as one WhatsApp connection does.
    struct Schedule;

    impl Linker for Schedule {
        fn kind(&self) -> LinkerKind {
            LinkerKind::Whatsapp
        }

        fn start(&self, attempt: Attempt) {
            tokio::spawn(async move {
                let Attempt { number, mut events, cancel, .. } = attempt;
                let mut adapter = PairingAdapter::default();
                for (index, secs) in [60, 20, 20, 20, 20, 20].into_iter().enumerate() {
                    let ttl = Duration::from_secs(secs);
                    let code = format!("2@attempt{number}-code{index},n,i,a");
                    let event = Event::PairingQrCode(
                        PairingQrCode::builder().code(code).timeout(ttl).build(),
                    );
                    let Reaction::Report(report) = adapter.react(&event) else { panic!() };
                    if events.send(report).await.is_err() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(ttl) => {}
                        () = cancel.cancelled() => return,
                    }
                }
                let event = Event::PairingQrCodesExhausted(
                    PairingQrCodesExhausted::builder().disconnected(true).build(),
                );
                let Reaction::Report(report) = adapter.react(&event) else { panic!() };
                let _ = events.send(report).await;
            });
        }

        fn first_qr_timeout(&self) -> Option<Duration> {
            Some(Duration::from_secs(20))
        }

        fn send_text<'a>(
            &'a self,
            _: &'a ChannelRecord,
            _: &'a MessageId,
            _: &'a PhoneNumber,
            _: &'a MessageText,
        ) -> BoxFuture<'a, Result<(), SendError>> {
            Box::pin(async { Err(SendError::NotConnected) })
        }
    }

    #[tokio::test]
    async fn when_one_connections_codes_run_out_a_new_attempt_keeps_codes_coming() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let engine = PairingEngine::new(PairingConfig::default(), Arc::new(Schedule), store);
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let session = engine.create(AccountId(1), ChannelName::default_name()).unwrap();
        let mut stream = engine.subscribe(AccountId(1), &session.id, None).unwrap();

        let mut codes = Vec::new();
        let terminal = loop {
            let (_, event) = stream.next().await.unwrap();
            match event {
                StreamEvent::Qr(qr) => codes.push((started.elapsed().as_secs(), qr.data)),
                other => break other,
            }
        };
        let times: Vec<u64> = codes.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [0, 60, 80, 100, 120, 140, 160, 220, 240, 260, 280]);
        assert!(codes[5].1.starts_with("2@attempt1-code5"));
        assert!(codes[6].1.starts_with("2@attempt2-code0"), "a new connection at 160 s");
        let StreamEvent::Failed(failed) = terminal else { panic!("{terminal:?}") };
        assert_eq!(failed.code, FailureCode::Expired, "no error in between, only the window's end");
    }

    /// Writes a device file linked to `phone`, as whatsapp-rust leaves it after pairing.
    async fn write_linked_device(path: &std::path::Path, phone: &str) {
        use whatsapp_rust::store::traits::DeviceStore;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let store = whatsapp_rust::store::SqliteStore::new(path.to_str().unwrap()).await.unwrap();
        let mut device = whatsapp_rust::wacore::store::Device::new();
        device.pn = Some(Jid::pn(phone.trim_start_matches('+')));
        device.account = Some(Arc::new(Default::default()));
        store.save(&device).await.unwrap();
    }

    /// File descriptors of this process on files under `dir` that were deleted while open.
    fn deleted_but_open(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|t| t.starts_with(dir) && t.to_string_lossy().ends_with("(deleted)"))
            .count()
    }

    #[tokio::test]
    async fn relinking_a_live_channel_closes_the_old_device_before_the_new_one_takes_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        let account = store.authenticate(&token.secret).await.unwrap().unwrap().account;
        let phone = PhoneNumber::parse("+56912345678").unwrap();
        let channel = store
            .upsert_linked_channel(
                account,
                &ChannelId::generate(),
                &ChannelName::default_name(),
                &phone,
                "",
                "whatsapp",
            )
            .await
            .unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = WhatsappConfig {
            ws_url: Some(format!("ws://{closed}/ws/chat")),
            version: Some((2, 3000, 1)),
            ..WhatsappConfig::new(dir.path(), Duration::from_secs(20))
        };
        let linker = WhatsappLinker::new(config.clone(), store.clone());
        let files = linker.device_files().clone();

        // The channel is live on its old device.
        write_linked_device(&files.path(&channel.id), phone.as_str()).await;
        linker.inner.resume(&channel).await;
        let old = lock(&linker.inner.live).get(&channel.id).unwrap().client.clone();

        // The same phone links again through a new attempt, whose device is `pending`.
        let pending = ChannelId::generate();
        write_linked_device(&files.path(&pending), phone.as_str()).await;
        let (bot, events) = client::build(&config, &files.path(&pending)).await.unwrap();
        lock(&linker.inner.pending).insert(pending.clone(), Device { handle: bot.spawn(), events });
        linker.settle(&pending, Some(&channel)).await;

        let new = lock(&linker.inner.live).get(&channel.id).unwrap().client.clone();
        assert!(!Arc::ptr_eq(&old, &new), "a new client serves the channel");
        drop(old);
        assert_eq!(linker.live_channels(), vec![channel.id.clone()]);
        assert!(files.exists(&channel.id) && !files.exists(&pending));
        assert_eq!(deleted_but_open(files.dir()), 0, "the old device's file was closed first");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            linker.live_channels(),
            vec![channel.id.clone()],
            "the old watcher left the new entry alone"
        );
        linker.shutdown().await;
    }

    #[tokio::test]
    async fn a_logout_from_the_phone_disconnects_the_channel_and_deletes_its_device() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        let account = store.authenticate(&token.secret).await.unwrap().unwrap().account;
        let channel = store
            .upsert_linked_channel(
                account,
                &ChannelId::generate(),
                &ChannelName::default_name(),
                &PhoneNumber::parse("+56912345678").unwrap(),
                "Lucio",
                "whatsapp",
            )
            .await
            .unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = WhatsappConfig {
            ws_url: Some(format!("ws://{closed}/ws/chat")),
            version: Some((2, 3000, 1)),
            ..WhatsappConfig::new(dir.path(), Duration::from_secs(20))
        };
        let linker = WhatsappLinker::new(config.clone(), store.clone());
        let path = linker.inner.files.path(&channel.id);
        let (bot, _client_events) = client::build(&config, &path).await.unwrap();
        // The phone's side is WhatsApp's; its logout reaches the watcher as this event.
        let (phone, events) = whatsapp_rust::async_channel::unbounded();
        linker.inner.go_live(channel.id.clone(), Device { handle: bot.spawn(), events });
        assert_eq!(linker.live_channels(), vec![channel.id.clone()]);

        let logout =
            LoggedOut::builder().on_connect(false).reason(ConnectFailureReason::LoggedOut).build();
        phone.send(Arc::new(Event::LoggedOut(logout))).await.unwrap();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = store.get_channel(account, &channel.id).await.unwrap().unwrap().status;
            if status == ChannelStatus::Disconnected && !path.exists() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status {status:?}, file {}",
                path.exists()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(linker.live_channels().is_empty());
    }
}
