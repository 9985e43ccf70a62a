//! The SQLite store: one typed API over the `kills` and `losses` tables.
//!
//! Schema changes are the numbered files in `migrations/`, embedded here and
//! applied in order; the applied version is SQLite's `user_version`. A file
//! whose version is newer than this binary knows is refused before anything is
//! written to it (a downgrade must never rewrite a newer schema).

use std::path::{Path, PathBuf};

use rusqlite::{named_params, Connection, OpenFlags, OptionalExtension, Row};

use crate::kill::{Kill, Source, Trigger, Victim};

/// The migrations, in order: entry `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[("001_kills.sql", include_str!("../../migrations/001_kills.sql"))];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

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
    #[error("database {path}: row {id} has a malformed `sources` value {value:?}")]
    BadSources { path: PathBuf, id: i64, value: String },
}

/// Whether the caller writes (the daemon) or only reads (the CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

/// What `list` selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// At most this many rows, newest first.
    pub limit: Option<u32>,
}

/// Something the daemon knows it did not record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub time_ns: i64,
    pub boot_id: String,
    pub reason: &'static str,
    pub count: u64,
    pub detail: Option<String>,
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
        let found: u32 = store
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|source| StoreError::Open { path: store.path.clone(), source })?;
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

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql { path: self.path.clone(), source }
    }

    /// Applies every migration after `from`, each in its own transaction with
    /// its `user_version` bump, so a crash leaves a consistent version.
    fn migrate(&mut self, from: u32) -> Result<(), StoreError> {
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = index as u32 + 1;
            let err = |source| StoreError::Migrate { path: self.path.clone(), name, source };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", version).map_err(err)?;
            tx.commit().map_err(err)?;
            log::info!("database {}: applied migration {name}", self.path.display());
        }
        Ok(())
    }

    /// Stores one kill and returns its id. The same kill stored twice (same
    /// boot, instant and pid) keeps its first row and returns that row's id.
    pub fn insert(&mut self, kill: &Kill) -> Result<i64, StoreError> {
        let sources = sources_to_json(&kill.sources);
        let inserted: Option<i64> = self
            .conn
            .query_row(
                "INSERT INTO kills (time_ns, boot_id, boot_ns, mono_ns, recorded_ns, sources,
                    victim_pid, victim_tgid, victim_comm, victim_uid, total_vm_kb, anon_rss_kb,
                    file_rss_kb, shmem_rss_kb, pgtables_kb, oom_score_adj,
                    trigger_pid, trigger_tgid, trigger_comm, cgroup, memory_limit_bytes)
                 VALUES (:time_ns, :boot_id, :boot_ns, :mono_ns, :recorded_ns, :sources,
                    :victim_pid, :victim_tgid, :victim_comm, :victim_uid, :total_vm_kb, :anon_rss_kb,
                    :file_rss_kb, :shmem_rss_kb, :pgtables_kb, :oom_score_adj,
                    :trigger_pid, :trigger_tgid, :trigger_comm, :cgroup, :memory_limit_bytes)
                 ON CONFLICT (boot_id, boot_ns, victim_pid) DO NOTHING
                 RETURNING id",
                named_params! {
                    ":time_ns": kill.time_ns,
                    ":boot_id": kill.boot_id,
                    ":boot_ns": kill.boot_ns as i64,
                    ":mono_ns": kill.mono_ns.map(|v| v as i64),
                    ":recorded_ns": kill.recorded_ns,
                    ":sources": sources,
                    ":victim_pid": kill.victim.pid,
                    ":victim_tgid": kill.victim.tgid,
                    ":victim_comm": kill.victim.comm,
                    ":victim_uid": kill.victim.uid,
                    ":total_vm_kb": kill.victim.total_vm_kb.map(|v| v as i64),
                    ":anon_rss_kb": kill.victim.anon_rss_kb.map(|v| v as i64),
                    ":file_rss_kb": kill.victim.file_rss_kb.map(|v| v as i64),
                    ":shmem_rss_kb": kill.victim.shmem_rss_kb.map(|v| v as i64),
                    ":pgtables_kb": kill.victim.pgtables_kb.map(|v| v as i64),
                    ":oom_score_adj": kill.victim.oom_score_adj,
                    ":trigger_pid": kill.trigger.pid,
                    ":trigger_tgid": kill.trigger.tgid,
                    ":trigger_comm": kill.trigger.comm,
                    ":cgroup": kill.cgroup,
                    ":memory_limit_bytes": kill.memory_limit_bytes.map(|v| v as i64),
                },
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match inserted {
            Some(id) => Ok(id),
            None => self
                .conn
                .query_row(
                    "SELECT id FROM kills WHERE boot_id = ?1 AND boot_ns = ?2 AND victim_pid = ?3",
                    (&kill.boot_id, kill.boot_ns as i64, kill.victim.pid),
                    |row| row.get(0),
                )
                .map_err(|e| self.sql(e)),
        }
    }

    pub fn record_loss(&mut self, loss: &Loss) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO losses (time_ns, boot_id, reason, count, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                (loss.time_ns, &loss.boot_id, loss.reason, loss.count as i64, &loss.detail),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Total losses recorded for one reason (all boots).
    pub fn loss_count(&self, reason: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(SUM(count), 0) FROM losses WHERE reason = ?1", [reason], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    pub fn get(&self, id: i64) -> Result<Option<Kill>, StoreError> {
        let row = self
            .conn
            .query_row("SELECT * FROM kills WHERE id = ?1", [id], |row| Ok(RawKill::from_row(row)))
            .optional()
            .map_err(|e| self.sql(e))?;
        row.transpose().map_err(|e| self.sql(e))?.map(|raw| raw.into_kill(&self.path)).transpose()
    }

    /// Kills matching `filter`, newest first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Kill>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM kills ORDER BY time_ns DESC, id DESC LIMIT ?1")
            .map_err(|e| self.sql(e))?;
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter.limit.map_or(-1, i64::from);
        let raws = stmt
            .query_map([limit], |row| Ok(RawKill::from_row(row)))
            .map_err(|e| self.sql(e))?
            .map(|r| r.and_then(|inner| inner))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        raws.into_iter().map(|raw| raw.into_kill(&self.path)).collect()
    }

    /// Deletes kills (and loss records) whose wall-clock time is before
    /// `cutoff_ns`, in one transaction; returns how many kills went.
    pub fn prune_older_than(&mut self, cutoff_ns: i64) -> Result<u64, StoreError> {
        let tx =
            self.conn.transaction().map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
        let result = tx
            .execute("DELETE FROM kills WHERE time_ns < ?1", [cutoff_ns])
            .and_then(|kills| tx.execute("DELETE FROM losses WHERE time_ns < ?1", [cutoff_ns]).map(|_| kills))
            .and_then(|kills| tx.commit().map(|()| kills as u64));
        result.map_err(|e| self.sql(e))
    }
}

fn sources_to_json(sources: &[Source]) -> String {
    serde_json::to_string(&sources.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// A `kills` row before its `sources` JSON is checked.
struct RawKill {
    kill: Kill,
    sources: String,
}

impl RawKill {
    /// The one row-mapping function, by column name.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawKill> {
        let u64_opt = |name: &str| row.get::<_, Option<i64>>(name).map(|v| v.map(|v| v as u64));
        Ok(RawKill {
            sources: row.get("sources")?,
            kill: Kill {
                id: Some(row.get("id")?),
                time_ns: row.get("time_ns")?,
                boot_id: row.get("boot_id")?,
                boot_ns: row.get::<_, i64>("boot_ns")? as u64,
                mono_ns: u64_opt("mono_ns")?,
                recorded_ns: row.get("recorded_ns")?,
                sources: Vec::new(),
                victim: Victim {
                    pid: row.get("victim_pid")?,
                    tgid: row.get("victim_tgid")?,
                    comm: row.get("victim_comm")?,
                    uid: row.get("victim_uid")?,
                    total_vm_kb: u64_opt("total_vm_kb")?,
                    anon_rss_kb: u64_opt("anon_rss_kb")?,
                    file_rss_kb: u64_opt("file_rss_kb")?,
                    shmem_rss_kb: u64_opt("shmem_rss_kb")?,
                    pgtables_kb: u64_opt("pgtables_kb")?,
                    oom_score_adj: row.get("oom_score_adj")?,
                },
                trigger: Trigger {
                    pid: row.get("trigger_pid")?,
                    tgid: row.get("trigger_tgid")?,
                    comm: row.get("trigger_comm")?,
                },
                cgroup: row.get("cgroup")?,
                memory_limit_bytes: u64_opt("memory_limit_bytes")?,
            },
        })
    }

    fn into_kill(self, path: &Path) -> Result<Kill, StoreError> {
        let RawKill { mut kill, sources } = self;
        let bad = || StoreError::BadSources {
            path: path.to_path_buf(),
            id: kill.id.unwrap_or_default(),
            value: sources.clone(),
        };
        let names: Vec<String> = serde_json::from_str(&sources).map_err(|_| bad())?;
        kill.sources = names.iter().map(|n| Source::parse(n)).collect::<Option<_>>().ok_or_else(bad)?;
        Ok(kill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_kill(pid: i32, boot_ns: u64) -> Kill {
        Kill {
            id: None,
            time_ns: 1_764_000_000_000_000_000 + boot_ns as i64,
            boot_id: "0f0e0d0c-0b0a-0908-0706-050403020100".into(),
            boot_ns,
            mono_ns: Some(boot_ns - 5),
            recorded_ns: 1_764_000_000_500_000_000,
            sources: vec![Source::Ebpf],
            victim: Victim {
                pid,
                tgid: None,
                comm: Some("hog (x)".into()),
                uid: Some(0),
                total_vm_kb: Some(104_000),
                anon_rss_kb: Some(98_000),
                file_rss_kb: Some(1_200),
                shmem_rss_kb: Some(0),
                pgtables_kb: Some(240),
                oom_score_adj: Some(-17),
            },
            trigger: Trigger { pid: Some(pid), tgid: Some(pid), comm: Some("hog (x)".into()) },
            cgroup: None,
            memory_limit_bytes: None,
        }
    }

    #[test]
    fn migrations_validate_and_are_numbered_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(name.starts_with(&format!("{:03}_", index + 1)), "{name} out of order");
            conn.execute_batch(sql).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Every file in migrations/ is embedded, and nothing else.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn insert_get_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/oom.db");
        let mut store = Store::open(&path, Access::ReadWrite).unwrap();
        let first = sample_kill(100, 1_000);
        let second = Kill {
            victim: Victim { comm: None, anon_rss_kb: None, ..first.victim.clone() },
            ..sample_kill(101, 2_000)
        };
        let id1 = store.insert(&first).unwrap();
        let id2 = store.insert(&second).unwrap();
        assert_ne!(id1, id2);
        assert_eq!(store.insert(&first).unwrap(), id1, "the same kill twice keeps one row");

        let got = store.get(id1).unwrap().unwrap();
        assert_eq!(got, Kill { id: Some(id1), ..first.clone() });
        let got2 = store.get(id2).unwrap().unwrap();
        assert_eq!(got2.victim.anon_rss_kb, None, "unknown stays unknown");
        assert_eq!(store.get(id2 + 100).unwrap(), None);

        let reader = Store::open(&path, Access::ReadOnly).unwrap();
        let all = reader.list(&Filter::default()).unwrap();
        assert_eq!(all.iter().map(|k| k.id.unwrap()).collect::<Vec<_>>(), [id2, id1], "newest first");
        assert_eq!(reader.list(&Filter { limit: Some(1) }).unwrap().len(), 1);
    }

    #[test]
    fn losses_are_summed_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        for count in [3, 4] {
            let loss = Loss { time_ns: 1, boot_id: "b".into(), reason: "ringbuf_full", count, detail: None };
            store.record_loss(&loss).unwrap();
        }
        assert_eq!(store.loss_count("ringbuf_full").unwrap(), 7);
        assert_eq!(store.loss_count("decode").unwrap(), 0);
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        for access in [Access::ReadWrite, Access::ReadOnly] {
            let err = Store::open(&path, access).err().expect("a newer schema must be refused");
            assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
        assert!(!dir.path().join("future.db-wal").exists());
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        let text = b"this is not a database, and it is long enough to have a header........".repeat(10);
        std::fs::write(&path, &text).unwrap();
        let err = Store::open(&path, Access::ReadWrite).err().expect("must refuse");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), text);
    }

    #[test]
    fn prune_deletes_only_what_is_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let old = sample_kill(1, 1_000);
        let new = sample_kill(2, 9_000);
        store.insert(&old).unwrap();
        let kept = store.insert(&new).unwrap();
        let loss = |time_ns| Loss { time_ns, boot_id: "b".into(), reason: "decode", count: 1, detail: None };
        store.record_loss(&loss(old.time_ns)).unwrap();
        store.record_loss(&loss(new.time_ns)).unwrap();

        // The cutoff is exclusive: a kill exactly at it stays.
        assert_eq!(store.prune_older_than(new.time_ns).unwrap(), 1);
        let left: Vec<i64> = store.list(&Filter::default()).unwrap().iter().map(|k| k.id.unwrap()).collect();
        assert_eq!(left, [kept]);
        assert_eq!(store.loss_count("decode").unwrap(), 1);
        assert_eq!(store.prune_older_than(new.time_ns).unwrap(), 0, "nothing more to delete");
    }

    #[test]
    fn reading_a_missing_database_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let err = Store::open(&path, Access::ReadOnly).err().unwrap();
        assert!(err.to_string().contains("absent.db"), "{err}");
        assert!(!path.exists(), "a reader must not create the file");
    }
}
