//! The `daemon_runs` table: one row per `oomrecorder run`, written only by
//! the daemon's writer (the one read-write connection), read by `status`.

use rusqlite::{OptionalExtension, Row};

use super::{Store, StoreError};
use crate::model::{
    run::{Counter, Counts, Run},
    Kind,
};

/// Run rows kept whatever their age: a service that restarts in a loop adds
/// one per start, and that must not grow the store without bound either.
pub const MAX_RUNS: u64 = 1_000;

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let opt_u = |name: &str| row.get::<_, Option<i64>>(name).map(|v| v.map(|v| v as u64));
    let mut counts = Counts::default();
    for counter in Counter::ALL {
        counts[counter] = row.get::<_, i64>(counter.names().column)? as u64;
    }
    Ok(Run {
        id: Some(row.get("id")?),
        pid: row.get::<_, i64>("pid")? as u32,
        boot_id: row.get("boot_id")?,
        started_ns: row.get("started_ns")?,
        last_update_ns: row.get("last_update_ns")?,
        stopped_ns: row.get("stopped_ns")?,
        attach_point: row.get("attach_point")?,
        version: row.get("version")?,
        counts,
        vmstat_oom_kill_start: opt_u("vmstat_oom_kill_start")?,
        vmstat_oom_kill_now: opt_u("vmstat_oom_kill_now")?,
        write_error: row.get("write_error")?,
        write_error_ns: row.get("write_error_ns")?,
    })
}

/// SQLite integers are signed; counters this large do not happen.
fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Inserts the row of a run that is starting; returns its id. Run to
    /// completion, not read back with `RETURNING` (see `Store::insert`).
    pub fn start_run(&mut self, run: &Run) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO daemon_runs (pid, boot_id, started_ns, last_update_ns, attach_point, version,
                     vmstat_oom_kill_start, vmstat_oom_kill_now)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes a run's counters, stop time and latest vmstat reading.
    pub fn update_run(&mut self, id: i64, run: &Run) -> Result<(), StoreError> {
        let sets: Vec<String> =
            Counter::ALL.iter().map(|c| format!("{0} = :{0}", c.names().column)).collect();
        let sql = format!(
            "UPDATE daemon_runs SET last_update_ns = :last_update_ns, stopped_ns = :stopped_ns,
                 vmstat_oom_kill_now = :vmstat_oom_kill_now, write_error = :write_error,
                 write_error_ns = :write_error_ns, {} WHERE id = :id",
            sets.join(", ")
        );
        let names: Vec<String> = Counter::ALL.iter().map(|c| format!(":{}", c.names().column)).collect();
        let values: Vec<i64> = Counter::ALL.iter().map(|c| i(run.counts[*c])).collect();
        let vmstat_now = run.vmstat_oom_kill_now.map(i);
        let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
            (":id", &id),
            (":last_update_ns", &run.last_update_ns),
            (":stopped_ns", &run.stopped_ns),
            (":vmstat_oom_kill_now", &vmstat_now),
            (":write_error", &run.write_error),
            (":write_error_ns", &run.write_error_ns),
        ];
        params.extend(names.iter().map(String::as_str).zip(values.iter().map(|v| v as &dyn rusqlite::ToSql)));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        stmt.execute(&params[..]).map(drop).map_err(|e| self.sql(e))
    }

    /// Deletes runs that stopped before `cutoff_ns` (when given) and all
    /// but the newest [`MAX_RUNS`]; the newest run always stays.
    pub fn prune_runs(&mut self, cutoff_ns: Option<i64>) -> Result<u64, StoreError> {
        let by_age = self
            .conn
            .execute(
                "DELETE FROM daemon_runs WHERE COALESCE(stopped_ns, last_update_ns) < ?1
                 AND id <> (SELECT id FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT 1)",
                [cutoff_ns.unwrap_or(i64::MIN)],
            )
            .map_err(|e| self.sql(e))?;
        let by_count = self
            .conn
            .execute(
                "DELETE FROM daemon_runs WHERE id IN (
                     SELECT id FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT -1 OFFSET ?1)",
                [i(MAX_RUNS)],
            )
            .map_err(|e| self.sql(e))?;
        Ok((by_age + by_count) as u64)
    }

    /// The run that started last, if the daemon ever ran on this database.
    pub fn latest_run(&self) -> Result<Option<Run>, StoreError> {
        self.conn
            .query_row(
                "SELECT * FROM daemon_runs ORDER BY started_ns DESC, id DESC LIMIT 1",
                [],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Records of kind `kill` (not exiting-task marks) on `boot_id` with a
    /// kill time in `[from_ns, until_ns]`.
    pub fn kills_between(
        &self,
        boot_id: &str,
        from_ns: i64,
        until_ns: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM kills
                 WHERE kind = ?1 AND boot_id = ?2 AND time_ns >= ?3 AND time_ns <= ?4",
                (Kind::Kill.as_str(), boot_id, from_ns, until_ns.unwrap_or(i64::MAX)),
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Access;

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
        let updated = Run {
            last_update_ns: 3_000,
            stopped_ns: Some(3_000),
            counts: Counts::default()
                .with(Counter::EventsReceived, 7)
                .with(Counter::SnapshotsMissed, 1)
                .with(Counter::RecordsStored, 7)
                .with(Counter::WithoutKernelReport, 2)
                .with(Counter::WritesPending, 4)
                .with(Counter::QueueFull, 1),
            vmstat_oom_kill_now: Some(12),
            write_error: Some("database or disk is full".into()),
            write_error_ns: Some(2_500),
            ..second.clone()
        };
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
}
