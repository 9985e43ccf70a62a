//! A kill as `kills` columns and back: the one list of columns both INSERT
//! and the per-fact UPDATEs are built from, and the one row-mapping function.

use std::path::Path;

use rusqlite::{types::Value, Row};

use super::StoreError;
use crate::model::{identity::Identity, scope, Figures, Kill, Kind, Oom, Source, Trigger, Victim};

/// Every stored column of a kill, as `:name` parameters: the one list both
/// INSERT and UPDATE are built from.
pub(super) fn columns(kill: &Kill) -> Vec<(&'static str, Value)> {
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let uint = |v: Option<u64>| int(v.map(|v| v as i64));
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    // Straight to text, never through serde_json::Value (a map per
    // object, a copy of every string): the same text, key order kept.
    fn json<T: serde::Serialize + ?Sized>(v: &T) -> Value {
        serde_json::to_string(v).map_or(Value::Null, Value::Text)
    }
    let v = &kill.victim;
    let t = &kill.trigger;
    let c = kill.container.as_ref();
    let report = if kill.kernel_report.is_empty() { Value::Null } else { json(&kill.kernel_report) };
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
        (":victim_uid", int(v.figures.uid.map(i64::from))),
        (":total_vm_kb", uint(v.figures.total_vm_kb)),
        (":anon_rss_kb", uint(v.figures.anon_rss_kb)),
        (":file_rss_kb", uint(v.figures.file_rss_kb)),
        (":shmem_rss_kb", uint(v.figures.shmem_rss_kb)),
        (":pgtables_kb", uint(v.figures.pgtables_kb)),
        (":oom_score_adj", int(v.figures.oom_score_adj.map(i64::from))),
        (":trigger_pid", int(t.pid.map(i64::from))),
        (":trigger_tgid", int(t.tgid.map(i64::from))),
        (":trigger_comm", text(&t.comm)),
        (":trigger_uid", int(t.uid.map(i64::from))),
        (":trigger_gfp_mask", text(&t.gfp_mask)),
        (":trigger_order", int(t.order.map(i64::from))),
        (":cgroup", text(&kill.cgroup)),
        (":memory_limit_bytes", uint(kill.memory_limit_bytes)),
        (":oom_constraint", text(&kill.oom.constraint)),
        (":oom_scope", text(&scope::classify(kill).map(|s| s.as_str().to_owned()))),
        (":oom_cgroup", text(&kill.oom.oom_cgroup)),
        (":task_cgroup", text(&kill.oom.task_cgroup)),
        (":oom_json", oom_json(&kill.oom)),
        (":report_lines", report),
        (":fingerprint", text(&kill.fingerprint)),
        (":nodename", text(&kill.kernel.as_ref().and_then(|k| k.nodename.clone()))),
        (":cgroup_id", uint(kill.kernel.as_ref().and_then(|k| k.cgroup_id))),
        (":kernel_json", kill.kernel.as_ref().map_or(Value::Null, json)),
        (":victim_cmdline", text(&v.cmdline)),
        (":victim_exe", text(&v.exe)),
        (":container_id", text(&c.and_then(|c| c.id.clone()))),
        (":pod_uid", text(&c.and_then(|c| c.pod_uid.clone()))),
        (":pod_namespace", text(&c.and_then(|c| c.pod_namespace.clone()))),
        (":pod_name", text(&c.and_then(|c| c.pod_name.clone()))),
        (":container_name", text(&c.and_then(|c| c.container_name.clone()))),
        (":unit", text(&c.and_then(|c| c.unit.clone()))),
        (":container_json", c.map_or(Value::Null, json)),
        (":snapshot_json", kill.snapshot.as_ref().map_or(Value::Null, json)),
        (":notes", if kill.notes.is_empty() { Value::Null } else { json(&kill.notes) }),
    ]
}

/// The columns only a record's whole view needs: the kernel's report, the
/// state read through BTF, the cgroup snapshot. A list row reads them as
/// NULL, so a long listing neither loads nor parses them.
const DETAIL_COLUMNS: [&str; 3] = ["report_lines", "kernel_json", "snapshot_json"];

/// The SELECT list of what a record's summary (a `list` row, a victim of
/// an incident) needs: every column [`RawKill::from_row`] reads, the
/// detail ones as NULL, and of the report's facts only the group kill's
/// cgroup (a report's memory.stat and task table can be kilobytes).
pub(super) fn summary_columns() -> String {
    let mut list = vec!["id".to_owned()];
    list.extend(columns(&Kill::default()).iter().map(|(name, _)| {
        let name = &name[1..];
        if DETAIL_COLUMNS.contains(&name) {
            format!("NULL AS {name}")
        } else if name == "oom_json" {
            "json_object('group_cgroup', json_extract(kills.oom_json, '$.group_cgroup')) AS oom_json"
                .to_owned()
        } else {
            format!("kills.{name}")
        }
    }));
    list.join(", ")
}

pub(super) fn sources_to_json(sources: &[Source]) -> String {
    serde_json::to_string(&sources.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// A `kills` row before its JSON columns are checked.
pub(super) struct RawKill {
    kill: Kill,
    kind: String,
    sources: String,
    oom_json: Option<String>,
    report_lines: Option<String>,
    kernel_json: Option<String>,
    container_json: Option<String>,
    /// The columns the JSON columns leave out (migration 010), put back
    /// into `oom` and `container` when those are read.
    oom_cgroups: [Option<String>; 2],
    identity: [Option<String>; IDENTITY_COLUMNS.len()],
    snapshot_json: Option<String>,
    notes: Option<String>,
}

/// The identity's names that have columns of their own, which
/// `container_json` leaves out (model::Identity): in the order
/// [`identity_names`] lists them.
pub(super) const IDENTITY_COLUMNS: [&str; 6] =
    ["container_id", "pod_uid", "pod_namespace", "pod_name", "container_name", "unit"];

/// The fields of an identity [`IDENTITY_COLUMNS`] name, in their order.
fn identity_names(c: &mut Identity) -> [&mut Option<String>; IDENTITY_COLUMNS.len()] {
    [&mut c.id, &mut c.pod_uid, &mut c.pod_namespace, &mut c.pod_name, &mut c.container_name, &mut c.unit]
}

impl RawKill {
    /// The one row-mapping function, by column name.
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<RawKill> {
        let u64_opt = |name: &str| row.get::<_, Option<i64>>(name).map(|v| v.map(|v| v as u64));
        Ok(RawKill {
            kind: row.get("kind")?,
            sources: row.get("sources")?,
            oom_json: row.get("oom_json")?,
            report_lines: row.get("report_lines")?,
            kernel_json: row.get("kernel_json")?,
            container_json: row.get("container_json")?,
            oom_cgroups: [row.get("oom_cgroup")?, row.get("task_cgroup")?],
            identity: {
                let mut values: [Option<String>; IDENTITY_COLUMNS.len()] = Default::default();
                for (value, name) in values.iter_mut().zip(IDENTITY_COLUMNS) {
                    *value = row.get(name)?;
                }
                values
            },
            snapshot_json: row.get("snapshot_json")?,
            notes: row.get("notes")?,
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
                    figures: Figures {
                        uid: row.get("victim_uid")?,
                        total_vm_kb: u64_opt("total_vm_kb")?,
                        anon_rss_kb: u64_opt("anon_rss_kb")?,
                        file_rss_kb: u64_opt("file_rss_kb")?,
                        shmem_rss_kb: u64_opt("shmem_rss_kb")?,
                        pgtables_kb: u64_opt("pgtables_kb")?,
                        oom_score_adj: row.get("oom_score_adj")?,
                    },
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
                notes: Vec::new(),
            },
        })
    }

    pub(super) fn into_kill(self, path: &Path) -> Result<Kill, StoreError> {
        let RawKill {
            mut kill,
            kind,
            sources,
            oom_json,
            report_lines,
            kernel_json,
            container_json,
            oom_cgroups: [oom_cgroup, task_cgroup],
            identity,
            snapshot_json,
            notes,
        } = self;
        let id = kill.id.unwrap_or_default();
        let bad = |column: &'static str, value: &str| StoreError::BadColumn {
            path: path.to_path_buf(),
            id,
            column,
            value: value.to_owned(),
        };
        kill.kind = Kind::parse(&kind).ok_or_else(|| bad("kind", &kind))?;
        kill.sources = sources_from_json(&sources).ok_or_else(|| bad("sources", &sources))?;
        if let Some(text) = oom_json {
            kill.oom = serde_json::from_str(&text).map_err(|_| bad("oom_json", &text))?;
        }
        // The columns are the record's (every write sets them with the
        // JSON); a row from before 010 has the same values in its JSON.
        kill.oom.oom_cgroup = oom_cgroup.or(kill.oom.oom_cgroup);
        kill.oom.task_cgroup = task_cgroup.or(kill.oom.task_cgroup);
        if let Some(text) = container_json {
            let mut c: Identity = serde_json::from_str(&text).map_err(|_| bad("container_json", &text))?;
            for (field, column) in identity_names(&mut c).into_iter().zip(identity) {
                *field = column.or(field.take());
            }
            kill.container = Some(c);
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
        if let Some(text) = notes {
            kill.notes = serde_json::from_str(&text).map_err(|_| bad("notes", &text))?;
        }
        Ok(kill)
    }
}

/// `sources` as stored (a JSON array of names); `None` for anything else.
pub(super) fn sources_from_json(text: &str) -> Option<Vec<Source>> {
    let names: Vec<String> = serde_json::from_str(text).ok()?;
    names.iter().map(|n| Source::parse(n)).collect()
}

/// The report's facts as their column holds them: NULL when there are none.
pub(super) fn oom_json(oom: &Oom) -> Value {
    if *oom == Oom::default() {
        return Value::Null;
    }
    serde_json::to_string(oom).map_or(Value::Null, Value::Text)
}
