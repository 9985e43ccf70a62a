//! Which `memory.stat` items and `memory.events` counters the raw
//! tracepoint program reads from each memory cgroup at the kill, and where
//! each sits in the kernel's arrays on the running kernel.
//!
//! The items are named by the kernel's own enums (`enum node_stat_item`,
//! `enum memcg_stat_item`, include/linux/mmzone.h and memcontrol.h), whose
//! values BTF gives. How those values index `memcg_vmstats.state[]` depends
//! on the kernel range, decided from the array's length in BTF:
//!
//! - **direct** (5.10 to 6.10): `state[MEMCG_NR_STAT]`, indexed by the
//!   enum value itself (`memcg_page_state(memcg, idx)` reads `state[idx]`);
//! - **compacted** (6.11+): `state[MEMCG_VMSTAT_SIZE]`, where only the items
//!   of `memcg_node_stat_items[]` then `memcg_stat_items[]` (mm/memcontrol.c)
//!   are kept, in that order (`init_memcg_stats()` builds the index). Those
//!   arrays are not in BTF; their entries are, as enum names, below. An
//!   entry the kernel's config leaves out (`#ifdef CONFIG_SWAP` and the like)
//!   is absent from the enum as well, so the list is filtered by BTF; the
//!   result must have exactly the array's length, or no item is read.

use common::{
    memstat::{EVENTS, ITEMS},
    MEMCG_EVENT_SLOTS, MEMCG_STAT_SLOTS, NO_INDEX,
};

use super::btf::Btf;

/// `memcg_node_stat_items[]` then `memcg_stat_items[]` as 6.11 to 6.18 list
/// them (mm/memcontrol.c). 6.13 added `NR_HUGETLB` (CONFIG_HUGETLB_PAGE)
/// and 6.14 `PGDEMOTE_PROACTIVE`; entries the config leaves out are absent
/// from the enum too.
const COMPACTED_ORDER: [&str; 40] = [
    "NR_INACTIVE_ANON",
    "NR_ACTIVE_ANON",
    "NR_INACTIVE_FILE",
    "NR_ACTIVE_FILE",
    "NR_UNEVICTABLE",
    "NR_SLAB_RECLAIMABLE_B",
    "NR_SLAB_UNRECLAIMABLE_B",
    "WORKINGSET_REFAULT_ANON",
    "WORKINGSET_REFAULT_FILE",
    "WORKINGSET_ACTIVATE_ANON",
    "WORKINGSET_ACTIVATE_FILE",
    "WORKINGSET_RESTORE_ANON",
    "WORKINGSET_RESTORE_FILE",
    "WORKINGSET_NODERECLAIM",
    "NR_ANON_MAPPED",
    "NR_FILE_MAPPED",
    "NR_FILE_PAGES",
    "NR_FILE_DIRTY",
    "NR_WRITEBACK",
    "NR_SHMEM",
    "NR_SHMEM_THPS",
    "NR_FILE_THPS",
    "NR_ANON_THPS",
    "NR_KERNEL_STACK_KB",
    "NR_PAGETABLE",
    "NR_SECONDARY_PAGETABLE",
    "NR_SWAPCACHE",
    "PGPROMOTE_SUCCESS",
    "PGDEMOTE_KSWAPD",
    "PGDEMOTE_DIRECT",
    "PGDEMOTE_KHUGEPAGED",
    "PGDEMOTE_PROACTIVE",
    "NR_HUGETLB",
    "MEMCG_SWAP",
    "MEMCG_SOCK",
    "MEMCG_PERCPU_B",
    "MEMCG_VMALLOC",
    "MEMCG_KMEM",
    "MEMCG_ZSWAP_B",
    "MEMCG_ZSWAPPED",
];

/// How this kernel indexes `state[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    Direct,
    Compacted,
}

/// The `state[]` index of each slot, for an array of `len` entries; `Err`
/// when this kernel's layout is not one this recorder knows.
pub fn stat_indices(btf: &Btf, len: u32) -> Result<(Indexing, [u16; MEMCG_STAT_SLOTS]), String> {
    let nr_stat = btf.enumerator("MEMCG_NR_STAT").ok_or("no MEMCG_NR_STAT in BTF")?;
    // Direct: the enumerator's value. Compacted: its place among the
    // entries this kernel has.
    let (indexing, order) = if len == nr_stat {
        (Indexing::Direct, None)
    } else {
        let present: Vec<&str> =
            COMPACTED_ORDER.iter().copied().filter(|n| btf.enumerator(n).is_some()).collect();
        if present.len() != len as usize {
            return Err(format!(
                "memcg_vmstats.state has {len} entries and MEMCG_NR_STAT is {nr_stat}: a compacted layout, \
                 but this kernel's enums give {} of the known entries",
                present.len()
            ));
        }
        (Indexing::Compacted, Some(present))
    };
    let index_of = |name: &str| match &order {
        None => btf.enumerator(name),
        Some(present) => present.iter().position(|n| *n == name).map(|i| i as u32),
    };
    let mut out = [NO_INDEX; MEMCG_STAT_SLOTS];
    for (slot, item) in ITEMS.iter().enumerate() {
        if let Some(index) = index_of(item.enumerator).filter(|i| *i < len) {
            out[slot] = index as u16;
        }
    }
    Ok((indexing, out))
}

/// The `memory_events[]` index of each event slot.
pub fn event_indices(btf: &Btf, len: u32) -> [u16; MEMCG_EVENT_SLOTS] {
    let mut out = [NO_INDEX; MEMCG_EVENT_SLOTS];
    for (slot, (_, name)) in EVENTS.iter().enumerate() {
        if let Some(index) = btf.enumerator(name).filter(|i| *i < len) {
            out[slot] = index as u16;
        }
    }
    out
}
