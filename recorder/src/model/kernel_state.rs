//! What the raw tracepoint program read from the victim's `task_struct`
//! and its memory cgroup at the instant of the kill, and the kernel's
//! badness recomputed from it.

use common::{
    dpresent, eflags, kpresent,
    memstat::{Unit, EVENTS, ITEMS},
    mpresent, rss, MemcgDetail, MemcgPart, OomEvent, PageCounters, AT_LIMIT_PAGES,
};

use super::figures::{clamp_pages, pages_to_bytes};

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
    /// The victim's memory cgroup's own figures, and those of the cgroup
    /// whose limit was hit when it is another one (records from before
    /// these were read have none).
    #[serde(default)]
    pub details: Vec<MemcgFigures>,
    /// CPUs online when the daemon started: the kernel's per-CPU batches
    /// bound how far `memory.stat` may lag (see [`MemcgFigures`]).
    #[serde(default)]
    pub online_cpus: Option<u32>,
    /// The cgroups' figures were read for an earlier victim of the same OOM
    /// in the same cgroup (a memory.oom.group kill): the program reads them
    /// once per OOM and cgroup.
    #[serde(default)]
    pub shared_with_earlier_victim: bool,
}

/// One memory cgroup's own figures at the kill, read by the raw tracepoint
/// program from the `mem_cgroup` (include/linux/memcontrol.h).
///
/// `memory_stat` is `memcg_vmstats.state[]`: what the kernel last flushed
/// there (rstat, mm/memcontrol.c). The kernel flushes every 2 s
/// (`flush_memcg_stats_dwork`, FLUSH_TIME) and whenever a reader finds more
/// than MEMCG_CHARGE_BATCH (64) × CPUs updates pending
/// (`memcg_vmstats_needs_flush`); the OOM report's own memory.stat flushes
/// just before the kill when its header is printed. `stat_pending_updates`
/// is the count of updates (in pages, summed over every item) not yet
/// flushed, as the kernel keeps it (`memcg_vmstats.stats_updates`, 6.8+);
/// each CPU also holds up to 64 it has not yet added there.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemcgFigures {
    /// Its level in [`KernelState::memcg`] (0: the victim's own).
    pub level: usize,
    /// `memory.stat` items by cgroup v2's keys, in bytes.
    pub memory_stat: Option<Vec<(String, u64)>>,
    /// `memory.events` counters (hierarchical on v2, this cgroup's on v1).
    pub events: Option<Vec<(String, u64)>>,
    /// Bytes on each LRU list of this cgroup alone, exact at the kill
    /// (`lru_zone_size`, kept under the LRU lock): `inactive_anon`,
    /// `active_anon`, `inactive_file`, `active_file`, `unevictable`.
    #[serde(default)]
    pub lru_bytes: Option<Vec<(String, u64)>>,
    pub oom_group: Option<bool>,
    pub swappiness: Option<i32>,
    /// cgroup v1's kernel-memory counter.
    pub kmem_usage_bytes: Option<u64>,
    pub kmem_limit_bytes: Option<u64>,
    pub stat_pending_updates: Option<u64>,
}

impl MemcgFigures {
    /// The upper bound, in pages, of what `memory_stat` may lack: the
    /// pending updates plus each CPU's unbatched ones; `None` when the
    /// kernel does not say (before 6.8: flushed at most 2 s earlier).
    pub fn stat_lag_bound_pages(&self, online_cpus: Option<u32>) -> Option<u64> {
        const MEMCG_CHARGE_BATCH: u64 = 64;
        Some(self.stat_pending_updates? + MEMCG_CHARGE_BATCH * u64::from(online_cpus?))
    }

    /// One `memory.stat` item, in bytes.
    pub fn stat(&self, key: &str) -> Option<u64> {
        self.memory_stat.as_ref()?.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// One LRU list's exact size, in bytes.
    pub fn lru(&self, key: &str) -> Option<u64> {
        self.lru_bytes.as_ref()?.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Whether `memory_stat` is as fresh as the kernel's own readers see it:
    /// fewer updates pending than the threshold past which they flush
    /// (`memcg_vmstats_needs_flush`: MEMCG_CHARGE_BATCH × CPUs). Beyond it
    /// the kernel stops counting (`memcg_rstat_updated`): the figures may
    /// lag by up to 2 s of updates, until the periodic flush.
    pub fn stat_fresh(&self, online_cpus: Option<u32>) -> Option<bool> {
        Some(self.stat_pending_updates? <= 64 * u64::from(online_cpus?))
    }
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

    /// The lowest level with a memory limit at all.
    pub fn lowest_limited_level(&self) -> Option<usize> {
        self.memcg.iter().position(|l| !self.is_unlimited(l.memory_limit_bytes))
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
    /// The BTF-read facts of an event and of its memory cgroups (`memcg`,
    /// from this event or, for a later victim of the same OOM, from the
    /// event that carried them); `None` when the program read none.
    pub fn from_event(event: &OomEvent, memcg: Option<&MemcgPart>) -> Option<KernelState> {
        let has = |bit: u32| event.kpresent & bit != 0;
        if event.kpresent == 0 && memcg.is_none_or(|m| m.present == 0) {
            return None;
        }
        let page = 1u64 << event.page_shift.min(30);
        let part = memcg.copied().unwrap_or(MemcgPart::ZERO);
        let m = |bit: u32| part.present & bit != 0;
        let depth = (part.cgroup_depth as usize).min(part.cgroup_names.len());
        let names: Vec<String> = part.cgroup_names[..depth].iter().map(|n| c_string(n)).collect();
        let path = m(mpresent::CGROUP_PATH).then(|| path_from_names(&names));
        let levels = (part.memcg_levels as usize).min(part.memcg.len());
        let levels = if m(mpresent::MEMCG) {
            part.memcg[..levels]
                .iter()
                .enumerate()
                .map(|(i, c): (usize, &PageCounters)| MemcgLevel {
                    // Level i is the cgroup i steps up from the victim's.
                    path: path.as_ref().map(|_| path_from_names(names.get(i..).unwrap_or(&[]))),
                    memory_usage_bytes: pages_to_bytes(c.usage, page),
                    memory_limit_bytes: pages_to_bytes(c.max, page),
                    memory_low_bytes: m(mpresent::MEMCG_LOW).then(|| pages_to_bytes(c.low, page)),
                    memory_high_bytes: m(mpresent::MEMCG_HIGH).then(|| pages_to_bytes(c.high, page)),
                    memory_min_bytes: m(mpresent::MEMCG_MIN).then(|| pages_to_bytes(c.min, page)),
                    swap_usage_bytes: m(mpresent::MEMCG_SWAP).then(|| pages_to_bytes(c.swap_usage, page)),
                    swap_limit_bytes: m(mpresent::MEMCG_SWAP).then(|| pages_to_bytes(c.swap_max, page)),
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
                file: clamp_pages(event.rss_pages[rss::FILE]),
                anon: clamp_pages(event.rss_pages[rss::ANON]),
                swapents: clamp_pages(event.rss_pages[rss::SWAPENTS]),
                shmem: clamp_pages(event.rss_pages[rss::SHMEM]),
            }),
            pgtables_bytes: has(kpresent::PGTABLES).then_some(event.pgtables_bytes),
            nodename: has(kpresent::NODENAME).then(|| c_string(&event.nodename)),
            cgroup_path: path,
            cgroup_id: has(kpresent::CGROUP_ID).then_some(event.cgroup_id),
            cgroup_version: None,
            memcg: levels,
            ram_pages: None,
            swap_pages: None,
            details: part.details[..(part.detail_count as usize).min(part.details.len())]
                .iter()
                .map(|d| MemcgFigures::from_detail(d, page))
                .collect(),
            online_cpus: None,
            shared_with_earlier_victim: event.flags & eflags::SAME_MEMCG != 0,
        })
    }
}

/// `enum lru_list` (include/linux/mmzone.h), in order, by memory.stat's keys.
const LRU_KEYS: [&str; common::LRU_LISTS] =
    ["inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable"];

impl MemcgFigures {
    fn from_detail(d: &MemcgDetail, page: u64) -> MemcgFigures {
        let has = |bit: u32| d.present & bit != 0;
        // Only the slots the program read: an item this kernel lacks is
        // left out, never shown as 0.
        let read = |slots: u32, i: usize| slots & (1 << i) != 0;
        let stat = ITEMS.iter().zip(d.stats).enumerate().filter(|(i, _)| read(d.stat_slots, *i)).map(
            |(_, (item, v))| {
                let v = clamp_pages(v);
                let bytes = match item.unit {
                    Unit::Pages => pages_to_bytes(v, page),
                    Unit::Kb => v.saturating_mul(1024),
                    Unit::Bytes => v,
                };
                (item.key.to_owned(), bytes)
            },
        );
        MemcgFigures {
            level: d.level as usize,
            memory_stat: has(dpresent::STATS).then(|| stat.collect()),
            events: has(dpresent::EVENTS).then(|| {
                EVENTS
                    .iter()
                    .zip(d.events)
                    .enumerate()
                    .filter(|(i, _)| read(d.event_slots, *i))
                    .map(|(_, ((key, _), v))| ((*key).to_owned(), v))
                    .collect()
            }),
            lru_bytes: has(dpresent::LRU).then(|| {
                LRU_KEYS
                    .iter()
                    .zip(d.lru_pages)
                    .map(|(k, v)| ((*k).to_owned(), pages_to_bytes(v, page)))
                    .collect()
            }),
            oom_group: has(dpresent::OOM_GROUP).then_some(d.oom_group != 0),
            swappiness: has(dpresent::SWAPPINESS).then_some(d.swappiness),
            kmem_usage_bytes: has(dpresent::KMEM).then(|| pages_to_bytes(d.kmem_usage, page)),
            kmem_limit_bytes: has(dpresent::KMEM).then(|| pages_to_bytes(d.kmem_max, page)),
            stat_pending_updates: has(dpresent::PENDING).then_some(d.pending_updates),
        }
    }
}
