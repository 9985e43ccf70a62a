//! Retention: the writer thread deletes kills older than the configured age,
//! once at start and then daily. It runs in the writer because that thread
//! owns the only read-write connection (no second writer to contend with).

use std::time::{Duration, Instant};

use crate::store::Store;

/// How often old records are looked for after the first time.
pub const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// After a failed prune (database locked, disk full), try again this soon.
const RETRY_AFTER: Duration = Duration::from_secs(3600);

pub struct Retention {
    keep: Duration,
    next: Instant,
}

impl Retention {
    /// Due at once, so a lowered retention takes effect at the next start.
    pub fn new(keep: Duration) -> Retention {
        Retention { keep, next: Instant::now() }
    }

    /// Prunes when due and returns how long until it is due again, so the
    /// writer's idle wait can end in time.
    pub fn prune_if_due(&mut self, store: &mut Store, now_wall_ns: i64) -> Duration {
        let now = Instant::now();
        if now < self.next {
            return self.next - now;
        }
        let cutoff = cutoff_ns(now_wall_ns, self.keep);
        let wait = match store.prune_older_than(cutoff) {
            Ok(0) => PRUNE_EVERY,
            Ok(n) => {
                log::info!(
                    "retention: deleted {n} kill(s) older than {} day(s)",
                    self.keep.as_secs() / 86_400
                );
                PRUNE_EVERY
            }
            Err(e) => {
                log::warn!("retention: could not delete old kills ({e}); trying again in an hour");
                RETRY_AFTER
            }
        };
        self.next = now + wait;
        wait
    }
}

/// Wall-clock ns before which records are deleted; saturates instead of
/// wrapping for absurd retentions (a clock near the epoch keeps everything).
pub fn cutoff_ns(now_wall_ns: i64, keep: Duration) -> i64 {
    let keep_ns = i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX);
    now_wall_ns.saturating_sub(keep_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kill::{Kill, Source, Trigger, Victim},
        store::{Access, Filter},
    };

    #[test]
    fn cutoff_is_now_minus_the_retention_and_never_wraps() {
        let day = Duration::from_secs(86_400);
        assert_eq!(cutoff_ns(10 * 86_400_000_000_000, day), 9 * 86_400_000_000_000);
        assert_eq!(cutoff_ns(5, Duration::from_secs(u64::MAX)), 5 - i64::MAX);
    }

    fn kill_at(time_ns: i64, pid: i32) -> Kill {
        Kill {
            time_ns: Some(time_ns),
            boot_id: Some("b".into()),
            boot_ns: Some(time_ns as u64),
            recorded_ns: time_ns,
            sources: vec![Source::Ebpf],
            victim: Victim { pid, ..Victim::default() },
            trigger: Trigger::default(),
            ..Kill::default()
        }
    }

    #[test]
    fn prunes_at_once_then_waits_a_day() {
        const DAY_NS: i64 = 86_400_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        store.record(&kill_at(DAY_NS / 2, 1)).unwrap();
        store.record(&kill_at(DAY_NS + DAY_NS / 2, 2)).unwrap();
        // An imported kill without a known time ages by when it was recorded.
        let undated = Kill { time_ns: None, boot_id: None, boot_ns: None, ..kill_at(DAY_NS / 4, 3) };
        store.record(&undated).unwrap();

        let mut retention = Retention::new(Duration::from_secs(86_400));
        let now = 2 * DAY_NS;
        assert_eq!(retention.prune_if_due(&mut store, now), PRUNE_EVERY);
        let left: Vec<i32> = store.list(&Filter::default()).unwrap().iter().map(|k| k.victim.pid).collect();
        assert_eq!(left, [2], "only the kill more than a day old goes");

        // Not due again for a day, even if more has aged out meanwhile.
        let again = retention.prune_if_due(&mut store, 3 * DAY_NS);
        assert!(again <= PRUNE_EVERY && again > PRUNE_EVERY - Duration::from_secs(60), "{again:?}");
        assert_eq!(store.list(&Filter::default()).unwrap().len(), 1);
    }
}
