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
    fn sizes_read_like_free_h() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(98_000 * 1024), "95.7 MiB");
    }
}
