//! The join: what the eBPF program, the kernel log and imports say about one
//! kill becomes one record.
//!
//! Every source records what it knows as soon as it knows it, through
//! [`crate::store::Store::record`], which merges it into the record of the
//! same kill when one exists. So nothing waits on another source: an eBPF
//! event is stored at once (and stays `["ebpf"]` if its `Killed process` line
//! never comes), a kill seen only in the kernel log is stored as `["kmsg"]`,
//! and whichever arrives second joins the first. Replaying the same facts
//! (catch-up after a restart, a group kill's repeated line) changes nothing.
//!
//! Two facts are the same kill when they name the same victim pid on the same
//! boot, close in time. The kernel log stamps lines with `local_clock()` (µs
//! since boot, kernel/printk/printk.c) and the eBPF program with
//! CLOCK_MONOTONIC; both stop during suspend and differ by well under a
//! millisecond in practice (measured: 0.75 ms on 6.18), so a generous window
//! costs nothing: a pid is not reused within seconds.

use crate::{
    kill::{Kill, Kind, Oom, Reaped, Source, Trigger, Victim},
    report::{Exiting, KernelKill, Reaped as ReapedLine},
};

/// How far apart (ns) two stamps of one kill may be.
pub const JOIN_WINDOW_NS: u64 = 10_000_000_000;

/// The stamp of a record on the kernel log's clock, in ns.
fn log_clock_ns(kill: &Kill) -> Option<u64> {
    kill.kmsg_usec.map(|usec| usec * 1_000).or(kill.mono_ns)
}

/// How far apart two records of the same victim are, or `None` when they are
/// not the same kill. Callers have matched boot id and pid.
pub fn distance(a: &Kill, b: &Kill) -> Option<u64> {
    if a.boot_id != b.boot_id || a.victim.pid != b.victim.pid {
        return None;
    }
    // Two eBPF events are one kill only if they are the same event (replay).
    if let (Some(x), Some(y)) = (a.boot_ns, b.boot_ns) {
        return (x == y).then_some(0);
    }
    let (x, y) = (log_clock_ns(a)?, log_clock_ns(b)?);
    let d = x.abs_diff(y);
    (d <= JOIN_WINDOW_NS).then_some(d)
}

fn fill<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
    if into.is_none() {
        into.clone_from(from);
    }
}

/// `oom` field by field: what the record lacks, the new facts give.
fn fill_oom(into: &mut Oom, from: &Oom) {
    let (Ok(serde_json::Value::Object(mut a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(&*into), serde_json::to_value(from))
    else {
        return;
    };
    for (key, value) in b {
        let slot = a.entry(key).or_insert(serde_json::Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
    if let Ok(merged) = serde_json::from_value(serde_json::Value::Object(a)) {
        *into = merged;
    }
}

fn fill_victim(into: &mut Victim, from: &Victim) {
    fill(&mut into.tgid, &from.tgid);
    fill(&mut into.comm, &from.comm);
    fill(&mut into.uid, &from.uid);
    fill(&mut into.total_vm_kb, &from.total_vm_kb);
    fill(&mut into.anon_rss_kb, &from.anon_rss_kb);
    fill(&mut into.file_rss_kb, &from.file_rss_kb);
    fill(&mut into.shmem_rss_kb, &from.shmem_rss_kb);
    fill(&mut into.pgtables_kb, &from.pgtables_kb);
    fill(&mut into.oom_score_adj, &from.oom_score_adj);
    fill(&mut into.cmdline, &from.cmdline);
    fill(&mut into.exe, &from.exe);
}

fn fill_trigger(into: &mut Trigger, from: &Trigger) {
    fill(&mut into.pid, &from.pid);
    fill(&mut into.tgid, &from.tgid);
    fill(&mut into.comm, &from.comm);
    fill(&mut into.uid, &from.uid);
    fill(&mut into.gfp_mask, &from.gfp_mask);
    fill(&mut into.order, &from.order);
}

/// Merges `new` facts into the `existing` record of the same kill. The eBPF
/// figures were read at the instant of the kill, so they win over the log's
/// (they are equal in practice: both read the same counters under the
/// victim's task lock); for everything else the first source to know a fact
/// keeps it and later sources fill what is missing.
pub fn merge(existing: &Kill, new: &Kill) -> Kill {
    let mut out = existing.clone();
    let new_is_ebpf = new.sources.contains(&Source::Ebpf) && !existing.sources.contains(&Source::Ebpf);
    if new_is_ebpf {
        out.boot_ns = new.boot_ns;
        out.mono_ns = new.mono_ns;
        out.time_ns = new.time_ns.or(existing.time_ns);
        let mut victim = new.victim.clone();
        fill_victim(&mut victim, &existing.victim);
        out.victim = victim;
        let mut trigger = new.trigger.clone();
        fill_trigger(&mut trigger, &existing.trigger);
        out.trigger = trigger;
    } else {
        fill(&mut out.time_ns, &new.time_ns);
        fill_victim(&mut out.victim, &new.victim);
        fill_trigger(&mut out.trigger, &new.trigger);
    }
    fill(&mut out.boot_ns, &new.boot_ns);
    fill(&mut out.mono_ns, &new.mono_ns);
    fill(&mut out.kmsg_usec, &new.kmsg_usec);
    fill(&mut out.cgroup, &new.cgroup);
    fill(&mut out.memory_limit_bytes, &new.memory_limit_bytes);
    fill(&mut out.fingerprint, &new.fingerprint);
    // Only the eBPF program reads the kernel's structures: its facts stand.
    fill(&mut out.kernel, &new.kernel);
    // One snapshot per kill: the first, taken closest to it, stands.
    fill(&mut out.snapshot, &new.snapshot);
    fill(&mut out.container, &new.container);
    fill_oom(&mut out.oom, &new.oom);
    if out.kernel_report.is_empty() {
        out.kernel_report.clone_from(&new.kernel_report);
    }
    // A `Killed process` line proves a kill, whatever was assumed before.
    if new.kmsg_usec.is_some() {
        out.kind = Kind::Kill;
    }
    for source in &new.sources {
        if !out.sources.contains(source) {
            out.sources.push(*source);
        }
    }
    out.sources.sort();
    out
}

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
        oom.memory_stat = Some(h.memory_stat.clone()).filter(|s| !s.is_empty());
        oom.tasks = Some(h.tasks.clone()).filter(|t| !t.is_empty());
        trigger = Trigger {
            pid: h.trigger_pid,
            tgid: None,
            comm: h.trigger_comm.clone(),
            uid: h.trigger_uid,
            gfp_mask: h.gfp_mask.clone(),
            order: h.order,
        };
        kernel_report.extend(h.lines.iter().cloned());
    }
    kernel_report.extend(kk.lines.iter().cloned());
    Kill {
        id: None,
        kind: Kind::Kill,
        time_ns,
        boot_id: boot_id.map(str::to_owned),
        boot_ns: None,
        mono_ns: None,
        kmsg_usec: kk.usec,
        recorded_ns,
        sources: vec![source],
        victim: Victim {
            pid: kk.pid,
            tgid: None,
            comm: Some(kk.comm.clone()),
            uid: kk.uid,
            total_vm_kb: kk.total_vm_kb,
            anon_rss_kb: kk.anon_rss_kb,
            file_rss_kb: kk.file_rss_kb,
            shmem_rss_kb: kk.shmem_rss_kb,
            pgtables_kb: kk.pgtables_kb,
            oom_score_adj: kk.oom_score_adj,
            ..Victim::default()
        },
        trigger,
        // The victim's own memory cgroup, and the limit that was hit.
        cgroup: oom.task_cgroup.clone(),
        memory_limit_bytes: oom.memory_limit_kb.map(|kb| kb * 1024),
        oom,
        kernel_report,
        fingerprint: None,
        container: None,
        snapshot: None,
        kernel: None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ebpf(pid: i32, mono_ns: u64) -> Kill {
        Kill {
            boot_id: Some("b".into()),
            boot_ns: Some(mono_ns + 7),
            mono_ns: Some(mono_ns),
            time_ns: Some(1_000),
            sources: vec![Source::Ebpf],
            victim: Victim { pid, anon_rss_kb: Some(100), comm: Some("hog".into()), ..Victim::default() },
            trigger: Trigger { pid: Some(pid), comm: Some("hog".into()), ..Trigger::default() },
            ..Kill::default()
        }
    }

    fn kmsg(pid: i32, usec: u64) -> Kill {
        Kill {
            boot_id: Some("b".into()),
            kmsg_usec: Some(usec),
            sources: vec![Source::Kmsg],
            victim: Victim { pid, anon_rss_kb: Some(100), total_vm_kb: Some(300), ..Victim::default() },
            trigger: Trigger { gfp_mask: Some("0xcc0(GFP_KERNEL)".into()), ..Trigger::default() },
            oom: Oom { constraint: Some("CONSTRAINT_MEMCG".into()), ..Oom::default() },
            kernel_report: vec!["Killed process …".into()],
            ..Kill::default()
        }
    }

    #[test]
    fn an_event_and_its_line_are_one_kill() {
        // Measured on 6.18: the log stamp came 0.75 ms before the eBPF stamp.
        let event = ebpf(42, 558_908_935_737);
        let line = kmsg(42, 558_908_182);
        assert_eq!(distance(&event, &line), Some(753_737));
        assert_eq!(distance(&line, &event), Some(753_737));
        assert_eq!(distance(&event, &kmsg(43, 558_908_182)), None, "another pid");
        assert_eq!(distance(&event, &kmsg(42, 600_000_000)), None, "41 s later: another kill");
        assert_eq!(distance(&event, &ebpf(42, 558_908_935_738)), None, "two events: two kills");
        assert_eq!(distance(&event, &event.clone()), Some(0), "a replayed event");
    }

    #[test]
    fn merging_keeps_ebpf_figures_and_adds_the_report() {
        let mut event = ebpf(42, 5_000_000);
        event.victim.anon_rss_kb = Some(101);
        let line = kmsg(42, 5_000);
        for merged in [merge(&event, &line), merge(&line, &event)] {
            assert_eq!(merged.sources, [Source::Ebpf, Source::Kmsg]);
            assert_eq!(merged.victim.anon_rss_kb, Some(101), "eBPF wins");
            assert_eq!(merged.victim.total_vm_kb, Some(300), "the log fills gaps");
            assert_eq!(merged.victim.comm.as_deref(), Some("hog"));
            assert_eq!(merged.trigger.gfp_mask.as_deref(), Some("0xcc0(GFP_KERNEL)"));
            assert_eq!(merged.trigger.comm.as_deref(), Some("hog"));
            assert_eq!(merged.oom.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
            assert_eq!(merged.boot_ns, Some(5_000_007));
            assert_eq!(merged.kmsg_usec, Some(5_000));
            assert_eq!(merged.kernel_report.len(), 1);
        }
        let both = merge(&event, &line);
        assert_eq!(merge(&both, &line), both, "the group kill's repeated line changes nothing");
        assert_eq!(merge(&both, &event), both, "a replayed event changes nothing");
    }

    #[test]
    fn kernel_state_comes_from_ebpf_whichever_arrives_first() {
        let state = crate::kill::KernelState { page_size: 4096, age_ms: Some(5), ..Default::default() };
        let event = Kill { kernel: Some(state.clone()), ..ebpf(42, 5_000_000) };
        let line = kmsg(42, 5_000);
        assert_eq!(merge(&event, &line).kernel, Some(state.clone()));
        assert_eq!(merge(&line, &event).kernel, Some(state));
        assert_eq!(merge(&line, &line).kernel, None, "the log alone knows no kernel state");
    }

    #[test]
    fn a_kill_line_overrules_exiting() {
        let exiting = Kill { kind: Kind::Exiting, ..ebpf(42, 5_000_000) };
        assert_eq!(merge(&exiting, &kmsg(42, 5_000)).kind, Kind::Kill);
    }
}
