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

use rusqlite::{types::Value, Connection, OpenFlags};

mod filter;
mod kills;
mod migrations;
mod rows;
pub mod runs;
mod state;
mod stats;
#[cfg(test)]
mod tests;

pub use filter::{Filter, Order};
pub use kills::{Rows, Stored};
pub use migrations::{MIGRATIONS, SCHEMA_VERSION};
pub use state::Loss;
pub use stats::{stats_sql, Count, Stats};

/// How long a writer or reader waits for a lock held by another connection
/// (the CLI reading while the daemon commits) before reporting it busy.
const BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    #[error("database {path} is corrupt ({source}): check it with `sqlite3 {path} 'PRAGMA integrity_check'`; oomrecorder's queries never modify it (restore a backup, or move it aside and let the daemon start a new one)")]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    #[error("database {path}: row {id} has a malformed `{column}` value {value:?}")]
    BadColumn { path: PathBuf, id: i64, column: &'static str, value: String },
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
}

impl Store {
    /// Opens (and for `ReadWrite`, creates and migrates) the database at `path`.
    pub fn open(path: &Path, access: Access) -> Result<Store, StoreError> {
        let path_buf = path.to_path_buf();
        let flags = match access {
            Access::ReadOnly => {
                if !path.exists() {
                    return Err(StoreError::Missing { path: path_buf });
                }
                OpenFlags::SQLITE_OPEN_READ_ONLY
            }
            Access::ReadWrite => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
                }
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
            }
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|source| StoreError::Open { path: path_buf.clone(), source })?;
        let mut store = Store { conn, path: path_buf };
        store
            .conn
            .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into()))
            .map_err(|e| store.sql(e))?;

        // Read the version before any PRAGMA that writes (journal_mode=WAL
        // rewrites the header): a refused file must stay byte-for-byte as it was.
        // This read is also the first that fails on a file that is not SQLite.
        let found: u32 = store.read_user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: store.path, found, known: SCHEMA_VERSION });
        }
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
                // one to a power cut is not acceptable.
                store
                    .conn
                    .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                    .map_err(|e| store.sql(e))?;
                store.migrate(found)?;
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// Runs `work` in one transaction (one fsync for a whole import instead
    /// of one per kill); rolled back when it fails.
    pub fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.sql(e))?;
        match work(self) {
            Ok(value) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.sql(e))?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
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
