//! Is the file sound? Three depths, by what the caller can afford:
//!
//! - [`Store::cheap_check`], at every open: the schema parses, the first and
//!   the last row of every table can be reached (the b-tree's outer edges,
//!   a few page reads), and a file without a WAL holds every page its
//!   header counts (a truncated copy). A damaged page elsewhere is found
//!   when a command reads it (SQLITE_CORRUPT, reported as such).
//! - [`Store::quick_check`] (`PRAGMA quick_check`, every page's structure):
//!   the daemon at start, and `show` when an id it was asked for is not found.
//! - [`Store::integrity_check`] (`PRAGMA integrity_check`, indexes against
//!   their tables too): `status`.
//!
//! The daemon never writes into a damaged file: like journald with a
//! corrupt journal, it renames it aside with its WAL
//! ([`Store::open_for_daemon`], [`Store::set_aside_and_start_again`]) and
//! starts a new one; the kernel log's catch-up then recovers what the
//! kernel still holds.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{config::DbConfig, Connection, OpenFlags, OptionalExtension};

use super::{files, Access, Check, Sharing, Store, StoreError};

/// A damaged database the daemon moved aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    /// Where it is now (its WAL and SHM beside it, with `-wal` and `-shm`).
    pub path: PathBuf,
    /// What was wrong with it.
    pub damage: String,
}

impl StoreError {
    /// The file is damaged (as opposed to missing, locked, full or newer).
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. } | StoreError::Damaged { .. })
    }

    /// SQLITE_FULL: the file system has no room (or the file its size limit).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql { source, .. } | StoreError::Migrate { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            _ => false,
        }
    }

    /// What is wrong with a damaged file, without the advice around it.
    fn damage(&self) -> String {
        match self {
            StoreError::Corrupt { source, .. } => source.to_string(),
            StoreError::Damaged { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }
}

impl Store {
    /// The checks every open makes; see the module documentation.
    pub(super) fn cheap_check(&self) -> Result<(), StoreError> {
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| self.sql(e))?;
        for table in &tables {
            for order in ["ASC", "DESC"] {
                let sql = format!("SELECT rowid FROM \"{table}\" ORDER BY rowid {order} LIMIT 1");
                self.conn
                    .query_row(&sql, [], |row| row.get::<_, i64>(0))
                    .optional()
                    .map_err(|e| self.sql(e))?;
            }
        }
        let wal = files::with_suffix(&self.path, "-wal");
        let wal_empty = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
        if wal_empty {
            let pages: u64 = self.pragma_u64("page_count")?;
            let page_size: u64 = self.pragma_u64("page_size")?;
            let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
            if len < pages * page_size {
                return Err(StoreError::Damaged {
                    path: self.path.clone(),
                    detail: format!(
                        "the file is cut short: {len} bytes, its header counts {pages} pages of {page_size}"
                    ),
                });
            }
        }
        Ok(())
    }

    fn pragma_u64(&self, name: &str) -> Result<u64, StoreError> {
        self.conn
            .pragma_query_value(None, name, |row| row.get::<_, i64>(0))
            .map(|v| v.max(0) as u64)
            .map_err(|e| self.sql(e))
    }

    /// `PRAGMA quick_check`: every page's structure. `Err(Damaged)` names
    /// the first problems.
    pub fn quick_check(&self) -> Result<(), StoreError> {
        self.check_pragma("quick_check")
    }

    /// `PRAGMA integrity_check`: every page, and every index against its table.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        self.check_pragma("integrity_check")
    }

    fn check_pragma(&self, pragma: &str) -> Result<(), StoreError> {
        let problems: Vec<String> = self
            .conn
            .prepare(&format!("PRAGMA {pragma}(5)"))
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| self.sql(e))?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        // One line: SQLite's first row starts `*** in database main ***\n`.
        let problems: Vec<String> = problems
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| !l.starts_with("***"))
            .take(3)
            .map(str::to_owned)
            .collect();
        Err(StoreError::Damaged {
            path: self.path.clone(),
            detail: format!("{pragma}: {}", problems.join("; ")),
        })
    }

    /// The daemon's open: every page checked first; a damaged file is set
    /// aside untouched and a new one started in its place.
    pub fn open_for_daemon(path: &Path, sharing: &Sharing) -> Result<(Store, Option<SetAside>), StoreError> {
        match Store::open_checked(path, Access::ReadWrite, sharing, Check::Full) {
            Ok(store) => Ok((store, None)),
            Err(e) if e.is_damage() => {
                let aside = set_aside(path, &e)?;
                let store = Store::open_checked(path, Access::ReadWrite, sharing, Check::Cheap)?;
                Ok((store, Some(aside)))
            }
            Err(e) => Err(e),
        }
    }

    /// A store found damaged while the daemon writes (`error`): closed
    /// without a checkpoint, renamed aside, and a new one opened in its
    /// place. Should that fail, this store is left unable to write (an empty
    /// read-only database in memory), never writing somewhere it should not.
    pub fn set_aside_and_start_again(&mut self, error: &StoreError) -> Result<SetAside, StoreError> {
        let _ = self.conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        let nowhere = Connection::open_with_flags(":memory:", OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open { path: self.path.clone(), source })?;
        drop(std::mem::replace(&mut self.conn, nowhere));
        let aside = set_aside(&self.path, error)?;
        *self = Store::open_checked(&self.path, Access::ReadWrite, &self.sharing, Check::Cheap)?;
        Ok(aside)
    }
}

fn set_aside(path: &Path, error: &StoreError) -> Result<SetAside, StoreError> {
    let time = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = files::set_aside(path, &time)
        .map_err(|source| StoreError::SetAside { path: path.to_path_buf(), source })?;
    Ok(SetAside { path: aside, damage: error.damage() })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::tests::sample_kill;

    /// A store of `n` kills, closed (checkpointed into the main file).
    pub(crate) fn store_of(path: &Path, n: i32) {
        let mut store = Store::open(path, Access::ReadWrite).unwrap();
        for pid in 1..=n {
            store.insert(&sample_kill(pid, pid as u64 * 1_000)).unwrap();
        }
    }

    /// Overwrites the middle one of the pages holding `needle` (a victim's
    /// comm) with garbage after the page header: the kind of damage the
    /// cheap check cannot see (neither edge of the table), found by reading
    /// the page or by quick_check.
    pub(crate) fn damage_page_with(path: &Path, needle: &[u8]) -> usize {
        let mut bytes = std::fs::read(path).unwrap();
        let mut pages: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i / 4096)
            .collect();
        pages.dedup();
        assert!(pages.len() >= 3, "the kills span {} pages", pages.len());
        let page = pages[pages.len() / 2];
        for (i, b) in bytes[page * 4096 + 8..(page + 1) * 4096].iter_mut().enumerate() {
            *b = (i * 37 % 253) as u8;
        }
        std::fs::write(path, &bytes).unwrap();
        page
    }

    #[test]
    fn a_truncated_file_is_found_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom.db");
        store_of(&path, 200);
        let len = std::fs::metadata(&path).unwrap().len();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..(len as usize / 2)]).unwrap();
        let err = Store::open(&path, Access::ReadOnly).err().expect("damage found");
        assert!(err.is_damage(), "{err}");
        assert!(err.to_string().contains("is corrupt"), "{err}");
    }

    #[test]
    fn the_full_check_finds_a_damaged_page_and_the_daemon_sets_the_file_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom.db");
        store_of(&path, 300);
        let mut store = Store::open(&path, Access::ReadWrite).unwrap();
        store.insert(&sample_kill(1_000, 1)).unwrap();
        drop(store);
        damage_page_with(&path, b"hog (x)");
        let before = std::fs::read(&path).unwrap();
        // The reader opens (cheap check), the full check says what is wrong.
        let reader = Store::open(&path, Access::ReadOnly).unwrap();
        assert!(reader.integrity_check().unwrap_err().is_damage());
        drop(reader);

        let (mut fresh, aside) = Store::open_for_daemon(&path, &Sharing::default()).unwrap();
        let aside = aside.expect("set aside");
        assert!(aside.path.to_string_lossy().contains("oom.db~corrupt-"), "{aside:?}");
        assert_eq!(std::fs::read(&aside.path).unwrap(), before, "the damaged file is kept as it was");
        assert_eq!(fresh.kill_count().unwrap(), 0, "a new store");
        fresh.insert(&sample_kill(7, 7)).unwrap();
        assert_eq!(fresh.kill_count().unwrap(), 1);
    }

    #[test]
    fn a_store_damaged_while_running_is_set_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom.db");
        let mut store = Store::open(&path, Access::ReadWrite).unwrap();
        store.insert(&sample_kill(1, 1)).unwrap();
        let error = StoreError::Damaged { path: path.clone(), detail: "found by a test".into() };
        let aside = store.set_aside_and_start_again(&error).unwrap();
        assert_eq!(aside.damage, "found by a test");
        assert_eq!(store.kill_count().unwrap(), 0, "writing into a new file");
        store.insert(&sample_kill(2, 2)).unwrap();
        let old = Store::open(&aside.path, Access::ReadOnly).unwrap();
        assert_eq!(old.kill_count().unwrap(), 1, "the first kill is in the file set aside");
    }

    #[test]
    fn a_sound_store_is_opened_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom.db");
        store_of(&path, 3);
        let (store, aside) = Store::open_for_daemon(&path, &Sharing::default()).unwrap();
        assert_eq!((store.kill_count().unwrap(), aside), (3, None));
        store.integrity_check().unwrap();
    }
}
