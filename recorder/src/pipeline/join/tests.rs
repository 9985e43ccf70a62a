//! The join's rules against a real (temporary) store.

use super::*;
use crate::{
    model::{Figures, KernelState, Kind, Oom, Reaped, Trigger, Victim},
    store::{Access, Filter},
};

fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
    (store, dir)
}

fn ebpf(pid: i32, mono_ns: u64) -> Kill {
    Kill {
        boot_id: Some("b".into()),
        boot_ns: Some(mono_ns + 7),
        mono_ns: Some(mono_ns),
        time_ns: Some(1_000),
        sources: vec![Source::Ebpf],
        victim: Victim {
            pid,
            comm: Some("hog".into()),
            figures: Figures { anon_rss_kb: Some(100), ..Figures::default() },
            ..Victim::default()
        },
        trigger: Trigger { pid: Some(pid), comm: Some("hog".into()), ..Trigger::default() },
        ..Kill::default()
    }
}

fn kmsg(pid: i32, usec: u64) -> Kill {
    Kill {
        boot_id: Some("b".into()),
        kmsg_usec: Some(usec),
        sources: vec![Source::Kmsg],
        victim: Victim {
            pid,
            figures: Figures { anon_rss_kb: Some(100), total_vm_kb: Some(300), ..Figures::default() },
            ..Victim::default()
        },
        trigger: Trigger { gfp_mask: Some("0xcc0(GFP_KERNEL)".into()), ..Trigger::default() },
        oom: Oom {
            constraint: Some("CONSTRAINT_MEMCG".into()),
            memory_stat: Some(vec![("anon".into(), "67108864".into())]),
            ..Oom::default()
        },
        kernel_report: vec!["Killed process …".into()],
        ..Kill::default()
    }
}

#[test]
fn an_event_and_its_line_are_one_kill() {
    // Measured on 6.18: the log stamp came 0.75 ms before the eBPF stamp.
    let stamps = |kill: &Kill| Stamps::of_kill(kill);
    let event = stamps(&ebpf(42, 558_908_935_737));
    let line = stamps(&kmsg(42, 558_908_182));
    assert_eq!(distance(event, line), Some(753_737));
    assert_eq!(distance(line, event), Some(753_737));
    assert_eq!(distance(event, stamps(&kmsg(42, 600_000_000))), None, "41 s later: another kill");
    assert_eq!(distance(event, stamps(&ebpf(42, 558_908_935_738))), None, "two events: two kills");
    assert_eq!(distance(event, event), Some(0), "a replayed event");
}

#[test]
fn the_event_keeps_its_figures_and_the_report_adds_its_own_whichever_comes_first() {
    let mut event = ebpf(42, 5_000_000);
    event.victim.figures.anon_rss_kb = Some(101);
    let line = kmsg(42, 5_000);
    for (first, second) in [(&event, &line), (&line, &event)] {
        let (mut store, _dir) = store();
        let id = record(&mut store, first).unwrap().id();
        assert_eq!(record(&mut store, second).unwrap(), Recorded::Merged(id));
        assert_eq!(
            record(&mut store, &line).unwrap(),
            Recorded::Duplicate(id),
            "a replayed line adds nothing"
        );
        assert_eq!(
            record(&mut store, &event).unwrap(),
            Recorded::Duplicate(id),
            "a replayed event adds nothing"
        );
        let merged = store.get(id).unwrap().unwrap();
        assert_eq!(merged.sources, [Source::Ebpf, Source::Kmsg]);
        assert_eq!(merged.victim.figures.anon_rss_kb, Some(101), "eBPF wins");
        assert_eq!(merged.victim.figures.total_vm_kb, Some(300), "the log fills gaps");
        assert_eq!(merged.victim.comm.as_deref(), Some("hog"));
        assert_eq!(merged.trigger.gfp_mask.as_deref(), Some("0xcc0(GFP_KERNEL)"));
        assert_eq!(merged.trigger.comm.as_deref(), Some("hog"));
        assert_eq!(merged.oom.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(merged.oom.memory_stat, Some(vec![("anon".into(), "67108864".into())]));
        assert_eq!(merged.boot_ns, Some(5_000_007));
        assert_eq!(merged.kmsg_usec, Some(5_000));
        assert_eq!(merged.kernel_report.len(), 1);
        assert_eq!(store.list(&Filter::default()).unwrap().len(), 1);
    }
}

#[test]
fn kernel_state_comes_from_ebpf_whichever_arrives_first() {
    let state = KernelState { page_size: 4096, age_ms: Some(5), ..Default::default() };
    let event = Kill { kernel: Some(state.clone()), ..ebpf(42, 5_000_000) };
    let line = kmsg(42, 5_000);
    for (first, second) in [(&event, &line), (&line, &event)] {
        let (mut store, _dir) = store();
        let id = record(&mut store, first).unwrap().id();
        record(&mut store, second).unwrap();
        assert_eq!(store.get(id).unwrap().unwrap().kernel, Some(state.clone()));
    }
    let (mut store, _dir) = store();
    let id = record(&mut store, &line).unwrap().id();
    assert_eq!(store.get(id).unwrap().unwrap().kernel, None, "the log alone knows no kernel state");
}

#[test]
fn the_line_says_which_kind_of_victim_it_was() {
    let (mut store, _dir) = store();
    let exiting = Kill { kind: Kind::Exiting, ..ebpf(42, 5_000_000) };
    let id = record(&mut store, &exiting).unwrap().id();
    record(&mut store, &kmsg(42, 5_000)).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap().kind, Kind::Kill, "a Killed process line proves a kill");
    // An "already exiting" line for an event: marked, not killed.
    let id = record(&mut store, &ebpf(43, 9_000_000)).unwrap().id();
    let line =
        Kill { kind: Kind::Exiting, kernel_report: vec!["… is already exiting".into()], ..kmsg(43, 9_000) };
    record(&mut store, &line).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap().kind, Kind::Exiting);
}

#[test]
fn a_lone_line_is_a_record_and_annotations_only_add() {
    let (mut store, _dir) = store();
    // The log first (catch-up), then nothing else: a kmsg-only record.
    let lone = record(&mut store, &kmsg(200, 1_000)).unwrap();
    assert!(matches!(lone, Recorded::Inserted(_)));
    assert_eq!(store.get(lone.id()).unwrap().unwrap().sources, [Source::Kmsg]);
    // The reaper's figures add to it, and make no record of their own.
    let reaped = Reaped { anon_rss_kb: 0, file_rss_kb: 4, shmem_rss_kb: 0 };
    let fact =
        |pid, usec| Kill { oom: Oom { reaped: Some(reaped.clone()), ..Oom::default() }, ..kmsg(pid, usec) };
    assert_eq!(annotate(&mut store, &fact(200, 1_200)).unwrap(), Some(lone.id()));
    assert_eq!(store.get(lone.id()).unwrap().unwrap().oom.reaped, Some(reaped.clone()));
    assert_eq!(annotate(&mut store, &fact(300, 9_000_000)).unwrap(), None);
    // A snapshot joins the event of the same boot clock.
    let event = record(&mut store, &ebpf(42, 5_000_000)).unwrap().id();
    let snapshot = Kill {
        boot_id: Some("b".into()),
        boot_ns: Some(5_000_007),
        sources: vec![Source::Cgroup],
        victim: Victim { pid: 42, cmdline: Some("hog --big".into()), ..Victim::default() },
        memory_limit_bytes: Some(64 << 20),
        ..Kill::default()
    };
    assert_eq!(annotate(&mut store, &snapshot).unwrap(), Some(event));
    let got = store.get(event).unwrap().unwrap();
    assert_eq!(got.sources, [Source::Ebpf, Source::Cgroup]);
    assert_eq!((got.victim.cmdline.as_deref(), got.memory_limit_bytes), (Some("hog --big"), Some(64 << 20)));
    assert_eq!(store.list(&Filter::default()).unwrap().len(), 2);
}

#[test]
fn imports_are_found_again_by_fingerprint() {
    let (mut store, _dir) = store();
    let imported =
        Kill { boot_id: None, fingerprint: Some("abc".into()), sources: vec![Source::Import], ..kmsg(7, 1) };
    let first = record(&mut store, &imported).unwrap();
    assert!(matches!(first, Recorded::Inserted(_)));
    assert_eq!(record(&mut store, &imported).unwrap(), Recorded::Duplicate(first.id()));
    let got = store.get(first.id()).unwrap().unwrap();
    assert_eq!((got.boot_id, got.time_ns), (None, None), "unknown stays unknown");
}

#[test]
fn an_import_of_the_running_boot_joins_the_daemons_record() {
    let (mut store, _dir) = store();
    // The daemon's record: the eBPF event and its kernel line.
    let event = record(&mut store, &ebpf(42, 558_908_935_737)).unwrap().id();
    assert_eq!(record(&mut store, &kmsg(42, 558_908_182)).unwrap(), Recorded::Merged(event));
    // The same line in a `dmesg` of this boot: its fingerprint is new, its
    // boot, pid and stamp are the record's.
    let imported =
        Kill { fingerprint: Some("f00d".into()), sources: vec![Source::Import], ..kmsg(42, 558_908_182) };
    assert_eq!(record(&mut store, &imported).unwrap(), Recorded::Merged(event));
    let got = store.get(event).unwrap().unwrap();
    assert_eq!(got.sources, [Source::Ebpf, Source::Kmsg, Source::Import]);
    assert_eq!(got.fingerprint.as_deref(), Some("f00d"), "found by it the next time");
    assert_eq!(record(&mut store, &imported).unwrap(), Recorded::Duplicate(event));
    // An import of another boot, or without one, is its own record.
    let elsewhere = Kill { boot_id: Some("c".into()), fingerprint: Some("beef".into()), ..imported.clone() };
    assert!(matches!(record(&mut store, &elsewhere).unwrap(), Recorded::Inserted(_)));
    assert_eq!(store.list(&Filter::default()).unwrap().len(), 2);
}
