//! The record of one OOM victim, as the store keeps it and the CLI shows it.
//!
//! Every figure is an `Option`: `None` means the recorder does not know it
//! (the kernel did not give it), and is written as `null`, never as 0.

use common::{present, OomEvent, COMM_LEN};

/// Where a record's facts came from; named in the JSON `sources` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The `oom:mark_victim` tracepoint, read by the eBPF program at the kill.
    Ebpf,
    /// The kernel's OOM report, read live (or at start-up) from /dev/kmsg.
    Kmsg,
    /// The same report, read from the systemd journal.
    Journal,
    /// A kernel log a user handed to `oomrecorder import`.
    Import,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Ebpf, Source::Kmsg, Source::Journal, Source::Import];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
            Source::Kmsg => "kmsg",
            Source::Journal => "journal",
            Source::Import => "import",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A victim the kernel killed, or one it only marked: a task already exiting
/// (`task_will_free_mem()` in mm/oom_kill.c) is marked as victim so its memory
/// is reaped, but gets no SIGKILL, no `Killed process` line and no `oom_kill`
/// count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Kill,
    Exiting,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Exiting => "exiting",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        [Kind::Kill, Kind::Exiting].into_iter().find(|k| k.as_str() == name)
    }
}

/// The victim: the task the kernel chose and killed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Victim {
    pub pid: i32,
    pub tgid: Option<i32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
}

/// The trigger: the task that was running (allocating) when the kernel marked
/// the victim. Not the victim, and not necessarily in the victim's cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trigger {
    pub pid: Option<i32>,
    pub tgid: Option<i32>,
    pub comm: Option<String>,
    /// From the report's `CPU: … UID: …` line (6.11+).
    pub uid: Option<u32>,
    /// The allocation that failed, from `invoked oom-killer: gfp_mask=…, order=…`.
    pub gfp_mask: Option<String>,
    pub order: Option<i32>,
}

/// Memory freed by the oom_reaper after the kill (`oom_reaper: reaped process`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reaped {
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
}

/// What the kernel's report says about the OOM itself. Every field is
/// `None` when the kernel did not print it (rate-limited header, or a
/// source without the report).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Oom {
    /// `Out of memory`, `Memory cgroup out of memory`, ...
    pub reason: Option<String>,
    /// `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, ...
    pub constraint: Option<String>,
    /// The cgroup whose limit was hit (may be an ancestor of the victim's).
    pub oom_cgroup: Option<String>,
    /// The victim's own memory cgroup.
    pub task_cgroup: Option<String>,
    /// True for a system-wide OOM (`global_oom`).
    pub global: Option<bool>,
    /// The cgroup of a `memory.oom.group` kill this victim was part of.
    pub group_cgroup: Option<String>,
    pub memory_usage_kb: Option<u64>,
    pub memory_limit_kb: Option<u64>,
    pub failcnt: Option<u64>,
    pub swap_usage_kb: Option<u64>,
    pub swap_limit_kb: Option<u64>,
    /// cgroup v1 `memory+swap:` line.
    pub memsw_usage_kb: Option<u64>,
    pub memsw_limit_kb: Option<u64>,
    /// The `Memory cgroup stats for …` block, keys and values as printed.
    pub memory_stat: Option<Vec<(String, String)>>,
    /// The task table, each row named by the header's columns.
    pub tasks: Option<Vec<Vec<(String, String)>>>,
    /// Pre-5.1 kernels print the victim's badness score.
    pub score: Option<u64>,
    pub reaped: Option<Reaped>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kill {
    /// Row id; `None` until stored.
    pub id: Option<i64>,
    pub kind: Kind,
    /// Wall clock at the kill, Unix ns (from the boot clock, or the log's stamp).
    pub time_ns: Option<i64>,
    /// `/proc/sys/kernel/random/boot_id` of the boot the kill happened in.
    pub boot_id: Option<String>,
    /// CLOCK_BOOTTIME at the kill (eBPF).
    pub boot_ns: Option<u64>,
    /// CLOCK_MONOTONIC at the kill (eBPF).
    pub mono_ns: Option<u64>,
    /// The kernel log's stamp of the `Killed process` line, µs since boot.
    pub kmsg_usec: Option<u64>,
    /// Wall clock when the record was stored, Unix ns.
    pub recorded_ns: i64,
    pub sources: Vec<Source>,
    pub victim: Victim,
    pub trigger: Trigger,
    /// The victim's memory cgroup path (filled by later sources).
    pub cgroup: Option<String>,
    /// That cgroup's memory limit in bytes (filled by later sources).
    pub memory_limit_bytes: Option<u64>,
    pub oom: Oom,
    /// This kill's raw lines of the kernel's report, in order.
    pub kernel_report: Vec<String>,
    /// Identity of an imported kill, so importing a file twice adds nothing.
    pub fingerprint: Option<String>,
}

/// A task name from a fixed `TASK_COMM_LEN` buffer: up to the first NUL;
/// bytes that are not UTF-8 (a task can name itself anything) become U+FFFD.
pub fn comm_from_bytes(raw: &[u8; COMM_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Kill {
    /// Builds the record of one ring-buffer event. `time_ns` and `recorded_ns`
    /// come from the caller so this stays pure.
    pub fn from_event(event: &OomEvent, boot_id: &str, time_ns: i64, recorded_ns: i64) -> Kill {
        let has = |bit: u32| event.present & bit != 0;
        let kb = |bit: u32, value: u64| has(bit).then_some(value);
        Kill {
            id: None,
            kind: Kind::Kill,
            time_ns: Some(time_ns),
            boot_id: Some(boot_id.to_owned()),
            boot_ns: Some(event.boot_ns),
            mono_ns: Some(event.mono_ns),
            kmsg_usec: None,
            recorded_ns,
            sources: vec![Source::Ebpf],
            victim: Victim {
                pid: event.victim_pid,
                // The tracepoint carries the victim's pid (a thread id) only.
                tgid: None,
                comm: has(present::COMM).then(|| comm_from_bytes(&event.victim_comm)),
                uid: has(present::UID).then_some(event.victim_uid),
                total_vm_kb: kb(present::TOTAL_VM, event.total_vm_kb),
                anon_rss_kb: kb(present::ANON_RSS, event.anon_rss_kb),
                file_rss_kb: kb(present::FILE_RSS, event.file_rss_kb),
                shmem_rss_kb: kb(present::SHMEM_RSS, event.shmem_rss_kb),
                pgtables_kb: kb(present::PGTABLES, event.pgtables_kb),
                oom_score_adj: has(present::OOM_SCORE_ADJ).then_some(event.oom_score_adj),
            },
            trigger: Trigger {
                pid: Some(event.trigger_pid as i32),
                tgid: Some(event.trigger_tgid as i32),
                comm: Some(comm_from_bytes(&event.trigger_comm)),
                ..Trigger::default()
            },
            ..Kill::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::OOM_EVENT_VERSION;

    #[test]
    fn absent_fields_are_unknown_not_zero() {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::ANON_RSS,
            victim_pid: 7,
            anon_rss_kb: 0,
            total_vm_kb: 0,
            ..OomEvent::default()
        };
        let kill = Kill::from_event(&event, "b", 1, 2);
        assert_eq!(kill.victim.anon_rss_kb, Some(0), "a present zero stays a zero");
        assert_eq!(kill.victim.total_vm_kb, None);
        assert_eq!(kill.victim.comm, None);
        assert_eq!(kill.victim.oom_score_adj, None);
        assert_eq!(kill.victim.tgid, None);
    }

    #[test]
    fn comm_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(comm_from_bytes(b"a b(c).d-e\0junk!"), "a b(c).d-e");
        assert_eq!(comm_from_bytes(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm_from_bytes(b"ok\xff\0\0\0\0\0\0\0\0\0\0\0\0\0"), "ok\u{fffd}");
    }
}
