//! `oomrecorder run`: the pipeline from the kernel to the store.
//!
//! Sources joined to one writer by a channel: the ring buffer of the eBPF
//! program and /dev/kmsg, both on `AsyncFd` in one event loop with the signal
//! handling and the loss counters, and the writer (`writer.rs`, a thread that
//! owns the SQLite connection). The sources never wait on the disk.

use std::{
    future::pending,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use common::{MarkVictimLayout, OomEvent};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};

use crate::{
    caps, cgroupfs, clock, journal,
    kernel::{self, AttachPoint},
    kernel_log::KernelLogReader,
    kill::Kill,
    kmsg::Kmsg,
    loader::{self, CounterMap, LoadError, Probe},
    retention::Retention,
    runs::{self, Run, RunCounters},
    snapshotter::{self, Snapshotter},
    store::{Access, Loss, Store, StoreError},
    tracefs::{self, TracefsError},
    writer::{describe, KmsgHealth, RunTracker, ToWriter, Writer},
};

/// How often the reader polls the program's loss counters.
const COUNTER_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "oomrecorder run needs {missing} (run as root, or grant them to the service); nothing was changed"
    )]
    MissingCapabilities { missing: String },
    #[error("cannot read this process's capabilities")]
    Capabilities(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot read the boot id")]
    BootId(#[source] std::io::Error),
    #[error("setting up the event loop")]
    Runtime(#[source] std::io::Error),
}

pub struct DaemonConfig {
    pub db: PathBuf,
    /// Delete kills older than this (at start, then daily); `None` keeps all.
    pub retention: Option<Duration>,
    /// Keep at most this many kills; `None`: no cap.
    pub max_records: Option<u64>,
    /// Use the tracepoint program whatever the kernel offers (tests).
    pub force_tracepoint: bool,
}

/// What one run did, logged at exit and returned for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Victims the eBPF program saw.
    pub seen: u64,
    /// Events that reached user space.
    pub received: u64,
    /// Records committed to the store.
    pub stored: u64,
    /// Events lost to a full ring buffer.
    pub ringbuf_full: u64,
    /// Events user space could not decode.
    pub undecodable: u64,
    /// Records the store refused until the end (logged in full).
    pub unstored: u64,
    /// Kernel-log records read, and lost before they could be read.
    pub kmsg_records: u64,
    pub kmsg_lost: u64,
}

/// Runs the daemon until SIGTERM or SIGINT. Every check that can fail for a
/// reason the operator must fix happens before the program is attached.
pub fn run(config: &DaemonConfig) -> Result<Summary, DaemonError> {
    let cap_eff = caps::read_cap_eff(Path::new("/proc")).map_err(DaemonError::Capabilities)?;
    let missing = caps::missing_for_daemon(cap_eff);
    if !missing.is_empty() {
        return Err(DaemonError::MissingCapabilities { missing: missing.join(" and ") });
    }
    let mut store = Store::open(&config.db, Access::ReadWrite)?;
    let boot_id = clock::read_boot_id(Path::new("/proc")).map_err(DaemonError::BootId)?;
    // The kernel's kill count before the program is attached: a kill between
    // this read and the attach is counted here and found by the kernel-log
    // catch-up (its time is after `started_ns`), so the audit still balances.
    let started_ns = clock::wall_ns_now();
    let vmstat_start = runs::read_vmstat_oom_kill(Path::new("/proc"))
        .map_err(|e| log::warn!("{e}: `oomrecorder status` cannot audit this run"))
        .ok();
    let (mut plan, memcg_version) = kernel::read_plan();
    if config.force_tracepoint {
        plan.attach = AttachPoint::Tracepoint;
        plan.attach_reason = "forced by --force-tracepoint".to_owned();
    }
    let machine = kernel::Machine::read(memcg_version);
    log::info!("attach point: {} ({})", plan.attach.as_str(), plan.attach_reason);
    let absent: Vec<String> = plan
        .fields
        .iter()
        .filter_map(|f| f.status.as_ref().err().map(|why| format!("{} ({why})", f.name)))
        .collect();
    if plan.attach == AttachPoint::RawTracepoint && !absent.is_empty() {
        log::warn!("this kernel's BTF lacks {}: those figures are recorded as unknown", absent.join(", "));
    }
    // The tracepoint's record layout: needed by the fallback program only.
    let mark_victim = match tracefs::ensure_mounted().and_then(|root| tracefs::read_mark_victim(&root)) {
        Ok(mv) => Some(mv),
        Err(e) if plan.attach == AttachPoint::RawTracepoint => {
            log::debug!("tracefs not needed by the raw tracepoint: {e}");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let tp_layout = mark_victim.as_ref().map_or(MarkVictimLayout::ABSENT, |mv| mv.layout);
    let mut attached = plan.attach;
    loader::raise_memlock_limit();
    let probe = match Probe::load(plan.attach, &tp_layout, &plan.layout) {
        Ok(probe) => {
            log_attached(plan.attach, mark_victim.as_ref());
            probe
        }
        // A rejected raw tracepoint program is a bug, but the recorder must
        // still record: fall back to the tracepoint, loudly.
        Err(e) if plan.attach == AttachPoint::RawTracepoint && mark_victim.is_some() => {
            log::error!(
                "the raw tracepoint program did not load ({}); falling back to the tracepoint: \
                 kernel-state figures are recorded as unknown",
                chain(&e)
            );
            let probe = Probe::load(AttachPoint::Tracepoint, &tp_layout, &plan.layout)?;
            attached = AttachPoint::Tracepoint;
            log_attached(AttachPoint::Tracepoint, mark_victim.as_ref());
            probe
        }
        Err(e) => return Err(e.into()),
    };
    log::info!("recording to {}", store.path().display());
    loader::release_startup_memory();

    let cursor = store.kmsg_cursor(&boot_id)?;
    let kmsg = match Kmsg::open(Path::new("/dev/kmsg")) {
        Ok(kmsg) => Some(kmsg),
        Err(e) => {
            log::warn!(
                "cannot read /dev/kmsg ({e}): kills are recorded without the kernel's report \
                 (grant CAP_SYSLOG, or set kernel.dmesg_restrict=0)"
            );
            None
        }
    };

    let journal_cursor = store.state(journal::CURSOR_KEY)?;
    let health = Arc::new(KmsgHealth::default());
    let (tx, rx) = mpsc::channel();
    let retention = (config.retention.is_some() || config.max_records.is_some())
        .then(|| Retention::new(config.retention, config.max_records));
    let counters = Arc::new(RunCounters::default());
    let run_row = Run {
        pid: std::process::id(),
        boot_id: boot_id.clone(),
        started_ns,
        last_update_ns: clock::wall_ns_now(),
        // The kind alone, as the schema documents it (as_str names the hook too).
        attach_point: match attached {
            AttachPoint::RawTracepoint => "raw_tracepoint",
            AttachPoint::Tracepoint => "tracepoint",
        }
        .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        vmstat_oom_kill_start: vmstat_start,
        vmstat_oom_kill_now: vmstat_start,
        ..Run::default()
    };
    // Without its row the run still records; only `status` is blind to it.
    let run_id = store
        .start_run(&run_row)
        .map_err(|e| {
            log::error!("cannot record this run in the store ({e}): `oomrecorder status` will not see it")
        })
        .ok();
    let mut writer = Writer::new(store, Arc::clone(&health), retention);
    if let Some(id) = run_id {
        writer = writer.with_run(RunTracker::new(id, run_row, Arc::clone(&counters), "/proc".into()));
    }
    let writer = thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(DaemonError::Runtime)?;

    let stop = Arc::new(AtomicBool::new(false));
    let journal_thread = {
        let (tx, stop, live, boot_id) = (tx.clone(), Arc::clone(&stop), kmsg.is_none(), boot_id.clone());
        thread::Builder::new()
            .name("journal".into())
            .spawn(move || journal::follow(&boot_id, journal_cursor, live, tx, stop))
            .map_err(DaemonError::Runtime)?
    };
    let hierarchy = cgroupfs::memory_hierarchy(Path::new("/sys/fs/cgroup"));
    if hierarchy.is_none() {
        log::warn!(
            "no memory cgroup hierarchy under /sys/fs/cgroup: kills are recorded without cgroup snapshots"
        );
    }
    let (snapshots, snapshot_thread) = Snapshotter::new(hierarchy, Path::new("/proc"), Path::new("/"))
        .counting_misses_in(Arc::clone(&counters))
        .spawn(tx.clone())
        .map_err(DaemonError::Runtime)?;
    let kernel_log =
        kmsg.map(|kmsg| (kmsg, KernelLogReader::new(boot_id.clone(), cursor, tx.clone(), health)));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    let reader_result =
        runtime.block_on(read_loop(probe, kernel_log, tx, snapshots, boot_id, machine, counters));
    stop.store(true, Ordering::Relaxed);
    if journal_thread.join().is_err() {
        log::error!("the journal reader panicked");
    }
    // The reader dropped its request sender: the snapshotter finishes what it has.
    if snapshot_thread.join().is_err() {
        log::error!("the cgroup snapshotter panicked");
    }
    // Every sender is gone: the writer drains and returns.
    let writer_stats = writer.join().unwrap_or_else(|_| {
        log::error!("the store writer panicked; records it held are lost (see the log above)");
        crate::writer::WriterStats::default()
    });
    let mut summary = reader_result?;
    summary.stored = writer_stats.stored;
    summary.unstored = writer_stats.unstored;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    log::info!(
        "stopped: {} victims seen by the kernel program, {} received, {} writes stored, {} lost to a full ring buffer, {} undecodable, {} not stored; {} kernel log records read, {} lost",
        summary.seen,
        summary.received,
        summary.stored,
        summary.ringbuf_full,
        summary.undecodable,
        summary.unstored,
        summary.kmsg_records,
        summary.kmsg_lost
    );
    Ok(summary)
}

/// An error and its sources on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

fn log_attached(attach: AttachPoint, mark_victim: Option<&tracefs::MarkVictim>) {
    match attach {
        AttachPoint::RawTracepoint => {
            log::info!("attached oom_mark_victim_raw to raw tracepoint mark_victim")
        }
        AttachPoint::Tracepoint => {
            match mark_victim.map(|mv| &mv.absent) {
                Some(absent) if !absent.is_empty() => log::warn!(
                    "this kernel's oom:mark_victim lacks {}: those figures are recorded as unknown",
                    absent.join(", ")
                ),
                _ => log::info!("oom:mark_victim carries every field the recorder reads"),
            }
            log::info!("attached oom_mark_victim to tracepoint oom:mark_victim")
        }
    }
}

/// Waits until the kernel log is readable; never, when it is not read.
async fn kmsg_readable(
    fd: &mut Option<AsyncFd<Kmsg>>,
) -> std::io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, Kmsg>> {
    match fd {
        Some(fd) => fd.readable_mut().await,
        None => pending().await,
    }
}

/// Reads the ring buffer and the kernel log until a shutdown signal, then
/// drains both.
async fn read_loop(
    probe: Probe,
    kernel_log: Option<(Kmsg, KernelLogReader)>,
    tx: mpsc::Sender<ToWriter>,
    snapshots: mpsc::Sender<snapshotter::Request>,
    boot_id: String,
    machine: kernel::Machine,
    run_counters: Arc<RunCounters>,
) -> Result<Summary, DaemonError> {
    let Probe { ebpf, events, counters } = probe;
    // Register the handlers before READY=1, so a stop right after start-up
    // still drains and exits 0.
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged until
    // the AsyncFd (its only owner from here on) is dropped.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| DaemonError::Runtime(e.into()))?;
    let mut reader =
        EventReader { tx, snapshots, boot_id, machine, summary: Summary::default(), counters: run_counters };
    let (mut kmsg_fd, mut log_reader) = match kernel_log {
        Some((kmsg, log_reader)) => {
            // SAFETY: Kmsg owns its file, which stays open and unchanged until
            // the AsyncFd (its only owner from here on) is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(kmsg, Interest::READABLE) }
                .map_err(|e| DaemonError::Runtime(e.into()))?;
            (Some(fd), Some(log_reader))
        }
        None => (None, None),
    };

    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        log::warn!("could not notify the service manager (READY=1): {e}");
    }
    let mut poll = tokio::time::interval(COUNTER_POLL);
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(DaemonError::Runtime)?;
                reader.drain(guard.get_inner_mut());
                guard.clear_ready();
                // Current counts for the run row (status compares victims
                // seen with events received): one map read per wake-up.
                reader.check_counters(&counters);
            }
            guard = kmsg_readable(&mut kmsg_fd) => {
                let mut guard = guard.map_err(DaemonError::Runtime)?;
                let healthy = log_reader.as_mut().is_some_and(|r| r.drain(guard.get_inner_mut()));
                guard.clear_ready();
                if !healthy {
                    kmsg_fd = None;
                }
            }
            _ = poll.tick() => reader.check_counters(&counters),
            _ = sigterm.recv() => { log::info!("SIGTERM: draining and stopping"); break; }
            _ = sigint.recv() => { log::info!("SIGINT: draining and stopping"); break; }
        }
        reader.publish(log_reader.as_ref().map(|r| r.stats));
    }
    // Detach first, then drain: a victim marked between the last drain and
    // the detach would otherwise sit in the ring buffer and be lost with it
    // (a kill while the service stops). The maps outlive the program.
    drop(ebpf);
    reader.drain(ring.get_mut());
    reader.check_counters(&counters);
    if let (Some(fd), Some(log_reader)) = (kmsg_fd.as_mut(), log_reader.as_mut()) {
        log_reader.drain(fd.get_mut());
    }
    if let Some(log_reader) = &log_reader {
        reader.summary.kmsg_records = log_reader.stats.records;
        reader.summary.kmsg_lost = log_reader.stats.lost;
    }
    reader.publish(log_reader.as_ref().map(|r| r.stats));
    Ok(reader.summary)
}

struct EventReader {
    tx: mpsc::Sender<ToWriter>,
    snapshots: mpsc::Sender<snapshotter::Request>,
    boot_id: String,
    machine: kernel::Machine,
    summary: Summary,
    counters: Arc<RunCounters>,
}

impl EventReader {
    /// Hands this run's counters to the writer, which stores them in the
    /// run's row (plain stores: each counter has this one owner).
    fn publish(&self, kmsg: Option<crate::kernel_log::KernelLogStats>) {
        let c = &self.counters;
        let set = |counter: &std::sync::atomic::AtomicU64, value| counter.store(value, Ordering::Relaxed);
        set(&c.victims_seen, self.summary.seen);
        set(&c.events_received, self.summary.received);
        set(&c.ringbuf_full, self.summary.ringbuf_full);
        set(&c.undecodable, self.summary.undecodable);
        if let Some(kmsg) = kmsg {
            set(&c.kmsg_records, kmsg.records);
            set(&c.kmsg_lost, kmsg.lost);
        }
    }

    fn drain(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) {
        while let Some(item) = ring.next() {
            self.event(&item);
        }
    }

    /// One ring-buffer record, as the program wrote it: decoded, recorded,
    /// and its victim's cgroup handed to the snapshotter.
    fn event(&mut self, bytes: &[u8]) {
        self.summary.received += 1;
        match OomEvent::decode(bytes) {
            Ok(event) => {
                let time_ns = clock::boot_to_wall_ns(event.boot_ns);
                let mut kill = Kill::from_event(&event, &self.boot_id, time_ns, clock::wall_ns_now());
                let request = snapshotter::Request {
                    pid: event.victim_pid,
                    boot_id: self.boot_id.clone(),
                    boot_ns: event.boot_ns,
                    cgroup_path: kill.kernel.as_ref().and_then(|k| k.cgroup_path.clone()),
                };
                if let Some(state) = kill.kernel.as_mut() {
                    self.machine.stamp(state);
                }
                // The record before the snapshot request: the snapshot's
                // facts then reach the writer after the record they
                // annotate (one channel, sends ordered by happens-before).
                // Both are channel sends: the cgroup, which may be removed
                // within milliseconds, is read microseconds later.
                self.send(ToWriter::Kill(Box::new(kill)));
                if self.snapshots.send(request).is_err() {
                    self.counters.snapshots_missed.fetch_add(1, Ordering::Relaxed);
                    log::warn!("the cgroup snapshotter is gone; pid {} gets no snapshot", event.victim_pid);
                }
            }
            Err(e) => {
                self.summary.undecodable += 1;
                log::error!("undecodable event from the kernel program ({e}); counted as lost");
                self.send(ToWriter::Loss(self.loss("decode", 1, Some(e.to_string()))));
            }
        }
    }

    /// Reads the program's counters and records any new ring-buffer loss.
    fn check_counters(&mut self, counters: &CounterMap) {
        match counters.read() {
            Ok(now) => {
                self.summary.seen = now.seen;
                let new = now.ringbuf_full.saturating_sub(self.summary.ringbuf_full);
                if new > 0 {
                    self.summary.ringbuf_full = now.ringbuf_full;
                    log::error!("{new} OOM victims were lost: the ring buffer was full (reader too slow)");
                    self.send(ToWriter::Loss(self.loss("ringbuf_full", new, None)));
                }
            }
            Err(e) => log::warn!("cannot read the kernel program's counters: {e}"),
        }
    }

    fn loss(&self, reason: &'static str, count: u64, detail: Option<String>) -> Loss {
        Loss { time_ns: clock::wall_ns_now(), boot_id: self.boot_id.clone(), reason, count, detail }
    }

    fn send(&self, message: ToWriter) {
        // The writer only stops after the reader drops its sender, so a send
        // fails only if the writer thread died; say what was not handed over.
        if let Err(mpsc::SendError(message)) = self.tx.send(message) {
            log::error!("store writer is gone; not recorded: {}", describe(&message));
        }
    }
}

/// The pipeline end to end without a kernel: ring-buffer bytes as the eBPF
/// program writes them and /dev/kmsg records of a real report go through the
/// daemon's own reader, kernel-log reader, snapshotter and writer into a
/// temporary store. The one test that catches a broken join without root.
#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, io, path::Path};

    use common::{kpresent, present, PageCounters, OOM_EVENT_VERSION};

    use super::*;
    use crate::{cgroupfs::Hierarchy, kill::Source, writer::Writer};

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

    fn name<const N: usize>(text: &str) -> [u8; N] {
        let mut out = [0; N];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out
    }

    /// The raw tracepoint program's event for the fixture's first kill
    /// (pid 7558): the figures of its task-table row and `Killed process`
    /// line, its 64 MiB cgroup at the limit, stamped 0.75 ms after the line
    /// (as measured on 6.18).
    fn event_of_the_first_kill() -> OomEvent {
        let mut event = OomEvent {
            version: OOM_EVENT_VERSION,
            present: present::COMM
                | present::TOTAL_VM
                | present::ANON_RSS
                | present::FILE_RSS
                | present::SHMEM_RSS
                | present::UID
                | present::PGTABLES
                | present::OOM_SCORE_ADJ,
            // A machine that never slept: both clocks agree.
            boot_ns: 558_908_182_000 + 750_000,
            mono_ns: 558_908_182_000 + 750_000,
            victim_pid: 7558,
            total_vm_kb: 207_776,
            anon_rss_kb: 65_280,
            file_rss_kb: 1_676,
            pgtables_kb: 172,
            trigger_pid: 7558,
            trigger_tgid: 7558,
            victim_comm: name("oomhog-manual"),
            trigger_comm: name("oomhog-manual"),
            kpresent: kpresent::TGID
                | kpresent::RSS
                | kpresent::PGTABLES
                | kpresent::CGROUP_PATH
                | kpresent::CGROUP_ID
                | kpresent::MEMCG
                | kpresent::MEMCG_SWAP
                | kpresent::MEMCG_MEMSW,
            victim_tgid: 7558,
            rss_pages: [419, 16_320, 0, 0],
            pgtables_bytes: 176_128,
            total_vm_pages: 51_944,
            cgroup_id: 6635,
            cgroup_depth: 3,
            memcg_levels: 1,
            page_shift: 12,
            ..OomEvent::ZERO
        };
        for (slot, part) in CGROUP.rsplit('/').filter(|p| !p.is_empty()).enumerate() {
            event.cgroup_names[slot] = name(part);
        }
        event.memcg[0] = PageCounters {
            usage: 16_384,
            max: 16_384,
            swap_usage: 16_384,
            swap_max: i64::MAX as u64 / 4096,
            ..PageCounters::default()
        };
        event
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

        let health = Arc::new(KmsgHealth::default());
        let counters = Arc::new(RunCounters::default());
        let (tx, rx) = mpsc::channel();
        let store = Store::open(&db, Access::ReadWrite).unwrap();
        let writer_health = Arc::clone(&health);
        let writer = thread::spawn(move || Writer::new(store, writer_health, None).run(rx));
        let (snapshots, snapshot_thread) = Snapshotter::new(
            Some(Hierarchy { version: cgroupfs::Version::V1, root: cgroup_root }),
            &proc_root,
            dir.path(),
        )
        .counting_misses_in(Arc::clone(&counters))
        .spawn(tx.clone())
        .unwrap();
        let machine = kernel::Machine {
            memcg_version: Some(kernel::MemcgVersion::V1),
            ram_pages: Some(6_000_000),
            swap_pages: Some(0),
        };
        let mut reader = EventReader {
            tx: tx.clone(),
            snapshots,
            boot_id: BOOT.into(),
            machine,
            summary: Summary::default(),
            counters: Arc::clone(&counters),
        };
        let mut log_reader = KernelLogReader::new(BOOT.into(), None, tx, Arc::clone(&health));

        // The event first, as on a real kill (the ring buffer wakes the
        // reader before the log's lines are read), then the report.
        reader.event(event_of_the_first_kill().as_bytes());
        reader.event(&[0u8; 12]);
        assert!(log_reader.drain(&mut Kmsg::from_source(kmsg_records("kmsg-oom-6.18-v1-memcg.txt"))));
        drop((reader, log_reader));
        snapshot_thread.join().unwrap();
        writer.join().unwrap();

        let store = Store::open(&db, Access::ReadOnly).unwrap();
        let kills = store.list(&crate::store::Filter::default()).unwrap();
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
        assert_eq!(joined.victim.anon_rss_kb, Some(65_280));
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
        assert_eq!(counters.snapshots_missed.load(Ordering::Relaxed), 0);
    }
}
