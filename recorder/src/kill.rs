//! The record of one OOM victim, as the store keeps it and the CLI shows it.
//!
//! Every figure is an `Option`: `None` means the recorder does not know it
//! (the kernel did not give it), and is written as `null`, never as 0.

use common::{kpresent, present, rss, OomEvent, PageCounters, COMM_LEN};

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
    pub uid: Option<u32>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
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
    /// The victim's kernel state read through BTF at the kill; `None` for
    /// records from the tracepoint program, the kernel log or an import.
    pub kernel: Option<KernelState>,
    /// Who the victim was, from its cgroup path and the node's files.
    pub container: Option<crate::identity::Identity>,
    /// The victim's cgroup files, read right after the kill.
    pub snapshot: Option<crate::cgroupfs::Snapshot>,
}

/// `mm->rss_stat` of the victim, in pages (include/linux/mm_types_task.h
/// order), as get_mm_counter() reads them (negative approximations clamp to 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RssPages {
    pub file: u64,
    pub anon: u64,
    pub swapents: u64,
    pub shmem: u64,
}

/// One memory cgroup's page counters at the kill, in bytes. `None`: this
/// kernel's BTF lacks the counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemcgLevel {
    pub path: Option<String>,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub memory_low_bytes: Option<u64>,
    pub memory_high_bytes: Option<u64>,
    pub memory_min_bytes: Option<u64>,
    /// v2: `memory.swap`; v1: `memory.memsw` (memory + swap).
    pub swap_usage_bytes: Option<u64>,
    pub swap_limit_bytes: Option<u64>,
}

/// What the raw tracepoint program read from the victim's `task_struct`
/// and its memory cgroup at the instant of the kill.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelState {
    pub page_size: u64,
    /// Time from the victim's fork (`task->start_time`) to the kill.
    pub age_ms: Option<u64>,
    pub min_flt: Option<u64>,
    pub maj_flt: Option<u64>,
    pub rss_pages: Option<RssPages>,
    pub pgtables_bytes: Option<u64>,
    pub nodename: Option<String>,
    pub cgroup_path: Option<String>,
    pub cgroup_id: Option<u64>,
    /// 1 or 2: the memory controller's hierarchy.
    pub cgroup_version: Option<u8>,
    /// The victim's memory cgroup first, then each ancestor up to the root.
    pub memcg: Vec<MemcgLevel>,
    /// `MemTotal` and `SwapTotal` of the machine (pages), for the badness
    /// of a global OOM and the swap share of a cgroup's.
    pub ram_pages: Option<u64>,
    pub swap_pages: Option<u64>,
}

/// `mm/oom_kill.c` `oom_badness()`, recomputed from the recorded figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Badness {
    /// `None` for oom_score_adj -1000 (the task is exempt: LONG_MIN).
    pub points: Option<i64>,
    pub rss_pages: u64,
    pub swap_pages: u64,
    pub pgtables_pages: u64,
    pub adj_pages: i64,
    pub totalpages: u64,
}

/// Headroom (pages) under which a cgroup counts as at its limit: a charge
/// that fails is at most a THP (512 pages on x86-64) and reclaim ran first.
const AT_LIMIT_PAGES: u64 = 512;

impl KernelState {
    /// The index of the memcg that hit its limit, inferred from the counters:
    /// the lowest level whose usage reached its max (within [`AT_LIMIT_PAGES`]).
    /// A limit of PAGE_COUNTER_MAX (include/linux/page_counter.h: LONG_MAX /
    /// PAGE_SIZE pages), i.e. `max`: no limit.
    pub fn is_unlimited(&self, limit_bytes: u64) -> bool {
        let page = self.page_size.max(1);
        limit_bytes >= (i64::MAX as u64 / page) * page
    }

    pub fn inferred_oom_level(&self) -> Option<usize> {
        let page = self.page_size.max(1);
        self.memcg.iter().position(|l| {
            !self.is_unlimited(l.memory_limit_bytes)
                && l.memory_limit_bytes.saturating_sub(l.memory_usage_bytes) <= AT_LIMIT_PAGES * page
        })
    }

    /// `oom_badness()`: rss + swapents + pgtables/PAGE_SIZE +
    /// oom_score_adj * (totalpages / 1000). `oom_level` is the OOM memcg's
    /// level (`None`: a global OOM, totalpages = RAM + swap).
    pub fn badness(&self, oom_score_adj: Option<i32>, oom_level: Option<usize>) -> Option<Badness> {
        let rss = self.rss_pages?;
        let page = self.page_size.max(1);
        let adj = oom_score_adj?;
        let totalpages = match oom_level {
            // mem_cgroup_get_max() (mm/memcontrol.c): memory.max plus the swap
            // it may use, capped by the machine's swap.
            Some(level) => {
                let l = self.memcg.get(level)?;
                let max = l.memory_limit_bytes / page;
                let swap_total = self.swap_pages.unwrap_or(0);
                let swap = match (self.cgroup_version, l.swap_limit_bytes) {
                    (Some(1), Some(memsw)) => (memsw / page).saturating_sub(max),
                    (_, Some(swap)) => swap / page,
                    (_, None) => 0,
                };
                max + swap.min(swap_total)
            }
            None => self.ram_pages? + self.swap_pages.unwrap_or(0),
        };
        let rss_pages = rss.file + rss.anon + rss.shmem;
        let pgtables_pages = self.pgtables_bytes? / page;
        let adj_pages = i64::from(adj) * (totalpages / 1000) as i64;
        // OOM_SCORE_ADJ_MIN exempts the task (include/uapi/linux/oom.h).
        let points = (adj != -1000).then(|| (rss_pages + rss.swapents + pgtables_pages) as i64 + adj_pages);
        Some(Badness { points, rss_pages, swap_pages: rss.swapents, pgtables_pages, adj_pages, totalpages })
    }
}

/// A NUL-terminated name from a fixed buffer.
fn c_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// `/a/b/c` from kernfs names leaf first (`["c", "b", "a"]`); `/` for none.
fn path_from_names(names: &[String]) -> String {
    if names.is_empty() {
        return "/".to_owned();
    }
    names.iter().rev().fold(String::new(), |mut path, name| {
        path.push('/');
        path.push_str(name);
        path
    })
}

impl KernelState {
    /// The BTF-read facts of an event; `None` when the program read none.
    pub fn from_event(event: &OomEvent) -> Option<KernelState> {
        let has = |bit: u32| event.kpresent & bit != 0;
        if event.kpresent == 0 {
            return None;
        }
        let page = 1u64 << event.page_shift.min(30);
        let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
        let depth = (event.cgroup_depth as usize).min(event.cgroup_names.len());
        let names: Vec<String> = event.cgroup_names[..depth].iter().map(|n| c_string(n)).collect();
        let path = has(kpresent::CGROUP_PATH).then(|| path_from_names(&names));
        let levels = (event.memcg_levels as usize).min(event.memcg.len());
        let memcg = if has(kpresent::MEMCG) {
            event.memcg[..levels]
                .iter()
                .enumerate()
                .map(|(i, c): (usize, &PageCounters)| MemcgLevel {
                    // Level i is the cgroup i steps up from the victim's.
                    path: path.as_ref().map(|_| path_from_names(names.get(i..).unwrap_or(&[]))),
                    memory_usage_bytes: c.usage * page,
                    memory_limit_bytes: c.max.saturating_mul(page),
                    memory_low_bytes: has(kpresent::MEMCG_LOW).then(|| c.low.saturating_mul(page)),
                    memory_high_bytes: has(kpresent::MEMCG_HIGH).then(|| c.high.saturating_mul(page)),
                    memory_min_bytes: has(kpresent::MEMCG_MIN).then(|| c.min.saturating_mul(page)),
                    swap_usage_bytes: has(kpresent::MEMCG_SWAP).then(|| c.swap_usage.saturating_mul(page)),
                    swap_limit_bytes: has(kpresent::MEMCG_SWAP).then(|| c.swap_max.saturating_mul(page)),
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(KernelState {
            page_size: page,
            age_ms: has(kpresent::START_TIME)
                .then(|| event.mono_ns.saturating_sub(event.start_time_ns) / 1_000_000),
            min_flt: has(kpresent::FAULTS).then_some(event.min_flt),
            maj_flt: has(kpresent::FAULTS).then_some(event.maj_flt),
            rss_pages: has(kpresent::RSS).then(|| RssPages {
                file: clamp(event.rss_pages[rss::FILE]),
                anon: clamp(event.rss_pages[rss::ANON]),
                swapents: clamp(event.rss_pages[rss::SWAPENTS]),
                shmem: clamp(event.rss_pages[rss::SHMEM]),
            }),
            pgtables_bytes: has(kpresent::PGTABLES).then_some(event.pgtables_bytes),
            nodename: has(kpresent::NODENAME).then(|| c_string(&event.nodename)),
            cgroup_path: path,
            cgroup_id: has(kpresent::CGROUP_ID).then_some(event.cgroup_id),
            cgroup_version: None,
            memcg,
            ram_pages: None,
            swap_pages: None,
        })
    }
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
        let kernel = KernelState::from_event(event);
        // Without the kernel log's report, the victim's cgroup and the limit
        // that was hit come from the kernel's own counters.
        let (cgroup, memory_limit_bytes) = match &kernel {
            Some(k) => {
                let level = k.inferred_oom_level().unwrap_or(0);
                (k.cgroup_path.clone(), k.memcg.get(level).map(|l| l.memory_limit_bytes))
            }
            None => (None, None),
        };
        Kill {
            cgroup,
            memory_limit_bytes,
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
                // The tracepoint carries the victim's pid (a thread id) only;
                // the raw tracepoint program reads the task's tgid.
                tgid: (event.kpresent & kpresent::TGID != 0).then_some(event.victim_tgid),
                comm: has(present::COMM).then(|| comm_from_bytes(&event.victim_comm)),
                uid: has(present::UID).then_some(event.victim_uid),
                total_vm_kb: kb(present::TOTAL_VM, event.total_vm_kb),
                anon_rss_kb: kb(present::ANON_RSS, event.anon_rss_kb),
                file_rss_kb: kb(present::FILE_RSS, event.file_rss_kb),
                shmem_rss_kb: kb(present::SHMEM_RSS, event.shmem_rss_kb),
                pgtables_kb: kb(present::PGTABLES, event.pgtables_kb),
                oom_score_adj: has(present::OOM_SCORE_ADJ).then_some(event.oom_score_adj),
                ..Victim::default()
            },
            trigger: Trigger {
                pid: Some(event.trigger_pid as i32),
                tgid: Some(event.trigger_tgid as i32),
                comm: Some(comm_from_bytes(&event.trigger_comm)),
                ..Trigger::default()
            },
            kernel,
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

    fn name(text: &str) -> [u8; common::CGROUP_NAME_LEN] {
        let mut out = [0; common::CGROUP_NAME_LEN];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out
    }

    /// A raw tracepoint event: a 64 MiB cgroup `/pods/app` at its limit,
    /// under an unlimited `/pods` and the root.
    fn btf_event() -> OomEvent {
        let mut event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::COMM | present::ANON_RSS,
            victim_pid: 42,
            victim_tgid: 40,
            mono_ns: 10_000_000_000,
            start_time_ns: 7_500_000_000,
            page_shift: 12,
            kpresent: kpresent::TGID
                | kpresent::START_TIME
                | kpresent::RSS
                | kpresent::PGTABLES
                | kpresent::CGROUP_PATH
                | kpresent::CGROUP_ID
                | kpresent::MEMCG
                | kpresent::MEMCG_SWAP,
            // A percpu_counter approximation may dip below zero.
            rss_pages: [439, 16_320, 0, -3],
            pgtables_bytes: 184_320,
            cgroup_id: 6635,
            cgroup_depth: 2,
            memcg_levels: 3,
            ..OomEvent::ZERO
        };
        event.cgroup_names[0] = name("app");
        event.cgroup_names[1] = name("pods");
        let unlimited = i64::MAX as u64 / 4096;
        event.memcg[0] = PageCounters { usage: 16_380, max: 16_384, swap_max: 0, ..PageCounters::default() };
        event.memcg[1] = PageCounters { usage: 20_000, max: unlimited, ..PageCounters::default() };
        event.memcg[2] = PageCounters { usage: 90_000, max: unlimited, ..PageCounters::default() };
        event
    }

    #[test]
    fn kernel_state_from_a_raw_tracepoint_event() {
        let kill = Kill::from_event(&btf_event(), "b", 1, 2);
        let k = kill.kernel.as_ref().unwrap();
        assert_eq!(kill.victim.tgid, Some(40));
        assert_eq!(k.age_ms, Some(2_500));
        assert_eq!(k.rss_pages, Some(RssPages { file: 439, anon: 16_320, swapents: 0, shmem: 0 }), "clamped");
        assert_eq!(k.cgroup_path.as_deref(), Some("/pods/app"));
        let paths: Vec<_> = k.memcg.iter().map(|l| l.path.as_deref()).collect();
        assert_eq!(paths, [Some("/pods/app"), Some("/pods"), Some("/")]);
        assert_eq!(k.memcg[0].memory_limit_bytes, 64 << 20);
        assert_eq!(k.memcg[0].memory_low_bytes, None, "not read: unknown, not 0");
        assert_eq!(k.memcg[0].swap_limit_bytes, Some(0));
        assert_eq!((k.min_flt, k.nodename.as_deref()), (None, None));
        assert_eq!(k.inferred_oom_level(), Some(0));
        // No kernel log yet: list's cgroup and limit come from the counters.
        assert_eq!(kill.cgroup.as_deref(), Some("/pods/app"));
        assert_eq!(kill.memory_limit_bytes, Some(64 << 20));

        let mut cut = btf_event();
        cut.kpresent &= !kpresent::CGROUP_PATH;
        let k = KernelState::from_event(&cut).unwrap();
        assert_eq!(k.cgroup_path, None, "a path that did not reach the root is unknown");
        assert!(k.memcg.iter().all(|l| l.path.is_none()));

        let tracepoint = OomEvent { version: OOM_EVENT_VERSION, victim_pid: 1, ..OomEvent::ZERO };
        assert_eq!(Kill::from_event(&tracepoint, "b", 1, 2).kernel, None);
    }

    #[test]
    fn badness_is_the_kernels_sum() {
        let mut k = KernelState::from_event(&btf_event()).unwrap();
        k.cgroup_version = Some(2);
        k.ram_pages = Some(500_000);
        k.swap_pages = Some(0);
        // memcg OOM: totalpages = memory.max (+ swap.max, capped by swap).
        let b = k.badness(Some(0), Some(0)).unwrap();
        assert_eq!((b.rss_pages, b.pgtables_pages, b.totalpages), (16_759, 45, 16_384));
        assert_eq!(b.points, Some(16_804));
        // adj * (totalpages / 1000), integer division first (mm/oom_kill.c).
        let b = k.badness(Some(500), Some(0)).unwrap();
        assert_eq!(b.adj_pages, 500 * 16);
        assert_eq!(b.points, Some(16_804 + 8_000));
        // Global: RAM + swap.
        assert_eq!(k.badness(Some(0), None).unwrap().totalpages, 500_000);
        // -1000 exempts the task.
        assert_eq!(k.badness(Some(-1000), Some(0)).unwrap().points, None);
        // Unknown adj or no rss: no badness, never a made-up one.
        assert_eq!(k.badness(None, Some(0)), None);
        // v1: memsw is memory + swap; the swap share is memsw - memory.
        k.cgroup_version = Some(1);
        k.swap_pages = Some(1_000_000);
        k.memcg[0].swap_limit_bytes = Some((16_384 + 100) * 4096);
        assert_eq!(k.badness(Some(0), Some(0)).unwrap().totalpages, 16_484);
    }

    #[test]
    fn the_oom_cgroup_is_the_lowest_at_its_limit() {
        let mut k = KernelState::from_event(&btf_event()).unwrap();
        k.memcg[0].memory_usage_bytes = 8 << 20;
        assert_eq!(k.inferred_oom_level(), None, "none at its limit, unlimited ones never count");
        k.memcg[1].memory_limit_bytes = 20_100 * 4096;
        assert_eq!(k.inferred_oom_level(), Some(1), "the parent (a pod) hit its limit");
    }

    #[test]
    fn comm_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(comm_from_bytes(b"a b(c).d-e\0junk!"), "a b(c).d-e");
        assert_eq!(comm_from_bytes(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm_from_bytes(b"ok\xff\0\0\0\0\0\0\0\0\0\0\0\0\0"), "ok\u{fffd}");
    }
}
