//! Device files: one SQLite file per WhatsApp device, `<data-dir>/devices/<id>.db` (plus the
//! `-wal` and `-shm` files SQLite keeps beside it). A pairing attempt's device is named after the
//! channel id it will get, so a new channel's file needs no rename; files whose id is no
//! channel's are leftovers of attempts that never finished, and are removed at start.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

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
