//! `oomrecorder run`: the pipeline from the kernel to the store.
//!
//! Two tasks joined by a channel: the reader (ring buffer on `AsyncFd`, signal
//! handling, loss counters) and the writer (a thread that owns the SQLite
//! connection). The reader never waits on the disk; the writer keeps what it
//! could not store and retries, and at shutdown logs anything still unstored in
//! full, so no record disappears silently.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::Duration,
};

use common::OomEvent;
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};

use crate::{
    caps, clock,
    kill::Kill,
    loader::{self, CounterMap, LoadError, Probe},
    retention::Retention,
    store::{Access, Loss, Store, StoreError},
    tracefs::{self, TracefsError},
};

/// How often the reader polls the program's loss counters.
const COUNTER_POLL: Duration = Duration::from_secs(5);
/// How long the writer waits between retries of a failed insert.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Final attempts at shutdown before unstored records go to the log.
const FINAL_ATTEMPTS: u32 = 3;

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
}

/// What the reader hands the writer.
enum ToWriter {
    Kill(Box<Kill>),
    Loss(Loss),
}

/// Runs the daemon until SIGTERM or SIGINT. Every check that can fail for a
/// reason the operator must fix happens before the program is attached.
pub fn run(config: &DaemonConfig) -> Result<Summary, DaemonError> {
    let cap_eff = caps::read_cap_eff(Path::new("/proc")).map_err(DaemonError::Capabilities)?;
    let missing = caps::missing_for_daemon(cap_eff);
    if !missing.is_empty() {
        return Err(DaemonError::MissingCapabilities { missing: missing.join(" and ") });
    }
    let store = Store::open(&config.db, Access::ReadWrite)?;
    let boot_id = clock::read_boot_id(Path::new("/proc")).map_err(DaemonError::BootId)?;
    let tracefs_root = tracefs::ensure_mounted()?;
    let mark_victim = tracefs::read_mark_victim(&tracefs_root)?;
    if mark_victim.absent.is_empty() {
        log::info!("oom:mark_victim carries every field the recorder reads");
    } else {
        log::warn!(
            "this kernel's oom:mark_victim lacks {}: those figures are recorded as unknown",
            mark_victim.absent.join(", ")
        );
    }
    loader::raise_memlock_limit();
    let probe = Probe::load(&mark_victim.layout)?;
    log::info!(
        "attached oom_mark_victim to tracepoint oom:mark_victim; recording to {}",
        store.path().display()
    );

    let (tx, rx) = mpsc::channel();
    let retention = config.retention.map(Retention::new);
    let writer = thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || write_loop(store, rx, retention))
        .map_err(DaemonError::Runtime)?;

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    let reader_result = runtime.block_on(read_loop(probe, tx, boot_id));
    // The reader dropped its sender: the writer drains and returns.
    let writer_stats = writer.join().unwrap_or_else(|_| {
        log::error!("the store writer panicked; records it held are lost (see the log above)");
        WriterStats::default()
    });
    let mut summary = reader_result?;
    summary.stored = writer_stats.stored;
    summary.unstored = writer_stats.unstored;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    log::info!(
        "stopped: {} victims seen by the kernel program, {} received, {} stored, {} lost to a full ring buffer, {} undecodable, {} not stored",
        summary.seen,
        summary.received,
        summary.stored,
        summary.ringbuf_full,
        summary.undecodable,
        summary.unstored
    );
    Ok(summary)
}

/// Reads the ring buffer until a shutdown signal, then drains it.
async fn read_loop(
    probe: Probe,
    tx: mpsc::Sender<ToWriter>,
    boot_id: String,
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
    let mut reader = EventReader { tx, boot_id, summary: Summary::default() };

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
    Ok(reader.summary)
}

struct EventReader {
    tx: mpsc::Sender<ToWriter>,
    boot_id: String,
    summary: Summary,
}

impl EventReader {
    fn drain(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) {
        while let Some(item) = ring.next() {
            self.summary.received += 1;
            match OomEvent::decode(&item) {
                Ok(event) => {
                    let time_ns = clock::boot_to_wall_ns(event.boot_ns);
                    let kill = Kill::from_event(&event, &self.boot_id, time_ns, clock::wall_ns_now());
                    self.send(ToWriter::Kill(Box::new(kill)));
                }
                Err(e) => {
                    self.summary.undecodable += 1;
                    log::error!("undecodable event from the kernel program ({e}); counted as lost");
                    self.send(ToWriter::Loss(self.loss("decode", 1, Some(e.to_string()))));
                }
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

#[derive(Default)]
struct WriterStats {
    stored: u64,
    unstored: u64,
}

/// Owns the store. Keeps messages it could not write (locked database, full
/// disk) in order and retries; gives up only at shutdown, logging each one.
fn write_loop(
    mut store: Store,
    rx: mpsc::Receiver<ToWriter>,
    mut retention: Option<Retention>,
) -> WriterStats {
    let mut pending: VecDeque<ToWriter> = VecDeque::new();
    let mut stats = WriterStats::default();
    let mut failing = false;
    loop {
        let wait = if pending.is_empty() { Duration::from_secs(3600) } else { RETRY_EVERY };
        let wait =
            retention.as_mut().map_or(wait, |r| wait.min(r.prune_if_due(&mut store, clock::wall_ns_now())));
        match rx.recv_timeout(wait) {
            Ok(message) => pending.push_back(message),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(message) = rx.try_recv() {
            pending.push_back(message);
        }
        flush(&mut store, &mut pending, &mut stats, &mut failing);
    }
    for _ in 0..FINAL_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        thread::sleep(RETRY_EVERY);
        flush(&mut store, &mut pending, &mut stats, &mut failing);
    }
    for message in pending.drain(..) {
        stats.unstored += 1;
        log::error!("could not store before exit, kept here instead: {}", describe(&message));
    }
    stats
}

fn flush(store: &mut Store, pending: &mut VecDeque<ToWriter>, stats: &mut WriterStats, failing: &mut bool) {
    while let Some(message) = pending.front_mut() {
        let result = match message {
            ToWriter::Kill(kill) => {
                kill.recorded_ns = clock::wall_ns_now();
                store.insert(kill).map(|id| {
                    stats.stored += 1;
                    log::info!(
                        "recorded kill {id}: pid {} ({}), anon-rss {} kB",
                        kill.victim.pid,
                        kill.victim.comm.as_deref().unwrap_or("?"),
                        kill.victim.anon_rss_kb.map_or("?".to_owned(), |v| v.to_string())
                    );
                })
            }
            ToWriter::Loss(loss) => store.record_loss(loss),
        };
        match result {
            Ok(()) => {
                if std::mem::take(failing) {
                    log::info!("the store accepts writes again");
                }
                pending.pop_front();
            }
            Err(e) => {
                if !*failing {
                    log::error!("{e}; keeping {} record(s) in memory and retrying", pending.len());
                    *failing = true;
                }
                return;
            }
        }
    }
}

/// One line with everything a message holds, for the log when it cannot be stored.
fn describe(message: &ToWriter) -> String {
    match message {
        ToWriter::Kill(kill) => crate::cli::json::kill_detail(kill).to_string(),
        ToWriter::Loss(loss) => format!(
            "loss of {} ({}) at {} on boot {}{}",
            loss.count,
            loss.reason,
            loss.time_ns,
            loss.boot_id,
            loss.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ),
    }
}
