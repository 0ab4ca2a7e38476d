//! The Postgres store must be indistinguishable from whatsapp-rust's own SQLite store: each
//! scenario below is one sequence of `Backend` calls, run once against a `SqliteStore` in a
//! temporary directory and once against a `PostgresStore` on a fresh database, and every value
//! the two return must be equal, step by step. Further tests cover what only the Postgres store
//! has: many devices in one database, reconnecting, its migrations next to the server's, and
//! importing a SQLite device file (`PostgresStore::import_sqlite`), which reuses the scenarios
//! to fill the file and then requires every item to read back equal from both stores.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use keebai_wa_postgres::PostgresStore;
use secrecy::ExposeSecret;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, PgPool};
use wacore::appstate::hash::HashState;
use wacore::appstate::processor::AppStateMutationMAC;
use wacore::store::Device;
use wacore::store::device::{CachedNoiseCert, CachedServerCertChain, account_serde};
use wacore::store::error::StoreError;
use wacore::store::traits::*;
use whatsapp_rust_sqlite_storage::SqliteStore;

// ---------------------------------------------------------------------------------------------
// Harness

/// What one run of a scenario returned: a label per call and the value it returned, rendered.
#[derive(Default)]
struct Log(Vec<(String, String)>);

impl Log {
    /// Records a call's result. Errors are compared by kind only: the messages come from two
    /// different databases.
    fn push<T: Debug>(&mut self, label: &str, result: Result<T, StoreError>) {
        let shown = match result {
            Ok(value) => format!("Ok({value:?})"),
            Err(e) => format!("Err({})", error_kind(&e)),
        };
        self.0.push((label.to_owned(), shown));
    }
}

fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Io(_) => "Io",
        StoreError::Serialization(_) => "Serialization",
        StoreError::Validation(_) => "Validation",
        StoreError::Connection(_) => "Connection",
        StoreError::Database(_) => "Database",
        StoreError::RetriesExhausted { .. } => "RetriesExhausted",
        StoreError::Migration(_) => "Migration",
        StoreError::InvalidConfig(_) => "InvalidConfig",
        StoreError::DeviceNotFound(_) => "DeviceNotFound",
        _ => "other",
    }
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// A HashState with its map in key order, so two equal states render equally.
fn hash_state(state: HashState) -> (u64, Vec<u8>, BTreeMap<String, Vec<u8>>, bool) {
    (
        state.version,
        state.hash.to_vec(),
        state.index_value_map.into_iter().collect(),
        state.mac_mismatch_fatal,
    )
}

/// A device as the library serializes it (what both stores must preserve).
fn device_json(device: &Device) -> serde_json::Value {
    serde_json::to_value(device).expect("a device serializes")
}

async fn pg_pool() -> PgPool {
    let url = keebai_test_support::fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(url.expose_secret())
        .await
        .expect("the fresh test database accepts connections");
    PostgresStore::migrate(&pool).await.expect("migrations run on a fresh database");
    pool
}

/// The two stores a scenario runs against, both empty.
struct Stores {
    sqlite: SqliteStore,
    postgres: PostgresStore,
    _dir: tempfile::TempDir,
}

impl Stores {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("whatsapp.db");
        let sqlite = SqliteStore::new(path.to_str().expect("a UTF-8 temp path"))
            .await
            .expect("the SQLite store opens");
        let postgres = PostgresStore::new(pg_pool().await, "ch_conformance").expect("a valid key");
        Self { sqlite, postgres, _dir: dir }
    }
}

fn compare(scenario: &str, sqlite: &Log, postgres: &Log) {
    assert!(!sqlite.0.is_empty(), "{scenario}: the scenario recorded nothing");
    for (step, (s, p)) in sqlite.0.iter().zip(&postgres.0).enumerate() {
        assert_eq!(s.0, p.0, "{scenario}: the runs diverged at step {step}");
        assert_eq!(s.1, p.1, "{scenario}, step {step} ({}): SQLite left, Postgres right", s.0);
    }
    assert_eq!(sqlite.0.len(), postgres.0.len(), "{scenario}: different step counts");
}

/// One test per scenario: the scenario on SQLite, the same on Postgres, equal logs.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let stores = Stores::new().await;
            let sqlite = scenarios::$name(&stores.sqlite).await;
            let postgres = scenarios::$name(&stores.postgres).await;
            compare(stringify!($name), &sqlite, &postgres);
        }
    )*};
}

conformance!(
    identities,
    sessions,
    prekeys,
    signed_prekeys,
    sender_keys,
    app_state_keys,
    app_state_versions_and_macs,
    sender_key_devices,
    lid_mappings,
    base_keys,
    device_lists,
    group_metadata,
    tc_tokens,
    sent_messages,
    pending_inbound,
    msg_secrets,
    device_rows,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

fn key(n: u8) -> [u8; 32] {
    [n; 32]
}

fn lid(
    lid: &str,
    phone: &str,
    created_at: i64,
    updated_at: i64,
    source: &str,
) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: lid.into(),
        phone_number: phone.into(),
        created_at,
        updated_at,
        learning_source: source.into(),
    }
}

fn device_list(
    user: &str,
    ids: &[u32],
    timestamp: i64,
    phash: Option<&str>,
    raw_id: Option<u32>,
) -> DeviceListRecord {
    DeviceListRecord {
        user: user.into(),
        devices: ids
            .iter()
            .map(|&id| DeviceInfo::new(id, (id > 0).then_some(id + 10)).with_hosting(id == 99))
            .collect(),
        timestamp,
        phash: phash.map(Into::into),
        raw_id,
    }
}

fn secret(msg_id: &str, byte: u8, expires_at: i64, message_ts: i64) -> MsgSecretEntry {
    MsgSecretEntry {
        chat: Arc::from("120363021033254949@g.us"),
        sender: Arc::from("5511987650001@s.whatsapp.net"),
        msg_id: Arc::from(msg_id),
        secret: [byte; 32],
        expires_at,
        message_ts,
    }
}

/// A device with every persisted field set to something other than its default.
fn full_device() -> Device {
    let mut device = Device::new();
    device.pn = Some("5511987650001:7@s.whatsapp.net".parse().expect("a PN JID"));
    device.lid = Some("100000012345678:7@lid".parse().expect("a LID JID"));
    device.registration_id = 4_000_000_123;
    device.signed_pre_key_id = 77;
    device.push_name = "Keebai Test".into();
    // details = [1, 2, 3], account_signature_key = [9; 32], account_signature = [8; 4]
    let mut account = vec![0x0a, 3, 1, 2, 3, 0x12, 32];
    account.extend([9; 32]);
    account.extend([0x1a, 4, 8, 8, 8, 8]);
    device.account = Some(Arc::new(
        account_serde::from_bytes(&account).expect("a valid ADVSignedDeviceIdentity"),
    ));
    device.app_version_primary = 2;
    device.app_version_secondary = 3000;
    device.app_version_tertiary = 1_023_456_789;
    device.app_version_last_fetched_ms = 1_760_000_000_123;
    device.edge_routing_info = Some(vec![5, 6, 7]);
    device.props_hash = Some("props-hash".into());
    device.next_pre_key_id = 813;
    device.first_unupload_pre_key_id = 800;
    device.server_has_prekeys = true;
    device.nct_salt = Some(vec![1; 16]);
    device.server_cert_chain = Some(CachedServerCertChain {
        intermediate: CachedNoiseCert {
            key: [0xab; 32],
            not_before: 1_700_000_000,
            not_after: 1_900_000_000,
        },
        leaf: CachedNoiseCert {
            key: [0xcd; 32],
            not_before: 1_700_000_500,
            not_after: 1_899_999_500,
        },
    });
    device.login_counter = 42;
    device.lid_migrated = true;
    device.last_signed_pre_key_rotation_ms = 1_760_000_000_456;
    device.read_receipts_disabled = true;
    device
}

// ---------------------------------------------------------------------------------------------
// Scenarios: each is written once and returns what every call returned.

mod scenarios {
    use super::*;

    pub async fn identities(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("load missing", b.load_identity("5511987650001@s.whatsapp.net").await);
        log.push("put", b.put_identity("5511987650001@s.whatsapp.net", key(1)).await);
        log.push("load", b.load_identity("5511987650001@s.whatsapp.net").await);
        log.push("overwrite", b.put_identity("5511987650001@s.whatsapp.net", key(2)).await);
        log.push("load overwritten", b.load_identity("5511987650001@s.whatsapp.net").await);
        log.push("empty batch", b.put_identities_batch(&[]).await);
        let batch: Vec<(Arc<str>, [u8; 32])> = vec![
            (Arc::from("5511987650002:3@s.whatsapp.net"), key(3)),
            (Arc::from("100000012345678@lid"), key(4)),
            (Arc::from("5511987650002:3@s.whatsapp.net"), key(5)),
            (Arc::from("5511987650001@s.whatsapp.net"), key(6)),
        ];
        log.push("batch with a repeated address", b.put_identities_batch(&batch).await);
        for address in [
            "5511987650001@s.whatsapp.net",
            "5511987650002:3@s.whatsapp.net",
            "100000012345678@lid",
        ] {
            log.push(&format!("load {address}"), b.load_identity(address).await);
        }
        for user in ["5511987650002", "100000012345678", "551198765000", "5511987650003"] {
            log.push(&format!("state for {user}"), b.has_signal_state_for_user(user).await);
        }
        log.push("delete", b.delete_identity("5511987650001@s.whatsapp.net").await);
        log.push("delete missing", b.delete_identity("nobody@s.whatsapp.net").await);
        log.push("load deleted", b.load_identity("5511987650001@s.whatsapp.net").await);
        log.push("state after delete", b.has_signal_state_for_user("5511987650001").await);
        log
    }

    pub async fn sessions(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let a = "5511987650001.0:0";
        log.push("get missing", b.get_session(a).await);
        log.push("has missing", b.has_session(a).await);
        log.push("put", b.put_session(a, b"session one").await);
        log.push("get", b.get_session(a).await);
        log.push("has", b.has_session(a).await);
        log.push("put empty record", b.put_session("empty@s.whatsapp.net", b"").await);
        log.push("get empty record", b.get_session("empty@s.whatsapp.net").await);
        let batch: Vec<(Arc<str>, Bytes)> = vec![
            (Arc::from("5511987650002:4@s.whatsapp.net"), Bytes::from_static(b"two")),
            (Arc::from(a), Bytes::from_static(b"session one again")),
            (Arc::from("5511987650002:4@s.whatsapp.net"), Bytes::from_static(b"two again")),
        ];
        log.push("batch", b.put_sessions_batch(&batch).await);
        log.push("empty batch", b.put_sessions_batch(&[]).await);
        log.push("get a", b.get_session(a).await);
        log.push("get batched", b.get_session("5511987650002:4@s.whatsapp.net").await);
        for user in ["5511987650002", "55119876500", "5511987650001.0"] {
            log.push(&format!("state for {user}"), b.has_signal_state_for_user(user).await);
        }
        log.push("delete", b.delete_session("5511987650002:4@s.whatsapp.net").await);
        log.push("get deleted", b.get_session("5511987650002:4@s.whatsapp.net").await);
        log.push("has deleted", b.has_session("5511987650002:4@s.whatsapp.net").await);
        log.push("state after delete", b.has_signal_state_for_user("5511987650002").await);
        log
    }

    pub async fn prekeys(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("max of none", b.get_max_prekey_id().await);
        log.push("load missing", b.load_prekey(1).await);
        for id in [3u32, 1, 2] {
            log.push(&format!("store {id}"), b.store_prekey(id, &[id as u8; 5], false).await);
        }
        log.push("max", b.get_max_prekey_id().await);
        log.push("overwrite 2", b.store_prekey(2, b"two", true).await);
        log.push("load 2", b.load_prekey(2).await);
        let batch: Vec<(u32, Bytes)> = vec![
            (10, Bytes::from_static(b"ten")),
            (0xFF_FFFF, Bytes::from_static(b"max24")),
            (10, Bytes::from_static(b"ten again")),
            (1, Bytes::from_static(b"one again")),
        ];
        log.push("batch", b.store_prekeys_batch(&batch, true).await);
        log.push("empty batch", b.store_prekeys_batch(&[], false).await);
        log.push("max after batch", b.get_max_prekey_id().await);
        log.push(
            "load batch",
            b.load_prekeys_batch(&[10, 4, 1, 0xFF_FFFF, 1, 3]).await.map(sorted),
        );
        log.push("load empty batch", b.load_prekeys_batch(&[]).await);
        log.push("remove 0xffffff", b.remove_prekey(0xFF_FFFF).await);
        log.push("remove missing", b.remove_prekey(12345).await);
        log.push("max after remove", b.get_max_prekey_id().await);
        // Marking must not bring back a key consumed in the meantime.
        log.push("remove 3", b.remove_prekey(3).await);
        log.push("mark uploaded", b.mark_prekeys_uploaded(&[1, 2, 3, 10]).await);
        log.push("mark none", b.mark_prekeys_uploaded(&[]).await);
        log.push("load 3 after mark", b.load_prekey(3).await);
        log.push("load 1 after mark", b.load_prekey(1).await);
        log.push("load batch after mark", b.load_prekeys_batch(&[1, 2, 3, 10]).await.map(sorted));
        log
    }

    pub async fn signed_prekeys(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("all of none", b.load_all_signed_prekeys().await);
        log.push("load missing", b.load_signed_prekey(1).await);
        log.push("store 2", b.store_signed_prekey(2, b"two").await);
        log.push("store 1", b.store_signed_prekey(1, b"one").await);
        log.push("overwrite 2", b.store_signed_prekey(2, b"two again").await);
        log.push("load 2", b.load_signed_prekey(2).await);
        log.push("all", b.load_all_signed_prekeys().await.map(sorted));
        log.push("remove 1", b.remove_signed_prekey(1).await);
        log.push("remove missing", b.remove_signed_prekey(9).await);
        log.push("all after remove", b.load_all_signed_prekeys().await.map(sorted));
        log
    }

    pub async fn sender_keys(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let a = "120363021033254949@g.us::5511987650001::0";
        log.push("get missing", b.get_sender_key(a).await);
        log.push("put", b.put_sender_key(a, b"key one").await);
        log.push("get", b.get_sender_key(a).await);
        let batch: Vec<(Arc<str>, Bytes)> = vec![
            (Arc::from("g2::u::1"), Bytes::from_static(b"x")),
            (Arc::from(a), Bytes::from_static(b"key two")),
            (Arc::from("g2::u::1"), Bytes::from_static(b"y")),
        ];
        log.push("batch", b.put_sender_keys_batch(&batch).await);
        log.push("empty batch", b.put_sender_keys_batch(&[]).await);
        log.push("get a", b.get_sender_key(a).await);
        log.push("get batched", b.get_sender_key("g2::u::1").await);
        log.push("delete", b.delete_sender_key(a).await);
        log.push("get deleted", b.get_sender_key(a).await);
        log
    }

    pub async fn app_state_keys(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let sync_key = |n: u8, len: usize| AppStateSyncKey {
            key_data: vec![n; len],
            fingerprint: vec![n, n + 1],
            timestamp: 1_700_000_000 + i64::from(n),
        };
        log.push("latest of none", b.get_latest_sync_key_id().await);
        log.push("get missing", b.get_sync_key(&[0, 0, 1]).await);
        log.push("set 00 00 01", b.set_sync_key(&[0, 0, 1], sync_key(1, 32)).await);
        log.push("set 00 00 02", b.set_sync_key(&[0, 0, 2], sync_key(2, 32)).await);
        log.push("set 00 00", b.set_sync_key(&[0, 0], sync_key(3, 32)).await);
        log.push("get 00 00 02", b.get_sync_key(&[0, 0, 2]).await);
        log.push("latest", b.get_latest_sync_key_id().await);
        // A key of the wrong length reads as absent and is never the latest.
        log.push("set short key", b.set_sync_key(&[0, 0, 9], sync_key(9, 16)).await);
        log.push("get short key", b.get_sync_key(&[0, 0, 9]).await);
        log.push("latest skips short key", b.get_latest_sync_key_id().await);
        log.push("set ff (shorter id, greater)", b.set_sync_key(&[0xff], sync_key(4, 32)).await);
        log.push("latest ff", b.get_latest_sync_key_id().await);
        log.push("overwrite 00 00 01", b.set_sync_key(&[0, 0, 1], sync_key(5, 32)).await);
        log.push("get overwritten", b.get_sync_key(&[0, 0, 1]).await);
        log.push(
            "empty fingerprint",
            b.set_sync_key(&[1], AppStateSyncKey { key_data: vec![7; 32], ..Default::default() })
                .await,
        );
        log.push("get empty fingerprint", b.get_sync_key(&[1]).await);
        log
    }

    pub async fn app_state_versions_and_macs(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("version of none", b.get_version("regular").await.map(hash_state));
        let mut state = HashState { version: 17, ..HashState::default() };
        state.hash[0] = 0xff;
        state.hash[127] = 0x11;
        state.index_value_map.insert("idx-a".into(), vec![1, 2, 3]);
        state.index_value_map.insert("idx-b".into(), vec![]);
        state.mac_mismatch_fatal = true;
        log.push("set", b.set_version("regular", state.clone()).await);
        log.push("get", b.get_version("regular").await.map(hash_state));
        state.version = u64::MAX;
        state.index_value_map.remove("idx-a");
        state.mac_mismatch_fatal = false;
        log.push("overwrite", b.set_version("regular", state).await);
        log.push("get overwritten", b.get_version("regular").await.map(hash_state));
        log.push(
            "other collection untouched",
            b.get_version("critical_block").await.map(hash_state),
        );

        let mac = |index: u8, value: u8| AppStateMutationMAC {
            index_mac: vec![index; 32],
            value_mac: vec![value; 32],
        };
        log.push(
            "put macs",
            b.put_mutation_macs("regular", 3, &[mac(1, 10), mac(2, 20), mac(1, 11)]).await,
        );
        log.push("put no macs", b.put_mutation_macs("regular", 4, &[]).await);
        log.push(
            "put other collection",
            b.put_mutation_macs("critical_block", 1, &[mac(1, 99)]).await,
        );
        log.push("get 1", b.get_mutation_mac("regular", &[1; 32]).await);
        log.push("get missing", b.get_mutation_mac("regular", &[3; 32]).await);
        log.push(
            "put newer version",
            b.put_mutation_macs("regular", 5, &[mac(2, 21), mac(3, 30)]).await,
        );
        let batch = b
            .get_mutation_macs("regular", &[[1; 32], [2; 32], [3; 32], [4; 32]])
            .await
            .map(|found| found.into_iter().collect::<BTreeMap<_, _>>());
        log.push("get batch", batch);
        log.push("get empty batch", b.get_mutation_macs("regular", &[]).await);
        log.push(
            "delete 1 and unknown",
            b.delete_mutation_macs("regular", &[vec![1; 32], vec![7; 5]]).await,
        );
        log.push("delete none", b.delete_mutation_macs("regular", &[]).await);
        log.push("get deleted", b.get_mutation_mac("regular", &[1; 32]).await);
        log.push("other collection keeps 1", b.get_mutation_mac("critical_block", &[1; 32]).await);
        log.push("clear", b.clear_mutation_macs("regular").await);
        log.push("get cleared", b.get_mutation_mac("regular", &[2; 32]).await);
        log.push(
            "other collection survives clear",
            b.get_mutation_mac("critical_block", &[1; 32]).await,
        );
        log
    }

    pub async fn sender_key_devices(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let g1 = "120363021033254949@g.us";
        let g2 = "120363021033254950@g.us";
        log.push("none", b.get_sender_key_devices(g1).await);
        log.push(
            "set",
            b.set_sender_key_status(
                g1,
                &[
                    ("5511987650001:1@s.whatsapp.net", true),
                    ("100000012345678:2@lid", false),
                    ("5511987650001:1@s.whatsapp.net", false),
                ],
            )
            .await,
        );
        log.push("set none", b.set_sender_key_status(g1, &[]).await);
        log.push("get", b.get_sender_key_devices(g1).await.map(sorted));
        log.push("flip", b.set_sender_key_status(g1, &[("100000012345678:2@lid", true)]).await);
        log.push(
            "set g2",
            b.set_sender_key_status(
                g2,
                &[("100000012345678:2@lid", true), ("5511987650009:0@s.whatsapp.net", true)],
            )
            .await,
        );
        log.push("get g1", b.get_sender_key_devices(g1).await.map(sorted));
        log.push("get g2", b.get_sender_key_devices(g2).await.map(sorted));
        log.push(
            "delete rows",
            b.delete_sender_key_device_rows(&["100000012345678:2@lid", "unknown@lid"]).await,
        );
        log.push("delete no rows", b.delete_sender_key_device_rows(&[]).await);
        log.push("g1 after delete", b.get_sender_key_devices(g1).await.map(sorted));
        log.push("g2 after delete", b.get_sender_key_devices(g2).await.map(sorted));
        log.push("clear g1", b.clear_sender_key_devices(g1).await);
        log.push("g1 cleared", b.get_sender_key_devices(g1).await);
        log.push("g2 kept", b.get_sender_key_devices(g2).await.map(sorted));
        log.push("clear all", b.clear_all_sender_key_devices().await);
        log.push("g2 cleared", b.get_sender_key_devices(g2).await);
        log
    }

    pub async fn lid_mappings(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        // SQLite ties LID mappings to its device row, so the device comes first.
        log.push("create device", b.create().await);
        log.push("all of none", b.get_all_lid_mappings().await);
        log.push("get missing", b.get_lid_mapping("100000012345678").await);
        log.push(
            "put",
            b.put_lid_mapping(&lid("100000012345678", "5511987650001", 100, 100, "usync")).await,
        );
        log.push("get lid", b.get_lid_mapping("100000012345678").await);
        log.push("get pn", b.get_pn_mapping("5511987650001").await);
        log.push(
            "newer lid, same phone",
            b.put_lid_mapping(&lid(
                "100000012345679",
                "5511987650001",
                200,
                300,
                "peer_pn_message",
            ))
            .await,
        );
        log.push("pn gives the newest", b.get_pn_mapping("5511987650001").await);
        log.push(
            "update keeps created_at",
            b.put_lid_mapping(&lid("100000012345678", "5511987650002", 999, 400, "history_sync"))
                .await,
        );
        log.push("get updated", b.get_lid_mapping("100000012345678").await);
        log.push("old pn now", b.get_pn_mapping("5511987650001").await);
        log.push(
            "batch with a repeated lid",
            b.put_lid_mappings(&[
                lid("100000000000001", "5511900000001", 10, 10, "a"),
                lid("100000012345679", "5511900000002", 11, 500, "b"),
                lid("100000000000001", "5511900000003", 12, 12, "c"),
            ])
            .await,
        );
        log.push("empty batch", b.put_lid_mappings(&[]).await);
        log.push("get repeated", b.get_lid_mapping("100000000000001").await);
        log.push("get updated in batch", b.get_lid_mapping("100000012345679").await);
        log.push("pn missing", b.get_pn_mapping("5511999999999").await);
        let all = b.get_all_lid_mappings().await.map(|entries| {
            sorted(entries.into_iter().map(|e| format!("{e:?}")).collect::<Vec<_>>())
        });
        log.push("all", all);
        log
    }

    pub async fn base_keys(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let a = "5511987650001.0:1";
        log.push("same on missing", b.has_same_base_key(a, "M1", b"base").await);
        log.push("save", b.save_base_key(a, "M1", b"base").await);
        log.push("same", b.has_same_base_key(a, "M1", b"base").await);
        log.push("different", b.has_same_base_key(a, "M1", b"other").await);
        log.push("other message", b.has_same_base_key(a, "M2", b"base").await);
        log.push("overwrite", b.save_base_key(a, "M1", b"other").await);
        log.push("same after overwrite", b.has_same_base_key(a, "M1", b"other").await);
        log.push("delete", b.delete_base_key(a, "M1").await);
        log.push("same after delete", b.has_same_base_key(a, "M1", b"other").await);
        log
    }

    pub async fn device_lists(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("get missing", b.get_devices("5511987650001").await);
        log.push(
            "update",
            b.update_device_list(device_list(
                "5511987650001",
                &[0, 1, 99],
                1_760_000_000,
                Some("2:abc"),
                Some(7),
            ))
            .await,
        );
        log.push("get", b.get_devices("5511987650001").await);
        log.push(
            "overwrite",
            b.update_device_list(device_list("5511987650001", &[0], 1_760_000_100, None, None))
                .await,
        );
        log.push("get overwritten", b.get_devices("5511987650001").await);
        log.push(
            "batch with a repeated user",
            b.update_device_lists(vec![
                device_list("100000012345678", &[0, 3], 1_760_000_200, Some("h1"), Some(u32::MAX)),
                device_list("5511987650002", &[], 1_760_000_300, None, Some(0)),
                device_list("100000012345678", &[0, 4], 1_760_000_400, Some("h2"), Some(5)),
            ])
            .await,
        );
        log.push("empty batch", b.update_device_lists(vec![]).await);
        log.push("get repeated", b.get_devices("100000012345678").await);
        log.push("get empty list", b.get_devices("5511987650002").await);
        log.push("delete", b.delete_devices("5511987650001").await);
        log.push("get deleted", b.get_devices("5511987650001").await);
        log
    }

    pub async fn group_metadata(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let g = "120363021033254949@g.us";
        log.push("get missing", b.get_group_metadata(g).await);
        log.push("put", b.put_group_metadata(g, b"blob one").await);
        log.push("get", b.get_group_metadata(g).await);
        log.push("overwrite", b.put_group_metadata(g, b"blob two").await);
        log.push("get overwritten", b.get_group_metadata(g).await);
        log.push("delete", b.delete_group_metadata(g).await);
        log.push("get deleted", b.get_group_metadata(g).await);
        log
    }

    pub async fn tc_tokens(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let entry = |token: &[u8], token_timestamp: i64, sender_timestamp: Option<i64>| {
            TcTokenEntry { token: token.to_vec(), token_timestamp, sender_timestamp }
        };
        log.push("get missing", b.get_tc_token("a@lid").await);
        log.push("all of none", b.get_all_tc_token_jids().await);
        log.push("put", b.put_tc_token("a@lid", &entry(b"tok-a", 1000, Some(900))).await);
        log.push("get", b.get_tc_token("a@lid").await);
        log.push(
            "put overwrites all",
            b.put_tc_token("a@lid", &entry(b"tok-a2", 1100, None)).await,
        );
        log.push("get overwritten", b.get_tc_token("a@lid").await);
        // Received tokens: newer wins, a placeholder never blocks, the sender bucket stays.
        log.push("touch a", b.touch_tc_token_sender_timestamp("a@lid", 1200).await);
        log.push(
            "older received is ignored",
            b.store_received_tc_token("a@lid", b"stale", 1000).await,
        );
        log.push("get after stale", b.get_tc_token("a@lid").await);
        log.push("same-age received wins", b.store_received_tc_token("a@lid", b"same", 1100).await);
        log.push("get after same", b.get_tc_token("a@lid").await);
        log.push("newer received wins", b.store_received_tc_token("a@lid", b"newer", 1300).await);
        log.push("get after newer", b.get_tc_token("a@lid").await);
        // Sender bucket: a placeholder row when absent, advance only.
        log.push("touch new", b.touch_tc_token_sender_timestamp("b@lid", 500).await);
        log.push("get placeholder", b.get_tc_token("b@lid").await);
        log.push("touch backwards", b.touch_tc_token_sender_timestamp("b@lid", 400).await);
        log.push("get not regressed", b.get_tc_token("b@lid").await);
        log.push(
            "older received replaces placeholder",
            b.store_received_tc_token("b@lid", b"real", 100).await,
        );
        log.push("get real", b.get_tc_token("b@lid").await);
        log.push("touch forward", b.touch_tc_token_sender_timestamp("b@lid", 600).await);
        log.push("get forward", b.get_tc_token("b@lid").await);
        log.push("received on new jid", b.store_received_tc_token("c@lid", b"c", 50).await);
        log.push("get c", b.get_tc_token("c@lid").await);
        log.push("touch with null bucket", b.put_tc_token("d@lid", &entry(b"", 10, None)).await);
        log.push("touch d", b.touch_tc_token_sender_timestamp("d@lid", 20).await);
        log.push("get d", b.get_tc_token("d@lid").await);
        log.push("put e", b.put_tc_token("e@lid", &entry(b"", 5000, None)).await);
        log.push("all", b.get_all_tc_token_jids().await.map(sorted));
        // a: token 1300 / sender 1200; b: 100 / 600; c: 50 / null; d: placeholder 10 / 20;
        // e: placeholder 5000 / null.
        log.push("expire none", b.delete_expired_tc_tokens(50, 20).await);
        log.push("expire c and e", b.delete_expired_tc_tokens(51, 20).await);
        log.push("all after first expiry", b.get_all_tc_token_jids().await.map(sorted));
        log.push("expire d", b.delete_expired_tc_tokens(101, 21).await);
        log.push("expire b needs both", b.delete_expired_tc_tokens(1301, 600).await);
        log.push("expire all", b.delete_expired_tc_tokens(1301, 1201).await);
        log.push("all after expiry", b.get_all_tc_token_jids().await);
        log.push("put again", b.put_tc_token("f@lid", &entry(b"f", 1, Some(1))).await);
        log.push("delete", b.delete_tc_token("f@lid").await);
        log.push("delete missing", b.delete_tc_token("f@lid").await);
        log.push("get deleted", b.get_tc_token("f@lid").await);
        log
    }

    pub async fn sent_messages(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let now = wacore::time::now_secs();
        log.push("take missing", b.take_sent_message("c@s.whatsapp.net", "M1").await);
        log.push("store", b.store_sent_message("c@s.whatsapp.net", "M1", b"payload one").await);
        log.push(
            "store other chat",
            b.store_sent_message("d@s.whatsapp.net", "M1", b"other chat").await,
        );
        log.push("replace", b.store_sent_message("c@s.whatsapp.net", "M1", b"payload two").await);
        log.push("take", b.take_sent_message("c@s.whatsapp.net", "M1").await);
        log.push("take again", b.take_sent_message("c@s.whatsapp.net", "M1").await);
        log.push("store M2", b.store_sent_message("c@s.whatsapp.net", "M2", b"").await);
        log.push("expire older than an hour ago", b.delete_expired_sent_messages(now - 3600).await);
        log.push("expire older than in an hour", b.delete_expired_sent_messages(now + 3600).await);
        log.push("take expired", b.take_sent_message("d@s.whatsapp.net", "M1").await);
        log
    }

    pub async fn pending_inbound(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let now = wacore::time::now_secs();
        log.push("get missing", b.get_pending_inbound("c", "s", "1").await);
        log.push("store", b.store_pending_inbound("c", "s", "1", b"one").await);
        log.push("get", b.get_pending_inbound("c", "s", "1").await);
        log.push("other sender", b.get_pending_inbound("c", "t", "1").await);
        log.push("replace", b.store_pending_inbound("c", "s", "1", b"one again").await);
        log.push("get replaced", b.get_pending_inbound("c", "s", "1").await);
        let rows = [
            PendingInboundRow { chat: "c", sender: "s", id: "2", message: b"two" },
            PendingInboundRow { chat: "c", sender: "t", id: "1", message: b"t-one" },
            PendingInboundRow { chat: "c", sender: "s", id: "2", message: b"two again" },
        ];
        log.push("batch", b.store_pending_inbound_batch(&rows).await);
        log.push("empty batch", b.store_pending_inbound_batch(&[]).await);
        log.push("get 2", b.get_pending_inbound("c", "s", "2").await);
        log.push("get t1", b.get_pending_inbound("c", "t", "1").await);
        log.push("delete", b.delete_pending_inbound("c", "s", "1").await);
        log.push("get deleted", b.get_pending_inbound("c", "s", "1").await);
        let keys = [
            PendingInboundKey { chat: "c", sender: "s", id: "2" },
            PendingInboundKey { chat: "c", sender: "x", id: "9" },
        ];
        log.push("delete batch", b.delete_pending_inbound_batch(&keys).await);
        log.push("delete empty batch", b.delete_pending_inbound_batch(&[]).await);
        log.push("get batch-deleted", b.get_pending_inbound("c", "s", "2").await);
        log.push("expire none", b.delete_expired_pending_inbound(now - 3600).await);
        log.push("expire all", b.delete_expired_pending_inbound(now + 3600).await);
        log.push("get expired", b.get_pending_inbound("c", "t", "1").await);
        log
    }

    pub async fn msg_secrets(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        let (chat, sender) = ("120363021033254949@g.us", "5511987650001@s.whatsapp.net");
        log.push("get missing", b.get_msg_secret(chat, sender, "M0").await);
        log.push("put without expiry", b.put_msg_secret(chat, sender, "M0", &[1; 32]).await);
        log.push("get", b.get_msg_secret(chat, sender, "M0").await);
        log.push("get with ts", b.get_msg_secret_with_ts(chat, sender, "M0").await);
        log.push("other sender", b.get_msg_secret(chat, "x@s.whatsapp.net", "M0").await);
        log.push("put none", b.put_msg_secrets(vec![]).await);
        log.push(
            "put batch",
            b.put_msg_secrets(vec![
                secret("M1", 2, 1000, 500),
                secret("M2", 3, 2000, 0),
                secret("M3", 4, 3000, 700),
                secret("M1", 5, 900, 0),
                secret("M0", 6, 1500, 100),
            ])
            .await,
        );
        for id in ["M0", "M1", "M2", "M3"] {
            log.push(&format!("get {id}"), b.get_msg_secret_with_ts(chat, sender, id).await);
        }
        // Later deadline wins, 0 (never) wins over any, a known parent time is never cleared.
        log.push(
            "merge",
            b.put_msg_secrets(vec![
                secret("M1", 7, 800, 0),
                secret("M2", 8, 0, 600),
                secret("M3", 9, 3500, 650),
            ])
            .await,
        );
        for id in ["M1", "M2", "M3"] {
            log.push(&format!("get merged {id}"), b.get_msg_secret_with_ts(chat, sender, id).await);
        }
        log.push("expire before any", b.delete_expired_msg_secrets(999).await);
        log.push("expire at a deadline", b.delete_expired_msg_secrets(1000).await);
        log.push("get expired M1", b.get_msg_secret(chat, sender, "M1").await);
        log.push("expire everything that can", b.delete_expired_msg_secrets(i64::MAX).await);
        for id in ["M0", "M2", "M3"] {
            log.push(&format!("left {id}"), b.get_msg_secret(chat, sender, id).await);
        }
        log
    }

    pub async fn device_rows(b: &dyn Backend) -> Log {
        let mut log = Log::default();
        log.push("exists before", b.exists().await);
        log.push("load before", b.load().await.map(|d| d.map(|d| device_json(&d))));
        log.push("create", b.create().await);
        log.push("exists after create", b.exists().await);
        // A created device has fresh random keys: compare what is not random.
        let created = b.load().await.map(|d| {
            d.map(|d| {
                (
                    (
                        d.pn.is_some(),
                        d.lid.is_some(),
                        d.account.is_some(),
                        d.push_name.clone(),
                        d.signed_pre_key_id,
                        d.next_pre_key_id,
                        d.first_unupload_pre_key_id,
                        d.server_has_prekeys,
                    ),
                    d.server_cert_chain.is_some(),
                    d.login_counter,
                    d.lid_migrated,
                    d.read_receipts_disabled,
                    d.edge_routing_info.clone(),
                    d.props_hash.clone(),
                    d.nct_salt.clone(),
                )
            })
        });
        log.push("load created", created);
        log.push("create again fails", b.create().await);
        let device = full_device();
        log.push("save", b.save(&device).await);
        let loaded = b.load().await.map(|d| d.map(|d| device_json(&d)));
        log.push("load saved is the saved device", loaded.map(|d| d == Some(device_json(&device))));
        let mut cleared = device.clone();
        cleared.pn = None;
        cleared.lid = None;
        cleared.account = None;
        cleared.server_cert_chain = None;
        cleared.edge_routing_info = None;
        cleared.props_hash = None;
        cleared.nct_salt = None;
        log.push("save cleared", b.save(&cleared).await);
        let loaded = b.load().await.map(|d| d.map(|d| device_json(&d)));
        log.push("load cleared", loaded.map(|d| d == Some(device_json(&cleared))));
        log
    }
}

// ---------------------------------------------------------------------------------------------
// Postgres only

/// Writes a row in every table of `b`, so isolation and deletion can be checked table by table.
async fn populate(b: &dyn Backend, tag: u8, device: &Device) {
    let t = |s: &str| format!("{s}-{tag}");
    b.save(device).await.expect("save");
    b.put_identity("a@s.whatsapp.net", key(tag)).await.expect("identity");
    b.put_session("a@s.whatsapp.net", &[tag]).await.expect("session");
    b.store_prekey(1, &[tag], false).await.expect("prekey");
    b.store_signed_prekey(1, &[tag]).await.expect("signed prekey");
    b.put_sender_key("g::a::0", &[tag]).await.expect("sender key");
    b.set_sync_key(
        &[1],
        AppStateSyncKey { key_data: vec![tag; 32], fingerprint: vec![tag], timestamp: 1 },
    )
    .await
    .expect("sync key");
    let state = HashState { version: u64::from(tag), ..HashState::default() };
    b.set_version("regular", state).await.expect("version");
    b.put_mutation_macs(
        "regular",
        1,
        &[AppStateMutationMAC { index_mac: vec![1; 32], value_mac: vec![tag; 32] }],
    )
    .await
    .expect("macs");
    b.set_sender_key_status("g", &[("a:1@lid", true)]).await.expect("skd");
    b.put_lid_mapping(&lid("1", &t("pn"), 1, 1, "usync")).await.expect("lid");
    b.save_base_key("a", "M", &[tag]).await.expect("base key");
    b.update_device_list(device_list("a", &[0, u32::from(tag)], 1, None, None))
        .await
        .expect("devices");
    b.put_group_metadata("g", &[tag]).await.expect("group");
    b.put_tc_token(
        "a@lid",
        &TcTokenEntry { token: vec![tag], token_timestamp: 1, sender_timestamp: None },
    )
    .await
    .expect("tc token");
    b.store_sent_message("c", "M", &[tag]).await.expect("sent");
    b.store_pending_inbound("c", "s", "M", &[tag]).await.expect("pending");
    b.put_msg_secret("c", "s", "M", &[tag; 32]).await.expect("secret");
}

/// Reads every table of `b` back, as one comparable value.
async fn probe(b: &dyn Backend) -> Vec<String> {
    let mut log = Log::default();
    log.push("device", b.load().await.map(|d| d.map(|d| device_json(&d))));
    log.push("identity", b.load_identity("a@s.whatsapp.net").await);
    log.push("session", b.get_session("a@s.whatsapp.net").await);
    log.push("prekey", b.load_prekey(1).await);
    log.push("max prekey", b.get_max_prekey_id().await);
    log.push("signed prekeys", b.load_all_signed_prekeys().await);
    log.push("sender key", b.get_sender_key("g::a::0").await);
    log.push("sync key", b.get_sync_key(&[1]).await);
    log.push("latest sync key", b.get_latest_sync_key_id().await);
    log.push("version", b.get_version("regular").await.map(hash_state));
    log.push("mac", b.get_mutation_mac("regular", &[1; 32]).await);
    log.push("skd", b.get_sender_key_devices("g").await);
    log.push("lids", b.get_all_lid_mappings().await);
    log.push("base key", b.has_same_base_key("a", "M", &[1]).await);
    log.push("base key 2", b.has_same_base_key("a", "M", &[2]).await);
    log.push("devices", b.get_devices("a").await);
    log.push("group", b.get_group_metadata("g").await);
    log.push("tc tokens", b.get_all_tc_token_jids().await);
    log.push("pending", b.get_pending_inbound("c", "s", "M").await);
    log.push("secret", b.get_msg_secret("c", "s", "M").await);
    // Last: taking consumes the row.
    log.push("sent", b.take_sent_message("c", "M").await);
    log.0.into_iter().map(|(label, value)| format!("{label}: {value}")).collect()
}

#[tokio::test]
async fn devices_in_one_database_do_not_see_each_other() {
    let pool = pg_pool().await;
    let a = PostgresStore::new(pool.clone(), "ch_a").expect("key");
    let b = PostgresStore::new(pool.clone(), "ch_b").expect("key");
    let empty = probe(&b).await;
    let (device_a, device_b) = (full_device(), full_device());

    populate(&a, 1, &device_a).await;
    assert_eq!(probe(&b).await, empty, "device b sees device a's rows");
    populate(&b, 2, &device_b).await;
    let a_rows = probe(&a).await;
    assert_ne!(a_rows, empty);
    assert_ne!(a_rows, probe(&b).await, "a and b hold different values");

    // Bulk operations stay inside their device too.
    populate(&a, 1, &device_a).await;
    populate(&b, 2, &device_b).await;
    let b_rows = probe(&b).await;
    populate(&b, 2, &device_b).await;
    a.clear_all_sender_key_devices().await.expect("clear a");
    a.delete_expired_tc_tokens(i64::MAX, i64::MAX).await.expect("expire a");
    a.delete_expired_sent_messages(i64::MAX).await.expect("expire a");
    a.delete_expired_pending_inbound(i64::MAX).await.expect("expire a");
    a.clear_mutation_macs("regular").await.expect("clear a");
    assert_eq!(probe(&b).await, b_rows, "a's bulk deletes reached b");

    populate(&a, 1, &device_a).await;
    populate(&b, 2, &device_b).await;
    PostgresStore::delete_device(&pool, "ch_a").await.expect("delete a");
    assert_eq!(probe(&a).await, empty, "delete_device left rows of a");
    assert!(!a.exists().await.expect("exists"));
    assert_eq!(probe(&b).await, b_rows, "deleting a touched b");
    PostgresStore::delete_device(&pool, "ch_unknown").await.expect("deleting nothing is fine");
    assert!(PostgresStore::new(pool.clone(), "").is_err(), "an empty key is refused");
}

#[tokio::test]
async fn data_survives_a_new_pool_and_a_new_store() {
    let url = keebai_test_support::fresh_database().await;
    let connect = || async {
        PgPoolOptions::new().max_connections(2).connect(url.expose_secret()).await.expect("connect")
    };
    let pool = connect().await;
    PostgresStore::migrate(&pool).await.expect("migrate");
    let store = PostgresStore::new(pool.clone(), "ch_0123").expect("key");
    let device = full_device();
    populate(&store, 3, &device).await;
    let before = probe(&store).await;
    // probe took the sent message; put it back.
    store.store_sent_message("c", "M", &[3]).await.expect("sent");
    drop(store);
    pool.close().await;

    let pool = connect().await;
    PostgresStore::migrate(&pool).await.expect("migrating again is a no-op");
    let store = PostgresStore::new(pool, "ch_0123").expect("key");
    let loaded = store.load().await.expect("load").expect("the device is there");
    assert_eq!(device_json(&loaded), device_json(&device), "the device did not round-trip");
    assert_eq!(probe(&store).await, before);
}

#[tokio::test]
async fn a_device_saved_to_either_store_loads_the_same() {
    let stores = Stores::new().await;
    let device = full_device();
    stores.sqlite.save(&device).await.expect("save sqlite");
    stores.postgres.save(&device).await.expect("save postgres");
    let from_sqlite = stores.sqlite.load().await.expect("load").expect("saved");
    let from_postgres = stores.postgres.load().await.expect("load").expect("saved");
    assert_eq!(device_json(&from_postgres), device_json(&from_sqlite));
    assert_eq!(device_json(&from_postgres), device_json(&device));
    // The runtime-only fields come back as the library's defaults on both.
    assert_eq!(from_postgres.device_props, from_sqlite.device_props);
    assert_eq!(from_postgres.nct_salt_sync_seen, from_sqlite.nct_salt_sync_seen);
    assert_eq!(
        stores.postgres.resource_report().await.memory_bytes,
        Some(0),
        "the data is not process memory"
    );
}

/// The server's migrations, read at run time from its directory: this crate does not depend
/// on the server, but its migrations must coexist with the server's on one database.
async fn server_migrator() -> sqlx::migrate::Migrator {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/migrations/postgres");
    sqlx::migrate::Migrator::new(dir).await.expect("the server's migrations resolve")
}

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .expect("list tables")
}

#[tokio::test]
async fn migrations_coexist_with_the_servers_in_either_order() {
    let server = server_migrator().await;
    for server_first in [true, false] {
        let url = keebai_test_support::fresh_database().await;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url.expose_secret())
            .await
            .expect("connect");
        if server_first {
            server.run(&pool).await.expect("server migrations on an empty database");
            PostgresStore::migrate(&pool).await.expect("ours after the server's");
        } else {
            PostgresStore::migrate(&pool).await.expect("ours on an empty database");
            server.run(&pool).await.expect("the server's after ours");
        }
        // Both again, in the other order: neither sees the other's history as missing.
        server.run(&pool).await.expect("server migrations again");
        PostgresStore::migrate(&pool).await.expect("ours again");
        server.run(&pool).await.expect("server migrations once more");

        let tables = tables(&pool).await;
        assert!(tables.iter().any(|t| t == "wa_device"), "{tables:?}");
        assert!(tables.iter().any(|t| t == "channels"), "{tables:?}");
        assert!(tables.iter().any(|t| t == "_sqlx_migrations"), "{tables:?}");
        assert!(tables.iter().any(|t| t == keebai_wa_postgres::MIGRATIONS_TABLE), "{tables:?}");
        let ours: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM {} ORDER BY version",
            keebai_wa_postgres::MIGRATIONS_TABLE
        )))
        .fetch_all(&pool)
        .await
        .expect("our migration history");
        assert_eq!(ours, vec![20261203000001]);
        let servers: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .expect("the server's migration history");
        assert!(!servers.contains(&20261203000001), "ours leaked into the server's history");
        let store = PostgresStore::new(pool.clone(), "ch_m").expect("key");
        store.create().await.expect("the store works on the shared database");
    }
}

// ---------------------------------------------------------------------------------------------
// Import from a SQLite device file

/// Opens a SQLite device file read-only, for looking at its rows directly.
async fn sqlite_file(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    SqliteConnection::connect_with(&options).await.expect("the SQLite file opens")
}

/// Opens a SQLite device file for writing rows the library never would (corrupt blobs).
async fn sqlite_file_rw(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new().filename(path);
    SqliteConnection::connect_with(&options).await.expect("the SQLite file opens")
}

async fn open_sqlite(path: &Path) -> SqliteStore {
    SqliteStore::new(path.to_str().expect("a UTF-8 temp path")).await.expect("SQLite opens")
}

/// Every table of a device: its row count in a SQLite device file (device id 1, the one
/// `SqliteStore::new` uses) and for one device in Postgres, with the Postgres table's name.
const TABLE_COUNTS: [(&str, &str, &str); 18] = [
    (
        "SELECT COUNT(*) FROM identities WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_identities WHERE device = $1",
        "wa_identities",
    ),
    (
        "SELECT COUNT(*) FROM sessions WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_sessions WHERE device = $1",
        "wa_sessions",
    ),
    (
        "SELECT COUNT(*) FROM prekeys WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_prekeys WHERE device = $1",
        "wa_prekeys",
    ),
    (
        "SELECT COUNT(*) FROM signed_prekeys WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_signed_prekeys WHERE device = $1",
        "wa_signed_prekeys",
    ),
    (
        "SELECT COUNT(*) FROM sender_keys WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_sender_keys WHERE device = $1",
        "wa_sender_keys",
    ),
    (
        "SELECT COUNT(*) FROM app_state_keys WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_app_state_keys WHERE device = $1",
        "wa_app_state_keys",
    ),
    (
        "SELECT COUNT(*) FROM app_state_versions WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_app_state_versions WHERE device = $1",
        "wa_app_state_versions",
    ),
    (
        "SELECT COUNT(*) FROM app_state_mutation_macs WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_app_state_mutation_macs WHERE device = $1",
        "wa_app_state_mutation_macs",
    ),
    (
        "SELECT COUNT(*) FROM sender_key_devices WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_sender_key_devices WHERE device = $1",
        "wa_sender_key_devices",
    ),
    (
        "SELECT COUNT(*) FROM lid_pn_mapping WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_lid_pn_mapping WHERE device = $1",
        "wa_lid_pn_mapping",
    ),
    (
        "SELECT COUNT(*) FROM base_keys WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_base_keys WHERE device = $1",
        "wa_base_keys",
    ),
    (
        "SELECT COUNT(*) FROM device_registry WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_device_registry WHERE device = $1",
        "wa_device_registry",
    ),
    (
        "SELECT COUNT(*) FROM group_metadata WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_group_metadata WHERE device = $1",
        "wa_group_metadata",
    ),
    (
        "SELECT COUNT(*) FROM tc_tokens WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_tc_tokens WHERE device = $1",
        "wa_tc_tokens",
    ),
    (
        "SELECT COUNT(*) FROM sent_messages WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_sent_messages WHERE device = $1",
        "wa_sent_messages",
    ),
    (
        "SELECT COUNT(*) FROM pending_inbound_messages WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_pending_inbound WHERE device = $1",
        "wa_pending_inbound",
    ),
    (
        "SELECT COUNT(*) FROM msg_secrets WHERE device_id = 1",
        "SELECT COUNT(*) FROM wa_msg_secrets WHERE device = $1",
        "wa_msg_secrets",
    ),
    (
        "SELECT COUNT(*) FROM device WHERE id = 1",
        "SELECT COUNT(*) FROM wa_device WHERE device = $1",
        "wa_device",
    ),
];

/// The row count of every table for `device` in Postgres.
async fn pg_counts(pool: &PgPool, device: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (_, sql, table) in TABLE_COUNTS {
        let n: i64 = sqlx::query_scalar(sql).bind(device).fetch_one(pool).await.expect("count");
        counts.push((table, n));
    }
    counts
}

/// The row count of every table of device 1 in a SQLite device file, by Postgres table name.
async fn sqlite_counts(path: &Path) -> Vec<(&'static str, i64)> {
    let mut conn = sqlite_file(path).await;
    let mut counts = Vec::new();
    for (sql, _, table) in TABLE_COUNTS {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count");
        counts.push((table, n));
    }
    counts
}

/// Columns the trait never returns (upload flags, bookkeeping timestamps, MAC versions), as
/// (key, value) per row: SQLite device 1 first, then the same for a Postgres device. The
/// import must carry them too, or expiry and re-uploads would behave differently after it.
const HIDDEN_COLUMNS: [(&str, &str); 11] = [
    (
        "SELECT CAST(id AS TEXT), uploaded FROM prekeys WHERE device_id = 1",
        "SELECT id::text, uploaded::int::int8 FROM wa_prekeys WHERE device = $1",
    ),
    (
        "SELECT name || ' ' || hex(index_mac), version FROM app_state_mutation_macs \
         WHERE device_id = 1",
        "SELECT name || ' ' || upper(encode(index_mac, 'hex')), version \
         FROM wa_app_state_mutation_macs WHERE device = $1",
    ),
    (
        "SELECT group_jid || ' ' || device_jid, updated_at FROM sender_key_devices \
         WHERE device_id = 1",
        "SELECT group_jid || ' ' || device_jid, updated_at FROM wa_sender_key_devices \
         WHERE device = $1",
    ),
    (
        "SELECT address || ' ' || message_id, created_at FROM base_keys WHERE device_id = 1",
        "SELECT address || ' ' || message_id, created_at FROM wa_base_keys WHERE device = $1",
    ),
    (
        "SELECT user_id, updated_at FROM device_registry WHERE device_id = 1",
        "SELECT user_id, updated_at FROM wa_device_registry WHERE device = $1",
    ),
    (
        "SELECT group_jid, updated_at FROM group_metadata WHERE device_id = 1",
        "SELECT group_jid, updated_at FROM wa_group_metadata WHERE device = $1",
    ),
    (
        "SELECT jid, updated_at FROM tc_tokens WHERE device_id = 1",
        "SELECT jid, updated_at FROM wa_tc_tokens WHERE device = $1",
    ),
    (
        "SELECT chat_jid || ' ' || message_id, created_at FROM sent_messages WHERE device_id = 1",
        "SELECT chat_jid || ' ' || message_id, created_at FROM wa_sent_messages \
         WHERE device = $1",
    ),
    (
        "SELECT chat || ' ' || sender || ' ' || id, inserted_at FROM pending_inbound_messages \
         WHERE device_id = 1",
        "SELECT chat || ' ' || sender || ' ' || id, inserted_at FROM wa_pending_inbound \
         WHERE device = $1",
    ),
    (
        "SELECT chat || ' ' || sender || ' ' || msg_id, created_at FROM msg_secrets \
         WHERE device_id = 1",
        "SELECT chat || ' ' || sender || ' ' || msg_id, created_at FROM wa_msg_secrets \
         WHERE device = $1",
    ),
    (
        "SELECT chat || ' ' || sender || ' ' || msg_id, expires_at FROM msg_secrets \
         WHERE device_id = 1",
        "SELECT chat || ' ' || sender || ' ' || msg_id, expires_at FROM wa_msg_secrets \
         WHERE device = $1",
    ),
];

/// Every key of device 1 in a SQLite device file, read from its tables: what the read-back
/// asks both stores for, so that every row is read, not only the ones a fixture names.
#[derive(Default)]
struct FileKeys {
    identities: Vec<String>,
    sessions: Vec<String>,
    prekeys: Vec<u32>,
    sender_keys: Vec<String>,
    sync_keys: Vec<Vec<u8>>,
    collections: Vec<String>,
    macs: Vec<(String, Vec<u8>)>,
    skd_groups: Vec<String>,
    lids: Vec<(String, String)>,
    base_keys: Vec<(String, String, Vec<u8>)>,
    users: Vec<String>,
    groups: Vec<String>,
    tc_jids: Vec<String>,
    sent: Vec<(String, String)>,
    pending: Vec<(String, String, String)>,
    secrets: Vec<(String, String, String)>,
}

impl FileKeys {
    async fn read(path: &Path) -> Self {
        let mut c = sqlite_file(path).await;
        macro_rules! all {
            ($sql:literal) => {
                sqlx::query_as($sql).fetch_all(&mut c).await.expect($sql)
            };
        }
        macro_rules! scalars {
            ($sql:literal) => {
                sqlx::query_scalar($sql).fetch_all(&mut c).await.expect($sql)
            };
        }
        let prekeys: Vec<i64> = scalars!("SELECT id FROM prekeys WHERE device_id = 1");
        Self {
            identities: scalars!("SELECT address FROM identities WHERE device_id = 1"),
            sessions: scalars!("SELECT address FROM sessions WHERE device_id = 1"),
            prekeys: prekeys.into_iter().map(|id| id as i32 as u32).collect(),
            sender_keys: scalars!("SELECT address FROM sender_keys WHERE device_id = 1"),
            sync_keys: scalars!("SELECT key_id FROM app_state_keys WHERE device_id = 1"),
            collections: scalars!("SELECT name FROM app_state_versions WHERE device_id = 1"),
            macs: all!("SELECT name, index_mac FROM app_state_mutation_macs WHERE device_id = 1"),
            skd_groups: scalars!(
                "SELECT DISTINCT group_jid FROM sender_key_devices WHERE device_id = 1"
            ),
            lids: all!("SELECT lid, phone_number FROM lid_pn_mapping WHERE device_id = 1"),
            base_keys: all!(
                "SELECT address, message_id, base_key FROM base_keys WHERE device_id = 1"
            ),
            users: scalars!("SELECT user_id FROM device_registry WHERE device_id = 1"),
            groups: scalars!("SELECT group_jid FROM group_metadata WHERE device_id = 1"),
            tc_jids: scalars!("SELECT jid FROM tc_tokens WHERE device_id = 1"),
            sent: all!("SELECT chat_jid, message_id FROM sent_messages WHERE device_id = 1"),
            pending: all!(
                "SELECT chat, sender, id FROM pending_inbound_messages WHERE device_id = 1"
            ),
            secrets: all!("SELECT chat, sender, msg_id FROM msg_secrets WHERE device_id = 1"),
        }
    }
}

/// Reads every item named by `keys` from `b`, then takes and expires what can be taken, as one
/// comparable log. Consumes sent messages and expires rows: run it last on a store.
async fn read_everything(b: &dyn Backend, keys: &FileKeys) -> Vec<String> {
    let mut log = Log::default();
    log.push("device", b.load().await.map(|d| d.map(|d| device_json(&d))));
    log.push("device exists", b.exists().await);
    let user_of = |address: &str| address.split(['@', ':', '.']).next().unwrap_or("").to_owned();
    for a in &keys.identities {
        log.push(&format!("identity {a}"), b.load_identity(a).await);
        log.push(&format!("state of {a}"), b.has_signal_state_for_user(&user_of(a)).await);
    }
    for a in &keys.sessions {
        log.push(&format!("session {a}"), b.get_session(a).await);
        log.push(&format!("has session {a}"), b.has_session(a).await);
        log.push(&format!("state of {a}"), b.has_signal_state_for_user(&user_of(a)).await);
    }
    for &id in &keys.prekeys {
        log.push(&format!("prekey {id}"), b.load_prekey(id).await);
    }
    log.push("prekeys batch", b.load_prekeys_batch(&keys.prekeys).await.map(sorted));
    log.push("max prekey", b.get_max_prekey_id().await);
    log.push("signed prekeys", b.load_all_signed_prekeys().await.map(sorted));
    for a in &keys.sender_keys {
        log.push(&format!("sender key {a}"), b.get_sender_key(a).await);
    }
    for id in &keys.sync_keys {
        log.push(&format!("sync key {id:?}"), b.get_sync_key(id).await);
    }
    log.push("latest sync key", b.get_latest_sync_key_id().await);
    for name in &keys.collections {
        log.push(&format!("version {name}"), b.get_version(name).await.map(hash_state));
    }
    for (name, index_mac) in &keys.macs {
        log.push(&format!("mac {name} {index_mac:?}"), b.get_mutation_mac(name, index_mac).await);
        if let Ok(index) = <[u8; 32]>::try_from(index_mac.as_slice()) {
            let batch = b.get_mutation_macs(name, &[index]).await;
            log.push(
                &format!("mac batch {name}"),
                batch.map(|m| m.into_iter().collect::<Vec<_>>()),
            );
        }
    }
    for g in &keys.skd_groups {
        log.push(&format!("sender key devices {g}"), b.get_sender_key_devices(g).await.map(sorted));
    }
    let all = b
        .get_all_lid_mappings()
        .await
        .map(|entries| sorted(entries.into_iter().map(|e| format!("{e:?}")).collect::<Vec<_>>()));
    log.push("all lids", all);
    for (lid, phone) in &keys.lids {
        log.push(&format!("lid {lid}"), b.get_lid_mapping(lid).await);
        log.push(&format!("pn {phone}"), b.get_pn_mapping(phone).await);
    }
    for (address, id, key) in &keys.base_keys {
        log.push(&format!("base key {address} {id}"), b.has_same_base_key(address, id, key).await);
        log.push(
            &format!("other base key {address} {id}"),
            b.has_same_base_key(address, id, b"x").await,
        );
    }
    for user in &keys.users {
        log.push(&format!("devices {user}"), b.get_devices(user).await);
    }
    for g in &keys.groups {
        log.push(&format!("group {g}"), b.get_group_metadata(g).await);
    }
    log.push("tc jids", b.get_all_tc_token_jids().await.map(sorted));
    for jid in &keys.tc_jids {
        log.push(&format!("tc token {jid}"), b.get_tc_token(jid).await);
    }
    for (chat, sender, id) in &keys.pending {
        log.push(
            &format!("pending {chat} {sender} {id}"),
            b.get_pending_inbound(chat, sender, id).await,
        );
    }
    for (chat, sender, id) in &keys.secrets {
        log.push(
            &format!("secret {chat} {sender} {id}"),
            b.get_msg_secret_with_ts(chat, sender, id).await,
        );
    }
    // Destructive last: what can be taken or expired, and how many rows that finds.
    for (chat, id) in &keys.sent {
        log.push(&format!("take sent {chat} {id}"), b.take_sent_message(chat, id).await);
    }
    log.push("expire secrets", b.delete_expired_msg_secrets(i64::MAX).await);
    log.push("expire pending", b.delete_expired_pending_inbound(i64::MAX).await);
    log.push("expire tc tokens", b.delete_expired_tc_tokens(i64::MAX, i64::MAX).await);
    log.0.into_iter().map(|(label, value)| format!("{label}: {value}")).collect()
}

/// A SQLite store filled through the trait with every kind of row: what every conformance
/// scenario leaves behind, one `populate` round, and values at the edges of the conversions.
async fn fill(b: &SqliteStore, device: &Device) {
    scenarios::device_rows(b).await;
    scenarios::identities(b).await;
    scenarios::sessions(b).await;
    scenarios::prekeys(b).await;
    scenarios::signed_prekeys(b).await;
    scenarios::sender_keys(b).await;
    scenarios::app_state_keys(b).await;
    scenarios::app_state_versions_and_macs(b).await;
    scenarios::sender_key_devices(b).await;
    scenarios::lid_mappings(b).await;
    scenarios::base_keys(b).await;
    scenarios::device_lists(b).await;
    scenarios::group_metadata(b).await;
    scenarios::tc_tokens(b).await;
    scenarios::sent_messages(b).await;
    scenarios::pending_inbound(b).await;
    scenarios::msg_secrets(b).await;
    populate(b, 1, device).await;

    // Uploaded and not-uploaded pre-keys.
    b.store_prekeys_batch(
        &[(500, Bytes::from_static(b"p500")), (501, Bytes::from_static(b"p501"))],
        false,
    )
    .await
    .expect("prekeys");
    b.store_prekeys_batch(&[(502, Bytes::from_static(b"p502"))], true).await.expect("prekeys");
    b.mark_prekeys_uploaded(&[500]).await.expect("mark");
    b.store_signed_prekey(9, b"signed nine").await.expect("signed prekey");
    // Values the SQLite store wraps in 32-bit columns: a device-list timestamp in ms and a
    // raw_id over i32::MAX.
    b.update_device_lists(vec![
        device_list(
            "5511900000009",
            &[0, 2, 99],
            1_760_000_000_123,
            Some("2:ph"),
            Some(3_000_000_000),
        ),
        device_list("100000000000009", &[0], -1, None, Some(u32::MAX)),
    ])
    .await
    .expect("device lists");
    b.set_sender_key_status(
        "120363021033254951@g.us",
        &[("5511900000001:1@s.whatsapp.net", true), ("100000000000001:3@lid", false)],
    )
    .await
    .expect("sender key devices");
    b.put_sessions_batch(&[
        (Arc::from("5511900000001.0:1"), Bytes::from(vec![0u8; 2000])),
        (Arc::from("100000000000001.1:3"), Bytes::from_static(b"lid session")),
    ])
    .await
    .expect("sessions");
    b.put_identity("100000000000001:3@lid", key(0xee)).await.expect("identity");
    b.put_sender_key("120363021033254951@g.us::100000000000001::3", b"sk").await.expect("sk");
    let mut state = HashState { version: 12_345, ..HashState::default() };
    state.hash = [0x5a; 128];
    state.index_value_map.insert("i1".into(), vec![1; 32]);
    state.index_value_map.insert("i2".into(), vec![2; 32]);
    b.set_version("critical_unblock_low", state).await.expect("version");
    b.put_mutation_macs(
        "critical_unblock_low",
        12_345,
        &[AppStateMutationMAC { index_mac: vec![4; 32], value_mac: vec![5; 32] }],
    )
    .await
    .expect("macs");
    b.put_tc_token(
        "5511900000001@s.whatsapp.net",
        &TcTokenEntry {
            token: b"tok".to_vec(),
            token_timestamp: 1_760_000_000,
            sender_timestamp: Some(1_760_000_001),
        },
    )
    .await
    .expect("tc token");
    b.store_sent_message("5511900000001@s.whatsapp.net", "3EB0AA", b"sent payload")
        .await
        .expect("sent");
    b.store_pending_inbound(
        "120363021033254951@g.us",
        "100000000000001:3@lid",
        "3EB0BB",
        b"pending",
    )
    .await
    .expect("pending");
    b.put_msg_secrets(vec![secret("M9", 9, 0, 1_760_000_000), secret("M10", 10, 4_000_000_000, 0)])
        .await
        .expect("secrets");
    b.put_group_metadata("120363021033254951@g.us", b"group info").await.expect("group");
    b.save_base_key("5511900000001.0:1", "3EB0CC", b"base key").await.expect("base key");
    b.put_lid_mappings(&[
        lid("100000000000002", "5511900000002", 1_760_000_000, 1_760_000_001, "usync"),
        lid("100000000000003", "5511900000002", 1_760_000_002, 1_760_000_003, "peer_pn_message"),
    ])
    .await
    .expect("lids");
    // The device last, every optional field set.
    b.save(device).await.expect("save");
}

/// Builds a filled SQLite device file, closes it, and returns its directory, its path and the
/// device saved in it.
async fn filled_file() -> (tempfile::TempDir, std::path::PathBuf, Device) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("ch_0001.db");
    let sqlite = open_sqlite(&path).await;
    let device = full_device();
    fill(&sqlite, &device).await;
    drop(sqlite);
    (dir, path, device)
}

#[tokio::test]
async fn import_copies_every_row_of_a_sqlite_device_file() {
    let (_dir, path, device) = filled_file().await;
    let pool = pg_pool().await;
    // Another device already in the database, which the import must not touch.
    let other = PostgresStore::new(pool.clone(), "ch_other").expect("key");
    let other_device = full_device();
    populate(&other, 2, &other_device).await;
    let other_before = probe(&other).await;
    // probe took the sent message; put it back.
    other.store_sent_message("c", "M", &[2]).await.expect("sent");
    let other_counts = pg_counts(&pool, "ch_other").await;

    let file_before = std::fs::read(&path).expect("read the file");
    let imported = PostgresStore::import_sqlite(&pool, "ch_0001", &path).await.expect("import");
    assert_eq!(std::fs::read(&path).expect("read the file"), file_before, "the file changed");

    // Every table got rows, and as many as the file has (less the one unreadable short key
    // the app_state_keys scenario stores, which SQLite reads as absent).
    let sqlite_counts = sqlite_counts(&path).await;
    let pg = pg_counts(&pool, "ch_0001").await;
    assert_eq!(imported.unreadable, vec![("app_state_keys", 1)]);
    assert!(!imported.cert_chain_dropped);
    assert_eq!(imported.other_devices, 0);
    for ((table, in_file), (pg_table, in_pg)) in sqlite_counts.iter().zip(&pg) {
        assert_eq!(table, pg_table);
        let unreadable = if *table == "wa_app_state_keys" { 1 } else { 0 };
        assert!(*in_file > 0, "the fixture left {table} empty");
        assert_eq!(*in_pg, in_file - unreadable, "{table}: rows in Postgres vs the file");
        assert_eq!(imported.rows_in(table), *in_pg as u64, "{table}: reported vs written");
    }
    assert_eq!(imported.rows.len(), 18);

    // Columns no trait method returns came across too.
    let mut file = sqlite_file(&path).await;
    for (sqlite_sql, pg_sql) in HIDDEN_COLUMNS {
        let in_file: Vec<(String, i64)> =
            sqlx::query_as(sqlite_sql).fetch_all(&mut file).await.expect(sqlite_sql);
        let in_pg: Vec<(String, i64)> =
            sqlx::query_as(pg_sql).bind("ch_0001").fetch_all(&pool).await.expect(pg_sql);
        assert!(!in_file.is_empty(), "{sqlite_sql}: no rows");
        assert_eq!(sorted(in_pg), sorted(in_file), "{pg_sql}");
    }
    file.close().await.expect("close");

    // Every item reads back the same through both stores.
    let keys = FileKeys::read(&path).await;
    let postgres = PostgresStore::new(pool.clone(), "ch_0001").expect("key");
    let sqlite = open_sqlite(&path).await;
    let from_sqlite = read_everything(&sqlite, &keys).await;
    let from_postgres = read_everything(&postgres, &keys).await;
    assert!(from_sqlite.len() > 80, "the read-back read little: {}", from_sqlite.len());
    for (s, p) in from_sqlite.iter().zip(&from_postgres) {
        assert_eq!(s, p, "SQLite left, Postgres right");
    }
    assert_eq!(from_sqlite.len(), from_postgres.len());
    assert_eq!(
        device_json(&postgres.load().await.expect("load").expect("imported")),
        device_json(&device),
        "the imported device is the saved one"
    );

    // The other device is untouched.
    assert_eq!(pg_counts(&pool, "ch_other").await, other_counts);
    assert_eq!(probe(&other).await, other_before);
}

#[tokio::test]
async fn importing_into_a_device_with_rows_is_refused_and_writes_nothing() {
    let (_dir, path, _) = filled_file().await;
    let pool = pg_pool().await;
    PostgresStore::import_sqlite(&pool, "ch_0001", &path).await.expect("first import");
    let after_first = pg_counts(&pool, "ch_0001").await;
    let store = PostgresStore::new(pool.clone(), "ch_0001").expect("key");
    let device_before = store.load().await.expect("load").map(|d| device_json(&d));

    let again = PostgresStore::import_sqlite(&pool, "ch_0001", &path).await;
    assert!(matches!(again, Err(StoreError::InvalidConfig(_))), "{again:?}");
    assert_eq!(pg_counts(&pool, "ch_0001").await, after_first, "the refused import wrote");
    assert_eq!(store.load().await.expect("load").map(|d| device_json(&d)), device_before);

    // Any single row of the device is enough to refuse, the device row included or not.
    let stray = PostgresStore::new(pool.clone(), "ch_stray").expect("key");
    stray.put_session("a@s.whatsapp.net", b"x").await.expect("session");
    let refused = PostgresStore::import_sqlite(&pool, "ch_stray", &path).await;
    assert!(matches!(refused, Err(StoreError::InvalidConfig(_))), "{refused:?}");
    let counts = pg_counts(&pool, "ch_stray").await;
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 1, "{counts:?}");

    // After the device is deleted, the same file imports again.
    PostgresStore::delete_device(&pool, "ch_0001").await.expect("delete");
    PostgresStore::import_sqlite(&pool, "ch_0001", &path).await.expect("import after delete");
    assert_eq!(pg_counts(&pool, "ch_0001").await, after_first);
}

#[tokio::test]
async fn a_file_without_a_device_row_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("never_paired.db");
    let sqlite = open_sqlite(&path).await;
    // Rows without a device row: what a channel that never created its keys could leave.
    sqlite.store_prekey(1, b"one", false).await.expect("prekey");
    sqlite.put_session("a@s.whatsapp.net", b"s").await.expect("session");
    drop(sqlite);
    let pool = pg_pool().await;
    let result = PostgresStore::import_sqlite(&pool, "ch_never", &path).await;
    assert!(matches!(result, Err(StoreError::DeviceNotFound(1))), "{result:?}");
    let counts = pg_counts(&pool, "ch_never").await;
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 0, "{counts:?}");

    // A created but never linked device (keys, no account) is a device: it imports as is.
    let sqlite = open_sqlite(&path).await;
    sqlite.create().await.expect("create");
    drop(sqlite);
    let imported = PostgresStore::import_sqlite(&pool, "ch_never", &path).await.expect("import");
    assert_eq!(imported.rows_in("wa_device"), 1);
    assert_eq!(imported.rows_in("wa_prekeys"), 1);
    let sqlite = open_sqlite(&path).await;
    let postgres = PostgresStore::new(pool.clone(), "ch_never").expect("key");
    let from_sqlite = sqlite.load().await.expect("load").expect("created");
    let from_postgres = postgres.load().await.expect("load").expect("imported");
    assert_eq!(device_json(&from_postgres), device_json(&from_sqlite));
    assert!(from_postgres.account.is_none());

    let missing = PostgresStore::import_sqlite(&pool, "ch_x", &dir.path().join("none.db")).await;
    assert!(matches!(missing, Err(StoreError::Io(_))), "{missing:?}");
}

#[tokio::test]
async fn unreadable_blobs_are_left_out_as_the_sqlite_store_reads_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("corrupt.db");
    let sqlite = open_sqlite(&path).await;
    populate(&sqlite, 1, &full_device()).await;
    sqlite
        .set_sync_key(
            &[2],
            AppStateSyncKey { key_data: vec![2; 32], fingerprint: vec![], timestamp: 2 },
        )
        .await
        .expect("sync key");
    drop(sqlite);
    // Blobs the library would never write: the SQLite store reads each as absent.
    let mut rw = sqlite_file_rw(&path).await;
    for sql in [
        "UPDATE device SET server_cert_chain = x'0a03010203' WHERE id = 1",
        "INSERT INTO app_state_keys (key_id, key_data, device_id) VALUES (x'ff', x'deadbeef', 1)",
        "INSERT INTO app_state_versions (name, state_data, device_id) \
         VALUES ('regular_high', x'0a', 1)",
        // Another account in the same file (not the file's device): not copied.
        "INSERT INTO device (id, lid, pn, registration_id, noise_key, identity_key, \
             signed_pre_key, signed_pre_key_id, signed_pre_key_signature, adv_secret_key) \
         SELECT 2, lid, pn, registration_id, noise_key, identity_key, signed_pre_key, \
             signed_pre_key_id, signed_pre_key_signature, adv_secret_key FROM device WHERE id = 1",
        "INSERT INTO sessions (address, record, device_id) VALUES ('b@s.whatsapp.net', x'01', 2)",
    ] {
        sqlx::query(sql).execute(&mut rw).await.expect(sql);
    }
    rw.close().await.expect("close");

    let pool = pg_pool().await;
    let imported = PostgresStore::import_sqlite(&pool, "ch_c", &path).await.expect("import");
    assert!(imported.cert_chain_dropped);
    assert_eq!(imported.unreadable, vec![("app_state_keys", 1), ("app_state_versions", 1)]);
    assert_eq!(imported.other_devices, 1);
    assert_eq!(imported.rows_in("wa_sessions"), 1, "device 2's session was copied");
    assert_eq!(imported.rows_in("wa_app_state_keys"), 2);

    let keys = FileKeys::read(&path).await;
    let postgres = PostgresStore::new(pool.clone(), "ch_c").expect("key");
    let sqlite = open_sqlite(&path).await;
    let loaded = sqlite.load().await.expect("load").expect("device");
    assert!(loaded.server_cert_chain.is_none(), "SQLite drops the corrupt chain too");
    assert_eq!(read_everything(&postgres, &keys).await, read_everything(&sqlite, &keys).await);
}

#[tokio::test]
async fn a_file_of_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("newer.db");
    let sqlite = open_sqlite(&path).await;
    sqlite.save(&full_device()).await.expect("save");
    drop(sqlite);
    let mut rw = sqlite_file_rw(&path).await;
    sqlx::query("INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')")
        .execute(&mut rw)
        .await
        .expect("a newer migration");
    rw.close().await.expect("close");
    let pool = pg_pool().await;
    let result = PostgresStore::import_sqlite(&pool, "ch_n", &path).await;
    assert!(matches!(result, Err(StoreError::Validation(_))), "{result:?}");
    let counts = pg_counts(&pool, "ch_n").await;
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 0);

    // An older file (a migration not applied) is refused too.
    let mut rw = sqlite_file_rw(&path).await;
    sqlx::query(
        "DELETE FROM __diesel_schema_migrations WHERE version IN ('20990101000000', \
         '20260703000001')",
    )
    .execute(&mut rw)
    .await
    .expect("an older history");
    rw.close().await.expect("close");
    let result = PostgresStore::import_sqlite(&pool, "ch_n", &path).await;
    assert!(matches!(result, Err(StoreError::Validation(_))), "{result:?}");

    let not_a_store = dir.path().join("other.db");
    std::fs::write(&not_a_store, b"").expect("an empty file");
    let result = PostgresStore::import_sqlite(&pool, "ch_n", &not_a_store).await;
    assert!(matches!(result, Err(StoreError::Validation(_))), "{result:?}");
}
