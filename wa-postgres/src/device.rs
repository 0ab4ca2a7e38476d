//! [`DeviceStore`]: the device's own identity (keys, JIDs, account, counters), one row per
//! device key.

use std::sync::Arc;

use async_trait::async_trait;
use wacore::libsignal::protocol::{KeyPair, PrivateKey, PublicKey};
use wacore::stats::StorageResourceReport;
use wacore::store::Device;
use wacore::store::device::{CachedNoiseCert, CachedServerCertChain, account_serde};
use wacore::store::error::{Result, StoreError};
use wacore::store::traits::DeviceStore;

use crate::{PostgresStore, db_err, to_u32};

/// A key pair as 64 bytes, private half first: the SQLite store's layout, so a row can be
/// compared or moved between the two.
fn keypair_bytes(key_pair: &KeyPair) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(key_pair.private_key.serialize());
    bytes.extend_from_slice(key_pair.public_key.public_key_bytes());
    bytes
}

fn keypair_from(bytes: &[u8]) -> Result<KeyPair> {
    if bytes.len() != 64 {
        return Err(StoreError::Validation(format!("Invalid KeyPair length: {}", bytes.len())));
    }
    let private_key = PrivateKey::deserialize(&bytes[..32])
        .map_err(|e| StoreError::Serialization(Box::new(e)))?;
    let public_key = PublicKey::from_djb_public_key_bytes(&bytes[32..])
        .map_err(|e| StoreError::Serialization(Box::new(e)))?;
    Ok(KeyPair::new(public_key, private_key))
}

/// The columns of `wa_device`, in the order every statement below lists them (after `device`).
/// Crate-visible so [`PostgresStore::import_sqlite`] writes a SQLite device row through the
/// same columns, checks and insert as [`DeviceStore::save`].
#[derive(sqlx::FromRow, Clone)]
pub(crate) struct DeviceRow {
    pub(crate) lid: String,
    pub(crate) pn: String,
    pub(crate) registration_id: i64,
    pub(crate) noise_key: Vec<u8>,
    pub(crate) identity_key: Vec<u8>,
    pub(crate) signed_pre_key: Vec<u8>,
    pub(crate) signed_pre_key_id: i64,
    pub(crate) signed_pre_key_signature: Vec<u8>,
    pub(crate) adv_secret_key: Vec<u8>,
    pub(crate) account: Option<Vec<u8>>,
    pub(crate) push_name: String,
    pub(crate) app_version_primary: i64,
    pub(crate) app_version_secondary: i64,
    pub(crate) app_version_tertiary: i64,
    pub(crate) app_version_last_fetched_ms: i64,
    pub(crate) edge_routing_info: Option<Vec<u8>>,
    pub(crate) props_hash: Option<String>,
    pub(crate) next_pre_key_id: i64,
    pub(crate) first_unupload_pre_key_id: i64,
    pub(crate) server_has_prekeys: bool,
    pub(crate) nct_salt: Option<Vec<u8>>,
    pub(crate) cert_intermediate_key: Option<Vec<u8>>,
    pub(crate) cert_intermediate_not_before: Option<i64>,
    pub(crate) cert_intermediate_not_after: Option<i64>,
    pub(crate) cert_leaf_key: Option<Vec<u8>>,
    pub(crate) cert_leaf_not_before: Option<i64>,
    pub(crate) cert_leaf_not_after: Option<i64>,
    pub(crate) login_counter: i32,
    pub(crate) lid_migrated: bool,
    pub(crate) last_signed_pre_key_rotation_ms: i64,
    pub(crate) read_receipts_disabled: bool,
}

impl DeviceRow {
    fn from_device(device: &Device) -> Self {
        let row = Self {
            lid: device.lid.as_ref().map(ToString::to_string).unwrap_or_default(),
            pn: device.pn.as_ref().map(ToString::to_string).unwrap_or_default(),
            registration_id: i64::from(device.registration_id),
            noise_key: keypair_bytes(&device.noise_key),
            identity_key: keypair_bytes(&device.identity_key),
            signed_pre_key: keypair_bytes(&device.signed_pre_key),
            signed_pre_key_id: i64::from(device.signed_pre_key_id),
            signed_pre_key_signature: device.signed_pre_key_signature.to_vec(),
            adv_secret_key: device.adv_secret_key.to_vec(),
            account: device.account.as_deref().map(account_serde::to_bytes),
            push_name: device.push_name.clone(),
            app_version_primary: i64::from(device.app_version_primary),
            app_version_secondary: i64::from(device.app_version_secondary),
            app_version_tertiary: i64::from(device.app_version_tertiary),
            app_version_last_fetched_ms: device.app_version_last_fetched_ms,
            edge_routing_info: device.edge_routing_info.clone(),
            props_hash: device.props_hash.clone(),
            next_pre_key_id: i64::from(device.next_pre_key_id),
            first_unupload_pre_key_id: i64::from(device.first_unupload_pre_key_id),
            server_has_prekeys: device.server_has_prekeys,
            nct_salt: device.nct_salt.clone(),
            cert_intermediate_key: None,
            cert_intermediate_not_before: None,
            cert_intermediate_not_after: None,
            cert_leaf_key: None,
            cert_leaf_not_before: None,
            cert_leaf_not_after: None,
            login_counter: device.login_counter,
            lid_migrated: device.lid_migrated,
            last_signed_pre_key_rotation_ms: device.last_signed_pre_key_rotation_ms,
            read_receipts_disabled: device.read_receipts_disabled,
        };
        row.with_cert_chain(device.server_cert_chain.as_ref())
    }

    /// The row with its six cert columns set from `chain` (all null for `None`): the one
    /// mapping of a cached cert chain to columns, shared by `save` and the SQLite import.
    pub(crate) fn with_cert_chain(self, chain: Option<&CachedServerCertChain>) -> Self {
        let cert = |pick: fn(&CachedServerCertChain) -> &CachedNoiseCert| chain.map(pick);
        let intermediate = cert(|c| &c.intermediate);
        let leaf = cert(|c| &c.leaf);
        Self {
            cert_intermediate_key: intermediate.map(|c| c.key.to_vec()),
            cert_intermediate_not_before: intermediate.map(|c| c.not_before),
            cert_intermediate_not_after: intermediate.map(|c| c.not_after),
            cert_leaf_key: leaf.map(|c| c.key.to_vec()),
            cert_leaf_not_before: leaf.map(|c| c.not_before),
            cert_leaf_not_after: leaf.map(|c| c.not_after),
            ..self
        }
    }

    /// The cached cert chain, or `None` when it is absent or unreadable: it only saves a
    /// handshake round trip, so a bad one must not keep the device from loading (the SQLite
    /// store drops a corrupt blob the same way).
    fn cert_chain(&self) -> Option<CachedServerCertChain> {
        fn cert(
            key: Option<&Vec<u8>>,
            not_before: Option<i64>,
            not_after: Option<i64>,
        ) -> Option<CachedNoiseCert> {
            Some(CachedNoiseCert {
                key: key?.as_slice().try_into().ok()?,
                not_before: not_before?,
                not_after: not_after?,
            })
        }
        let intermediate = cert(
            self.cert_intermediate_key.as_ref(),
            self.cert_intermediate_not_before,
            self.cert_intermediate_not_after,
        );
        let leaf =
            cert(self.cert_leaf_key.as_ref(), self.cert_leaf_not_before, self.cert_leaf_not_after);
        match (intermediate, leaf) {
            (Some(intermediate), Some(leaf)) => Some(CachedServerCertChain { intermediate, leaf }),
            (None, None)
                if self.cert_intermediate_key.is_none() && self.cert_leaf_key.is_none() =>
            {
                None
            }
            _ => {
                tracing::warn!(
                    "server cert chain row is incomplete; dropping it, next connect uses XX"
                );
                None
            }
        }
    }

    pub(crate) fn into_device(self) -> Result<Device> {
        let server_cert_chain = self.cert_chain();
        let signed_pre_key_signature: [u8; 64] =
            self.signed_pre_key_signature.try_into().map_err(|_| {
                StoreError::Validation("Invalid signed_pre_key_signature length".to_string())
            })?;
        let adv_secret_key: [u8; 32] = self
            .adv_secret_key
            .try_into()
            .map_err(|_| StoreError::Validation("Invalid adv_secret_key length".to_string()))?;
        let account = self
            .account
            .map(|bytes| {
                account_serde::from_bytes(&bytes)
                    .map_err(|e| StoreError::Serialization(Box::new(e)))
            })
            .transpose()?;
        Ok(Device {
            // An empty or unparsable JID reads as unknown, as in the SQLite store.
            pn: Some(self.pn).filter(|pn| !pn.is_empty()).and_then(|pn| pn.parse().ok()),
            lid: Some(self.lid).filter(|lid| !lid.is_empty()).and_then(|lid| lid.parse().ok()),
            registration_id: to_u32(self.registration_id, "registration id")?,
            noise_key: keypair_from(&self.noise_key)?,
            identity_key: keypair_from(&self.identity_key)?,
            signed_pre_key: keypair_from(&self.signed_pre_key)?,
            signed_pre_key_id: to_u32(self.signed_pre_key_id, "signed pre-key id")?,
            signed_pre_key_signature,
            adv_secret_key,
            account: account.map(Arc::new),
            push_name: self.push_name,
            app_version_primary: to_u32(self.app_version_primary, "app version")?,
            app_version_secondary: to_u32(self.app_version_secondary, "app version")?,
            // The SQLite store reads an out-of-range tertiary version as 0 (then refetches).
            app_version_tertiary: self.app_version_tertiary.try_into().unwrap_or(0),
            app_version_last_fetched_ms: self.app_version_last_fetched_ms,
            // Runtime-only fields, never persisted: the library's defaults, as SQLite loads them.
            device_props: Arc::new(wacore::store::device::DEVICE_PROPS.clone()),
            client_profile: wacore::client_profile::ClientProfile::web(),
            nct_salt_sync_seen: false,
            edge_routing_info: self.edge_routing_info,
            props_hash: self.props_hash,
            next_pre_key_id: to_u32(self.next_pre_key_id, "next pre-key id")?,
            first_unupload_pre_key_id: to_u32(self.first_unupload_pre_key_id, "pre-key id")?,
            server_has_prekeys: self.server_has_prekeys,
            nct_salt: self.nct_salt,
            server_cert_chain,
            login_counter: self.login_counter,
            lid_migrated: self.lid_migrated,
            last_signed_pre_key_rotation_ms: self.last_signed_pre_key_rotation_ms,
            read_receipts_disabled: self.read_receipts_disabled,
        })
    }
}

/// The insert of `create` and `save`: every column, the device key first.
macro_rules! insert_device {
    () => {
        "INSERT INTO wa_device (device, lid, pn, registration_id, noise_key, identity_key, \
         signed_pre_key, signed_pre_key_id, signed_pre_key_signature, adv_secret_key, account, \
         push_name, app_version_primary, app_version_secondary, app_version_tertiary, \
         app_version_last_fetched_ms, edge_routing_info, props_hash, next_pre_key_id, \
         first_unupload_pre_key_id, server_has_prekeys, nct_salt, cert_intermediate_key, \
         cert_intermediate_not_before, cert_intermediate_not_after, cert_leaf_key, \
         cert_leaf_not_before, cert_leaf_not_after, login_counter, lid_migrated, \
         last_signed_pre_key_rotation_ms, read_receipts_disabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
    };
}

/// `create`: a plain insert, so an existing device is an error, never overwritten.
const INSERT_DEVICE: &str = concat!(insert_device!(), " RETURNING id");

/// `save`: the insert, or every column of the existing row replaced.
const UPSERT_DEVICE: &str = concat!(
    insert_device!(),
    " ON CONFLICT (device) DO UPDATE SET lid = EXCLUDED.lid, pn = EXCLUDED.pn, \
     registration_id = EXCLUDED.registration_id, noise_key = EXCLUDED.noise_key, \
     identity_key = EXCLUDED.identity_key, signed_pre_key = EXCLUDED.signed_pre_key, \
     signed_pre_key_id = EXCLUDED.signed_pre_key_id, \
     signed_pre_key_signature = EXCLUDED.signed_pre_key_signature, \
     adv_secret_key = EXCLUDED.adv_secret_key, account = EXCLUDED.account, \
     push_name = EXCLUDED.push_name, app_version_primary = EXCLUDED.app_version_primary, \
     app_version_secondary = EXCLUDED.app_version_secondary, \
     app_version_tertiary = EXCLUDED.app_version_tertiary, \
     app_version_last_fetched_ms = EXCLUDED.app_version_last_fetched_ms, \
     edge_routing_info = EXCLUDED.edge_routing_info, props_hash = EXCLUDED.props_hash, \
     next_pre_key_id = EXCLUDED.next_pre_key_id, \
     first_unupload_pre_key_id = EXCLUDED.first_unupload_pre_key_id, \
     server_has_prekeys = EXCLUDED.server_has_prekeys, nct_salt = EXCLUDED.nct_salt, \
     cert_intermediate_key = EXCLUDED.cert_intermediate_key, \
     cert_intermediate_not_before = EXCLUDED.cert_intermediate_not_before, \
     cert_intermediate_not_after = EXCLUDED.cert_intermediate_not_after, \
     cert_leaf_key = EXCLUDED.cert_leaf_key, cert_leaf_not_before = EXCLUDED.cert_leaf_not_before, \
     cert_leaf_not_after = EXCLUDED.cert_leaf_not_after, login_counter = EXCLUDED.login_counter, \
     lid_migrated = EXCLUDED.lid_migrated, \
     last_signed_pre_key_rotation_ms = EXCLUDED.last_signed_pre_key_rotation_ms, \
     read_receipts_disabled = EXCLUDED.read_receipts_disabled \
     RETURNING id"
);

impl PostgresStore {
    /// Writes `row` for this device with `sql` (INSERT_DEVICE or UPSERT_DEVICE), returning the
    /// row's generated id.
    async fn write_device(&self, sql: &'static str, row: DeviceRow) -> Result<i32> {
        write_device_row(&self.pool, sql, &self.device, row).await
    }
}

/// Inserts `row` as the device row of `device`, failing if it exists (never replacing keys):
/// the SQLite import's write, inside its transaction.
pub(crate) async fn insert_device_row<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    device: &str,
    row: DeviceRow,
) -> Result<i32> {
    write_device_row(executor, INSERT_DEVICE, device, row).await
}

/// Writes `row` for `device` with `sql` (INSERT_DEVICE or UPSERT_DEVICE) through `executor`,
/// returning the row's generated id.
async fn write_device_row<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    sql: &'static str,
    device: &str,
    row: DeviceRow,
) -> Result<i32> {
    sqlx::query_scalar(sql)
        .bind(device)
        .bind(row.lid)
        .bind(row.pn)
        .bind(row.registration_id)
        .bind(row.noise_key)
        .bind(row.identity_key)
        .bind(row.signed_pre_key)
        .bind(row.signed_pre_key_id)
        .bind(row.signed_pre_key_signature)
        .bind(row.adv_secret_key)
        .bind(row.account)
        .bind(row.push_name)
        .bind(row.app_version_primary)
        .bind(row.app_version_secondary)
        .bind(row.app_version_tertiary)
        .bind(row.app_version_last_fetched_ms)
        .bind(row.edge_routing_info)
        .bind(row.props_hash)
        .bind(row.next_pre_key_id)
        .bind(row.first_unupload_pre_key_id)
        .bind(row.server_has_prekeys)
        .bind(row.nct_salt)
        .bind(row.cert_intermediate_key)
        .bind(row.cert_intermediate_not_before)
        .bind(row.cert_intermediate_not_after)
        .bind(row.cert_leaf_key)
        .bind(row.cert_leaf_not_before)
        .bind(row.cert_leaf_not_after)
        .bind(row.login_counter)
        .bind(row.lid_migrated)
        .bind(row.last_signed_pre_key_rotation_ms)
        .bind(row.read_receipts_disabled)
        .fetch_one(executor)
        .await
        .map_err(db_err)
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.write_device(UPSERT_DEVICE, DeviceRow::from_device(device)).await?;
        Ok(())
    }

    async fn load(&self) -> Result<Option<Device>> {
        let query = self.query_as(
            "SELECT lid, pn, registration_id, noise_key, identity_key, signed_pre_key, \
                 signed_pre_key_id, signed_pre_key_signature, adv_secret_key, account, push_name, \
                 app_version_primary, app_version_secondary, app_version_tertiary, \
                 app_version_last_fetched_ms, edge_routing_info, props_hash, next_pre_key_id, \
                 first_unupload_pre_key_id, server_has_prekeys, nct_salt, cert_intermediate_key, \
                 cert_intermediate_not_before, cert_intermediate_not_after, cert_leaf_key, \
                 cert_leaf_not_before, cert_leaf_not_after, login_counter, lid_migrated, \
                 last_signed_pre_key_rotation_ms, read_receipts_disabled \
             FROM wa_device WHERE device = $1",
        );
        let row: Option<DeviceRow> = self.fetch_optional(query).await?;
        row.map(DeviceRow::into_device).transpose()
    }

    async fn exists(&self) -> Result<bool> {
        self.fetch_one(
            self.query_scalar("SELECT EXISTS (SELECT 1 FROM wa_device WHERE device = $1)"),
        )
        .await
    }

    /// Inserts a fresh device (new random keys, no account), like the SQLite store; like it,
    /// fails if the device row already exists rather than replacing its keys.
    async fn create(&self) -> Result<i32> {
        // The SQLite store writes only the fresh keys and counters of Device::new and leaves
        // everything learned later (JIDs, account, caches, flags) empty, whatever the defaults.
        let fresh = DeviceRow::from_device(&Device::new());
        let row = DeviceRow {
            lid: String::new(),
            pn: String::new(),
            account: None,
            edge_routing_info: None,
            props_hash: None,
            nct_salt: None,
            cert_intermediate_key: None,
            cert_intermediate_not_before: None,
            cert_intermediate_not_after: None,
            cert_leaf_key: None,
            cert_leaf_not_before: None,
            cert_leaf_not_after: None,
            login_counter: 0,
            lid_migrated: false,
            read_receipts_disabled: false,
            ..fresh
        };
        self.write_device(INSERT_DEVICE, row).await
    }

    /// The device's data lives in Postgres, not in this process: zero bytes, as the trait asks
    /// of remote backends.
    async fn resource_report(&self) -> StorageResourceReport {
        StorageResourceReport { memory_bytes: Some(0), ..StorageResourceReport::default() }
    }
}
