//! The pipeline end to end without a kernel: ring-buffer bytes as the eBPF
//! program writes them and /dev/kmsg records of a real report go through the
//! daemon's own reader, kernel-log reader, snapshotter and writer into a
//! temporary store. The one test that catches a broken join without root.

use std::{
    collections::VecDeque,
    io,
    path::Path,
    sync::{mpsc, Arc},
    thread,
};

use common::{
    eflags, kpresent, mpresent, present, MemcgPart, OomEvent, OomEventFull, PageCounters, OOM_EVENT_VERSION,
};

use super::{
    counters::Counters, events::EventReader, kernel_log::KernelLogReader, snapshotter::Snapshotter,
    writer::Writer,
};
use crate::{
    kernel::{memcg::Hierarchy, Machine, MemcgVersion},
    model::{run::Counter, Source},
    sources::kmsg::Kmsg,
    store::{Access, Filter, Store},
};

const BOOT: &str = "90e19252-c4f3-4f33-b61e-680af3ffcadb";
const CGROUP: &str = "/process_api/254e109ec0982371acb17d9fdb18841e/oomtest-manual";

/// What /dev/kmsg does: one record per `read`, then `WouldBlock`.
struct Records(VecDeque<Vec<u8>>);

impl io::Read for Records {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let record = self.0.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        buf[..record.len()].copy_from_slice(&record);
        Ok(record.len())
    }
}

/// The captured 6.18 report (dmesg form) as the /dev/kmsg records it
/// was read from: `prio,seq,usec,flags;text` (facility kern, level err).
fn kmsg_records(fixture: &str) -> Records {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(fixture);
    let text = std::fs::read_to_string(path).unwrap();
    let records = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .enumerate()
        .map(|(seq, line)| {
            let (stamp, text) = line.strip_prefix('[').unwrap().split_once("] ").unwrap();
            let (secs, micros) = stamp.trim().split_once('.').unwrap();
            let usec = secs.parse::<u64>().unwrap() * 1_000_000 + micros.parse::<u64>().unwrap();
            format!("3,{},{usec},-;{text}\n", 1_000 + seq).into_bytes()
        })
        .collect();
    Records(records)
}

/// As [`kmsg_records`], with the lines from the one that starts with
/// `from` on stamped `step_usec` apart: a slow machine's pace (under qemu
/// TCG a 5,000-task group walk prints its lines over about 90 s).
fn kmsg_records_paced(fixture: &str, from: &str, step_usec: u64) -> Records {
    let mut start = None;
    let records = kmsg_records(fixture)
        .0
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let text = String::from_utf8(record).unwrap();
            let (head, line) = text.split_once(';').unwrap();
            let fields: Vec<&str> = head.split(',').collect();
            if start.is_none() && line.starts_with(from) {
                start = Some((i, fields[2].parse::<u64>().unwrap()));
            }
            let usec = match start {
                Some((first, at)) => at + (i - first) as u64 * step_usec,
                None => fields[2].parse().unwrap(),
            };
            format!("{},{},{usec},{};{line}", fields[0], fields[1], fields[3]).into_bytes()
        })
        .collect();
    Records(records)
}

fn name<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0; N];
    out[..text.len()].copy_from_slice(text.as_bytes());
    out
}

/// The raw tracepoint program's event for the fixture's first kill
/// (pid 7558): the figures of its task-table row and `Killed process`
/// line, its 64 MiB cgroup at the limit, stamped 0.75 ms after the line
/// (as measured on 6.18).
fn event_of_the_first_kill() -> OomEventFull {
    let event = OomEvent {
        version: OOM_EVENT_VERSION,
        // What the raw tracepoint program sets: the victim's name, uid
        // and adj as values, its memory in the kernel's own units.
        present: present::COMM | present::UID | present::OOM_SCORE_ADJ,
        // A machine that never slept: both clocks agree.
        boot_ns: 558_908_182_000 + 750_000,
        mono_ns: 558_908_182_000 + 750_000,
        victim_pid: 7558,
        trigger_pid: 7558,
        trigger_tgid: 7558,
        victim_comm: name("oomhog-manual"),
        trigger_comm: name("oomhog-manual"),
        kpresent: kpresent::TGID
            | kpresent::TOTAL_VM
            | kpresent::RSS
            | kpresent::PGTABLES
            | kpresent::CGROUP_ID,
        victim_tgid: 7558,
        rss_pages: [419, 16_320, 0, 0],
        pgtables_bytes: 176_128,
        total_vm_pages: 51_944,
        cgroup_id: 6635,
        page_shift: 12,
        flags: eflags::HAS_MEMCG,
        memcg_key: 0xffff_8880_0abc_d000,
        ..OomEvent::ZERO
    };
    let mut memcg = MemcgPart {
        present: mpresent::CGROUP_PATH | mpresent::MEMCG | mpresent::MEMCG_SWAP | mpresent::MEMCG_MEMSW,
        cgroup_depth: 3,
        memcg_levels: 1,
        ..MemcgPart::ZERO
    };
    for (slot, part) in CGROUP.rsplit('/').filter(|p| !p.is_empty()).enumerate() {
        memcg.cgroup_names[slot] = name(part);
    }
    memcg.memcg[0] = PageCounters {
        usage: 16_384,
        max: 16_384,
        swap_usage: 16_384,
        swap_max: i64::MAX as u64 / 4096,
        ..PageCounters::default()
    };
    OomEventFull { event, memcg }
}

/// The victim's v1 cgroup as its files read a moment after the kill.
fn cgroup_tree(root: &Path) {
    let dir = root.join(CGROUP.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in [
        ("memory.usage_in_bytes", "67043328\n"),
        ("memory.limit_in_bytes", "67108864\n"),
        ("memory.max_usage_in_bytes", "67108864\n"),
        ("memory.failcnt", "20\n"),
        ("memory.stat", "cache 0\nrss 66813952\ntotal_inactive_file 0\n"),
        ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"),
        ("cgroup.procs", ""),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

#[test]
fn an_event_and_the_kernels_report_become_one_record_with_both_figures() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let cgroup_root = dir.path().join("cgroup/memory");
    cgroup_tree(&cgroup_root);
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(proc_root.join("7558")).unwrap();
    std::fs::write(proc_root.join("7558/cmdline"), b"oomhog-manual\x00--size\x00256M\x00").unwrap();

    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::channel();
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let writer_counters = Arc::clone(&counters);
    let writer = thread::spawn(move || Writer::new(store, writer_counters, None).run(rx));
    let (snapshots, snapshot_thread) = Snapshotter::new(
        Some(Hierarchy { version: MemcgVersion::V1, root: cgroup_root }),
        &proc_root,
        dir.path(),
    )
    .counting_misses_in(Arc::clone(&counters))
    .spawn(tx.clone())
    .unwrap();
    let machine = Machine {
        memcg_version: Some(MemcgVersion::V1),
        ram_pages: Some(6_000_000),
        swap_pages: Some(0),
        online_cpus: Some(2),
    };
    let mut reader = EventReader::new(tx.clone(), snapshots, BOOT.into(), machine, Arc::clone(&counters));
    let mut log_reader = KernelLogReader::new(BOOT.into(), None, tx, Arc::clone(&counters));

    // The event first, as on a real kill (the ring buffer wakes the
    // reader before the log's lines are read), then the report.
    reader.event(event_of_the_first_kill().as_bytes());
    reader.event(&[0u8; 12]);
    assert!(log_reader.drain(&mut Kmsg::from_source(kmsg_records("kmsg-oom-6.18-v1-memcg.txt"))));
    drop((reader, log_reader));
    snapshot_thread.join().unwrap();
    writer.join().unwrap();

    let store = Store::open(&db, Access::ReadOnly).unwrap();
    let kills = store.list(&Filter::default()).unwrap();
    let pids: Vec<i32> = kills.iter().map(|k| k.victim.pid).collect();
    assert_eq!(pids, [8355, 8354, 7558], "the report's three kills, once each, newest first");
    let joined = &kills[2];
    assert_eq!(joined.sources, [Source::Ebpf, Source::Kmsg, Source::Cgroup]);
    // From the event: the kill-time kernel state and the victim's figures.
    let kernel = joined.kernel.as_ref().expect("the event's kernel state");
    assert_eq!(kernel.rss_pages.map(|r| (r.anon, r.file)), Some((16_320, 419)));
    assert_eq!(kernel.cgroup_path.as_deref(), Some(CGROUP));
    assert_eq!(kernel.cgroup_version, Some(1), "stamped with the machine's memory controller");
    assert_eq!(joined.boot_id.as_deref(), Some(BOOT));
    // The kill-time counters in pages, in kB as the kernel's line says them.
    let f = joined.victim.figures;
    assert_eq!(
        (f.total_vm_kb, f.anon_rss_kb, f.file_rss_kb, f.shmem_rss_kb, f.pgtables_kb),
        (Some(207_776), Some(65_280), Some(1_676), Some(0), Some(172))
    );
    // From the report: what only the kernel's lines say.
    assert_eq!(joined.kmsg_usec, Some(558_908_182));
    assert_eq!(joined.oom.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!(joined.oom.oom_cgroup.as_deref(), Some(CGROUP));
    assert_eq!((joined.oom.memory_usage_kb, joined.oom.memory_limit_kb), (Some(65_536), Some(65_536)));
    assert!(joined.oom.memory_stat.as_ref().is_some_and(|s| s.iter().any(|(k, _)| k == "inactive_anon")));
    assert!(joined.oom.tasks.as_ref().is_some_and(|t| t.len() == 1), "{:?}", joined.oom.tasks);
    assert_eq!(joined.trigger.gfp_mask.as_deref(), Some("0xcc0(GFP_KERNEL)"));
    assert!(joined.kernel_report.iter().any(|l| l.contains("Killed process 7558 (oomhog-manual)")));
    // From the cgroup files, read after the event.
    let snapshot = joined.snapshot.as_ref().expect("the snapshot");
    assert_eq!(snapshot.memory_limit_bytes, Some(64 << 20));
    assert_eq!(snapshot.failcnt, Some(20));
    assert_eq!(joined.victim.cmdline.as_deref(), Some("oomhog-manual --size 256M"));
    // The two kills without an event are the report's alone.
    for kill in &kills[..2] {
        assert_eq!(kill.sources, [Source::Kmsg], "{kill:?}");
        assert_eq!(kill.victim.comm.as_deref(), Some("oomt-cbdb19"));
    }
    // The undecodable record is counted, not dropped silently.
    assert_eq!(store.loss_count("decode").unwrap(), 1);
    assert_eq!(counters.get(Counter::SnapshotsMissed), 0);
    assert_eq!((counters.get(Counter::EventsReceived), counters.get(Counter::Undecodable)), (2, 1));
}

/// A memory.oom.group kill: the program sends the cgroups' figures with the
/// first victim and a short event, referring to them, for every other one.
/// Each record gets them; a short event whose full one was lost gets none.
#[test]
fn the_victims_of_one_group_kill_share_the_figures_of_the_first() {
    let (tx, rx) = mpsc::channel();
    let (snapshots, _requests) = mpsc::channel();
    let machine = Machine {
        memcg_version: Some(MemcgVersion::V2),
        ram_pages: None,
        swap_pages: None,
        online_cpus: Some(2),
    };
    let counters = Arc::new(Counters::default());
    let mut reader = EventReader::new(tx, snapshots, BOOT.into(), machine, Arc::clone(&counters));
    let first = event_of_the_first_kill();
    reader.event(first.as_bytes());
    // A later member of the group: its own event, referring to the first's.
    fn member(first: &OomEvent, pid: i32, key: u64) -> OomEvent {
        let mut event = *first;
        event.victim_pid = pid;
        event.flags = eflags::SAME_MEMCG;
        event.memcg_key = key;
        event.boot_ns += 1_000 * pid as u64;
        event
    }
    reader.event(member(&first.event, 7559, first.event.memcg_key).as_bytes());
    reader.event(member(&first.event, 7560, first.event.memcg_key).as_bytes());
    reader.event(member(&first.event, 7561, 0xdead_0000).as_bytes());
    drop(reader);
    let kills: Vec<_> = rx
        .iter()
        .filter_map(|m| match m {
            super::writer::ToWriter::Kill(kill) => Some(*kill),
            _ => None,
        })
        .collect();
    let pids: Vec<i32> = kills.iter().map(|k| k.victim.pid).collect();
    assert_eq!(pids, [7558, 7559, 7560, 7561]);
    for kill in &kills[..3] {
        let kernel = kill.kernel.as_ref().expect("kernel state");
        assert_eq!(kernel.cgroup_path.as_deref(), Some(CGROUP), "pid {}", kill.victim.pid);
        assert_eq!(kernel.memcg[0].memory_limit_bytes, 64 << 20);
        assert_eq!(kernel.shared_with_earlier_victim, kill.victim.pid != 7558);
    }
    let orphan = kills[3].kernel.as_ref().expect("its own figures");
    assert!(orphan.memcg.is_empty() && orphan.cgroup_path.is_none(), "{orphan:?}");
    assert_eq!(orphan.rss_pages.map(|r| r.anon), Some(16_320), "the victim's own figures stay");
    assert_eq!(counters.get(Counter::EventsReceived), 4);
}

/// The records a real writer stores from `records` read as /dev/kmsg, and
/// the pipeline's counters.
fn stored_from_kernel_log<R: std::io::Read>(records: R) -> (Vec<crate::model::Kill>, Arc<Counters>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let (tx, rx) = mpsc::channel();
    let counters = Arc::new(Counters::default());
    let writer = thread::spawn({
        let counters = Arc::clone(&counters);
        move || Writer::new(store, counters, None).run(rx)
    });
    let mut log_reader = KernelLogReader::new(BOOT.into(), None, tx, Arc::clone(&counters));
    assert!(log_reader.drain(&mut Kmsg::from_source(records)));
    drop(log_reader);
    writer.join().unwrap();
    let kills = Store::open(&db, Access::ReadOnly).unwrap().list(&Filter::default()).unwrap();
    (kills, counters)
}

/// A memory.oom.group kill's report is kept once, with the victim the kernel
/// chose; its 50 members keep their own lines and the header's scalar facts.
/// Before, every member copied the 50-row task table and the header, so the
/// store grew with the square of the group (a 5,000-task group kill made the
/// daemon itself run out of memory).
#[test]
fn a_group_kills_report_is_stored_once_with_the_chosen_victim() {
    let (kills, counters) = stored_from_kernel_log(kmsg_records("kmsg-oom-6.12-v2-group.txt"));
    let group: Vec<_> = kills.iter().filter(|k| k.oom.group_cgroup.as_deref() == Some("/group")).collect();
    assert_eq!(group.len(), 50, "49 sleepers and the hog, the hog's repeated line joined");
    assert_eq!(counters.get(Counter::KernelCountedTwice), 1, "the hog's second line, counted");
    let with_table: Vec<_> = group.iter().filter(|k| k.oom.tasks.is_some()).collect();
    assert_eq!(with_table.len(), 1, "one copy of the task table");
    let chosen = with_table[0];
    assert_eq!(chosen.victim.comm.as_deref(), Some("oomt-grphog"));
    assert_eq!(chosen.oom.tasks.as_ref().map(Vec::len), Some(50), "the table names every task");
    assert!(chosen.kernel_report.len() > 100, "the header's lines, with the chosen victim");
    for member in group.iter().filter(|k| k.id != chosen.id) {
        assert_eq!(member.victim.comm.as_deref(), Some("oomt-sleeper"));
        assert!(member.oom.tasks.is_none() && member.oom.memory_stat.is_none());
        assert_eq!(member.kernel_report.len(), 1, "its own Killed process line: {:?}", member.kernel_report);
        // The header's scalar facts stay with every member.
        assert_eq!(member.oom.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(member.oom.oom_cgroup.as_deref(), Some("/group"));
        assert!(member.trigger.comm.is_some() && member.oom.memory_limit_kb.is_some());
    }
}

/// The kernel matrix's 5,000-task group kill stored its chosen victim
/// twice on 6.1 and 6.12 (`pid N recorded 2 times`): the kernel prints the
/// chosen victim's `Killed process` line again when its walk reaches it,
/// last of the group, and under qemu TCG that was more than the join's
/// window after its first line, so the repeat became a record of its own.
/// The repeat is a fact about the first kill, whenever it comes.
#[test]
fn a_group_kills_chosen_victim_repeated_after_a_long_walk_is_one_record() {
    // 0.3 s a line from the group line on: the hog's repeat (the walk's
    // 50th line) comes 15 s after its first line.
    let records = kmsg_records_paced("kmsg-oom-6.12-v2-group.txt", "Tasks in /group", 300_000);
    let (kills, _) = stored_from_kernel_log(records);
    let hog: Vec<_> = kills.iter().filter(|k| k.victim.pid == 229).collect();
    assert_eq!(hog.len(), 1, "one victim, one record: {hog:#?}");
    assert_eq!(
        hog[0].oom.group_cgroup.as_deref(),
        Some("/group"),
        "the repeat joined the first line's record"
    );
    assert!(hog[0].oom.tasks.is_some(), "with the report's task table");
    let group = kills.iter().filter(|k| k.oom.group_cgroup.as_deref() == Some("/group")).count();
    assert_eq!(group, 50);
}
