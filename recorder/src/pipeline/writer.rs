//! The store writer: the one thread that owns the SQLite connection.
//!
//! Each message is written in a transaction of its own and counts as
//! stored only once that commits: only then does the log say `recorded`
//! (one INFO line per kill; joins and the rest at DEBUG), does the record's
//! id exist, and do the counters move. What could not be written (locked
//! database, full disk, damaged file) stays queued in order and is retried
//! every second. The queue is bounded ([`MAX_PENDING`]): beyond it each
//! message is logged in full and counted as lost (`queue_full`), and at
//! stop whatever is still queued is logged in full and counted
//! (`write_failures`). While writes fail, the run's row says how many wait
//! and why (`writes_pending`, `write_error`): a reserve of free space
//! ([`Reserve`]) is given up the moment the disk fills, so that row can still
//! be written. A file found damaged while writing is set aside like at start.
//!
//! It also decides which eBPF victims were only *marked*: a task already
//! exiting is marked as victim (`task_will_free_mem()` in mm/oom_kill.c) but
//! never gets a `Killed process` line, which the kernel prints right after
//! marking every task it kills (`__oom_kill_process`). When the kernel log
//! was read without loss and no line came for a victim within
//! [`EXITING_AFTER`], the record is labelled `exiting`.

use std::{
    collections::VecDeque,
    sync::{mpsc, Arc},
    thread,
    time::{Duration, Instant},
};

use super::{
    counters::Counters,
    footprint::{self, Startup},
    join::{self, Recorded},
    publish::Publisher,
    retention::Retention,
};
use crate::{
    clock,
    model::{
        run::{Counter, Run},
        Kill, Source,
    },
    store::{Loss, Reserve, Store, StoreError},
};

/// How often the writer brings the run's row up to date while the daemon runs.
pub const UPDATE_EVERY: Duration = Duration::from_secs(5);

/// How long the writer waits between retries of a failed write.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often the writer looks whether start-up is over, while it runs.
const STARTUP_POLL: Duration = Duration::from_secs(1);
/// Final attempts at shutdown before unstored records go to the log.
const FINAL_ATTEMPTS: u32 = 3;
/// How long an eBPF victim may wait for its `Killed process` line before it
/// counts as an exiting task. The line is printed in the same function call as
/// the tracepoint; only a stalled reader delays it.
pub const EXITING_AFTER: Duration = Duration::from_secs(5);
/// How often the writer checks every page of the store (`PRAGMA
/// quick_check`, as at start): a file damaged while the daemon runs is set
/// aside within a day, so readers do not go on reading it.
pub const CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);
/// At most this many messages wait for a failing store. A kill makes about
/// four (the event, its kernel line, the snapshot, the reaper's line) of a
/// few kB each: about a thousand kills, tens of MB at worst, so that a
/// store that never recovers cannot make the recorder the next OOM victim.
pub const MAX_PENDING: usize = 4_096;

/// Messages taken from the channel before the next flush while the store
/// works: each is its own transaction, so this only bounds the queue.
const PULL_BATCH: usize = 256;

/// What the sources hand the writer.
pub enum ToWriter {
    /// Facts about one kill, from any source; merged by the store.
    Kill(Box<Kill>),
    /// Facts that only add to a kill already recorded (the oom_reaper's
    /// figures); dropped, with a debug line, when no record matches.
    Annotate(Box<Kill>),
    Loss(Loss),
    /// The kernel log was read up to this record on this boot.
    KmsgCursor {
        boot_id: String,
        seq: u64,
    },
    /// A value to keep between runs (the journal cursor).
    State {
        key: &'static str,
        value: String,
    },
}

impl ToWriter {
    /// Whether `newer` makes this message pointless (the same cursor or
    /// state, further on): only the newest of those waits in the queue.
    fn superseded_by(&self, newer: &ToWriter) -> bool {
        match (self, newer) {
            (ToWriter::KmsgCursor { boot_id: a, .. }, ToWriter::KmsgCursor { boot_id: b, .. }) => a == b,
            (ToWriter::State { key: a, .. }, ToWriter::State { key: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// This run's `daemon_runs` row, kept up to date by the writer (the only
/// connection that may write it).
pub struct RunTracker {
    pub id: i64,
    pub row: Run,
    /// Where `vmstat` is read (`/proc`; a temp dir in tests).
    pub proc_root: std::path::PathBuf,
    next: Instant,
    /// The last update failed (said once, not every 5 s).
    failing: bool,
}

impl RunTracker {
    pub fn new(id: i64, row: Run, proc_root: std::path::PathBuf) -> RunTracker {
        RunTracker { id, row, proc_root, next: Instant::now() + UPDATE_EVERY, failing: false }
    }
}

/// An eBPF record still waiting for its kill line.
struct Awaiting {
    id: i64,
    since: Instant,
    lost_then: u64,
}

/// A message in the queue.
struct Pending {
    message: ToWriter,
    /// When it reached the writer.
    since: Instant,
    /// It waited on a failed write.
    delayed: bool,
}

/// Writes are failing: since when, and why.
struct Failing {
    since: Instant,
    since_ns: i64,
    error: String,
    /// The next attempt: every [`RETRY_EVERY`], not at every message that
    /// joins the queue meanwhile.
    next_try: Instant,
}

impl Failing {
    fn now(error: &StoreError) -> Failing {
        let since = Instant::now();
        Failing {
            since,
            since_ns: clock::wall_ns_now(),
            error: error.to_string(),
            next_try: since + RETRY_EVERY,
        }
    }
}

pub struct Writer {
    store: Store,
    counters: Arc<Counters>,
    retention: Option<Retention>,
    pending: VecDeque<Pending>,
    awaiting: Vec<Awaiting>,
    failing: Option<Failing>,
    run: Option<RunTracker>,
    reserve: Option<Reserve>,
    /// Messages given up to the queue's bound since the last loss row.
    given_up: u64,
    publisher: Option<Publisher>,
    /// Kills whose record is complete, to publish after this flush.
    to_publish: Vec<i64>,
    /// When every page is checked next.
    next_check: Instant,
    /// Start-up, until the writer has shed what it left behind.
    startup: Option<Startup>,
    /// Something was stored since the writer last handed back its memory.
    unsettled: bool,
}

impl Writer {
    pub fn new(store: Store, counters: Arc<Counters>, retention: Option<Retention>) -> Writer {
        Writer {
            store,
            counters,
            retention,
            pending: VecDeque::new(),
            awaiting: Vec::new(),
            failing: None,
            run: None,
            reserve: None,
            given_up: 0,
            publisher: None,
            to_publish: Vec::new(),
            next_check: Instant::now() + CHECK_EVERY,
            startup: None,
            unsettled: false,
        }
    }

    /// Sheds start-up's pages ([`footprint::shed_startup_pages`]) once
    /// `startup` is over and what it sent is stored.
    pub fn shedding_after(mut self, startup: Startup) -> Writer {
        self.startup = Some(startup);
        self
    }

    /// Publishes each kill once its record is complete (journal, metrics).
    pub fn with_publisher(mut self, publisher: Publisher) -> Writer {
        self.publisher = Some(publisher);
        self
    }

    /// Keeps `run`'s row up to date: checked every [`UPDATE_EVERY`], written
    /// when its counts changed, and at stop.
    pub fn with_run(mut self, run: RunTracker) -> Writer {
        self.run = Some(run);
        self
    }

    /// Keeps `reserve` free for the moment the disk fills.
    pub fn with_reserve(mut self, mut reserve: Reserve) -> Writer {
        reserve.take();
        self.reserve = Some(reserve);
        self
    }

    /// Runs until every sender is gone, then drains.
    pub fn run(mut self, rx: mpsc::Receiver<ToWriter>) {
        loop {
            let wait = if self.pending.is_empty() && self.awaiting.is_empty() {
                Duration::from_secs(3600)
            } else {
                RETRY_EVERY
            };
            let wait = match self.retention.as_mut() {
                Some(r) if self.failing.is_none() => {
                    wait.min(r.prune_if_due(&mut self.store, clock::wall_ns_now()))
                }
                _ => wait,
            };
            let wait = wait.min(self.update_run(false, false));
            let wait = match &self.failing {
                Some(f) => wait.min(f.next_try.saturating_duration_since(Instant::now())),
                None => wait,
            };
            // While start-up runs, look every second whether it is over.
            let wait = if self.startup.is_some() { wait.min(STARTUP_POLL) } else { wait };
            match rx.recv_timeout(wait) {
                Ok(message) => self.push(message),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            // A healthy store takes a burst a batch at a time: the rest waits
            // in the channel, as it arrived, and nothing is given up. A
            // failing store takes everything, so that the bound of what
            // waits in memory applies (a 5,000-task group kill is 10,000
            // messages: pulled all at once they overran the bound with the
            // store healthy, and half the kills were given up).
            while self.failing.is_some() || self.pending.len() < PULL_BATCH {
                match rx.try_recv() {
                    Ok(message) => self.push(message),
                    Err(_) => break,
                }
            }
            if self.failing.as_ref().is_none_or(|f| Instant::now() >= f.next_try) {
                self.flush();
            }
            self.label_exiting(Instant::now());
            if let (Some(r), None) = (self.retention.as_mut(), &self.failing) {
                r.cap_if_grown(&mut self.store);
            }
            self.check_if_due(Instant::now());
            self.settle();
        }
        for _ in 0..FINAL_ATTEMPTS {
            if self.pending.is_empty() {
                break;
            }
            thread::sleep(RETRY_EVERY);
            self.flush();
        }
        let left = self.pending.len();
        for pending in self.pending.drain(..) {
            self.counters.add(Counter::WriteFailures, 1);
            log::error!("could not store before exit, kept here instead: {}", describe(&pending.message));
        }
        self.counters.set(Counter::WritesPending, 0);
        // Victims still waiting for their kernel line are stored: publish
        // them as they are rather than not at all.
        let waiting: Vec<i64> = self.awaiting.drain(..).map(|a| a.id).collect();
        self.publish(&waiting);
        if left > 0 {
            let why = self.failing.as_ref().map_or("", |f| f.error.as_str());
            log::error!("{left} message(s) were not stored ({why}); each is in the log above");
        }
        self.update_run(true, true);
    }

    /// Once everything is stored and nothing waits: hands back what the
    /// burst used (SQLite's page cache, the heap's free blocks) and, the
    /// first time start-up is over, start-up's pages. An idle daemon holds
    /// what it needs to wait, not what it needed last.
    fn settle(&mut self) {
        if !self.pending.is_empty() || !self.awaiting.is_empty() {
            return;
        }
        if self.startup.take_if(|s| s.is_over()).is_some() {
            match footprint::shed_startup_pages() {
                Ok(kib) => log::info!("start-up over: {kib} KiB of its code and data unmapped"),
                Err(e) => log::debug!("start-up over; its pages stay mapped (/proc/self/smaps: {e})"),
            }
            self.unsettled = true;
        }
        if std::mem::take(&mut self.unsettled) {
            self.store.release_memory();
            footprint::trim_heap();
        }
    }

    /// Queues a message, within the bound.
    fn push(&mut self, message: ToWriter) {
        self.unsettled = true;
        self.pending.retain(|p| !p.message.superseded_by(&message));
        if self.pending.len() >= MAX_PENDING {
            self.counters.add(Counter::QueueFull, 1);
            self.given_up += 1;
            let why = self.failing.as_ref().map_or("", |f| f.error.as_str());
            log::error!(
                "{MAX_PENDING} messages already wait for the store ({why}): this one is given up and kept \
                 here instead: {}",
                describe(&message)
            );
            return;
        }
        let delayed = self.failing.is_some();
        self.pending.push_back(Pending { message, since: Instant::now(), delayed });
        self.counters.set(Counter::WritesPending, self.pending.len() as u64);
    }

    /// Writes what is queued, in order, each in its own transaction, until
    /// the queue is empty or a write fails.
    fn flush(&mut self) {
        let mut recovered = false;
        while let Some(mut pending) = self.pending.pop_front() {
            match self.write(&mut pending.message) {
                Ok(()) => {
                    if pending.delayed {
                        self.counters.add(Counter::StoredLate, 1);
                    }
                    self.stored(&pending);
                    if let Some(failing) = self.failing.take() {
                        self.recovered(&failing);
                        recovered = true;
                    }
                }
                Err(e) => {
                    self.pending.push_front(pending);
                    self.counters.set(Counter::WritesPending, self.pending.len() as u64);
                    self.failed(e);
                    break;
                }
            }
        }
        self.counters.set(Counter::WritesPending, self.pending.len() as u64);
        let complete = std::mem::take(&mut self.to_publish);
        self.publish(&complete);
        if recovered {
            // The row stops saying that writes wait.
            self.update_run(true, false);
        }
    }

    /// One message, committed (or not at all).
    fn write(&mut self, message: &mut ToWriter) -> Result<(), StoreError> {
        match message {
            ToWriter::Kill(kill) => {
                kill.recorded_ns = clock::wall_ns_now();
                let recorded = self.store.in_transaction(|store| join::record(store, kill))?;
                self.recorded(kill, recorded);
                Ok(())
            }
            ToWriter::Annotate(kill) => {
                if self.store.in_transaction(|store| join::annotate(store, kill))?.is_none() {
                    log::debug!(
                        "no record for reaped pid {}: its kill is older than this log",
                        kill.victim.pid
                    );
                }
                Ok(())
            }
            ToWriter::Loss(loss) => self.store.in_transaction(|store| store.record_loss(loss)),
            ToWriter::KmsgCursor { boot_id, seq } => {
                self.store.in_transaction(|store| store.set_kmsg_cursor(boot_id, *seq))
            }
            ToWriter::State { key, value } => self.store.in_transaction(|store| store.set_state(key, value)),
        }
    }

    /// After a kill's transaction committed: its one INFO line, its counters.
    fn recorded(&mut self, kill: &Kill, recorded: Recorded) {
        note_recorded(kill, recorded);
        if let Recorded::Inserted(id) = recorded {
            self.counters.add(Counter::RecordsStored, 1);
            if let Some(r) = self.retention.as_mut() {
                r.note_inserted();
            }
            if kill.sources == [Source::Ebpf] {
                self.awaiting.push(Awaiting {
                    id,
                    since: Instant::now(),
                    lost_then: self.counters.get(Counter::KmsgLost),
                });
            } else {
                self.to_publish.push(id);
            }
        } else if kill.kmsg_usec.is_some() {
            let before = self.awaiting.len();
            self.awaiting.retain(|a| a.id != recorded.id());
            if self.awaiting.len() < before {
                self.to_publish.push(recorded.id());
            }
        }
    }

    /// A message that waited is stored: say how late, at DEBUG.
    fn stored(&self, pending: &Pending) {
        if pending.delayed {
            log::debug!(
                "stored {:.1} s after it came (the store was failing): {}",
                pending.since.elapsed().as_secs_f64(),
                short(&pending.message)
            );
        }
    }

    /// Writes failed: keep everything, say so once, and make room to say it
    /// in the run's row too.
    fn failed(&mut self, error: StoreError) {
        for pending in &mut self.pending {
            pending.delayed = true;
        }
        if error.is_damage() {
            self.set_aside(&error);
            return;
        }
        if let Some(failing) = self.failing.as_mut() {
            failing.next_try = Instant::now() + RETRY_EVERY;
            return;
        }
        log::error!(
            "{error}; keeping {} message(s) in memory and retrying every {} s (at most {MAX_PENDING}; \
             beyond that each is logged in full and counted as lost)",
            self.pending.len(),
            RETRY_EVERY.as_secs()
        );
        self.failing = Some(Failing::now(&error));
        if error.is_disk_full() {
            if let Some(reserve) = self.reserve.as_mut().and_then(|r| r.release().then_some(r)) {
                log::warn!(
                    "disk full: freed the {} kB kept in {} so that this run's row can say what waits",
                    Reserve::BYTES / 1024,
                    reserve.path().display()
                );
            }
        }
        self.update_run(true, false);
    }

    /// Writes succeed again.
    fn recovered(&mut self, failing: &Failing) {
        log::info!(
            "the store accepts writes again after {:.1} s ({}): storing the {} message(s) that waited",
            failing.since.elapsed().as_secs_f64(),
            failing.error,
            self.pending.len()
        );
        if self.given_up > 0 {
            let loss = Loss {
                time_ns: clock::wall_ns_now(),
                boot_id: self.run.as_ref().map(|r| r.row.boot_id.clone()).unwrap_or_default(),
                reason: "queue_full",
                count: std::mem::take(&mut self.given_up),
                detail: Some(format!(
                    "{MAX_PENDING} messages waited while the store failed: {}",
                    failing.error
                )),
            };
            self.pending.push_back(Pending {
                message: ToWriter::Loss(loss),
                since: Instant::now(),
                delayed: false,
            });
        }
        if let Some(reserve) = self.reserve.as_mut() {
            reserve.take();
        }
    }

    /// The file is damaged: set it aside and go on in a new one, with a row
    /// for this run there; the queue is written into the new file.
    fn set_aside(&mut self, error: &StoreError) {
        match self.store.set_aside_and_start_again(error) {
            Ok(aside) => {
                super::daemon::say_set_aside(&mut self.store, &aside);
                // Their records are in the file set aside.
                self.awaiting.clear();
                if let Some(run) = self.run.as_mut() {
                    match self.store.start_run(&run.row) {
                        Ok(id) => run.id = id,
                        Err(e) => log::error!("cannot record this run in the new store ({e})"),
                    }
                }
            }
            Err(e) => {
                if let Some(failing) = self.failing.as_mut() {
                    failing.next_try = Instant::now() + RETRY_EVERY;
                } else {
                    log::error!("{error}; and it cannot be set aside ({e}): keeping what comes in memory");
                    self.failing = Some(Failing::now(error));
                }
            }
        }
    }

    /// The daily check of every page; a damaged file is set aside.
    fn check_if_due(&mut self, now: Instant) {
        if now < self.next_check || self.failing.is_some() {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        match self.store.quick_check() {
            Ok(()) => log::debug!("{}: every page checked, sound", self.store.path().display()),
            Err(e) if e.is_damage() => self.set_aside(&e),
            Err(e) => log::warn!("cannot check the store's pages ({e}); trying again tomorrow"),
        }
    }

    fn label_exiting(&mut self, now: Instant) {
        // A kill line may be among what waits: decide once it is written.
        if !self.pending.is_empty() {
            return;
        }
        let live = self.counters.kmsg_live();
        let lost = self.counters.get(Counter::KmsgLost);
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.awaiting.drain(..).partition(|a| now.duration_since(a.since) >= EXITING_AFTER);
        self.awaiting = waiting;
        let mut complete = Vec::new();
        for entry in due {
            if !live || lost != entry.lost_then {
                // The line may have been lost with the log: do not guess,
                // but count a record stored without its kernel report.
                self.counters.add(Counter::WithoutKernelReport, 1);
                complete.push(entry.id);
                continue;
            }
            match self.store.mark_exiting(entry.id) {
                Ok(()) => {
                    log::debug!(
                        "kill {}: no Killed process line came; the victim was already exiting (marked, not killed)",
                        entry.id
                    );
                    complete.push(entry.id);
                }
                Err(e) => {
                    log::warn!("cannot label kill {} as exiting ({e}); trying again", entry.id);
                    self.awaiting.push(entry);
                }
            }
        }
        // Nothing more will come for these: published as they are.
        self.publish(&complete);
    }
}

/// The one INFO line of a kill, when its first fact is committed; what
/// joins it later is said at DEBUG.
fn note_recorded(kill: &Kill, recorded: Recorded) {
    let sources: Vec<&str> = kill.sources.iter().map(|s| s.as_str()).collect();
    let line = format!(
        "kill {}: pid {} ({}) from {}, anon-rss {} kB",
        recorded.id(),
        kill.victim.pid,
        kill.victim.comm.as_deref().unwrap_or("?"),
        sources.join("+"),
        kill.victim.figures.anon_rss_kb.map_or("?".to_owned(), |v| v.to_string())
    );
    match recorded {
        Recorded::Inserted(_) => log::info!("recorded {line}"),
        Recorded::Merged(_) => log::debug!("joined {line}"),
        Recorded::Duplicate(_) => {}
    }
}

/// A few words naming a message, for DEBUG lines.
fn short(message: &ToWriter) -> String {
    match message {
        ToWriter::Kill(kill) | ToWriter::Annotate(kill) => format!("facts about pid {}", kill.victim.pid),
        ToWriter::Loss(loss) => format!("a loss of {} ({})", loss.count, loss.reason),
        ToWriter::KmsgCursor { seq, .. } => format!("the kernel log cursor at {seq}"),
        ToWriter::State { key, .. } => format!("state {key}"),
    }
}

/// One line with everything a message holds, for the log when it cannot be stored.
pub(crate) fn describe(message: &ToWriter) -> String {
    match message {
        ToWriter::Kill(kill) | ToWriter::Annotate(kill) => crate::model::json::kill_detail(kill).to_string(),
        ToWriter::Loss(loss) => format!(
            "loss of {} ({}) at {} on boot {}{}",
            loss.count,
            loss.reason,
            loss.time_ns,
            loss.boot_id,
            loss.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        ToWriter::KmsgCursor { boot_id, seq } => {
            format!("kernel log read up to record {seq} on boot {boot_id}")
        }
        ToWriter::State { key, value } => format!("state {key} = {value}"),
    }
}

mod outward;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{Kind, Victim},
        store::Access,
    };

    fn ebpf_kill(pid: i32) -> Kill {
        Kill {
            boot_id: Some("b".into()),
            boot_ns: Some(5_000_000_000),
            mono_ns: Some(5_000_000_000),
            time_ns: Some(1),
            sources: vec![Source::Ebpf],
            victim: Victim { pid, ..Victim::default() },
            ..Kill::default()
        }
    }

    fn writer_with(counters: Arc<Counters>) -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        (Writer::new(store, counters, None), dir)
    }

    #[test]
    fn a_victim_without_its_kill_line_is_labelled_exiting() {
        let counters = Arc::new(Counters::default());
        counters.set_kmsg_live(true);
        let (mut writer, _dir) = writer_with(Arc::clone(&counters));
        writer.push(ToWriter::Kill(Box::new(ebpf_kill(10))));
        writer.push(ToWriter::Kill(Box::new(ebpf_kill(11))));
        writer.flush();
        // pid 11's line arrives; pid 10's never does.
        let line = Kill {
            boot_id: Some("b".into()),
            kmsg_usec: Some(5_000_000),
            sources: vec![Source::Kmsg],
            victim: Victim { pid: 11, ..Victim::default() },
            ..Kill::default()
        };
        writer.push(ToWriter::Kill(Box::new(line)));
        writer.flush();
        writer.label_exiting(Instant::now());
        let kinds = |writer: &Writer| -> Vec<(i32, Kind)> {
            let mut all: Vec<_> = writer
                .store
                .list(&crate::store::Filter::default())
                .unwrap()
                .iter()
                .map(|k| (k.victim.pid, k.kind))
                .collect();
            all.sort_by_key(|(pid, _)| *pid);
            all
        };
        assert_eq!(kinds(&writer), [(10, Kind::Kill), (11, Kind::Kill)], "not before the wait is over");
        writer.label_exiting(Instant::now() + EXITING_AFTER);
        assert_eq!(kinds(&writer), [(10, Kind::Exiting), (11, Kind::Kill)]);
    }

    #[test]
    fn no_label_when_the_log_lost_records_meanwhile() {
        let counters = Arc::new(Counters::default());
        counters.set_kmsg_live(true);
        let (mut writer, _dir) = writer_with(Arc::clone(&counters));
        writer.push(ToWriter::Kill(Box::new(ebpf_kill(10))));
        writer.flush();
        // The kernel log wrapped: the line may have been among the lost.
        counters.add(Counter::KmsgLost, 3);
        writer.label_exiting(Instant::now() + EXITING_AFTER);
        let kill = &writer.store.list(&crate::store::Filter::default()).unwrap()[0];
        assert_eq!(kill.kind, Kind::Kill);
        assert!(writer.awaiting.is_empty(), "decided once, not retried forever");
    }

    /// An eBPF record with a report larger than a page: each needs pages
    /// that a "full" file cannot add.
    fn big_kill(pid: i32) -> Kill {
        Kill { kernel_report: vec!["x".repeat(20_000)], ..ebpf_kill(pid) }
    }

    fn ids(store: &Store) -> Vec<(i64, i32)> {
        let mut all: Vec<_> = store
            .list(&crate::store::Filter::default())
            .unwrap()
            .iter()
            .map(|k| (k.id.unwrap(), k.victim.pid))
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn a_full_store_loses_nothing_reuses_no_id_and_says_what_waits() {
        let counters = Arc::new(Counters::default());
        let (mut writer, _dir) = writer_with(Arc::clone(&counters));
        writer.push(ToWriter::Kill(Box::new(big_kill(1))));
        writer.flush();
        writer.store.fill(true);
        for pid in 2..=20 {
            writer.push(ToWriter::Kill(Box::new(big_kill(pid))));
        }
        writer.flush();
        assert!(writer.failing.as_ref().is_some_and(|f| f.error.contains("full")), "the failure is kept");
        let stored_while_full = ids(&writer.store).len();
        assert!(stored_while_full < 20, "the file filled up: {stored_while_full} stored");
        assert_eq!(counters.get(Counter::WritesPending), 20 - stored_while_full as u64);
        assert_eq!(
            counters.get(Counter::RecordsStored),
            stored_while_full as u64,
            "counted only when committed"
        );
        // Retried, not at once, but after RETRY_EVERY.
        writer.failing.as_mut().unwrap().next_try = Instant::now();
        writer.store.fill(false);
        writer.flush();
        assert!(writer.failing.is_none());
        let all = ids(&writer.store);
        assert_eq!(
            all,
            (1..=20).map(|i| (i64::from(i), i)).collect::<Vec<_>>(),
            "every kill, its own id, in order"
        );
        assert_eq!(counters.get(Counter::WritesPending), 0);
        assert_eq!(counters.get(Counter::StoredLate), 20 - stored_while_full as u64);
        assert_eq!(counters.counts().lost(), 0);
    }

    #[test]
    fn beyond_the_bound_each_message_is_counted_as_lost_and_the_loss_recorded() {
        let counters = Arc::new(Counters::default());
        let (mut writer, _dir) = writer_with(Arc::clone(&counters));
        writer.store.fill(true);
        let mut pid = 0;
        while writer.failing.is_none() {
            pid += 1;
            writer.push(ToWriter::Kill(Box::new(big_kill(pid))));
            writer.flush();
        }
        let stored = ids(&writer.store);
        // Cursors replace each other: one waits, whatever the number.
        for seq in 0..10 {
            writer.push(ToWriter::KmsgCursor { boot_id: "b".into(), seq });
        }
        assert_eq!(writer.pending.len(), 2);
        for pid in 100_000..(100_000 + MAX_PENDING as i32 + 1) {
            writer.push(ToWriter::Annotate(Box::new(ebpf_kill(pid))));
        }
        assert_eq!(writer.pending.len(), MAX_PENDING);
        assert_eq!(counters.get(Counter::QueueFull), 3, "given up, counted as lost");
        writer.store.fill(false);
        writer.failing.as_mut().unwrap().next_try = Instant::now();
        writer.flush();
        assert_eq!(ids(&writer.store).len(), stored.len() + 1, "the kill that waited, stored");
        assert_eq!(writer.store.loss_count("queue_full").unwrap(), 3, "the loss is in the store, with why");
        assert_eq!(writer.store.kmsg_cursor("b").unwrap(), Some(9));
        assert_eq!(counters.counts().lost(), 3);
    }

    /// A store in `dir` with a run's row, as the daemon starts one.
    fn store_with_run(dir: &std::path::Path) -> (Store, i64, Run) {
        let mut store = Store::open(&dir.join("oom.db"), Access::ReadWrite).unwrap();
        let row = Run { pid: 7, boot_id: "b".into(), started_ns: 1, last_update_ns: 1, ..Run::default() };
        let id = store.start_run(&row).unwrap();
        (store, id, row)
    }

    #[test]
    fn the_run_row_says_what_waits_and_why_while_writes_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, row) = store_with_run(dir.path());
        let counters = Arc::new(Counters::default());
        let mut writer = Writer::new(store, Arc::clone(&counters), None).with_run(RunTracker::new(
            id,
            row,
            dir.path().into(),
        ));
        writer.store.fill(true);
        for pid in 1..=5 {
            writer.push(ToWriter::Kill(Box::new(big_kill(pid))));
        }
        writer.flush();
        let reader = Store::open(&dir.path().join("oom.db"), Access::ReadOnly).unwrap();
        let run = reader.latest_run().unwrap().unwrap();
        assert!(run.counts[Counter::WritesPending] > 0, "{run:?}");
        assert!(run.write_error.as_deref().is_some_and(|e| e.contains("full")), "{run:?}");
        assert!(run.write_error_ns.is_some());
        writer.store.fill(false);
        writer.failing.as_mut().unwrap().next_try = Instant::now();
        writer.flush();
        let run = reader.latest_run().unwrap().unwrap();
        assert_eq!((run.counts[Counter::WritesPending], run.write_error), (0, None), "cleared once stored");
    }

    #[test]
    fn what_is_still_queued_at_stop_is_counted_as_given_up() {
        let counters = Arc::new(Counters::default());
        let (writer, _dir) = writer_with(Arc::clone(&counters));
        writer.store.fill(true);
        let (tx, rx) = mpsc::channel();
        for pid in 1..=8 {
            tx.send(ToWriter::Kill(Box::new(big_kill(pid)))).unwrap();
        }
        drop(tx);
        writer.run(rx);
        let (failures, pending) =
            (counters.get(Counter::WriteFailures), counters.get(Counter::WritesPending));
        assert!(failures > 0 && pending == 0, "{failures} given up, {pending} pending");
        assert_eq!(counters.get(Counter::RecordsStored) + failures, 8, "each either stored or counted");
    }

    #[test]
    fn a_store_found_damaged_by_the_daily_check_is_set_aside_and_writing_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom.db");
        crate::store::health::tests::store_of(&path, 300);
        crate::store::health::tests::damage_page_with(&path, b"hog (x)");
        // The cheap check at open does not see a middle page.
        let store = Store::open(&path, Access::ReadWrite).unwrap();
        let mut writer = Writer::new(store, Arc::new(Counters::default()), None);
        writer.check_if_due(Instant::now());
        assert_eq!(writer.store.kill_count().unwrap(), 300, "not due yet: started checked");
        writer.check_if_due(Instant::now() + CHECK_EVERY);
        assert_eq!(writer.store.kill_count().unwrap(), 0, "a new store");
        writer.push(ToWriter::Kill(Box::new(ebpf_kill(1))));
        writer.flush();
        assert_eq!(ids(&writer.store), [(1, 1)]);
        let asides = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("oom.db~corrupt-"))
            .count();
        assert!(asides >= 1, "the damaged file is kept aside");
    }

    /// A burst beyond the bound of what waits for a failing store, with the
    /// store healthy (a 5,000-task group kill sends 10,000 messages at
    /// once): every kill is stored and none given up.
    #[test]
    fn a_burst_larger_than_the_failure_queue_is_stored_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(store, Arc::clone(&counters), None);
        let (tx, rx) = mpsc::channel();
        let burst = MAX_PENDING + 500;
        for pid in 0..burst {
            tx.send(ToWriter::Kill(Box::new(ebpf_kill(10_000 + pid as i32)))).unwrap();
        }
        drop(tx);
        writer.run(rx);
        assert_eq!(counters.get(Counter::QueueFull), 0);
        let store = Store::open(&dir.path().join("oom.db"), Access::ReadOnly).unwrap();
        assert_eq!(store.kill_count().unwrap(), burst as u64);
    }

    /// A /proc under `dir` whose vmstat says `oom_kill N`.
    fn proc_with_oom_kill(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
        let proc_root = dir.join("proc");
        std::fs::create_dir_all(&proc_root).unwrap();
        std::fs::write(proc_root.join("vmstat"), format!("pgfault 1\noom_kill {n}\n")).unwrap();
        proc_root
    }

    #[test]
    fn the_run_row_is_brought_up_to_date_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, row) = store_with_run(dir.path());
        let proc_root = proc_with_oom_kill(dir.path(), 12);
        let counters = Arc::new(Counters::default());
        counters.add(Counter::EventsReceived, 2);
        counters.add(Counter::KmsgLost, 3);
        let writer =
            Writer::new(store, Arc::clone(&counters), None).with_run(RunTracker::new(id, row, proc_root));
        let (tx, rx) = mpsc::channel();
        tx.send(ToWriter::Kill(Box::new(ebpf_kill(10)))).unwrap();
        tx.send(ToWriter::Kill(Box::new(ebpf_kill(10)))).unwrap();
        drop(tx);
        writer.run(rx);
        let store = Store::open(&dir.path().join("oom.db"), Access::ReadOnly).unwrap();
        let run = store.latest_run().unwrap().unwrap();
        assert!(run.stopped_ns.is_some());
        assert_eq!(run.counts[Counter::RecordsStored], 1, "the replayed event is no new record");
        assert_eq!((run.counts[Counter::EventsReceived], run.counts[Counter::KmsgLost]), (2, 3));
        assert_eq!(run.vmstat_oom_kill_now, Some(12));
    }

    /// An idle daemon makes no disk writes: the row is written when a count
    /// or the kernel's kill count changed, not every 5 s.
    #[test]
    fn the_run_row_is_written_when_its_counts_change_not_on_a_timer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, row) = store_with_run(dir.path());
        let proc_root = proc_with_oom_kill(dir.path(), 12);
        let counters = Arc::new(Counters::default());
        let mut writer = Writer::new(store, Arc::clone(&counters), None).with_run(RunTracker::new(
            id,
            row,
            proc_root.clone(),
        ));
        let db = dir.path().join("oom.db");
        let written =
            || Store::open(&db, Access::ReadOnly).unwrap().latest_run().unwrap().unwrap().last_update_ns;
        writer.update_run(true, false);
        let first = written();
        assert!(first > 1, "the kernel's count changed (none read before): written");
        writer.update_run(true, false);
        assert_eq!(written(), first, "nothing changed: nothing written");
        counters.add(Counter::KmsgRecords, 1);
        writer.update_run(true, false);
        let second = written();
        assert!(second > first, "a count changed: written");
        proc_with_oom_kill(dir.path(), 13);
        writer.update_run(true, false);
        assert!(written() > second, "a kill elsewhere on the machine: written");
    }
}
