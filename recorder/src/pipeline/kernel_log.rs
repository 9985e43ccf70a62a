//! The kernel's own OOM reports, read from /dev/kmsg and handed to the writer.
//!
//! At start the reader sits at the oldest record the ring buffer still holds,
//! so its first pass is the catch-up: kills made while the daemon was down
//! are found there and recorded (the store merges them with what it already
//! has, so a replay adds nothing). The sequence number stored at the previous
//! run says how many records were overwritten in between: those are counted
//! as lost, never silently skipped.

use std::sync::{mpsc, Arc};

use super::{counters::Counters, writer::ToWriter};
use crate::{
    clock,
    model::{from_report, run::Counter, Source},
    report::{Item, Line, Parser},
    sources::kmsg::{Kmsg, Read1, SeqTracker},
    store::Loss,
};

/// Where a bounded read of the kernel log stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more to read now.
    Empty,
    /// The budget ran out with records still waiting.
    More,
    /// /dev/kmsg failed for good (logged); stop polling it.
    Failed,
}

pub struct KernelLogReader {
    parser: Parser,
    seq: SeqTracker,
    boot_id: String,
    tx: mpsc::Sender<ToWriter>,
    counters: Arc<Counters>,
    last_seq: Option<u64>,
    sent_seq: Option<u64>,
    repeats_after_ns: i64,
}

impl KernelLogReader {
    /// `cursor`: the last record a previous run read on this boot.
    pub fn new(
        boot_id: String,
        cursor: Option<u64>,
        tx: mpsc::Sender<ToWriter>,
        counters: Arc<Counters>,
    ) -> KernelLogReader {
        counters.set_kmsg_live(true);
        KernelLogReader {
            parser: Parser::new(),
            seq: cursor.map_or_else(SeqTracker::default, |c| SeqTracker::expecting(c + 1)),
            boot_id,
            tx,
            counters,
            last_seq: None,
            sent_seq: cursor,
            repeats_after_ns: i64::MIN,
        }
    }

    /// Counts [`Counter::KernelCountedTwice`] only for kills at or after
    /// `wall_ns` (the daemon's start): the run's audit counts the records
    /// of kills since then, and the catch-up reads the earlier log too. The
    /// kill's time is its record's, from the same stamp and clock.
    pub fn counting_repeats_after(mut self, wall_ns: i64) -> KernelLogReader {
        self.repeats_after_ns = wall_ns;
        self
    }

    /// Reads every record available now. Returns false when /dev/kmsg failed
    /// for good (the caller stops polling it; the error is logged).
    pub fn drain<R: std::io::Read>(&mut self, kmsg: &mut Kmsg<R>) -> bool {
        loop {
            match self.drain_some(kmsg, usize::MAX) {
                Drained::Empty => return true,
                Drained::More => {}
                Drained::Failed => return false,
            }
        }
    }

    /// Reads at most `budget` records. While the kernel keeps printing (a
    /// memory.oom.group kill of thousands of tasks prints a line per task,
    /// for seconds) the log is never empty: reading it to the end would keep
    /// the event loop from the ring buffer, which then fills and drops
    /// victims. So the loop takes turns.
    pub fn drain_some<R: std::io::Read>(&mut self, kmsg: &mut Kmsg<R>, budget: usize) -> Drained {
        let mut left = budget;
        let drained = loop {
            if left == 0 {
                break Drained::More;
            }
            left -= 1;
            match kmsg.read_one() {
                Ok(Read1::Record(record)) => {
                    self.counters.add(Counter::KmsgRecords, 1);
                    self.count_gap(record.seq);
                    self.last_seq = Some(record.seq);
                    if !record.is_kernel() {
                        continue;
                    }
                    for text in record.text.lines() {
                        let items = self.parser.push(Line { usec: Some(record.usec), text });
                        self.send_items(items);
                    }
                }
                Ok(Read1::Overrun) => {
                    log::warn!("the kernel log wrapped before it was read; counting what was overwritten");
                }
                Ok(Read1::Malformed { raw, error }) => {
                    log::warn!("kernel log record not understood ({error}), kept out: {raw:?}");
                }
                Ok(Read1::Empty) => break Drained::Empty,
                Err(e) => {
                    log::error!("reading /dev/kmsg failed ({e}); kernel reports are no longer read");
                    self.counters.set_kmsg_live(false);
                    break Drained::Failed;
                }
            }
        };
        self.send_cursor();
        drained
    }

    fn count_gap(&mut self, seq: u64) {
        let gap = self.seq.saw(seq);
        if gap == 0 {
            return;
        }
        self.counters.add(Counter::KmsgLost, gap);
        let detail = format!("records {} to {} overwritten before they were read", seq - gap, seq - 1);
        log::warn!("kernel log: {gap} records lost ({detail}); OOM reports among them are not joined");
        self.send(ToWriter::Loss(Loss {
            time_ns: clock::wall_ns_now(),
            boot_id: self.boot_id.clone(),
            reason: "kmsg_overrun",
            count: gap,
            detail: Some(detail),
        }));
    }

    fn send_items(&mut self, items: Vec<Item>) {
        let now = clock::wall_ns_now();
        for item in items {
            let boot_id = Some(self.boot_id.as_str());
            let message = match &item {
                Item::Kill(kk) => {
                    // Still sent: the join merges it into its victim's
                    // record, which learns from it the group's cgroup (the
                    // chosen victim's first line comes before `Tasks in`).
                    if kk.repeat_of_chosen
                        && kk
                            .kill_usec()
                            .is_some_and(|u| clock::mono_to_wall_ns(u * 1_000) >= self.repeats_after_ns)
                    {
                        self.counters.add(Counter::KernelCountedTwice, 1);
                    }
                    let time_ns = kk.usec.map(|usec| clock::mono_to_wall_ns(usec * 1_000));
                    ToWriter::Kill(Box::new(from_report::from_kernel(
                        kk,
                        Source::Kmsg,
                        boot_id,
                        time_ns,
                        now,
                    )))
                }
                // The reaper's figures only add to a kill already known.
                Item::Reaped(r) => {
                    ToWriter::Annotate(Box::new(from_report::from_reaped(r, Source::Kmsg, boot_id, now)))
                }
                Item::Exiting(e) => {
                    let time_ns = e.usec.map(|usec| clock::mono_to_wall_ns(usec * 1_000));
                    let mut kill = from_report::from_exiting(e, Source::Kmsg, boot_id, now);
                    kill.time_ns = time_ns;
                    ToWriter::Kill(Box::new(kill))
                }
            };
            self.send(message);
        }
    }

    fn send_cursor(&mut self) {
        if let Some(seq) = self.last_seq.filter(|s| Some(*s) != self.sent_seq) {
            self.sent_seq = Some(seq);
            self.send(ToWriter::KmsgCursor { boot_id: self.boot_id.clone(), seq });
        }
    }

    fn send(&self, message: ToWriter) {
        if self.tx.send(message).is_err() {
            log::error!("store writer is gone; a kernel-log fact was not recorded");
        }
    }
}
