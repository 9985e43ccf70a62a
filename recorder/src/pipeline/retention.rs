//! Retention: the writer thread deletes kills older than the configured age,
//! once at start and then daily, and the oldest kills beyond the record cap,
//! at start, daily and within seconds of new kills (an OOM storm must not
//! grow the store without bound until the next day). It runs in the writer
//! because that thread owns the only read-write connection (no second
//! writer to contend with); `oomrecorder prune` does the same by hand.

use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// How often old records are looked for after the first time.
pub const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);
/// After a failed prune (database locked, disk full), try again this soon.
const RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The record cap is checked at most this often while kills come in (each
/// check is one indexed DELETE; a storm must not make one per kill).
const CAP_EVERY: Duration = Duration::from_secs(5);

/// The defaults: half a year, and a cap that keeps the database in the tens
/// of megabytes (a kill with its report and snapshot is a few kB).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 180;
pub const DEFAULT_MAX_RECORDS: u64 = 100_000;

/// What one prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub by_age: u64,
    pub by_count: u64,
}

/// Deletes kills older than `max_age` (when set), then the oldest beyond
/// `max_records` (when set).
pub fn prune(
    store: &mut Store,
    now_wall_ns: i64,
    max_age: Option<Duration>,
    max_records: Option<u64>,
) -> Result<Pruned, StoreError> {
    let by_age = match max_age {
        Some(keep) => store.prune_older_than(cutoff_ns(now_wall_ns, keep))?,
        None => 0,
    };
    let by_count = match max_records {
        Some(n) => store.prune_beyond(n)?,
        None => 0,
    };
    // The daemon's own run rows age with the kills (and are capped).
    store.prune_runs(max_age.map(|keep| cutoff_ns(now_wall_ns, keep)))?;
    Ok(Pruned { by_age, by_count })
}

/// What [`prune`] would delete now, deleting nothing (`prune --dry-run`).
pub fn would_prune(
    store: &Store,
    now_wall_ns: i64,
    max_age: Option<Duration>,
    max_records: Option<u64>,
) -> Result<Pruned, StoreError> {
    let (by_age, by_count) =
        store.would_prune(max_age.map(|keep| cutoff_ns(now_wall_ns, keep)), max_records)?;
    Ok(Pruned { by_age, by_count })
}

pub struct Retention {
    keep: Option<Duration>,
    max_records: Option<u64>,
    next: Instant,
    /// A kill was inserted since the cap was last checked.
    grown: bool,
    next_cap: Instant,
}

impl Retention {
    /// Due at once, so a lowered retention takes effect at the next start.
    /// `None` for either limit: no limit of that kind.
    pub fn new(keep: Option<Duration>, max_records: Option<u64>) -> Retention {
        let now = Instant::now();
        Retention { keep, max_records, next: now, grown: false, next_cap: now }
    }

    /// The writer inserted a kill.
    pub fn note_inserted(&mut self) {
        self.grown = true;
    }

    /// Deletes the oldest kills beyond the cap when kills came in since the
    /// last check and the last check is [`CAP_EVERY`] old.
    pub fn cap_if_grown(&mut self, store: &mut Store) {
        let (Some(max), true) = (self.max_records, self.grown) else {
            return;
        };
        let now = Instant::now();
        if now < self.next_cap {
            return;
        }
        self.next_cap = now + CAP_EVERY;
        self.grown = false;
        match store.prune_beyond(max) {
            Ok(0) => {}
            Ok(n) => log::info!("retention: deleted the {n} oldest kill(s) beyond the newest {max}"),
            Err(e) => {
                self.grown = true;
                log::warn!("retention: could not delete kills beyond the newest {max} ({e})");
            }
        }
    }

    /// Prunes when due and returns how long until it is due again, so the
    /// writer's idle wait can end in time.
    pub fn prune_if_due(&mut self, store: &mut Store, now_wall_ns: i64) -> Duration {
        let now = Instant::now();
        if now < self.next {
            return self.next - now;
        }
        let wait = match prune(store, now_wall_ns, self.keep, self.max_records) {
            Ok(pruned) => {
                if let (Some(keep), n @ 1..) = (self.keep, pruned.by_age) {
                    log::info!(
                        "retention: deleted {n} kill(s) older than {} day(s)",
                        keep.as_secs() / 86_400
                    );
                }
                if let (Some(max), n @ 1..) = (self.max_records, pruned.by_count) {
                    log::info!("retention: deleted the {n} oldest kill(s) beyond the newest {max}");
                }
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
        model::{Kill, Source, Trigger, Victim},
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
        store.insert(&kill_at(DAY_NS / 2, 1)).unwrap();
        store.insert(&kill_at(DAY_NS + DAY_NS / 2, 2)).unwrap();
        // An imported kill without a known time ages by when it was recorded.
        let undated = Kill { time_ns: None, boot_id: None, boot_ns: None, ..kill_at(DAY_NS / 4, 3) };
        store.insert(&undated).unwrap();

        let mut retention = Retention::new(Some(Duration::from_secs(86_400)), None);
        let now = 2 * DAY_NS;
        assert_eq!(retention.prune_if_due(&mut store, now), PRUNE_EVERY);
        let left: Vec<i32> = store.list(&Filter::default()).unwrap().iter().map(|k| k.victim.pid).collect();
        assert_eq!(left, [2], "only the kill more than a day old goes");

        // Not due again for a day, even if more has aged out meanwhile.
        let again = retention.prune_if_due(&mut store, 3 * DAY_NS);
        assert!(again <= PRUNE_EVERY && again > PRUNE_EVERY - Duration::from_secs(60), "{again:?}");
        assert_eq!(store.list(&Filter::default()).unwrap().len(), 1);
    }

    #[test]
    fn the_record_cap_keeps_the_newest() {
        const DAY_NS: i64 = 86_400_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        for pid in 1..=5 {
            store.insert(&kill_at(i64::from(pid) * DAY_NS, pid)).unwrap();
        }
        let pruned =
            prune(&mut store, 6 * DAY_NS, Some(Duration::from_secs(3 * 86_400 + 1)), Some(2)).unwrap();
        // Age first (pids 1 and 2 are older than three days), then the cap.
        assert_eq!(pruned, Pruned { by_age: 2, by_count: 1 });
        let left: Vec<i32> = store.list(&Filter::default()).unwrap().iter().map(|k| k.victim.pid).collect();
        assert_eq!(left, [5, 4]);
        assert_eq!(prune(&mut store, 6 * DAY_NS, None, None).unwrap(), Pruned::default());

        // The writer's cap: only after an insert.
        let mut retention = Retention::new(None, Some(1));
        retention.cap_if_grown(&mut store);
        assert_eq!(store.kill_count().unwrap(), 2, "nothing inserted, nothing checked");
        retention.note_inserted();
        retention.cap_if_grown(&mut store);
        assert_eq!(store.kill_count().unwrap(), 1);
    }
}
