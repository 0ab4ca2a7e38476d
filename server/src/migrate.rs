//! `keebai-server migrate --to postgres://…`: a one-server install (SQLite and device files in
//! a data directory) moved into an empty Postgres database, to run as a cluster.
//!
//! All or nothing: each whatsapp device file is imported first (each in its own transaction,
//! and undone if anything later fails), then the store's rows in one transaction, which refuses
//! a database that holds data. The data directory is locked throughout, so no server writes to
//! it meanwhile, and it is only read: the install keeps working on SQLite if the move is
//! abandoned.

use std::path::Path;

use anyhow::Context;
use keebai_wa_postgres::PostgresStore;
use secrecy::SecretString;

use crate::channels::{ChannelBook, LinkerKind};
use crate::linker::whatsapp::DeviceFiles;
use crate::store::{Copied, DB_FILE, DataDirLock, Store};

/// What a migration moved.
#[derive(Debug, Clone, Copy)]
pub struct Migrated {
    pub store: Copied,
    /// Whatsapp channels whose device file was imported.
    pub devices: usize,
}

/// Moves `data_dir`'s install into the Postgres database at `to`.
pub async fn migrate(data_dir: &Path, to: &SecretString) -> anyhow::Result<Migrated> {
    let _lock = DataDirLock::acquire(data_dir)?;
    let db = data_dir.join(DB_FILE);
    anyhow::ensure!(db.exists(), "there is no store to migrate at {}", db.display());
    let source = Store::open(data_dir).await?;
    let target = Store::connect(to).await?;
    let moved = move_all(data_dir, &source, &target).await;
    source.close().await;
    target.close().await;
    moved
}

async fn move_all(data_dir: &Path, source: &Store, target: &Store) -> anyhow::Result<Migrated> {
    let pool = target.postgres().context("the target must be Postgres")?;
    PostgresStore::migrate(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrating the device store: {e}"))?;
    let files = DeviceFiles::in_data_dir(data_dir);
    let mut imported = Vec::new();
    let mut result = Ok(());
    for id in ChannelBook::new(source.clone()).ids(LinkerKind::Whatsapp).await? {
        if !files.exists(&id) {
            continue;
        }
        match PostgresStore::import_sqlite(pool, id.as_str(), &files.path(&id)).await {
            Ok(_) => imported.push(id),
            Err(error) => {
                result = Err(anyhow::anyhow!("importing the device of channel {id}: {error}"));
                break;
            }
        }
    }
    let copied = match result {
        Ok(()) => source.copy_into(target).await.map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    match copied {
        Ok(store) => Ok(Migrated { store, devices: imported.len() }),
        Err(error) => {
            for id in &imported {
                if let Err(undo) = PostgresStore::delete_device(pool, id.as_str()).await {
                    tracing::error!(channel = %id, error = %undo, "could not undo a device import");
                }
            }
            Err(error)
        }
    }
}
