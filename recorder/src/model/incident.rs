//! Incidents: what one OOM did. Most OOMs kill one task; a memory cgroup
//! with `memory.oom.group` set (Kubernetes sets it for every container on
//! cgroup v2 since 1.28, systemd for `OOMPolicy=kill`) has every task in
//! it killed at once (mm/oom_kill.c `oom_kill_process` →
//! `mem_cgroup_scan_tasks(oom_group, oom_kill_memcg_member)`), and the
//! kernel logs "Tasks in <group> are going to be killed due to
//! memory.oom.group set" before their kill lines. Each victim is its own
//! record; the incident is the group of them.
//!
//! Victims of one group kill name the same group on the same boot and are
//! logged within milliseconds of each other (50 tasks in 23 ms on 6.12,
//! tests/fixtures/kmsg-oom-6.12-v2-group.txt). A service or container that
//! is killed again after a restart names the same group, so victims belong
//! together only while each is at most [`GAP_NS`] from the previous one.

use super::Kill;

/// The longest pause between two victims of one group kill.
pub const GAP_NS: u64 = 1_000_000_000;

/// One OOM's victims: one kill, or every task of a memory.oom.group kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// Its victims in the order they came (the caller's order); never
    /// empty: an incident is made with its first victim.
    kills: Vec<Kill>,
}

impl Incident {
    /// Its victims, in the order they came.
    pub fn kills(&self) -> &[Kill] {
        &self.kills
    }

    /// The cgroup of a group kill; `None` for a kill of one task.
    pub fn group(&self) -> Option<&str> {
        self.kills.first().and_then(|k| k.oom.group_cgroup.as_deref())
    }

    /// The victim that names the incident: the first one recorded (the
    /// kernel's chosen victim is logged, and so stored, first).
    pub fn first(&self) -> &Kill {
        // Never empty: an incident is made with its first victim.
        self.kills.iter().min_by_key(|k| k.id.unwrap_or(i64::MAX)).unwrap_or(&self.kills[0])
    }

    /// The incident's id: its first victim's record id.
    pub fn id(&self) -> Option<i64> {
        self.first().id
    }

    /// Victims' record ids, smallest first.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.kills.iter().filter_map(|k| k.id).collect();
        ids.sort_unstable();
        ids
    }
}

/// Where a victim is on the kernel log's clock, for [`GAP_NS`].
fn log_ns(kill: &Kill) -> Option<u64> {
    kill.kmsg_usec.map(|usec| usec.saturating_mul(1_000)).or(kill.mono_ns)
}

/// Whether `kill` joins `incident`: the same group on the same boot (both
/// unknown counts as the same: one imported log), within [`GAP_NS`] of one
/// of its victims.
fn joins(incident: &Incident, kill: &Kill) -> bool {
    let (Some(group), Some(first)) = (kill.oom.group_cgroup.as_deref(), incident.kills.first()) else {
        return false;
    };
    if incident.group() != Some(group) || first.boot_id != kill.boot_id {
        return false;
    }
    let Some(at) = log_ns(kill) else { return false };
    incident.kills.iter().filter_map(log_ns).any(|t| t.abs_diff(at) <= GAP_NS)
}

/// Groups victims into incidents, in the order of each incident's first
/// appearance in `kills`.
pub fn group(kills: Vec<Kill>) -> Vec<Incident> {
    let mut incidents: Vec<Incident> = Vec::new();
    for kill in kills {
        match incidents.iter_mut().rev().find(|i| joins(i, &kill)) {
            Some(incident) => incident.kills.push(kill),
            None => incidents.push(Incident { kills: vec![kill] }),
        }
    }
    incidents
}

/// The incident `kill` belongs to, among `candidates` (records that may
/// share its group kill, itself included).
pub fn of(kill: &Kill, candidates: Vec<Kill>) -> Incident {
    let mut ordered = candidates;
    ordered.sort_by_key(|k| (log_ns(k), k.id));
    // Chains run in log order, so a victim between two others links them.
    group(ordered)
        .into_iter()
        .find(|i| i.kills.iter().any(|k| k.id == kill.id))
        .unwrap_or_else(|| Incident { kills: vec![kill.clone()] })
}

/// Turns a stream of kills in time order (either way) into incidents as
/// soon as each is whole: a pause longer than [`GAP_NS`] between two kills
/// ends every incident before it. Only the kills since the last pause are
/// held.
#[derive(Default)]
pub struct Collapser {
    held: Vec<Kill>,
}

impl Collapser {
    /// Takes the next kill; returns the incidents it completed.
    pub fn push(&mut self, kill: Kill) -> Vec<Incident> {
        let paused = self.held.last().is_some_and(|last| {
            let close = match (last.time_ns, kill.time_ns) {
                (Some(a), Some(b)) => a.abs_diff(b) <= GAP_NS,
                // Kills of unknown time (an imported log without a year)
                // come last, in id order: their log clock, when it is the
                // same boot's, says how far apart they were.
                _ => {
                    last.boot_id == kill.boot_id
                        && log_ns(last).zip(log_ns(&kill)).is_some_and(|(a, b)| a.abs_diff(b) <= GAP_NS)
                }
            };
            !close
        });
        let done = if paused { self.finish() } else { Vec::new() };
        self.held.push(kill);
        done
    }

    /// The incidents of what is held.
    pub fn finish(&mut self) -> Vec<Incident> {
        group(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Oom, Victim};

    fn kill(id: i64, usec: u64, group: Option<&str>) -> Kill {
        Kill {
            id: Some(id),
            boot_id: Some("b".into()),
            kmsg_usec: Some(usec),
            time_ns: Some(1_764_000_000_000_000_000 + usec as i64 * 1_000),
            victim: Victim { pid: id as i32 + 100, ..Victim::default() },
            oom: Oom { group_cgroup: group.map(str::to_owned), ..Oom::default() },
            ..Kill::default()
        }
    }

    #[test]
    fn a_group_kill_is_one_incident_and_a_restart_is_another() {
        let kills = vec![
            kill(1, 4_873_213, Some("/group")),
            kill(2, 4_895_542, Some("/group")),
            kill(3, 4_895_561, Some("/group")),
            kill(4, 4_900_000, None),
            // The same service killed again after its restart, 3 s later.
            kill(5, 7_900_000, Some("/group")),
            kill(6, 7_900_100, Some("/group")),
            kill(7, 4_895_600, Some("/other")),
        ];
        let incidents = group(kills.clone());
        let ids: Vec<Vec<i64>> = incidents.iter().map(Incident::ids).collect();
        assert_eq!(ids, [vec![1, 2, 3], vec![4], vec![5, 6], vec![7]]);
        assert_eq!(incidents[0].group(), Some("/group"));
        assert_eq!((incidents[0].id(), incidents[1].group()), (Some(1), None));
        // One victim's incident, from the records that may share it.
        assert_eq!(of(&kills[2], kills.clone()).ids(), [1, 2, 3]);
        assert_eq!(of(&kills[4], kills.clone()).ids(), [5, 6]);
        assert_eq!(of(&kills[3], kills.clone()).ids(), [4]);
        // Another boot's victims of a group of the same name are not these.
        let mut elsewhere = kill(8, 4_895_570, Some("/group"));
        elsewhere.boot_id = Some("c".into());
        assert_eq!(of(&kills[0], [kills.clone(), vec![elsewhere]].concat()).ids(), [1, 2, 3]);
    }

    #[test]
    fn the_collapser_holds_only_what_a_pause_has_not_ended() {
        let mut collapser = Collapser::default();
        // Newest first, as `list` reads them.
        let mut out = Vec::new();
        for k in [kill(6, 7_900_100, Some("/g")), kill(5, 7_900_000, Some("/g")), kill(4, 4_900_000, None)] {
            out.extend(collapser.push(k));
        }
        assert_eq!(out.iter().map(Incident::ids).collect::<Vec<_>>(), [vec![5, 6]], "ended by the 3 s pause");
        assert_eq!(collapser.held.len(), 1);
        for k in
            [kill(3, 4_895_561, Some("/g")), kill(2, 4_895_542, Some("/g")), kill(1, 4_873_213, Some("/g"))]
        {
            out.extend(collapser.push(k));
        }
        out.extend(collapser.finish());
        let ids: Vec<Vec<i64>> = out.iter().map(Incident::ids).collect();
        assert_eq!(ids, [vec![5, 6], vec![4], vec![1, 2, 3]]);
        assert_eq!(out[2].first().id, Some(1), "named by its first victim");
    }
}
