//! Which OOM a kill was: a memory cgroup's limit, or the whole machine's
//! memory (or a cpuset's or a memory policy's nodes). One classification,
//! used by `stats`, the `--memcg`/`--global` filters, `show`, the JSON and
//! the store's `oom_scope` column, so they never disagree.
//!
//! The kernel's own word wins; the kill-time counters come last:
//! 1. the report's `oom-kill:constraint=` (mm/oom_kill.c `enum
//!    oom_constraint`, printed by `dump_oom_victim` since 4.19), or its
//!    `global_oom` flag;
//! 2. the kill line's reason: `mem_cgroup_out_of_memory()` passes "Memory
//!    cgroup out of memory", every other OOM "Out of memory"
//!    (`oom_kill_process`), so a kill whose header was rate-limited still
//!    says which it was;
//! 3. the memory cgroups' counters read at the kill (raw tracepoint): a
//!    level whose usage reached its limit makes a memcg OOM; when every
//!    level up to the root was read and none had, the machine ran out.

use super::Kill;

/// What kind of OOM chose the victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomScope {
    /// A memory cgroup's limit (CONSTRAINT_MEMCG).
    Memcg,
    /// The whole machine (CONSTRAINT_NONE).
    Global,
    /// The nodes of the allocating task's cpuset (CONSTRAINT_CPUSET).
    Cpuset,
    /// The nodes of a memory policy (CONSTRAINT_MEMORY_POLICY).
    MemoryPolicy,
}

impl OomScope {
    pub const ALL: [OomScope; 4] =
        [OomScope::Memcg, OomScope::Global, OomScope::Cpuset, OomScope::MemoryPolicy];

    /// The name in the store, the JSON (`oom.scope`) and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            OomScope::Memcg => "memcg",
            OomScope::Global => "global",
            OomScope::Cpuset => "cpuset",
            OomScope::MemoryPolicy => "mempolicy",
        }
    }

    /// The kernel's name, as the `oom-kill:constraint=` line prints it.
    pub const fn kernel_name(self) -> &'static str {
        match self {
            OomScope::Memcg => "CONSTRAINT_MEMCG",
            OomScope::Global => "CONSTRAINT_NONE",
            OomScope::Cpuset => "CONSTRAINT_CPUSET",
            OomScope::MemoryPolicy => "CONSTRAINT_MEMORY_POLICY",
        }
    }

    /// For people: what ran out.
    pub const fn describe(self) -> &'static str {
        match self {
            OomScope::Memcg => "a memory cgroup's limit",
            OomScope::Global => "the whole machine's memory (global OOM)",
            OomScope::Cpuset => "the memory of the task's cpuset",
            OomScope::MemoryPolicy => "the memory of the task's memory policy",
        }
    }

    pub fn parse(name: &str) -> Option<OomScope> {
        OomScope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn from_kernel_name(name: &str) -> Option<OomScope> {
        OomScope::ALL.into_iter().find(|s| s.kernel_name() == name)
    }
}

/// The reason `mem_cgroup_out_of_memory()` gives `oom_kill_process()`.
const MEMCG_REASON: &str = "Memory cgroup out of memory";
/// The reason of every other OOM (`out_of_memory()`, and pre-4.19 kernels'
/// `Out of memory: Kill process` lines).
const OTHER_REASON: &str = "Out of memory";

/// Which OOM `kill` was; `None` when the record cannot say.
pub fn classify(kill: &Kill) -> Option<OomScope> {
    let oom = &kill.oom;
    if let Some(scope) = oom.constraint.as_deref().and_then(OomScope::from_kernel_name) {
        return Some(scope);
    }
    if oom.global == Some(true) {
        return Some(OomScope::Global);
    }
    match oom.reason.as_deref() {
        Some(reason) if reason.starts_with(MEMCG_REASON) => return Some(OomScope::Memcg),
        // Not a memcg OOM; a cpuset or policy OOM says so in its header,
        // which this kill lacks: by far the most are the machine's.
        Some(reason) if reason.starts_with(OTHER_REASON) => return Some(OomScope::Global),
        _ => {}
    }
    let k = kill.kernel.as_ref()?;
    if k.memcg.is_empty() {
        return None;
    }
    if k.inferred_oom_level().is_some() {
        return Some(OomScope::Memcg);
    }
    // No level at its limit: the machine's OOM, if the levels reach the root
    // (the program reads at most MEMCG_MAX_LEVELS of them).
    let reaches_root = k.memcg.len() < common::MEMCG_MAX_LEVELS
        || k.memcg.last().and_then(|l| l.path.as_deref()) == Some("/");
    reaches_root.then_some(OomScope::Global)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KernelState, MemcgLevel, Oom};

    fn with_oom(oom: Oom) -> Kill {
        Kill { oom, ..Kill::default() }
    }

    fn level(usage: u64, limit: u64) -> MemcgLevel {
        MemcgLevel { memory_usage_bytes: usage, memory_limit_bytes: limit, ..MemcgLevel::default() }
    }

    fn counters(levels: Vec<MemcgLevel>) -> Kill {
        Kill {
            kernel: Some(KernelState { page_size: 4096, memcg: levels, ..KernelState::default() }),
            ..Kill::default()
        }
    }

    #[test]
    fn the_constraint_wins_then_the_reason_then_the_counters() {
        for scope in OomScope::ALL {
            let kill = with_oom(Oom {
                constraint: Some(scope.kernel_name().into()),
                // A reason that says otherwise loses to the constraint.
                reason: Some("Memory cgroup out of memory".into()),
                ..Oom::default()
            });
            assert_eq!(classify(&kill), Some(scope));
            assert_eq!(OomScope::parse(scope.as_str()), Some(scope));
        }
        let global = with_oom(Oom { global: Some(true), ..Oom::default() });
        assert_eq!(classify(&global), Some(OomScope::Global));
        // A kill whose header was rate-limited: only its kill line's reason.
        let memcg = with_oom(Oom { reason: Some("Memory cgroup out of memory".into()), ..Oom::default() });
        assert_eq!(classify(&memcg), Some(OomScope::Memcg));
        let other = with_oom(Oom {
            reason: Some("Out of memory (oom_kill_allocating_task)".into()),
            ..Oom::default()
        });
        assert_eq!(classify(&other), Some(OomScope::Global));
        assert_eq!(classify(&Kill::default()), None, "nothing known");
    }

    #[test]
    fn kill_time_counters_decide_when_the_report_is_missing() {
        const UNLIMITED: u64 = 9_223_372_036_854_771_712;
        let mib = 1 << 20;
        // The victim's cgroup 1 MiB under its 64 MiB limit: within 512 pages.
        let at_limit = counters(vec![level(63 * mib, 64 * mib), level(80 * mib, UNLIMITED)]);
        assert_eq!(classify(&at_limit), Some(OomScope::Memcg));
        let roomy = counters(vec![level(10 * mib, 64 * mib), level(80 * mib, UNLIMITED)]);
        assert_eq!(classify(&roomy), Some(OomScope::Global));
        // Eight levels read, the last not the root: an ancestor above them
        // may have been at its limit.
        let deep = counters((0..common::MEMCG_MAX_LEVELS).map(|_| level(mib, UNLIMITED)).collect());
        assert_eq!(classify(&deep), None);
        assert_eq!(classify(&counters(Vec::new())), None, "no counters read");
        // The report, when it came, still wins over the counters.
        let mut both = roomy.clone();
        both.oom.reason = Some("Memory cgroup out of memory".into());
        assert_eq!(classify(&both), Some(OomScope::Memcg));
    }
}
