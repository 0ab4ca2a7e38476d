//! The real linker (whatsapp-rust) against endpoints that never answer a handshake: everything up
//! to the network, for real. Pairing past the network is in `wire.rs`, against the fake WhatsApp.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keebai_protocol::{ChannelStatus, ErrorCode, FailureCode, StreamEvent};
use keebai_server::channels::{ChannelBook, LinkerKind, NewLink};
use keebai_server::config::{LinkerChoice, ServeArgs};
use keebai_server::domain::{ChannelId, ChannelName, PhoneNumber, Scopes};
use keebai_server::store::Store;
use keebai_test_support::{TestApp, assert_error, eventually, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::store::traits::DeviceStore;

/// A local stand-in for WhatsApp's WebSocket endpoint that accepts connections and then either
/// drops them at once or never answers.
struct DeadEndpoint {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl DeadEndpoint {
    async fn start(hang: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws/chat", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                if hang {
                    held.push(socket);
                }
            }
        });
        Self { url, accepted }
    }
}

fn whatsapp_args(args: &mut ServeArgs, endpoint: &DeadEndpoint, timeout_secs: u64) {
    args.linker = LinkerChoice::Whatsapp;
    args.whatsapp_ws_url = Some(endpoint.url.clone());
    args.whatsapp_version = Some((2, 3000, 1_023_456_789));
    args.whatsapp_connect_timeout_secs = timeout_secs;
}

fn devices_dir(app: &TestApp) -> std::path::PathBuf {
    app.whatsapp.as_ref().unwrap().device_files().unwrap().dir().to_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default()
}

/// File descriptors of this process open on files under `dir`.
fn open_files_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

async fn failure(app: &TestApp) -> (keebai_protocol::FailedEvent, Duration) {
    let session = app.connect_ok().await;
    let started = Instant::now();
    let mut stream = app.stream(&session).await;
    match stream.next_event().await {
        StreamEvent::Failed(failed) => (failed, started.elapsed()),
        other => panic!("expected failed, got {other:?}"),
    }
}

// The real endpoint, as in production, is dialled only by a build without the test-only
// certificate feature: the release binary's test is `release_build` in the e2e tests.

#[tokio::test]
async fn a_client_whose_connections_are_dropped_fails_at_the_deadline_and_releases_its_files() {
    let endpoint = DeadEndpoint::start(false).await;
    let app = spawn_app_with(|args| whatsapp_args(args, &endpoint, 1)).await;
    let (failed, _) = failure(&app).await;
    assert_eq!(failed.code, FailureCode::WhatsappUnreachable);
    assert!(endpoint.accepted.load(Ordering::SeqCst) > 0, "the client really dialed the endpoint");
    let dir = devices_dir(&app);
    eventually("no device file and no open handle", Duration::from_secs(1), || {
        files_in(&dir).is_empty() && open_files_under(&dir) == 0
    })
    .await;
}

#[tokio::test]
async fn cancel_stops_a_connecting_client_within_a_second_and_deletes_its_device_file() {
    // An endpoint that never answers: the client's own connect timeout would be 20 s.
    let endpoint = DeadEndpoint::start(true).await;
    let app = spawn_app_with(|args| whatsapp_args(args, &endpoint, 60)).await;
    let dir = devices_dir(&app);
    let session = app.connect_ok().await;
    let mut stream = app.stream(&session).await;
    eventually("the client dials", Duration::from_secs(10), || {
        endpoint.accepted.load(Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(
        files_in(&dir).iter().filter(|f| f.ends_with(".db")).count(),
        1,
        "one pending device"
    );

    let cancelled = Instant::now();
    assert_eq!(app.cancel(&app.token, &session.session_id).await.status(), StatusCode::NO_CONTENT);
    let StreamEvent::Failed(failed) = stream.next_event().await else { panic!() };
    assert_eq!(failed.code, FailureCode::Cancelled);
    eventually("client stopped, files and handles released", Duration::from_secs(1), || {
        files_in(&dir).is_empty() && open_files_under(&dir) == 0
    })
    .await;
    assert!(cancelled.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn shutdown_stops_connecting_clients_and_deletes_their_device_files() {
    let endpoint = DeadEndpoint::start(true).await;
    let app = spawn_app_with(|args| whatsapp_args(args, &endpoint, 60)).await;
    let dir = devices_dir(&app);
    let session = app.connect_ok().await;
    let _stream = app.stream(&session).await;
    eventually("the client dials", Duration::from_secs(10), || {
        endpoint.accepted.load(Ordering::SeqCst) > 0
    })
    .await;

    let stopping = Instant::now();
    let _dir = app.stop().await;
    // At once: the stop itself waited for the attempt's cleanup.
    assert_eq!(files_in(&dir), Vec::<String>::new(), "device files deleted by the stop");
    assert_eq!(open_files_under(&dir), 0, "device files closed by the stop");
    assert!(stopping.elapsed() < Duration::from_secs(3), "{:?}", stopping.elapsed());
}

/// Writes a device file that is linked to `phone`, as whatsapp-rust leaves it after pairing.
async fn write_linked_device(path: &Path, phone: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let store = SqliteStore::new(path.to_str().unwrap()).await.unwrap();
    let mut device = whatsapp_rust::wacore::store::Device::new();
    device.pn = Some(whatsapp_rust::Jid::pn(phone.trim_start_matches('+')));
    device.account = Some(Arc::new(Default::default()));
    device.push_name = "Lucio".into();
    store.save(&device).await.unwrap();
    assert!(store.load().await.unwrap().unwrap().pn.is_some());
}

#[tokio::test]
async fn at_start_linked_channels_come_back_missing_devices_disconnect_and_leftovers_go() {
    let dir = tempfile::tempdir().unwrap();
    let devices = dir.path().join("devices");
    let (linked, lost, leftover) = {
        let store = Store::open(dir.path()).await.unwrap();
        let token = store.create_token("acme", Scopes::all()).await.unwrap();
        let account = store.authenticate(&token.secret).await.unwrap().unwrap().account;
        let book = ChannelBook::new(store.clone());
        let mut ids = Vec::new();
        for phone in ["+56911111111", "+56922222222"] {
            let channel = book
                .link(NewLink {
                    account,
                    proposed: &ChannelId::generate(),
                    name: &ChannelName::default_name(),
                    phone: &PhoneNumber::parse(phone).unwrap(),
                    push_name: "Lucio",
                    linker: LinkerKind::Whatsapp,
                })
                .await
                .unwrap();
            ids.push(channel.id);
        }
        store.close().await;
        write_linked_device(&devices.join(format!("{}.db", ids[0])), "+56911111111").await;
        let leftover = ChannelId::generate();
        write_linked_device(&devices.join(format!("{leftover}.db")), "+56933333333").await;
        (ids[0].clone(), ids[1].clone(), leftover)
    };

    let endpoint = DeadEndpoint::start(false).await;
    let app =
        keebai_test_support::spawn_app_in(dir, |args| whatsapp_args(args, &endpoint, 20)).await;
    let whatsapp = app.whatsapp.clone().unwrap();
    eventually("the linked channel is live again", Duration::from_secs(10), || {
        whatsapp.live_channels() == vec![linked.clone()]
    })
    .await;
    eventually("the leftover device file is gone", Duration::from_secs(5), || {
        !whatsapp.device_files().unwrap().exists(&leftover)
    })
    .await;
    // Channels resume concurrently: wait until every one has been handled.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let numbers = app.numbers_ok().await;
        let status =
            |id: &ChannelId| numbers.iter().find(|n| n.channel_id == id.as_str()).unwrap().status;
        if status(&lost) == ChannelStatus::Disconnected {
            assert_eq!(status(&linked), ChannelStatus::Connected);
            break;
        }
        assert!(Instant::now() < deadline, "the channel without a device is marked disconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Linked but offline: 503, retry later. Unlinked: 409.
    let text =
        |id: &ChannelId| json!({"channel_id": id.as_str(), "to": "+14155550100", "text": "hola"});
    assert_error(
        app.send_text(&app.token, text(&linked)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServiceUnavailable,
    )
    .await;
    assert_error(
        app.send_text(&app.token, text(&lost)).await,
        StatusCode::CONFLICT,
        ErrorCode::ChannelDisconnected,
    )
    .await;
}

#[tokio::test]
async fn the_whatsapp_linker_has_no_sim_routes() {
    let endpoint = DeadEndpoint::start(false).await;
    let app = spawn_app_with(|args| whatsapp_args(args, &endpoint, 20)).await;
    let body = json!({"qr": "2@x,y,z,w,9", "phone_number": "+56912345678"});
    assert_error(
        app.post_json("/sim/scan", None, &body).await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
}
