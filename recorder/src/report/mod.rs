//! The kernel's OOM report, parsed from its log lines (kmsg, journal, an
//! imported `dmesg`): one [`Item`] per kill, per reaped victim and per victim
//! that was already exiting.
//!
//! Pure: the caller reads the lines (splitting multi-line records) and feeds
//! them to [`Parser::push`]; nothing here does I/O, and no input panics.
//!
//! # How lines are grouped
//!
//! mm/oom_kill.c prints, under `oom_lock`, a *header* (`dump_header`: trigger,
//! stack, memcg counters and memory.stat or Mem-Info, task table, `oom-kill:`
//! summary) and then the *kill line* (`__oom_kill_process`). Other kernel
//! messages can be interleaved, two headers never are. The header is
//! rate-limited (10 per 5 s), the kill line is not, so in a storm most kills
//! arrive alone.
//!
//! - A header opens at `invoked oom-killer`, or, when the start was lost (the
//!   ring buffer wrapped), at the first line only an OOM header prints
//!   (`memory: usage`, `Memory cgroup stats for`, `Tasks state`, the task
//!   table's column line, `oom-kill:`, `Task in ... killed as a result of`);
//!   such a header has `truncated: true`.
//! - It closes at the first kill line after it, which gets it as
//!   `Arc<Header>`; or, with no kill, at the next header, at `Out of memory and
//!   no killable processes...` or at [`Parser::finish`], and is then counted
//!   in [`ParserStats::stale_headers`], never attached to a later kill. A header
//!   whose `oom-kill:` summary names another pid than the kill line (and than
//!   the pre-5.1 `Kill process ... sacrifice child` line) is stale too: its
//!   own kill was never printed (the victim had no mm left).
//! - `Tasks in <path> are going to be killed due to memory.oom.group set` opens
//!   a group after the chosen victim's kill: the kill lines that follow share
//!   its header and are `group_member: true`. The chosen victim is printed a
//!   second time as a member; both lines are items, the second with
//!   `repeat_of_chosen` (the first line's time), by which the caller joins
//!   it to the first.
//!   The group closes at the next header, `sacrifice child` line, or at a kill
//!   line that cannot be a member: another reason, a pid missing from the
//!   header's task table, or a pid already seen in the group (other than the
//!   chosen victim's one repeat).
//! - Any other kill line has `header: None`.
//!
//! Lines between a header's start and its kill that fit no rule of the section
//! they arrive in are counted as unrelated and not kept; lines that fit a rule's
//! prefix but not its figures are kept raw and counted as unparsed.

mod lines;
mod parser;
#[cfg(test)]
mod tests;

pub use parser::Parser;

use std::sync::Arc;

/// One kernel log line: `usec` = µs since boot when the source has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub usec: Option<u64>,
    pub text: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Kill(Box<KernelKill>),
    /// `oom_reaper: reaped process`
    Reaped(Reaped),
    /// The victim was already exiting: marked, not killed.
    Exiting(Exiting),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelKill {
    /// Of the `Killed process` line.
    pub usec: Option<u64>,
    /// `"Out of memory"`, `"Memory cgroup out of memory"`, ... (5.1+, or from
    /// the pre-5.1 `Kill process` line).
    pub reason: Option<String>,
    pub pid: i32,
    pub comm: String,
    /// The line's figures, as the kernel printed them.
    pub figures: crate::model::Figures,
    /// Pre-5.1 `Kill process … score N or sacrifice child`, when it named this pid.
    pub score: Option<u64>,
    /// Killed as a memory.oom.group member. The chosen victim appears twice:
    /// once as chosen (`false`), once as a member (`true`).
    pub group_member: bool,
    /// The chosen victim's second line (a member too). The walk that prints the repeat
    /// (`mem_cgroup_scan_tasks(oom_group, oom_kill_memcg_member)` in
    /// mm/oom_kill.c) reaches the chosen victim wherever it sits in the
    /// group's task list, which is last for a task that joined the cgroup
    /// last: thousands of lines, and under a slow machine many seconds,
    /// after its first line.
    pub repeat_of_chosen: bool,
    /// For a repeat: the `usec` of the chosen victim's first line, the time
    /// of its kill, when that line was seen.
    pub chosen_usec: Option<u64>,
    /// The path named by `Tasks in <path> are going to be killed`.
    pub group_cgroup: Option<String>,
    /// `None` when the kernel rate-limited the header (or it was lost).
    pub header: Option<Arc<Header>>,
    /// This kill's own raw lines: the `Kill process … sacrifice child` line
    /// if any, then the `Killed process` line.
    pub lines: Vec<String>,
}

impl KernelKill {
    /// The kernel-log stamp of the kill this line is about: its own, or for
    /// the chosen victim's repeat the first line's (the repeat is a fact
    /// about that kill, however long the walk took to reach it again).
    pub fn kill_usec(&self) -> Option<u64> {
        if self.repeat_of_chosen {
            self.chosen_usec.or(self.usec)
        } else {
            self.usec
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Of the header's first line.
    pub usec: Option<u64>,
    /// The start of the report was not seen (the ring buffer wrapped): the
    /// trigger fields are then missing.
    pub truncated: bool,
    pub trigger_comm: Option<String>,
    /// As printed: `0xcc0(GFP_KERNEL)`.
    pub gfp_mask: Option<String>,
    pub order: Option<i32>,
    pub trigger_oom_score_adj: Option<i32>,
    pub trigger_pid: Option<i32>,
    /// 6.11+.
    pub trigger_uid: Option<u32>,
    pub cpu: Option<u32>,
    pub memory: Option<Usage>,
    pub swap: Option<Usage>,
    pub memsw: Option<Usage>,
    pub kmem: Option<Usage>,
    /// 6.19+.
    pub min_protection_kb: Option<u64>,
    pub low_protection_kb: Option<u64>,
    /// The first `Memory cgroup stats for` block (3.x/4.x print one per
    /// descendant cgroup; the rest stay in `lines`).
    pub stats_cgroup: Option<String>,
    /// Key, value as printed (`anon`, `67108864`; old one-line form
    /// `cache`, `0KB`).
    pub memory_stat: Vec<(String, String)>,
    pub task_columns: Vec<String>,
    /// Rows named by `task_columns`.
    pub tasks: Vec<Vec<(String, String)>>,
    /// `CONSTRAINT_MEMCG`, ...
    pub constraint: Option<String>,
    /// As printed, from the trigger line (pre-5.0) or the summary.
    pub nodemask: Option<String>,
    pub cpuset: Option<String>,
    pub mems_allowed: Option<String>,
    /// `oom_memcg=` (or pre-5.0 `limit of <path>`).
    pub oom_cgroup: Option<String>,
    pub global_oom: bool,
    /// `task_memcg=` (or pre-5.0 `Task in <path>`).
    pub task_cgroup: Option<String>,
    /// From the `oom-kill:` summary.
    pub chosen_comm: Option<String>,
    pub chosen_pid: Option<i32>,
    pub chosen_uid: Option<u32>,
    /// All raw header lines, in order, including unparsed and call-trace lines.
    pub lines: Vec<String>,
}

impl Header {
    /// The `pid` column of the task table.
    pub fn task_pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.tasks.iter().filter_map(|row| row.first().filter(|(k, _)| k == "pid")?.1.parse().ok())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub usage_kb: u64,
    pub limit_kb: u64,
    pub failcnt: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub usec: Option<u64>,
    pub pid: i32,
    pub comm: String,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exiting {
    pub usec: Option<u64>,
    pub pid: i32,
    pub comm: String,
    pub line: String,
    /// The `<message>: ` prefix, 5.1+.
    pub reason: Option<String>,
    /// The header printed for this OOM, when the victim exited between the
    /// header and the kill (or the group's, for a group member).
    pub header: Option<Arc<Header>>,
}

/// Counters over everything fed. `report_lines + unrelated_lines` equals
/// `lines` unless lines had embedded `\n` (each piece counts then; a trailing
/// newline is not a piece).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserStats {
    /// Lines fed to `push`.
    pub lines: u64,
    /// Lines recognised as part of an OOM report (kept or not).
    pub report_lines: u64,
    /// Report lines whose figures did not parse; kept raw.
    pub unparsed_lines: u64,
    pub unrelated_lines: u64,
    /// Report lines not kept because a header exceeded `MAX_HEADER_LINES`.
    pub dropped_lines: u64,
    pub headers: u64,
    /// Headers whose start was not seen.
    pub truncated_headers: u64,
    /// Headers closed without a kill.
    pub stale_headers: u64,
    pub kills: u64,
    pub kills_without_header: u64,
    pub group_members: u64,
    pub reaped: u64,
    pub exiting: u64,
    /// `oom_reaper: unable to reap`.
    pub reap_failures: u64,
    /// `Out of memory and no killable processes...`
    pub no_killable: u64,
    /// `Kill process … sacrifice child` lines with no `Killed process` after.
    pub unmatched_selections: u64,
}
