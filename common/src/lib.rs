//! Types shared by the eBPF program (`recorder-ebpf`) and the daemon
//! (`recorder`). Each layout is defined here once; both sides compile against it.
//!
//! Rules for every shared struct (they cross the kernel/user boundary as raw
//! bytes): `#[repr(C)]`, fixed-size arrays, integers instead of `bool`, explicit
//! padding fields so no byte is uninitialised, and a size assertion.
#![no_std]

use core::mem::size_of;

/// `TASK_COMM_LEN` in include/linux/sched.h: a task name is at most 15 bytes
/// plus a NUL.
pub const COMM_LEN: usize = 16;

/// Layout version of [`OomEvent`]. Bump it whenever a field moves; user space
/// refuses events of any other version instead of misreading them.
pub const OOM_EVENT_VERSION: u32 = 5;

/// Bits of [`OomEvent::present`]: which `oom:mark_victim` fields the running
/// kernel has. Kernels without commit 72ba14deb40a (mainline 6.9; backported
/// to the 6.1/5.15/5.10/5.4 stable lines in 2025) carry only `pid`.
pub mod present {
    pub const COMM: u32 = 1 << 0;
    pub const TOTAL_VM: u32 = 1 << 1;
    pub const ANON_RSS: u32 = 1 << 2;
    pub const FILE_RSS: u32 = 1 << 3;
    pub const SHMEM_RSS: u32 = 1 << 4;
    pub const UID: u32 = 1 << 5;
    pub const PGTABLES: u32 = 1 << 6;
    pub const OOM_SCORE_ADJ: u32 = 1 << 7;
}

/// One OOM victim, written by `oom_mark_victim` into the ring buffer.
///
/// The `*_kb` figures are the tracepoint's, in kB exactly as it gives them
/// (include/trace/events/oom.h, `TRACE_EVENT(mark_victim)`, which converts
/// pages with `K()`); the raw tracepoint program leaves them zero with their
/// `present` bits clear and copies the kernel's counters in their own units
/// (pages, bytes) into the version 2 fields. A field whose bit is clear is
/// unknown, never zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomEvent {
    /// [`OOM_EVENT_VERSION`].
    pub version: u32,
    /// Bits from [`present`].
    pub present: u32,
    /// `bpf_ktime_get_boot_ns()` at the tracepoint: CLOCK_BOOTTIME, counts suspend.
    pub boot_ns: u64,
    /// `bpf_ktime_get_ns()` at the tracepoint: CLOCK_MONOTONIC, which does not
    /// count suspend, like the kernel log's timestamps.
    pub mono_ns: u64,
    /// Victim's `task->pid` (a thread id; equal to the tgid for a
    /// single-threaded process).
    pub victim_pid: i32,
    pub victim_uid: u32,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub pgtables_kb: u64,
    /// The current task at the tracepoint, i.e. the task whose allocation
    /// triggered the OOM (or the oom_reaper / a group-kill walker).
    pub trigger_pid: u32,
    pub trigger_tgid: u32,
    /// `short` in the tracepoint, widened.
    pub oom_score_adj: i32,
    /// Bits from [`eflags`]: whether a [`MemcgPart`] follows, or the one of
    /// an earlier event stands for this victim's too.
    pub flags: u32,
    pub victim_comm: [u8; COMM_LEN],
    pub trigger_comm: [u8; COMM_LEN],

    // Version 2 (3: no longer also converted to the kB fields above): the
    // victim's kernel state, read through BTF offsets by the
    // raw tracepoint program (`oom_mark_victim_raw`). All zero, with
    // `kpresent` 0, when the plain tracepoint program ran.
    /// Bits from [`kpresent`].
    pub kpresent: u32,
    pub victim_tgid: i32,
    /// `task->start_time`: CLOCK_MONOTONIC ns at fork (include/linux/sched.h).
    pub start_time_ns: u64,
    pub min_flt: u64,
    pub maj_flt: u64,
    /// `mm->rss_stat`, in pages, indexed by [`rss`]. Signed: from 6.2 each is
    /// a `percpu_counter`'s approximate `count`, which can dip below zero.
    pub rss_pages: [i64; 4],
    pub pgtables_bytes: u64,
    pub total_vm_pages: u64,
    /// `kn->id` of the victim's memory cgroup (its directory's inode number).
    pub cgroup_id: u64,
    /// log2 of the page size, so user space can turn pages into bytes.
    pub page_shift: u32,
    pub _pad2: u32,
    /// `task->nsproxy->uts_ns->name.nodename`: the victim's hostname (a
    /// container's own), NUL-terminated (`__NEW_UTS_LEN` 64 + 1).
    pub nodename: [u8; NODENAME_LEN],
    /// The victim's `struct mem_cgroup` address: links an event flagged
    /// [`eflags::SAME_MEMCG`] to the earlier one that carries the figures.
    /// Never shown or stored.
    pub memcg_key: u64,
}

pub const OOM_EVENT_SIZE: usize = 296;
const _: () = assert!(size_of::<OomEvent>() == OOM_EVENT_SIZE);

/// Bits of [`OomEvent::flags`].
pub mod eflags {
    /// A [`super::MemcgPart`] follows the event (an [`super::OomEventFull`]).
    pub const HAS_MEMCG: u32 = 1 << 0;
    /// The victim's memory cgroup's figures are those of the last event with
    /// this `memcg_key` that had them: a member of a memory.oom.group kill,
    /// whose cgroup's figures the program read for an earlier member of the
    /// same kill (one `oom_kill_process()`; the proof that it is the same
    /// kill is at `group_kill_key` in recorder-ebpf/src/main.rs).
    pub const SAME_MEMCG: u32 = 1 << 1;
}

/// The victim's memory cgroups at the kill: its own and each ancestor's page
/// counters, its path, and the own figures of its cgroup and of the one
/// whose limit was hit. Read once per OOM and cgroup: the victims of one
/// memory.oom.group kill share it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemcgPart {
    /// Bits from [`mpresent`].
    pub present: u32,
    /// How many names `cgroup_names` holds, leaf first.
    pub cgroup_depth: u32,
    /// How many levels `memcg` holds: the victim's memory cgroup, then its
    /// ancestors up to the root.
    pub memcg_levels: u32,
    /// The level of `memcg` whose limit was hit: the lowest whose usage is
    /// within [`AT_LIMIT_PAGES`] of a limit (valid with `mpresent::OOM_LEVEL`).
    pub oom_level: u32,
    /// How many of `details` hold figures.
    pub detail_count: u32,
    pub _pad: u32,
    /// kernfs names of the victim's memory cgroup and its parents, leaf
    /// first, each NUL-terminated (truncated names clear `CGROUP_PATH`).
    pub cgroup_names: [[u8; CGROUP_NAME_LEN]; CGROUP_MAX_DEPTH],
    pub memcg: [PageCounters; MEMCG_MAX_LEVELS],
    /// The victim's memory cgroup (level 0) and, when it is another one,
    /// the cgroup whose limit was hit.
    pub details: [MemcgDetail; 2],
}

pub const MEMCG_PART_SIZE: usize = 2312;
const _: () = assert!(size_of::<MemcgPart>() == MEMCG_PART_SIZE);

/// An event with its memory cgroups: what the ring buffer holds for the
/// first victim of an OOM in a cgroup.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomEventFull {
    pub event: OomEvent,
    pub memcg: MemcgPart,
}

pub const OOM_EVENT_FULL_SIZE: usize = OOM_EVENT_SIZE + MEMCG_PART_SIZE;
const _: () = assert!(size_of::<OomEventFull>() == OOM_EVENT_FULL_SIZE);

/// Headroom (pages) under which a cgroup counts as at its limit: a charge
/// that fails is at most a THP (512 pages on x86-64) and reclaim ran first.
pub const AT_LIMIT_PAGES: u64 = 512;

/// `memory.stat` items read per memory cgroup at the kill. Which kernel
/// item each slot holds is user space's table (recorder/src/kernel/memstat.rs);
/// the program reads `state[KernelLayout::stat_index[slot]]`.
pub const MEMCG_STAT_SLOTS: usize = 32;
/// `memory.events` counters read per memory cgroup, by
/// `KernelLayout::event_index`.
pub const MEMCG_EVENT_SLOTS: usize = 8;
/// `NR_LRU_LISTS` (include/linux/mmzone.h `enum lru_list`).
pub const LRU_LISTS: usize = 5;
/// NUMA nodes and zones whose LRU sizes are summed (bounds for the verifier;
/// `KernelLayout::nr_nodes`/`nr_zones` are the running kernel's).
pub const MAX_NODES: u32 = 8;
pub const MAX_ZONES: u32 = 8;

/// An index of `stat_index`/`event_index` this kernel does not have.
pub const NO_INDEX: u16 = u16::MAX;

/// What each `memory.stat` and `memory.events` slot of [`MemcgDetail`]
/// holds: the key cgroup v2's files name it by, and the kernel enumerator
/// it is (whose value, from BTF, user space turns into an index).
pub mod memstat {
    use super::{MEMCG_EVENT_SLOTS, MEMCG_STAT_SLOTS};

    /// How the kernel counts an item.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Unit {
        Pages,
        Bytes,
        /// `NR_KERNEL_STACK_KB`.
        Kb,
    }

    /// One `memory.stat` item: its key as cgroup v2's `memory.stat` names it
    /// (mm/memcontrol.c `memory_stats[]`), the enumerator it is, its unit.
    pub struct Item {
        pub key: &'static str,
        pub enumerator: &'static str,
        pub unit: Unit,
    }

    const fn item(key: &'static str, enumerator: &'static str, unit: Unit) -> Item {
        Item { key, enumerator, unit }
    }

    /// The slots, in order. What explains a kill first; the rest is what the
    /// kernel also keeps (at most `MEMCG_STAT_SLOTS`).
    pub const ITEMS: [Item; 28] = [
        item("anon", "NR_ANON_MAPPED", Unit::Pages),
        item("file", "NR_FILE_PAGES", Unit::Pages),
        item("kernel", "MEMCG_KMEM", Unit::Pages),
        item("kernel_stack", "NR_KERNEL_STACK_KB", Unit::Kb),
        item("pagetables", "NR_PAGETABLE", Unit::Pages),
        item("sec_pagetables", "NR_SECONDARY_PAGETABLE", Unit::Pages),
        item("percpu", "MEMCG_PERCPU_B", Unit::Bytes),
        item("sock", "MEMCG_SOCK", Unit::Pages),
        item("vmalloc", "MEMCG_VMALLOC", Unit::Pages),
        item("shmem", "NR_SHMEM", Unit::Pages),
        item("zswap", "MEMCG_ZSWAP_B", Unit::Bytes),
        item("zswapped", "MEMCG_ZSWAPPED", Unit::Pages),
        item("file_mapped", "NR_FILE_MAPPED", Unit::Pages),
        item("file_dirty", "NR_FILE_DIRTY", Unit::Pages),
        item("file_writeback", "NR_WRITEBACK", Unit::Pages),
        item("swapcached", "NR_SWAPCACHE", Unit::Pages),
        item("anon_thp", "NR_ANON_THPS", Unit::Pages),
        item("file_thp", "NR_FILE_THPS", Unit::Pages),
        item("shmem_thp", "NR_SHMEM_THPS", Unit::Pages),
        item("inactive_anon", "NR_INACTIVE_ANON", Unit::Pages),
        item("active_anon", "NR_ACTIVE_ANON", Unit::Pages),
        item("inactive_file", "NR_INACTIVE_FILE", Unit::Pages),
        item("active_file", "NR_ACTIVE_FILE", Unit::Pages),
        item("unevictable", "NR_UNEVICTABLE", Unit::Pages),
        item("slab_reclaimable", "NR_SLAB_RECLAIMABLE_B", Unit::Bytes),
        item("slab_unreclaimable", "NR_SLAB_UNRECLAIMABLE_B", Unit::Bytes),
        item("hugetlb", "NR_HUGETLB", Unit::Pages),
        // cgroup v1's `swap`: memory+swap minus memory, in pages.
        item("swap", "MEMCG_SWAP", Unit::Pages),
    ];

    const _: () = assert!(ITEMS.len() <= MEMCG_STAT_SLOTS);

    /// `memory.events` counters, by `enum memcg_memory_event`
    /// (include/linux/memcontrol.h); `oom_group_kill` is 5.12+.
    pub const EVENTS: [(&str, &str); 6] = [
        ("low", "MEMCG_LOW"),
        ("high", "MEMCG_HIGH"),
        ("max", "MEMCG_MAX"),
        ("oom", "MEMCG_OOM"),
        ("oom_kill", "MEMCG_OOM_KILL"),
        ("oom_group_kill", "MEMCG_OOM_GROUP_KILL"),
    ];

    const _: () = assert!(EVENTS.len() <= MEMCG_EVENT_SLOTS);

    /// The slot of `oom_group_kill`, which tells one group kill from the next.
    pub const OOM_GROUP_KILL_SLOT: usize = 5;
}

/// One memory cgroup's own figures at the kill, beyond its page counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemcgDetail {
    /// Which level of [`OomEvent::memcg`] this is (0: the victim's own).
    pub level: u32,
    /// Bits from [`dpresent`].
    pub present: u32,
    /// Bit `i`: `stats[i]` was read (the kernel has that item).
    pub stat_slots: u32,
    /// Bit `i`: `events[i]` was read.
    pub event_slots: u32,
    /// `memcg_vmstats.state[]` (hierarchical, as `memory.stat` shows it)
    /// for each slot, in the kernel's own unit of that item.
    pub stats: [i64; MEMCG_STAT_SLOTS],
    /// `mem_cgroup.memory_events[]` for each slot (hierarchical on v2).
    pub events: [u64; MEMCG_EVENT_SLOTS],
    /// Pages on each LRU list (`enum lru_list` order: inactive anon, active
    /// anon, inactive file, active file, unevictable) of this cgroup alone,
    /// summed over nodes and zones: `mem_cgroup_per_node.lru_zone_size`,
    /// which the kernel keeps exact (`mem_cgroup_update_lru_size`, under the
    /// LRU lock), unlike `stats`, which it flushes lazily.
    pub lru_pages: [u64; LRU_LISTS],
    /// v1's `kmem` page counter, pages.
    pub kmem_usage: u64,
    pub kmem_max: u64,
    /// Updates not yet flushed into `stats` (`memcg_vmstats.stats_updates`).
    pub pending_updates: u64,
    pub swappiness: i32,
    /// `memory.oom.group`.
    pub oom_group: u32,
}

const _: () = assert!(size_of::<MemcgDetail>() == 408);

/// Bits of [`MemcgDetail::present`].
pub mod dpresent {
    pub const STATS: u32 = 1 << 0;
    pub const EVENTS: u32 = 1 << 1;
    pub const KMEM: u32 = 1 << 2;
    pub const PENDING: u32 = 1 << 3;
    pub const SWAPPINESS: u32 = 1 << 4;
    pub const OOM_GROUP: u32 = 1 << 5;
    pub const LRU: u32 = 1 << 6;
}

impl MemcgDetail {
    pub const ZERO: MemcgDetail = MemcgDetail {
        level: 0,
        present: 0,
        stat_slots: 0,
        event_slots: 0,
        stats: [0; MEMCG_STAT_SLOTS],
        events: [0; MEMCG_EVENT_SLOTS],
        lru_pages: [0; LRU_LISTS],
        kmem_usage: 0,
        kmem_max: 0,
        pending_updates: 0,
        swappiness: 0,
        oom_group: 0,
    };
}

/// Bytes kept of the victim's UTS nodename (`__NEW_UTS_LEN` + 1 = 65, rounded up).
pub const NODENAME_LEN: usize = 72;
/// Bytes kept of each cgroup directory name (longer names make the path unknown).
pub const CGROUP_NAME_LEN: usize = 128;
/// cgroup levels walked up from the victim's memory cgroup (Kubernetes pods
/// on systemd hosts are 4 deep).
pub const CGROUP_MAX_DEPTH: usize = 8;
/// Memory cgroups whose page counters are read: the victim's and ancestors.
pub const MEMCG_MAX_LEVELS: usize = 8;

/// Indices of [`OomEvent::rss_pages`]: the kernel's own order of
/// `enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES }`
/// (include/linux/mm_types_task.h).
pub mod rss {
    pub const FILE: usize = 0;
    pub const ANON: usize = 1;
    pub const SWAPENTS: usize = 2;
    pub const SHMEM: usize = 3;
}

/// Bits of [`OomEvent::kpresent`]: which kernel-state figures the raw
/// tracepoint program read. A clear bit means unknown (field absent from this
/// kernel's BTF, or the read failed), never zero.
pub mod kpresent {
    pub const TGID: u32 = 1 << 0;
    pub const START_TIME: u32 = 1 << 1;
    pub const FAULTS: u32 = 1 << 2;
    pub const RSS: u32 = 1 << 3;
    pub const PGTABLES: u32 = 1 << 4;
    pub const TOTAL_VM: u32 = 1 << 5;
    pub const NODENAME: u32 = 1 << 6;
    pub const CGROUP_ID: u32 = 1 << 7;
}

/// Bits of [`MemcgPart::present`].
pub mod mpresent {
    /// `cgroup_names` reaches the root: the path is complete.
    pub const CGROUP_PATH: u32 = 1 << 0;
    /// `memcg[..memcg_levels]` usage and max are read.
    pub const MEMCG: u32 = 1 << 1;
    pub const MEMCG_LOW: u32 = 1 << 2;
    pub const MEMCG_HIGH: u32 = 1 << 3;
    pub const MEMCG_MIN: u32 = 1 << 4;
    /// `swap_*` of `memcg` hold `memory.swap` (v2) or `memory.memsw` (v1).
    pub const MEMCG_SWAP: u32 = 1 << 5;
    /// The swap counter is v1's memory+swap (`memsw`), not v2's swap.
    pub const MEMCG_MEMSW: u32 = 1 << 6;
    /// `oom_level` was inferred from the page counters.
    pub const OOM_LEVEL: u32 = 1 << 7;
}

/// One memory cgroup's `struct page_counter`s (include/linux/page_counter.h),
/// in pages, as read at the kill.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCounters {
    pub usage: u64,
    pub max: u64,
    pub low: u64,
    pub high: u64,
    pub min: u64,
    pub swap_usage: u64,
    pub swap_max: u64,
}

const _: () = assert!(size_of::<PageCounters>() == 56);

/// Which [`KernelLayout`] offsets this kernel's BTF gave: bit set = the
/// offset is valid and the program may read it.
pub mod kfield {
    pub const TASK_PID: u64 = 1 << 0;
    pub const TASK_TGID: u64 = 1 << 1;
    pub const TASK_COMM: u64 = 1 << 2;
    pub const TASK_START_TIME: u64 = 1 << 3;
    pub const TASK_FAULTS: u64 = 1 << 4;
    pub const UID: u64 = 1 << 5;
    pub const OOM_SCORE_ADJ: u64 = 1 << 6;
    pub const MM: u64 = 1 << 7;
    pub const TOTAL_VM: u64 = 1 << 8;
    pub const RSS: u64 = 1 << 9;
    pub const PGTABLES: u64 = 1 << 10;
    pub const NODENAME: u64 = 1 << 11;
    pub const MEMCG_CSS: u64 = 1 << 12;
    pub const CGROUP_KN: u64 = 1 << 13;
    pub const KN_ID: u64 = 1 << 14;
    pub const CSS_PARENT: u64 = 1 << 15;
    pub const MEMCG: u64 = 1 << 16;
    pub const PC_LOW: u64 = 1 << 17;
    pub const PC_HIGH: u64 = 1 << 18;
    pub const PC_MIN: u64 = 1 << 19;
    pub const MEMCG_SWAP: u64 = 1 << 20;
    /// The swap counter is v1's `memsw`.
    pub const MEMCG_MEMSW: u64 = 1 << 21;
    /// `memory.stat` items: `mem_cgroup.vmstats` and the slots' indices.
    pub const MEMCG_STATS: u64 = 1 << 22;
    /// `mem_cgroup.vmstats` is a pointer (6.1+), not embedded.
    pub const VMSTATS_PTR: u64 = 1 << 23;
    /// `memcg_vmstats.stats_updates`: the updates not yet flushed.
    pub const MEMCG_PENDING: u64 = 1 << 24;
    pub const MEMCG_EVENTS: u64 = 1 << 25;
    pub const MEMCG_OOM_GROUP: u64 = 1 << 26;
    pub const MEMCG_SWAPPINESS: u64 = 1 << 27;
    /// v1's `mem_cgroup.kmem` page counter.
    pub const MEMCG_KMEM: u64 = 1 << 28;
    /// `mem_cgroup.nodeinfo[]` and `mem_cgroup_per_node.lru_zone_size`.
    pub const MEMCG_LRU: u64 = 1 << 29;
    /// What tells a memory.oom.group kill's members apart from every other
    /// victim, and one group kill from the next: the task iterator of the
    /// walk (`css_task_iter`, `css_set.task_iters`, `task_struct.stack` and
    /// `group_leader`, `cgroup_subsys_state.ss`) and the
    /// `MEMCG_OOM_GROUP_KILL` counter. Without it every victim carries its
    /// own cgroup figures.
    pub const GROUP_WALK: u64 = 1 << 30;
}

/// Indices of [`KernelLayout::offsets`]: each kernel structure member the
/// raw tracepoint program reads. Which structure each belongs to, and where
/// user space finds it in BTF, is the field table of
/// `recorder/src/kernel/fields.rs`; adding a member is a constant here, a
/// row there and the read in the program.
pub mod off {
    // struct task_struct (include/linux/sched.h)
    pub const TASK_PID: usize = 0;
    pub const TASK_TGID: usize = 1;
    pub const TASK_COMM: usize = 2;
    pub const TASK_START_TIME: usize = 3;
    pub const TASK_MIN_FLT: usize = 4;
    pub const TASK_MAJ_FLT: usize = 5;
    pub const TASK_REAL_CRED: usize = 6;
    pub const TASK_SIGNAL: usize = 7;
    pub const TASK_MM: usize = 8;
    pub const TASK_NSPROXY: usize = 9;
    pub const TASK_CGROUPS: usize = 10;
    /// `cred->uid.val` (include/linux/cred.h).
    pub const CRED_UID: usize = 11;
    /// `signal_struct->oom_score_adj`, a `short`.
    pub const SIGNAL_OOM_SCORE_ADJ: usize = 12;
    // struct mm_struct (include/linux/mm_types.h)
    pub const MM_TOTAL_VM: usize = 13;
    /// Offset of counter 0's value: `rss_stat.count[0].counter` before 6.2,
    /// `rss_stat[0].count` from 6.2 (stride in [`super::KernelLayout::mm_rss_stride`]).
    pub const MM_RSS: usize = 14;
    pub const MM_PGTABLES_BYTES: usize = 15;
    /// `nsproxy->uts_ns`, then `uts_namespace->name.nodename`.
    pub const NSPROXY_UTS_NS: usize = 16;
    pub const UTS_NODENAME: usize = 17;
    /// `css_set->subsys[memory_cgrp_id]` (include/linux/cgroup-defs.h).
    pub const CSS_SET_MEMORY: usize = 18;
    pub const CSS_CGROUP: usize = 19;
    pub const CSS_PARENT: usize = 20;
    pub const CGROUP_KN: usize = 21;
    /// `kernfs_node` name, parent (`__parent` from 6.15) and id
    /// (include/linux/kernfs.h).
    pub const KN_NAME: usize = 22;
    pub const KN_PARENT: usize = 23;
    pub const KN_ID: usize = 24;
    /// `mem_cgroup` members (include/linux/memcontrol.h): its `css`, and the
    /// `memory` and `swap`/`memsw` page counters.
    pub const MEMCG_CSS: usize = 25;
    pub const MEMCG_MEMORY: usize = 26;
    pub const MEMCG_SWAP: usize = 27;
    /// `page_counter` members (include/linux/page_counter.h).
    pub const PC_USAGE: usize = 28;
    pub const PC_MAX: usize = 29;
    pub const PC_LOW: usize = 30;
    pub const PC_HIGH: usize = 31;
    pub const PC_MIN: usize = 32;
    /// `mem_cgroup.vmstats` (a pointer from 6.1, embedded before; an array
    /// of counters itself in 5.10), then `state[]` inside it.
    pub const MEMCG_VMSTATS: usize = 33;
    pub const VMSTATS_STATE: usize = 34;
    pub const VMSTATS_PENDING: usize = 35;
    pub const MEMCG_EVENTS: usize = 36;
    pub const MEMCG_OOM_GROUP: usize = 37;
    pub const MEMCG_SWAPPINESS: usize = 38;
    pub const MEMCG_KMEM: usize = 39;
    pub const MEMCG_NODEINFO: usize = 40;
    pub const PN_LRU_ZONE_SIZE: usize = 41;
    /// `task_struct.stack` (the base of its kernel stack) and
    /// `task_struct.group_leader`.
    pub const TASK_STACK: usize = 42;
    pub const TASK_GROUP_LEADER: usize = 43;
    /// `cgroup_subsys_state.ss`: the controller a css belongs to.
    pub const CSS_SS: usize = 44;
    /// `css_set.task_iters`, the list of task iterators walking the set,
    /// and in `struct css_task_iter` (include/linux/cgroup.h) its `ss`,
    /// `cur_task` (the task it last returned) and `iters_node` (its entry
    /// in that list).
    pub const CSS_SET_TASK_ITERS: usize = 45;
    pub const ITER_SS: usize = 46;
    pub const ITER_CUR_TASK: usize = 47;
    pub const ITER_NODE: usize = 48;
    pub const COUNT: usize = 49;
}

/// Offsets (bytes) into kernel structures, resolved by user space from
/// `/sys/kernel/btf/vmlinux` and handed to the raw tracepoint program as the
/// global `KERNEL_LAYOUT`. Rust eBPF gets no compiler CO-RE relocations; this
/// struct is how the program follows struct layout changes across kernels.
/// An offset is only meaningful when the [`kfield`] bit of the figure that
/// needs it is set in `fields`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    pub fields: u64,
    pub page_shift: u32,
    /// Bytes from one `rss_stat` counter to the next (8, or
    /// `sizeof(struct percpu_counter)`).
    pub mm_rss_stride: u32,
    /// Kernel index of MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES.
    pub mm_rss_index: [u32; 4],
    /// Indexed by [`off`].
    pub offsets: [u32; off::COUNT],
    /// `state[]` index of each `memory.stat` slot, [`NO_INDEX`] for none.
    pub stat_index: [u16; MEMCG_STAT_SLOTS],
    /// `memory_events[]` index of each event slot, [`NO_INDEX`] for none.
    pub event_index: [u16; MEMCG_EVENT_SLOTS],
    /// Bytes of `stats_updates` (an atomic64_t in 6.8-6.12, atomic_t later).
    pub pending_width: u32,
    /// NUMA nodes possible (`nr_node_ids`), zones per node (MAX_NR_ZONES),
    /// LRU lists (NR_LRU_LISTS): the shape of `lru_zone_size[zone][lru]`.
    pub nr_nodes: u32,
    pub nr_zones: u32,
    pub nr_lru: u32,
    pub _pad: u32,
}

const _: () = assert!(size_of::<KernelLayout>() == 328);

impl KernelLayout {
    /// Nothing known: the program's compiled-in default, replaced at load.
    pub const ABSENT: KernelLayout = KernelLayout {
        fields: 0,
        page_shift: 12,
        mm_rss_stride: 0,
        mm_rss_index: [0; 4],
        offsets: [0; off::COUNT],
        stat_index: [NO_INDEX; MEMCG_STAT_SLOTS],
        event_index: [NO_INDEX; MEMCG_EVENT_SLOTS],
        pending_width: 0,
        nr_nodes: 0,
        nr_zones: 0,
        nr_lru: 0,
        _pad: 0,
    };

    pub const fn has(&self, field: u64) -> bool {
        self.fields & field == field
    }

    /// The offset at index `member` of [`off`].
    #[inline(always)]
    pub const fn at(&self, member: usize) -> u32 {
        self.offsets[member]
    }
}

/// Where one tracepoint field sits in the raw record, as the tracefs `format`
/// file says (`offset:N; size:N;`). `size == 0` means this kernel lacks it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TpField {
    pub offset: u32,
    pub size: u32,
}

impl TpField {
    pub const ABSENT: TpField = TpField { offset: 0, size: 0 };

    pub const fn is_present(&self) -> bool {
        self.size != 0
    }
}

/// Field offsets of `oom:mark_victim` on the running kernel, read from
/// `/sys/kernel/tracing/events/oom/mark_victim/format` at start and handed to
/// the program as the global `MARK_VICTIM_LAYOUT`. Rust eBPF gets no CO-RE
/// relocations for tracepoint records, so this is how the program follows
/// layout changes across kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarkVictimLayout {
    pub pid: TpField,
    /// `__data_loc char[] comm`: a u32 whose low 16 bits are the string's
    /// offset in the record and high 16 bits its length
    /// (include/trace/stages/stage2_data_offsets.h).
    pub comm: TpField,
    pub total_vm: TpField,
    pub anon_rss: TpField,
    pub file_rss: TpField,
    pub shmem_rss: TpField,
    pub uid: TpField,
    pub pgtables: TpField,
    pub oom_score_adj: TpField,
}

const _: () = assert!(size_of::<MarkVictimLayout>() == 72);

impl MarkVictimLayout {
    /// Every field absent: the program's compiled-in default, replaced at load.
    pub const ABSENT: MarkVictimLayout = MarkVictimLayout {
        pid: TpField::ABSENT,
        comm: TpField::ABSENT,
        total_vm: TpField::ABSENT,
        anon_rss: TpField::ABSENT,
        file_rss: TpField::ABSENT,
        shmem_rss: TpField::ABSENT,
        uid: TpField::ABSENT,
        pgtables: TpField::ABSENT,
        oom_score_adj: TpField::ABSENT,
    };

    /// The [`present`] bits this layout will set in every event.
    pub const fn present_bits(&self) -> u32 {
        let mut bits = 0;
        if self.comm.is_present() {
            bits |= present::COMM;
        }
        if self.total_vm.is_present() {
            bits |= present::TOTAL_VM;
        }
        if self.anon_rss.is_present() {
            bits |= present::ANON_RSS;
        }
        if self.file_rss.is_present() {
            bits |= present::FILE_RSS;
        }
        if self.shmem_rss.is_present() {
            bits |= present::SHMEM_RSS;
        }
        if self.uid.is_present() {
            bits |= present::UID;
        }
        if self.pgtables.is_present() {
            bits |= present::PGTABLES;
        }
        if self.oom_score_adj.is_present() {
            bits |= present::OOM_SCORE_ADJ;
        }
        bits
    }
}

/// Indices into the per-CPU `COUNTERS` array. User space sums the CPUs.
pub mod counter {
    /// `oom:mark_victim` hits: every victim the kernel marked.
    pub const SEEN: u32 = 0;
    /// Events lost because the ring buffer was full (`bpf_ringbuf_reserve`
    /// returned NULL). Never silent: the daemon reports and stores the count.
    pub const RINGBUF_FULL: u32 = 1;
    /// Number of counters.
    pub const COUNT: u32 = 2;
}

/// Why raw ring-buffer bytes are not an [`OomEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is not exactly [`OOM_EVENT_SIZE`] bytes.
    Length { got: usize },
    /// The record was written by a program of another layout version.
    Version { got: u32 },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Length { got } => {
                write!(f, "event is {got} bytes, expected {OOM_EVENT_SIZE} or {OOM_EVENT_FULL_SIZE} as its flags say")
            }
            DecodeError::Version { got } => {
                write!(f, "event layout version {got}, expected {OOM_EVENT_VERSION}")
            }
        }
    }
}

impl OomEvent {
    /// Every field zero (arrays this long have no derived `Default`).
    pub const ZERO: OomEvent = OomEvent {
        version: 0,
        present: 0,
        boot_ns: 0,
        mono_ns: 0,
        victim_pid: 0,
        victim_uid: 0,
        total_vm_kb: 0,
        anon_rss_kb: 0,
        file_rss_kb: 0,
        shmem_rss_kb: 0,
        pgtables_kb: 0,
        trigger_pid: 0,
        trigger_tgid: 0,
        oom_score_adj: 0,
        flags: 0,
        victim_comm: [0; COMM_LEN],
        trigger_comm: [0; COMM_LEN],
        kpresent: 0,
        victim_tgid: 0,
        start_time_ns: 0,
        min_flt: 0,
        maj_flt: 0,
        rss_pages: [0; 4],
        pgtables_bytes: 0,
        total_vm_pages: 0,
        cgroup_id: 0,
        page_shift: 0,
        _pad2: 0,
        nodename: [0; NODENAME_LEN],
        memcg_key: 0,
    };

    /// Decodes one ring-buffer record: an event alone, or one with its
    /// memory cgroups. The only way user space turns bytes into an event:
    /// the length, the version and the flag saying what follows are checked.
    pub fn decode(bytes: &[u8]) -> Result<(OomEvent, Option<MemcgPart>), DecodeError> {
        if bytes.len() != OOM_EVENT_SIZE && bytes.len() != OOM_EVENT_FULL_SIZE {
            return Err(DecodeError::Length { got: bytes.len() });
        }
        // SAFETY: bytes holds at least size_of::<OomEvent>() (checked above),
        // every field is a plain integer or byte array so any bit pattern is
        // valid, and read_unaligned makes no alignment assumption.
        let event = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<OomEvent>()) };
        if event.version != OOM_EVENT_VERSION {
            return Err(DecodeError::Version { got: event.version });
        }
        let full = bytes.len() == OOM_EVENT_FULL_SIZE;
        if full != (event.flags & eflags::HAS_MEMCG != 0) {
            return Err(DecodeError::Length { got: bytes.len() });
        }
        if !full {
            return Ok((event, None));
        }
        // SAFETY: the record is exactly an OomEventFull (length checked);
        // plain integers and arrays only, read unaligned.
        let whole = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<OomEventFull>()) };
        Ok((event, Some(whole.memcg)))
    }

    /// The event's bytes as the program writes them (for round-trip tests and
    /// for replaying events into the pipeline).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: OomEvent is repr(C) with explicit padding, so all
        // OOM_EVENT_SIZE bytes are initialised; the slice borrows self.
        unsafe { core::slice::from_raw_parts((self as *const OomEvent).cast::<u8>(), OOM_EVENT_SIZE) }
    }
}

impl Default for KernelLayout {
    fn default() -> Self {
        KernelLayout::ABSENT
    }
}

impl MemcgPart {
    pub const ZERO: MemcgPart = MemcgPart {
        present: 0,
        cgroup_depth: 0,
        memcg_levels: 0,
        oom_level: 0,
        detail_count: 0,
        _pad: 0,
        cgroup_names: [[0; CGROUP_NAME_LEN]; CGROUP_MAX_DEPTH],
        memcg: [PageCounters { usage: 0, max: 0, low: 0, high: 0, min: 0, swap_usage: 0, swap_max: 0 };
            MEMCG_MAX_LEVELS],
        details: [MemcgDetail::ZERO; 2],
    };
}

impl OomEventFull {
    pub const ZERO: OomEventFull = OomEventFull { event: OomEvent::ZERO, memcg: MemcgPart::ZERO };

    /// The record's bytes as the program writes them (tests, replays).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C) with explicit padding: all bytes initialised.
        unsafe {
            core::slice::from_raw_parts((self as *const OomEventFull).cast::<u8>(), OOM_EVENT_FULL_SIZE)
        }
    }
}

impl Default for OomEvent {
    fn default() -> Self {
        OomEvent::ZERO
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C), integers only, no padding bytes (size asserted above).
    unsafe impl aya::Pod for super::MarkVictimLayout {}
    // SAFETY: repr(C), integers only, explicit padding (size asserted above).
    unsafe impl aya::Pod for super::KernelLayout {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_round_trips() {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::COMM | present::ANON_RSS,
            boot_ns: 0x0102_0304_0506_0708,
            mono_ns: 42,
            victim_pid: 4242,
            victim_uid: 1000,
            anon_rss_kb: 2,
            trigger_pid: 6,
            trigger_tgid: 7,
            oom_score_adj: -1000,
            victim_comm: *b"victim\0\0\0\0\0\0\0\0\0\0",
            trigger_comm: *b"trigger\0\0\0\0\0\0\0\0\0",
            kpresent: kpresent::RSS,
            rss_pages: [1, -2, 3, 4],
            memcg_key: 0xffff_8880_0000_1000,
            ..OomEvent::ZERO
        };
        assert_eq!(OomEvent::decode(event.as_bytes()), Ok((event, None)));
        let memcg =
            MemcgPart { present: mpresent::CGROUP_PATH, cgroup_depth: 2, memcg_levels: 1, ..MemcgPart::ZERO };
        let full = OomEventFull { event: OomEvent { flags: eflags::HAS_MEMCG, ..event }, memcg };
        assert_eq!(OomEvent::decode(full.as_bytes()), Ok((full.event, Some(memcg))));
    }

    #[test]
    fn decode_checks_length_version_and_flags() {
        let event = OomEvent { version: OOM_EVENT_VERSION, ..OomEvent::default() };
        let bytes = event.as_bytes();
        assert_eq!(
            OomEvent::decode(&bytes[..OOM_EVENT_SIZE - 1]),
            Err(DecodeError::Length { got: OOM_EVENT_SIZE - 1 })
        );
        let mut longer = [0u8; OOM_EVENT_SIZE + 8];
        longer[..OOM_EVENT_SIZE].copy_from_slice(bytes);
        assert_eq!(OomEvent::decode(&longer), Err(DecodeError::Length { got: OOM_EVENT_SIZE + 8 }));
        let old = OomEvent { version: 0, ..OomEvent::default() };
        assert_eq!(OomEvent::decode(old.as_bytes()), Err(DecodeError::Version { got: 0 }));
        // A full record whose flags do not say so, and the reverse.
        let unflagged = OomEventFull { event, memcg: MemcgPart::ZERO };
        assert!(OomEvent::decode(unflagged.as_bytes()).is_err());
        let flagged = OomEvent { flags: eflags::HAS_MEMCG, ..event };
        assert!(OomEvent::decode(flagged.as_bytes()).is_err());
    }

    #[test]
    fn the_group_kill_slot_is_oom_group_kill() {
        assert_eq!(memstat::EVENTS[memstat::OOM_GROUP_KILL_SLOT], ("oom_group_kill", "MEMCG_OOM_GROUP_KILL"));
    }

    #[test]
    fn present_bits_follow_the_layout() {
        assert_eq!(MarkVictimLayout::ABSENT.present_bits(), 0);
        let layout = MarkVictimLayout {
            pid: TpField { offset: 8, size: 4 },
            anon_rss: TpField { offset: 24, size: 8 },
            ..MarkVictimLayout::ABSENT
        };
        assert_eq!(layout.present_bits(), present::ANON_RSS);
    }
}
