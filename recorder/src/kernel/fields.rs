//! The kernel figures the raw tracepoint program reads, as data: one row per
//! figure, naming the BTF members it is read through, where their offsets go
//! in [`KernelLayout`], and the figure it is read through. The table drives
//! the plan, `doctor` and the no-BTF case alike; adding a figure is a row
//! here, an offset index in `common::off` and the read in the program.
//!
//! Each figure is resolved by the *shape* BTF shows, never by kernel version:
//! distributions backport.

use btfparse::TypeVariant;
use common::{kfield, off, KernelLayout, COMM_LEN, LRU_LISTS, MAX_NODES, MAX_ZONES, NO_INDEX};

use super::{btf::Btf, memstat, FieldStatus, MemcgVersion};

const PTR: usize = 8;
const LONG: usize = 8;

/// How wide a member must be: a member whose size changed is a shape this
/// recorder does not know, and is left unread.
#[derive(Clone, Copy, Debug)]
enum Size {
    Bytes(usize),
    /// The size of a struct (an embedded `cgroup_subsys_state`).
    Of(&'static str),
    /// A struct member whose own members are checked (`mem_cgroup.memory`).
    Any,
}

/// One kernel structure member a figure is read through.
#[derive(Clone, Copy, Debug)]
struct Member {
    ty: &'static str,
    path: &'static str,
    /// Its name in older kernels, tried when `path` is not there.
    older: Option<&'static str>,
    size: Size,
    /// Where its offset goes: an index of `common::off`.
    slot: usize,
}

const fn member(ty: &'static str, path: &'static str, size: usize, slot: usize) -> Member {
    Member { ty, path, older: None, size: Size::Bytes(size), slot }
}

/// What a shape-dependent figure resolved to, and the extra `kfield` bits it
/// sets; `Err`: why it is absent.
type Resolved = Result<(String, u64), String>;

/// A shape-dependent resolution: it may set offsets of its own.
type Shape = fn(&Btf, &mut KernelLayout, Option<MemcgVersion>) -> Resolved;

/// One figure.
pub struct Field {
    /// The JSON key(s) the figure fills: what `doctor` and the log name.
    pub name: &'static str,
    /// Its `common::kfield` bit, set when every member resolved.
    pub bit: u64,
    /// The figure it is read through (its bit), `0` for none.
    pub needs: u64,
    members: &'static [Member],
    /// Resolution whose shape varies by kernel (checked before the members).
    custom: Option<Shape>,
}

const fn field(name: &'static str, bit: u64, needs: u64, members: &'static [Member]) -> Field {
    Field { name, bit, needs, members, custom: None }
}

/// Every figure, in the order `doctor` lists them (dependencies first).
pub const FIELDS: &[Field] = &[
    // include/linux/sched.h, struct task_struct.
    field("victim.pid", kfield::TASK_PID, 0, &[member("task_struct", "pid", 4, off::TASK_PID)]),
    field("victim.tgid", kfield::TASK_TGID, 0, &[member("task_struct", "tgid", 4, off::TASK_TGID)]),
    field("victim.comm", kfield::TASK_COMM, 0, &[member("task_struct", "comm", COMM_LEN, off::TASK_COMM)]),
    // start_time: CLOCK_MONOTONIC ns at fork (kernel/fork.c, copy_process).
    field(
        "victim.age_ms",
        kfield::TASK_START_TIME,
        0,
        &[member("task_struct", "start_time", 8, off::TASK_START_TIME)],
    ),
    field(
        "victim.min_flt, victim.maj_flt",
        kfield::TASK_FAULTS,
        0,
        &[
            member("task_struct", "min_flt", LONG, off::TASK_MIN_FLT),
            member("task_struct", "maj_flt", LONG, off::TASK_MAJ_FLT),
        ],
    ),
    // task_uid() reads real_cred (include/linux/cred.h); the tracepoint and
    // the Killed process line print it.
    field(
        "victim.uid",
        kfield::UID,
        0,
        &[
            member("task_struct", "real_cred", PTR, off::TASK_REAL_CRED),
            member("cred", "uid.val", 4, off::CRED_UID),
        ],
    ),
    // include/linux/sched/signal.h: short oom_score_adj.
    field(
        "victim.oom_score_adj",
        kfield::OOM_SCORE_ADJ,
        0,
        &[
            member("task_struct", "signal", PTR, off::TASK_SIGNAL),
            member("signal_struct", "oom_score_adj", 2, off::SIGNAL_OOM_SCORE_ADJ),
        ],
    ),
    // include/linux/mm_types.h, struct mm_struct.
    field("victim mm", kfield::MM, 0, &[member("task_struct", "mm", PTR, off::TASK_MM)]),
    field(
        "victim.total_vm_kb",
        kfield::TOTAL_VM,
        kfield::MM,
        &[member("mm_struct", "total_vm", LONG, off::MM_TOTAL_VM)],
    ),
    Field {
        name: "victim.rss_pages",
        bit: kfield::RSS,
        needs: kfield::MM,
        members: &[],
        custom: Some(rss_layout),
    },
    // mm_pgtables_bytes(): atomic_long_t pgtables_bytes (CONFIG_MMU).
    field(
        "victim.pgtables_bytes",
        kfield::PGTABLES,
        kfield::MM,
        &[member("mm_struct", "pgtables_bytes", LONG, off::MM_PGTABLES_BYTES)],
    ),
    // include/linux/nsproxy.h, include/linux/utsname.h (__NEW_UTS_LEN + 1).
    field(
        "victim.nodename",
        kfield::NODENAME,
        0,
        &[
            member("task_struct", "nsproxy", PTR, off::TASK_NSPROXY),
            member("nsproxy", "uts_ns", PTR, off::NSPROXY_UTS_NS),
            member("uts_namespace", "name.nodename", 65, off::UTS_NODENAME),
        ],
    ),
    // include/linux/cgroup-defs.h: css_set.subsys[memory_cgrp_id], the
    // victim's memory css (on v1 the memory hierarchy's, on v2 the unified
    // one's nearest memory-enabled cgroup: what task_memcg prints).
    Field {
        name: "cgroup (memory css)",
        bit: kfield::MEMCG_CSS,
        needs: 0,
        members: &[member("task_struct", "cgroups", PTR, off::TASK_CGROUPS)],
        custom: Some(memory_css),
    },
    // include/linux/kernfs.h: `parent` became `__parent` in 6.15.
    field(
        "cgroup.path",
        kfield::CGROUP_KN,
        kfield::MEMCG_CSS,
        &[
            member("cgroup_subsys_state", "cgroup", PTR, off::CSS_CGROUP),
            member("cgroup", "kn", PTR, off::CGROUP_KN),
            member("kernfs_node", "name", PTR, off::KN_NAME),
            Member { older: Some("parent"), ..member("kernfs_node", "__parent", PTR, off::KN_PARENT) },
        ],
    ),
    // kn->id: a u64 since 5.5 (a union kernfs_node_id before).
    field("cgroup.id", kfield::KN_ID, kfield::CGROUP_KN, &[member("kernfs_node", "id", 8, off::KN_ID)]),
    // include/linux/memcontrol.h (struct mem_cgroup) and
    // include/linux/page_counter.h (struct page_counter).
    field(
        "cgroup.at_kill memory usage/limit",
        kfield::MEMCG,
        kfield::MEMCG_CSS,
        &[
            Member {
                size: Size::Of("cgroup_subsys_state"),
                ..member("mem_cgroup", "css", 0, off::MEMCG_CSS)
            },
            Member { size: Size::Any, ..member("mem_cgroup", "memory", 0, off::MEMCG_MEMORY) },
            member("page_counter", "usage", LONG, off::PC_USAGE),
            member("page_counter", "max", LONG, off::PC_MAX),
        ],
    ),
    field(
        "cgroup.ancestors",
        kfield::CSS_PARENT,
        kfield::MEMCG,
        &[member("cgroup_subsys_state", "parent", PTR, off::CSS_PARENT)],
    ),
    field(
        "memory_low_bytes",
        kfield::PC_LOW,
        kfield::MEMCG,
        &[member("page_counter", "low", LONG, off::PC_LOW)],
    ),
    field(
        "memory_high_bytes",
        kfield::PC_HIGH,
        kfield::MEMCG,
        &[member("page_counter", "high", LONG, off::PC_HIGH)],
    ),
    field(
        "memory_min_bytes",
        kfield::PC_MIN,
        kfield::MEMCG,
        &[member("page_counter", "min", LONG, off::PC_MIN)],
    ),
    Field {
        name: "swap_usage_bytes, swap_limit_bytes",
        bit: kfield::MEMCG_SWAP,
        needs: kfield::MEMCG,
        members: &[],
        custom: Some(swap_counter),
    },
    // The memory cgroup's own figures at the kill (mm/memcontrol.c,
    // include/linux/memcontrol.h): memory.stat, memory.events, settings.
    Field {
        name: "cgroup.at_kill.memory_stat",
        bit: kfield::MEMCG_STATS,
        needs: kfield::MEMCG,
        members: &[],
        custom: Some(memcg_vmstats),
    },
    Field {
        name: "cgroup.at_kill.events",
        bit: kfield::MEMCG_EVENTS,
        needs: kfield::MEMCG,
        members: &[],
        custom: Some(memory_events),
    },
    field(
        "cgroup.at_kill.oom_group",
        kfield::MEMCG_OOM_GROUP,
        kfield::MEMCG,
        &[member("mem_cgroup", "oom_group", 1, off::MEMCG_OOM_GROUP)],
    ),
    field(
        "cgroup.at_kill.swappiness",
        kfield::MEMCG_SWAPPINESS,
        kfield::MEMCG,
        &[member("mem_cgroup", "swappiness", 4, off::MEMCG_SWAPPINESS)],
    ),
    Field {
        name: "cgroup.at_kill.lru_bytes",
        bit: kfield::MEMCG_LRU,
        needs: kfield::MEMCG,
        members: &[],
        custom: Some(lru_zone_size),
    },
    // Which victims are members of a memory.oom.group kill, and which kill
    // (recorder-ebpf's `group_kill_key`): the walk's task iterator
    // (include/linux/cgroup.h, struct css_task_iter; kernel/cgroup/cgroup.c)
    // and the group-kill counter. Without it every victim of a group kill
    // carries its own copy of its cgroup's figures.
    Field {
        name: "group kill: members share one copy of the cgroup figures",
        bit: kfield::GROUP_WALK,
        needs: kfield::MEMCG_EVENTS | kfield::KN_ID | kfield::CSS_PARENT,
        members: &[
            member("task_struct", "stack", PTR, off::TASK_STACK),
            member("task_struct", "group_leader", PTR, off::TASK_GROUP_LEADER),
            member("cgroup_subsys_state", "ss", PTR, off::CSS_SS),
            member("css_set", "task_iters", 2 * PTR, off::CSS_SET_TASK_ITERS),
            member("css_task_iter", "ss", PTR, off::ITER_SS),
            member("css_task_iter", "cur_task", PTR, off::ITER_CUR_TASK),
            member("css_task_iter", "iters_node", 2 * PTR, off::ITER_NODE),
        ],
        custom: Some(group_kill_counter),
    },
    // cgroup v1's kernel-memory counter (CONFIG_MEMCG_V1 from 6.11).
    field(
        "cgroup.at_kill.kmem_usage_bytes, kmem_limit_bytes",
        kfield::MEMCG_KMEM,
        kfield::MEMCG,
        &[Member { size: Size::Any, ..member("mem_cgroup", "kmem", 0, off::MEMCG_KMEM) }],
    ),
];

impl Field {
    /// What it is read through, for the message of a figure that needs it.
    fn what(&self) -> String {
        self.members.first().map_or_else(|| self.name.to_owned(), |m| format!("{}.{}", m.ty, m.path))
    }
}

/// Resolves every figure into `layout`, in table order; returns each one's
/// status. A figure that does not resolve leaves `layout` as it was.
pub(super) fn resolve(btf: &Btf, memcg: Option<MemcgVersion>, layout: &mut KernelLayout) -> Vec<FieldStatus> {
    FIELDS
        .iter()
        .map(|field| {
            let status = resolve_one(btf, memcg, field, layout);
            FieldStatus { name: field.name, status }
        })
        .collect()
}

/// Every figure absent, for a kernel whose BTF cannot be read.
pub(super) fn all_absent(why: &str) -> Vec<FieldStatus> {
    FIELDS.iter().map(|f| FieldStatus { name: f.name, status: Err(format!("no BTF: {why}")) }).collect()
}

fn resolve_one(
    btf: &Btf,
    memcg: Option<MemcgVersion>,
    field: &Field,
    layout: &mut KernelLayout,
) -> Result<String, String> {
    if !layout.has(field.needs) {
        let needed = FIELDS.iter().find(|f| f.bit & field.needs != 0).map_or_else(String::new, Field::what);
        return Err(format!("{needed} is absent"));
    }
    let mut trial = *layout;
    let mut bits = field.bit;
    // The shape check first: it names the more basic reason (an enum the
    // kernel lacks because the whole feature is compiled out).
    let shape = match field.custom {
        Some(custom) => {
            let (text, extra) = custom(btf, &mut trial, memcg)?;
            bits |= extra;
            Some(text)
        }
        None => None,
    };
    let mut said = Vec::new();
    for m in field.members {
        let (path, offset) = match (offset_of(btf, m, m.path), m.older) {
            (Ok(offset), _) => (m.path, offset),
            (Err(_), Some(older)) => (older, offset_of(btf, m, older)?),
            (Err(e), None) => return Err(e),
        };
        trial.offsets[m.slot] = offset;
        said.push(format!("{}.{path} at {offset}", m.ty));
    }
    said.extend(shape);
    trial.fields |= bits;
    *layout = trial;
    Ok(said.join(", "))
}

fn offset_of(btf: &Btf, m: &Member, path: &str) -> Result<u32, String> {
    match m.size {
        Size::Bytes(size) => btf.offset(m.ty, path, size),
        Size::Of(ty) => btf.offset(m.ty, path, btf.struct_size(ty)?),
        Size::Any => btf.member(m.ty, path).map(|(_, offset)| offset),
    }
}

/// `css_set.subsys[memory_cgrp_id]`: the index is the enum's value in BTF.
fn memory_css(btf: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    let id = btf
        .enumerator("memory_cgrp_id")
        .ok_or("no memory_cgrp_id in enum cgroup_subsys_id (CONFIG_MEMCG off)")?;
    l.offsets[off::CSS_SET_MEMORY] = btf.offset("css_set", &format!("subsys[{id}]"), PTR)?;
    Ok((format!("css_set.subsys[{id}] at {}", l.at(off::CSS_SET_MEMORY)), 0))
}

/// v2 charges swap to `swap`; v1 to `memsw` (memory + swap, what the v1
/// report's `memory+swap:` line prints). They share a union in 6.x.
fn swap_counter(btf: &Btf, l: &mut KernelLayout, memcg: Option<MemcgVersion>) -> Resolved {
    let (member, extra) = match memcg {
        Some(MemcgVersion::V1) => ("memsw", kfield::MEMCG_MEMSW),
        Some(MemcgVersion::V2) => ("swap", 0),
        None => return Err("no memory controller mounted (cgroup v1 or v2)".into()),
    };
    l.offsets[off::MEMCG_SWAP] = btf.member("mem_cgroup", member)?.1;
    Ok((format!("mem_cgroup.{member} at {}", l.at(off::MEMCG_SWAP)), extra))
}

/// Where `memory.stat` lives in a `mem_cgroup` and how its items are
/// indexed (kernel/memstat.rs): `vmstats` is a pointer to `struct
/// memcg_vmstats` from 6.1, that struct embedded from 5.13, and in 5.10 an
/// `atomic_long_t vmstats[MEMCG_NR_STAT]` of its own.
fn memcg_vmstats(btf: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    let (variant, offset) = btf.member_type("mem_cgroup", "vmstats")?;
    l.offsets[off::MEMCG_VMSTATS] = offset;
    let vmstats_struct = |tid: u32| btf.name_of(tid).as_deref() == Some("memcg_vmstats");
    let (shape, mut extra, in_struct) = match variant {
        TypeVariant::Ptr(p) if vmstats_struct(*p.tid()) => {
            ("a pointer to memcg_vmstats", kfield::VMSTATS_PTR, true)
        }
        TypeVariant::Struct(s) if s.name().as_deref() == Some("memcg_vmstats") => ("memcg_vmstats", 0, true),
        TypeVariant::Array(_) => ("an array of counters (5.10)", 0, false),
        _ => return Err("mem_cgroup.vmstats has a shape this recorder does not know".into()),
    };
    let (state, len, bytes) = if in_struct {
        let (_, state) = btf.member("memcg_vmstats", "state")?;
        (state, btf.array_len("memcg_vmstats", "state")?, btf.member_size("memcg_vmstats", "state")?)
    } else {
        (0, btf.array_len("mem_cgroup", "vmstats")?, btf.member_size("mem_cgroup", "vmstats")?)
    };
    if len == 0 || bytes != len as usize * LONG {
        return Err(format!("the memory.stat array has {len} entries in {bytes} bytes, not longs"));
    }
    l.offsets[off::VMSTATS_STATE] = state;
    let (indexing, indices) = memstat::stat_indices(btf, len)?;
    l.stat_index = indices;
    let items = indices.iter().filter(|i| **i != NO_INDEX).count();
    // Updates not yet flushed into state[] (6.8+: per memcg_vmstats).
    let mut pending = String::new();
    if in_struct {
        if let Ok(width @ (4 | 8)) = btf.member_size("memcg_vmstats", "stats_updates") {
            l.offsets[off::VMSTATS_PENDING] = btf.member("memcg_vmstats", "stats_updates")?.1;
            l.pending_width = width as u32;
            extra |= kfield::MEMCG_PENDING;
            pending = format!(", stats_updates ({width} bytes) at +{}", l.at(off::VMSTATS_PENDING));
        }
    }
    Ok((
        format!(
            "mem_cgroup.vmstats at {offset}: {shape}, state[{len}] at +{state}, {} indexing, {items} of {} items{pending}",
            match indexing {
                memstat::Indexing::Direct => "direct",
                memstat::Indexing::Compacted => "compacted (6.11+)",
            },
            common::memstat::ITEMS.len()
        ),
        extra,
    ))
}

/// `mem_cgroup.memory_events[]`, indexed by `enum memcg_memory_event`.
fn memory_events(btf: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    let (_, offset) = btf.member("mem_cgroup", "memory_events")?;
    let len = btf.array_len("mem_cgroup", "memory_events")?;
    if btf.member_size("mem_cgroup", "memory_events")? != len as usize * LONG {
        return Err("mem_cgroup.memory_events is not an array of longs".into());
    }
    l.offsets[off::MEMCG_EVENTS] = offset;
    l.event_index = memstat::event_indices(btf, len);
    let found = l.event_index.iter().filter(|i| **i != NO_INDEX).count();
    Ok((
        format!(
            "mem_cgroup.memory_events[{len}] at {offset}, {found} of {} counters",
            common::memstat::EVENTS.len()
        ),
        0,
    ))
}

/// `MEMCG_OOM_GROUP_KILL`, bumped once per group kill before its walk
/// (mm/oom_kill.c, `oom_kill_process`): 5.10 has no such counter.
fn group_kill_counter(_: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    match l.event_index[common::memstat::OOM_GROUP_KILL_SLOT] {
        NO_INDEX => Err("no MEMCG_OOM_GROUP_KILL in enum memcg_memory_event: one group kill cannot be told \
                         from the next, so every victim carries its own cgroup figures"
            .into()),
        index => Ok((format!("memory_events[{index}] (oom_group_kill)"), 0)),
    }
}

/// The exact LRU sizes: `mem_cgroup.nodeinfo[nid]->lru_zone_size[zone][lru]`
/// (include/linux/memcontrol.h), `MAX_NR_ZONES` × `NR_LRU_LISTS` longs per
/// node; the node count is the machine's (`KernelLayout::nr_nodes`).
fn lru_zone_size(btf: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    let (_, nodeinfo) = btf.member("mem_cgroup", "nodeinfo")?;
    let (_, sizes) = btf.member("mem_cgroup_per_node", "lru_zone_size")?;
    let zones = btf.enumerator("__MAX_NR_ZONES").ok_or("no __MAX_NR_ZONES in BTF")?;
    let lru = btf.enumerator("NR_LRU_LISTS").ok_or("no NR_LRU_LISTS in BTF")?;
    let bytes = btf.member_size("mem_cgroup_per_node", "lru_zone_size")?;
    if lru as usize != LRU_LISTS || bytes != (zones * lru) as usize * LONG || zones > MAX_ZONES {
        return Err(format!(
            "mem_cgroup_per_node.lru_zone_size is {bytes} bytes for {zones} zones of {lru} lists"
        ));
    }
    if l.nr_nodes == 0 || l.nr_nodes > MAX_NODES {
        return Err(format!("{} NUMA nodes, more than the {MAX_NODES} the program reads", l.nr_nodes));
    }
    l.offsets[off::MEMCG_NODEINFO] = nodeinfo;
    l.offsets[off::PN_LRU_ZONE_SIZE] = sizes;
    l.nr_zones = zones;
    l.nr_lru = lru;
    Ok((format!("mem_cgroup.nodeinfo at {nodeinfo}, mem_cgroup_per_node.lru_zone_size[{zones}][{lru}] at {sizes}, {} node(s)", l.nr_nodes), 0))
}

/// `mm->rss_stat` in either layout (include/linux/mm_types.h): before 6.2
/// `struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }`, from 6.2
/// `struct percpu_counter rss_stat[NR_MM_COUNTERS]` whose `count` (s64) is
/// what get_mm_counter() reads. Decided from the member's type, not from the
/// kernel version (distributions backport).
fn rss_layout(btf: &Btf, l: &mut KernelLayout, _: Option<MemcgVersion>) -> Resolved {
    let (tid, base) = btf.member("mm_struct", "rss_stat")?;
    // Kernel order: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES
    // (include/linux/mm_types_task.h), from the BTF enum when it is there.
    let names = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"];
    for (slot, name) in names.iter().enumerate() {
        l.mm_rss_index[slot] = btf.enumerator(name).unwrap_or(slot as u32);
    }
    if l.mm_rss_index.iter().any(|i| *i > 7) {
        return Err(format!("unexpected MM counter indices {:?}", l.mm_rss_index));
    }
    match btf.resolve(tid) {
        Some(TypeVariant::Array(array)) => {
            let element = *array.element_tid();
            if btf.name_of(element).as_deref() != Some("percpu_counter") {
                return Err("mm_struct.rss_stat is an array of an unknown type".into());
            }
            let count = btf.offset("percpu_counter", "count", 8)?;
            let stride = btf.0.size_of(element).map_err(|e| e.message().to_owned())? as u32;
            l.offsets[off::MM_RSS] = base + count;
            l.mm_rss_stride = stride;
            Ok((format!("mm_struct.rss_stat at {base}: percpu_counter[] (6.2+), count at +{count}, stride {stride}"), 0))
        }
        Some(TypeVariant::Struct(s)) if s.name().as_deref() == Some("mm_rss_stat") => {
            let count = btf.offset("mm_rss_stat", "count[0]", LONG)?;
            l.offsets[off::MM_RSS] = base + count;
            l.mm_rss_stride = LONG as u32;
            Ok((format!("mm_struct.rss_stat at {base}: mm_rss_stat of atomic_long_t (before 6.2)"), 0))
        }
        _ => Err("mm_struct.rss_stat has a shape this recorder does not know".into()),
    }
}
