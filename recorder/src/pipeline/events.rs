//! The event loop of the daemon: the eBPF ring buffer and /dev/kmsg on
//! `AsyncFd`, the program's loss counters on a timer, and the shutdown
//! signals, all on one current-thread tokio runtime.

use std::{
    collections::HashMap,
    future::pending,
    sync::{mpsc, Arc},
    time::Duration,
};

use common::{eflags, MemcgPart, OomEvent};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};

use super::{
    counters::Counters,
    daemon::DaemonError,
    footprint::Startup,
    kernel_log::{Drained, KernelLogReader},
    snapshotter,
    writer::{describe, ToWriter},
};
use crate::{
    clock, kernel,
    model::{run::Counter, Kill},
    sources::{
        ebpf::{CounterMap, Probe},
        kmsg::Kmsg,
    },
    store::Loss,
};

/// How often the reader polls the program's loss counters.
const COUNTER_POLL: Duration = Duration::from_secs(5);
/// Ring-buffer events read before the kernel log gets a turn: a 296-byte
/// event takes microseconds, so a batch is a few milliseconds of work.
const RING_BATCH: usize = 1024;
/// Kernel-log records read before the ring buffer gets a turn (each is one
/// line of a report, parsed and perhaps a record for the writer).
const KMSG_BATCH: usize = 256;

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
pub(super) async fn read_loop(
    probe: Probe,
    kernel_log: Option<(Kmsg, KernelLogReader, Startup)>,
    tx: mpsc::Sender<ToWriter>,
    snapshots: mpsc::Sender<snapshotter::Request>,
    boot_id: String,
    machine: kernel::Machine,
    run_counters: Arc<Counters>,
) -> Result<(), DaemonError> {
    let Probe { ebpf, events, counters } = probe;
    // Register the handlers before READY=1, so a stop right after start-up
    // still drains and exits 0.
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged until
    // the AsyncFd (its only owner from here on) is dropped.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| DaemonError::Runtime(e.into()))?;
    let mut reader = EventReader::new(tx, snapshots, boot_id, machine, run_counters);
    let (mut kmsg_fd, mut log_reader, mut catching_up) = match kernel_log {
        Some((kmsg, log_reader, startup)) => {
            // SAFETY: Kmsg owns its file, which stays open and unchanged until
            // the AsyncFd (its only owner from here on) is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(kmsg, Interest::READABLE) }
                .map_err(|e| DaemonError::Runtime(e.into()))?;
            (Some(fd), Some(log_reader), Some(startup))
        }
        None => (None, None, None),
    };

    super::notify::ready();
    let mut poll = tokio::time::interval(COUNTER_POLL);
    loop {
        tokio::select! {
            // Each source is read a bounded batch at a time and stays ready
            // while it has more (the readiness is cleared only once it is
            // empty), so select! takes turns between them: a kernel log that
            // is never empty during a large group kill cannot keep the ring
            // buffer from being read, nor the other way round.
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(DaemonError::Runtime)?;
                if reader.drain_some(guard.get_inner_mut(), RING_BATCH) {
                    guard.clear_ready();
                }
                // Current counts for the run row (status compares victims
                // seen with events received): one map read per wake-up.
                reader.check_counters(&counters);
            }
            guard = kmsg_readable(&mut kmsg_fd) => {
                let mut guard = guard.map_err(DaemonError::Runtime)?;
                let drained = log_reader.as_mut().map(|r| r.drain_some(guard.get_inner_mut(), KMSG_BATCH));
                match drained {
                    Some(Drained::More) => {}
                    Some(Drained::Empty) => guard.clear_ready(),
                    Some(Drained::Failed) | None => kmsg_fd = None,
                }
                // The first time the log is empty (or gone), its catch-up
                // is over.
                if drained != Some(Drained::More) {
                    if let Some(startup) = catching_up.take() {
                        startup.done();
                    }
                }
                // The ring buffer's losses are noticed while the log is
                // busy too, not only when the ring delivers.
                reader.check_counters(&counters);
            }
            _ = poll.tick() => reader.check_counters(&counters),
            _ = sigterm.recv() => { log::info!("SIGTERM: draining and stopping"); break; }
            _ = sigint.recv() => { log::info!("SIGINT: draining and stopping"); break; }
        }
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
    Ok(())
}

/// The ring buffer's reader: each event becomes a record for the writer and
/// a request for the snapshotter.
pub(super) struct EventReader {
    tx: mpsc::Sender<ToWriter>,
    snapshots: mpsc::Sender<snapshotter::Request>,
    boot_id: String,
    machine: kernel::Machine,
    counters: Arc<Counters>,
    /// The last figures each memory cgroup's events carried, for the later
    /// victims of the same OOM whose events refer to them.
    memcgs: HashMap<u64, MemcgPart>,
}

/// Memory cgroups whose last figures are kept: far more than the cgroups of
/// one OOM (a pod's containers); cleared when reached.
const MEMCGS_KEPT: usize = 1024;

impl EventReader {
    pub(super) fn new(
        tx: mpsc::Sender<ToWriter>,
        snapshots: mpsc::Sender<snapshotter::Request>,
        boot_id: String,
        machine: kernel::Machine,
        counters: Arc<Counters>,
    ) -> EventReader {
        EventReader { tx, snapshots, boot_id, machine, counters, memcgs: HashMap::new() }
    }

    /// The memory cgroup figures for `event`: its own, kept for the victims
    /// after it, or those an earlier victim of the same OOM carried. `None`
    /// when that earlier record was lost (counted with the ring buffer's
    /// losses): the record then has no cgroup figures.
    fn memcg_of(&mut self, event: &OomEvent, part: Option<MemcgPart>) -> Option<MemcgPart> {
        if let Some(part) = part {
            if self.memcgs.len() >= MEMCGS_KEPT {
                self.memcgs.clear();
            }
            self.memcgs.insert(event.memcg_key, part);
            return Some(part);
        }
        if event.flags & eflags::SAME_MEMCG == 0 {
            return None;
        }
        let part = self.memcgs.get(&event.memcg_key).copied();
        if part.is_none() {
            log::warn!("pid {}: its cgroup's figures came in an event that was lost", event.victim_pid);
        }
        part
    }

    fn drain(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) {
        while !self.drain_some(ring, usize::MAX) {}
    }

    /// Reads at most `budget` events; true when the ring buffer is empty.
    fn drain_some(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>, budget: usize) -> bool {
        for _ in 0..budget {
            match ring.next() {
                Some(item) => self.event(&item),
                None => return true,
            }
        }
        false
    }

    /// One ring-buffer record, as the program wrote it: decoded, recorded,
    /// and its victim's cgroup handed to the snapshotter.
    pub(super) fn event(&mut self, bytes: &[u8]) {
        self.counters.add(Counter::EventsReceived, 1);
        match OomEvent::decode(bytes) {
            Ok((event, part)) => {
                let memcg = self.memcg_of(&event, part);
                let time_ns = clock::boot_to_wall_ns(event.boot_ns);
                let mut kill =
                    Kill::from_event(&event, memcg.as_ref(), &self.boot_id, time_ns, clock::wall_ns_now());
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
                    self.counters.add(Counter::SnapshotsMissed, 1);
                    log::warn!("the cgroup snapshotter is gone; pid {} gets no snapshot", event.victim_pid);
                }
            }
            Err(e) => {
                self.counters.add(Counter::Undecodable, 1);
                log::error!("undecodable event from the kernel program ({e}); counted as lost");
                self.send(ToWriter::Loss(self.loss("decode", 1, Some(e.to_string()))));
            }
        }
    }

    /// Reads the program's counters and records any new ring-buffer loss.
    fn check_counters(&mut self, counters: &CounterMap) {
        match counters.read() {
            Ok(now) => {
                self.counters.set(Counter::VictimsSeen, now.seen);
                let new = now.ringbuf_full.saturating_sub(self.counters.get(Counter::RingbufFull));
                if new > 0 {
                    self.counters.set(Counter::RingbufFull, now.ringbuf_full);
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
