//! `oomrecorder import`: kernel logs people paste, in whatever form they
//! have them, turned into records.
//!
//! Each line is reduced to the kernel's own text by [`strip`], which finds
//! it after whatever prefix the line carries: `/dev/kmsg` records, raw
//! `dmesg` (`[ 123.456789] `), `dmesg -T` (`[Sun Sep  8 05:04:45 2024] `, in
//! any locale), syslog and `journalctl -k` (`Sep 08 05:04:45 host kernel: `,
//! `-o short-iso`, `-o short-precise`, `-o short-monotonic`), `grep -n`
//! output, or the bare text. The text then goes through the same report
//! parser as the live kernel log.
//!
//! The input is not trusted ([`read_kills`]): it is read line by line, each
//! line at most [`MAX_LINE`] bytes (the kernel's own record limit; a longer
//! one cannot be the kernel's and is passed over, counted); an input with
//! [`MAX_WITHOUT_NEWLINE`] bytes and no line break is no log at all and is
//! refused; `/dev/kmsg` records of another facility than the kernel's
//! (written by programs into /dev/kmsg) are passed over; and a figure its
//! kernel cannot have printed is stored as unknown, with a note saying why
//! ([`check_possible`]).

use std::{
    collections::{HashMap, HashSet},
    io::{self, BufRead},
};

use jiff::{civil::DateTime, tz::TimeZone, Timestamp};

use crate::{
    clock,
    model::{from_report, Kill, Source, JOIN_WINDOW_NS},
    report::{Item, Line, Parser},
    sources::kmsg::{Kmsg, Read1},
};

/// When a line says it was logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// µs since boot (`dmesg`, `/dev/kmsg`, `journalctl -o short-monotonic`).
    SinceBoot(u64),
    /// Wall-clock text as printed (`dmesg -T`, syslog); parsed when possible.
    Wall(String),
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripped<'a> {
    pub stamp: Stamp,
    pub text: &'a str,
    /// A `/dev/kmsg` record of another facility than the kernel's (0): a
    /// program's own line written into /dev/kmsg, never an OOM report.
    pub foreign: bool,
}

/// The longest line read, in bytes: CONSOLE_EXT_LOG_MAX (8 KiB), the most
/// the kernel writes for one `/dev/kmsg` record, header and `\xNN` escapes
/// included (include/linux/printk.h, later kernel/printk/internal.h; newer
/// kernels format at most PRINTK_MESSAGE_MAX, 2 KiB). A record's text is at
/// most 1024 bytes (CONSOLE_LOG_MAX, now PRINTKRB_RECORD_MAX), so a dmesg,
/// syslog or journal line with its prefix fits too. A longer line is not
/// the kernel's: it is passed over and counted.
pub const MAX_LINE: usize = 8 * 1024;

/// This many bytes without a line break is not a log (`/dev/zero` through a
/// pipe, a binary file): the import stops with an error, having held at
/// most [`MAX_LINE`] of it in memory.
pub const MAX_WITHOUT_NEWLINE: u64 = 64 << 20;

/// The kernel's limits on what a kill line can say: a figure beyond them
/// was not printed by a kernel and is not stored.
/// include/uapi/linux/oom.h `OOM_SCORE_ADJ_MIN` / `OOM_SCORE_ADJ_MAX`.
pub const OOM_SCORE_ADJ: std::ops::RangeInclusive<i32> = -1000..=1000;
/// include/linux/sched.h `TASK_COMM_LEN` (16, with its NUL).
pub const COMM_MAX: usize = 15;
/// include/linux/threads.h `PID_MAX_LIMIT` on 64-bit kernels (4M).
pub const PID_MAX: i32 = 4 * 1024 * 1024;
/// The most memory any Linux machine can address, in kB: 2^56 bytes
/// (MAX_PHYSMEM_BITS, 56 on riscv64, 52 on x86-64 with 5-level paging and
/// arm64; user address spaces are no larger), so no RSS, page-table or
/// virtual-memory figure of one task can exceed it.
pub const MAX_MEMORY_KB: u64 = 1 << 46;

/// `[ 123.456789]` → µs. The kernel prints `[%5lu.%06lu]` (printk.c
/// `print_time`); some tools print fewer decimals.
fn since_boot(bracket: &str) -> Option<u64> {
    let (secs, frac) = bracket.trim().split_once('.')?;
    if secs.is_empty() || frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !secs.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: u64 = format!("{frac:0<6}")[..6].parse().ok()?;
    secs.parse::<u64>().ok()?.checked_mul(1_000_000)?.checked_add(micros)
}

/// A `/dev/kmsg` record header `prio,seq,usec,flags[,…];` at the start.
fn kmsg_record(line: &str) -> Option<Stripped<'_>> {
    let (header, text) = line.split_once(';')?;
    let mut fields = header.split(',');
    fn numeric(field: Option<&str>) -> Option<&str> {
        field.filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    }
    // `prio` is facility << 3 | level (Documentation/ABI/testing/dev-kmsg).
    let prio: u64 = numeric(fields.next())?.parse().ok()?;
    numeric(fields.next())?;
    let usec = numeric(fields.next())?.parse().ok()?;
    fields.next()?;
    Some(Stripped { stamp: Stamp::SinceBoot(usec), text, foreign: prio >> 3 != 0 })
}

/// The first `[…] ` in the line's first 120 bytes, as (contents, rest).
fn bracket(line: &str) -> Option<(&str, &str)> {
    // 120 bytes, cut back to a character boundary (found by the property
    // test below: a multi-byte character across byte 120 panicked).
    let mut end = line.len().min(120);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let head = &line[..end];
    let open = head.find('[')?;
    let close = open + line[open..].find(']')?;
    let rest = &line[close + 1..];
    Some((&line[open + 1..close], rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Finds the kernel's text in one line of any supported format.
pub fn strip(line: &str) -> Stripped<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(record) = kmsg_record(line) {
        return record;
    }
    // syslog / journalctl: `<stamp> <host> kernel: <text>`; the text itself
    // may start with the kernel's `[ 123.456789] ` when printk.time is on.
    if let Some(at) = line.find(" kernel: ") {
        let prefix = &line[..at];
        let text = &line[at + " kernel: ".len()..];
        if let Some((inner, rest)) =
            bracket(text).filter(|(b, _)| text.starts_with('[') && since_boot(b).is_some())
        {
            return Stripped {
                stamp: Stamp::SinceBoot(since_boot(inner).unwrap_or(0)),
                text: rest,
                foreign: false,
            };
        }
        // short-monotonic puts `[ 123.456789] host` before `kernel:`.
        if let Some(usec) = bracket(prefix).and_then(|(b, _)| since_boot(b)) {
            return Stripped { stamp: Stamp::SinceBoot(usec), text, foreign: false };
        }
        let stamp = prefix.rsplit_once(' ').map_or(prefix, |(stamp, _host)| stamp).trim();
        return Stripped { stamp: Stamp::Wall(stamp.to_owned()), text, foreign: false };
    }
    if let Some((inner, rest)) = bracket(line) {
        if let Some(usec) = since_boot(inner) {
            return Stripped { stamp: Stamp::SinceBoot(usec), text: rest, foreign: false };
        }
        // `dmesg -T`: a wall-clock stamp in brackets, in the dumping
        // machine's locale; only a bracket at the very start counts.
        if line.starts_with('[') {
            return Stripped { stamp: Stamp::Wall(inner.trim().to_owned()), text: rest, foreign: false };
        }
    }
    Stripped { stamp: Stamp::None, text: line, foreign: false }
}

/// Wall-clock text in the forms that carry a year: RFC 3339 / short-iso
/// (`2024-09-08T05:04:45+0000`, `…+00:00`), and C-locale `dmesg -T`
/// (`Sun Sep  8 05:04:45 2024`, read in this machine's time zone). Syslog
/// stamps have no year and other locales no fixed form: `None`.
pub fn parse_wall(text: &str) -> Option<i64> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts.as_nanosecond() as i64);
    }
    if let Ok(ts) = Timestamp::strptime("%Y-%m-%dT%H:%M:%S%z", text) {
        return Some(ts.as_nanosecond() as i64);
    }
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let civil = DateTime::strptime("%a %b %d %H:%M:%S %Y", &squeezed).ok()?;
    TimeZone::system().to_timestamp(civil).ok().map(|ts| ts.as_nanosecond() as i64)
}

/// FNV-1a, 64 bits: a stable identity for an imported kill (std's hashers
/// may change between Rust releases; fingerprints are stored for good).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Without stamps, a repeated line of the same pid this few kills later is
/// the same victim.
const REPEAT_WITHIN_KILLS: usize = 64;

/// Kills [`read_kills_into`] holds back before handing them on: a memory.oom.group
/// kill's chosen victim is printed again as a member (its repeat names the
/// group, which its own record then gets) within one OOM kill, which takes
/// far less than the join window even for 5,000 tasks; this bounds the
/// memory whatever the stamps say.
const MAX_HELD: usize = 16_384;

/// What one import found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub lines: u64,
    pub kills: Vec<Kill>,
    /// Lines longer than [`MAX_LINE`], passed over.
    pub long_lines: u64,
    /// `/dev/kmsg` records of another facility, passed over.
    pub foreign_records: u64,
    /// Kill lines naming a pid no kernel gives, passed over.
    pub impossible_kills: u64,
    /// Figures not stored because the kernel cannot have printed them
    /// (each record says which, in its notes).
    pub figures_refused: u64,
}

impl Found {
    /// Adds another input's findings.
    pub fn add(&mut self, other: Found) {
        self.lines += other.lines;
        self.kills.extend(other.kills);
        self.long_lines += other.long_lines;
        self.foreign_records += other.foreign_records;
        self.impossible_kills += other.impossible_kills;
        self.figures_refused += other.figures_refused;
    }
}

/// Makes `kill` hold only what a kernel can have printed: a figure beyond
/// the kernel's limits becomes unknown (`None`) and a comm longer than a
/// task's is cut, each with a note in the record. Returns how many figures
/// were refused.
pub fn check_possible(kill: &mut Kill) -> u64 {
    let mut refused = 0;
    let mut notes = Vec::new();
    let f = &mut kill.victim.figures;
    for (name, figure) in [
        ("total-vm", &mut f.total_vm_kb),
        ("anon-rss", &mut f.anon_rss_kb),
        ("file-rss", &mut f.file_rss_kb),
        ("shmem-rss", &mut f.shmem_rss_kb),
        ("pgtables", &mut f.pgtables_kb),
    ] {
        if let Some(kb) = figure.filter(|kb| *kb > MAX_MEMORY_KB) {
            notes.push(format!(
                "{name}:{kb}kB is more than any Linux machine can address ({} kB): not stored",
                MAX_MEMORY_KB
            ));
            *figure = None;
            refused += 1;
        }
    }
    if let Some(adj) = f.oom_score_adj.filter(|adj| !OOM_SCORE_ADJ.contains(adj)) {
        notes.push(format!("oom_score_adj:{adj} is outside the kernel's -1000..1000: not stored"));
        f.oom_score_adj = None;
        refused += 1;
    }
    for (name, comm) in [("comm", &mut kill.victim.comm), ("trigger comm", &mut kill.trigger.comm)] {
        if let Some(text) = comm.as_mut().filter(|c| c.len() > COMM_MAX) {
            let len = text.len();
            let mut end = COMM_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            notes.push(format!(
                "the {name} was {len} bytes; a task's is at most {COMM_MAX} (TASK_COMM_LEN - 1): cut"
            ));
            refused += 1;
        }
    }
    kill.notes.extend(notes);
    refused
}

/// Reads one line of at most [`MAX_LINE`] bytes into `line`, without its
/// newline. `Ok(None)` at the end; `Ok(Some(n))` with the `n` bytes of a
/// longer line that were passed over; an error after
/// [`MAX_WITHOUT_NEWLINE`] bytes without a line break.
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<u64>> {
    line.clear();
    let (mut over, mut any) = (0u64, false);
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(over));
        }
        any = true;
        let newline = available.iter().position(|b| *b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = MAX_LINE.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        over += (chunk.len() - room) as u64;
        let used = newline.map_or(available.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(over));
        }
        if over + line.len() as u64 > MAX_WITHOUT_NEWLINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} MiB without a line break: this is not a text log (a device, or a binary file?)",
                    MAX_WITHOUT_NEWLINE >> 20
                ),
            ));
        }
    }
}

/// Reads a kernel log and returns each kill it reports as a record with
/// `sources: ["import"]`. Lines of other programs, broken lines and binary
/// garbage are passed over (the parser keeps what it cannot read raw); see
/// the module documentation for the bounds.
pub fn read_kills(input: impl BufRead) -> io::Result<Found> {
    let mut kills = Vec::new();
    let mut found = read_kills_into(input, &mut |kill| {
        kills.push(kill);
        Ok(())
    })?;
    found.kills = kills;
    Ok(found)
}

/// As [`read_kills`], handing each kill to `sink` in the log's order as
/// soon as no later line can change it, instead of collecting them: a log
/// of 200,000 kills costs at most [`MAX_HELD`] kills' memory. The returned
/// [`Found`] has the counts and no kills.
pub fn read_kills_into(
    input: impl BufRead,
    sink: &mut dyn FnMut(Kill) -> io::Result<()>,
) -> io::Result<Found> {
    let mut parser = Parser::new();
    let mut found = Found::default();
    let mut last_stamp = Stamp::None;
    let recorded_ns = clock::wall_ns_now();
    // pid → (stamp, index) of its last kill: a memory.oom.group kill prints
    // the chosen victim's line twice (once chosen, once as a member; seen on
    // Debian 6.1 and 6.12), and one victim is one record.
    let mut recent: HashMap<i32, (Option<u64>, usize)> = HashMap::new();
    // The kills not yet handed on; `released` were before them.
    let mut held: std::collections::VecDeque<Kill> = std::collections::VecDeque::new();
    let mut released = 0usize;
    let mut release = |held: &mut std::collections::VecDeque<Kill>, released: &mut usize, all: bool| {
        let newest = held.back().and_then(|k| k.kmsg_usec);
        while let Some(front) = held.front() {
            let settled = match (front.kmsg_usec, newest) {
                (Some(a), Some(b)) => b.saturating_sub(a) * 1_000 > JOIN_WINDOW_NS,
                _ => false,
            };
            let keep = !all && held.len() <= MAX_HELD && (held.len() <= REPEAT_WITHIN_KILLS || !settled);
            if keep {
                break;
            }
            let Some(kill) = held.pop_front() else { break };
            *released += 1;
            sink(kill)?;
        }
        Ok::<_, io::Error>(())
    };
    let mut take = |items: Vec<Item>,
                    stamp: &Stamp,
                    found: &mut Found,
                    held: &mut std::collections::VecDeque<Kill>,
                    released: usize| {
        for item in items {
            let Item::Kill(kk) = item else { continue };
            let index = released + held.len();
            let repeated = recent.get(&kk.pid).is_some_and(|(usec, at)| match (usec, kk.usec) {
                (Some(a), Some(b)) => a.abs_diff(b) * 1_000 <= JOIN_WINDOW_NS,
                _ => index - at <= REPEAT_WITHIN_KILLS,
            });
            let earlier = recent.insert(kk.pid, (kk.usec, index));
            if kk.repeat_of_chosen || (repeated && kk.group_member) {
                // The chosen victim's first line came before the group's
                // "Tasks in … are going to be killed": its repeat says it
                // was part of the group kill (as the daemon's join fills it).
                if let Some((usec, at)) = earlier {
                    let chosen = at.checked_sub(released).and_then(|i| held.get_mut(i));
                    if let Some(kill) = chosen.filter(|k| k.oom.group_cgroup.is_none()) {
                        kill.oom.group_cgroup.clone_from(&kk.group_cgroup);
                    }
                    // The repeat made no record: the pid's last is still that one.
                    recent.insert(kk.pid, (usec, at));
                }
                continue;
            }
            let stamp_text = match stamp {
                Stamp::SinceBoot(usec) => usec.to_string(),
                Stamp::Wall(text) => text.clone(),
                Stamp::None => String::new(),
            };
            let time_ns = match stamp {
                Stamp::Wall(text) => parse_wall(text),
                _ => None,
            };
            if kk.pid <= 0 || kk.pid > PID_MAX {
                found.impossible_kills += 1;
                continue;
            }
            let mut kill = from_report::from_kernel(&kk, Source::Import, None, time_ns, recorded_ns);
            let kill_line = kk.lines.last().map(String::as_str).unwrap_or_default();
            kill.fingerprint = Some(format!("{:016x}", fnv1a(&[&stamp_text, kill_line])));
            found.figures_refused += check_possible(&mut kill);
            held.push_back(kill);
        }
    };
    let mut buffer = Vec::with_capacity(MAX_LINE);
    let mut input = input;
    while let Some(over) = next_line(&mut input, &mut buffer)? {
        found.lines += 1;
        if over > 0 {
            found.long_lines += 1;
            continue;
        }
        let line = String::from_utf8_lossy(&buffer);
        let stripped = strip(&line);
        if stripped.foreign {
            found.foreign_records += 1;
            continue;
        }
        let usec = match stripped.stamp {
            Stamp::SinceBoot(usec) => Some(usec),
            _ => None,
        };
        let items = parser.push(Line { usec, text: stripped.text });
        if !items.is_empty() {
            take(items, &stripped.stamp, &mut found, &mut held, released);
            release(&mut held, &mut released, false)?;
        }
        last_stamp = stripped.stamp;
    }
    take(parser.finish(), &last_stamp, &mut found, &mut held, released);
    release(&mut held, &mut released, true)?;
    Ok(found)
}

/// Whether a line of the log has one of `stamps` (µs since boot): what
/// [`this_boots`] needs before a first pass can place anything, read
/// without parsing a report. A run is placed only when one of its kills
/// is witnessed, by its stamp (the kernel's log still holds its line, or
/// the daemon recorded it), and a kill's stamp is one of its lines': a
/// log with none of them has nothing to place, and its first pass (a
/// whole parse, a fifth of a large import) is not needed. Any line
/// counts, whatever its facility or length: a false yes only costs that
/// pass.
pub fn has_any_stamp(input: impl BufRead, stamps: &HashSet<u64>) -> io::Result<bool> {
    if stamps.is_empty() {
        return Ok(false);
    }
    let (mut buffer, mut input) = (Vec::with_capacity(MAX_LINE), input);
    while next_line(&mut input, &mut buffer)?.is_some() {
        if let Stamp::SinceBoot(usec) = strip(&String::from_utf8_lossy(&buffer)).stamp {
            if stamps.contains(&usec) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The `Killed process` lines the running kernel's log still holds, by
/// stamp (µs since boot) and text: what says that a raw `dmesg` someone
/// imports is this boot's. Reads `kmsg` (normally /dev/kmsg, non-blocking)
/// to its end.
pub fn kill_lines<R: std::io::Read>(kmsg: &mut Kmsg<R>) -> std::io::Result<HashSet<(u64, String)>> {
    let mut lines = HashSet::new();
    loop {
        match kmsg.read_one()? {
            Read1::Record(r) if r.is_kernel() => {
                lines.extend(
                    r.text.lines().filter(|l| l.contains("Killed process")).map(|l| (r.usec, l.to_owned())),
                );
            }
            Read1::Record(_) | Read1::Overrun | Read1::Malformed { .. } => {}
            Read1::Empty => return Ok(lines),
        }
    }
}

/// What names the running boot for [`place_on_boot`].
pub struct RunningBoot<'a> {
    pub boot_id: &'a str,
    /// CLOCK_MONOTONIC now, in µs: no stamp of this boot is later.
    pub now_usec: u64,
    /// Whether this boot logged the kill: its line is in the kernel's log
    /// ([`kill_lines`]), or the daemon recorded it with that stamp.
    pub witnessed: &'a dyn Fn(&Kill) -> bool,
    /// Wall-clock ns of a stamp of this boot's log clock.
    pub wall_ns: &'a dyn Fn(u64) -> i64,
}

/// Gives the kills of one imported log that the running boot logged its
/// boot id and their real time. A log stamped in µs since boot
/// (`dmesg`, /dev/kmsg dumps, `journalctl -o short-monotonic`) names no
/// boot; a run of its kills whose stamps only grow (one boot: a stamp
/// going back is a reboot), none later than now, is the running boot's
/// when one of its kills is witnessed. Returns how many were placed.
pub fn place_on_boot(kills: &mut [Kill], running: &RunningBoot<'_>) -> usize {
    let keys: Vec<BootKey> = kills.iter().map(|k| BootKey::of(k, (running.witnessed)(k))).collect();
    let mut placed = 0;
    for (kill, this_boot) in kills.iter_mut().zip(this_boots(&keys, running.now_usec)) {
        if this_boot {
            place(kill, running.boot_id, running.wall_ns);
            placed += 1;
        }
    }
    placed
}

/// What [`this_boots`] needs of a kill: a few bytes, so that a log can be
/// decided in a first pass and stored in a second without holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootKey {
    /// It names no boot and has a stamp since boot.
    pub unplaced: bool,
    pub usec: Option<u64>,
    pub witnessed: bool,
}

impl BootKey {
    pub fn of(kill: &Kill, witnessed: bool) -> BootKey {
        BootKey {
            unplaced: kill.boot_id.is_none() && kill.kmsg_usec.is_some(),
            usec: kill.kmsg_usec,
            witnessed,
        }
    }
}

/// Which of a log's kills (by their [`BootKey`]s, in the log's order) the
/// running boot logged: the rule of [`place_on_boot`].
pub fn this_boots(keys: &[BootKey], now_usec: u64) -> Vec<bool> {
    let mut placed = vec![false; keys.len()];
    let mut start = 0;
    while start < keys.len() {
        if !keys[start].unplaced {
            start += 1;
            continue;
        }
        // One boot's run: unplaced kills whose stamps do not go back.
        let mut end = start + 1;
        while end < keys.len() && keys[end].unplaced && keys[end].usec >= keys[end - 1].usec {
            end += 1;
        }
        let run = &keys[start..end];
        let this_boot =
            run.iter().all(|k| k.usec.is_some_and(|us| us <= now_usec)) && run.iter().any(|k| k.witnessed);
        if this_boot {
            placed[start..end].fill(true);
        }
        start = end;
    }
    placed
}

/// Gives `kill` the running boot's id, and its real time from its stamp.
pub fn place(kill: &mut Kill, boot_id: &str, wall_ns: &dyn Fn(u64) -> i64) {
    kill.boot_id = Some(boot_id.to_owned());
    if kill.time_ns.is_none() {
        kill.time_ns = kill.kmsg_usec.map(wall_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILL: &str = "Memory cgroup out of memory: Killed process 7558 (dd) total-vm:207776kB, anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:0";

    #[test]
    fn finds_the_kernel_text_after_any_prefix() {
        let cases = [
            (format!("3,1234,558908182,-;{KILL}"), Stamp::SinceBoot(558_908_182)),
            (format!("[  558.908182] {KILL}"), Stamp::SinceBoot(558_908_182)),
            (format!("[Sun Sep  8 05:04:45 2024] {KILL}"), Stamp::Wall("Sun Sep  8 05:04:45 2024".into())),
            (format!("[月  1月 26 01:49:41 2026] {KILL}"), Stamp::Wall("月  1月 26 01:49:41 2026".into())),
            (format!("Sep 08 05:04:45 web-1 kernel: {KILL}"), Stamp::Wall("Sep 08 05:04:45".into())),
            (format!("июл 24 01:20:00 узел kernel: {KILL}"), Stamp::Wall("июл 24 01:20:00".into())),
            (
                format!("2024-09-08T05:04:45+0000 web-1 kernel: {KILL}"),
                Stamp::Wall("2024-09-08T05:04:45+0000".into()),
            ),
            (
                format!("Sep 08 05:04:45.123456 web-1 kernel: {KILL}"),
                Stamp::Wall("Sep 08 05:04:45.123456".into()),
            ),
            (format!("[  558.908182] web-1 kernel: {KILL}"), Stamp::SinceBoot(558_908_182)),
            (format!("Sep 08 05:04:45 web-1 kernel: [  558.908182] {KILL}"), Stamp::SinceBoot(558_908_182)),
            (format!("kern.log:412:[  558.908182] {KILL}"), Stamp::SinceBoot(558_908_182)),
            (KILL.to_owned(), Stamp::None),
        ];
        for (line, stamp) in cases {
            let stripped = strip(&line);
            assert_eq!(stripped.text, KILL, "{line}");
            assert_eq!(stripped.stamp, stamp, "{line}");
        }
    }

    #[test]
    fn wall_stamps_with_a_year_are_parsed() {
        assert_eq!(parse_wall("2024-09-08T05:04:45+0000"), Some(1_725_771_885_000_000_000));
        assert_eq!(parse_wall("2024-09-08T05:04:45+00:00"), Some(1_725_771_885_000_000_000));
        assert!(parse_wall("Sun Sep  8 05:04:45 2024").is_some());
        assert_eq!(parse_wall("Sep 08 05:04:45"), None, "syslog has no year");
        assert_eq!(parse_wall("июл 24 01:20:00"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any line, however broken, yields some text and no panic; whatever
        /// prefix is found, the text is a suffix of the line.
        #[test]
        fn any_line_strips_to_a_suffix(line in "\\PC{0,160}") {
            let stripped = strip(&line);
            proptest::prop_assert!(line.trim_end_matches(['\r', '\n']).ends_with(stripped.text));
        }
    }

    /// A long log is handed on as it is read, never held whole: the first
    /// kill reaches the sink long before the input ends, and in order.
    #[test]
    fn kills_are_handed_on_while_the_log_is_read() {
        struct Counting<'a>(&'a [u8], std::rc::Rc<std::cell::Cell<usize>>);
        impl io::Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1.set(self.1.get() + n);
                Ok(n)
            }
        }
        // 2,000 kills a second apart: each is settled 10 s (the join
        // window) after it.
        let log: String = (0..2_000u64)
            .map(|i| format!("[{:6}.000000] {}\n", 10 + i, KILL.replace("7558", &(100 + i).to_string())))
            .collect();
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let input = io::BufReader::with_capacity(4096, Counting(log.as_bytes(), std::rc::Rc::clone(&read)));
        let mut first_at = None;
        let mut pids = Vec::new();
        let found = read_kills_into(input, &mut |kill| {
            first_at.get_or_insert(read.get());
            pids.push(kill.victim.pid);
            Ok(())
        })
        .unwrap();
        assert_eq!(pids, (100..2_100).collect::<Vec<i32>>());
        assert!(found.kills.is_empty(), "counted, not collected");
        let first_at = first_at.unwrap();
        assert!(first_at < log.len() / 4, "the first kill came after {first_at} of {} bytes", log.len());
    }

    /// The first pass is skipped only for a log that has none of the
    /// running boot's stamps, in any of the prefixes `strip` reads.
    #[test]
    fn a_log_has_a_stamp_only_when_one_of_its_lines_has_it() {
        let log = format!("[  558.908182] {KILL}\n3,1234,600000001,-;{KILL}\nno stamp here\n");
        let has = |stamps: &[u64]| has_any_stamp(log.as_bytes(), &stamps.iter().copied().collect()).unwrap();
        assert!(has(&[558_908_182]));
        assert!(has(&[1, 600_000_001]));
        assert!(!has(&[558_908_183, 600_000_000]));
        assert!(!has(&[]));
    }

    /// An imported kubepods kill names its pod and container from the
    /// cgroup path the report's `oom-kill:` line gives (kubelet's systemd
    /// driver: `kubepods-<qos>-pod<uid with _>.slice/cri-containerd-<id>.scope`).
    #[test]
    fn an_imported_kubepods_kill_names_its_pod_and_container() {
        let cid = "4227c17161ed".repeat(5) + "abcd";
        let cg = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5d3fb63d_0000_4000_8000_000000000001.slice/cri-containerd-{cid}.scope"
        );
        let log = format!(
            "[  1.000000] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg={cg},task_memcg={cg},task=app,pid=10,uid=0\n\
             [  1.000040] Memory cgroup out of memory: Killed process 10 (app) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0\n"
        );
        let kills = read_kills(log.as_bytes()).unwrap().kills;
        let c = kills[0].container.as_ref().expect("an identity from the path");
        assert_eq!(c.id.as_deref(), Some(cid.as_str()));
        assert_eq!(c.pod_uid.as_deref(), Some("5d3fb63d-0000-4000-8000-000000000001"));
        assert_eq!(c.qos.as_deref(), Some("burstable"));
        // A kill outside any container names none.
        let plain = KILL.replace("7558", "11");
        assert_eq!(
            read_kills(format!("[  2.000000] {plain}\n").as_bytes()).unwrap().kills[0].container,
            None
        );
    }

    #[test]
    fn a_multibyte_character_across_byte_120_does_not_panic() {
        let line = format!("{}й] Killed process 1 (x)", "a".repeat(119));
        assert_eq!(strip(&line).text, line);
    }

    /// A raw `dmesg` of two boots, the second the running one: only the
    /// run this boot witnessed gets its boot id and times.
    #[test]
    fn a_dmesg_of_the_running_boot_gets_its_boot_and_times() {
        let line = |usec: u64, pid: u32| {
            format!("[{:5}.{:06}] Memory cgroup out of memory: Killed process {pid} (dd) total-vm:207776kB, anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:0\n", usec / 1_000_000, usec % 1_000_000)
        };
        // An earlier boot's kills, then (the stamps start again) this boot's.
        let log =
            [line(900_000_000, 10), line(950_000_000, 11), line(5_000_000, 12), line(6_000_000, 13)].concat();
        let mut kills = read_kills(log.as_bytes()).unwrap().kills;
        assert_eq!(kills.len(), 4);
        let witnessed = |k: &Kill| k.victim.pid == 13;
        let wall_ns = |usec: u64| 1_000_000_000_000_000_000 + usec as i64 * 1_000;
        let running =
            RunningBoot { boot_id: "cur", now_usec: 7_000_000, witnessed: &witnessed, wall_ns: &wall_ns };
        assert_eq!(place_on_boot(&mut kills, &running), 2);
        let boots: Vec<Option<&str>> = kills.iter().map(|k| k.boot_id.as_deref()).collect();
        assert_eq!(boots, [None, None, Some("cur"), Some("cur")]);
        assert_eq!(kills[2].time_ns, Some(1_000_000_005_000_000_000));
        assert_eq!(kills[0].time_ns, None, "another boot's stamps say no time");
        // Unwitnessed, or stamped later than this boot has run: not placed.
        let mut again = read_kills(log.as_bytes()).unwrap().kills;
        let nobody = |_: &Kill| false;
        assert_eq!(place_on_boot(&mut again, &RunningBoot { witnessed: &nobody, ..running }), 0);
        let young =
            RunningBoot { now_usec: 5_500_000, witnessed: &witnessed, wall_ns: &wall_ns, boot_id: "cur" };
        assert_eq!(place_on_boot(&mut again, &young), 0, "pid 13's stamp is after now");
    }

    #[test]
    fn the_running_logs_kill_lines_are_read_to_its_end() {
        let records: Vec<Vec<u8>> = vec![
            b"6,1,100,-;Linux version 6.18".to_vec(),
            b"3,2,558908182,-;Memory cgroup out of memory: Killed process 7558 (dd) total-vm:1kB".to_vec(),
            b"12,3,558908200,-;user space says Killed process 1".to_vec(),
        ];
        struct Records(std::collections::VecDeque<Vec<u8>>);
        impl std::io::Read for Records {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some(r) = self.0.pop_front() else { return Err(std::io::ErrorKind::WouldBlock.into()) };
                buf[..r.len()].copy_from_slice(&r);
                Ok(r.len())
            }
        }
        let mut kmsg = Kmsg::from_source(Records(records.into()));
        let lines = kill_lines(&mut kmsg).unwrap();
        let want =
            (558_908_182, "Memory cgroup out of memory: Killed process 7558 (dd) total-vm:1kB".to_owned());
        assert_eq!(lines, HashSet::from([want]), "the kernel's line, not user space's");
    }

    fn killed(pid: &str, comm: &str, anon: &str, adj: &str) -> String {
        format!(
            "[  558.908182] Memory cgroup out of memory: Killed process {pid} ({comm}) total-vm:207776kB, \
             anon-rss:{anon}kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:{adj}\n"
        )
    }

    fn found(input: impl io::Read) -> io::Result<Found> {
        read_kills(io::BufReader::new(input))
    }
    use std::io::Read as _;

    #[test]
    fn a_line_longer_than_the_kernels_is_passed_over_and_the_next_one_read() {
        // The 50 MB line, streamed: never held in memory.
        let long = io::Cursor::new("[  1.000000] Out of memory: Killed process 1 (")
            .chain(io::repeat(b'a').take(50 << 20))
            .chain(io::Cursor::new(") total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB\n"))
            .chain(io::Cursor::new(killed("7558", "dd", "65280", "0")));
        let all = found(long).unwrap();
        assert_eq!((all.lines, all.long_lines), (2, 1));
        assert_eq!(all.kills.len(), 1);
        assert_eq!(all.kills[0].victim.comm.as_deref(), Some("dd"));
    }

    #[test]
    fn an_input_without_line_breaks_is_refused_within_its_bound() {
        // `cat /dev/zero | oomrecorder import -`
        let err = found(io::repeat(0)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("without a line break"), "{err}");
    }

    #[test]
    fn kmsg_records_of_other_facilities_are_not_the_kernels() {
        let line = killed("4242", "oomrecorder", "1", "0");
        let text = line.split_once("] ").unwrap().1;
        // prio 14 = facility user (1) << 3 | info: `echo ... > /dev/kmsg`.
        let input = format!("14,900,558908182,-;{text}6,901,558908183,-;{text}");
        let all = found(input.as_bytes()).unwrap();
        assert_eq!(all.foreign_records, 1);
        assert_eq!(all.kills.len(), 1, "the kernel's own (facility 0) is kept");
        assert!(strip(&format!("14,1,2,-;{text}")).foreign);
        assert!(!strip(&format!("3,1,2,-;{text}")).foreign);
    }

    #[test]
    fn figures_no_kernel_prints_are_unknown_with_a_note() {
        let input = killed("7558", &"x".repeat(40), "9223372036854775807", "-99999");
        let all = found(input.as_bytes()).unwrap();
        let kill = &all.kills[0];
        assert_eq!(kill.victim.figures.anon_rss_kb, None);
        assert_eq!(kill.victim.figures.oom_score_adj, None);
        assert_eq!(kill.victim.figures.total_vm_kb, Some(207_776), "possible figures stay");
        assert_eq!(kill.victim.comm.as_deref(), Some("xxxxxxxxxxxxxxx"));
        assert_eq!(all.figures_refused, 3);
        assert_eq!(kill.notes.len(), 3, "{:?}", kill.notes);
        assert!(kill.notes.iter().any(|n| n.contains("anon-rss:9223372036854775807kB")), "{:?}", kill.notes);
        assert!(kill.notes.iter().any(|n| n.contains("oom_score_adj:-99999")), "{:?}", kill.notes);
        let beyond = found(killed("99999999", "dd", "1", "0").as_bytes()).unwrap();
        assert_eq!((beyond.kills.len(), beyond.impossible_kills), (0, 1), "no kernel gives pid 99999999");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Lines of any length: those within the bound come back whole, in
        /// order; each longer one is passed over and counted; none is cut.
        #[test]
        fn lines_are_read_whole_or_passed_over(lengths in proptest::collection::vec(0usize..20_000, 0..12)) {
            let input: Vec<u8> = lengths
                .iter()
                .enumerate()
                .flat_map(|(i, n)| std::iter::repeat_n(b'a' + (i % 26) as u8, *n).chain([b'\n']))
                .collect();
            let mut reader = io::BufReader::with_capacity(1024, &input[..]);
            let mut line = Vec::new();
            let mut got = Vec::new();
            while let Some(over) = next_line(&mut reader, &mut line).unwrap() {
                got.push((line.len(), over));
            }
            let want: Vec<(usize, u64)> = lengths
                .iter()
                .map(|n| if *n > MAX_LINE { (MAX_LINE, (*n - MAX_LINE) as u64) } else { (*n, 0) })
                .collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// Whatever figures a kill line carries, what is stored is within
        /// the kernel's limits, and a figure within them is stored as printed.
        #[test]
        fn only_figures_a_kernel_can_print_are_stored(
            anon in proptest::prelude::any::<u64>(),
            adj in proptest::prelude::any::<i32>(),
            comm in "[a-z ]{1,40}",
        ) {
            let all = found(killed("7558", &comm, &anon.to_string(), &adj.to_string()).as_bytes()).unwrap();
            proptest::prop_assert_eq!(all.kills.len(), 1);
            let kill = &all.kills[0];
            let f = kill.victim.figures;
            proptest::prop_assert_eq!(f.anon_rss_kb, Some(anon).filter(|a| *a <= MAX_MEMORY_KB));
            proptest::prop_assert_eq!(f.oom_score_adj, Some(adj).filter(|a| OOM_SCORE_ADJ.contains(a)));
            let stored = kill.victim.comm.as_deref().unwrap_or_default();
            proptest::prop_assert!(stored.len() <= COMM_MAX && comm.starts_with(stored));
            let refused = usize::from(anon > MAX_MEMORY_KB)
                + usize::from(!OOM_SCORE_ADJ.contains(&adj))
                + usize::from(comm.len() > COMM_MAX);
            proptest::prop_assert_eq!(kill.notes.len(), refused);
        }

        /// A kmsg record of any facility but the kernel's never becomes a kill.
        #[test]
        fn no_program_can_write_a_kill_into_a_kmsg_dump(facility in 1u64..24, level in 0u64..8) {
            let line = killed("7558", "dd", "1", "0");
            let text = line.split_once("] ").unwrap().1;
            let input = format!("{},1,2,-;{text}", facility << 3 | level);
            let all = found(input.as_bytes()).unwrap();
            proptest::prop_assert_eq!((all.kills.len(), all.foreign_records), (0, 1));
        }
    }

    #[test]
    fn garbage_is_passed_over() {
        for line in ["", "[", "]", "[ 1.]", "1,2,x,-;y", "\u{0}\u{1}\u{fffd}", " kernel: ", "[ .5] x"] {
            let _ = strip(line);
        }
        assert_eq!(since_boot(" 12.5"), Some(12_500_000));
        assert_eq!(since_boot("12"), None);
        assert_eq!(since_boot("99999999999999999999.1"), None);
    }
}
