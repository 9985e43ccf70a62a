//! /dev/kmsg: the kernel log as structured records.
//!
//! Record format (Documentation/ABI/testing/dev-kmsg, kernel/printk/printk.c
//! `info_print_ext_header` / `msg_print_ext_body`):
//! `<prefix>,<seq>,<usec>,<flags>[,...];<text>\n` followed by zero or more
//! ` KEY=value\n` continuation lines. `prefix` is `facility << 3 | level`;
//! bytes below 0x20 (except `\n` between dictionary lines), above 0x7e, and `\`
//! itself are escaped as `\xNN`, so a multi-line message (an old kernel's
//! memory.stat block) arrives as one record whose text holds `\x0a`.
//!
//! One `read(2)` returns one record. A reader that falls behind the ring
//! buffer gets `EPIPE` once and continues at the oldest record; the sequence
//! numbers say how many records it lost.

use std::{
    fs::File,
    io::{self, Read},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

/// `facility` of kernel messages (LOG_KERN). Writes to /dev/kmsg from user
/// space are forced to LOG_USER (kernel/printk/printk.c `devkmsg_write`), so
/// a kernel line cannot be forged from user space.
pub const FACILITY_KERN: u8 = 0;

/// The largest record the kernel emits (`CONSOLE_EXT_LOG_MAX`, 8 KiB), with
/// room to spare.
const READ_BUFFER: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub facility: u8,
    pub level: u8,
    pub seq: u64,
    /// Microseconds since boot on the kernel's local clock.
    pub usec: u64,
    /// The message, unescaped (may contain `\n`).
    pub text: String,
    /// ` KEY=value` continuation lines (`SUBSYSTEM=`, `DEVICE=`), unescaped.
    pub dict: Vec<(String, String)>,
}

impl Record {
    pub fn is_kernel(&self) -> bool {
        self.facility == FACILITY_KERN
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("no `;` ends the record header")]
    NoHeaderEnd,
    #[error("header field {field} is not a number")]
    BadNumber { field: &'static str },
    #[error("header has fewer than 4 fields")]
    ShortHeader,
}

/// Undoes the kernel's `\xNN` escaping. Anything else, including a malformed
/// escape, is kept as it is; invalid UTF-8 becomes U+FFFD.
pub fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'x') {
            let hex = raw.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one record as `read(2)` returns it.
pub fn parse_record(raw: &[u8]) -> Result<Record, RecordError> {
    let header_end = raw.iter().position(|&b| b == b';').ok_or(RecordError::NoHeaderEnd)?;
    let header = std::str::from_utf8(&raw[..header_end]).map_err(|_| RecordError::ShortHeader)?;
    let mut fields = header.split(',');
    let mut number = |field: &'static str| -> Result<u64, RecordError> {
        fields.next().ok_or(RecordError::ShortHeader)?.parse().map_err(|_| RecordError::BadNumber { field })
    };
    let prefix = number("prefix")?;
    let seq = number("seq")?;
    let usec = number("usec")?;
    // flags (`-`, `c`) and any later fields are not needed; their presence is.
    fields.next().ok_or(RecordError::ShortHeader)?;

    let body = &raw[header_end + 1..];
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let mut lines = body.split(|&b| b == b'\n');
    let text = unescape(lines.next().unwrap_or_default());
    let dict = lines
        .filter_map(|line| line.strip_prefix(b" "))
        .filter_map(|line| {
            let eq = line.iter().position(|&b| b == b'=')?;
            Some((unescape(&line[..eq]), unescape(&line[eq + 1..])))
        })
        .collect();
    Ok(Record { facility: (prefix >> 3) as u8, level: (prefix & 7) as u8, seq, usec, text, dict })
}

/// Tracks the sequence numbers a reader sees and counts the records it never
/// saw (overwritten before they were read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    next: Option<u64>,
    pub lost: u64,
}

impl SeqTracker {
    /// Starts expecting `next` (e.g. the record after a stored cursor).
    pub fn expecting(next: u64) -> SeqTracker {
        SeqTracker { next: Some(next), lost: 0 }
    }

    /// Notes a record; returns how many were lost just before it.
    pub fn saw(&mut self, seq: u64) -> u64 {
        let gap = match self.next {
            Some(next) if seq > next => seq - next,
            _ => 0,
        };
        self.lost += gap;
        self.next = Some(seq + 1);
        gap
    }
}

/// What one non-blocking read produced.
#[derive(Debug)]
pub enum Read1 {
    Record(Record),
    /// The reader fell behind: records were overwritten (EPIPE). The next
    /// read returns the oldest record still held.
    Overrun,
    /// Nothing more for now (EAGAIN).
    Empty,
    /// A record that did not parse, kept raw.
    Malformed {
        raw: String,
        error: RecordError,
    },
}

/// /dev/kmsg opened non-blocking, positioned at the oldest record held.
///
/// Generic over its byte source so that tests feed records through the same
/// reading code: any `Read` that returns one record per call and
/// `WouldBlock` when none is ready behaves as /dev/kmsg does.
pub struct Kmsg<R = File> {
    source: R,
    buffer: Vec<u8>,
}

impl Kmsg<File> {
    pub fn open(path: &Path) -> io::Result<Kmsg> {
        let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        Ok(Kmsg::from_source(file))
    }
}

impl<R: Read> Kmsg<R> {
    /// Records from `source` (a test's, or the opened device).
    pub fn from_source(source: R) -> Kmsg<R> {
        Kmsg { source, buffer: vec![0; READ_BUFFER] }
    }

    pub fn read_one(&mut self) -> io::Result<Read1> {
        match self.source.read(&mut self.buffer) {
            Ok(0) => Ok(Read1::Empty),
            Ok(n) => {
                let raw = &self.buffer[..n];
                Ok(match parse_record(raw) {
                    Ok(record) => Read1::Record(record),
                    Err(error) => Read1::Malformed { raw: String::from_utf8_lossy(raw).into_owned(), error },
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read1::Empty),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Ok(Read1::Overrun),
            Err(e) => Err(e),
        }
    }
}

impl std::os::fd::AsRawFd for Kmsg<File> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.source.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_kernel_record_with_dictionary() {
        let raw = b"3,1234,558908182,-;Memory cgroup out of memory: Killed process 7558 (a\\x5cb)\n SUBSYSTEM=cpu\n DEVICE=+cpu:0\n";
        let record = parse_record(raw).unwrap();
        assert_eq!((record.facility, record.level, record.seq, record.usec), (0, 3, 1234, 558_908_182));
        assert!(record.is_kernel());
        assert_eq!(record.text, "Memory cgroup out of memory: Killed process 7558 (a\\b)");
        assert_eq!(record.dict, [("SUBSYSTEM".into(), "cpu".into()), ("DEVICE".into(), "+cpu:0".into())]);
    }

    #[test]
    fn multi_line_messages_are_one_record() {
        // Before 6.5 the memory.stat block of a memcg OOM report was one
        // printk with embedded newlines.
        let raw = b"6,77,1000,c;Memory cgroup stats for /x:\\x0acache 0\\x0arss 4096\n";
        let record = parse_record(raw).unwrap();
        assert_eq!(record.text, "Memory cgroup stats for /x:\ncache 0\nrss 4096");
    }

    #[test]
    fn user_lines_are_not_kernel_lines() {
        // <14> = facility user (1), level info (6): what `echo x > /dev/kmsg` makes.
        let record = parse_record(b"14,9,10,-;Killed process 1 (fake)\n").unwrap();
        assert!(!record.is_kernel());
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert_eq!(parse_record(b"no separator"), Err(RecordError::NoHeaderEnd));
        assert_eq!(parse_record(b"6,x,1,-;t"), Err(RecordError::BadNumber { field: "seq" }));
        assert_eq!(parse_record(b"6,1;t"), Err(RecordError::ShortHeader));
        assert_eq!(unescape(b"bad \\xZZ and \\x4"), "bad \\xZZ and \\x4");
        assert_eq!(unescape(b"\\xff\\xfe"), "\u{fffd}\u{fffd}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever a read returns, parsing gives a record or an error.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_record(&raw);
            let _ = unescape(&raw);
        }

        /// A well-formed header always parses, whatever the text holds.
        #[test]
        fn any_text_after_a_header_is_kept(prefix in 0u64..200, seq in proptest::prelude::any::<u32>(), text in "[^\n]{0,200}") {
            let raw = format!("{prefix},{seq},12,-;{}\n", text.replace('\\', "\\x5c"));
            let record = parse_record(raw.as_bytes()).unwrap();
            proptest::prop_assert_eq!(record.seq, u64::from(seq));
            proptest::prop_assert_eq!(record.text, text);
        }
    }

    #[test]
    fn sequence_gaps_are_counted() {
        let mut seq = SeqTracker::expecting(10);
        assert_eq!(seq.saw(10), 0);
        assert_eq!(seq.saw(11), 0);
        assert_eq!(seq.saw(15), 3);
        assert_eq!(seq.saw(16), 0);
        assert_eq!(seq.lost, 3);
        let mut fresh = SeqTracker::default();
        assert_eq!(fresh.saw(500), 0, "the first record sets the baseline");
    }
}
