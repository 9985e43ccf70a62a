//! The daemon's own accounting: one `daemon_runs` row per `oomrecorder run`,
//! the counters the pipeline's stages share while it runs, and the self-audit
//! `oomrecorder status` makes against the kernel's own OOM-kill count.
//!
//! The row is written only by the writer thread (the one read-write
//! connection); the reader, the kernel-log reader and the snapshotter publish
//! into [`RunCounters`] (atomics, never a wait on the disk).

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use rusqlite::{OptionalExtension, Row};

use crate::{
    kill::Kind,
    store::{Store, StoreError},
};

/// Run rows kept whatever their age: a service that restarts in a loop adds
/// one per start, and that must not grow the store without bound either.
pub const MAX_RUNS: u64 = 1_000;

/// How often the writer brings the row up to date while the daemon runs.
pub const UPDATE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The name the kernel gives the daemon's process (`/proc/<pid>/comm`), used
/// to tell the daemon from an unrelated process that reused its pid.
pub const DAEMON_COMM: &str = "oomrecorder";

#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} has no `oom_kill` counter (kernels before 4.13 lack it)")]
    NoOomKill { path: PathBuf },
}

/// The stages' counters, shared by the pipeline's threads for one run.
/// Each is set (not added to) by the one stage that owns it, except the
/// snapshot misses, added to by the snapshotter (cgroup gone) and by the
/// reader (snapshotter gone).
#[derive(Debug, Default)]
pub struct RunCounters {
    pub victims_seen: AtomicU64,
    pub events_received: AtomicU64,
    pub ringbuf_full: AtomicU64,
    pub undecodable: AtomicU64,
    pub kmsg_records: AtomicU64,
    pub kmsg_lost: AtomicU64,
    pub snapshots_missed: AtomicU64,
}

/// One `daemon_runs` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    pub id: Option<i64>,
    pub pid: u32,
    pub boot_id: String,
    pub started_ns: i64,
    pub last_update_ns: i64,
    pub stopped_ns: Option<i64>,
    pub attach_point: String,
    pub version: String,
    pub victims_seen: u64,
    pub events_received: u64,
    pub records_stored: u64,
    pub ringbuf_full: u64,
    pub undecodable: u64,
    pub kmsg_records: u64,
    pub kmsg_lost: u64,
    pub without_kernel_report: u64,
    pub snapshots_missed: u64,
    pub write_failures: u64,
    pub vmstat_oom_kill_start: Option<u64>,
    pub vmstat_oom_kill_now: Option<u64>,
}

impl Run {
    /// Copies what the other stages published into the row.
    pub fn take_counters(&mut self, counters: &RunCounters) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.victims_seen = get(&counters.victims_seen);
        self.events_received = get(&counters.events_received);
        self.ringbuf_full = get(&counters.ringbuf_full);
        self.undecodable = get(&counters.undecodable);
        self.kmsg_records = get(&counters.kmsg_records);
        self.kmsg_lost = get(&counters.kmsg_lost);
        self.snapshots_missed = get(&counters.snapshots_missed);
    }

    /// Everything this run knows it lost, all stages together.
    pub fn lost(&self) -> u64 {
        self.ringbuf_full
            + self.undecodable
            + self.kmsg_lost
            + self.without_kernel_report
            + self.snapshots_missed
            + self.write_failures
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
        let u = |name: &str| row.get::<_, i64>(name).map(|v| v as u64);
        let opt_u = |name: &str| row.get::<_, Option<i64>>(name).map(|v| v.map(|v| v as u64));
        Ok(Run {
            id: Some(row.get("id")?),
            pid: row.get::<_, i64>("pid")? as u32,
            boot_id: row.get("boot_id")?,
            started_ns: row.get("started_ns")?,
            last_update_ns: row.get("last_update_ns")?,
            stopped_ns: row.get("stopped_ns")?,
            attach_point: row.get("attach_point")?,
            version: row.get("version")?,
            victims_seen: u("victims_seen")?,
            events_received: u("events_received")?,
            records_stored: u("records_stored")?,
            ringbuf_full: u("ringbuf_full")?,
            undecodable: u("undecodable")?,
            kmsg_records: u("kmsg_records")?,
            kmsg_lost: u("kmsg_lost")?,
            without_kernel_report: u("without_kernel_report")?,
            snapshots_missed: u("snapshots_missed")?,
            write_failures: u("write_failures")?,
            vmstat_oom_kill_start: opt_u("vmstat_oom_kill_start")?,
            vmstat_oom_kill_now: opt_u("vmstat_oom_kill_now")?,
        })
    }
}

/// SQLite integers are signed; counters this large do not happen.
fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Inserts the row of a run that is starting; returns its id.
    pub fn start_run(&mut self, run: &Run) -> Result<i64, StoreError> {
        self.conn()
            .query_row(
                "INSERT INTO daemon_runs (pid, boot_id, started_ns, last_update_ns, attach_point, version,
                     vmstat_oom_kill_start, vmstat_oom_kill_now)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                (
                    i64::from(run.pid),
                    &run.boot_id,
                    run.started_ns,
                    run.last_update_ns,
                    &run.attach_point,
                    &run.version,
                    run.vmstat_oom_kill_start.map(i),
                    run.vmstat_oom_kill_now.map(i),
                ),
                |row| row.get(0),
            )
            .map_err(|e| self.sql_error(e))
    }

    /// Writes a run's counters, stop time and latest vmstat reading.
    pub fn update_run(&mut self, id: i64, run: &Run) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE daemon_runs SET last_update_ns = :last_update_ns, stopped_ns = :stopped_ns,
                     victims_seen = :victims_seen, events_received = :events_received,
                     records_stored = :records_stored, ringbuf_full = :ringbuf_full,
                     undecodable = :undecodable, kmsg_records = :kmsg_records, kmsg_lost = :kmsg_lost,
                     without_kernel_report = :without_kernel_report,
                     snapshots_missed = :snapshots_missed, write_failures = :write_failures,
                     vmstat_oom_kill_now = :vmstat_oom_kill_now
                 WHERE id = :id",
                rusqlite::named_params! {
                    ":id": id,
                    ":last_update_ns": run.last_update_ns,
                    ":stopped_ns": run.stopped_ns,
                    ":victims_seen": i(run.victims_seen),
                    ":events_received": i(run.events_received),
                    ":records_stored": i(run.records_stored),
                    ":ringbuf_full": i(run.ringbuf_full),
                    ":undecodable": i(run.undecodable),
                    ":kmsg_records": i(run.kmsg_records),
                    ":kmsg_lost": i(run.kmsg_lost),
                    ":without_kernel_report": i(run.without_kernel_report),
                    ":snapshots_missed": i(run.snapshots_missed),
                    ":write_failures": i(run.write_failures),
                    ":vmstat_oom_kill_now": run.vmstat_oom_kill_now.map(i),
                },
            )
            .map(drop)
            .map_err(|e| self.sql_error(e))
    }

    /// Deletes runs that stopped before `cutoff_ns` (when given) and all
    /// but the newest [`MAX_RUNS`]; the newest run always stays.
    pub fn prune_runs(&mut self, cutoff_ns: Option<i64>) -> Result<u64, StoreError> {
        let by_age = self
            .conn()
            .execute(
                "DELETE FROM daemon_runs WHERE COALESCE(stopped_ns, last_update_ns) < ?1
                 AND id <> (SELECT id FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT 1)",
                [cutoff_ns.unwrap_or(i64::MIN)],
            )
            .map_err(|e| self.sql_error(e))?;
        let by_count = self
            .conn()
            .execute(
                "DELETE FROM daemon_runs WHERE id IN (
                     SELECT id FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT -1 OFFSET ?1)",
                [i(MAX_RUNS)],
            )
            .map_err(|e| self.sql_error(e))?;
        Ok((by_age + by_count) as u64)
    }

    /// The run that started last, if the daemon ever ran on this database.
    pub fn latest_run(&self) -> Result<Option<Run>, StoreError> {
        self.conn()
            .query_row(
                "SELECT * FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT 1",
                [],
                Run::from_row,
            )
            .optional()
            .map_err(|e| self.sql_error(e))
    }

    /// Records of kind `kill` (not exiting-task marks) on `boot_id` with a
    /// kill time in `[from_ns, until_ns]`.
    pub fn kills_between(
        &self,
        boot_id: &str,
        from_ns: i64,
        until_ns: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.conn()
            .query_row(
                "SELECT count(*) FROM kills
                 WHERE kind = ?1 AND boot_id = ?2 AND time_ns >= ?3 AND time_ns <= ?4",
                (Kind::Kill.as_str(), boot_id, from_ns, until_ns.unwrap_or(i64::MAX)),
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql_error(e))
    }
}

/// The `oom_kill` line of `/proc/vmstat`. The kernel counts one per task it
/// kills (`count_vm_event(OOM_KILL)` in `__oom_kill_process`, mm/oom_kill.c),
/// machine-wide, memcg and global OOMs alike; a task already exiting that is
/// only marked as victim (`task_will_free_mem()` path) is not counted.
pub fn parse_vmstat_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
}

pub fn read_vmstat_oom_kill(proc_root: &Path) -> Result<u64, RunsError> {
    let path = proc_root.join("vmstat");
    let text = fs::read_to_string(&path).map_err(|source| RunsError::Read { path: path.clone(), source })?;
    parse_vmstat_oom_kill(&text).ok_or(RunsError::NoOomKill { path })
}

/// Whether `pid` is a live oomrecorder process: the pid exists and its comm
/// is the daemon's (a pid reused by another program is not the daemon).
pub fn is_daemon(proc_root: &Path, pid: u32) -> bool {
    fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
        .is_ok_and(|comm| comm.trim_end() == DAEMON_COMM)
}

/// The kernel's kill count since the run started against the kills recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub kernel_oom_kills: u64,
    pub recorded_kills: u64,
    /// Kills the kernel counted that have no record (never negative).
    pub missing: u64,
    pub matches: bool,
}

impl Audit {
    /// `start`/`now`: the kernel's `oom_kill` then and now. A counter that
    /// went backwards means another boot; the caller checks the boot id, so
    /// this only saturates.
    pub fn new(start: u64, now: u64, recorded: u64) -> Audit {
        let kernel_oom_kills = now.saturating_sub(start);
        Audit {
            kernel_oom_kills,
            recorded_kills: recorded,
            missing: kernel_oom_kills.saturating_sub(recorded),
            matches: kernel_oom_kills == recorded,
        }
    }

    /// The audit in one sentence.
    pub fn words(&self) -> String {
        let counted = format!(
            "the kernel counted {} since the daemon started",
            plural(self.kernel_oom_kills, "kill", "kills")
        );
        if self.matches {
            return format!("{counted}; {} recorded", plural_are(self.recorded_kills));
        }
        if self.missing > 0 {
            return format!(
                "{} the kernel counted {} missing: {counted}, {} recorded (lost before they reached the \
                 store; see the losses above and the daemon's log)",
                plural(self.missing, "kill", "kills"),
                if self.missing == 1 { "is" } else { "are" },
                self.recorded_kills
            );
        }
        let extra = self.recorded_kills - self.kernel_oom_kills;
        format!(
            "{counted}, but {} recorded: {extra} more than counted (victims marked while already \
             exiting, not yet labelled so, or a kill whose time the daemon misjudged)",
            self.recorded_kills
        )
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn plural_are(n: u64) -> String {
    format!("{n} {}", if n == 1 { "is" } else { "are" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Access;

    #[test]
    fn vmstat_oom_kill_is_read_from_its_own_line() {
        let text = "nr_free_pages 12\noom_kill_other 9\noom_kill 53\npgfault 7\n";
        assert_eq!(parse_vmstat_oom_kill(text), Some(53));
        assert_eq!(parse_vmstat_oom_kill("nr_free_pages 12\n"), None);
    }

    #[test]
    fn the_audit_counts_kills_since_start_and_names_the_difference() {
        let ok = Audit::new(100, 153, 53);
        assert_eq!(ok, Audit { kernel_oom_kills: 53, recorded_kills: 53, missing: 0, matches: true });
        assert_eq!(ok.words(), "the kernel counted 53 kills since the daemon started; 53 are recorded");

        let short = Audit::new(100, 153, 51);
        assert_eq!((short.missing, short.matches), (2, false));
        assert!(short.words().starts_with("2 kills the kernel counted are missing"), "{}", short.words());

        let extra = Audit::new(7, 8, 2);
        assert_eq!((extra.missing, extra.matches), (0, false));
        assert!(extra.words().contains("1 more than counted"), "{}", extra.words());

        // A counter read on another boot (smaller) does not wrap.
        assert_eq!(Audit::new(10, 3, 0).kernel_oom_kills, 0);
        assert!(Audit::new(0, 1, 1).words().contains("1 kill since"));
    }

    #[test]
    fn losses_add_up_over_every_stage() {
        let run = Run {
            ringbuf_full: 1,
            undecodable: 2,
            kmsg_lost: 3,
            without_kernel_report: 4,
            snapshots_missed: 5,
            write_failures: 6,
            kmsg_records: 100,
            ..Run::default()
        };
        assert_eq!(run.lost(), 21);
    }

    #[test]
    fn the_run_row_round_trips_and_the_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        assert_eq!(store.latest_run().unwrap(), None);
        let first = Run {
            pid: 10,
            boot_id: "b".into(),
            started_ns: 1_000,
            last_update_ns: 1_000,
            attach_point: "raw_tracepoint".into(),
            version: "0.1.0".into(),
            vmstat_oom_kill_start: Some(5),
            vmstat_oom_kill_now: Some(5),
            ..Run::default()
        };
        let id1 = store.start_run(&first).unwrap();
        let second = Run { pid: 11, started_ns: 2_000, last_update_ns: 2_000, ..first.clone() };
        let id2 = store.start_run(&second).unwrap();
        let counters = RunCounters::default();
        counters.events_received.store(7, Ordering::Relaxed);
        counters.snapshots_missed.store(1, Ordering::Relaxed);
        let mut updated = Run {
            last_update_ns: 3_000,
            stopped_ns: Some(3_000),
            records_stored: 7,
            without_kernel_report: 2,
            vmstat_oom_kill_now: Some(12),
            ..second.clone()
        };
        updated.take_counters(&counters);
        store.update_run(id2, &updated).unwrap();
        assert_eq!(store.latest_run().unwrap(), Some(Run { id: Some(id2), ..updated }));
        assert_ne!(id1, id2);
    }

    #[test]
    fn old_runs_go_but_the_newest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        for started_ns in [100, 200] {
            let run = Run {
                started_ns,
                last_update_ns: started_ns,
                stopped_ns: Some(started_ns + 1),
                ..Run::default()
            };
            let id = store.start_run(&run).unwrap();
            store.update_run(id, &run).unwrap();
        }
        assert_eq!(store.prune_runs(Some(150)).unwrap(), 1);
        assert_eq!(store.prune_runs(Some(1_000)).unwrap(), 0, "the newest run stays");
        assert_eq!(store.latest_run().unwrap().map(|r| r.started_ns), Some(200));
    }

    #[test]
    fn only_a_process_named_oomrecorder_is_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, comm) in [(10, "oomrecorder\n"), (11, "bash\n")] {
            fs::create_dir_all(dir.path().join(pid.to_string())).unwrap();
            fs::write(dir.path().join(pid.to_string()).join("comm"), comm).unwrap();
        }
        assert!(is_daemon(dir.path(), 10));
        assert!(!is_daemon(dir.path(), 11), "a reused pid");
        assert!(!is_daemon(dir.path(), 12), "no such process");
    }
}
