//! The store writer: the one thread that owns the SQLite connection.
//!
//! It keeps what it could not write (locked database, full disk) in order and
//! retries; it gives up only at shutdown, and then logs each unstored message
//! in full, so nothing disappears silently.
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
    join::{self, Recorded},
    publish::Publisher,
    retention::Retention,
};
use crate::{
    clock,
    kernel::vmstat,
    model::{
        run::{Counter, Run},
        Kill, Source,
    },
    store::{Loss, Store},
};

/// How often the writer brings the run's row up to date while the daemon runs.
pub const UPDATE_EVERY: Duration = Duration::from_secs(5);

/// How long the writer waits between retries of a failed write.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Final attempts at shutdown before unstored records go to the log.
const FINAL_ATTEMPTS: u32 = 3;
/// How long an eBPF victim may wait for its `Killed process` line before it
/// counts as an exiting task. The line is printed in the same function call as
/// the tracepoint; only a stalled reader delays it.
pub const EXITING_AFTER: Duration = Duration::from_secs(5);

/// How close in time (µs, kernel log clock) two victims of one group must
/// be to share a count of the group's records in [`Writer::publish`]: far
/// less than the join window the count itself spans.
const GROUP_COUNT_SHARED_US: u64 = 1_000_000;

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

/// This run's `daemon_runs` row, kept up to date by the writer (the only
/// connection that may write it).
pub struct RunTracker {
    pub id: i64,
    pub row: Run,
    /// Where `vmstat` is read (`/proc`; a temp dir in tests).
    pub proc_root: std::path::PathBuf,
    next: Instant,
}

impl RunTracker {
    pub fn new(id: i64, row: Run, proc_root: std::path::PathBuf) -> RunTracker {
        RunTracker { id, row, proc_root, next: Instant::now() + UPDATE_EVERY }
    }
}

/// An eBPF record still waiting for its kill line.
struct Awaiting {
    id: i64,
    since: Instant,
    lost_then: u64,
}

pub struct Writer {
    store: Store,
    counters: Arc<Counters>,
    retention: Option<Retention>,
    pending: VecDeque<ToWriter>,
    awaiting: Vec<Awaiting>,
    failing: bool,
    run: Option<RunTracker>,
    publisher: Option<Publisher>,
}

impl Writer {
    pub fn new(store: Store, counters: Arc<Counters>, retention: Option<Retention>) -> Writer {
        Writer {
            store,
            counters,
            retention,
            pending: VecDeque::new(),
            awaiting: Vec::new(),
            failing: false,
            run: None,
            publisher: None,
        }
    }

    /// Publishes each kill once its record is complete (journal, metrics).
    pub fn with_publisher(mut self, publisher: Publisher) -> Writer {
        self.publisher = Some(publisher);
        self
    }

    /// Keeps `run`'s row up to date: every [`UPDATE_EVERY`] and at stop.
    pub fn with_run(mut self, run: RunTracker) -> Writer {
        self.run = Some(run);
        self
    }

    /// Brings the run row up to date when due (or at once when `stopping`);
    /// returns how long until it is due again.
    fn update_run(&mut self, stopping: bool) -> Duration {
        let Some(run) = self.run.as_mut() else {
            return Duration::from_secs(3600);
        };
        let now = Instant::now();
        if !stopping && now < run.next {
            return run.next - now;
        }
        run.row.counts = self.counters.counts();
        run.row.last_update_ns = clock::wall_ns_now();
        if stopping {
            run.row.stopped_ns = Some(run.row.last_update_ns);
        }
        match vmstat::read_vmstat_oom_kill(&run.proc_root) {
            Ok(n) => run.row.vmstat_oom_kill_now = Some(n),
            Err(e) => log::debug!("{e}"),
        }
        if let Err(e) = self.store.update_run(run.id, &run.row) {
            log::warn!("cannot update this run's counters in the store ({e}); trying again later");
        }
        if let Some(publisher) = self.publisher.as_mut() {
            let unrecorded = match (run.row.vmstat_oom_kill_start, run.row.vmstat_oom_kill_now) {
                (Some(start), Some(now)) => self
                    .store
                    .kills_between(&run.row.boot_id, run.row.started_ns, None)
                    .ok()
                    .map(|recorded| now.saturating_sub(start) as i64 - recorded as i64),
                _ => None,
            };
            publisher.counters(&run.row.counts, run.row.vmstat_oom_kill_now, unrecorded);
        }
        run.next = now + UPDATE_EVERY;
        UPDATE_EVERY
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
                Some(r) => wait.min(r.prune_if_due(&mut self.store, clock::wall_ns_now())),
                None => wait,
            };
            let wait = wait.min(self.update_run(false));
            match rx.recv_timeout(wait) {
                Ok(message) => self.pending.push_back(message),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(message) = rx.try_recv() {
                self.pending.push_back(message);
            }
            self.flush();
            self.label_exiting(Instant::now());
            if let Some(r) = self.retention.as_mut() {
                r.cap_if_grown(&mut self.store);
            }
        }
        for _ in 0..FINAL_ATTEMPTS {
            if self.pending.is_empty() {
                break;
            }
            thread::sleep(RETRY_EVERY);
            self.flush();
        }
        for message in self.pending.drain(..) {
            self.counters.add(Counter::WriteFailures, 1);
            log::error!("could not store before exit, kept here instead: {}", describe(&message));
        }
        // Victims still waiting for their kernel line are stored: publish
        // them as they are rather than not at all.
        let waiting: Vec<i64> = self.awaiting.drain(..).map(|a| a.id).collect();
        self.publish(&waiting);
        self.update_run(true);
    }

    fn flush(&mut self) {
        let mut publish = Vec::new();
        self.flush_into(&mut publish);
        self.publish(&publish);
    }

    /// Publishes stored kills, read back whole (every source's facts).
    fn publish(&mut self, ids: &[i64]) {
        let Some(publisher) = self.publisher.as_mut() else { return };
        let count_others = publisher.wants_group_others();
        // Victims of one memory.oom.group kill stored by the same flush
        // share one count of the group's records (the count scans the
        // group's rows: once per victim, a 5,000-task group kill would cost
        // 25 million row reads). Keyed by boot and group, valid for victims
        // within GROUP_COUNT_SHARED of the one it was counted for.
        let mut counted: Option<(String, String, u64, Option<usize>)> = None;
        for &id in ids {
            match self.store.get(id) {
                Ok(Some(kill)) => {
                    let others = if !count_others {
                        None
                    } else {
                        match (&counted, &kill.boot_id, &kill.oom.group_cgroup, kill.kmsg_usec) {
                            (Some((boot, group, at, total)), Some(b), Some(g), Some(usec))
                                if boot == b && group == g && at.abs_diff(usec) <= GROUP_COUNT_SHARED_US =>
                            {
                                total.map(|n| n.saturating_sub(1))
                            }
                            _ => {
                                let others = self.store.group_others(&kill).unwrap_or_default();
                                if let (Some(b), Some(g), Some(usec)) =
                                    (&kill.boot_id, &kill.oom.group_cgroup, kill.kmsg_usec)
                                {
                                    counted = Some((b.clone(), g.clone(), usec, others.map(|n| n + 1)));
                                }
                                others
                            }
                        }
                    };
                    publisher.kill(&kill, others);
                }
                Ok(None) => log::debug!("kill {id} is gone before it was published (retention)"),
                Err(e) => log::warn!("cannot read kill {id} back to publish it: {e}"),
            }
        }
    }

    fn flush_into(&mut self, publish: &mut Vec<i64>) {
        while let Some(message) = self.pending.front_mut() {
            let result = match message {
                ToWriter::Kill(kill) => {
                    kill.recorded_ns = clock::wall_ns_now();
                    join::record(&mut self.store, kill).map(|recorded| {
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
                                publish.push(id);
                            }
                        } else if kill.kmsg_usec.is_some() {
                            let before = self.awaiting.len();
                            self.awaiting.retain(|a| a.id != recorded.id());
                            if self.awaiting.len() < before {
                                publish.push(recorded.id());
                            }
                        }
                    })
                }
                ToWriter::Annotate(kill) => join::annotate(&mut self.store, kill).map(|id| {
                    if id.is_none() {
                        log::debug!(
                            "no record for reaped pid {}: its kill is older than this log",
                            kill.victim.pid
                        );
                    }
                }),
                ToWriter::Loss(loss) => self.store.record_loss(loss),
                ToWriter::KmsgCursor { boot_id, seq } => self.store.set_kmsg_cursor(boot_id, *seq),
                ToWriter::State { key, value } => self.store.set_state(key, value),
            };
            match result {
                Ok(()) => {
                    if std::mem::take(&mut self.failing) {
                        log::info!("the store accepts writes again");
                    }
                    self.pending.pop_front();
                }
                Err(e) => {
                    if !self.failing {
                        log::error!("{e}; keeping {} message(s) in memory and retrying", self.pending.len());
                        self.failing = true;
                    }
                    return;
                }
            }
        }
    }

    fn label_exiting(&mut self, now: Instant) {
        let live = self.counters.kmsg_live();
        let lost = self.counters.get(Counter::KmsgLost);
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.awaiting.drain(..).partition(|a| now.duration_since(a.since) >= EXITING_AFTER);
        self.awaiting = waiting;
        let ids: Vec<i64> = due.iter().map(|a| a.id).collect();
        for entry in due {
            if !live || lost != entry.lost_then {
                // The line may have been lost with the log: do not guess,
                // but count a record stored without its kernel report.
                self.counters.add(Counter::WithoutKernelReport, 1);
                continue;
            }
            match self.store.mark_exiting(entry.id) {
                Ok(()) => log::info!(
                    "kill {}: no Killed process line came; the victim was already exiting (marked, not killed)",
                    entry.id
                ),
                Err(e) => log::warn!("cannot label kill {} as exiting: {e}", entry.id),
            }
        }
        // Nothing more will come for these: published as they are.
        self.publish(&ids);
    }
}

fn note_recorded(kill: &Kill, recorded: Recorded) {
    let sources: Vec<&str> = kill.sources.iter().map(|s| s.as_str()).collect();
    let what = match recorded {
        Recorded::Inserted(_) => "recorded",
        Recorded::Merged(_) => "joined",
        Recorded::Duplicate(_) => return,
    };
    log::info!(
        "{what} kill {}: pid {} ({}) from {}, anon-rss {} kB",
        recorded.id(),
        kill.victim.pid,
        kill.victim.comm.as_deref().unwrap_or("?"),
        sources.join("+"),
        kill.victim.figures.anon_rss_kb.map_or("?".to_owned(), |v| v.to_string())
    );
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
        writer.pending.push_back(ToWriter::Kill(Box::new(ebpf_kill(10))));
        writer.pending.push_back(ToWriter::Kill(Box::new(ebpf_kill(11))));
        writer.flush();
        // pid 11's line arrives; pid 10's never does.
        let line = Kill {
            boot_id: Some("b".into()),
            kmsg_usec: Some(5_000_000),
            sources: vec![Source::Kmsg],
            victim: Victim { pid: 11, ..Victim::default() },
            ..Kill::default()
        };
        writer.pending.push_back(ToWriter::Kill(Box::new(line)));
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
        writer.pending.push_back(ToWriter::Kill(Box::new(ebpf_kill(10))));
        writer.flush();
        // The kernel log wrapped: the line may have been among the lost.
        counters.add(Counter::KmsgLost, 3);
        writer.label_exiting(Instant::now() + EXITING_AFTER);
        let kill = &writer.store.list(&crate::store::Filter::default()).unwrap()[0];
        assert_eq!(kill.kind, Kind::Kill);
        assert!(writer.awaiting.is_empty(), "decided once, not retried forever");
    }

    #[test]
    fn the_run_row_is_brought_up_to_date_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let row = Run { pid: 7, boot_id: "b".into(), started_ns: 1, last_update_ns: 1, ..Run::default() };
        let id = store.start_run(&row).unwrap();
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(&proc_root).unwrap();
        std::fs::write(proc_root.join("vmstat"), "pgfault 1\noom_kill 12\n").unwrap();
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
}
