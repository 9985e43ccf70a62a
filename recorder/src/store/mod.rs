//! The SQLite store: one typed API over the database's tables, one file per
//! part: opening it (here: pragmas, errors, transactions), the schema
//! ([`migrations`]), the kills and the columns each fact owns ([`kills`],
//! [`rows`]), what `list` selects ([`filter`]), [`stats`], what is kept
//! between runs and the retention deletes ([`state`]), and the daemon's own
//! run rows ([`runs`]).
//!
//! A file whose schema is newer than this binary knows is refused before
//! anything is written to it (a downgrade must never rewrite a newer schema).

use std::path::{Path, PathBuf};

use rusqlite::{config::DbConfig, types::Value, Connection, OpenFlags};

mod files;
mod filter;
pub(crate) mod health;
mod kills;
mod migrations;
mod rows;
pub mod runs;
mod state;
mod stats;
#[cfg(test)]
mod tests;

pub use files::{who_may_read, Reserve, Sharing};
pub use filter::{Filter, Order};
pub use health::SetAside;
pub use kills::{Rows, Stored};
pub use migrations::{MIGRATIONS, SCHEMA_VERSION};
pub use state::Loss;
pub use stats::{stats_sql, Count, Stats};

/// How long a writer or reader waits for a lock held by another connection
/// (the CLI reading while the daemon commits) before reporting it busy.
const BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database path is empty: set `db` in the configuration file or --db to a file path")]
    EmptyPath,
    #[error(
        "the database path {path} is a directory: name a file in it (for example {path}/oomrecorder.db)"
    )]
    IsDirectory { path: PathBuf },
    #[error("cannot read the OOM history {path}: it is readable by {who}; run this command as root (sudo), or let a group read it with `group = \"adm\"` in /etc/oomrecorder/oomrecorder.toml")]
    NoAccess { path: PathBuf, who: String },
    #[error("no database at {path}: nothing has been recorded there (is `oomrecorder run` writing to this path? see --db)")]
    Missing { path: PathBuf },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("database {path} is not writable (read-only file or file system); the daemon needs to write it")]
    NotWritable { path: PathBuf },
    #[error("database {path} has schema version {found}, newer than this oomrecorder knows ({known}): upgrade oomrecorder; the file was left untouched")]
    TooNew { path: PathBuf, found: u32, known: u32 },
    #[error("database {path} has schema version {found}, older than this oomrecorder's {known}: start the daemon once to upgrade it")]
    TooOld { path: PathBuf, found: u32, known: u32 },
    #[error("applying migration {name} to {path}: {source}")]
    Migrate { path: PathBuf, name: &'static str, source: rusqlite::Error },
    #[error("database {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("database {path} is corrupt ({source}): check it with `sqlite3 {path} 'PRAGMA integrity_check'`; oomrecorder's queries never modify it (`oomrecorder run` sets a corrupt database aside and starts a new one)")]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    /// Damage found by a check rather than by a failing statement.
    #[error("database {path} is corrupt ({detail}): check it with `sqlite3 {path} 'PRAGMA integrity_check'`; oomrecorder's queries never modify it (`oomrecorder run` sets a corrupt database aside and starts a new one)")]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot move the damaged database {path} aside: {source}")]
    SetAside { path: PathBuf, source: std::io::Error },
    #[error("database {path}: row {id} has a malformed `{column}` value {value:?}")]
    BadColumn { path: PathBuf, id: i64, column: &'static str, value: String },
}

/// How much of the file is checked for damage when it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// The header and both edges of every table: a few page reads.
    Cheap,
    /// Every page (`PRAGMA quick_check`): what the daemon does at start.
    Full,
}

/// Whether the caller writes (the daemon) or only reads (the CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Who may read the files (kept to start a new store with the same).
    sharing: Sharing,
}

impl Store {
    /// Opens (and for `ReadWrite`, creates and migrates) the database at
    /// `path`, owner-only. A damaged file is refused before anything writes
    /// to it (the cheap check, [`Store::cheap_check`]).
    pub fn open(path: &Path, access: Access) -> Result<Store, StoreError> {
        Store::open_with(path, access, &Sharing::default())
    }

    /// As [`Store::open`]; a file the store creates gets `sharing`'s mode.
    pub fn open_with(path: &Path, access: Access, sharing: &Sharing) -> Result<Store, StoreError> {
        Store::open_checked(path, access, sharing, Check::Cheap)
    }

    fn open_checked(
        path: &Path,
        access: Access,
        sharing: &Sharing,
        check: Check,
    ) -> Result<Store, StoreError> {
        files::check_path(path)?;
        let path_buf = path.to_path_buf();
        let flags = match access {
            Access::ReadOnly => {
                files::check_readable(path)?;
                OpenFlags::SQLITE_OPEN_READ_ONLY
            }
            Access::ReadWrite => {
                files::prepare(path, sharing)?;
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
            }
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen)
                && files::check_readable(path).is_err()
            {
                return files::no_access(path);
            }
            StoreError::Open { path: path_buf.clone(), source }
        })?;
        let mut store = Store { conn, path: path_buf, sharing: sharing.clone() };
        store
            .conn
            .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into()))
            .map_err(|e| store.sql(e))?;

        // Read the version before any PRAGMA that writes (journal_mode=WAL
        // rewrites the header): a refused file must stay byte-for-byte as it was.
        // This read is also the first that fails on a file that is not SQLite.
        let checked = store.read_user_version().and_then(|found| {
            if found > SCHEMA_VERSION {
                return Err(StoreError::TooNew { path: store.path.clone(), found, known: SCHEMA_VERSION });
            }
            // Damage is looked for before anything is written, too.
            store.cheap_check()?;
            if check == Check::Full {
                store.quick_check()?;
            }
            Ok(found)
        });
        let found = match checked {
            Ok(found) => found,
            Err(e) => {
                // Closing the last connection would checkpoint the WAL into
                // the file: a refused file is left exactly as it was.
                let _ = store.conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
                return Err(e);
            }
        };
        match access {
            Access::ReadOnly => {
                if found < SCHEMA_VERSION {
                    return Err(StoreError::TooOld { path: store.path, found, known: SCHEMA_VERSION });
                }
            }
            Access::ReadWrite => {
                if store.conn.is_readonly(rusqlite::MAIN_DB).map_err(|e| store.sql(e))? {
                    return Err(StoreError::NotWritable { path: store.path });
                }
                // WAL: the CLI reads while the daemon writes. synchronous=FULL:
                // each kill is fsynced when committed; kills are rare and losing
                // one to a power cut is not acceptable. journal_size_limit=0:
                // once checkpointed, the WAL is cut back to nothing when it is
                // next reset (sqlite.org/pragma.html#pragma_journal_size_limit),
                // instead of keeping the size of its largest burst: a burst
                // (a catch-up of the kernel log, a group kill) no longer holds
                // megabytes of disk after it, and a full disk is found at the
                // next write, not once that old room is used up.
                store
                    .conn
                    .execute_batch(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 0;",
                    )
                    .map_err(|e| store.sql(e))?;
                if sharing.group.is_some() {
                    store.keep_wal_files();
                }
                store.migrate(found)?;
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the -wal and -shm files when this connection closes
    /// (SQLITE_FCNTL_PERSIST_WAL): a reader of the group may not create
    /// them in a directory only root writes, and reads a WAL database
    /// through them (SQLite's read-only -shm support).
    fn keep_wal_files(&self) {
        let mut on: std::ffi::c_int = 1;
        // SAFETY: the handle is this open connection's; "main" is a
        // NUL-terminated name; SQLITE_FCNTL_PERSIST_WAL reads and writes one
        // int through the pointer, which lives for the call.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_file_control(
                self.conn.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
                (&raw mut on).cast(),
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            log::warn!(
                "cannot keep the WAL files of {} for readers (SQLite error {rc})",
                self.path.display()
            );
        }
    }

    /// The schema version, retried while the database is busy: a reader
    /// opening while the daemon checkpoints or recovers the WAL can get
    /// SQLITE_BUSY before the busy handler is installed for that step, and a
    /// query command must never fail with "locked" because the daemon writes.
    fn read_user_version(&self) -> Result<u32, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into());
        loop {
            match self.conn.pragma_query_value(None, "user_version", |row| row.get(0)) {
                Ok(version) => return Ok(version),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(source) if is_corrupt(&self.path, &source) => {
                    return Err(StoreError::Corrupt { path: self.path.clone(), source })
                }
                Err(source) => return Err(StoreError::Open { path: self.path.clone(), source }),
            }
        }
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        if is_corrupt(&self.path, &source) {
            return StoreError::Corrupt { path: self.path.clone(), source };
        }
        StoreError::Sql { path: self.path.clone(), source }
    }

    /// Settings for storing a large batch of kills at once (`import`): a
    /// page cache of 16 MiB, so that a transaction of thousands of kills is
    /// not spilled into the WAL page by page (SQLite's default is 2 MiB;
    /// 64 MiB was no faster on 100,000 kills and cost 50 MB more),
    /// and `synchronous = NORMAL`: in WAL mode a commit then waits for no
    /// fsync, the checkpoint does; a power cut may lose the last batches,
    /// never the file's integrity (sqlite.org/pragma.html#pragma_synchronous),
    /// and the import can be run again (it adds only what is missing).
    pub fn for_bulk_writes(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA cache_size = -16384; PRAGMA synchronous = NORMAL;")
            .map_err(|e| self.sql(e))
    }

    /// Frees this connection's page cache (PRAGMA shrink_memory): between
    /// bursts a daemon holds no pages, and the next burst reads the few it
    /// needs again (from the OS page cache, without a disk read mostly).
    pub fn release_memory(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA shrink_memory") {
            log::debug!("{}: PRAGMA shrink_memory: {e}", self.path.display());
        }
    }

    /// Runs `work` in one transaction (one fsync for a whole import instead
    /// of one per kill); rolled back when it fails.
    pub fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.sql(e))?;
        let result = work(self).and_then(|value| {
            // A full disk often shows only here, when the WAL is written:
            // the caller must learn that nothing was stored.
            self.conn.execute_batch("COMMIT").map(|()| value).map_err(|e| self.sql(e))
        });
        // SQLite rolls some failures back itself (SQLITE_FULL may); roll
        // back the rest, so the next transaction starts clean.
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Tests: makes the file "full" (`PRAGMA max_page_count` at its size, so
    /// the next page it needs fails with SQLITE_FULL), or lifts that again.
    #[cfg(test)]
    pub(crate) fn fill(&self, full: bool) {
        let pages: i64 = self.conn.pragma_query_value(None, "page_count", |row| row.get(0)).unwrap();
        let limit = if full { pages } else { 1 << 30 };
        let _: i64 =
            self.conn.query_row(&format!("PRAGMA max_page_count = {limit}"), [], |row| row.get(0)).unwrap();
    }

    /// `EXPLAIN QUERY PLAN` of `sql`: one line per step (tests and the bench
    /// check that the list and stats queries use an index).
    pub fn query_plan(&self, sql: &str, params: &[Value]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(|e| self.sql(e))?;
        let plan = stmt
            .query_map(rusqlite::params_from_iter(params), |row| row.get::<_, String>("detail"))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e));
        plan
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// SQLITE_CORRUPT, or SQLITE_NOTADB from a file that starts with SQLite's
/// header (a damaged database, not some other file given by mistake).
fn is_corrupt(path: &Path, e: &rusqlite::Error) -> bool {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => true,
        Some(rusqlite::ErrorCode::NotADatabase) => {
            let mut header = [0u8; 16];
            std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
                .is_ok_and(|()| &header == b"SQLite format 3\0")
        }
        _ => false,
    }
}
