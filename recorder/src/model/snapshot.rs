//! The victim's cgroup as its files showed it right after the kill
//! (`sources::cgroup::files` reads them).

use crate::kernel::memcg::MemcgVersion;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Process {
    pub pid: i32,
    pub comm: Option<String>,
    pub cmdline: Option<String>,
    pub rss_kb: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: Option<MemcgVersion>,
    /// The cgroup's path within its hierarchy.
    pub path: Option<String>,
    /// How long after the kill (the eBPF event's boot clock) it was taken.
    pub delay_us: Option<u64>,
    pub memory_usage_bytes: Option<u64>,
    /// The hard limit (v1 `limit_in_bytes`, v2 `memory.max`); `None` for none.
    pub memory_limit_bytes: Option<u64>,
    pub memory_high_bytes: Option<u64>,
    pub memory_low_bytes: Option<u64>,
    pub memory_min_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub swap_usage_bytes: Option<u64>,
    pub swap_limit_bytes: Option<u64>,
    pub memsw_usage_bytes: Option<u64>,
    pub memsw_limit_bytes: Option<u64>,
    pub failcnt: Option<u64>,
    pub oom_group: Option<bool>,
    pub events: Option<Vec<(String, u64)>>,
    pub events_local: Option<Vec<(String, u64)>>,
    pub memory_stat: Option<Vec<(String, u64)>>,
    pub pressure: Option<String>,
    /// usage − inactive_file: what kubectl top and kubelet eviction use.
    pub working_set_bytes: Option<u64>,
    pub processes: Vec<Process>,
    /// What could not be read, and why.
    pub problems: Vec<String>,
}
