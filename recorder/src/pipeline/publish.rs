//! What a recorded kill tells the world beyond the store, once its record
//! holds what the sources will give it: one structured journal entry (for
//! log pipelines and `journalctl -x`) and the Prometheus metrics.
//!
//! The writer publishes a kill once: when its record has the kernel's
//! report, or when the report is known not to come (the victim was exiting,
//! or the log lost it: `writer::EXITING_AFTER`). Publishing at the first
//! fact instead would name a kill before its scope and constraint are known;
//! publishing at every merge would count it twice.

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
};

use crate::{
    metrics::{self, Constraint, KillLabels, LossStage, Metrics, Scope},
    model::run::{Counter, Counts},
    model::{
        diagnosis::{self, Context},
        identity, json, scope, Kill,
    },
    store::{Filter, Order, Rows, Store, StoreError},
};

/// The MESSAGE_ID of the entry per kill: fixed forever (generated once with
/// `journalctl --new-id128`), the key of packaging/systemd/oomrecorder.catalog.
pub const MESSAGE_ID: &str = "51782f71224d41b4983f0f2dbe35cff0";

/// Where the journal listens (sd_journal_sendv(3) writes there).
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The metrics' own loss stages, from the run's counters.
const STAGES: [(LossStage, Counter); 7] = [
    (LossStage::RingbufFull, Counter::RingbufFull),
    (LossStage::Decode, Counter::Undecodable),
    (LossStage::KmsgOverrun, Counter::KmsgLost),
    (LossStage::WithoutKernelReport, Counter::WithoutKernelReport),
    (LossStage::SnapshotsMissed, Counter::SnapshotsMissed),
    (LossStage::WriteFailures, Counter::WriteFailures),
    (LossStage::QueueFull, Counter::QueueFull),
];

/// Counts the kills already in the store at start into `metrics`, so that
/// their counts are all-time and survive a restart (no journal entry: each
/// was written when its kill was recorded). Only records up to `until_id`,
/// the store's last id when the daemon started: every later one is counted
/// as the writer publishes it, so none is counted twice. Streams the store
/// a row at a time; run on a thread of its own with its own read-only
/// connection, so that a store of 200,000 kills delays neither the
/// recording nor the listener (until it is done, the counts only lack the
/// earlier kills).
pub fn seed(metrics: &Metrics, store: &Store, until_id: i64) -> Result<u64, StoreError> {
    let filter = Filter { until_id: Some(until_id), order: Order::Stored, ..Filter::default() };
    let mut seeded = 0;
    store.for_each(&filter, Rows::Whole, |kill| {
        metrics.seed(&labels(&kill), 1, kill.time_ns.map_or(0.0, |ns| ns as f64 / 1e9));
        seeded += 1;
        Ok::<_, StoreError>(ControlFlow::Continue(()))
    })?;
    Ok(seeded)
}

/// The sinks of the writer's published kills.
pub struct Publisher {
    metrics: Option<Metrics>,
    /// node_exporter's textfile, rewritten after each kill.
    textfile: Option<PathBuf>,
    textfile_failing: bool,
    journal: bool,
    journal_failing: bool,
}

impl Publisher {
    /// `journal`: write an entry per kill when the journal's socket exists.
    pub fn new(metrics: Option<Metrics>, textfile: Option<PathBuf>, journal: bool) -> Publisher {
        let journal = journal && Path::new(JOURNAL_SOCKET).exists();
        if !journal {
            log::debug!("no journal at {JOURNAL_SOCKET}: no structured entry per kill");
        }
        Publisher { metrics, textfile, textfile_failing: false, journal, journal_failing: false }
    }

    /// Whether [`Publisher::kill`] uses its `group_others` (the journal
    /// entry's sentence does; the metrics do not): counting them is a query
    /// per kill, not worth making for nobody.
    pub fn wants_group_others(&self) -> bool {
        self.journal
    }

    /// One kill, as stored (its `id` set). `group_others`: the other victims
    /// of its memory.oom.group kill, for the diagnosis sentence.
    pub fn kill(&mut self, kill: &Kill, group_others: Option<usize>) {
        if let Some(metrics) = &self.metrics {
            let time = kill.time_ns.map_or(0.0, |ns| ns as f64 / 1e9);
            metrics.record_kill(&labels(kill), time, rss_bytes(kill));
            self.write_textfile();
        }
        if self.journal {
            let fields = journal_fields(kill, group_others);
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            match systemd::journal::send(&refs) {
                Ok(()) => self.journal_failing = false,
                Err(e) if !self.journal_failing => {
                    log::warn!("cannot write kill {}'s journal entry: {e}", kill.id.unwrap_or(0));
                    self.journal_failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// The run's counters and the kernel's count, for the metrics (the
    /// writer calls this when it brings the run row up to date).
    /// `unrecorded`: the audit, kernel kills since start without a record.
    pub fn counters(&mut self, counts: &Counts, kernel_oom_kills: Option<u64>, unrecorded: Option<i64>) {
        let Some(metrics) = &self.metrics else { return };
        for (stage, counter) in STAGES {
            metrics.set_events_lost(stage, counts[counter]);
        }
        metrics.set_writes_pending(counts[Counter::WritesPending]);
        if let Some(total) = kernel_oom_kills {
            metrics.set_kernel_oom_kills(total);
        }
        if let Some(unrecorded) = unrecorded {
            metrics.set_audit_unrecorded_kills(unrecorded);
        }
    }

    fn write_textfile(&mut self) {
        let (Some(metrics), Some(path)) = (&self.metrics, &self.textfile) else { return };
        match metrics::write_textfile(metrics, path) {
            Ok(()) => self.textfile_failing = false,
            Err(e) if !self.textfile_failing => {
                log::warn!("{e}");
                self.textfile_failing = true;
            }
            Err(_) => {}
        }
    }
}

/// The victim's resident memory at the kill (anon + file + shmem), bytes.
fn rss_bytes(kill: &Kill) -> Option<u64> {
    let f = &kill.victim.figures;
    Some((f.anon_rss_kb? + f.file_rss_kb? + f.shmem_rss_kb?) * 1024)
}

/// The path of the memory cgroup whose limit fired: the report's
/// `oom_memcg=`, else the level the kill-time counters show at its limit.
/// `None` for a machine-wide OOM, or when nothing says.
pub fn oom_cgroup(kill: &Kill) -> Option<String> {
    if let Some(path) = &kill.oom.oom_cgroup {
        return Some(path.clone());
    }
    let (level, _) = json::oom_level(kill);
    kill.kernel.as_ref()?.memcg.get(level?)?.path.clone()
}

/// Which kind of OOM, as `model::scope` classifies it for every other view.
fn constraint(kill: &Kill) -> Constraint {
    scope::classify(kill).map_or(Constraint::Unknown, |s| Constraint::from_kernel(s.kernel_name()))
}

/// The level whose limit fired, in the names of the metrics' `scope`.
fn scope(kill: &Kill) -> Scope {
    let Some(path) = oom_cgroup(kill) else {
        return match constraint(kill) {
            Constraint::None | Constraint::Cpuset | Constraint::MemoryPolicy => Scope::Node,
            Constraint::Memcg | Constraint::Unknown => Scope::Unknown,
        };
    };
    let at = identity::from_path(&path);
    let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    if at.id.is_some() {
        Scope::Container
    } else if at.pod_uid.is_some() {
        Scope::Pod
    } else if last.ends_with(".service") || last.ends_with(".scope") {
        Scope::Unit
    } else if last.ends_with(".slice") {
        Scope::Slice
    } else if path == "/" {
        Scope::Node
    } else {
        Scope::Cgroup
    }
}

/// Who the victim was: the record's identity, else what its cgroup path
/// says. A kill is published when its report is in, which may be before
/// the cgroup snapshot names it: without the path's answer the same
/// container's kills would be split between two label sets.
fn identity_of(kill: &Kill) -> Option<identity::Identity> {
    kill.container.clone().or_else(|| kill.cgroup.as_deref().and_then(identity::named_by_path))
}

/// The metrics' labels of a kill: empty where it was not in Kubernetes or in
/// a unit (every unknown label is empty, never a placeholder).
pub fn labels(kill: &Kill) -> KillLabels {
    let c = identity_of(kill).unwrap_or_default();
    KillLabels {
        namespace: c.pod_namespace.unwrap_or_default(),
        pod: c.pod_name.unwrap_or_default(),
        container: c.container_name.unwrap_or_default(),
        unit: c.unit.unwrap_or_default(),
        scope: scope(kill),
        constraint: constraint(kill),
        comm: kill.victim.comm.clone().unwrap_or_default(),
    }
}

/// The journal entry of a kill, as `FIELD=value` strings: the fields every
/// entry has, then those known for this kill (an unknown one is left out,
/// never written empty). docs/fleets.md lists them; the catalog's text uses
/// only the fields every entry has.
pub fn journal_fields(kill: &Kill, group_others: Option<usize>) -> Vec<String> {
    let (_, sentence) = diagnosis::diagnose(kill, &Context { group_others });
    let l = labels(kill);
    let comm = kill.victim.comm.as_deref().unwrap_or("?");
    let mut fields = vec![
        format!("MESSAGE_ID={MESSAGE_ID}"),
        "PRIORITY=4".to_owned(),
        "SYSLOG_IDENTIFIER=oomrecorder".to_owned(),
        format!("MESSAGE=OOM kill of {} (pid {}): {}", one_line(comm), kill.victim.pid, one_line(&sentence)),
        format!("OOMRECORDER_RECORD_ID={}", kill.id.unwrap_or(0)),
        format!("OOMRECORDER_PID={}", kill.victim.pid),
        format!("OOMRECORDER_COMM={}", one_line(comm)),
        format!("OOMRECORDER_SCOPE={}", if l.scope == Scope::Unknown { "unknown" } else { l.scope.as_str() }),
        format!("OOMRECORDER_CGROUP={}", one_line(kill.cgroup.as_deref().unwrap_or("unknown"))),
    ];
    let c = identity_of(kill);
    let c = c.as_ref();
    let limit = oom_cgroup(kill)
        .and_then(|_| kill.oom.memory_limit_kb.map(|kb| kb * 1024))
        .or(kill.memory_limit_bytes);
    let optional = [
        ("OOMRECORDER_CONSTRAINT", Some(l.constraint.as_str().to_owned()).filter(|s| !s.is_empty())),
        ("OOMRECORDER_OOM_CGROUP", oom_cgroup(kill)),
        ("OOMRECORDER_RUNTIME", c.and_then(|c| c.runtime.clone())),
        ("OOMRECORDER_CONTAINER_ID", c.and_then(|c| c.id.clone())),
        ("OOMRECORDER_CONTAINER", c.and_then(|c| c.container_name.clone())),
        ("OOMRECORDER_POD", c.and_then(|c| c.pod_name.clone())),
        ("OOMRECORDER_NAMESPACE", c.and_then(|c| c.pod_namespace.clone())),
        ("OOMRECORDER_POD_UID", c.and_then(|c| c.pod_uid.clone())),
        ("OOMRECORDER_UNIT", c.and_then(|c| c.unit.clone())),
        ("OOMRECORDER_IMAGE", c.and_then(|c| c.image.clone())),
        ("OOMRECORDER_LIMIT_BYTES", limit.map(|b| b.to_string())),
        ("OOMRECORDER_ANON_RSS_BYTES", kill.victim.figures.anon_rss_kb.map(|kb| (kb * 1024).to_string())),
        ("OOMRECORDER_RSS_BYTES", rss_bytes(kill).map(|b| b.to_string())),
        ("OOMRECORDER_TRIGGER_PID", kill.trigger.pid.map(|p| p.to_string())),
        ("OOMRECORDER_TRIGGER_COMM", kill.trigger.comm.clone()),
        ("OOMRECORDER_GROUP_CGROUP", kill.oom.group_cgroup.clone()),
        ("OOMRECORDER_KIND", Some(kill.kind.as_str().to_owned())),
        ("OOMRECORDER_BOOT_ID", kill.boot_id.clone()),
        ("OOMRECORDER_KILL_TIME", json::rfc3339_ms(kill.time_ns).as_str().map(str::to_owned)),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={}", one_line(&v)))));
    fields
}

/// A value on one line: a comm or a cgroup name may hold a newline, which
/// would end the field (sd_journal_sendv(3) takes `FIELD=value` strings
/// verbatim; a newline is allowed but breaks line-based readers).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{identity::Identity, Figures, KernelState, MemcgLevel, Oom, Victim};

    const CID: &str = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    const POD: &str = "/kubepods/burstable/pod0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

    /// Published before the snapshot named it, a kill still gets the
    /// labels its cgroup path gives: one series per unit, not two.
    #[test]
    fn a_kill_not_yet_named_is_labelled_from_its_cgroup_path() {
        let kill = Kill {
            cgroup: Some("/system.slice/web.service".into()),
            oom: Oom { constraint: Some("CONSTRAINT_MEMCG".into()), ..Oom::default() },
            ..Kill::default()
        };
        assert_eq!(kill.container, None);
        assert_eq!(labels(&kill).unit, "web.service");
        let named =
            Kill { container: Some(identity::from_path("/system.slice/web.service")), ..kill.clone() };
        assert_eq!(labels(&named), labels(&kill));
    }

    fn kill_in(cgroup: &str, oom: Oom) -> Kill {
        let mut container = identity::from_path(cgroup);
        container.pod_name = Some("cart-6c9f8-x2x7q".into());
        container.pod_namespace = Some("shop".into());
        container.container_name = Some("cart".into());
        Kill {
            id: Some(42),
            cgroup: Some(cgroup.into()),
            victim: Victim {
                pid: 4711,
                comm: Some("java".into()),
                figures: Figures {
                    anon_rss_kb: Some(1000),
                    file_rss_kb: Some(20),
                    shmem_rss_kb: Some(4),
                    ..Figures::default()
                },
                ..Victim::default()
            },
            oom,
            container: Some(container),
            ..Kill::default()
        }
    }

    fn memcg_oom(at: &str) -> Oom {
        Oom {
            constraint: Some("CONSTRAINT_MEMCG".into()),
            oom_cgroup: Some(at.into()),
            memory_limit_kb: Some(65_536),
            ..Oom::default()
        }
    }

    #[test]
    fn the_scope_is_the_level_whose_limit_fired() {
        let container = format!("{POD}/{CID}");
        let cases = [
            (memcg_oom(&container), Scope::Container),
            (memcg_oom(POD), Scope::Pod),
            (memcg_oom("/system.slice/backup.service"), Scope::Unit),
            (memcg_oom("/user.slice"), Scope::Slice),
            (memcg_oom("/batch"), Scope::Cgroup),
            (
                Oom { constraint: Some("CONSTRAINT_NONE".into()), global: Some(true), ..Oom::default() },
                Scope::Node,
            ),
            (Oom { constraint: Some("CONSTRAINT_CPUSET".into()), ..Oom::default() }, Scope::Node),
            (Oom::default(), Scope::Unknown),
            // A rate-limited header: the kill line says memcg, not which level.
            (Oom { reason: Some("Memory cgroup out of memory".into()), ..Oom::default() }, Scope::Unknown),
        ];
        for (oom, want) in cases {
            let kill = kill_in(&container, oom.clone());
            assert_eq!(labels(&kill).scope, want, "{oom:?}");
        }
        let docker = kill_in(&format!("/docker/{CID}"), memcg_oom(&format!("/docker/{CID}")));
        assert_eq!(labels(&docker).scope, Scope::Container, "any runtime's container");
    }

    #[test]
    fn without_a_report_the_kill_time_counters_name_the_level() {
        let container = format!("{POD}/{CID}");
        let mut kill = kill_in(&container, Oom::default());
        let level = |path: &str, usage: u64, limit: u64| MemcgLevel {
            path: Some(path.into()),
            memory_usage_bytes: usage,
            memory_limit_bytes: limit,
            ..MemcgLevel::default()
        };
        let unlimited = (i64::MAX as u64 / 4096) * 4096;
        kill.kernel = Some(KernelState {
            page_size: 4096,
            memcg: vec![level(&container, 10 << 20, unlimited), level(POD, 64 << 20, 64 << 20)],
            ..KernelState::default()
        });
        let l = labels(&kill);
        assert_eq!((l.scope, l.constraint), (Scope::Pod, Constraint::Memcg));
        assert_eq!(oom_cgroup(&kill).as_deref(), Some(POD));
    }

    #[test]
    fn the_labels_name_the_pod_and_leave_the_unknown_empty() {
        let l = labels(&kill_in(&format!("{POD}/{CID}"), memcg_oom(POD)));
        assert_eq!(
            (l.namespace.as_str(), l.pod.as_str(), l.container.as_str(), l.comm.as_str()),
            ("shop", "cart-6c9f8-x2x7q", "cart", "java")
        );
        assert_eq!(l.constraint, Constraint::Memcg);
        let mut bare = kill_in("/batch", memcg_oom("/batch"));
        bare.container = Some(Identity::default());
        let l = labels(&bare);
        assert!(l.namespace.is_empty() && l.pod.is_empty() && l.container.is_empty() && l.unit.is_empty());
    }

    #[test]
    fn the_journal_entry_has_the_catalogs_fields_and_leaves_the_unknown_out() {
        let kill = kill_in(&format!("{POD}/{CID}"), memcg_oom(POD));
        let fields = journal_fields(&kill, None);
        let get = |key: &str| {
            fields
                .iter()
                .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_owned)
        };
        assert_eq!(get("MESSAGE_ID").as_deref(), Some(MESSAGE_ID));
        assert_eq!(get("PRIORITY").as_deref(), Some("4"));
        assert_eq!(get("OOMRECORDER_RECORD_ID").as_deref(), Some("42"));
        assert_eq!(get("OOMRECORDER_PID").as_deref(), Some("4711"));
        assert_eq!(get("OOMRECORDER_COMM").as_deref(), Some("java"));
        assert_eq!(get("OOMRECORDER_SCOPE").as_deref(), Some("pod"));
        assert_eq!(get("OOMRECORDER_POD").as_deref(), Some("cart-6c9f8-x2x7q"));
        assert_eq!(get("OOMRECORDER_LIMIT_BYTES").as_deref(), Some("67108864"));
        assert_eq!(
            get("OOMRECORDER_RSS_BYTES").as_deref(),
            Some(((1000 + 20 + 4) * 1024).to_string().as_str())
        );
        assert_eq!(
            get("MESSAGE").as_deref(),
            Some("OOM kill of java (pid 4711): hit its 64.0 MiB limit in pod cart-6c9f8-x2x7q (container cart): anon 1000.0 KiB (1%)")
        );
        assert_eq!(get("OOMRECORDER_IMAGE"), None, "unknown: left out, not empty");
        assert_eq!(get("OOMRECORDER_TRIGGER_COMM"), None);
        // Every field once, each FIELD=value on one line.
        let keys: std::collections::HashSet<_> =
            fields.iter().map(|f| f.split('=').next().unwrap()).collect();
        assert_eq!(keys.len(), fields.len());
        assert!(fields.iter().all(|f| !f.contains('\n')));

        let mut odd = kill;
        odd.victim.comm = Some("evil\nMESSAGE_ID=00".into());
        let fields = journal_fields(&odd, None);
        assert_eq!(fields.iter().filter(|f| f.starts_with("MESSAGE_ID=")).count(), 1, "{fields:?}");
    }
}
