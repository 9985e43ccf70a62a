//! What the daemon's start-up leaves resident, handed back once it is done.
//!
//! Start-up runs code and allocates heap that the steady state never uses
//! again: clap's parser, the BTF parse (tens of MiB of heap for vmlinux),
//! aya's ELF loader, the store's migrations. Its heap is freed but glibc
//! keeps it; its code pages stay mapped, and both count as the daemon's
//! resident memory (VmRSS) for as long as it runs. The writer, once
//! [`Startup`] is over and it has stored what start-up sent, calls
//! [`shed_startup_pages`] (the program's and libraries' unmodified file
//! pages unmapped) and, after that and every burst,
//! [`trim_heap`]. What the steady state still runs comes back on its next
//! use as minor faults from the page cache; the first kill after start
//! pays those faults, and the bench's latency figures include them.
//!
//! Measured on 6.18 (release build, the binary written back as dpkg
//! leaves it): idle on an empty store 15.9 -> 11.3 MiB, of which 4.1 MiB
//! is the ring buffer (its data pages are mapped
//! twice, `kernel/bpf/ringbuf.c`, and the kernel maps all of them at
//! mmap, so they count whether or not a record was written).

use std::{
    fs, io,
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// The parts of the start-up that run beside the writer (the kernel-log
/// catch-up, the metrics seed). Once none is left and the writer has
/// stored what they sent, the writer sheds what start-up left behind
/// ([`shed_startup_pages`]).
#[derive(Clone, Debug)]
pub struct Startup(Arc<AtomicUsize>);

impl Startup {
    pub fn waiting_for(parts: usize) -> Startup {
        Startup(Arc::new(AtomicUsize::new(parts)))
    }

    /// One part is done. Each part calls this once.
    pub fn done(&self) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1));
    }

    pub fn is_over(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

/// Sets glibc's allocator up for a daemon that is idle nearly always: one
/// arena, and fixed trim and mmap thresholds of 128 KiB (glibc's defaults,
/// which it otherwise raises after each large block it frees: the BTF
/// parse's several-MiB buffers lifted them so far that every arena kept
/// MiB of free memory at its top, which `malloc_trim` does not return for
/// threads' arenas; malloc(3), mallopt(3)). One arena: a few threads that
/// allocate rarely gain nothing from arenas of their own, and each would
/// keep its own free memory. Called first thing in `run`.
pub fn bound_heap() {
    for (param, value) in
        [(libc::M_ARENA_MAX, 1), (libc::M_TRIM_THRESHOLD, 128 << 10), (libc::M_MMAP_THRESHOLD, 128 << 10)]
    {
        // SAFETY: mallopt only sets allocator parameters; called before the
        // daemon starts its threads, with values mallopt(3) accepts.
        if unsafe { libc::mallopt(param, value) } != 1 {
            log::debug!("mallopt({param}, {value}) refused");
        }
    }
}

/// Hands glibc's free heap back to the system: freed blocks it keeps (the
/// BTF parse's, a burst's) otherwise count as resident for as long as the
/// daemon runs.
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free heap memory; it has no
    // preconditions and touches no live allocation.
    unsafe { libc::malloc_trim(0) };
}

/// One mapping of `/proc/PID/smaps` that can be dropped and faulted back
/// from its file unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRegion {
    pub start: usize,
    pub end: usize,
    /// Its resident KiB (smaps `Rss:`) when read.
    pub rss_kib: u64,
}

/// The mappings of `smaps` (proc(5): a header line `start-end perms offset
/// dev inode path`, then `Key: value kB` lines) that are safe to drop with
/// `MADV_DONTNEED`: private, not writable, backed by a file (an absolute
/// path and a non-zero inode), and holding no anonymous page. The last rule
/// keeps the RELRO segment (read-only now, but written by the dynamic
/// loader's relocations: its pages are private copies, `Anonymous:` in
/// smaps) and any page a debugger patched; dropping those would put the
/// file's bytes back in their place. Not writable also means no page can
/// become a private copy between this read and the madvise.
pub fn droppable(smaps: &str) -> Vec<FileRegion> {
    let mut regions = Vec::new();
    let mut current: Option<(FileRegion, bool)> = None;
    let mut anonymous = 0u64;
    let mut finish = |current: &mut Option<(FileRegion, bool)>, anonymous: u64| {
        if let Some((region, eligible)) = current.take() {
            if eligible && anonymous == 0 && region.rss_kib > 0 {
                regions.push(region);
            }
        }
    };
    for line in smaps.lines() {
        if let Some(header) = header(line) {
            finish(&mut current, anonymous);
            anonymous = 0;
            current = Some(header);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let kib = || value.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
        match (key, current.as_mut()) {
            ("Rss", Some((region, _))) => region.rss_kib = kib().unwrap_or(0),
            // Unparsable counts as present: when in doubt, keep the mapping.
            ("Anonymous", Some(_)) => anonymous = kib().unwrap_or(u64::MAX),
            _ => {}
        }
    }
    finish(&mut current, anonymous);
    regions
}

/// A mapping's header line, with whether its kind may be dropped; `None`
/// for the `Key: value` lines.
fn header(line: &str) -> Option<(FileRegion, bool)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let (_offset, _dev, inode) = (fields.next()?, fields.next()?, fields.next()?);
    let path = fields.next().unwrap_or("");
    let perms = perms.as_bytes();
    let eligible = perms.len() == 4
        && perms[1] == b'-'
        && perms[3] == b'p'
        && inode != "0"
        && path.starts_with('/')
        // A mapped file since deleted (an upgraded package) still pages in
        // from its inode, but say nothing clever about it: keep it.
        && !line.ends_with(" (deleted)");
    Some((FileRegion { start, end, rss_kib: 0 }, eligible))
}

/// Drops this process's mappings of unmodified file pages ([`droppable`]);
/// returns the KiB unmapped. The pages stay in the page cache: what the
/// steady state runs is mapped again at its next use (a minor fault, which
/// maps its fault-around window, mm/memory.c `do_fault_around`), the rest
/// is no longer this process's resident memory. Paging them out as well
/// (`MADV_PAGEOUT`, or `POSIX_FADV_DONTNEED` on the binary) measured no
/// lower on 6.18, so the page cache is left alone.
pub fn shed_startup_pages() -> io::Result<u64> {
    let smaps = fs::read_to_string(Path::new("/proc/self/smaps"))?;
    let mut dropped = 0;
    for region in droppable(&smaps) {
        let (start, len) = (region.start as *mut libc::c_void, region.end - region.start);
        // SAFETY: the range is one whole mapping of this process, read from
        // smaps just now, private and not writable, and without anonymous
        // pages: MADV_DONTNEED only unmaps its pages, and the next access
        // maps the same file's page again (madvise(2)). No Rust object lives
        // in it (code and read-only data of mapped files only).
        if unsafe { libc::madvise(start, len, libc::MADV_DONTNEED) } == 0 {
            dropped += region.rss_kib;
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes of /proc/PID/smaps on 6.x, trimmed to the keys read.
    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 08:01 1234 /usr/bin/oomrecorder
Rss:                1024 kB
Anonymous:             0 kB
55d0c0100000-55d0c0600000 r-xp 00100000 08:01 1234 /usr/bin/oomrecorder
Rss:                5012 kB
Anonymous:             0 kB
55d0c0600000-55d0c0700000 r--p 00600000 08:01 1234 /usr/bin/oomrecorder
Rss:                 200 kB
Anonymous:           200 kB
55d0c0700000-55d0c0701000 rw-p 00700000 08:01 1234 /usr/bin/oomrecorder
Rss:                   4 kB
Anonymous:             4 kB
7f0000000000-7f0000400000 r--s 00000000 00:0f 99 anon_inode:bpf-map
Rss:                4100 kB
Anonymous:             0 kB
7f0000400000-7f0000500000 r-xp 00000000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1176 kB
Anonymous:             0 kB
7f0000500000-7f0000501000 r-xp 00000000 08:01 78 /usr/lib/old.so (deleted)
Rss:                   4 kB
Anonymous:             0 kB
7f0000600000-7f0000700000 rw-p 00000000 00:00 0 [heap]
Rss:                1472 kB
Anonymous:          1472 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn only_unmodified_private_read_only_file_pages_are_dropped() {
        let regions = droppable(SMAPS);
        let starts: Vec<usize> = regions.iter().map(|r| r.start).collect();
        // The binary's rodata and text, libc's text; not RELRO (private
        // copies), .data (writable), the ring buffer (shared, no file), a
        // deleted file, the heap or the vDSO.
        assert_eq!(starts, vec![0x55d0c0000000, 0x55d0c0100000, 0x7f0000400000]);
        assert_eq!(regions.iter().map(|r| r.rss_kib).sum::<u64>(), 1024 + 5012 + 1176);
        assert_eq!(regions[1].end, 0x55d0c0600000);
    }

    #[test]
    fn start_up_is_over_when_every_part_is_done_and_stays_over() {
        let startup = Startup::waiting_for(2);
        let seed = startup.clone();
        startup.done();
        assert!(!startup.is_over());
        seed.done();
        assert!(startup.is_over());
        // A part said twice does not wrap the count round to "waiting".
        seed.done();
        assert!(startup.is_over());
    }

    #[test]
    fn an_unreadable_anonymous_count_keeps_the_mapping() {
        let smaps = "\
55d0c0100000-55d0c0600000 r-xp 00100000 08:01 1234 /usr/bin/oomrecorder
Rss:                5012 kB
Anonymous:          lots kB
";
        assert_eq!(droppable(smaps), vec![]);
    }

    #[test]
    fn a_mapping_with_nothing_resident_is_left_alone() {
        let smaps = "\
55d0c0100000-55d0c0600000 r-xp 00100000 08:01 1234 /usr/bin/oomrecorder
Rss:                   0 kB
Anonymous:             0 kB
";
        assert_eq!(droppable(smaps), vec![]);
    }
}
