//! What the raw tracepoint program read from the victim's `task_struct`
//! and its memory cgroup at the instant of the kill, and the kernel's
//! badness recomputed from it.

use common::{kpresent, rss, OomEvent, PageCounters};

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
                    memory_usage_bytes: pages_to_bytes(c.usage, page),
                    memory_limit_bytes: pages_to_bytes(c.max, page),
                    memory_low_bytes: has(kpresent::MEMCG_LOW).then(|| pages_to_bytes(c.low, page)),
                    memory_high_bytes: has(kpresent::MEMCG_HIGH).then(|| pages_to_bytes(c.high, page)),
                    memory_min_bytes: has(kpresent::MEMCG_MIN).then(|| pages_to_bytes(c.min, page)),
                    swap_usage_bytes: has(kpresent::MEMCG_SWAP).then(|| pages_to_bytes(c.swap_usage, page)),
                    swap_limit_bytes: has(kpresent::MEMCG_SWAP).then(|| pages_to_bytes(c.swap_max, page)),
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
            memcg,
            ram_pages: None,
            swap_pages: None,
        })
    }
}
