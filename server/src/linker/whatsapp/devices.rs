//! Device files: one SQLite file per WhatsApp device, `<data-dir>/devices/<id>.db` (plus the
//! `-wal` and `-shm` files SQLite keeps beside it). A pairing attempt's device is named after the
//! channel id it will get, so a new channel's file needs no rename; files whose id is no
//! channel's are leftovers of attempts that never finished, and are removed at start.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use keebai_wa_postgres::PostgresStore;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::store::traits::Backend;

use crate::domain::ChannelId;

const SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// The devices directory.
#[derive(Debug, Clone)]
pub struct DeviceFiles {
    dir: PathBuf,
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl DeviceFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The devices directory of a data directory (`<data-dir>/devices`).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("devices"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device's SQLite file.
    pub fn path(&self, id: &ChannelId) -> PathBuf {
        self.dir.join(format!("{id}.db"))
    }

    fn with_suffix(&self, id: &ChannelId, suffix: &str) -> PathBuf {
        self.dir.join(format!("{id}.db{suffix}"))
    }

    pub fn exists(&self, id: &ChannelId) -> bool {
        self.path(id).exists()
    }

    /// Deletes the device's files; missing ones are fine.
    pub fn remove(&self, id: &ChannelId) -> io::Result<()> {
        for suffix in SUFFIXES {
            ignore_missing(std::fs::remove_file(self.with_suffix(id, suffix)))?;
        }
        Ok(())
    }

    /// Moves a device's files to another id, replacing whatever that id had.
    pub fn rename(&self, from: &ChannelId, to: &ChannelId) -> io::Result<()> {
        self.remove(to)?;
        for suffix in SUFFIXES {
            ignore_missing(std::fs::rename(
                self.with_suffix(from, suffix),
                self.with_suffix(to, suffix),
            ))?;
        }
        Ok(())
    }

    /// Ids with a device file that are not in `known`.
    pub fn leftovers(&self, known: &HashSet<ChannelId>) -> io::Result<Vec<ChannelId>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut found = HashSet::new();
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let stem =
                SUFFIXES.iter().rev().find_map(|suffix| name.strip_suffix(&format!(".db{suffix}")));
            if let Some(id) = stem.and_then(|stem| ChannelId::parse(stem).ok()) {
                found.insert(id);
            }
        }
        Ok(found.into_iter().filter(|id| !known.contains(id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(files: &DeviceFiles, id: &ChannelId, suffix: &str) {
        std::fs::create_dir_all(files.dir()).unwrap();
        std::fs::write(files.with_suffix(id, suffix), b"x").unwrap();
    }

    #[test]
    fn remove_deletes_the_database_and_its_wal_and_shm() {
        let dir = tempfile::tempdir().unwrap();
        let files = DeviceFiles::new(dir.path().join("devices"));
        let id = ChannelId::generate();
        for suffix in SUFFIXES {
            touch(&files, &id, suffix);
        }
        files.remove(&id).unwrap();
        assert_eq!(std::fs::read_dir(files.dir()).unwrap().count(), 0);
        files.remove(&id).unwrap();
    }

    #[test]
    fn rename_moves_every_file_and_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let files = DeviceFiles::new(dir.path().to_owned());
        let (from, to) = (ChannelId::generate(), ChannelId::generate());
        touch(&files, &from, "");
        touch(&files, &from, "-wal");
        touch(&files, &to, "-shm");
        files.rename(&from, &to).unwrap();
        assert!(files.exists(&to) && files.with_suffix(&to, "-wal").exists());
        assert!(!files.with_suffix(&to, "-shm").exists(), "the old target's files are gone");
        assert!(!files.exists(&from));
    }

    #[test]
    fn leftovers_are_device_files_of_no_known_channel() {
        let dir = tempfile::tempdir().unwrap();
        let files = DeviceFiles::new(dir.path().to_owned());
        let (kept, stray) = (ChannelId::generate(), ChannelId::generate());
        touch(&files, &kept, "");
        touch(&files, &stray, "-wal");
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let known = HashSet::from([kept]);
        assert_eq!(files.leftovers(&known).unwrap(), vec![stray]);
        assert!(DeviceFiles::new(dir.path().join("missing")).leftovers(&known).unwrap().is_empty());
    }
}

/// Where devices' keys live. One server keeps a SQLite file per device in its data directory;
/// in cluster mode they are rows in Postgres (`keebai-wa-postgres`, keyed by the channel id), so
/// any server can run any channel.
#[derive(Clone, Debug)]
pub enum DeviceKeys {
    Files(DeviceFiles),
    Postgres(sqlx::PgPool),
}

/// Opening a device store whose directory is missing hangs about 30 s in whatsapp-rust 0.7;
/// the directory is created first and the open is still bounded.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl DeviceKeys {
    /// The store of device `id` (created on first use), for one client.
    pub async fn open(&self, id: &ChannelId) -> anyhow::Result<Arc<dyn Backend>> {
        match self {
            Self::Files(files) => {
                std::fs::create_dir_all(&files.dir)
                    .with_context(|| format!("creating {}", files.dir.display()))?;
                let path = files.path(id);
                let url = path.to_str().context("the device path is not UTF-8")?;
                let store = tokio::time::timeout(OPEN_TIMEOUT, SqliteStore::new(url))
                    .await
                    .context("opening the device store timed out")?
                    .map_err(|e| anyhow::anyhow!("opening the device store: {e}"))?;
                Ok(Arc::new(store))
            }
            Self::Postgres(pool) => Ok(Arc::new(
                PostgresStore::new(pool.clone(), id.as_str())
                    .map_err(|e| anyhow::anyhow!("opening the device store: {e}"))?,
            )),
        }
    }

    /// Whether device `id` has keys.
    pub async fn exists(&self, id: &ChannelId) -> anyhow::Result<bool> {
        match self {
            Self::Files(files) => Ok(files.exists(id)),
            Self::Postgres(pool) => PostgresStore::device_exists(pool, id.as_str())
                .await
                .map_err(|e| anyhow::anyhow!("reading the device store: {e}")),
        }
    }

    /// Deletes device `id`'s keys; a device without any is fine.
    pub async fn remove(&self, id: &ChannelId) -> anyhow::Result<()> {
        match self {
            Self::Files(files) => Ok(files.remove(id)?),
            Self::Postgres(pool) => PostgresStore::delete_device(pool, id.as_str())
                .await
                .map_err(|e| anyhow::anyhow!("deleting a device's keys: {e}")),
        }
    }

    /// Moves device `from`'s keys to `to`, replacing `to`'s; only while neither is open.
    pub async fn rename(&self, from: &ChannelId, to: &ChannelId) -> anyhow::Result<()> {
        match self {
            Self::Files(files) => Ok(files.rename(from, to)?),
            Self::Postgres(pool) => PostgresStore::rename_device(pool, from.as_str(), to.as_str())
                .await
                .map_err(|e| anyhow::anyhow!("moving a device's keys: {e}")),
        }
    }

    /// Devices with keys whose id is not in `known`. Only files are looked at: in cluster mode
    /// a device without a channel may be another server's pairing attempt in flight.
    pub async fn leftovers(&self, known: &HashSet<ChannelId>) -> anyhow::Result<Vec<ChannelId>> {
        match self {
            Self::Files(files) => Ok(files.leftovers(known)?),
            Self::Postgres(_) => Ok(Vec::new()),
        }
    }
}
