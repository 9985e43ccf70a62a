//! Output for people: sizes, times, and writing to stdout where a closed pipe
//! (`oomrecorder list | head`) is success, not an error.

use std::{
    borrow::Cow,
    fmt::Write as _,
    io::{self, IsTerminal, Write},
};

use jiff::{tz::TimeZone, Timestamp};

use super::exit::Exit;
use crate::model::figures::{human_bytes, is_unlimited_bytes, is_unlimited_kb};

/// Writes what `write` produces to stdout, buffered, and flushes it. A
/// closed pipe comes back as the error it is; `main` alone decides that
/// it means success (the reader has all it wanted), for every command.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<Exit> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(e).context("writing to stdout"))?;
    Ok(Exit::Ok)
}

/// As [`to_stdout`], for output written while it is read from the store:
/// `write` fails with the store's error or the write's, and a closed pipe
/// still reaches `main` as the I/O error it is.
pub fn stream_to_stdout(write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<Exit> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write(&mut out)?;
    out.flush().map_err(|e| anyhow::Error::new(e).context("writing to stdout"))?;
    Ok(Exit::Ok)
}

/// A JSON array written one element at a time, laid out as
/// `serde_json::to_writer_pretty` lays out a whole one, so `list --json`
/// never holds more than one row.
pub struct JsonArray<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl<'a> JsonArray<'a> {
    pub fn new(out: &'a mut dyn Write) -> JsonArray<'a> {
        JsonArray { out, first: true }
    }

    pub fn push(&mut self, value: &serde_json::Value) -> io::Result<()> {
        self.out.write_all(if self.first { b"[\n" } else { b",\n" })?;
        self.first = false;
        // A JSON text has no raw newline inside a string: each line of the
        // pretty form is one line of the value, indented one level.
        let text = serde_json::to_string_pretty(value)?;
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            write!(self.out, "  {line}")?;
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<()> {
        self.out.write_all(if self.first { b"[]\n" } else { b"\n]\n" })
    }
}

/// The terminal's width in columns when stdout is a terminal; `None` when
/// it is a pipe or a file, where a table is never cut (scripts and `less -S`
/// want whole rows).
pub fn stdout_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills one `struct winsize` (asm-generic/termios.h),
    // which `size` is; fd 1 is open for the life of the process.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    if rc == 0 && size.ws_col > 0 {
        return Some(size.ws_col.into());
    }
    // A terminal that does not report its size (a serial console): the
    // shell's COLUMNS, else leave the table whole.
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|c| *c > 0)
}

/// kB (the kernel's unit for task memory) in binary units for people:
/// `98000` → `95.7 MiB`.
pub fn kb(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |kb| bytes(kb.saturating_mul(1024)))
}

/// Bytes in binary units: `1536` → `1.5 KiB`, below 1 KiB plain `B`.
pub fn bytes(value: u64) -> String {
    human_bytes(value)
}

/// Optional byte count for people.
pub fn bytes_opt(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), bytes)
}

/// A Unix-ns instant in the system's time zone, as coredumpctl shows it:
/// `Wed 2026-11-25 08:30:01 UTC`.
pub fn local_time(ns: Option<i64>) -> String {
    local(ns, "%a %Y-%m-%d %H:%M:%S %Z")
}

/// As [`local_time`] without the weekday, for a narrow table:
/// `2026-11-25 08:30:01 UTC`.
pub fn local_time_compact(ns: Option<i64>) -> String {
    local(ns, "%Y-%m-%d %H:%M:%S %Z")
}

fn local(ns: Option<i64>, format: &str) -> String {
    let Some(ns) = ns else {
        return "unknown time".to_owned();
    };
    match Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.to_zoned_datetime(TimeZone::system()).strftime(format).to_string(),
        Err(_) => format!("@{ns}ns"),
    }
}

/// A limit in bytes for people: `max` for the kernel's "no limit", `-` when
/// unknown.
pub fn limit(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if is_unlimited_bytes(b) => "max".to_owned(),
        other => bytes_opt(other),
    }
}

/// A limit in kB (the OOM report's unit) for people, as [`limit`].
pub fn limit_kb(kb: Option<u64>) -> String {
    match kb {
        Some(kb) if is_unlimited_kb(kb) => "max".to_owned(),
        other => self::kb(other),
    }
}

/// Text from the kernel or a process (a command line, a comm, a path) on
/// one line: control characters as C escapes (`\n`, `\t`, `\xNN`) and
/// the backslash doubled, so nothing in it breaks a layout or fakes one.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Any optional value for people; unknown is `-`.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_array_is_the_pretty_array() {
        let rows = [serde_json::json!({"id": 1, "a": [1, 2], "s": "x\ny"}), serde_json::json!({"id": 2})];
        for n in 0..=rows.len() {
            let mut out = Vec::new();
            let mut array = JsonArray::new(&mut out);
            rows[..n].iter().try_for_each(|r| array.push(r)).unwrap();
            array.finish().unwrap();
            let whole = serde_json::to_string_pretty(&rows[..n]).unwrap() + "\n";
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{n} rows");
        }
    }

    #[test]
    fn text_is_escaped_onto_one_line() {
        assert_eq!(escape("java -jar app.jar"), "java -jar app.jar");
        assert_eq!(escape("sh -c 'a\nb'\tx\u{1b}[31m"), "sh -c 'a\\nb'\\tx\\x1b[31m");
        assert_eq!(escape("C:\\dir"), "C:\\\\dir");
        assert!(!escape("a\r\nb\u{85}").contains(|c: char| c.is_control()));
    }

    #[test]
    fn no_limit_is_max_and_unknown_is_a_dash() {
        assert_eq!(limit(Some(9_223_372_036_854_771_712)), "max");
        assert_eq!(limit_kb(Some(9_007_199_254_740_988)), "max");
        assert_eq!(limit(Some(64 << 20)), "64.0 MiB");
        assert_eq!(limit_kb(Some(65_536)), "64.0 MiB");
        assert_eq!(limit(None), "-");
    }

    #[test]
    fn sizes_read_like_free_h() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(kb(Some(98_000)), "95.7 MiB");
        assert_eq!(kb(Some(128 * 1024)), "128.0 MiB");
        assert_eq!(kb(None), "-");
    }
}
