//! JSON for scripts. The keys named here are a contract: add keys freely,
//! never rename or drop one; unknown values are `null`, never 0.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::{
    figures::{limit_bytes, limit_kb, pages_to_kb},
    identity::Identity,
    incident::Incident,
    scope::{self, OomScope},
    Badness, KernelState, Kill, MemcgLevel,
};

/// RFC 3339 UTC with milliseconds (`2026-11-25T08:30:01.123Z`), truncated;
/// `null` when unknown.
pub fn rfc3339_ms(ns: Option<i64>) -> Value {
    let Some(ns) = ns else {
        return Value::Null;
    };
    let Ok(ts) = Timestamp::from_nanosecond(i128::from(ns)) else {
        return Value::Null;
    };
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    Value::String(format!("{}.{millis:03}Z", ts.strftime("%Y-%m-%dT%H:%M:%S")))
}

fn sources(kill: &Kill) -> Value {
    kill.sources.iter().map(|s| s.as_str()).collect()
}

/// One row of `list --json`.
pub fn kill_summary(kill: &Kill) -> Value {
    json!({
        "id": kill.id,
        "time": rfc3339_ms(kill.time_ns),
        "kind": kill.kind.as_str(),
        "pid": kill.victim.pid,
        "comm": kill.victim.comm,
        "cgroup": kill.cgroup,
        "anon_rss_kb": kill.victim.figures.anon_rss_kb,
        "memory_limit_bytes": limit_bytes(kill.memory_limit_bytes),
        "sources": sources(kill),
        "container_id": container(kill, |c| c.id.clone()),
        "pod_uid": container(kill, |c| c.pod_uid.clone()),
        "pod_namespace": container(kill, |c| c.pod_namespace.clone()),
        "pod_name": container(kill, |c| c.pod_name.clone()),
        "container_name": container(kill, |c| c.container_name.clone()),
        "unit": container(kill, |c| c.unit.clone()),
        "runtime": container(kill, |c| c.runtime.clone()),
        "image": container(kill, |c| c.image.clone()),
    })
}

/// One row of `list --incidents`: its first victim's row, and the incident.
pub fn incident_summary(incident: &Incident) -> Value {
    let mut row = kill_summary(incident.first());
    if let Value::Object(map) = &mut row {
        map.insert("incident_id".into(), json!(incident.id()));
        map.insert("victims".into(), json!(incident.kills().len()));
        map.insert("victim_ids".into(), json!(incident.ids()));
        map.insert("group_cgroup".into(), json!(incident.group()));
    }
    row
}

fn container(kill: &Kill, field: impl Fn(&Identity) -> Option<String>) -> Value {
    kill.container.as_ref().and_then(field).map_or(Value::Null, Value::String)
}

/// Flat-keyed cgroup files (`memory.events`, `memory.stat`) as one object.
/// A limit among them (v1's `hierarchical_memory_limit`) that is the
/// kernel's "no limit" is `null`.
fn counts(pairs: Option<&Vec<(String, u64)>>) -> Value {
    match pairs {
        Some(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.clone(), count(*v))).collect()),
        None => Value::Null,
    }
}

fn count(value: u64) -> Value {
    limit_bytes(Some(value)).map_or(Value::Null, Value::from)
}

/// A value the kernel printed: a number when it is one (the report's
/// memory.stat and task table print integers), the text otherwise (a
/// task's name). A number that is the kernel's "no limit" is `null`.
fn printed(text: &str) -> Value {
    if let Ok(n) = text.parse::<u64>() {
        return count(n);
    }
    text.parse::<i64>().map_or_else(|_| Value::String(text.to_owned()), Value::from)
}

/// Pairs as printed, as one JSON object (keys in the kernel's order),
/// numbers as numbers.
fn pairs(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), printed(v))).collect())
}

/// The OOM memcg's level in the recorded counters and whether it was
/// inferred: the kernel log's `oom_memcg=` when it came, else the lowest
/// cgroup whose usage reached its limit. `(None, _)` for a global OOM or
/// when nothing is known.
pub fn oom_level(kill: &Kill) -> (Option<usize>, Option<bool>) {
    let k = kill.kernel.as_ref();
    if kill.oom.global == Some(true) {
        return (None, Some(false));
    }
    if let Some(path) = &kill.oom.oom_cgroup {
        let level = k.and_then(|k| k.memcg.iter().position(|l| l.path.as_deref() == Some(path.as_str())));
        return (level, Some(false));
    }
    if let Some(level) = k.and_then(KernelState::inferred_oom_level) {
        return (Some(level), Some(true));
    }
    // The kill line says a cgroup's limit was hit, but no level is at its
    // limit any more: the oom_reaper freed an earlier victim's pages between
    // the failed charge and this victim's marking (seen in storms of two
    // hogs sharing a cgroup). The limit that fired is then the lowest one
    // set. mm/oom_kill.c passes "Memory cgroup out of memory" only from
    // mem_cgroup_out_of_memory().
    // (model::scope: the constraint, else the kill line's reason.)
    let memcg_oom = scope::classify(kill) == Some(OomScope::Memcg);
    match k.filter(|_| memcg_oom).and_then(KernelState::lowest_limited_level) {
        Some(level) => (Some(level), Some(true)),
        None => (None, None),
    }
}

/// The cgroup whose limit was hit: the kernel log's `oom_memcg=`, else the
/// one the counters read at the kill infer ([`oom_level`]).
pub fn oom_cgroup(kill: &Kill) -> Option<String> {
    let (level, inferred) = oom_level(kill);
    match (&kill.oom.oom_cgroup, inferred, level) {
        (Some(path), _, _) => Some(path.clone()),
        (None, Some(true), Some(level)) => {
            kill.kernel.as_ref().and_then(|k| k.memcg.get(level)).and_then(|l| l.path.clone())
        }
        _ => None,
    }
}

fn oom(kill: &Kill) -> Value {
    let o = &kill.oom;
    let (_, inferred) = oom_level(kill);
    let oom_cgroup = oom_cgroup(kill);
    json!({
        "reason": o.reason,
        "constraint": o.constraint,
        // memcg, global, cpuset or mempolicy (model::scope, shared by stats
        // and the filters); null when the record cannot say.
        "scope": scope::classify(kill).map(OomScope::as_str),
        "global": o.global,
        "oom_cgroup": oom_cgroup,
        "oom_cgroup_inferred": inferred,
        "task_cgroup": o.task_cgroup,
        "group_cgroup": o.group_cgroup,
        "memory_usage_kb": o.memory_usage_kb,
        // Limits the report printed as PAGE_COUNTER_MAX: no limit, null.
        "memory_limit_kb": limit_kb(o.memory_limit_kb),
        "failcnt": o.failcnt,
        "swap_usage_kb": o.swap_usage_kb,
        "swap_limit_kb": limit_kb(o.swap_limit_kb),
        "memsw_usage_kb": o.memsw_usage_kb,
        "memsw_limit_kb": limit_kb(o.memsw_limit_kb),
        "memory_stat": o.memory_stat.as_deref().map(pairs),
        "tasks": o.tasks.as_ref().map(|rows| rows.iter().map(|r| pairs(r)).collect::<Vec<_>>()),
        "score": o.score,
        "reaped": o.reaped.as_ref().map(|r| json!({
            "anon_rss_kb": r.anon_rss_kb,
            "file_rss_kb": r.file_rss_kb,
            "shmem_rss_kb": r.shmem_rss_kb,
        })),
    })
}

/// One level's page counters. A limit of `max` (PAGE_COUNTER_MAX) is
/// `null`: no limit, never the kernel's sentinel. On cgroup v1 the swap
/// counter is memory+swap (`memsw`): `swap_*` keep it, as they always
/// did, and `memsw_*` name it for what it is (null on v2).
fn memcg_level(l: &MemcgLevel, k: &KernelState) -> Value {
    let limit = |b: Option<u64>| b.filter(|b| !k.is_unlimited(*b));
    let v1 = k.cgroup_version == Some(1);
    json!({
        "path": l.path,
        "memory_usage_bytes": l.memory_usage_bytes,
        "memory_limit_bytes": limit(Some(l.memory_limit_bytes)),
        "memory_low_bytes": limit(l.memory_low_bytes),
        "memory_high_bytes": limit(l.memory_high_bytes),
        "memory_min_bytes": limit(l.memory_min_bytes),
        "swap_usage_bytes": l.swap_usage_bytes,
        "swap_limit_bytes": limit(l.swap_limit_bytes),
        "memsw_usage_bytes": l.swap_usage_bytes.filter(|_| v1),
        "memsw_limit_bytes": limit(l.swap_limit_bytes).filter(|_| v1),
    })
}

/// A memory cgroup at the kill: its page counters and, when the program
/// read them, its own figures (`memory.stat`, `memory.events`, settings).
fn memcg_at_kill(k: &KernelState, level: usize) -> Option<Value> {
    let l = k.memcg.get(level)?;
    let mut out = memcg_level(l, k);
    let d = k.details.iter().find(|d| d.level == level);
    let counts = |pairs: Option<&Vec<(String, u64)>>| pairs.map(|p| counts(Some(p)));
    if let Value::Object(map) = &mut out {
        map.insert("source".into(), json!("ebpf"));
        map.insert("memory_stat".into(), json!(counts(d.and_then(|d| d.memory_stat.as_ref()))));
        map.insert("events".into(), json!(counts(d.and_then(|d| d.events.as_ref()))));
        map.insert("oom_group".into(), json!(d.and_then(|d| d.oom_group)));
        map.insert("swappiness".into(), json!(d.and_then(|d| d.swappiness)));
        map.insert("kmem_usage_bytes".into(), json!(d.and_then(|d| d.kmem_usage_bytes)));
        map.insert(
            "kmem_limit_bytes".into(),
            json!(d.and_then(|d| d.kmem_limit_bytes).filter(|b| !k.is_unlimited(*b))),
        );
        map.insert("lru_bytes".into(), json!(counts(d.and_then(|d| d.lru_bytes.as_ref()))));
        // usage − inactive_file (what kubelet eviction and `kubectl top` use),
        // from the exact LRU size when the program read it.
        let inactive_file = d.and_then(|d| d.lru("inactive_file").or_else(|| d.stat("inactive_file")));
        map.insert(
            "working_set_bytes".into(),
            json!(inactive_file.map(|i| l.memory_usage_bytes.saturating_sub(i))),
        );
        map.insert("memory_stat_pending_updates".into(), json!(d.and_then(|d| d.stat_pending_updates)));
        // Each CPU batches its own updates before memory_stat sees them:
        // the bound of what it may lack grows with them.
        map.insert("online_cpus".into(), json!(k.online_cpus));
        map.insert("memory_stat_fresh".into(), json!(d.and_then(|d| d.stat_fresh(k.online_cpus))));
        map.insert(
            "memory_stat_lag_bound_pages".into(),
            json!(d
                .filter(|d| d.stat_fresh(k.online_cpus) == Some(true))
                .and_then(|d| d.stat_lag_bound_pages(k.online_cpus))),
        );
    }
    Some(out)
}

/// The kernel's badness of the victim, recomputed against the OOM's
/// totalpages; `None` when a figure is unknown.
pub fn badness_of(kill: &Kill) -> Option<Badness> {
    let k = kill.kernel.as_ref()?;
    let level = match oom_level(kill) {
        (Some(level), _) => Some(level),
        // The kernel log named a cgroup the recorded levels do not reach.
        (None, _) if kill.oom.oom_cgroup.is_some() => return None,
        // A global OOM by the log, or no cgroup at its limit: RAM + swap.
        (None, _) => None,
    };
    k.badness(kill.victim.figures.oom_score_adj, level)
}

fn badness(kill: &Kill) -> Value {
    match badness_of(kill) {
        Some(b) => json!({
            "points": b.points,
            "rss_pages": b.rss_pages,
            "swap_pages": b.swap_pages,
            "pgtables_pages": b.pgtables_pages,
            "adj_pages": b.adj_pages,
            "totalpages": b.totalpages,
        }),
        None => Value::Null,
    }
}

/// `show --json`: everything the record holds.
pub fn kill_detail(kill: &Kill) -> Value {
    let k = kill.kernel.as_ref();
    let snap = kill.snapshot.as_ref();
    let v = &kill.victim;
    let t = &kill.trigger;
    json!({
        "id": kill.id,
        "kind": kill.kind.as_str(),
        "time": rfc3339_ms(kill.time_ns),
        "time_ns": kill.time_ns,
        "boot_id": kill.boot_id,
        "boot_ns": kill.boot_ns,
        "mono_ns": kill.mono_ns,
        "kmsg_usec": kill.kmsg_usec,
        "recorded_time": rfc3339_ms(Some(kill.recorded_ns)),
        "sources": sources(kill),
        "victim": {
            "pid": v.pid,
            "tgid": v.tgid,
            "comm": v.comm,
            "uid": v.figures.uid,
            "total_vm_kb": v.figures.total_vm_kb,
            "anon_rss_kb": v.figures.anon_rss_kb,
            "file_rss_kb": v.figures.file_rss_kb,
            "shmem_rss_kb": v.figures.shmem_rss_kb,
            "pgtables_kb": v.figures.pgtables_kb,
            "oom_score_adj": v.figures.oom_score_adj,
            "age_ms": k.and_then(|k| k.age_ms),
            "min_flt": k.and_then(|k| k.min_flt),
            "maj_flt": k.and_then(|k| k.maj_flt),
            "swapents_kb": k.and_then(|k| k.rss_pages.map(|r| pages_to_kb(r.swapents, k.page_size))),
            "rss_pages": k.and_then(|k| k.rss_pages).map(|r| json!({
                "file": r.file,
                "anon": r.anon,
                "swapents": r.swapents,
                "shmem": r.shmem,
            })),
            "pgtables_bytes": k.and_then(|k| k.pgtables_bytes),
            "nodename": k.and_then(|k| k.nodename.clone()),
            "badness": badness(kill),
            "cmdline": v.cmdline,
            "exe": v.exe,
        },
        "trigger": {
            "pid": t.pid,
            "tgid": t.tgid,
            "comm": t.comm,
            "uid": t.uid,
            "gfp_mask": t.gfp_mask,
            "order": t.order,
        },
        "oom": oom(kill),
        "cgroup": {
            "path": kill.cgroup.clone().or_else(|| k.and_then(|k| k.cgroup_path.clone())),
            // The hard limit (v1 limit_in_bytes, v2 memory.max), null for none.
            "memory_limit_bytes": limit_bytes(snap.map_or(kill.memory_limit_bytes, |s| s.memory_limit_bytes)),
            "id": k.and_then(|k| k.cgroup_id),
            "version": k.and_then(|k| k.cgroup_version),
            "at_kill": k.and_then(|k| memcg_at_kill(k, 0)),
            // The cgroup whose limit was hit, when it is not the victim's own.
            "oom_cgroup_at_kill": k.and_then(|k| match oom_level(kill) {
                (Some(level), _) if level > 0 => memcg_at_kill(k, level),
                _ => None,
            }),
            "ancestors": k.map(|k| k.memcg.iter().skip(1).map(|l| memcg_level(l, k)).collect::<Vec<_>>()),
            // Read from the cgroup's files right after the kill (the
            // victim's pages may already be freed; `at_kill` is the truth).
            "snapshot_delay_us": snap.and_then(|s| s.delay_us),
            "memory_usage_bytes": snap.and_then(|s| s.memory_usage_bytes),
            "memory_high_bytes": limit_bytes(snap.and_then(|s| s.memory_high_bytes)),
            "memory_low_bytes": limit_bytes(snap.and_then(|s| s.memory_low_bytes)),
            "memory_peak_bytes": snap.and_then(|s| s.memory_peak_bytes),
            "swap_usage_bytes": snap.and_then(|s| s.swap_usage_bytes),
            "swap_limit_bytes": limit_bytes(snap.and_then(|s| s.swap_limit_bytes)),
            // cgroup v1's memory.memsw.* files (memory+swap); null on v2.
            "memsw_usage_bytes": snap.and_then(|s| s.memsw_usage_bytes),
            "memsw_limit_bytes": limit_bytes(snap.and_then(|s| s.memsw_limit_bytes)),
            "failcnt": snap.and_then(|s| s.failcnt),
            "events": snap.map(|s| counts(s.events.as_ref())),
            "events_local": snap.map(|s| counts(s.events_local.as_ref())),
            "memory_stat": snap.map(|s| counts(s.memory_stat.as_ref())),
            "working_set_bytes": snap.and_then(|s| s.working_set_bytes),
            "processes": snap.map(|s| s.processes.iter().map(|p| json!({
                "pid": p.pid,
                "comm": p.comm,
                "cmdline": p.cmdline,
                "rss_kb": p.rss_kb,
            })).collect::<Vec<_>>()),
            "snapshot_problems": snap.map(|s| s.problems.clone()),
        },
        "container": kill.container.as_ref().map(|c| json!({
            "runtime": c.runtime,
            "id": c.id,
            "pod_uid": c.pod_uid,
            "pod_namespace": c.pod_namespace,
            "pod_name": c.pod_name,
            "container_name": c.container_name,
            "qos": c.qos,
            "unit": c.unit,
            "slice": c.slice,
            "image": c.image,
            // containerd's namespace; why a name is unknown.
            "runtime_namespace": c.runtime_namespace,
            "notes": c.notes,
        })),
        "kernel_report": { "lines": kill.kernel_report },
        // Why a figure is unknown or cut (an imported log's impossible values).
        "notes": kill.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memcg_kill_after_the_reaper_freed_the_cgroup_still_names_its_limit() {
        use crate::model::{MemcgLevel, Oom};
        let unlimited = i64::MAX as u64 / 4096 * 4096;
        let level = |usage, limit| MemcgLevel {
            memory_usage_bytes: usage,
            memory_limit_bytes: limit,
            ..MemcgLevel::default()
        };
        let kernel = KernelState {
            page_size: 4096,
            memcg: vec![level(17 << 20, 64 << 20), level(2 << 30, unlimited)],
            ..KernelState::default()
        };
        let kill = |reason: &str| Kill {
            kernel: Some(kernel.clone()),
            oom: Oom { reason: Some(reason.into()), ..Oom::default() },
            ..Kill::default()
        };
        assert_eq!(oom_level(&kill("Memory cgroup out of memory")), (Some(0), Some(true)));
        assert_eq!(oom_level(&kill("Out of memory")), (None, None), "a global OOM names no cgroup");
    }

    #[test]
    fn time_is_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(Some(1_764_059_401_123_999_999)), json!("2025-11-25T08:30:01.123Z"));
        assert_eq!(rfc3339_ms(Some(0)), json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(rfc3339_ms(None), Value::Null);
    }

    const UNLIMITED_BYTES: u64 = 9_223_372_036_854_771_712;
    const UNLIMITED_KB: u64 = 9_007_199_254_740_988;

    /// A cgroup v1 kill as the report and the counters give it: memory+swap
    /// without a limit, v1's memory.stat with its `hierarchical_*_limit`.
    fn v1_kill() -> Kill {
        use crate::model::{identity::Identity, Oom};
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Kill {
            memory_limit_bytes: Some(UNLIMITED_BYTES),
            oom: Oom {
                memory_limit_kb: Some(65_536),
                memsw_usage_kb: Some(49_152),
                memsw_limit_kb: Some(UNLIMITED_KB),
                memory_stat: Some(pairs(&[
                    ("total_rss", "67108864"),
                    ("hierarchical_memory_limit", "9223372036854771712"),
                ])),
                tasks: Some(vec![pairs(&[("pid", "7558"), ("oom_score_adj", "-1000"), ("name", "dd")])]),
                ..Oom::default()
            },
            kernel: Some(KernelState {
                page_size: 4096,
                cgroup_version: Some(1),
                memcg: vec![MemcgLevel {
                    memory_usage_bytes: 64 << 20,
                    memory_limit_bytes: 64 << 20,
                    memory_high_bytes: Some(UNLIMITED_BYTES),
                    swap_usage_bytes: Some(48 << 20),
                    swap_limit_bytes: Some(UNLIMITED_BYTES),
                    ..MemcgLevel::default()
                }],
                ..KernelState::default()
            }),
            container: Some(Identity {
                runtime: Some("docker".into()),
                image: Some("nginx:1.25".into()),
                ..Identity::default()
            }),
            ..Kill::default()
        }
    }

    #[test]
    fn no_limit_is_null_and_the_reports_numbers_are_numbers() {
        let detail = kill_detail(&v1_kill());
        let oom = &detail["oom"];
        assert_eq!(oom["memsw_limit_kb"], Value::Null);
        assert_eq!(oom["memsw_usage_kb"], 49_152);
        assert_eq!(oom["memory_limit_kb"], 65_536);
        assert_eq!(oom["memory_stat"]["total_rss"], 67_108_864);
        assert_eq!(oom["memory_stat"]["hierarchical_memory_limit"], Value::Null, "kept, as null");
        assert_eq!(oom["tasks"][0], json!({"pid": 7558, "oom_score_adj": -1000, "name": "dd"}));
        let at_kill = &detail["cgroup"]["at_kill"];
        assert_eq!(at_kill["memory_high_bytes"], Value::Null);
        assert_eq!(detail["cgroup"]["memory_limit_bytes"], Value::Null);
        // v1: the swap counter is memory+swap; the old keys stay, the new ones name it.
        assert_eq!(
            (&at_kill["swap_usage_bytes"], &at_kill["memsw_usage_bytes"]),
            (&json!(48 << 20), &json!(48 << 20))
        );
        assert_eq!(
            (&at_kill["swap_limit_bytes"], &at_kill["memsw_limit_bytes"]),
            (&Value::Null, &Value::Null)
        );
    }

    #[test]
    fn list_rows_name_the_runtime_and_image() {
        let row = kill_summary(&v1_kill());
        assert_eq!((&row["runtime"], &row["image"]), (&json!("docker"), &json!("nginx:1.25")));
        assert_eq!(row["memory_limit_bytes"], Value::Null, "no limit");
        let bare = kill_summary(&Kill::default());
        assert!(bare["runtime"].is_null() && bare["image"].is_null());
        // v2 has no memsw: null, not the swap counter.
        let mut v2 = v1_kill();
        v2.kernel.as_mut().unwrap().cgroup_version = Some(2);
        assert_eq!(kill_detail(&v2)["cgroup"]["at_kill"]["memsw_usage_bytes"], Value::Null);
    }
}
