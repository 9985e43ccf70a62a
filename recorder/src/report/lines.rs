//! One function per line shape of the kernel's OOM report. Each takes the
//! line's text and returns `None` when the line is not of its shape; the state
//! machine in `mod.rs` decides what a line means in context.
//!
//! No regexes: every rule is a prefix, a fixed marker and a few numbers, so
//! `split_once`/`strip_prefix` is both clearer and several times faster.

use super::Usage;
use crate::model::Figures;

/// `%s invoked oom-killer: gfp_mask=%#x(%pGg), order=%d, oom_score_adj=%hd`
/// (mm/oom_kill.c `dump_header`). Before 5.0 a `nodemask=%*pbl` field follows
/// the gfp mask; before 4.6 the mask has no `(%pGg)` flags; 2.6.3x has
/// `oom_adj=%d` before `oom_score_adj`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Invoked<'a> {
    pub comm: &'a str,
    pub gfp_mask: Option<&'a str>,
    pub nodemask: Option<&'a str>,
    pub order: Option<i32>,
    pub oom_score_adj: Option<i32>,
}

impl Invoked<'_> {
    /// All fields every kernel prints were found.
    pub fn complete(&self) -> bool {
        self.gfp_mask.is_some() && self.order.is_some() && self.oom_score_adj.is_some()
    }
}

pub(super) const INVOKED: &str = " invoked oom-killer: ";

pub(super) fn invoked(text: &str) -> Option<Invoked<'_>> {
    // The comm is at most 15 bytes (TASK_COMM_LEN), shorter than the marker,
    // so the first occurrence is the one the kernel printed.
    let (comm, rest) = text.split_once(INVOKED)?;
    let mut out = Invoked { comm, ..Invoked::default() };
    // The fields are separated by ", "; no value contains it (`%*pbl` node
    // lists are `0-1,3`, `%pGg` flags are joined by `|`).
    for field in rest.trim_end().split(", ") {
        let Some((key, value)) = field.split_once('=') else { continue };
        match key {
            "gfp_mask" => out.gfp_mask = Some(value),
            "nodemask" => out.nodemask = Some(value),
            "order" => out.order = value.parse().ok(),
            // "oom_scoe_adj" is a typo some 2.6.32 vendor kernels printed.
            "oom_score_adj" | "oom_scoe_adj" => out.oom_score_adj = value.parse().ok(),
            _ => {}
        }
    }
    Some(out)
}

/// `CPU: %d PID: %d Comm: %.20s %s...` and from 6.11 `CPU: %d UID: %u PID: %d
/// Comm: ...` (lib/dump_stack.c `dump_stack_print_info`); before 3.9 it was
/// `Pid: %d, comm: %.20s %s...` (arch/x86/kernel/dumpstack.c).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Cpu<'a> {
    pub cpu: Option<u32>,
    pub uid: Option<u32>,
    pub pid: Option<i32>,
    pub comm: Option<&'a str>,
}

pub(super) fn cpu(text: &str) -> Option<Cpu<'_>> {
    if let Some(rest) = text.strip_prefix("CPU: ") {
        let (cpu, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut out = Cpu { cpu: cpu.parse().ok(), ..Cpu::default() };
        let rest = match rest.strip_prefix("UID: ") {
            Some(r) => {
                let (uid, r) = r.split_once(' ').unwrap_or((r, ""));
                out.uid = uid.parse().ok();
                r
            }
            None => rest,
        };
        let rest = rest.strip_prefix("PID: ")?;
        let (pid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        out.pid = pid.parse().ok();
        out.comm = rest.strip_prefix("Comm: ").map(comm_before_taint);
        return Some(out);
    }
    let rest = text.strip_prefix("Pid: ")?;
    let (pid, rest) = rest.split_once(", comm: ")?;
    Some(Cpu { cpu: None, uid: None, pid: pid.parse().ok(), comm: Some(comm_before_taint(rest)) })
}

/// The comm is followed by `Kdump: loaded `, then `Not tainted` or
/// `Tainted: ...` (kernel/panic.c `print_tainted`).
fn comm_before_taint(rest: &str) -> &str {
    let end = [" Kdump: ", " Not tainted", " Tainted: "]
        .iter()
        .filter_map(|marker| rest.find(marker))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `memory: usage %llukB, limit %llukB, failcnt %lu` and its `swap:`,
/// `memory+swap:`, `kmem:` siblings (mm/memcontrol.c
/// `mem_cgroup_print_oom_meminfo`, `mem_cgroup_print_oom_info` before 5.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Counter {
    Memory,
    Swap,
    MemSw,
    Kmem,
}

pub(super) fn counter(text: &str) -> Option<(Counter, &str)> {
    let (name, rest) = text.split_once(": usage ")?;
    let counter = match name {
        "memory" => Counter::Memory,
        "swap" => Counter::Swap,
        "memory+swap" => Counter::MemSw,
        "kmem" => Counter::Kmem,
        _ => return None,
    };
    Some((counter, rest))
}

/// The part after `usage `: `65536kB, limit 65536kB, failcnt 0`.
pub(super) fn usage(rest: &str) -> Option<Usage> {
    let (usage, rest) = rest.split_once("kB, limit ")?;
    let (limit, failcnt) = rest.split_once("kB, failcnt ")?;
    Some(Usage {
        usage_kb: usage.parse().ok()?,
        limit_kb: limit.parse().ok()?,
        failcnt: failcnt.trim_end().parse().ok()?,
    })
}

/// `Memory cgroup min protection %lukB -- low protection %lukB` (6.19+,
/// mm/memcontrol.c `mem_cgroup_print_oom_meminfo`).
pub(super) fn protection(text: &str) -> Option<Option<(u64, u64)>> {
    let rest = text.strip_prefix("Memory cgroup min protection ")?;
    let parsed = rest.split_once("kB -- low protection ").and_then(|(min, low)| {
        let low = low.trim_end().strip_suffix("kB")?;
        Some((min.parse().ok()?, low.parse().ok()?))
    });
    Some(parsed)
}

pub(super) const STATS_FOR: &str = "Memory cgroup stats for ";

/// `Memory cgroup stats for <path>:` (5.3+, then one `key value` line each,
/// mm/memcontrol.c `memory_stat_format`) or the old one-line form
/// `Memory cgroup stats for <path>: cache:0KB rss:12KB ...` (3.x to 5.2,
/// `mem_cgroup_print_oom_info`, ` %s:%luKB` per counter).
/// Returns the path and the one-line pairs, if any.
pub(super) fn stats_for(text: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let rest = text.strip_prefix(STATS_FOR)?.trim_end();
    if let Some(path) = rest.strip_suffix(':') {
        return Some((path, Vec::new()));
    }
    // The pairs never contain ": " (a value follows its colon directly), so
    // the last one ends the path even if the path has ": " in it.
    let (path, pairs) = rest.rsplit_once(": ")?;
    let pairs = pairs.split_ascii_whitespace().filter_map(|pair| pair.split_once(':')).collect();
    Some((path, pairs))
}

/// `key value` of a multi-line memory.stat block (`memory_stat_format`:
/// `%s %llu`; v1's `memcg1_stat_format` prints the same shape).
pub(super) fn stat_pair(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.trim_end().split_once(' ')?;
    let key_ok =
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let value_ok = is_number(value);
    (key_ok && value_ok).then_some((key, value))
}

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The task table's header (mm/oom_kill.c `dump_tasks`):
/// `[  pid  ]   uid  tgid total_vm      rss ... name`, columns varying by
/// version. Returns the column names, `pid` first and `name` last.
pub(super) fn task_columns(text: &str) -> Option<Vec<String>> {
    let rest = text.strip_prefix('[')?;
    let (first, rest) = rest.split_once(']')?;
    if first.trim() != "pid" {
        return None;
    }
    let mut columns = vec!["pid".to_owned()];
    columns.extend(rest.split_ascii_whitespace().map(str::to_owned));
    (columns.len() >= 3 && columns.last().is_some_and(|c| c == "name")).then_some(columns)
}

/// A task-table row, `[%7d] %5d %5d %8lu %8lu ... %5hd %s` (`dump_task`):
/// returns the values in column order, the name being the rest of the line
/// after the single space the format puts before it.
pub(super) fn task_row(text: &str, columns: usize) -> Option<Vec<&str>> {
    let rest = text.strip_prefix('[')?;
    let (pid, mut rest) = rest.split_once(']')?;
    let pid = pid.trim();
    if !is_number(pid) || columns < 2 {
        return None;
    }
    let mut values = Vec::with_capacity(columns);
    values.push(pid);
    for _ in 0..columns - 2 {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        let value = &rest[..end];
        if !is_number(value) {
            return None;
        }
        values.push(value);
        rest = &rest[end..];
    }
    // `%5hd %s`: exactly one space before the name.
    let name = rest.strip_prefix(' ')?;
    values.push(name.trim_end_matches(['\r', '\n']));
    Some(values)
}

/// `oom-kill:constraint=%s,nodemask=%*pbl` `,cpuset=%s,mems_allowed=%*pbl`
/// `,oom_memcg=<path>` or `,global_oom`, `,task_memcg=<path>`
/// `,task=%s,pid=%d,uid=%d` (mm/oom_kill.c `dump_oom_summary`, 5.0+;
/// kernel/cgroup/cpuset.c `cpuset_print_current_mems_allowed`; mm/memcontrol.c
/// `mem_cgroup_print_oom_context`). cpuset and memcg parts are absent without
/// CONFIG_CPUSETS / CONFIG_MEMCG.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Summary<'a> {
    pub constraint: Option<&'a str>,
    pub nodemask: Option<&'a str>,
    pub cpuset: Option<&'a str>,
    pub mems_allowed: Option<&'a str>,
    pub oom_memcg: Option<&'a str>,
    pub global_oom: bool,
    pub task_memcg: Option<&'a str>,
    pub task: Option<&'a str>,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
}

pub(super) fn summary(text: &str) -> Option<Summary<'_>> {
    let rest = text.strip_prefix("oom-kill:")?.trim_end();
    let mut out = Summary::default();
    // Node lists and cgroup paths can contain commas, so the fixed keys are
    // found in the order the kernel prints them, and the victim's fields
    // from the right (the comm can contain commas too).
    let (left, uid) = rest.rsplit_once(",uid=")?;
    out.uid = uid.parse().ok();
    let (left, pid) = left.rsplit_once(",pid=")?;
    out.pid = pid.parse().ok();
    let (left, task) = left.rsplit_once(",task=")?;
    out.task = Some(task);

    let left = left.strip_prefix("constraint=")?;
    let (constraint, rest) = cut_at(left, ",nodemask=");
    out.constraint = Some(constraint);
    let mut left = "";
    if let Some(rest) = rest {
        let (nodemask, tail) = cut_first(rest, &[",cpuset=", ",oom_memcg=", ",global_oom", ",task_memcg="]);
        out.nodemask = Some(nodemask);
        left = tail.unwrap_or("");
    }
    if let Some(after) = left.strip_prefix(",cpuset=") {
        let (cpuset, rest) = cut_at(after, ",mems_allowed=");
        out.cpuset = Some(cpuset);
        let (mems, tail) = cut_first(rest.unwrap_or(""), &[",oom_memcg=", ",global_oom", ",task_memcg="]);
        out.mems_allowed = rest.map(|_| mems);
        left = tail.unwrap_or("");
    }
    if let Some(after) = left.strip_prefix(",global_oom") {
        out.global_oom = true;
        left = after;
    } else if let Some(after) = left.strip_prefix(",oom_memcg=") {
        let (memcg, tail) = cut_first(after, &[",task_memcg="]);
        out.oom_memcg = Some(memcg);
        left = tail.unwrap_or("");
    }
    if let Some(after) = left.strip_prefix(",task_memcg=") {
        out.task_memcg = Some(after);
    }
    Some(out)
}

/// Splits `s` at the first `key`: the part before, and the part after if found.
fn cut_at<'a>(s: &'a str, key: &str) -> (&'a str, Option<&'a str>) {
    match s.split_once(key) {
        Some((before, after)) => (before, Some(after)),
        None => (s, None),
    }
}

/// The part of `s` before the earliest of `keys`, and the rest from there.
fn cut_first<'a>(s: &'a str, keys: &[&str]) -> (&'a str, Option<&'a str>) {
    match keys.iter().filter_map(|k| s.find(k)).min() {
        Some(at) => (&s[..at], Some(&s[at..])),
        None => (s, None),
    }
}

/// `Task in <task_memcg> killed as a result of limit of <oom_memcg>`
/// (mm/memcontrol.c `mem_cgroup_print_oom_info`, up to 4.18).
pub(super) fn task_in(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix("Task in ")?.trim_end().split_once(" killed as a result of limit of ")
}

/// `Tasks in <path> are going to be killed due to memory.oom.group set`
/// (mm/memcontrol.c `mem_cgroup_print_oom_group`, 4.19+).
pub(super) fn group(text: &str) -> Option<&str> {
    text.strip_prefix("Tasks in ")?
        .trim_end()
        .strip_suffix(" are going to be killed due to memory.oom.group set")
}

/// `<comm> cpuset=<name> mems_allowed=<list>`, printed right after the
/// trigger line before 5.0 (kernel/cpuset.c `cpuset_print_current_mems_allowed`,
/// `cpuset_print_task_mems_allowed` in 3.x).
pub(super) fn cpuset_line(text: &str) -> Option<(&str, &str)> {
    let (_, rest) = text.split_once(" cpuset=")?;
    rest.trim_end().rsplit_once(" mems_allowed=")
}

/// The figures of a kill: `Killed process %d (%s) total-vm:%lukB,
/// anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB
/// oom_score_adj:%hd` with a `<reason>: ` prefix from 5.1
/// (mm/oom_kill.c `__oom_kill_process`). 5.1 to 5.3 stop after shmem-rss,
/// 4.x has no prefix, pre-4.6 has no shmem-rss. RHEL 7 prints
/// `Killed process %d (%s), UID %u, total-vm:...`; RHEL 6
/// `Killed process %d, UID %u, (%s) total-vm:...`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Killed<'a> {
    pub reason: Option<&'a str>,
    pub pid: i32,
    pub comm: &'a str,
    pub figures: Figures,
    /// A figure was present but did not parse.
    pub bad_figure: bool,
}

pub(super) const KILLED: &str = "Killed process ";

/// The `<message>: ` before a marker, as the kernel's `message` argument
/// (`"Out of memory"`, `"Memory cgroup out of memory"`, ...).
fn reason(prefix: &str) -> Option<&str> {
    prefix.trim_end().strip_suffix(':').map(str::trim).filter(|r| !r.is_empty())
}

pub(super) fn killed(text: &str) -> Option<Killed<'_>> {
    let at = text.find(KILLED)?;
    let reason = reason(&text[..at]);
    let rest = text[at + KILLED.len()..].trim_end();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let pid = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    let mut out = Killed { reason, pid, ..Killed::default() };

    // RHEL 6: `, UID %d, (%s) total-vm:`.
    let rest = match rest.strip_prefix(", UID ") {
        Some(r) => {
            let (uid, r) = r.split_once(',')?;
            out.figures.uid = uid.trim().parse().ok();
            r.trim_start()
        }
        None => rest.trim_start(),
    };
    let after_paren = rest.strip_prefix('(')?;
    // The comm may contain ") ", so it ends at the last ')' before the
    // figures (or at the last ')' when the line has none).
    let (comm, figures) = match after_paren.rfind("total-vm:") {
        Some(fig) => {
            let close = after_paren[..fig].rfind(')')?;
            (&after_paren[..close], &after_paren[close + 1..])
        }
        None => {
            let close = after_paren.rfind(')')?;
            (&after_paren[..close], &after_paren[close + 1..])
        }
    };
    out.comm = comm;
    for token in figures.split([' ', ',']).filter(|t| !t.is_empty()) {
        let Some((key, value)) = token.split_once(':') else {
            // RHEL 7's `), UID 1000, total-vm:` puts the uid as `UID` `1000`.
            if let Ok(uid) = token.parse() {
                out.figures.uid.get_or_insert(uid);
            }
            continue;
        };
        let kb = || value.strip_suffix("kB").and_then(|v| v.parse().ok());
        let ok = match key {
            "total-vm" => set(&mut out.figures.total_vm_kb, kb()),
            "anon-rss" => set(&mut out.figures.anon_rss_kb, kb()),
            "file-rss" => set(&mut out.figures.file_rss_kb, kb()),
            "shmem-rss" => set(&mut out.figures.shmem_rss_kb, kb()),
            "pgtables" => set(&mut out.figures.pgtables_kb, kb()),
            "UID" => set(&mut out.figures.uid, value.parse().ok()),
            "oom_score_adj" => set(&mut out.figures.oom_score_adj, value.parse().ok()),
            _ => true,
        };
        out.bad_figure |= !ok;
    }
    Some(out)
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    let ok = value.is_some();
    if ok {
        *slot = value;
    }
    ok
}

/// `<reason>: Kill process %d (%s) score %u or sacrifice child`, printed before
/// the `Killed process` line up to 5.0 (mm/oom_kill.c `oom_kill_process`).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Selected<'a> {
    pub reason: Option<&'a str>,
    pub pid: i32,
    pub comm: &'a str,
    pub score: Option<u64>,
}

pub(super) fn selected(text: &str) -> Option<Selected<'_>> {
    let rest = text.trim_end().strip_suffix(" or sacrifice child")?;
    let at = rest.find("Kill process ")?;
    let reason = reason(&rest[..at]);
    let (pid, rest) = rest[at + "Kill process ".len()..].split_once(" (")?;
    let (comm, score) = rest.rsplit_once(") score ")?;
    Some(Selected { reason, pid: pid.parse().ok()?, comm, score: score.parse().ok() })
}

/// Lines about other tasks sharing the victim's mm, printed after the kill:
/// `Kill process %d (%s) sharing same memory` (up to 4.5) and
/// `oom killer %d (%s) has mm pinned by %d (%s)` (4.6+), both in
/// `oom_kill_process` / `__oom_kill_process`.
pub(super) fn sharing(text: &str) -> bool {
    let text = text.trim_end();
    (text.contains("Kill process ") && text.ends_with(" sharing same memory"))
        || (text.starts_with("oom killer ") && text.contains(") has mm pinned by "))
}

/// `oom_reaper: reaped process %d (%s), now anon-rss:%lukB, file-rss:%lukB,
/// shmem-rss:%lukB` (mm/oom_kill.c `oom_reap_task_mm`, 4.6+).
pub(super) struct ReapedLine<'a> {
    pub pid: i32,
    pub comm: &'a str,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
}

pub(super) fn reaped(rest: &str) -> Option<ReapedLine<'_>> {
    let (pid, rest) = rest.strip_prefix("reaped process ")?.split_once(" (")?;
    let (comm, figures) = rest.rsplit_once("), now ")?;
    let mut out =
        ReapedLine { pid: pid.parse().ok()?, comm, anon_rss_kb: 0, file_rss_kb: 0, shmem_rss_kb: 0 };
    let (mut anon, mut file, mut shmem) = (None, None, None);
    for token in figures.trim_end().split(", ") {
        let (key, value) = token.split_once(':')?;
        let value = value.strip_suffix("kB")?.parse().ok()?;
        match key {
            "anon-rss" => anon = Some(value),
            "file-rss" => file = Some(value),
            "shmem-rss" => shmem = Some(value),
            _ => {}
        }
    }
    out.anon_rss_kb = anon?;
    out.file_rss_kb = file?;
    out.shmem_rss_kb = shmem?;
    Some(out)
}

/// `oom_reaper: unable to reap pid:%d (%s)` (`oom_reap_task`).
pub(super) fn unable_to_reap(rest: &str) -> bool {
    rest.starts_with("unable to reap pid:")
}

/// `%s: OOM victim %d (%s) is already exiting. Skip killing the task`
/// (mm/oom_kill.c `__oom_kill_process`, 5.1+; vendor kernels print it
/// without the prefix or the second sentence).
pub(super) struct ExitingLine<'a> {
    pub reason: Option<&'a str>,
    pub pid: i32,
    pub comm: &'a str,
}

pub(super) fn exiting(text: &str) -> Option<ExitingLine<'_>> {
    let at = text.find("OOM victim ")?;
    let reason = reason(&text[..at]);
    let (pid, rest) = text[at + "OOM victim ".len()..].split_once(" (")?;
    let (comm, _) = rest.rsplit_once(") is already exiting")?;
    Some(ExitingLine { reason, pid: pid.parse().ok()?, comm })
}

/// Lines of `dump_stack()` (lib/dump_stack.c, arch/*/kernel/dumpstack.c,
/// traps.c `show_regs`): indented frames, `Call Trace:`, `<TASK>`, register
/// lines such as `RIP: 0010:...`, `R13: ...`, arm64 `pc : ...`, `x29: ...`.
pub(super) fn stack_line(text: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "Call Trace:",
        "Call trace:",
        "Hardware name:",
        "Workqueue:",
        "Sched_ext:",
        "Tainted: ",
        "<TASK>",
        "</TASK>",
        "<IRQ>",
        "</IRQ>",
        "Code: ",
        "Stack:",
    ];
    if text.starts_with([' ', '\t']) || PREFIXES.iter().any(|p| text.starts_with(p)) {
        return true;
    }
    let Some((name, _)) = text.split_once(':') else { return false };
    let name = name.trim_end();
    let x86 =
        (1..=6).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let arm64 = matches!(name, "pc" | "lr" | "sp" | "pstate")
        || name.strip_prefix('x').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    x86 || arm64
}

/// Lines of the global OOM's memory summary (mm/show_mem.c `__show_mem`,
/// `show_free_areas`; lib/show_mem.c; mm/slab_common.c
/// `dump_unreclaimable_slab`).
pub(super) fn meminfo_line(text: &str) -> bool {
    const PREFIXES: [&str; 16] = [
        "Node ",
        "active_anon:",
        "lowmem_reserve[]:",
        "Swap cache stats:",
        "Free swap",
        "Total swap",
        "Unreclaimable slab info:",
        "Name ",
        "CPU ",
        "DMA",
        "Normal ",
        "Normal:",
        "HighMem",
        "Movable",
        "Device ",
        "hugetlb",
    ];
    if text.starts_with([' ', '\t']) || text.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    if PREFIXES.iter().any(|p| text.starts_with(p)) {
        return true;
    }
    // `dump_unreclaimable_slab` rows: `%-17s %10luKB %10luKB`.
    let mut words = text.split_ascii_whitespace().rev();
    matches!((words.next(), words.next()), (Some(a), Some(b)) if a.ends_with("KB") && b.ends_with("KB"))
}

#[cfg(test)]
mod tests;
