//! Output for people: sizes, times, and writing to stdout where a closed pipe
//! (`oomrecorder list | head`) is success, not an error.

use std::io::{self, IsTerminal, Write};

use jiff::{tz::TimeZone, Timestamp};

use super::exit::Exit;
use crate::model::figures::human_bytes;

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
    let Some(ns) = ns else {
        return "unknown time".to_owned();
    };
    match Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.to_zoned_datetime(TimeZone::system()).strftime("%a %Y-%m-%d %H:%M:%S %Z").to_string(),
        Err(_) => format!("@{ns}ns"),
    }
}

/// Any optional value for people; unknown is `-`.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
