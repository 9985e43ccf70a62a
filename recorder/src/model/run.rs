//! The daemon's own accounting: the counters the pipeline's stages keep, one
//! `daemon_runs` row per `oomrecorder run` holding them, and the self-audit
//! against the kernel's own OOM-kill count.
//!
//! Every counter is declared once, in [`Counter`], with what the store,
//! `status` and the metrics call it; the live, shared form is
//! `pipeline::counters::Counters` and the stored one [`Counts`].

use std::ops::{Index, IndexMut};

/// One thing the pipeline counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Victims the eBPF program saw (its per-CPU counter).
    VictimsSeen,
    /// Events that reached user space.
    EventsReceived,
    /// Kill records this run inserted (with kills found in the kernel log at start).
    RecordsStored,
    /// Victims lost because the ring buffer was full.
    RingbufFull,
    /// Events user space could not decode.
    Undecodable,
    /// Kernel-log records read.
    KmsgRecords,
    /// Kernel-log records overwritten before they were read.
    KmsgLost,
    /// eBPF records whose kernel report never came while the log had gaps.
    WithoutKernelReport,
    /// Cgroup snapshots that found the cgroup gone or unreadable.
    SnapshotsMissed,
    /// Writes given up on at stop (the store still failed).
    WriteFailures,
    /// Messages held in memory now because the store fails (a gauge).
    WritesPending,
    /// Messages stored after they waited on a failed write.
    StoredLate,
    /// Messages given up because [`MAX_PENDING`](crate::pipeline::writer::MAX_PENDING) already waited.
    QueueFull,
    /// Kills the kernel counted twice: a memory.oom.group kill's chosen
    /// victim. mm/oom_kill.c `oom_kill_process()` kills it with
    /// `__oom_kill_process()`, then `mem_cgroup_scan_tasks(oom_group,
    /// oom_kill_memcg_member)` walks the group, that victim included, and
    /// calls `__oom_kill_process()` on it again: `count_vm_event(OOM_KILL)`
    /// and its `Killed process` line twice, `mark_oom_victim()` (and the
    /// tracepoint) once. Counted by its second line; the audit takes it off.
    KernelCountedTwice,
}

/// How each counter is named where it shows.
pub struct Names {
    /// Its `daemon_runs` column.
    pub column: &'static str,
    /// Its key in `status --json` (under `pipeline`, or `losses` for a loss)
    /// and its `stage` label in the metrics.
    pub key: &'static str,
    /// Its line in `status`.
    pub label: &'static str,
    /// Something the daemon knows it did not record.
    pub loss: bool,
}

impl Counter {
    pub const ALL: [Counter; 14] = [
        Counter::VictimsSeen,
        Counter::EventsReceived,
        Counter::RecordsStored,
        Counter::RingbufFull,
        Counter::Undecodable,
        Counter::KmsgRecords,
        Counter::KmsgLost,
        Counter::WithoutKernelReport,
        Counter::SnapshotsMissed,
        Counter::WriteFailures,
        Counter::WritesPending,
        Counter::StoredLate,
        Counter::QueueFull,
        Counter::KernelCountedTwice,
    ];

    pub const fn names(self) -> Names {
        let (column, key, label, loss) = match self {
            Counter::VictimsSeen => {
                ("victims_seen", "victims_seen", "victims seen by the eBPF program", false)
            }
            Counter::EventsReceived => ("events_received", "events_received", "events received", false),
            Counter::RecordsStored => ("records_stored", "records_stored", "records stored", false),
            Counter::RingbufFull => ("ringbuf_full", "ringbuf_full", "lost: ring buffer full", true),
            Counter::Undecodable => ("undecodable", "decode", "lost: undecodable events", true),
            Counter::KmsgRecords => ("kmsg_records", "kmsg_records", "kernel log records read", false),
            Counter::KmsgLost => ("kmsg_lost", "kmsg_overrun", "lost: kernel log overwritten", true),
            Counter::WithoutKernelReport => {
                ("without_kernel_report", "without_kernel_report", "stored without a kernel report", true)
            }
            Counter::SnapshotsMissed => {
                ("snapshots_missed", "snapshots_missed", "cgroup snapshots missed", true)
            }
            Counter::WriteFailures => {
                ("write_failures", "write_failures", "lost: writes given up at stop", true)
            }
            Counter::WritesPending => {
                ("writes_pending", "writes_pending", "writes pending (store failing)", false)
            }
            Counter::StoredLate => ("stored_late", "stored_late", "stored late, after a failed write", false),
            Counter::QueueFull => ("queue_full", "queue_full", "lost: too many writes pending", true),
            Counter::KernelCountedTwice => {
                ("kernel_counted_twice", "kernel_counted_twice", "counted twice by the kernel", false)
            }
        };
        Names { column, key, label, loss }
    }

    /// Its place in [`Counter::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A value of every counter, as one run's row holds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([u64; Counter::ALL.len()]);

impl Counts {
    /// These counts with `counter` set to `value` (tests and fixtures).
    pub fn with(mut self, counter: Counter, value: u64) -> Counts {
        self[counter] = value;
        self
    }

    /// Everything this run knows it lost, all stages together.
    pub fn lost(&self) -> u64 {
        Counter::ALL.iter().filter(|c| c.names().loss).map(|c| self[*c]).sum()
    }
}

impl Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, counter: Counter) -> &u64 {
        &self.0[counter.index()]
    }
}

impl IndexMut<Counter> for Counts {
    fn index_mut(&mut self, counter: Counter) -> &mut u64 {
        &mut self.0[counter.index()]
    }
}

/// One `daemon_runs` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    pub id: Option<i64>,
    pub pid: u32,
    pub boot_id: String,
    pub started_ns: i64,
    pub last_update_ns: i64,
    pub stopped_ns: Option<i64>,
    pub attach_point: String,
    pub version: String,
    pub counts: Counts,
    pub vmstat_oom_kill_start: Option<u64>,
    pub vmstat_oom_kill_now: Option<u64>,
    /// Why writes fail now (`None` while they succeed), and since when.
    pub write_error: Option<String>,
    pub write_error_ns: Option<i64>,
}

/// The kernel's kill count since the run started against the kills recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub kernel_oom_kills: u64,
    /// Of those, kills the kernel counted twice ([`Counter::KernelCountedTwice`]).
    pub counted_twice: u64,
    pub recorded_kills: u64,
    /// Kills the kernel counted that have no record (never negative).
    pub missing: u64,
    pub matches: bool,
}

impl Audit {
    /// `start`/`now`: the kernel's `oom_kill` then and now. A counter that
    /// went backwards means another boot; the caller checks the boot id, so
    /// this only saturates. `counted_twice`: the run's
    /// [`Counter::KernelCountedTwice`], victims in `now - start` twice.
    pub fn new(start: u64, now: u64, counted_twice: u64, recorded: u64) -> Audit {
        let kernel_oom_kills = now.saturating_sub(start);
        let victims = kernel_oom_kills.saturating_sub(counted_twice);
        Audit {
            kernel_oom_kills,
            counted_twice,
            recorded_kills: recorded,
            missing: victims.saturating_sub(recorded),
            matches: victims == recorded,
        }
    }

    /// The audit in one sentence.
    pub fn words(&self) -> String {
        let mut counted = format!(
            "the kernel counted {} since the daemon started",
            plural(self.kernel_oom_kills, "kill", "kills")
        );
        if self.counted_twice > 0 {
            counted += &format!(
                " ({} of them twice: a memory.oom.group kill counts its chosen victim again)",
                self.counted_twice
            );
        }
        if self.matches {
            return format!("{counted}; {} recorded", plural_are(self.recorded_kills));
        }
        if self.missing > 0 {
            return format!(
                "{} the kernel counted {} missing: {counted}, {} recorded (lost before they reached the \
                 store; see the losses above and the daemon's log)",
                plural(self.missing, "kill", "kills"),
                if self.missing == 1 { "is" } else { "are" },
                self.recorded_kills
            );
        }
        let extra = self.recorded_kills - self.kernel_oom_kills.saturating_sub(self.counted_twice);
        format!(
            "{counted}, but {} recorded: {extra} more than counted (victims marked while already \
             exiting, not yet labelled so, or a kill whose time the daemon misjudged)",
            self.recorded_kills
        )
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn plural_are(n: u64) -> String {
    format!("{n} {}", if n == 1 { "is" } else { "are" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_counts_kills_since_start_and_names_the_difference() {
        let ok = Audit::new(100, 153, 0, 53);
        assert_eq!(
            ok,
            Audit { kernel_oom_kills: 53, counted_twice: 0, recorded_kills: 53, missing: 0, matches: true }
        );
        assert_eq!(ok.words(), "the kernel counted 53 kills since the daemon started; 53 are recorded");

        let short = Audit::new(100, 153, 0, 51);
        assert_eq!((short.missing, short.matches), (2, false));
        assert!(short.words().starts_with("2 kills the kernel counted are missing"), "{}", short.words());

        let extra = Audit::new(7, 8, 0, 2);
        assert_eq!((extra.missing, extra.matches), (0, false));
        assert!(extra.words().contains("1 more than counted"), "{}", extra.words());

        // A counter read on another boot (smaller) does not wrap.
        assert_eq!(Audit::new(10, 3, 0, 0).kernel_oom_kills, 0);
        assert!(Audit::new(0, 1, 0, 1).words().contains("1 kill since"));

        // A group kill of 50: 51 counted, 50 victims, all recorded.
        let group = Audit::new(0, 51, 1, 50);
        assert_eq!((group.missing, group.matches), (0, true));
        assert!(
            group.words().contains("51 kills since the daemon started (1 of them twice"),
            "{}",
            group.words()
        );
        let group_short = Audit::new(0, 51, 1, 49);
        assert_eq!((group_short.missing, group_short.matches), (1, false));
    }

    #[test]
    fn losses_add_up_over_every_stage() {
        let counts = Counts::default()
            .with(Counter::RingbufFull, 1)
            .with(Counter::Undecodable, 2)
            .with(Counter::KmsgLost, 3)
            .with(Counter::WithoutKernelReport, 4)
            .with(Counter::SnapshotsMissed, 5)
            .with(Counter::WriteFailures, 6)
            .with(Counter::KmsgRecords, 100);
        assert_eq!(counts.lost(), 21);
    }

    #[test]
    fn what_waits_is_not_lost_and_what_the_queue_gave_up_is() {
        let counts = Counts::default()
            .with(Counter::WritesPending, 7)
            .with(Counter::StoredLate, 30)
            .with(Counter::QueueFull, 2);
        assert_eq!(counts.lost(), 2);
    }

    #[test]
    fn every_counter_has_its_own_column_and_key() {
        let columns: std::collections::HashSet<_> = Counter::ALL.iter().map(|c| c.names().column).collect();
        let keys: std::collections::HashSet<_> = Counter::ALL.iter().map(|c| c.names().key).collect();
        assert_eq!((columns.len(), keys.len()), (Counter::ALL.len(), Counter::ALL.len()));
        assert!(Counter::ALL.iter().enumerate().all(|(i, c)| c.index() == i), "ALL is in declaration order");
    }
}
