//! The SQLite store: one typed API over the `kills` and `losses` tables.
//!
//! Schema changes are the numbered files in `migrations/`, embedded here and
//! applied in order; the applied version is SQLite's `user_version`. A file
//! whose version is newer than this binary knows is refused before anything is
//! written to it (a downgrade must never rewrite a newer schema).

use std::path::{Path, PathBuf};

use rusqlite::{types::Value, Connection, OpenFlags, OptionalExtension, Row};

use crate::{
    correlate,
    kill::{Kill, Kind, Oom, Source, Trigger, Victim},
};

/// The migrations, in order: entry `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_kills.sql", include_str!("../../migrations/001_kills.sql")),
    ("002_kernel_report.sql", include_str!("../../migrations/002_kernel_report.sql")),
    ("003_kernel_state.sql", include_str!("../../migrations/003_kernel_state.sql")),
    ("004_cgroup_snapshot.sql", include_str!("../../migrations/004_cgroup_snapshot.sql")),
    ("005_list_indexes.sql", include_str!("../../migrations/005_list_indexes.sql")),
    ("006_daemon_status.sql", include_str!("../../migrations/006_daemon_status.sql")),
];

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

/// What `list`, `stats` and `watch` select. `Filter::default()` is every
/// record, newest first. Each field narrows; all of them must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// At most this many rows.
    pub limit: Option<u32>,
    /// Killed at or after this instant (Unix ns); records of unknown time are left out.
    pub since_ns: Option<i64>,
    /// Killed at or before this instant (Unix ns); records of unknown time are left out.
    pub until_ns: Option<i64>,
    /// The victim's `comm`, exactly.
    pub comm: Option<String>,
    pub pid: Option<i32>,
    /// A substring of the victim's cgroup, or of the task or OOM cgroup the kernel log named.
    pub cgroup: Option<String>,
    /// A prefix of the container id (as `docker ps` shortens it), or the container's name.
    pub container: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub unit: Option<String>,
    pub boot_id: Option<String>,
    pub constraint: Option<Constraint>,
    /// Only records stored after this id (`watch`).
    pub after_id: Option<i64>,
    pub order: Order,
}

/// Which OOM: the whole machine's, or a memory cgroup's limit (the kernel's
/// `enum oom_constraint`, mm/oom_kill.c, as the `oom-kill:constraint=` line names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    Global,
    Memcg,
}

impl Constraint {
    pub fn kernel_name(self) -> &'static str {
        match self {
            Constraint::Global => "CONSTRAINT_NONE",
            Constraint::Memcg => "CONSTRAINT_MEMCG",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first; records of unknown time last.
    #[default]
    NewestFirst,
    /// The exact reverse: records of unknown time first, then oldest first.
    OldestFirst,
    /// In the order they were stored (`watch`).
    Stored,
}

impl Filter {
    /// The WHERE clause and its parameters, in order. Only fixed SQL text is
    /// built here; every user value is a bound `?` parameter.
    fn where_clause(&self) -> (String, Vec<Value>) {
        let mut clauses: Vec<&'static str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let text = |s: &String| Value::Text(s.clone());
        if let Some(ns) = self.since_ns {
            clauses.push("time_ns >= ?");
            params.push(Value::Integer(ns));
        }
        if let Some(ns) = self.until_ns {
            clauses.push("time_ns <= ?");
            params.push(Value::Integer(ns));
        }
        if let Some(comm) = &self.comm {
            clauses.push("victim_comm = ?");
            params.push(text(comm));
        }
        if let Some(pid) = self.pid {
            clauses.push("victim_pid = ?");
            params.push(Value::Integer(pid.into()));
        }
        if let Some(cgroup) = &self.cgroup {
            // instr, not LIKE: a path may hold `_` and `%`, which LIKE would
            // read as wildcards.
            clauses.push("(instr(cgroup, ?) > 0 OR instr(task_cgroup, ?) > 0 OR instr(oom_cgroup, ?) > 0)");
            params.extend([text(cgroup), text(cgroup), text(cgroup)]);
        }
        if let Some(container) = &self.container {
            clauses.push("(substr(container_id, 1, length(?)) = ? OR container_name = ?)");
            params.extend([text(container), text(container), text(container)]);
        }
        if let Some(pod) = &self.pod {
            clauses.push("pod_name = ?");
            params.push(text(pod));
        }
        if let Some(namespace) = &self.namespace {
            clauses.push("pod_namespace = ?");
            params.push(text(namespace));
        }
        if let Some(unit) = &self.unit {
            clauses.push("unit = ?");
            params.push(text(unit));
        }
        if let Some(boot_id) = &self.boot_id {
            clauses.push("boot_id = ?");
            params.push(text(boot_id));
        }
        if let Some(constraint) = self.constraint {
            clauses.push("oom_constraint = ?");
            params.push(Value::Text(constraint.kernel_name().into()));
        }
        if let Some(id) = self.after_id {
            clauses.push("id > ?");
            params.push(Value::Integer(id));
        }
        if clauses.is_empty() {
            (String::new(), params)
        } else {
            (format!(" WHERE {}", clauses.join(" AND ")), params)
        }
    }

    /// The whole SELECT `list` runs (public for the EXPLAIN QUERY PLAN test).
    pub fn list_sql(&self) -> (String, Vec<Value>) {
        let (where_clause, mut params) = self.where_clause();
        // SQLite sorts NULL below every value, so DESC puts records of
        // unknown time last without an `IS NULL` term that would keep the
        // planner from walking an index in order.
        let order = match self.order {
            Order::NewestFirst => "time_ns DESC, id DESC",
            Order::OldestFirst => "time_ns ASC, id ASC",
            Order::Stored => "id ASC",
        };
        // SQLite reads a negative LIMIT as "no limit".
        params.push(Value::Integer(self.limit.map_or(-1, i64::from)));
        (format!("SELECT * FROM kills{where_clause} ORDER BY {order} LIMIT ?"), params)
    }
}

/// Kills counted by who was killed (`stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: u64,
    pub memcg: u64,
    pub global: u64,
    /// Records that do not say (no kernel log line with the constraint).
    pub unknown_constraint: u64,
    pub by_container: Vec<Count>,
    pub by_pod: Vec<Count>,
    pub by_unit: Vec<Count>,
    pub by_comm: Vec<Count>,
}

/// One group of [`Stats`]: its name, a second name when the group has one
/// (a container's name beside its id, a pod's namespace), and its kills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub key: String,
    pub label: Option<String>,
    pub kills: u64,
}

/// The one SELECT `stats` runs (public for the EXPLAIN QUERY PLAN test):
/// only columns of the `kills_for_stats` index, so a time range is read from
/// the index alone. Counting happens in Rust in the same pass: one range
/// read instead of one GROUP BY per kind, each of which the planner would
/// rather answer by walking that kind's own index over the whole table.
pub fn stats_sql(filter: &Filter) -> (String, Vec<Value>) {
    let all = Filter { limit: None, ..filter.clone() };
    let (where_clause, params) = all.where_clause();
    (
        format!(
            "SELECT oom_constraint, container_id, container_name, pod_namespace, pod_name, unit, victim_comm \
             FROM kills{where_clause}"
        ),
        params,
    )
}

/// Counts per (key, label), the `top` largest, most kills first then by name.
#[derive(Default)]
struct Tally(std::collections::HashMap<(String, Option<String>), u64>);

impl Tally {
    fn add(&mut self, key: Option<String>, label: Option<String>) {
        if let Some(key) = key {
            *self.0.entry((key, label)).or_default() += 1;
        }
    }

    fn top(self, n: u32) -> Vec<Count> {
        let mut counts: Vec<Count> =
            self.0.into_iter().map(|((key, label), kills)| Count { key, label, kills }).collect();
        counts
            .sort_by(|a, b| b.kills.cmp(&a.kills).then_with(|| (&a.key, &a.label).cmp(&(&b.key, &b.label))));
        counts.truncate(n as usize);
        counts
    }
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

    /// For the modules that add tables of their own (`runs`): the connection
    /// and the error mapping every query here uses.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn sql_error(&self, source: rusqlite::Error) -> StoreError {
        self.sql(source)
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

    /// Stores what one source knows about a kill and returns the row it
    /// landed in. Sources of the same kill meet here (see [`crate::correlate`]):
    /// a record of the same victim on the same boot close enough in time is
    /// merged into, never duplicated; an imported kill is found again by its
    /// fingerprint.
    pub fn record(&mut self, kill: &Kill) -> Result<Recorded, StoreError> {
        match self.merge_into_partner(kill)? {
            Some(recorded) => Ok(recorded),
            None => self.insert_new(kill).map(Recorded::Inserted),
        }
    }

    /// Merges `kill` into the record of the same kill; never inserts.
    /// Returns that record's id, or `None` when there is none.
    pub fn annotate(&mut self, kill: &Kill) -> Result<Option<i64>, StoreError> {
        Ok(self.merge_into_partner(kill)?.map(Recorded::id))
    }

    fn merge_into_partner(&mut self, kill: &Kill) -> Result<Option<Recorded>, StoreError> {
        if let Some(fingerprint) = &kill.fingerprint {
            let existing: Option<i64> = self
                .conn
                .prepare_cached("SELECT id FROM kills WHERE fingerprint = ?1")
                .and_then(|mut stmt| stmt.query_row([fingerprint], |row| row.get(0)).optional())
                .map_err(|e| self.sql(e))?;
            if let Some(id) = existing {
                return Ok(Some(Recorded::Duplicate(id)));
            }
        } else if let Some(boot_id) = &kill.boot_id {
            let partners = self.query(
                "SELECT * FROM kills WHERE boot_id = ?1 AND victim_pid = ?2",
                (boot_id, kill.victim.pid),
            )?;
            let partner = partners
                .into_iter()
                .filter_map(|p| correlate::distance(&p, kill).map(|d| (d, p)))
                .min_by_key(|(d, _)| *d)
                .map(|(_, p)| p);
            if let Some(existing) = partner {
                let id = existing.id.unwrap_or_default();
                let merged = correlate::merge(&existing, kill);
                if merged == existing {
                    return Ok(Some(Recorded::Duplicate(id)));
                }
                self.update(id, &merged)?;
                return Ok(Some(Recorded::Merged(id)));
            }
        }
        Ok(None)
    }

    fn insert_new(&mut self, kill: &Kill) -> Result<i64, StoreError> {
        let columns = columns(kill);
        let names: Vec<&str> = columns.iter().map(|(n, _)| &n[1..]).collect();
        let params: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let sql =
            format!("INSERT INTO kills ({}) VALUES ({}) RETURNING id", names.join(", "), params.join(", "));
        let params = named(&columns);
        // Cached: an import stores thousands of kills with the same statement.
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        stmt.query_row(&params[..], |row| row.get(0)).map_err(|e| self.sql(e))
    }

    fn update(&mut self, id: i64, kill: &Kill) -> Result<(), StoreError> {
        let columns = columns(kill);
        let sets: Vec<String> = columns.iter().map(|(n, _)| format!("{} = {n}", &n[1..])).collect();
        let sql = format!("UPDATE kills SET {} WHERE id = :id", sets.join(", "));
        let mut params = named(&columns);
        params.push((":id", &id));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        stmt.execute(&params[..]).map(drop).map_err(|e| self.sql(e))
    }

    /// A value kept between runs (see the `state` table).
    pub fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM state WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    pub fn set_state(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
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

    /// Labels a record as a task that was marked as victim while already
    /// exiting (no kill line came for it).
    pub fn mark_exiting(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE kills SET kind = ?1 WHERE id = ?2", (Kind::Exiting.as_str(), id))
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// The last kernel-log sequence number read on `boot_id`, if any.
    pub fn kmsg_cursor(&self, boot_id: &str) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row("SELECT seq FROM kmsg_cursor WHERE boot_id = ?1", [boot_id], |row| {
                row.get::<_, i64>(0)
            })
            .optional()
            .map(|seq| seq.map(|s| s as u64))
            .map_err(|e| self.sql(e))
    }

    pub fn set_kmsg_cursor(&mut self, boot_id: &str, seq: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO kmsg_cursor (boot_id, seq) VALUES (?1, ?2)
                 ON CONFLICT (boot_id) DO UPDATE SET seq = max(seq, excluded.seq)",
                (boot_id, seq as i64),
            )
            .map(drop)
            .map_err(|e| self.sql(e))
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
        Ok(self.query("SELECT * FROM kills WHERE id = ?1", [id])?.into_iter().next())
    }

    /// How many other victims share `kill`'s memory.oom.group kill: records
    /// of the same boot naming the same group within the join window.
    pub fn group_others(&self, kill: &Kill) -> Result<Option<usize>, StoreError> {
        let (Some(group), Some(boot_id), Some(usec)) =
            (&kill.oom.group_cgroup, &kill.boot_id, kill.kmsg_usec)
        else {
            return Ok(None);
        };
        let window_us = (crate::correlate::JOIN_WINDOW_NS / 1_000) as i64;
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM kills WHERE boot_id = ?1
                   AND json_extract(oom_json, '$.group_cgroup') = ?2
                   AND abs(kmsg_usec - ?3) <= ?4 AND id IS NOT ?5",
            )
            .and_then(|mut stmt| {
                stmt.query_row((boot_id, group, usec as i64, window_us, kill.id), |row| row.get::<_, i64>(0))
            })
            .map(|n| Some(n as usize))
            .map_err(|e| self.sql(e))
    }

    /// Kills matching `filter`, in its order.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Kill>, StoreError> {
        let (sql, params) = filter.list_sql();
        self.query(&sql, rusqlite::params_from_iter(params))
    }

    /// The highest id stored (0 when empty): where `watch` starts.
    pub fn last_id(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(max(id), 0) FROM kills", [], |row| row.get(0))
            .map_err(|e| self.sql(e))
    }

    /// Boot ids with records, ordered by each boot's earliest record time
    /// (boots whose records all lack a time last): what `--boot -N` counts back in.
    pub fn boots(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT boot_id FROM kills WHERE boot_id IS NOT NULL GROUP BY boot_id \
                 ORDER BY min(time_ns) IS NULL, min(time_ns), boot_id",
            )
            .map_err(|e| self.sql(e))?;
        let boots = stmt
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(|e| self.sql(e));
        boots
    }

    /// Kills matching `filter` (its limit ignored) counted per container,
    /// pod, unit and comm (the `top` largest of each), and by constraint.
    pub fn stats(&self, filter: &Filter, top: u32) -> Result<Stats, StoreError> {
        let (sql, params) = stats_sql(filter);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(|e| self.sql(e))?;
        let mut stats = Stats::default();
        let (mut containers, mut pods, mut units, mut comms) =
            (Tally::default(), Tally::default(), Tally::default(), Tally::default());
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let text = |i: usize| row.get::<_, Option<String>>(i).map_err(|e| self.sql(e));
            stats.total += 1;
            match text(0)?.as_deref() {
                Some(c) if c == Constraint::Memcg.kernel_name() => stats.memcg += 1,
                Some(c) if c == Constraint::Global.kernel_name() => stats.global += 1,
                _ => stats.unknown_constraint += 1,
            }
            containers.add(text(1)?, text(2)?);
            // A pod is its name within its namespace.
            pods.add(text(4)?, text(3)?);
            units.add(text(5)?, None);
            comms.add(text(6)?, None);
        }
        stats.by_container = containers.top(top);
        stats.by_pod = pods.top(top);
        stats.by_unit = units.top(top);
        stats.by_comm = comms.top(top);
        Ok(stats)
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

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Kill>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.sql(e))?;
        let raws = stmt
            .query_map(params, |row| Ok(RawKill::from_row(row)))
            .map_err(|e| self.sql(e))?
            .map(|r| r.and_then(|inner| inner))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        raws.into_iter().map(|raw| raw.into_kill(&self.path)).collect()
    }

    /// Deletes kills (and loss records) whose wall-clock time is before
    /// `cutoff_ns`, in one transaction; returns how many kills went.
    /// Deletes the oldest kills beyond the newest `keep`; returns how many.
    /// Oldest by the same clock as [`Store::prune_older_than`].
    pub fn prune_beyond(&mut self, keep: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM kills WHERE id IN (
                     SELECT id FROM kills ORDER BY COALESCE(time_ns, recorded_ns) DESC, id DESC
                     LIMIT -1 OFFSET ?1)",
                [keep],
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// How many kills the store holds.
    pub fn kill_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM kills", [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    pub fn prune_older_than(&mut self, cutoff_ns: i64) -> Result<u64, StoreError> {
        let tx =
            self.conn.transaction().map_err(|e| StoreError::Sql { path: self.path.clone(), source: e })?;
        let result = tx
            // A kill of unknown time (an imported syslog line has no year)
            // ages from when it was recorded.
            .execute("DELETE FROM kills WHERE COALESCE(time_ns, recorded_ns) < ?1", [cutoff_ns])
            .and_then(|kills| tx.execute("DELETE FROM losses WHERE time_ns < ?1", [cutoff_ns]).map(|_| kills))
            .and_then(|kills| tx.commit().map(|()| kills as u64));
        result.map_err(|e| self.sql(e))
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

/// Where [`Store::record`] put a kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new row.
    Inserted(i64),
    /// Joined to the row another source made for the same kill.
    Merged(i64),
    /// Already known in full: nothing changed.
    Duplicate(i64),
}

impl Recorded {
    pub fn id(self) -> i64 {
        match self {
            Recorded::Inserted(id) | Recorded::Merged(id) | Recorded::Duplicate(id) => id,
        }
    }
}

/// Every stored column of a kill, as `:name` parameters: the one list both
/// INSERT and UPDATE are built from.
fn columns(kill: &Kill) -> Vec<(&'static str, Value)> {
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let uint = |v: Option<u64>| int(v.map(|v| v as i64));
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    let json = |v: serde_json::Value| Value::Text(v.to_string());
    let v = &kill.victim;
    let t = &kill.trigger;
    let c = kill.container.as_ref();
    let oom_json = if kill.oom == Oom::default() {
        Value::Null
    } else {
        serde_json::to_value(&kill.oom).map_or(Value::Null, json)
    };
    let report = if kill.kernel_report.is_empty() {
        Value::Null
    } else {
        json(serde_json::Value::from(kill.kernel_report.clone()))
    };
    vec![
        (":kind", Value::Text(kill.kind.as_str().into())),
        (":time_ns", int(kill.time_ns)),
        (":boot_id", text(&kill.boot_id)),
        (":boot_ns", uint(kill.boot_ns)),
        (":mono_ns", uint(kill.mono_ns)),
        (":kmsg_usec", uint(kill.kmsg_usec)),
        (":recorded_ns", Value::Integer(kill.recorded_ns)),
        (":sources", Value::Text(sources_to_json(&kill.sources))),
        (":victim_pid", Value::Integer(v.pid.into())),
        (":victim_tgid", int(v.tgid.map(i64::from))),
        (":victim_comm", text(&v.comm)),
        (":victim_uid", int(v.uid.map(i64::from))),
        (":total_vm_kb", uint(v.total_vm_kb)),
        (":anon_rss_kb", uint(v.anon_rss_kb)),
        (":file_rss_kb", uint(v.file_rss_kb)),
        (":shmem_rss_kb", uint(v.shmem_rss_kb)),
        (":pgtables_kb", uint(v.pgtables_kb)),
        (":oom_score_adj", int(v.oom_score_adj.map(i64::from))),
        (":trigger_pid", int(t.pid.map(i64::from))),
        (":trigger_tgid", int(t.tgid.map(i64::from))),
        (":trigger_comm", text(&t.comm)),
        (":trigger_uid", int(t.uid.map(i64::from))),
        (":trigger_gfp_mask", text(&t.gfp_mask)),
        (":trigger_order", int(t.order.map(i64::from))),
        (":cgroup", text(&kill.cgroup)),
        (":memory_limit_bytes", uint(kill.memory_limit_bytes)),
        (":oom_constraint", text(&kill.oom.constraint)),
        (":oom_cgroup", text(&kill.oom.oom_cgroup)),
        (":task_cgroup", text(&kill.oom.task_cgroup)),
        (":oom_json", oom_json),
        (":report_lines", report),
        (":fingerprint", text(&kill.fingerprint)),
        (":nodename", text(&kill.kernel.as_ref().and_then(|k| k.nodename.clone()))),
        (":cgroup_id", uint(kill.kernel.as_ref().and_then(|k| k.cgroup_id))),
        (
            ":kernel_json",
            kill.kernel.as_ref().and_then(|k| serde_json::to_value(k).ok()).map_or(Value::Null, json),
        ),
        (":victim_cmdline", text(&v.cmdline)),
        (":victim_exe", text(&v.exe)),
        (":container_id", text(&c.and_then(|c| c.id.clone()))),
        (":pod_uid", text(&c.and_then(|c| c.pod_uid.clone()))),
        (":pod_namespace", text(&c.and_then(|c| c.pod_namespace.clone()))),
        (":pod_name", text(&c.and_then(|c| c.pod_name.clone()))),
        (":container_name", text(&c.and_then(|c| c.container_name.clone()))),
        (":unit", text(&c.and_then(|c| c.unit.clone()))),
        (":container_json", c.and_then(|c| serde_json::to_value(c).ok()).map_or(Value::Null, json)),
        (
            ":snapshot_json",
            kill.snapshot.as_ref().and_then(|s| serde_json::to_value(s).ok()).map_or(Value::Null, json),
        ),
    ]
}

fn named<'a>(columns: &'a [(&'static str, Value)]) -> Vec<(&'static str, &'a dyn rusqlite::ToSql)> {
    columns.iter().map(|(name, value)| (*name, value as &dyn rusqlite::ToSql)).collect()
}

fn sources_to_json(sources: &[Source]) -> String {
    serde_json::to_string(&sources.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// A `kills` row before its JSON columns are checked.
struct RawKill {
    kill: Kill,
    kind: String,
    sources: String,
    oom_json: Option<String>,
    report_lines: Option<String>,
    kernel_json: Option<String>,
    container_json: Option<String>,
    snapshot_json: Option<String>,
}

impl RawKill {
    /// The one row-mapping function, by column name.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawKill> {
        let u64_opt = |name: &str| row.get::<_, Option<i64>>(name).map(|v| v.map(|v| v as u64));
        Ok(RawKill {
            kind: row.get("kind")?,
            sources: row.get("sources")?,
            oom_json: row.get("oom_json")?,
            report_lines: row.get("report_lines")?,
            kernel_json: row.get("kernel_json")?,
            container_json: row.get("container_json")?,
            snapshot_json: row.get("snapshot_json")?,
            kill: Kill {
                id: Some(row.get("id")?),
                kind: Kind::Kill,
                time_ns: row.get("time_ns")?,
                boot_id: row.get("boot_id")?,
                boot_ns: u64_opt("boot_ns")?,
                mono_ns: u64_opt("mono_ns")?,
                kmsg_usec: u64_opt("kmsg_usec")?,
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
                    cmdline: row.get("victim_cmdline")?,
                    exe: row.get("victim_exe")?,
                },
                trigger: Trigger {
                    pid: row.get("trigger_pid")?,
                    tgid: row.get("trigger_tgid")?,
                    comm: row.get("trigger_comm")?,
                    uid: row.get("trigger_uid")?,
                    gfp_mask: row.get("trigger_gfp_mask")?,
                    order: row.get("trigger_order")?,
                },
                cgroup: row.get("cgroup")?,
                memory_limit_bytes: u64_opt("memory_limit_bytes")?,
                oom: Oom::default(),
                kernel_report: Vec::new(),
                fingerprint: row.get("fingerprint")?,
                container: None,
                snapshot: None,
                kernel: None,
            },
        })
    }

    fn into_kill(self, path: &Path) -> Result<Kill, StoreError> {
        let RawKill {
            mut kill,
            kind,
            sources,
            oom_json,
            report_lines,
            kernel_json,
            container_json,
            snapshot_json,
        } = self;
        let id = kill.id.unwrap_or_default();
        let bad = |column: &'static str, value: &str| StoreError::BadColumn {
            path: path.to_path_buf(),
            id,
            column,
            value: value.to_owned(),
        };
        kill.kind = Kind::parse(&kind).ok_or_else(|| bad("kind", &kind))?;
        let names: Vec<String> = serde_json::from_str(&sources).map_err(|_| bad("sources", &sources))?;
        kill.sources = names
            .iter()
            .map(|n| Source::parse(n))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("sources", &sources))?;
        if let Some(text) = oom_json {
            kill.oom = serde_json::from_str(&text).map_err(|_| bad("oom_json", &text))?;
        }
        if let Some(text) = container_json {
            kill.container = Some(serde_json::from_str(&text).map_err(|_| bad("container_json", &text))?);
        }
        if let Some(text) = snapshot_json {
            kill.snapshot = Some(serde_json::from_str(&text).map_err(|_| bad("snapshot_json", &text))?);
        }
        if let Some(text) = kernel_json {
            kill.kernel = Some(serde_json::from_str(&text).map_err(|_| bad("kernel_json", &text))?);
        }
        if let Some(text) = report_lines {
            kill.kernel_report = serde_json::from_str(&text).map_err(|_| bad("report_lines", &text))?;
        }
        Ok(kill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_kill(pid: i32, boot_ns: u64) -> Kill {
        Kill {
            time_ns: Some(1_764_000_000_000_000_000 + boot_ns as i64),
            boot_id: Some("0f0e0d0c-0b0a-0908-0706-050403020100".into()),
            boot_ns: Some(boot_ns),
            mono_ns: Some(boot_ns.saturating_sub(5)),
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
                cmdline: None,
                exe: None,
            },
            trigger: Trigger {
                pid: Some(pid),
                tgid: Some(pid),
                comm: Some("hog (x)".into()),
                ..Trigger::default()
            },
            ..Kill::default()
        }
    }

    /// The same kill as the kernel log tells it: stamped on the log clock.
    fn from_log(kill: &Kill, usec: u64) -> Kill {
        Kill {
            boot_id: kill.boot_id.clone(),
            kmsg_usec: Some(usec),
            sources: vec![Source::Kmsg],
            victim: Victim { pid: kill.victim.pid, total_vm_kb: Some(104_000), ..Victim::default() },
            oom: Oom {
                constraint: Some("CONSTRAINT_MEMCG".into()),
                memory_stat: Some(vec![("anon".into(), "67108864".into())]),
                ..Oom::default()
            },
            kernel_report: vec!["Memory cgroup out of memory: Killed process …".into()],
            ..Kill::default()
        }
    }

    #[test]
    fn sources_of_one_kill_make_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let event = sample_kill(100, 5_000_000_000);
        let line = from_log(&event, 4_999_999);
        let id = match store.record(&event).unwrap() {
            Recorded::Inserted(id) => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(store.record(&line).unwrap(), Recorded::Merged(id));
        assert_eq!(store.record(&line).unwrap(), Recorded::Duplicate(id), "a replayed line adds nothing");
        assert_eq!(store.record(&event).unwrap(), Recorded::Duplicate(id), "a replayed event adds nothing");
        let got = store.get(id).unwrap().unwrap();
        assert_eq!(got.sources, [Source::Ebpf, Source::Kmsg]);
        assert_eq!(got.oom.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(got.oom.memory_stat, Some(vec![("anon".into(), "67108864".into())]));
        assert_eq!(got.kernel_report.len(), 1);
        assert_eq!(got.victim.anon_rss_kb, Some(98_000));

        // The log first (catch-up), then nothing else: a kmsg-only record.
        let earlier = from_log(&sample_kill(200, 1), 1_000);
        let lone = store.record(&earlier).unwrap();
        assert!(matches!(lone, Recorded::Inserted(_)));
        assert_eq!(store.get(lone.id()).unwrap().unwrap().sources, [Source::Kmsg]);

        // The reaper's figures only annotate.
        let reaped = Kill {
            oom: Oom { reaped: Some(crate::kill::Reaped::default()), ..Oom::default() },
            ..from_log(&sample_kill(300, 1), 9_000_000)
        };
        assert_eq!(store.annotate(&reaped).unwrap(), None);
        assert_eq!(store.list(&Filter::default()).unwrap().len(), 2);
    }

    #[test]
    fn imports_are_found_again_by_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let imported = Kill {
            boot_id: None,
            fingerprint: Some("abc".into()),
            sources: vec![Source::Import],
            ..from_log(&sample_kill(7, 1), 1)
        };
        let first = store.record(&imported).unwrap();
        assert!(matches!(first, Recorded::Inserted(_)));
        assert_eq!(store.record(&imported).unwrap(), Recorded::Duplicate(first.id()));
        let got = store.get(first.id()).unwrap().unwrap();
        assert_eq!((got.boot_id, got.time_ns), (None, None), "unknown stays unknown");
    }

    #[test]
    fn the_kmsg_cursor_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        assert_eq!(store.kmsg_cursor("b").unwrap(), None);
        store.set_kmsg_cursor("b", 10).unwrap();
        store.set_kmsg_cursor("b", 7).unwrap();
        assert_eq!(store.kmsg_cursor("b").unwrap(), Some(10));
        assert_eq!(store.kmsg_cursor("other").unwrap(), None);
    }

    #[test]
    fn a_version_1_database_upgrades_with_its_kills() {
        // Written by the walking skeleton's daemon: 5 real kills on 6.18.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/db/schema-v1-5-kills.db");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path, Access::ReadWrite).unwrap();
        let kills = store.list(&Filter::default()).unwrap();
        assert_eq!(kills.len(), 5);
        for kill in &kills {
            assert_eq!(kill.sources, [Source::Ebpf]);
            assert_eq!(kill.victim.comm.as_deref(), Some("demo-hog"));
            assert!(kill.boot_id.is_some() && kill.boot_ns.is_some() && kill.time_ns.is_some());
            assert_eq!(kill.kind, Kind::Kill);
        }
        let version: u32 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
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
        let id1 = store.record(&first).unwrap().id();
        let id2 = store.record(&second).unwrap().id();
        assert_ne!(id1, id2, "two eBPF events are two kills");
        assert_eq!(
            store.record(&first).unwrap(),
            Recorded::Duplicate(id1),
            "the same kill twice keeps one row"
        );

        let got = store.get(id1).unwrap().unwrap();
        assert_eq!(got, Kill { id: Some(id1), ..first.clone() });
        let got2 = store.get(id2).unwrap().unwrap();
        assert_eq!(got2.victim.anon_rss_kb, None, "unknown stays unknown");
        assert_eq!(store.get(id2 + 100).unwrap(), None);

        let reader = Store::open(&path, Access::ReadOnly).unwrap();
        let all = reader.list(&Filter::default()).unwrap();
        assert_eq!(all.iter().map(|k| k.id.unwrap()).collect::<Vec<_>>(), [id2, id1], "newest first");
        assert_eq!(reader.list(&Filter { limit: Some(1), ..Filter::default() }).unwrap().len(), 1);
    }

    #[test]
    fn kernel_state_round_trips_and_stays_null_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let state = crate::kill::KernelState {
            page_size: 4096,
            age_ms: Some(48),
            rss_pages: Some(crate::kill::RssPages { file: 439, anon: 16_320, swapents: 0, shmem: 0 }),
            nodename: Some("vm".into()),
            cgroup_path: Some("/a/b".into()),
            cgroup_id: Some(6635),
            cgroup_version: Some(1),
            memcg: vec![crate::kill::MemcgLevel {
                path: Some("/a/b".into()),
                memory_usage_bytes: 1,
                memory_limit_bytes: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let with = Kill { kernel: Some(state), ..sample_kill(1, 1_000) };
        let id = store.record(&with).unwrap().id();
        assert_eq!(store.get(id).unwrap().unwrap(), Kill { id: Some(id), ..with });
        let without = sample_kill(2, 2_000);
        let id = store.record(&without).unwrap().id();
        assert_eq!(store.get(id).unwrap().unwrap().kernel, None);
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
        let (old_ns, new_ns) = (old.time_ns.unwrap(), new.time_ns.unwrap());
        store.record(&old).unwrap();
        let kept = store.record(&new).unwrap().id();
        let loss = |time_ns| Loss { time_ns, boot_id: "b".into(), reason: "decode", count: 1, detail: None };
        store.record_loss(&loss(old_ns)).unwrap();
        store.record_loss(&loss(new_ns)).unwrap();

        // The cutoff is exclusive: a kill exactly at it stays.
        assert_eq!(store.prune_older_than(new_ns).unwrap(), 1);
        let left: Vec<i64> = store.list(&Filter::default()).unwrap().iter().map(|k| k.id.unwrap()).collect();
        assert_eq!(left, [kept]);
        assert_eq!(store.loss_count("decode").unwrap(), 1);
        assert_eq!(store.prune_older_than(new_ns).unwrap(), 0, "nothing more to delete");
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
