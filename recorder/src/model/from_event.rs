//! One ring-buffer event, as the eBPF program wrote it, into a record.

use common::{kpresent, present, rss, MemcgPart, OomEvent, COMM_LEN};

use super::{
    figures::{clamp_pages, pages_to_kb},
    Figures, KernelState, Kill, Kind, Source, Trigger, Victim,
};

/// A task name from a fixed `TASK_COMM_LEN` buffer: up to the first NUL;
/// bytes that are not UTF-8 (a task can name itself anything) become U+FFFD.
pub fn comm_from_bytes(raw: &[u8; COMM_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// The victim's figures in kB. The tracepoint's fields are kB already
/// (`K()` in include/trace/events/oom.h); the raw tracepoint program copies
/// the kernel's own counters, in pages and bytes, and they are converted
/// here, the one place that does.
fn figures(event: &OomEvent) -> Figures {
    let has = |bit: u32| event.present & bit != 0;
    let read = |bit: u32| event.kpresent & bit != 0;
    let page = 1u64 << event.page_shift.min(30);
    let rss_kb = |index: usize| pages_to_kb(clamp_pages(event.rss_pages[index]), page);
    let kb = |tracepoint: u32, value: u64, raw: Option<u64>| if has(tracepoint) { Some(value) } else { raw };
    Figures {
        uid: has(present::UID).then_some(event.victim_uid),
        total_vm_kb: kb(
            present::TOTAL_VM,
            event.total_vm_kb,
            read(kpresent::TOTAL_VM).then(|| pages_to_kb(event.total_vm_pages, page)),
        ),
        anon_rss_kb: kb(present::ANON_RSS, event.anon_rss_kb, read(kpresent::RSS).then(|| rss_kb(rss::ANON))),
        file_rss_kb: kb(present::FILE_RSS, event.file_rss_kb, read(kpresent::RSS).then(|| rss_kb(rss::FILE))),
        shmem_rss_kb: kb(
            present::SHMEM_RSS,
            event.shmem_rss_kb,
            read(kpresent::RSS).then(|| rss_kb(rss::SHMEM)),
        ),
        // mm_pgtables_bytes() is bytes; the Killed process line prints
        // `pgtables:%lukB` as bytes >> 10 (mm/oom_kill.c).
        pgtables_kb: kb(
            present::PGTABLES,
            event.pgtables_kb,
            read(kpresent::PGTABLES).then_some(event.pgtables_bytes >> 10),
        ),
        oom_score_adj: has(present::OOM_SCORE_ADJ).then_some(event.oom_score_adj),
    }
}

impl Kill {
    /// Builds the record of one ring-buffer event and its memory cgroups'
    /// figures (`memcg`: the event's own, or those of the earlier victim of
    /// the same OOM it refers to). `time_ns` and `recorded_ns` come from the
    /// caller so this stays pure.
    pub fn from_event(
        event: &OomEvent,
        memcg: Option<&MemcgPart>,
        boot_id: &str,
        time_ns: i64,
        recorded_ns: i64,
    ) -> Kill {
        let has = |bit: u32| event.present & bit != 0;
        let kernel = KernelState::from_event(event, memcg);
        // Without the kernel log's report, the victim's cgroup and the limit
        // that was hit come from the kernel's own counters.
        let (cgroup, memory_limit_bytes) = match &kernel {
            Some(k) => {
                let level = k.inferred_oom_level().unwrap_or(0);
                (k.cgroup_path.clone(), k.memcg.get(level).map(|l| l.memory_limit_bytes))
            }
            None => (None, None),
        };
        Kill {
            cgroup,
            memory_limit_bytes,
            id: None,
            kind: Kind::Kill,
            time_ns: Some(time_ns),
            boot_id: Some(boot_id.to_owned()),
            boot_ns: Some(event.boot_ns),
            mono_ns: Some(event.mono_ns),
            kmsg_usec: None,
            recorded_ns,
            sources: vec![Source::Ebpf],
            victim: Victim {
                pid: event.victim_pid,
                // The tracepoint carries the victim's pid (a thread id) only;
                // the raw tracepoint program reads the task's tgid.
                tgid: (event.kpresent & kpresent::TGID != 0).then_some(event.victim_tgid),
                comm: has(present::COMM).then(|| comm_from_bytes(&event.victim_comm)),
                figures: figures(event),
                ..Victim::default()
            },
            trigger: Trigger {
                pid: Some(event.trigger_pid as i32),
                tgid: Some(event.trigger_tgid as i32),
                comm: Some(comm_from_bytes(&event.trigger_comm)),
                ..Trigger::default()
            },
            kernel,
            ..Kill::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RssPages;
    use common::mpresent;
    use common::PageCounters;
    use common::OOM_EVENT_VERSION;

    #[test]
    fn absent_fields_are_unknown_not_zero() {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::ANON_RSS,
            victim_pid: 7,
            anon_rss_kb: 0,
            total_vm_kb: 0,
            ..OomEvent::default()
        };
        let kill = Kill::from_event(&event, None, "b", 1, 2);
        assert_eq!(kill.victim.figures.anon_rss_kb, Some(0), "a present zero stays a zero");
        assert_eq!(kill.victim.figures.total_vm_kb, None);
        assert_eq!(kill.victim.comm, None);
        assert_eq!(kill.victim.figures.oom_score_adj, None);
        assert_eq!(kill.victim.tgid, None);
    }

    fn name(text: &str) -> [u8; common::CGROUP_NAME_LEN] {
        let mut out = [0; common::CGROUP_NAME_LEN];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out
    }

    /// A raw tracepoint event: a 64 MiB cgroup `/pods/app` at its limit,
    /// under an unlimited `/pods` and the root.
    fn btf_event() -> (OomEvent, MemcgPart) {
        let event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::COMM | present::ANON_RSS,
            victim_pid: 42,
            victim_tgid: 40,
            mono_ns: 10_000_000_000,
            start_time_ns: 7_500_000_000,
            page_shift: 12,
            kpresent: kpresent::TGID
                | kpresent::START_TIME
                | kpresent::RSS
                | kpresent::PGTABLES
                | kpresent::CGROUP_ID,
            // A percpu_counter approximation may dip below zero.
            rss_pages: [439, 16_320, 0, -3],
            pgtables_bytes: 184_320,
            cgroup_id: 6635,
            flags: common::eflags::HAS_MEMCG,
            ..OomEvent::ZERO
        };
        let mut memcg = MemcgPart {
            present: mpresent::CGROUP_PATH | mpresent::MEMCG | mpresent::MEMCG_SWAP,
            cgroup_depth: 2,
            memcg_levels: 3,
            ..MemcgPart::ZERO
        };
        memcg.cgroup_names[0] = name("app");
        memcg.cgroup_names[1] = name("pods");
        let unlimited = i64::MAX as u64 / 4096;
        memcg.memcg[0] = PageCounters { usage: 16_380, max: 16_384, swap_max: 0, ..PageCounters::default() };
        memcg.memcg[1] = PageCounters { usage: 20_000, max: unlimited, ..PageCounters::default() };
        memcg.memcg[2] = PageCounters { usage: 90_000, max: unlimited, ..PageCounters::default() };
        (event, memcg)
    }

    fn btf_state() -> KernelState {
        let (event, memcg) = btf_event();
        KernelState::from_event(&event, Some(&memcg)).unwrap()
    }

    #[test]
    fn kernel_state_from_a_raw_tracepoint_event() {
        let (event, memcg) = btf_event();
        let kill = Kill::from_event(&event, Some(&memcg), "b", 1, 2);
        let k = kill.kernel.as_ref().unwrap();
        assert_eq!(kill.victim.tgid, Some(40));
        assert_eq!(k.age_ms, Some(2_500));
        assert_eq!(k.rss_pages, Some(RssPages { file: 439, anon: 16_320, swapents: 0, shmem: 0 }), "clamped");
        assert_eq!(k.cgroup_path.as_deref(), Some("/pods/app"));
        let paths: Vec<_> = k.memcg.iter().map(|l| l.path.as_deref()).collect();
        assert_eq!(paths, [Some("/pods/app"), Some("/pods"), Some("/")]);
        assert_eq!(k.memcg[0].memory_limit_bytes, 64 << 20);
        assert_eq!(k.memcg[0].memory_low_bytes, None, "not read: unknown, not 0");
        assert_eq!(k.memcg[0].swap_limit_bytes, Some(0));
        assert_eq!((k.min_flt, k.nodename.as_deref()), (None, None));
        assert_eq!(k.inferred_oom_level(), Some(0));
        // No kernel log yet: list's cgroup and limit come from the counters.
        assert_eq!(kill.cgroup.as_deref(), Some("/pods/app"));
        assert_eq!(kill.memory_limit_bytes, Some(64 << 20));

        let mut cut = memcg;
        cut.present &= !mpresent::CGROUP_PATH;
        let k = KernelState::from_event(&event, Some(&cut)).unwrap();
        assert_eq!(k.cgroup_path, None, "a path that did not reach the root is unknown");
        assert!(k.memcg.iter().all(|l| l.path.is_none()));

        let tracepoint = OomEvent { version: OOM_EVENT_VERSION, victim_pid: 1, ..OomEvent::ZERO };
        assert_eq!(Kill::from_event(&tracepoint, None, "b", 1, 2).kernel, None);
    }

    #[test]
    fn badness_is_the_kernels_sum() {
        let mut k = btf_state();
        k.cgroup_version = Some(2);
        k.ram_pages = Some(500_000);
        k.swap_pages = Some(0);
        // memcg OOM: totalpages = memory.max (+ swap.max, capped by swap).
        let b = k.badness(Some(0), Some(0)).unwrap();
        assert_eq!((b.rss_pages, b.pgtables_pages, b.totalpages), (16_759, 45, 16_384));
        assert_eq!(b.points, Some(16_804));
        // adj * (totalpages / 1000), integer division first (mm/oom_kill.c).
        let b = k.badness(Some(500), Some(0)).unwrap();
        assert_eq!(b.adj_pages, 500 * 16);
        assert_eq!(b.points, Some(16_804 + 8_000));
        // Global: RAM + swap.
        assert_eq!(k.badness(Some(0), None).unwrap().totalpages, 500_000);
        // -1000 exempts the task.
        assert_eq!(k.badness(Some(-1000), Some(0)).unwrap().points, None);
        // Unknown adj or no rss: no badness, never a made-up one.
        assert_eq!(k.badness(None, Some(0)), None);
        // v1: memsw is memory + swap; the swap share is memsw - memory.
        k.cgroup_version = Some(1);
        k.swap_pages = Some(1_000_000);
        k.memcg[0].swap_limit_bytes = Some((16_384 + 100) * 4096);
        assert_eq!(k.badness(Some(0), Some(0)).unwrap().totalpages, 16_484);
    }

    #[test]
    fn the_oom_cgroup_is_the_lowest_at_its_limit() {
        let mut k = btf_state();
        k.memcg[0].memory_usage_bytes = 8 << 20;
        assert_eq!(k.inferred_oom_level(), None, "none at its limit, unlimited ones never count");
        k.memcg[1].memory_limit_bytes = 20_100 * 4096;
        assert_eq!(k.inferred_oom_level(), Some(1), "the parent (a pod) hit its limit");
    }

    #[test]
    fn comm_stops_at_nul_and_survives_bad_utf8() {
        assert_eq!(comm_from_bytes(b"a b(c).d-e\0junk!"), "a b(c).d-e");
        assert_eq!(comm_from_bytes(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(comm_from_bytes(b"ok\xff\0\0\0\0\0\0\0\0\0\0\0\0\0"), "ok\u{fffd}");
    }
}
