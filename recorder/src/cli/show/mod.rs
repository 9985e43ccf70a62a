//! `oomrecorder show`: one kill in full, read as `coredumpctl info` reads:
//! the diagnosis, then one block that says who was killed and what ran
//! out, then the evidence ([`evidence`]).

mod evidence;

use std::{io::Write, path::Path, str::FromStr};

use clap::Args;
use serde_json::{json, Value};

use super::{exit::Exit, filter::FilterArgs, format, table};
use crate::{
    model::{
        diagnosis,
        incident::{self, Incident},
        scope::{self, OomScope},
        Kill, Kind,
    },
    store::{Access, Filter, Store},
};

/// Which record: a numeric id, or `last` for the newest (of those the
/// filters select).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    Id(i64),
    Last,
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "last" {
            return Ok(Selector::Last);
        }
        s.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Selector::Id)
            .ok_or_else(|| format!("`{s}` is not a record id (a positive number) or `last`"))
    }
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Record id (from `oomrecorder list`), or `last` [default: last]:
    /// the newest kill the filters select.
    #[arg(value_name = "ID")]
    pub id: Option<Selector>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// One JSON object for scripts.
    #[arg(long)]
    pub json: bool,
    /// Print the kernel's report whole (by default the first lines).
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("record {0} is named by its id: drop the filters, or use `show last` (or no id) with them")]
    IdWithFilters(i64),
}

/// Victims of an incident named by id in the text (the JSON has them all).
const MEMBERS_SHOWN: usize = 5;

pub fn run(db: &Path, args: &ShowArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    let selector = args.id.unwrap_or(Selector::Last);
    let filter = args.filter.filter(&store)?;
    let narrowed = filter != Filter::default();
    let newest = |filter: &Filter| store.list(&Filter { limit: Some(1), ..filter.clone() });
    let kill = match selector {
        Selector::Id(id) if narrowed => return Err(ShowError::IdWithFilters(id).into()),
        Selector::Id(id) => store.get(id)?,
        Selector::Last => newest(&filter)?.into_iter().next(),
    };
    let Some(kill) = kill else {
        let what = match selector {
            Selector::Id(id) => match newest(&Filter::default())?.first().and_then(|k| k.id) {
                Some(last) => format!("no kill with id {id} (the newest is {last})"),
                None => format!("no kill with id {id} (none are recorded)"),
            },
            Selector::Last if narrowed => "no kill matches these filters".to_owned(),
            Selector::Last => "no kills recorded yet".to_owned(),
        };
        eprintln!("oomrecorder: {what} in {}", db.display());
        return Ok(Exit::NotFound);
    };
    let incident = incident::of(&kill, store.group_candidates(&kill)?);
    let group_others = incident.group().map(|_| incident.kills().len().saturating_sub(1));
    let context = diagnosis::Context { group_others };
    let (rule, sentence) = diagnosis::diagnose(&kill, &context);
    format::to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &show_json(&kill, (rule, &sentence), &incident))?;
            writeln!(out)
        } else {
            writeln!(out, "Diagnosis: {sentence}")?;
            writeln!(out)?;
            write_summary(out, &kill, &incident)?;
            let report_with = incident.group().and(incident.id()).filter(|id| Some(*id) != kill.id);
            evidence::write(out, &kill, args.raw, report_with)
        }
    })
}

/// `show --json`: the record, its diagnosis and its incident (the keys of
/// `cli::manual::show_keys`).
pub fn show_json(kill: &Kill, (rule, sentence): (diagnosis::Rule, &str), incident: &Incident) -> Value {
    let mut detail = crate::model::json::kill_detail(kill);
    detail["diagnosis"] = json!({ "rule": rule.as_str(), "text": sentence });
    detail["incident"] = incident_json(incident);
    detail
}

/// `show --json`'s `incident`: the OOM this kill was part of (every kill
/// is an incident; a memory.oom.group kill's has all its victims).
fn incident_json(incident: &Incident) -> Value {
    let members: Vec<Value> = incident
        .kills()
        .iter()
        .map(|k| json!({ "id": k.id, "pid": k.victim.pid, "comm": k.victim.comm }))
        .collect();
    json!({
        "id": incident.id(),
        "group_cgroup": incident.group(),
        "victims": incident.kills().len(),
        "members": members,
    })
}

/// One line of the first block: the label right-aligned, as coredumpctl
/// aligns its own.
fn field(out: &mut dyn Write, label: &str, value: impl std::fmt::Display) -> std::io::Result<()> {
    writeln!(out, "{label:>14}: {value}")
}

fn text(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format::escape(v).into_owned())
}

/// Who was killed and what ran out, in one block.
fn write_summary(out: &mut dyn Write, kill: &Kill, incident: &Incident) -> std::io::Result<()> {
    let v = &kill.victim;
    let comm = text(v.comm.as_deref());
    let what = match kill.kind {
        Kind::Kill => "Kill",
        Kind::Exiting => "Exiting task marked as OOM victim (not killed)",
    };
    writeln!(
        out,
        "{what} {}: {comm} (pid {}) at {}",
        format::opt(kill.id),
        v.pid,
        format::local_time(kill.time_ns)
    )?;
    let tgid = v.tgid.filter(|t| *t != v.pid).map(|t| format!(", thread group {t}")).unwrap_or_default();
    field(out, "PID", format!("{} ({comm}){tgid}", v.pid))?;
    field(out, "UID", format::opt(v.figures.uid))?;
    field(out, "Command line", text(v.cmdline.as_deref()))?;
    field(out, "Executable", text(v.exe.as_deref()))?;
    write_identity(out, kill)?;
    field(out, "Cgroup", text(kill.cgroup.as_deref().or(kill.oom.task_cgroup.as_deref())))?;
    let scope = scope::classify(kill);
    let constraint = kill.oom.constraint.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    field(out, "OOM", format!("{}{constraint}", scope.map_or("not known", OomScope::describe)))?;
    if scope != Some(OomScope::Global) {
        let fired = diagnosis::fired(kill);
        let on = match fired.cgroup.as_deref() {
            Some(c) if Some(c) == kill.cgroup.as_deref() => ", its own cgroup's".to_owned(),
            Some(c) => format!(" on {}", format::escape(c)),
            None => String::new(),
        };
        field(out, "Limit", format!("{}{on}", format::limit(fired.limit_bytes)))?;
        let failcnt = kill.oom.failcnt.map(|n| format!(" (failcnt {n})")).unwrap_or_default();
        field(out, "Usage", format!("{} at the kill{failcnt}", format::bytes_opt(fired.usage_bytes)))?;
    }
    // cgroup v1 has no separate swap counter: its report prints memory+swap.
    let o = &kill.oom;
    if o.memsw_usage_kb.is_some() || o.memsw_limit_kb.is_some() {
        field(
            out,
            "Memory+swap",
            format!("{} of {}", format::kb(o.memsw_usage_kb), format::limit_kb(o.memsw_limit_kb)),
        )?;
    } else if o.swap_usage_kb.is_some() || o.swap_limit_kb.is_some() {
        field(
            out,
            "Swap",
            format!("{} of {}", format::kb(o.swap_usage_kb), format::limit_kb(o.swap_limit_kb)),
        )?;
    }
    let f = &v.figures;
    field(
        out,
        "RSS",
        format!(
            "anon {}, file {}, shmem {} (total VM {})",
            format::kb(f.anon_rss_kb),
            format::kb(f.file_rss_kb),
            format::kb(f.shmem_rss_kb),
            format::kb(f.total_vm_kb)
        ),
    )?;
    write_incident(out, kill, incident)?;
    let t = &kill.trigger;
    if t.pid.is_some() || t.comm.is_some() {
        let allocation =
            t.gfp_mask.as_deref().map(|g| format!(", gfp_mask={g}, order={}", format::opt(t.order)));
        let who = if t.pid == Some(v.pid) { " (the victim itself)" } else { "" };
        field(
            out,
            "Trigger",
            format!(
                "{} (pid {}){who}{}",
                text(t.comm.as_deref()),
                format::opt(t.pid),
                allocation.unwrap_or_default()
            ),
        )?;
    }
    if let Some(host) = kill.kernel.as_ref().and_then(|k| k.nodename.as_deref()) {
        field(out, "Hostname", format::escape(host))?;
    }
    let boot = kill.boot_id.as_deref().unwrap_or("unknown");
    match kill.boot_ns.or(kill.kmsg_usec.map(|us| us * 1_000)) {
        Some(ns) => field(out, "Boot", format!("{boot} (+{:.6} s)", ns as f64 / 1e9))?,
        None => field(out, "Boot", boot)?,
    }
    let sources: Vec<&str> = kill.sources.iter().map(|s| s.as_str()).collect();
    field(out, "Sources", sources.join(", "))
}

/// Container, image, pod and unit: who the victim was, in the names an
/// SRE searches by.
fn write_identity(out: &mut dyn Write, kill: &Kill) -> std::io::Result<()> {
    let Some(c) = &kill.container else { return Ok(()) };
    if let Some(name) = table::container_cell(kill) {
        let mut detail: Vec<String> = c.runtime.iter().cloned().collect();
        // The short id, unless it is already what names the container.
        if let Some(id) = c.id.as_deref().filter(|_| c.container_name.is_some()) {
            detail.push(id.chars().take(12).collect());
        }
        let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join(" ")) };
        field(out, "Container", format!("{}{detail}", format::escape(&name)))?;
    }
    if let Some(image) = &c.image {
        field(out, "Image", format::escape(image))?;
    }
    if let Some(pod) = table::pod_cell(kill) {
        let qos = c.qos.as_deref().map(|q| format!(" (QoS {q})")).unwrap_or_default();
        field(out, "Pod", format!("{}{qos}", format::escape(&pod)))?;
    }
    if let Some(unit) = &c.unit {
        let slice = c.slice.as_deref().map(|s| format!(" in {s}")).unwrap_or_default();
        field(out, "Unit", format!("{}{slice}", format::escape(unit)))?;
    }
    Ok(())
}

/// A memory.oom.group kill: the incident and its other victims.
fn write_incident(out: &mut dyn Write, kill: &Kill, incident: &Incident) -> std::io::Result<()> {
    let Some(group) = incident.group() else { return Ok(()) };
    let others: Vec<String> = incident
        .kills()
        .iter()
        .filter(|k| k.id != kill.id)
        .map(|k| format!("{} {} (id {})", k.victim.pid, text(k.victim.comm.as_deref()), format::opt(k.id)))
        .collect();
    let mut shown = others.iter().take(MEMBERS_SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if others.len() > MEMBERS_SHOWN {
        shown.push_str(&format!(", and {} more (show --json lists them all)", others.len() - MEMBERS_SHOWN));
    }
    field(
        out,
        "Incident",
        format!(
            "{}, the memory.oom.group kill of {}: {} victim(s)",
            format::opt(incident.id()),
            format::escape(group),
            incident.kills().len()
        ),
    )?;
    if !others.is_empty() {
        field(out, "Other victims", shown)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cli::manual,
        model::{
            identity::Identity,
            kernel_state::MemcgFigures,
            snapshot::{Process, Snapshot},
            KernelState, MemcgLevel, Oom, Reaped, RssPages, Source, Trigger, Victim,
        },
    };

    /// A record with every fact every source can give, each nested object
    /// filled, so `show --json` has every key it can have.
    fn everything() -> Kill {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let counts = |p: &[(&str, u64)]| Some(p.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect());
        let level = |path: &str, usage: u64, limit: u64| MemcgLevel {
            path: Some(path.into()),
            memory_usage_bytes: usage,
            memory_limit_bytes: limit,
            memory_low_bytes: Some(0),
            memory_high_bytes: Some(limit),
            memory_min_bytes: Some(0),
            swap_usage_bytes: Some(0),
            swap_limit_bytes: Some(limit),
        };
        let figures = |level: usize| MemcgFigures {
            level,
            memory_stat: counts(&[("anon", 1), ("inactive_file", 0)]),
            events: counts(&[("oom_kill", 1)]),
            lru_bytes: counts(&[("inactive_file", 0)]),
            oom_group: Some(false),
            swappiness: Some(60),
            kmem_usage_bytes: Some(1),
            kmem_limit_bytes: Some(2),
            stat_pending_updates: Some(3),
        };
        Kill {
            id: Some(7),
            kind: Kind::Kill,
            time_ns: Some(1_764_000_000_000_000_000),
            boot_id: Some("b".into()),
            boot_ns: Some(1),
            mono_ns: Some(1),
            kmsg_usec: Some(1),
            recorded_ns: 1,
            sources: vec![Source::Ebpf, Source::Kmsg, Source::Cgroup],
            victim: Victim {
                pid: 42,
                tgid: Some(42),
                comm: Some("hog".into()),
                figures: crate::model::Figures {
                    uid: Some(0),
                    total_vm_kb: Some(1),
                    anon_rss_kb: Some(1),
                    file_rss_kb: Some(1),
                    shmem_rss_kb: Some(1),
                    pgtables_kb: Some(1),
                    oom_score_adj: Some(0),
                },
                cmdline: Some("hog".into()),
                exe: Some("/bin/hog".into()),
            },
            trigger: Trigger {
                pid: Some(42),
                tgid: Some(42),
                comm: Some("hog".into()),
                uid: Some(0),
                gfp_mask: Some("0xcc0(GFP_KERNEL)".into()),
                order: Some(0),
            },
            cgroup: Some("/a/b".into()),
            memory_limit_bytes: Some(64 << 20),
            oom: Oom {
                reason: Some("Memory cgroup out of memory".into()),
                constraint: Some("CONSTRAINT_MEMCG".into()),
                // The parent's limit fired: cgroup.oom_cgroup_at_kill.
                oom_cgroup: Some("/a".into()),
                task_cgroup: Some("/a/b".into()),
                global: Some(false),
                group_cgroup: Some("/a".into()),
                memory_usage_kb: Some(1),
                memory_limit_kb: Some(1),
                failcnt: Some(1),
                swap_usage_kb: Some(1),
                swap_limit_kb: Some(1),
                memsw_usage_kb: Some(1),
                memsw_limit_kb: Some(1),
                memory_stat: Some(pairs(&[("anon", "1")])),
                tasks: Some(vec![pairs(&[("pid", "42"), ("name", "hog")])]),
                score: Some(1),
                reaped: Some(Reaped { anon_rss_kb: 0, file_rss_kb: 0, shmem_rss_kb: 0 }),
            },
            kernel_report: vec!["Killed process 42 (hog)".into()],
            notes: vec!["a figure no kernel prints".into()],
            fingerprint: None,
            kernel: Some(KernelState {
                page_size: 4096,
                age_ms: Some(1),
                min_flt: Some(1),
                maj_flt: Some(1),
                rss_pages: Some(RssPages { file: 1, anon: 1, swapents: 1, shmem: 1 }),
                pgtables_bytes: Some(4096),
                nodename: Some("web-1".into()),
                cgroup_path: Some("/a/b".into()),
                cgroup_id: Some(1),
                cgroup_version: Some(1),
                memcg: vec![
                    level("/a/b", 1 << 20, 64 << 20),
                    level("/a", 32 << 20, 32 << 20),
                    level("/", 1 << 30, u64::MAX),
                ],
                ram_pages: Some(1 << 20),
                swap_pages: Some(0),
                details: vec![figures(0), figures(1)],
                online_cpus: Some(2),
                shared_with_earlier_victim: false,
            }),
            container: Some(Identity {
                runtime: Some("docker".into()),
                id: Some("c".into()),
                pod_uid: Some("u".into()),
                qos: Some("burstable".into()),
                pod_namespace: Some("ns".into()),
                pod_name: Some("pod".into()),
                container_name: Some("web".into()),
                image: Some("nginx".into()),
                unit: Some("docker-c.scope".into()),
                slice: Some("system.slice".into()),
                runtime_namespace: Some("moby".into()),
                notes: vec!["docker: no config.v2.json".into()],
            }),
            snapshot: Some(Snapshot {
                path: Some("/a/b".into()),
                delay_us: Some(1),
                memory_usage_bytes: Some(1),
                memory_limit_bytes: Some(1),
                memory_high_bytes: Some(1),
                memory_low_bytes: Some(1),
                memory_peak_bytes: Some(1),
                swap_usage_bytes: Some(1),
                swap_limit_bytes: Some(1),
                memsw_usage_bytes: Some(1),
                memsw_limit_bytes: Some(1),
                failcnt: Some(1),
                events: counts(&[("oom", 1)]),
                events_local: counts(&[("oom", 1)]),
                memory_stat: counts(&[("anon", 1)]),
                working_set_bytes: Some(1),
                processes: vec![Process {
                    pid: 43,
                    comm: Some("sh".into()),
                    cmdline: Some("sh".into()),
                    rss_kb: Some(1),
                }],
                problems: vec!["memory.peak: gone".into()],
                ..Snapshot::default()
            }),
        }
    }

    /// The man page's schema of `show --json` is the JSON's: every key
    /// documented, nothing documented that is not there.
    #[test]
    fn show_json_has_exactly_the_documented_keys() {
        let kill = everything();
        let incident = crate::model::incident::of(&kill, vec![kill.clone()]);
        let value = show_json(&kill, (diagnosis::Rule::GroupKill, "x"), &incident);
        let documented: std::collections::BTreeSet<String> =
            manual::show_keys().into_iter().map(|(k, _)| k).collect();
        let printed = manual::key_paths(&value, &documented);
        let undocumented: Vec<_> = printed.difference(&documented).collect();
        let absent: Vec<_> = documented.difference(&printed).collect();
        assert!(
            undocumented.is_empty() && absent.is_empty(),
            "undocumented {undocumented:#?}, documented but absent {absent:#?}"
        );
    }

    #[test]
    fn selector_takes_ids_and_last() {
        assert_eq!("12".parse::<Selector>(), Ok(Selector::Id(12)));
        assert_eq!("last".parse::<Selector>(), Ok(Selector::Last));
        assert!("0".parse::<Selector>().is_err());
        assert!("-3".parse::<Selector>().is_err());
        assert!("first".parse::<Selector>().is_err());
    }
}
