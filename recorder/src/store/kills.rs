//! The `kills` table: a record per victim, inserted by the first fact about
//! it; every later fact sets only the columns it owns ([`Store::set_event`],
//! [`Store::set_report`], [`Store::set_snapshot`], [`Store::set_reaped`]).
//! Which record a fact belongs to is the join's decision
//! (`pipeline::join`); the store only finds the candidates.

use std::{collections::HashSet, ops::ControlFlow, sync::OnceLock};

use rusqlite::{types::Value, OptionalExtension};

use super::{
    rows::{
        columns, oom_json, sources_from_json, sources_to_json, summary_columns, RawKill, IDENTITY_COLUMNS,
    },
    Filter, Store, StoreError,
};
use crate::model::{Kill, Kind, Oom, Reaped, Source};

/// How far from a victim the other victims of its group kill are looked
/// for: far beyond the pauses within one (`model::incident::GAP_NS`).
const CANDIDATES_WITHIN_NS: u64 = 60_000_000_000;

/// What the join needs of a stored kill to tell whether a new fact is
/// about it: its clocks, and the sources it already has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    pub boot_id: Option<String>,
    pub pid: i32,
    pub boot_ns: Option<u64>,
    pub mono_ns: Option<u64>,
    pub kmsg_usec: Option<u64>,
    pub sources: Vec<Source>,
}

/// How much of each record a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Everything: what `show` prints.
    Whole,
    /// What a `list` row and an incident need: the kill without its
    /// kernel report, kernel state and snapshot (those stay empty).
    Summary,
}

/// How a fact's value meets the column's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The first source to know a fact keeps it; later ones fill what is missing.
    Fill,
    /// The new value wins where it has one (the eBPF program's figures, read
    /// at the instant of the kill).
    Replace,
    /// The value given, computed from what the row held (sources, oom_json).
    Set,
}

/// Columns a victim's and trigger's facts live in.
const VICTIM: [&str; 12] = [
    "victim_tgid",
    "victim_comm",
    "victim_uid",
    "total_vm_kb",
    "anon_rss_kb",
    "file_rss_kb",
    "shmem_rss_kb",
    "pgtables_kb",
    "oom_score_adj",
    "victim_cmdline",
    "victim_exe",
    "time_ns",
];
const TRIGGER: [&str; 6] =
    ["trigger_pid", "trigger_tgid", "trigger_comm", "trigger_uid", "trigger_gfp_mask", "trigger_order"];
/// What only the eBPF program reads, and the victim's cgroup it names.
/// Its `oom_scope` comes from the counters read at the kill: the report's
/// own word, when it comes, replaces it ([`Store::set_report`]).
const EVENT: [&str; 8] = [
    "boot_ns",
    "mono_ns",
    "kernel_json",
    "nodename",
    "cgroup_id",
    "cgroup",
    "memory_limit_bytes",
    "oom_scope",
];
/// What only the kernel's report says.
const REPORT: [&str; 8] = [
    "kmsg_usec",
    "oom_constraint",
    "oom_cgroup",
    "task_cgroup",
    "report_lines",
    "fingerprint",
    "cgroup",
    "notes",
];
/// The identity's columns among [`SNAPSHOT`]'s: its JSON and the names
/// with columns of their own.
fn is_identity(column: &str) -> bool {
    column == "container_json" || IDENTITY_COLUMNS.contains(&column)
}

/// What the cgroup snapshot read, and who the victim was.
const SNAPSHOT: [&str; 12] = [
    "snapshot_json",
    "container_json",
    "container_id",
    "pod_uid",
    "pod_namespace",
    "pod_name",
    "container_name",
    "unit",
    "cgroup",
    "memory_limit_bytes",
    "victim_cmdline",
    "victim_exe",
];

impl Store {
    /// A new row for the first fact about a kill; returns its id.
    ///
    /// Run to completion with `execute`, not read with `RETURNING`: a
    /// statement whose row was read is finished by a reset, whose error
    /// rusqlite drops, and in autocommit mode that reset is the commit. A
    /// full disk then went unnoticed, and the next kill got the same id.
    pub fn insert(&mut self, kill: &Kill) -> Result<i64, StoreError> {
        // One statement for every insert, its parameters by position (in
        // the order of `columns`): an import stores thousands of kills with
        // it, and a name costs a scan of the statement's 48 names to bind.
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let names: Vec<&str> = columns(&Kill::default()).iter().map(|(n, _)| &n[1..]).collect();
            let places: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            format!("INSERT INTO kills ({}) VALUES ({})", names.join(", "), places.join(", "))
        });
        let columns = columns(kill);
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.sql(e))?;
        stmt.execute(rusqlite::params_from_iter(columns.iter().map(|(_, value)| value)))
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The record an imported kill with this fingerprint became, if any.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT id FROM kills WHERE fingerprint = ?1")
            .and_then(|mut stmt| stmt.query_row([fingerprint], |row| row.get(0)).optional())
            .map_err(|e| self.sql(e))
    }

    /// (pid, kernel-log stamp) of every record of `boot_id` that has a
    /// stamp: what an import asks of each kill of the running boot's log,
    /// read once instead of a query per kill.
    pub fn kmsg_stamps(&self, boot_id: &str) -> Result<HashSet<(i32, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT victim_pid, kmsg_usec FROM kills WHERE boot_id = ?1 AND kmsg_usec IS NOT NULL")
            .map_err(|e| self.sql(e))?;
        let stamps = stmt
            .query_map([boot_id], |row| Ok((row.get::<_, i32>(0)?, row.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>())
            .map_err(|e| self.sql(e));
        stamps
    }

    /// The records of `pid` on `boot_id`: the only ones a fact about a kill
    /// of that victim can join.
    pub fn candidates(&self, boot_id: &str, pid: i32) -> Result<Vec<Stored>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, boot_ns, mono_ns, kmsg_usec, sources FROM kills WHERE boot_id = ?1 AND victim_pid = ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map((boot_id, pid), |row| {
                let u = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.map(|v| v as u64));
                Ok((row.get::<_, i64>(0)?, u(1)?, u(2)?, u(3)?, row.get::<_, String>(4)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(|(id, boot_ns, mono_ns, kmsg_usec, sources)| {
                let sources =
                    sources_from_json(&sources).ok_or_else(|| self.bad_column(id, "sources", &sources))?;
                Ok(Stored {
                    id,
                    boot_id: Some(boot_id.to_owned()),
                    pid,
                    boot_ns,
                    mono_ns,
                    kmsg_usec,
                    sources,
                })
            })
            .collect()
    }

    /// The eBPF program's facts about record `id`. `first_event`: the record
    /// had no event yet (it came from the kernel log): its figures, read at
    /// the kill, then win over the log's. Returns whether the row changed.
    pub fn set_event(
        &mut self,
        id: i64,
        kill: &Kill,
        first_event: bool,
        sources: &[Source],
    ) -> Result<bool, StoreError> {
        let rule = if first_event { Rule::Replace } else { Rule::Fill };
        let mut owned: Vec<(&str, Rule)> = VICTIM.iter().chain(&TRIGGER).map(|c| (*c, rule)).collect();
        owned.extend(
            EVENT
                .iter()
                .map(|c| (*c, if first_event && c.ends_with("_ns") { Rule::Replace } else { Rule::Fill })),
        );
        self.apply(id, kill, &owned, vec![("sources", Value::Text(sources_to_json(sources)))])
    }

    /// The kernel report's facts about record `id`: they fill what the
    /// record lacks, and its `Killed process` line (or its "already
    /// exiting" line) says which kind of victim it was.
    pub fn set_report(&mut self, id: i64, kill: &Kill, sources: &[Source]) -> Result<bool, StoreError> {
        // The kernel's constraint or kill line says which OOM it was, over
        // what the counters suggested (model::scope::classify's order).
        let mut owned: Vec<(&str, Rule)> = vec![("oom_scope", Rule::Replace)];
        owned.extend(VICTIM.iter().chain(&TRIGGER).chain(&REPORT).map(|c| (*c, Rule::Fill)));
        owned.push(("memory_limit_bytes", Rule::Fill));
        let mut oom = self.oom_of(id)?;
        oom.fill_from(&kill.oom);
        let mut set = vec![("sources", Value::Text(sources_to_json(sources))), ("oom_json", oom_json(&oom))];
        if kill.kmsg_usec.is_some() {
            set.push(("kind", Value::Text(kill.kind.as_str().into())));
        }
        self.apply(id, kill, &owned, set)
    }

    /// The cgroup snapshot's facts about record `id`.
    pub fn set_snapshot(&mut self, id: i64, kill: &Kill, sources: &[Source]) -> Result<bool, StoreError> {
        // Who the victim was: the snapshot's answer (the cgroup path and the
        // runtime's own files) wins over the path-only one a report may have
        // stored first (`from_report::from_kernel`), which it contains.
        let owned: Vec<(&str, Rule)> =
            SNAPSHOT.iter().map(|c| (*c, if is_identity(c) { Rule::Replace } else { Rule::Fill })).collect();
        self.apply(id, kill, &owned, vec![("sources", Value::Text(sources_to_json(sources)))])
    }

    /// The oom_reaper's figures for record `id`.
    pub fn set_reaped(&mut self, id: i64, reaped: &Reaped) -> Result<bool, StoreError> {
        let mut oom = self.oom_of(id)?;
        oom.reaped.get_or_insert_with(|| reaped.clone());
        self.apply(id, &Kill::default(), &[], vec![("oom_json", oom_json(&oom))])
    }

    /// The report facts a record already holds (one column, not the row).
    fn oom_of(&self, id: i64) -> Result<Oom, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT oom_json FROM kills WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        match text {
            Some(text) => serde_json::from_str(&text).map_err(|_| self.bad_column(id, "oom_json", &text)),
            None => Ok(Oom::default()),
        }
    }

    /// One UPDATE of the `owned` columns (values from `kill`) and the `set`
    /// ones, guarded so that it matches only when something changes: returns
    /// whether it did.
    fn apply(
        &mut self,
        id: i64,
        kill: &Kill,
        owned: &[(&str, Rule)],
        set: Vec<(&'static str, Value)>,
    ) -> Result<bool, StoreError> {
        let all = columns(kill);
        let mut values: Vec<(String, Value, Rule)> = Vec::new();
        for (column, rule) in owned {
            if values.iter().any(|(c, _, _)| c == column) {
                continue;
            }
            if let Some((_, value)) = all.iter().find(|(name, _)| &name[1..] == *column) {
                values.push(((*column).to_owned(), value.clone(), *rule));
            }
        }
        values.extend(set.into_iter().map(|(c, v)| (c.to_owned(), v, Rule::Set)));
        let expr = |column: &str, rule: Rule| match rule {
            Rule::Fill => format!("COALESCE({column}, :{column})"),
            Rule::Replace => format!("COALESCE(:{column}, {column})"),
            Rule::Set => format!(":{column}"),
        };
        let sets: Vec<String> = values.iter().map(|(c, _, r)| format!("{c} = {}", expr(c, *r))).collect();
        let changes: Vec<String> =
            values.iter().map(|(c, _, r)| format!("{c} IS NOT {}", expr(c, *r))).collect();
        let sql =
            format!("UPDATE kills SET {} WHERE id = :id AND ({})", sets.join(", "), changes.join(" OR "));
        let names: Vec<String> = values.iter().map(|(c, _, _)| format!(":{c}")).collect();
        let mut params: Vec<(&str, &dyn rusqlite::ToSql)> =
            names.iter().zip(&values).map(|(n, (_, v, _))| (n.as_str(), v as &dyn rusqlite::ToSql)).collect();
        params.push((":id", &id));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        stmt.execute(&params[..]).map(|n| n > 0).map_err(|e| self.sql(e))
    }

    fn bad_column(&self, id: i64, column: &'static str, value: &str) -> StoreError {
        StoreError::BadColumn { path: self.path.clone(), id, column, value: value.to_owned() }
    }

    /// Labels a record as a task that was marked as victim while already
    /// exiting (no kill line came for it).
    pub fn mark_exiting(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE kills SET kind = ?1 WHERE id = ?2", (Kind::Exiting.as_str(), id))
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Record `id`. When there is none though the id is within the ids
    /// recorded, every page is checked first: a damaged page can hide a
    /// row without any read failing, and "no kill with that id" would then
    /// be a lie.
    pub fn get(&self, id: i64) -> Result<Option<Kill>, StoreError> {
        let kill = self.query("SELECT * FROM kills WHERE id = ?1", [id])?.into_iter().next();
        if kill.is_none() && id > 0 && id <= self.last_id()? {
            self.quick_check()?;
        }
        Ok(kill)
    }

    /// The records that may be victims of the same memory.oom.group kill
    /// as `kill` (itself included): the same boot, the same group, close on
    /// the kernel log's clock. `model::incident::of` picks its incident
    /// from them. Empty when `kill` was no group kill's victim.
    pub fn group_candidates(&self, kill: &Kill) -> Result<Vec<Kill>, StoreError> {
        let (Some(group), Some(usec)) = (&kill.oom.group_cgroup, kill.kmsg_usec) else {
            return Ok(Vec::new());
        };
        let window_us = (CANDIDATES_WITHIN_NS / 1_000) as i64;
        let sql = format!(
            "SELECT {} FROM kills WHERE kills.boot_id IS ?1
               AND json_extract(kills.oom_json, '$.group_cgroup') = ?2
               AND kills.kmsg_usec BETWEEN ?3 - ?4 AND ?3 + ?4",
            summary_columns()
        );
        self.query(&sql, (&kill.boot_id, group, usec as i64, window_us))
    }

    /// How many other records name `kill`'s memory.oom.group within
    /// [`model::incident::GAP_NS`](crate::model::incident::GAP_NS) of it
    /// on the kernel log's clock: what the daemon says of a kill as it
    /// publishes it. A count, not [`Store::group_candidates`]' rows: the
    /// daemon asks once per victim of a 5,000-task group kill.
    pub fn group_others(&self, kill: &Kill) -> Result<Option<usize>, StoreError> {
        let (Some(group), Some(usec)) = (&kill.oom.group_cgroup, kill.kmsg_usec) else {
            return Ok(None);
        };
        let window_us = (crate::model::incident::GAP_NS / 1_000) as i64;
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM kills WHERE boot_id IS ?1
                   AND json_extract(oom_json, '$.group_cgroup') = ?2
                   AND kmsg_usec BETWEEN ?3 - ?4 AND ?3 + ?4 AND id IS NOT ?5",
            )
            .and_then(|mut stmt| {
                stmt.query_row((&kill.boot_id, group, usec as i64, window_us, kill.id), |row| {
                    row.get::<_, i64>(0)
                })
            })
            .map(|n| Some(n as usize))
            .map_err(|e| self.sql(e))
    }

    /// Kills matching `filter`, in its order.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Kill>, StoreError> {
        let mut kills = Vec::new();
        self.for_each(filter, Rows::Whole, |kill| {
            kills.push(kill);
            Ok::<_, StoreError>(ControlFlow::Continue(()))
        })?;
        Ok(kills)
    }

    /// Hands each kill matching `filter` to `each`, in the filter's order,
    /// as SQLite steps to it: nothing is collected, so a script reading
    /// 200,000 kills costs one row's memory. `each` may stop early.
    pub fn for_each<E: From<StoreError>>(
        &self,
        filter: &Filter,
        rows: Rows,
        mut each: impl FnMut(Kill) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let (sql, params) = match rows {
            Rows::Whole => filter.list_sql(),
            Rows::Summary => filter.select_sql(&summary_columns()),
        };
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let kill = RawKill::from_row(row).map_err(|e| self.sql(e))?.into_kill(&self.path)?;
            if each(kill)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Whether any record names a container, a pod, an image: the columns
    /// `watch` starts with.
    pub fn identities_seen(&self) -> Result<(bool, bool, bool), StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM kills WHERE container_id IS NOT NULL OR container_name IS NOT NULL),
                        EXISTS (SELECT 1 FROM kills WHERE pod_name IS NOT NULL),
                        EXISTS (SELECT 1 FROM kills WHERE json_extract(container_json, '$.image') IS NOT NULL)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .map_err(|e| self.sql(e))
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

    /// How many kills the store holds.
    pub fn kill_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM kills", [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }
}
