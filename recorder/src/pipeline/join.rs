//! The join: what the eBPF program, the kernel log, the cgroup snapshot and
//! imports say about one kill becomes one record.
//!
//! Every source records what it knows as soon as it knows it, through
//! [`record`] (or [`annotate`], for facts that only add to a kill already
//! recorded). A fact about a kill that has a record is merged into it, never
//! duplicated: each kind of fact sets the columns it owns (`Store::set_event`,
//! `set_report`, `set_snapshot`, `set_reaped`). So nothing waits on another
//! source: an eBPF event is stored at once (and stays `["ebpf"]` if its
//! `Killed process` line never comes), a kill seen only in the kernel log is
//! stored as `["kmsg"]`, and whichever arrives second joins the first.
//! Replaying the same facts (catch-up after a restart, a group kill's
//! repeated line) changes nothing.
//!
//! Two facts are the same kill when they name the same victim pid on the
//! same boot, close in time ([`crate::model::JOIN_WINDOW_NS`]).

use crate::{
    model::{Kill, Source, JOIN_WINDOW_NS},
    store::{Store, StoreError, Stored},
};

/// Where [`record`] put a kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new row.
    Inserted(i64),
    /// Joined to the row another source made for the same kill.
    Merged(i64),
    /// Already known in full: nothing changed.
    Duplicate(i64),
}

impl Recorded {
    pub fn id(self) -> i64 {
        match self {
            Recorded::Inserted(id) | Recorded::Merged(id) | Recorded::Duplicate(id) => id,
        }
    }
}

/// The clocks that place a fact, for [`distance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    /// CLOCK_BOOTTIME at the kill: only eBPF events (and their snapshots) have it.
    pub boot_ns: Option<u64>,
    pub mono_ns: Option<u64>,
    pub kmsg_usec: Option<u64>,
}

impl Stamps {
    fn of_kill(kill: &Kill) -> Stamps {
        Stamps { boot_ns: kill.boot_ns, mono_ns: kill.mono_ns, kmsg_usec: kill.kmsg_usec }
    }

    fn of_stored(stored: &Stored) -> Stamps {
        Stamps { boot_ns: stored.boot_ns, mono_ns: stored.mono_ns, kmsg_usec: stored.kmsg_usec }
    }

    /// On the kernel log's clock, in ns.
    fn log_clock_ns(self) -> Option<u64> {
        self.kmsg_usec.map(|usec| usec * 1_000).or(self.mono_ns)
    }
}

/// How far apart two facts about the same victim on the same boot are, or
/// `None` when they are not the same kill.
pub fn distance(a: Stamps, b: Stamps) -> Option<u64> {
    // Two eBPF events are one kill only if they are the same event (replay).
    if let (Some(x), Some(y)) = (a.boot_ns, b.boot_ns) {
        return (x == y).then_some(0);
    }
    let (x, y) = (a.log_clock_ns()?, b.log_clock_ns()?);
    let d = x.abs_diff(y);
    (d <= JOIN_WINDOW_NS).then_some(d)
}

/// The record a fact belongs to: found again by an import's fingerprint,
/// else the nearest of the victim's records on the same boot. An imported
/// kill that knows its boot and log stamp (a journal, or a `dmesg` of the
/// running boot) is a fact like any other: it finds the daemon's record of
/// the same kill, and an import of what the daemon already has adds nothing.
enum Partner {
    Fingerprint(i64),
    Record(Stored),
}

fn partner(store: &Store, kill: &Kill) -> Result<Option<Partner>, StoreError> {
    if let Some(fingerprint) = &kill.fingerprint {
        if let Some(id) = store.by_fingerprint(fingerprint)? {
            return Ok(Some(Partner::Fingerprint(id)));
        }
    }
    let Some(boot_id) = &kill.boot_id else { return Ok(None) };
    let mine = Stamps::of_kill(kill);
    Ok(store
        .candidates(boot_id, kill.victim.pid)?
        .into_iter()
        .filter_map(|stored| distance(Stamps::of_stored(&stored), mine).map(|d| (d, stored)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, stored)| Partner::Record(stored)))
}

/// The sources of the record after `kill` joined it, in their order.
fn joined_sources(stored: &Stored, kill: &Kill) -> Vec<Source> {
    let mut sources = stored.sources.clone();
    for source in &kill.sources {
        if !sources.contains(source) {
            sources.push(*source);
        }
    }
    sources.sort();
    sources
}

/// Stores what one source knows about a kill: an eBPF event or the kernel's
/// report of it. Returns the row it landed in.
pub fn record(store: &mut Store, kill: &Kill) -> Result<Recorded, StoreError> {
    let stored = match partner(store, kill)? {
        None => return store.insert(kill).map(Recorded::Inserted),
        Some(Partner::Fingerprint(id)) => return Ok(Recorded::Duplicate(id)),
        Some(Partner::Record(stored)) => stored,
    };
    let sources = joined_sources(&stored, kill);
    let changed = if kill.sources.contains(&Source::Ebpf) {
        let first_event = !stored.sources.contains(&Source::Ebpf);
        store.set_event(stored.id, kill, first_event, &sources)?
    } else {
        store.set_report(stored.id, kill, &sources)?
    };
    Ok(if changed { Recorded::Merged(stored.id) } else { Recorded::Duplicate(stored.id) })
}

/// Adds facts that only complete a kill already recorded: the cgroup
/// snapshot, or the oom_reaper's figures. Returns the record's id, or
/// `None` when no record matches (the fact is then dropped by the caller).
pub fn annotate(store: &mut Store, kill: &Kill) -> Result<Option<i64>, StoreError> {
    let Some(Partner::Record(stored)) = partner(store, kill)? else { return Ok(None) };
    match &kill.oom.reaped {
        Some(reaped) => store.set_reaped(stored.id, reaped)?,
        None => store.set_snapshot(stored.id, kill, &joined_sources(&stored, kill))?,
    };
    Ok(Some(stored.id))
}

#[cfg(test)]
mod tests;
