//! The state machine that groups a report's lines into kills (the rules are
//! in the module docs of [`super`]).

use std::{collections::HashSet, sync::Arc};

use super::{lines, Exiting, Header, Item, KernelKill, Line, ParserStats, Reaped};

/// A global OOM's task table has one row per process; this bounds a header
/// that never closes on a host with a runaway log.
const MAX_HEADER_LINES: usize = 200_000;

/// Where in `dump_header` the report is, which decides how a line that fits
/// no explicit rule is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    /// After `invoked oom-killer`, before the stack.
    Trigger,
    /// `dump_stack()`.
    Stack,
    /// `mem_cgroup_print_oom_meminfo` counters.
    Memcg,
    /// `key value` lines of the first memory.stat block.
    MemcgStats,
    /// `key value` lines of a later block: kept raw only.
    OtherStats,
    /// `__show_mem` (global OOM).
    MemInfo,
    /// `dump_tasks`.
    Tasks,
    /// `dump_oom_summary` seen.
    Summary,
}

struct Building {
    header: Header,
    section: Section,
}

/// A pre-5.1 `Kill process … sacrifice child` line waiting for its kill.
struct Selection {
    reason: Option<String>,
    pid: i32,
    score: Option<u64>,
    line: String,
}

/// A memory.oom.group kill in progress.
struct Group {
    cgroup: String,
    header: Option<Arc<Header>>,
    reason: Option<String>,
    chosen_pid: Option<i32>,
    /// Of the chosen victim's first `Killed process` line, when it was seen.
    chosen_usec: Option<u64>,
    chosen_repeated: bool,
    seen: HashSet<i32>,
    /// Pids of the header's task table, when it has one.
    table: Option<HashSet<i32>>,
}

/// Whether a kill line belongs to the open group, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Membership {
    Not,
    Member,
    /// The chosen victim's second line.
    Repeat,
}

impl Group {
    fn admits(&mut self, reason: Option<&str>, pid: i32) -> Membership {
        if let (Some(a), Some(b)) = (self.reason.as_deref(), reason) {
            if a != b {
                return Membership::Not;
            }
        }
        if self.table.as_ref().is_some_and(|t| !t.contains(&pid)) {
            return Membership::Not;
        }
        if self.seen.insert(pid) {
            return Membership::Member;
        }
        // mm/oom_kill.c `oom_kill_memcg_member` walks every task of the
        // group, the already killed chosen victim included: one repeat.
        if self.chosen_pid == Some(pid) && !self.chosen_repeated {
            self.chosen_repeated = true;
            return Membership::Repeat;
        }
        Membership::Not
    }
}

/// The most recent kill, which a `Tasks in ... memory.oom.group` line extends.
struct LastKill {
    header: Option<Arc<Header>>,
    reason: Option<String>,
    pid: i32,
    usec: Option<u64>,
}

/// The state machine. See the module documentation for the rules.
#[derive(Default)]
pub struct Parser {
    building: Option<Building>,
    selection: Option<Selection>,
    group: Option<Group>,
    last_kill: Option<LastKill>,
    stats: ParserStats,
}

impl Default for Building {
    fn default() -> Self {
        Building { header: Header::default(), section: Section::Trigger }
    }
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Feeds one line; returns the items it completed (usually zero or one).
    pub fn push(&mut self, line: Line<'_>) -> Vec<Item> {
        self.stats.lines += 1;
        let mut out = Vec::new();
        // A line as `read_line` returns it ends in a newline: not a piece.
        let text = line.text.trim_end_matches(['\n', '\r']);
        if text.contains('\n') {
            // A multi-line record the caller did not split (5.3 to 6.4 print
            // memory.stat as one record).
            for piece in text.split('\n') {
                self.piece(line.usec, piece, &mut out);
            }
        } else {
            self.piece(line.usec, text, &mut out);
        }
        out
    }

    /// End of input (an import file): returns anything still pending. Kills
    /// are emitted at their own line, so this only closes an open header (as
    /// stale) and a pending selection.
    pub fn finish(&mut self) -> Vec<Item> {
        self.close_stale();
        self.forget_selection();
        self.group = None;
        self.last_kill = None;
        Vec::new()
    }

    pub fn stats(&self) -> ParserStats {
        self.stats
    }

    fn piece(&mut self, usec: Option<u64>, text: &str, out: &mut Vec<Item>) {
        let text = text.trim_end_matches(['\n', '\r']);
        if self.line(usec, text, out) {
            self.stats.report_lines += 1;
        } else {
            self.stats.unrelated_lines += 1;
        }
    }

    /// Returns whether the line belonged to a report.
    fn line(&mut self, usec: Option<u64>, text: &str, out: &mut Vec<Item>) -> bool {
        if self.header_fast_path(text) {
            return true;
        }
        if self.report_rule(usec, text, out) {
            return true;
        }
        if self.building.is_some() {
            return self.header_rule(text);
        }
        if opens_truncated_header(text) {
            self.start_header(usec, true);
            return self.header_rule(text);
        }
        false
    }

    /// The bulk of a header: stack frames, memory.stat pairs and task rows,
    /// checked by shape first because they are most of its lines and no other
    /// rule's line has their shape.
    fn header_fast_path(&mut self, text: &str) -> bool {
        let Some(b) = self.building.as_mut() else { return false };
        match b.section {
            // lib/dump_stack.c: frames are indented.
            Section::Stack if text.starts_with([' ', '\t']) => {}
            // mm/memcontrol.c `memory_stat_format` / `memcg1_stat_format`: `%s %llu`.
            Section::MemcgStats | Section::OtherStats => {
                let Some((key, value)) = lines::stat_pair(text) else { return false };
                if b.section == Section::MemcgStats {
                    b.header.memory_stat.push((key.to_owned(), value.to_owned()));
                }
            }
            // mm/oom_kill.c `dump_task`: `[%7d] ...`.
            Section::Tasks if !b.header.task_columns.is_empty() && is_task_row(text) => {
                let columns = &b.header.task_columns;
                match lines::task_row(text, columns.len()) {
                    Some(values) => {
                        let row =
                            columns.iter().zip(values).map(|(c, v)| (c.clone(), v.to_owned())).collect();
                        b.header.tasks.push(row);
                    }
                    None => self.stats.unparsed_lines += 1,
                }
            }
            _ => return false,
        }
        keep(b, &mut self.stats, text);
        true
    }

    /// Lines that stand on their own or end a header: trigger, kill,
    /// selection, reaper, exiting, group.
    fn report_rule(&mut self, usec: Option<u64>, text: &str, out: &mut Vec<Item>) -> bool {
        if let Some(invoked) = lines::invoked(text) {
            // mm/oom_kill.c `dump_header`: a new report; the previous header
            // (if still open) never got its kill.
            self.start_header(usec, false);
            let Some(b) = self.building.as_mut() else { return true };
            let h = &mut b.header;
            h.trigger_comm = Some(invoked.comm.to_owned());
            h.gfp_mask = invoked.gfp_mask.map(str::to_owned);
            h.nodemask = invoked.nodemask.map(str::to_owned);
            h.order = invoked.order;
            h.trigger_oom_score_adj = invoked.oom_score_adj;
            if !invoked.complete() {
                self.stats.unparsed_lines += 1;
            }
            keep(b, &mut self.stats, text);
            return true;
        }
        if text.contains(lines::KILLED) {
            // mm/oom_kill.c `__oom_kill_process`.
            match lines::killed(text) {
                Some(killed) => out.push(Item::Kill(Box::new(self.kill(usec, text, killed)))),
                None => self.unparsed(text),
            }
            return true;
        }
        if text.ends_with(" or sacrifice child") {
            // mm/oom_kill.c `oom_kill_process`, up to 5.0.
            self.group = None;
            self.forget_selection();
            match lines::selected(text) {
                Some(s) => {
                    self.selection = Some(Selection {
                        reason: s.reason.map(str::to_owned),
                        pid: s.pid,
                        score: s.score,
                        line: text.to_owned(),
                    });
                }
                None => self.unparsed(text),
            }
            return true;
        }
        if let Some(rest) = text.strip_prefix("oom_reaper: ") {
            // mm/oom_kill.c `oom_reap_task_mm` / `oom_reap_task`.
            if let Some(r) = lines::reaped(rest) {
                self.stats.reaped += 1;
                out.push(Item::Reaped(Reaped {
                    usec,
                    pid: r.pid,
                    comm: r.comm.to_owned(),
                    anon_rss_kb: r.anon_rss_kb,
                    file_rss_kb: r.file_rss_kb,
                    shmem_rss_kb: r.shmem_rss_kb,
                }));
            } else if lines::unable_to_reap(rest) {
                self.stats.reap_failures += 1;
            } else {
                self.stats.unparsed_lines += 1;
            }
            return true;
        }
        if text.contains("OOM victim ") {
            // mm/oom_kill.c `__oom_kill_process` (5.1+).
            match lines::exiting(text) {
                Some(e) => {
                    self.stats.exiting += 1;
                    let header = match self.building.take() {
                        Some(b) => Some(Arc::new(b.header)),
                        None => self.group.as_ref().and_then(|g| g.header.clone()),
                    };
                    out.push(Item::Exiting(Exiting {
                        usec,
                        pid: e.pid,
                        comm: e.comm.to_owned(),
                        line: text.to_owned(),
                        reason: e.reason.map(str::to_owned),
                        header,
                    }));
                }
                None => self.unparsed(text),
            }
            return true;
        }
        if text.starts_with("Out of memory and no killable processes") {
            // mm/oom_kill.c `out_of_memory`: a header with no victim.
            self.stats.no_killable += 1;
            self.close_stale();
            self.group = None;
            self.last_kill = None;
            return true;
        }
        if text.starts_with("Tasks in ") {
            // mm/memcontrol.c `mem_cgroup_print_oom_group`.
            match lines::group(text) {
                Some(path) => self.start_group(path),
                None if text.contains("memory.oom.group") => self.unparsed(text),
                None => return false,
            }
            return true;
        }
        lines::sharing(text)
    }

    /// Header lines that are not in the fast path, in `dump_header` order.
    fn header_rule(&mut self, text: &str) -> bool {
        let Some(b) = self.building.as_mut() else { return false };
        let h = &mut b.header;
        let mut parsed = true;
        if text.starts_with("CPU: ") || text.starts_with("Pid: ") {
            // lib/dump_stack.c `dump_stack_print_info`: the trigger's line;
            // another task's stack dump in the middle is not ours.
            if h.trigger_pid.is_some() || !matches!(b.section, Section::Trigger | Section::Stack) {
                return false;
            }
            let Some(cpu) = lines::cpu(text) else { return false };
            h.cpu = cpu.cpu;
            h.trigger_uid = cpu.uid;
            h.trigger_pid = cpu.pid;
            if h.trigger_comm.is_none() {
                h.trigger_comm = cpu.comm.map(str::to_owned);
            }
            parsed = cpu.pid.is_some();
            b.section = Section::Stack;
        } else if let Some((counter, rest)) = lines::counter(text) {
            // mm/memcontrol.c `mem_cgroup_print_oom_meminfo`.
            let usage = lines::usage(rest);
            parsed = usage.is_some();
            let slot = match counter {
                lines::Counter::Memory => &mut h.memory,
                lines::Counter::Swap => &mut h.swap,
                lines::Counter::MemSw => &mut h.memsw,
                lines::Counter::Kmem => &mut h.kmem,
            };
            *slot = usage.or(*slot);
            b.section = Section::Memcg;
        } else if text.starts_with(lines::STATS_FOR) {
            // mm/memcontrol.c `mem_cgroup_print_oom_meminfo` (5.3+: then one
            // `key value` line each) or `mem_cgroup_print_oom_info` (one line).
            match lines::stats_for(text) {
                Some((path, pairs)) if h.stats_cgroup.is_none() => {
                    h.stats_cgroup = Some(path.to_owned());
                    b.section = if pairs.is_empty() { Section::MemcgStats } else { Section::Memcg };
                    h.memory_stat.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
                }
                Some((_, pairs)) => {
                    b.section = if pairs.is_empty() { Section::OtherStats } else { Section::Memcg };
                }
                None => parsed = false,
            }
        } else if let Some(protection) = lines::protection(text) {
            // mm/memcontrol.c `mem_cgroup_print_oom_meminfo`, 6.19+.
            parsed = protection.is_some();
            if let Some((min, low)) = protection {
                h.min_protection_kb = Some(min);
                h.low_protection_kb = Some(low);
            }
        } else if text.starts_with("Tasks state (memory values in pages)") {
            // mm/oom_kill.c `dump_tasks`, 4.19+.
            b.section = Section::Tasks;
        } else if text.starts_with('[') && text.contains("pid") {
            // mm/oom_kill.c `dump_tasks`: the column line (the only one before
            // 4.19).
            let Some(columns) = lines::task_columns(text) else { return false };
            h.task_columns = columns;
            b.section = Section::Tasks;
        } else if text.starts_with("oom-kill:") {
            // mm/oom_kill.c `dump_oom_summary`.
            match lines::summary(text) {
                Some(s) => {
                    h.constraint = s.constraint.map(str::to_owned);
                    h.nodemask = s.nodemask.map(str::to_owned).or(h.nodemask.take());
                    h.cpuset = s.cpuset.map(str::to_owned).or(h.cpuset.take());
                    h.mems_allowed = s.mems_allowed.map(str::to_owned).or(h.mems_allowed.take());
                    h.oom_cgroup = s.oom_memcg.map(str::to_owned);
                    h.global_oom = s.global_oom;
                    h.task_cgroup = s.task_memcg.map(str::to_owned);
                    h.chosen_comm = s.task.map(str::to_owned);
                    h.chosen_pid = s.pid;
                    h.chosen_uid = s.uid;
                    parsed = s.constraint.is_some() && s.pid.is_some();
                }
                None => parsed = false,
            }
            b.section = Section::Summary;
        } else if let Some((task, limit)) = lines::task_in(text) {
            // mm/memcontrol.c `mem_cgroup_print_oom_info`, up to 4.18.
            h.task_cgroup = Some(task.to_owned());
            h.oom_cgroup = Some(limit.to_owned());
            b.section = Section::Memcg;
        } else if text.starts_with("Memory limit reached of cgroup ") {
            // The same function when there is no victim (3.x).
            b.section = Section::Memcg;
        } else if text.starts_with("Mem-Info:") {
            // mm/show_mem.c `__show_mem` (lib/show_mem.c before 6.6).
            b.section = Section::MemInfo;
        } else if b.section == Section::Trigger && text.contains(" cpuset=") {
            // kernel/cgroup/cpuset.c `cpuset_print_current_mems_allowed`,
            // its own line before 5.0.
            let Some((cpuset, mems)) = lines::cpuset_line(text) else { return false };
            h.cpuset = Some(cpuset.to_owned());
            h.mems_allowed = Some(mems.to_owned());
        } else if text.starts_with("COMPACTION is disabled!!!") {
            // mm/oom_kill.c `dump_header`.
        } else if matches!(b.section, Section::Trigger | Section::Stack) && lines::stack_line(text) {
            // lib/dump_stack.c, arch `show_regs`: kept raw.
            b.section = Section::Stack;
        } else if b.section == Section::MemInfo && lines::meminfo_line(text) {
            // mm/show_mem.c `__show_mem`, `show_free_areas`: kept raw.
        } else {
            return false;
        }
        if !parsed {
            self.stats.unparsed_lines += 1;
        }
        keep(b, &mut self.stats, text);
        true
    }

    fn start_header(&mut self, usec: Option<u64>, truncated: bool) {
        self.close_stale();
        self.forget_selection();
        self.group = None;
        self.last_kill = None;
        self.stats.headers += 1;
        if truncated {
            self.stats.truncated_headers += 1;
        }
        let header = Header { usec, truncated, ..Header::default() };
        self.building = Some(Building { header, ..Building::default() });
    }

    fn close_stale(&mut self) {
        if self.building.take().is_some() {
            self.stats.stale_headers += 1;
        }
    }

    fn forget_selection(&mut self) {
        if self.selection.take().is_some() {
            self.stats.unmatched_selections += 1;
        }
    }

    /// A line that belongs to a report but did not parse: kept in the open
    /// header if there is one.
    fn unparsed(&mut self, text: &str) {
        self.stats.unparsed_lines += 1;
        if let Some(b) = self.building.as_mut() {
            keep(b, &mut self.stats, text);
        }
    }

    fn kill(&mut self, usec: Option<u64>, text: &str, k: lines::Killed<'_>) -> KernelKill {
        self.stats.kills += 1;
        if k.bad_figure {
            self.stats.unparsed_lines += 1;
        }
        let mut kill = KernelKill {
            usec,
            reason: k.reason.map(str::to_owned),
            pid: k.pid,
            comm: k.comm.to_owned(),
            figures: k.figures,
            ..KernelKill::default()
        };
        let selection = self.selection.take();
        let selected_pid = selection.as_ref().map(|s| s.pid);
        if let Some(s) = selection {
            kill.lines.push(s.line);
            if kill.reason.is_none() {
                kill.reason = s.reason;
            }
            // The kernel may sacrifice a child instead of the selected task:
            // the score is the selected task's.
            if s.pid == kill.pid {
                kill.score = s.score;
            }
        }
        kill.lines.push(text.to_owned());

        if let Some(b) = self.building.take() {
            let ours = b.header.chosen_pid.is_none_or(|c| c == kill.pid || Some(c) == selected_pid);
            if ours {
                let header = Arc::new(b.header);
                kill.header = Some(Arc::clone(&header));
                self.last_kill =
                    Some(LastKill { header: Some(header), reason: kill.reason.clone(), pid: kill.pid, usec });
                return kill;
            }
            self.stats.stale_headers += 1;
        }
        if let Some(group) = self.group.as_mut() {
            let membership = group.admits(kill.reason.as_deref(), kill.pid);
            if membership != Membership::Not {
                self.stats.group_members += 1;
                kill.group_member = true;
                if membership == Membership::Repeat {
                    kill.repeat_of_chosen = true;
                    kill.chosen_usec = group.chosen_usec;
                }
                kill.group_cgroup = Some(group.cgroup.clone());
                kill.header = group.header.clone();
                if kill.header.is_none() {
                    self.stats.kills_without_header += 1;
                }
                return kill;
            }
        }
        self.group = None;
        self.stats.kills_without_header += 1;
        self.last_kill = Some(LastKill { header: None, reason: kill.reason.clone(), pid: kill.pid, usec });
        kill
    }

    fn start_group(&mut self, path: &str) {
        // The group line follows the chosen victim's kill line; if that was
        // lost, an open header is the best guess at whose group it is.
        let (header, reason, chosen_pid, chosen_usec) = match (self.building.take(), self.last_kill.take()) {
            (Some(b), _) => {
                let pid = b.header.chosen_pid;
                (Some(Arc::new(b.header)), None, pid, None)
            }
            (None, Some(last)) => (last.header, last.reason, Some(last.pid), last.usec),
            (None, None) => (None, None, None, None),
        };
        let table = header.as_ref().filter(|h| !h.tasks.is_empty()).map(|h| h.task_pids().collect());
        self.group = Some(Group {
            cgroup: path.to_owned(),
            header,
            reason,
            chosen_pid,
            chosen_usec,
            chosen_repeated: false,
            seen: chosen_pid.into_iter().collect(),
            table,
        });
    }
}

/// Lines that only an OOM header prints: seen without a header open, the
/// report's start was lost. (`Mem-Info:` is not one: sysrq-m and allocation
/// failure warnings print it too.)
fn opens_truncated_header(text: &str) -> bool {
    lines::counter(text).is_some()
        || text.starts_with(lines::STATS_FOR)
        || text.starts_with("Memory cgroup min protection ")
        || text.starts_with("Tasks state (memory values in pages)")
        || text.starts_with("oom-kill:constraint=")
        || (text.starts_with('[') && lines::task_columns(text).is_some())
        || lines::task_in(text).is_some()
}

/// `[<digits>]` at the start: a `dump_task` row, well formed or not.
fn is_task_row(text: &str) -> bool {
    text.strip_prefix('[').and_then(|r| r.split_once(']')).is_some_and(|(pid, _)| {
        pid.trim_start().bytes().all(|b| b.is_ascii_digit()) && !pid.trim().is_empty()
    })
}

fn keep(b: &mut Building, stats: &mut ParserStats, text: &str) {
    if b.header.lines.len() < MAX_HEADER_LINES {
        b.header.lines.push(text.to_owned());
    } else {
        stats.dropped_lines += 1;
    }
}
