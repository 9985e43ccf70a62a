//! The victim's figures as the kernel states them for a kill, declared once:
//! the `Killed process` line (mm/oom_kill.c `__oom_kill_process`) and the
//! `oom:mark_victim` tracepoint (include/trace/events/oom.h) carry the same
//! set, in kB; the raw tracepoint program reads them in pages and
//! [`from_pages`] converts them, here and nowhere else.

/// What the record keeps of the victim's memory at the kill. `None`: the
/// source did not say (never 0 for unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub uid: Option<u32>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
}

/// For each named `Option` field: a value `into` lacks, `from` gives. The
/// one merge rule of the record ("the first source to know a fact keeps it,
/// later sources fill what is missing"), typed, field by field.
macro_rules! fill_missing {
    ($into:expr, $from:expr; $($field:ident),+ $(,)?) => {
        $( if $into.$field.is_none() { $into.$field.clone_from(&$from.$field); } )+
    };
}
pub(crate) use fill_missing;

impl Figures {
    /// Fills what `self` lacks from `other`.
    pub fn fill_from(&mut self, other: &Figures) {
        fill_missing!(self, other; uid, total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb, pgtables_kb, oom_score_adj);
    }

    /// RSS of every kind, in bytes: what the diagnosis compares with a limit.
    pub fn rss_bytes(&self) -> Option<u64> {
        let kb = self
            .anon_rss_kb?
            .checked_add(self.file_rss_kb.unwrap_or(0))?
            .checked_add(self.shmem_rss_kb.unwrap_or(0))?;
        kb.checked_mul(1024)
    }
}

/// Pages of `page_size` bytes in kB, as the kernel's `K()` macro turns them
/// (include/trace/events/oom.h, mm/oom_kill.c): `pages << (PAGE_SHIFT - 10)`.
pub fn pages_to_kb(pages: u64, page_size: u64) -> u64 {
    pages.saturating_mul(page_size / 1024)
}

/// Pages in bytes.
pub fn pages_to_bytes(pages: u64, page_size: u64) -> u64 {
    pages.saturating_mul(page_size)
}

/// A `get_mm_counter()` value in pages (include/linux/mm.h clamps a negative
/// percpu_counter approximation to 0).
pub fn clamp_pages(pages: i64) -> u64 {
    u64::try_from(pages).unwrap_or(0)
}

/// A limit at or above this many bytes is the kernel's "no limit": the
/// page counters hold PAGE_COUNTER_MAX (include/linux/page_counter.h:
/// LONG_MAX / PAGE_SIZE pages) and print it in bytes (v1 files,
/// `hierarchical_memory_limit`: 9223372036854771712 with 4 KiB pages) or in
/// kB (the OOM report's `limit 9007199254740988kB`). 2^62 is far above any
/// real limit and below the sentinel for every page size.
pub const UNLIMITED_BYTES: u64 = 1 << 62;

/// Whether a limit in bytes means "no limit".
pub fn is_unlimited_bytes(bytes: u64) -> bool {
    bytes >= UNLIMITED_BYTES
}

/// Whether a limit in kB (the OOM report's unit) means "no limit".
pub fn is_unlimited_kb(kb: u64) -> bool {
    kb >= UNLIMITED_BYTES >> 10
}

/// A limit in bytes as the JSON gives it: `None` (null) for none or unknown.
pub fn limit_bytes(bytes: Option<u64>) -> Option<u64> {
    bytes.filter(|b| !is_unlimited_bytes(*b))
}

/// A limit in kB as the JSON gives it: `None` (null) for none or unknown.
pub fn limit_kb(kb: Option<u64>) -> Option<u64> {
    kb.filter(|kb| !is_unlimited_kb(*kb))
}

/// Bytes in binary units for people, as `free -h` writes them: `1536` →
/// `1.5 KiB`, below 1 KiB plain `B`.
pub fn human_bytes(value: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scaled = value as f64;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_already_known_is_kept_and_a_missing_one_filled() {
        let mut from_event = Figures { anon_rss_kb: Some(101), ..Figures::default() };
        let from_line = Figures { anon_rss_kb: Some(100), total_vm_kb: Some(300), ..Figures::default() };
        from_event.fill_from(&from_line);
        assert_eq!((from_event.anon_rss_kb, from_event.total_vm_kb), (Some(101), Some(300)));
        assert_eq!(from_event.uid, None, "unknown stays unknown");
    }

    #[test]
    fn units_follow_the_kernels_conversions() {
        assert_eq!(pages_to_kb(16_320, 4096), 65_280);
        assert_eq!(pages_to_kb(1, 65_536), 64);
        assert_eq!(pages_to_bytes(3, 4096), 12_288);
        assert_eq!(clamp_pages(-3), 0);
        assert_eq!(
            Figures { anon_rss_kb: Some(1), file_rss_kb: Some(2), ..Figures::default() }.rss_bytes(),
            Some(3072)
        );
        assert_eq!(Figures::default().rss_bytes(), None);
    }

    #[test]
    fn the_kernels_no_limit_is_no_figure_in_any_unit() {
        // 4 KiB and 64 KiB pages, as the files and the report print them.
        for bytes in [9_223_372_036_854_771_712, 9_223_372_036_854_710_272] {
            assert!(is_unlimited_bytes(bytes));
            assert_eq!(limit_bytes(Some(bytes)), None);
        }
        for kb in [9_007_199_254_740_988, 9_007_199_254_740_928] {
            assert_eq!(limit_kb(Some(kb)), None);
        }
        assert_eq!(limit_bytes(Some(64 << 20)), Some(64 << 20));
        assert_eq!(limit_kb(Some(65_536)), Some(65_536));
        assert_eq!(limit_kb(None), None);
    }

    #[test]
    fn sizes_read_like_free_h() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(98_000 * 1024), "95.7 MiB");
    }
}
