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
        let mut counted: Option<GroupCount> = None;
        for &id in ids {
            match self.store.get(id) {
                Ok(Some(kill)) => {
                    let group = group_of(&kill);
                    let shared = counted.as_ref().zip(group).and_then(|(c, g)| c.others_of(g));
                    let others = match shared {
                        _ if !count_others => None,
                        Some(others) => others,
                        None => {
                            let others = self.store.group_others(&kill).unwrap_or_default();
                            if let Some((boot, cgroup, usec)) = group {
                                let total = others.map(|n| n + 1);
                                counted = Some(GroupCount {
                                    boot: boot.to_owned(),
                                    cgroup: cgroup.to_owned(),
                                    usec,
                                    total,
                                });
                            }
                            others
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

/// What tells one victim's memory.oom.group kill from another's in
/// [`Writer::publish`]: its boot, the group's cgroup and its stamp.
fn group_of(kill: &crate::model::Kill) -> Option<(&str, &str, u64)> {
    Some((kill.boot_id.as_deref()?, kill.oom.group_cgroup.as_deref()?, kill.kmsg_usec?))
}

/// One count of a group kill's records, shared by its victims in a flush.
struct GroupCount {
    boot: String,
    cgroup: String,
    usec: u64,
    /// The group's records, this victim's included (`None`: not counted).
    total: Option<usize>,
}

impl GroupCount {
    /// The other victims of `group`'s kill, when this count is of it.
    fn others_of(&self, (boot, cgroup, usec): (&str, &str, u64)) -> Option<Option<usize>> {
        (self.boot == boot && self.cgroup == cgroup && self.usec.abs_diff(usec) <= GROUP_COUNT_SHARED_US)
            .then(|| self.total.map(|n| n.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_count_serves_the_victims_of_its_own_kill_only() {
        let count = GroupCount { boot: "b".into(), cgroup: "/g".into(), usec: 5_000_000, total: Some(50) };
        assert_eq!(count.others_of(("b", "/g", 5_400_000)), Some(Some(49)), "a member of the same kill");
        assert_eq!(count.others_of(("b", "/g", 5_000_000 + GROUP_COUNT_SHARED_US + 1)), None, "a later kill");
        assert_eq!(count.others_of(("b", "/h", 5_000_000)), None, "another group");
        assert_eq!(count.others_of(("c", "/g", 5_000_000)), None, "another boot");
        let uncounted = GroupCount { total: None, ..count };
        assert_eq!(uncounted.others_of(("b", "/g", 5_000_000)), Some(None), "not counted stays unknown");
    }
}
