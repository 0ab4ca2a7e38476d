//! The real linker: a WhatsApp linked device (multi-device, as WhatsApp Web) through
//! whatsapp-rust.
//!
//! - `attempt`: one pairing attempt, from its first code to the hand-over of the linked device.
//! - `live`: [`LiveDevices`], the live channels' clients, each watched until logout or stop.
//! - `resume`: at start, deleting leftover device files and resuming connected channels.
//! - `send`: sending a text, and what whatsapp-rust's send errors mean to the API.
//! - `adapter`: whatsapp-rust events to engine events (the mapping table lives there).
//! - `client`: starting and stopping one client on one device file.
//! - `devices`: the device files under `<data-dir>/devices/`.
//! - `config`: [`WhatsappConfig`].
//! - `guard`: whether this build trusts only WhatsApp's own certificates.
//!
//! One pairing attempt runs one client on a fresh device file named after the channel id it
//! will get. Without network, whatsapp-rust emits no event at all and retries forever; the
//! engine fails such a session with `whatsapp_unreachable` when no code arrives within
//! `--whatsapp-connect-timeout-secs` (20 s). When codes run out (about 160 s) the client ends
//! itself; the engine starts a new attempt. After `PairSuccess` WhatsApp closes the stream
//! (515) and the client reconnects by itself before `Connected`.
//!
//! The attempt then hands its device over ([`Attempt::linked`](crate::pairing::Attempt::linked))
//! and keeps it until the engine answers: with the saved channel, the device becomes a *live
//! channel* in [`LiveDevices`] (its client keeps running, is resumed at every start, and sends
//! the channel's texts); without one, it is stopped and its files deleted. A logout from the
//! phone marks the channel `disconnected` and deletes its device file. Any other ending after
//! which whatsapp-rust does not reconnect (replaced by another connection, a temporary ban, an
//! outdated client, a refusal) also marks it `disconnected`, keeping the device file;
//! re-linking reconnects it. An attempt that ends any other way (cancel, expiry, failure,
//! shutdown) stops its client within a second and deletes its files.

mod adapter;
mod attempt;
mod client;
mod config;
mod devices;
mod guard;
mod live;
mod resume;
mod send;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use adapter::{LiveEnding, PairingAdapter, Reaction, phone_of};
pub use config::WhatsappConfig;
pub use devices::{DeviceFiles, DeviceKeys};
pub use guard::accepts_unsigned_certificates;
pub use live::LiveDevices;

use crate::channels::{ChannelBook, LinkerKind};
use crate::pairing::{Attempt, Linker};

/// The whatsapp linker's pairing side; cheap to clone. Its live channels are
/// [`WhatsappLinker::live`].
#[derive(Clone)]
pub struct WhatsappLinker {
    config: Arc<WhatsappConfig>,
    files: DeviceKeys,
    live: LiveDevices,
}

impl WhatsappLinker {
    /// One server: each device's keys in a SQLite file under `config.devices_dir`.
    pub fn new(config: WhatsappConfig, book: ChannelBook) -> Self {
        let files = DeviceKeys::Files(DeviceFiles::new(config.devices_dir.clone()));
        Self::with_keys(config, files, book)
    }

    /// Keys where `files` says (cluster mode: Postgres).
    pub fn with_keys(config: WhatsappConfig, files: DeviceKeys, book: ChannelBook) -> Self {
        let config = Arc::new(config);
        let live = LiveDevices::new(config.clone(), files.clone(), book);
        Self { config, files, live }
    }

    /// The channels this linker keeps live, where its attempts hand linked devices.
    pub fn live(&self) -> &LiveDevices {
        &self.live
    }

    /// Where the devices' files live; `None` in cluster mode.
    pub fn device_files(&self) -> Option<&DeviceFiles> {
        self.live.device_files()
    }
}

impl Linker for WhatsappLinker {
    fn kind(&self) -> LinkerKind {
        LinkerKind::Whatsapp
    }

    fn attempt(&self, attempt: Attempt) -> BoxFuture<'static, ()> {
        let (config, files, live) = (self.config.clone(), self.files.clone(), self.live.clone());
        Box::pin(attempt::run(config, files, live, attempt))
    }

    fn first_qr_timeout(&self) -> Option<Duration> {
        Some(self.config.connect_timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use keebai_protocol::{ChannelStatus, FailureCode, StreamEvent};
    use whatsapp_rust::Jid;
    use whatsapp_rust::types::events::{
        ConnectFailureReason, Event, LoggedOut, PairingQrCode, PairingQrCodesExhausted,
    };

    use super::client::Device;
    use super::*;
    use crate::channels::LiveChannels;
    use crate::channels::testing::{book_with_account, link};
    use crate::domain::{AccountId, ChannelId, ChannelName};
    use crate::pairing::{PairingConfig, PairingEngine};
    use crate::store::Store;

    /// Replays whatsapp-rust's QR schedule through the real adapter: six codes (60 s, then 20 s
    /// each), then `PairingQrCodesExhausted`, as one WhatsApp connection does.
    struct Schedule;

    impl Linker for Schedule {
        fn kind(&self) -> LinkerKind {
            LinkerKind::Whatsapp
        }

        fn attempt(&self, mut attempt: Attempt) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let (number, cancel) = (attempt.number, attempt.cancel.clone());
                let mut adapter = PairingAdapter::default();
                for (index, secs) in [60, 20, 20, 20, 20, 20].into_iter().enumerate() {
                    let ttl = Duration::from_secs(secs);
                    let code = format!("2@attempt{number}-code{index},n,i,a");
                    let event = Event::PairingQrCode(
                        PairingQrCode::builder().code(code).timeout(ttl).build(),
                    );
                    let Reaction::Report(report) = adapter.react(&event) else { panic!() };
                    if attempt.report(report).await.is_err() {
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
                let _ = attempt.report(report).await;
            })
        }

        fn first_qr_timeout(&self) -> Option<Duration> {
            Some(Duration::from_secs(20))
        }
    }

    #[tokio::test]
    async fn when_one_connections_codes_run_out_a_new_attempt_keeps_codes_coming() {
        let dir = tempfile::tempdir().unwrap();
        let book = ChannelBook::new(Store::open(dir.path()).await.unwrap());
        let engine = PairingEngine::new(PairingConfig::default(), Arc::new(Schedule), book);
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let session = engine.create(AccountId(1), ChannelName::default_name()).await.unwrap();
        let mut stream = engine.subscribe(AccountId(1), &session.id, None).await.unwrap();

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

    /// A linker on `dir` whose clients dial a closed port (nothing answers; nothing is needed).
    fn linker_on(dir: &std::path::Path, book: ChannelBook) -> (WhatsappConfig, WhatsappLinker) {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = WhatsappConfig {
            ws_url: Some(format!("ws://{closed}/ws/chat")),
            version: Some((2, 3000, 1)),
            ..WhatsappConfig::new(dir, Duration::from_secs(20))
        };
        (config.clone(), WhatsappLinker::new(config, book))
    }

    #[tokio::test]
    async fn relinking_a_live_channel_closes_the_old_device_before_the_new_one_takes_its_place() {
        let (dir, book, account) = book_with_account().await;
        let channel = link(&book, account, "+56912345678", "", LinkerKind::Whatsapp).await;
        let (config, linker) = linker_on(dir.path(), book);
        let (files, live) = (linker.device_files().unwrap().clone(), linker.live().clone());
        let keys = DeviceKeys::Files(files.clone());

        // The channel is live on its old device.
        write_linked_device(&files.path(&channel.id), channel.phone_number.as_str()).await;
        live.resume(&channel).await;
        let old = live.client_of(&channel.id).unwrap();

        // The same phone links again through a new attempt, which hands its device over.
        let pending = ChannelId::generate();
        write_linked_device(&files.path(&pending), channel.phone_number.as_str()).await;
        let (bot, events) = client::build(&config, &keys, &pending).await.unwrap();
        live.adopt(&pending, &channel, Device::start(bot, events)).await;

        let new = live.client_of(&channel.id).unwrap();
        assert!(!Arc::ptr_eq(&old, &new), "a new client serves the channel");
        drop((old, new));
        assert_eq!(live.live_channels(), vec![channel.id.clone()]);
        assert!(files.exists(&channel.id) && !files.exists(&pending));
        assert_eq!(deleted_but_open(files.dir()), 0, "the old device's file was closed first");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            live.live_channels(),
            vec![channel.id.clone()],
            "the old watcher left the new entry alone"
        );
        live.stop().await;
        assert!(live.live_channels().is_empty());
    }

    #[tokio::test]
    async fn a_logout_from_the_phone_disconnects_the_channel_and_deletes_its_device() {
        let (dir, book, account) = book_with_account().await;
        let channel = link(&book, account, "+56912345678", "Lucio", LinkerKind::Whatsapp).await;
        let (config, linker) = linker_on(dir.path(), book.clone());
        let live = linker.live().clone();
        let keys = DeviceKeys::Files(linker.device_files().unwrap().clone());
        let path = linker.device_files().unwrap().path(&channel.id);
        let (bot, _client_events) = client::build(&config, &keys, &channel.id).await.unwrap();
        // The phone's side is WhatsApp's; its logout reaches the watcher as this event.
        let (phone, events) = whatsapp_rust::async_channel::unbounded();
        live.go_live(channel.id.clone(), Device { handle: bot.spawn(), events });
        assert_eq!(live.live_channels(), vec![channel.id.clone()]);

        let logout =
            LoggedOut::builder().on_connect(false).reason(ConnectFailureReason::LoggedOut).build();
        phone.send(Arc::new(Event::LoggedOut(logout))).await.unwrap();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = book.get(account, &channel.id).await.unwrap().unwrap().status;
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
        assert!(live.live_channels().is_empty());
    }
}
