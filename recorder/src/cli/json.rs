//! JSON for scripts. The keys named here are a contract: add keys freely,
//! never rename or drop one; unknown values are `null`, never 0.

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::kill::{Kill, Oom};

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
        "anon_rss_kb": kill.victim.anon_rss_kb,
        "memory_limit_bytes": kill.memory_limit_bytes,
        "sources": sources(kill),
    })
}

/// Pairs as printed, as one JSON object (keys in the kernel's order).
fn pairs(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn oom(o: &Oom) -> Value {
    json!({
        "reason": o.reason,
        "constraint": o.constraint,
        "global": o.global,
        "oom_cgroup": o.oom_cgroup,
        "task_cgroup": o.task_cgroup,
        "group_cgroup": o.group_cgroup,
        "memory_usage_kb": o.memory_usage_kb,
        "memory_limit_kb": o.memory_limit_kb,
        "failcnt": o.failcnt,
        "swap_usage_kb": o.swap_usage_kb,
        "swap_limit_kb": o.swap_limit_kb,
        "memsw_usage_kb": o.memsw_usage_kb,
        "memsw_limit_kb": o.memsw_limit_kb,
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

/// `show --json`: everything the record holds.
pub fn kill_detail(kill: &Kill) -> Value {
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
            "uid": v.uid,
            "total_vm_kb": v.total_vm_kb,
            "anon_rss_kb": v.anon_rss_kb,
            "file_rss_kb": v.file_rss_kb,
            "shmem_rss_kb": v.shmem_rss_kb,
            "pgtables_kb": v.pgtables_kb,
            "oom_score_adj": v.oom_score_adj,
        },
        "trigger": {
            "pid": t.pid,
            "tgid": t.tgid,
            "comm": t.comm,
            "uid": t.uid,
            "gfp_mask": t.gfp_mask,
            "order": t.order,
        },
        "oom": oom(&kill.oom),
        "cgroup": { "path": kill.cgroup, "memory_limit_bytes": kill.memory_limit_bytes },
        "kernel_report": { "lines": kill.kernel_report },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(Some(1_764_059_401_123_999_999)), json!("2025-11-25T08:30:01.123Z"));
        assert_eq!(rfc3339_ms(Some(0)), json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(rfc3339_ms(None), Value::Null);
    }
}
