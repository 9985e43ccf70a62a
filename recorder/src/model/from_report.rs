//! The kernel's report, as the parser found it (`crate::report`), into
//! records: one kill, the reaper's figures, or a victim already exiting.
//! Every source of the report (/dev/kmsg, the journal, an imported log)
//! converts through here.

use super::{
    identity::{self, Identity},
    Kill, Kind, Oom, Reaped, Source, Trigger, Victim,
};
use crate::report::{Exiting, KernelKill, Reaped as ReapedLine};

/// A kill as the kernel's report tells it. `source` is where the lines came
/// from; `time_ns` the wall clock of the kill line when the source knows it.
pub fn from_kernel(
    kk: &KernelKill,
    source: Source,
    boot_id: Option<&str>,
    time_ns: Option<i64>,
    recorded_ns: i64,
) -> Kill {
    let header = kk.header.as_deref();
    let mut oom = Oom {
        reason: kk.reason.clone(),
        group_cgroup: kk.group_cgroup.clone(),
        score: kk.score,
        ..Oom::default()
    };
    let mut trigger = Trigger::default();
    let mut kernel_report = Vec::new();
    if let Some(h) = header {
        oom.constraint.clone_from(&h.constraint);
        oom.oom_cgroup.clone_from(&h.oom_cgroup);
        oom.task_cgroup.clone_from(&h.task_cgroup);
        oom.global = Some(h.global_oom).filter(|g| *g || h.constraint.is_some() || h.oom_cgroup.is_some());
        if let Some(m) = &h.memory {
            oom.memory_usage_kb = Some(m.usage_kb);
            oom.memory_limit_kb = Some(m.limit_kb);
            oom.failcnt = Some(m.failcnt);
        }
        if let Some(s) = &h.swap {
            oom.swap_usage_kb = Some(s.usage_kb);
            oom.swap_limit_kb = Some(s.limit_kb);
        }
        if let Some(s) = &h.memsw {
            oom.memsw_usage_kb = Some(s.usage_kb);
            oom.memsw_limit_kb = Some(s.limit_kb);
        }
        // The header's bulk (its lines, memory.stat, the task table: one row
        // per task of the cgroup, 5,000 rows for a group of 5,000) is kept
        // once per OOM, with the victim the kernel chose: every member of a
        // memory.oom.group kill is reported after it under the same header
        // (`oom_kill_process()` kills the chosen victim, then
        // `mem_cgroup_scan_tasks(oom_group, oom_kill_memcg_member)`), so a
        // copy per member would grow with the square of the group. Members
        // keep the header's scalar facts; `show` finds the report through
        // the group's chosen victim.
        if !kk.group_member {
            oom.memory_stat = Some(h.memory_stat.clone()).filter(|s| !s.is_empty());
            oom.tasks = Some(h.tasks.clone()).filter(|t| !t.is_empty());
        }
        trigger = Trigger {
            pid: h.trigger_pid,
            tgid: None,
            comm: h.trigger_comm.clone(),
            uid: h.trigger_uid,
            gfp_mask: h.gfp_mask.clone(),
            order: h.order,
        };
        if !kk.group_member {
            kernel_report.extend(h.lines.iter().cloned());
        }
    }
    kernel_report.extend(kk.lines.iter().cloned());
    Kill {
        id: None,
        kind: Kind::Kill,
        time_ns,
        boot_id: boot_id.map(str::to_owned),
        boot_ns: None,
        mono_ns: None,
        // A repeat joins the chosen victim's record however long the walk
        // took: it carries that kill's stamp.
        kmsg_usec: kk.kill_usec(),
        recorded_ns,
        sources: vec![source],
        victim: Victim {
            pid: kk.pid,
            tgid: None,
            comm: Some(kk.comm.clone()),
            figures: kk.figures,
            ..Victim::default()
        },
        trigger,
        // The victim's own memory cgroup, and the limit that was hit.
        cgroup: oom.task_cgroup.clone(),
        container: identity_of(oom.task_cgroup.as_deref()),
        memory_limit_bytes: oom.memory_limit_kb.map(|kb| kb * 1024),
        oom,
        kernel_report,
        fingerprint: None,
        snapshot: None,
        kernel: None,
        notes: Vec::new(),
    }
}

/// What the victim's cgroup path alone says of its container, pod or unit
/// (`identity::from_path`): an imported kubepods kill, or one whose eBPF
/// event was lost, still names its pod uid and container id. Names the
/// runtime keeps in its files come with the daemon's snapshot.
fn identity_of(task_cgroup: Option<&str>) -> Option<Identity> {
    task_cgroup.and_then(identity::named_by_path)
}

/// The oom_reaper's line about a victim, as facts to merge into its record.
pub fn from_reaped(r: &ReapedLine, source: Source, boot_id: Option<&str>, recorded_ns: i64) -> Kill {
    Kill {
        boot_id: boot_id.map(str::to_owned),
        kmsg_usec: r.usec,
        recorded_ns,
        sources: vec![source],
        victim: Victim { pid: r.pid, comm: Some(r.comm.clone()), ..Victim::default() },
        oom: Oom {
            reaped: Some(Reaped {
                anon_rss_kb: r.anon_rss_kb,
                file_rss_kb: r.file_rss_kb,
                shmem_rss_kb: r.shmem_rss_kb,
            }),
            ..Oom::default()
        },
        ..Kill::default()
    }
}

/// An "already exiting" line: the victim was marked, not killed.
pub fn from_exiting(e: &Exiting, source: Source, boot_id: Option<&str>, recorded_ns: i64) -> Kill {
    Kill {
        kind: Kind::Exiting,
        boot_id: boot_id.map(str::to_owned),
        kmsg_usec: e.usec,
        recorded_ns,
        sources: vec![source],
        victim: Victim { pid: e.pid, comm: Some(e.comm.clone()), ..Victim::default() },
        kernel_report: vec![e.line.clone()],
        ..Kill::default()
    }
}
