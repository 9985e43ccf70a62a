//! What the writer tells beyond the kills' rows: the run's row (its
//! counters, the kernel's kill count, why writes fail), and each finished
//! kill to the publisher (journal entry, metrics). A child of the writer,
//! so that it shares the writer's state without widening it.

use std::time::{Duration, Instant};

use super::{Writer, UPDATE_EVERY};
use crate::{clock, kernel::vmstat, model::run::Counter};

/// How close in time (µs, kernel log clock) two victims of one group must
/// be to share a count of the group's records in [`Writer::publish`]: far
/// less than the join window the count itself spans.
const GROUP_COUNT_SHARED_US: u64 = 1_000_000;

impl Writer {
    /// Brings the run row up to date when due (or at once when `now`);
    /// returns how long until it is due again.
    pub(super) fn update_run(&mut self, now: bool, stopping: bool) -> Duration {
        let Some(run) = self.run.as_mut() else {
            return Duration::from_secs(3600);
        };
        let instant = Instant::now();
        if !now && !stopping && instant < run.next {
            return run.next - instant;
        }
        let counts = self.counters.counts();
        let write_error = self.failing.as_ref().map(|f| f.error.clone());
        let write_error_ns = self.failing.as_ref().map(|f| f.since_ns);
        let vmstat_now = match vmstat::read_vmstat_oom_kill(&run.proc_root) {
            Ok(n) => Some(n),
            Err(e) => {
                log::debug!("{e}");
                run.row.vmstat_oom_kill_now
            }
        };
        // Written when something changed, not on the timer: an idle daemon
        // makes no disk writes (each update is a commit and an fsync).
        // `counters_as_of` then is the last change, still true of them.
        let changed = counts != run.row.counts
            || vmstat_now != run.row.vmstat_oom_kill_now
            || write_error != run.row.write_error
            || write_error_ns != run.row.write_error_ns;
        run.next = instant + UPDATE_EVERY;
        if !changed && !stopping && !run.failing {
            return UPDATE_EVERY;
        }
        run.row.counts = counts;
        run.row.last_update_ns = clock::wall_ns_now();
        run.row.write_error = write_error;
        run.row.write_error_ns = write_error_ns;
        run.row.vmstat_oom_kill_now = vmstat_now;
        if stopping {
            run.row.stopped_ns = Some(run.row.last_update_ns);
        }
        match self.store.update_run(run.id, &run.row) {
            Ok(()) => run.failing = false,
            Err(e) if !std::mem::replace(&mut run.failing, true) => {
                log::warn!("cannot update this run's counters in the store ({e}); trying again every 5 s")
            }
            Err(_) => {}
        }
        if let Some(publisher) = self.publisher.as_mut() {
            let unrecorded = match (run.row.vmstat_oom_kill_start, run.row.vmstat_oom_kill_now) {
                (Some(start), Some(now)) => {
                    self.store.kills_between(&run.row.boot_id, run.row.started_ns, None).ok().map(
                        |recorded| {
                            let twice = run.row.counts[Counter::KernelCountedTwice];
                            now.saturating_sub(start).saturating_sub(twice) as i64 - recorded as i64
                        },
                    )
                }
                _ => None,
            };
            publisher.counters(&run.row.counts, run.row.vmstat_oom_kill_now, unrecorded);
        }
        UPDATE_EVERY
    }

    /// Publishes stored kills, read back whole (every source's facts).
    pub(super) fn publish(&mut self, ids: &[i64]) {
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
}
