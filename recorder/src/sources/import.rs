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

use std::{collections::HashMap, io::BufRead};

use jiff::{civil::DateTime, tz::TimeZone, Timestamp};

use crate::{
    clock,
    model::{from_report, Kill, Source, JOIN_WINDOW_NS},
    report::{Item, Line, Parser},
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
}

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
    numeric(fields.next())?;
    numeric(fields.next())?;
    let usec = numeric(fields.next())?.parse().ok()?;
    fields.next()?;
    Some(Stripped { stamp: Stamp::SinceBoot(usec), text })
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
            return Stripped { stamp: Stamp::SinceBoot(since_boot(inner).unwrap_or(0)), text: rest };
        }
        // short-monotonic puts `[ 123.456789] host` before `kernel:`.
        if let Some(usec) = bracket(prefix).and_then(|(b, _)| since_boot(b)) {
            return Stripped { stamp: Stamp::SinceBoot(usec), text };
        }
        let stamp = prefix.rsplit_once(' ').map_or(prefix, |(stamp, _host)| stamp).trim();
        return Stripped { stamp: Stamp::Wall(stamp.to_owned()), text };
    }
    if let Some((inner, rest)) = bracket(line) {
        if let Some(usec) = since_boot(inner) {
            return Stripped { stamp: Stamp::SinceBoot(usec), text: rest };
        }
        // `dmesg -T`: a wall-clock stamp in brackets, in the dumping
        // machine's locale; only a bracket at the very start counts.
        if line.starts_with('[') {
            return Stripped { stamp: Stamp::Wall(inner.trim().to_owned()), text: rest };
        }
    }
    Stripped { stamp: Stamp::None, text: line }
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

/// What one import found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub lines: u64,
    pub kills: Vec<Kill>,
}

/// Reads a kernel log and returns each kill it reports as a record with
/// `sources: ["import"]`. Lines of other programs, broken lines and binary
/// garbage are passed over (the parser keeps what it cannot read raw).
pub fn read_kills(input: impl BufRead) -> std::io::Result<Found> {
    let mut parser = Parser::new();
    let mut found = Found::default();
    let mut last_stamp = Stamp::None;
    let recorded_ns = clock::wall_ns_now();
    // pid → (stamp, index) of its last kill: a memory.oom.group kill prints
    // the chosen victim's line twice (once chosen, once as a member; seen on
    // Debian 6.1 and 6.12), and one victim is one record.
    let mut recent: HashMap<i32, (Option<u64>, usize)> = HashMap::new();
    let mut take = |items: Vec<Item>, stamp: &Stamp, found: &mut Found| {
        for item in items {
            let Item::Kill(kk) = item else { continue };
            let index = found.kills.len();
            let repeated = recent.get(&kk.pid).is_some_and(|(usec, at)| match (usec, kk.usec) {
                (Some(a), Some(b)) => a.abs_diff(b) * 1_000 <= JOIN_WINDOW_NS,
                _ => index - at <= REPEAT_WITHIN_KILLS,
            });
            recent.insert(kk.pid, (kk.usec, index));
            if kk.repeat_of_chosen || (repeated && kk.group_member) {
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
            let mut kill = from_report::from_kernel(&kk, Source::Import, None, time_ns, recorded_ns);
            let kill_line = kk.lines.last().map(String::as_str).unwrap_or_default();
            kill.fingerprint = Some(format!("{:016x}", fnv1a(&[&stamp_text, kill_line])));
            found.kills.push(kill);
        }
    };
    let mut buffer = Vec::new();
    let mut input = input;
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        found.lines += 1;
        let line = String::from_utf8_lossy(&buffer);
        let stripped = strip(&line);
        let usec = match stripped.stamp {
            Stamp::SinceBoot(usec) => Some(usec),
            _ => None,
        };
        let items = parser.push(Line { usec, text: stripped.text });
        take(items, &stripped.stamp, &mut found);
        last_stamp = stripped.stamp;
    }
    take(parser.finish(), &last_stamp, &mut found);
    Ok(found)
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

    #[test]
    fn a_multibyte_character_across_byte_120_does_not_panic() {
        let line = format!("{}й] Killed process 1 (x)", "a".repeat(119));
        assert_eq!(strip(&line).text, line);
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
