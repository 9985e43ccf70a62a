//! The pipeline's live counters, shared by its threads for one run: each
//! stage adds to or sets the counters it owns (atomics, never a wait on the
//! disk), and the writer copies them into the run's row. The counters
//! themselves, and what they are called, are `model::run::Counter`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::model::run::{Counter, Counts};

#[derive(Debug, Default)]
pub struct Counters {
    values: [AtomicU64; Counter::ALL.len()],
    /// The kernel log is being read live (a victim without its line after a
    /// while, then, was only marked, not killed).
    kmsg_live: AtomicBool,
}

impl Counters {
    pub fn add(&self, counter: Counter, n: u64) {
        self.slot(counter).fetch_add(n, Ordering::Relaxed);
    }

    /// For a counter whose one owner knows its total (the eBPF program's).
    pub fn set(&self, counter: Counter, value: u64) {
        self.slot(counter).store(value, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.slot(counter).load(Ordering::Relaxed)
    }

    /// Every counter now.
    pub fn counts(&self) -> Counts {
        Counter::ALL.iter().fold(Counts::default(), |counts, c| counts.with(*c, self.get(*c)))
    }

    pub fn set_kmsg_live(&self, live: bool) {
        self.kmsg_live.store(live, Ordering::Relaxed);
    }

    pub fn kmsg_live(&self) -> bool {
        self.kmsg_live.load(Ordering::Relaxed)
    }

    fn slot(&self, counter: Counter) -> &AtomicU64 {
        &self.values[counter.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_its_own_and_all_are_read_together() {
        let counters = Counters::default();
        counters.add(Counter::SnapshotsMissed, 2);
        counters.add(Counter::SnapshotsMissed, 1);
        counters.set(Counter::VictimsSeen, 7);
        let counts = counters.counts();
        assert_eq!((counts[Counter::SnapshotsMissed], counts[Counter::VictimsSeen]), (3, 7));
        assert_eq!(counts[Counter::EventsReceived], 0);
        assert_eq!(counts.lost(), 3);
    }
}
