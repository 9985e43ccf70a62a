//! The record of one OOM victim, as the store keeps it and the CLI shows it.
//!
//! Every figure is an `Option`: `None` means the recorder does not know it
//! (the kernel did not give it), and is written as `null`, never as 0.

pub mod cmdline;
pub mod diagnosis;
pub mod figures;
pub mod from_event;
pub mod from_report;
pub mod identity;
pub mod incident;
pub mod json;
pub mod kernel_state;
pub mod run;
pub mod scope;
pub mod snapshot;

pub use figures::Figures;

/// How far apart (ns) two stamps of one kill may be and still be that kill:
/// the kernel log stamps lines with `local_clock()` (µs since boot,
/// kernel/printk/printk.c) and the eBPF program with CLOCK_MONOTONIC; both
/// stop in suspend and differ by well under a millisecond in practice
/// (measured: 0.75 ms on 6.18), so a generous window costs nothing: a pid
/// is not reused within seconds.
pub const JOIN_WINDOW_NS: u64 = 10_000_000_000;
use figures::fill_missing;
pub use kernel_state::{Badness, KernelState, MemcgLevel, RssPages};

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
    /// The victim's cgroup files, read right after the kill.
    Cgroup,
}

impl Source {
    pub const ALL: [Source; 5] =
        [Source::Ebpf, Source::Kmsg, Source::Journal, Source::Import, Source::Cgroup];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
            Source::Kmsg => "kmsg",
            Source::Journal => "journal",
            Source::Import => "import",
            Source::Cgroup => "cgroup",
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
    pub figures: Figures,
    /// From /proc/<pid> at the event, best effort (`None` once it is gone).
    pub cmdline: Option<String>,
    pub exe: Option<String>,
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
///
/// Its serde form is the store's `oom_json` column only (the JSON output
/// is built key by key in [`json`], with `null` for an unknown): the
/// column leaves unknown fields out, and a field left out reads back as
/// `None`, so older rows with their `null`s read the same. The two cgroup
/// paths have columns of their own (`oom_cgroup`, `task_cgroup`, which
/// `list` filters on): the column leaves them out and a row is read back
/// with them from their columns (store::rows); rows stored before
/// migration 010 hold them in both, and read the same. A kubepods kill's
/// column shrank from 728 bytes to about 440, then to about 70.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Oom {
    /// `Out of memory`, `Memory cgroup out of memory`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The cgroup whose limit was hit (may be an ancestor of the victim's).
    #[serde(default, skip_serializing)]
    pub oom_cgroup: Option<String>,
    /// The victim's own memory cgroup.
    #[serde(default, skip_serializing)]
    pub task_cgroup: Option<String>,
    /// True for a system-wide OOM (`global_oom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<bool>,
    /// The cgroup of a `memory.oom.group` kill this victim was part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_usage_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_usage_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_limit_kb: Option<u64>,
    /// cgroup v1 `memory+swap:` line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memsw_usage_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memsw_limit_kb: Option<u64>,
    /// The `Memory cgroup stats for …` block, keys and values as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_stat: Option<Vec<(String, String)>>,
    /// The task table, each row named by the header's columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Vec<(String, String)>>>,
    /// Pre-5.1 kernels print the victim's badness score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// The victim's kernel state read through BTF at the kill; `None` for
    /// records from the tracepoint program, the kernel log or an import.
    pub kernel: Option<KernelState>,
    /// Who the victim was, from its cgroup path and the node's files.
    pub container: Option<identity::Identity>,
    /// The victim's cgroup files, read right after the kill.
    pub snapshot: Option<snapshot::Snapshot>,
    /// Sentences about what the record does not keep as given: a figure an
    /// imported log printed that no kernel can have (stored as unknown), a
    /// comm cut to the kernel's length.
    pub notes: Vec<String>,
}

impl Victim {
    /// Fills what `self` lacks from `other` (another source's view).
    pub fn fill_from(&mut self, other: &Victim) {
        fill_missing!(self, other; tgid, comm, cmdline, exe);
        self.figures.fill_from(&other.figures);
    }
}

impl Trigger {
    pub fn fill_from(&mut self, other: &Trigger) {
        fill_missing!(self, other; pid, tgid, comm, uid, gfp_mask, order);
    }
}

impl Oom {
    /// Fills what `self` lacks from `other`, field by field: a group kill's
    /// repeated line, or the reaper's figures, add to a report already kept.
    pub fn fill_from(&mut self, other: &Oom) {
        fill_missing!(self, other;
            reason, constraint, oom_cgroup, task_cgroup, global, group_cgroup,
            memory_usage_kb, memory_limit_kb, failcnt, swap_usage_kb, swap_limit_kb,
            memsw_usage_kb, memsw_limit_kb, memory_stat, tasks, score, reaped);
    }
}
