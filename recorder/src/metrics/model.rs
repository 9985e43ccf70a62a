//! The metrics model: what the daemon tells it, and the exposition.

use std::{
    collections::{hash_map::DefaultHasher, BTreeMap, HashMap},
    fmt,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{prometheus_text, DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, family::Family, gauge::ConstGauge, histogram::Histogram, MetricType},
    registry::Registry,
};

use super::MetricsError;

/// A per-pod series whose last kill is older than this is left out of the
/// exposition (its count is kept): long enough that a scrape (or two, at
/// the usual 15 s to 1 min intervals) after the pod is deleted still sees
/// the kill, short enough that gone containers do not pile up as series.
pub const SERIES_TTL: Duration = Duration::from_secs(600);

/// Upper bounds of the victim RSS histogram, bytes: powers of two from
/// 1 MiB to 64 GiB (17 buckets and +Inf). Memory limits are mostly powers
/// of two (128Mi, 512Mi, 2Gi ...), and a victim dies just under its limit,
/// so each common limit gets a bucket of its own.
pub const RSS_BUCKETS_BYTES: [f64; 17] = {
    let mut b = [0.0; 17];
    let mut i = 0;
    while i < 17 {
        b[i] = (1u64 << (20 + i)) as f64;
        i += 1;
    }
    b
};

/// The level whose memory limit fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A container's own limit (its cgroup names a container id: any runtime,
    /// in Kubernetes or not).
    Container,
    /// A Kubernetes pod's limit (the pod cgroup above its containers).
    Pod,
    /// A systemd unit's (`MemoryMax=` of a service or scope).
    Unit,
    /// A systemd slice's.
    Slice,
    /// Any other memory cgroup (a hand-made one, a runtime's parent cgroup).
    Cgroup,
    /// No cgroup limit: the whole machine ran out (`CONSTRAINT_NONE`, and
    /// the cpuset and mempolicy constraints, which are node-level too).
    Node,
    /// The recorder could not tell (no kernel report, no limits read).
    /// Exposed as an empty value, like every other unknown label.
    #[default]
    Unknown,
}

impl Scope {
    /// The six scopes that are known up front, exposed at 0 from the start.
    pub const NAMED: [Scope; 6] =
        [Scope::Container, Scope::Pod, Scope::Unit, Scope::Slice, Scope::Cgroup, Scope::Node];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Container => "container",
            Scope::Pod => "pod",
            Scope::Unit => "unit",
            Scope::Slice => "slice",
            Scope::Cgroup => "cgroup",
            Scope::Node => "node",
            Scope::Unknown => "",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The kernel's constraint of the OOM (`constraint=` in the `oom-kill:`
/// line; `oom_constraint_text[]` in mm/oom_kill.c). An enum, not the raw
/// text, so a garbled log line cannot create a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Constraint {
    #[default]
    Unknown,
    None,
    Cpuset,
    MemoryPolicy,
    Memcg,
}

impl Constraint {
    /// From the kernel's text; anything else (or nothing) is `Unknown`.
    pub fn from_kernel(text: &str) -> Constraint {
        match text.trim() {
            "CONSTRAINT_NONE" => Constraint::None,
            "CONSTRAINT_CPUSET" => Constraint::Cpuset,
            "CONSTRAINT_MEMORY_POLICY" => Constraint::MemoryPolicy,
            "CONSTRAINT_MEMCG" => Constraint::Memcg,
            _ => Constraint::Unknown,
        }
    }

    /// The label value: the kernel's text, empty when unknown.
    pub fn as_str(self) -> &'static str {
        match self {
            Constraint::Unknown => "",
            Constraint::None => "CONSTRAINT_NONE",
            Constraint::Cpuset => "CONSTRAINT_CPUSET",
            Constraint::MemoryPolicy => "CONSTRAINT_MEMORY_POLICY",
            Constraint::Memcg => "CONSTRAINT_MEMCG",
        }
    }
}

/// Who was killed, as labels. Empty strings where a kill is not in
/// Kubernetes (`namespace`, `pod`, `container`) or not in a systemd unit
/// (`unit`). `comm` is only a label when [`MetricsOptions::comm_label`] is
/// set; otherwise it is ignored (kills of different commands in one
/// container are one series).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KillLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub unit: String,
    pub scope: Scope,
    pub constraint: Constraint,
    pub comm: String,
}

/// Where the daemon loses or may lose an event: the `stage` label of
/// `oomrecorder_events_lost_total`, named like `status --json`'s `losses`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossStage {
    RingbufFull,
    Decode,
    KmsgOverrun,
    WithoutKernelReport,
    SnapshotsMissed,
    WriteFailures,
}

impl LossStage {
    pub const ALL: [LossStage; 6] = [
        LossStage::RingbufFull,
        LossStage::Decode,
        LossStage::KmsgOverrun,
        LossStage::WithoutKernelReport,
        LossStage::SnapshotsMissed,
        LossStage::WriteFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LossStage::RingbufFull => "ringbuf_full",
            LossStage::Decode => "decode",
            LossStage::KmsgOverrun => "kmsg_overrun",
            LossStage::WithoutKernelReport => "without_kernel_report",
            LossStage::SnapshotsMissed => "snapshots_missed",
            LossStage::WriteFailures => "write_failures",
        }
    }
}

/// Wall-clock time, in Unix seconds. Only used to decide which series are
/// older than [`SERIES_TTL`]; tests pass their own.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now_unix_seconds(&self) -> f64;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_seconds(&self) -> f64 {
        // A clock before 1970 is a broken clock; 0 then keeps every series
        // (none looks older than the TTL), which loses nothing.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }
}

/// Fixed at start.
#[derive(Clone, Debug, Default)]
pub struct MetricsOptions {
    /// `oomrecorder_build_info{version}`: the daemon's version.
    pub version: String,
    /// `oomrecorder_build_info{attach}`: the attach point (`raw_tracepoint`,
    /// `tracepoint`, ...); [`Metrics::set_attach`] changes it later.
    pub attach: String,
    /// Add the victim's command name as a `comm` label. Off by default:
    /// every distinct command becomes a series.
    pub comm_label: bool,
}

/// The metrics of one daemon. Cheap to clone (one shared state): give a
/// clone to each task that records, and one to the listener.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    state: Arc<Mutex<State>>,
    rss: RssFamily,
    clock: Arc<dyn Clock>,
    comm_label: bool,
}

type RssFamily = Family<[(&'static str, &'static str); 1], Histogram, fn() -> Histogram>;

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").field("clock", &self.inner.clock).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Series {
    count: u64,
    last_kill_unix_seconds: f64,
}

#[derive(Debug)]
struct State {
    /// Series in the exposition: last kill within SERIES_TTL. Ordered, so
    /// the exposition is stable from scrape to scrape.
    active: BTreeMap<KillLabels, Series>,
    /// All-time counts of label sets no longer exposed, by a hash of the
    /// labels: 16 bytes a label set instead of the strings. Two label sets
    /// with one 64-bit hash would share a count (odds about n²/2^65).
    dormant: HashMap<u64, u64>,
    by_scope: [u64; 7],
    kernel_oom_kills: Option<u64>,
    lost: [u64; 6],
    audit_unrecorded: Option<i64>,
    version: String,
    attach: String,
    comm_label: bool,
}

impl State {
    /// Moves series older than the TTL out of the exposition.
    fn expire(&mut self, now: f64) {
        let ttl = SERIES_TTL.as_secs_f64();
        let old: Vec<KillLabels> = self
            .active
            .iter()
            .filter(|(_, s)| now - s.last_kill_unix_seconds > ttl)
            .map(|(l, _)| l.clone())
            .collect();
        for labels in old {
            if let Some(series) = self.active.remove(&labels) {
                *self.dormant.entry(label_hash(&labels)).or_insert(0) += series.count;
            }
        }
    }

    /// Adds `count` kills, the last at `last_kill`, to a label set, then
    /// files it as exposed or not by the TTL.
    fn add(&mut self, labels: KillLabels, count: u64, last_kill: f64, now: f64) {
        self.by_scope[labels.scope.index()] += count;
        let hash = label_hash(&labels);
        let series = match self.active.remove(&labels) {
            Some(mut s) => {
                s.count += count;
                s.last_kill_unix_seconds = s.last_kill_unix_seconds.max(last_kill);
                s
            }
            None => Series {
                count: self.dormant.remove(&hash).unwrap_or(0) + count,
                last_kill_unix_seconds: last_kill,
            },
        };
        if now - series.last_kill_unix_seconds > SERIES_TTL.as_secs_f64() {
            self.dormant.insert(hash, series.count);
        } else {
            self.active.insert(labels, series);
        }
    }
}

fn label_hash(labels: &KillLabels) -> u64 {
    // SipHash with fixed keys: stable within one binary, which is all an
    // in-memory map needs.
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

impl Metrics {
    /// Metrics on the system clock.
    pub fn new(options: MetricsOptions) -> Metrics {
        Metrics::with_clock(options, Arc::new(SystemClock))
    }

    /// Metrics on a given clock (tests).
    pub fn with_clock(options: MetricsOptions, clock: Arc<dyn Clock>) -> Metrics {
        let state = Arc::new(Mutex::new(State {
            active: BTreeMap::new(),
            dormant: HashMap::new(),
            by_scope: [0; 7],
            kernel_oom_kills: None,
            lost: [0; 6],
            audit_unrecorded: None,
            version: options.version,
            attach: options.attach,
            comm_label: options.comm_label,
        }));
        let rss: RssFamily = Family::new_with_constructor(|| Histogram::new(RSS_BUCKETS_BYTES));
        // At 0 from the start, so increase() sees each scope's first kill.
        for scope in Scope::NAMED {
            drop(rss.get_or_create(&[("scope", scope.as_str())]));
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(KillCollector { state: Arc::clone(&state) }));
        registry.register(
            "oomrecorder_victim_rss_bytes",
            "Resident memory (anon + file + shmem) of each OOM victim at the kill, bytes, \
             by the scope whose limit fired; kills recorded since the daemon started",
            rss.clone(),
        );
        Metrics { inner: Arc::new(Inner { registry, state, rss, clock, comm_label: options.comm_label }) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain numbers and maps, consistent after every
        // statement: a panic elsewhere while holding it leaves it usable.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, labels: &KillLabels) -> KillLabels {
        let mut key = labels.clone();
        if !self.inner.comm_label {
            key.comm.clear();
        }
        key
    }

    /// Counts kills already in the store, at start, so counts survive a
    /// restart. Call it once per stored label set (all of them, not only
    /// recent ones: `oomrecorder_oom_kills_by_scope_total` and a later
    /// kill's count are all-time), before new kills are recorded. Adds to
    /// what the label set has; a label set whose last kill is within
    /// [`SERIES_TTL`] of now is exposed at once.
    pub fn seed(&self, labels: &KillLabels, count: u64, last_kill_unix_seconds: f64) {
        if count == 0 {
            return;
        }
        let key = self.key(labels);
        let now = self.inner.clock.now_unix_seconds();
        let mut state = self.state();
        state.expire(now);
        state.add(key, count, last_kill_unix_seconds, now);
    }

    /// One new kill, once it is stored. `victim_rss_bytes` is the victim's
    /// anon + file + shmem RSS at the kill, `None` when unknown (the kill
    /// is then counted but not in the histogram).
    pub fn record_kill(&self, labels: &KillLabels, kill_unix_seconds: f64, victim_rss_bytes: Option<u64>) {
        let key = self.key(labels);
        if let Some(rss) = victim_rss_bytes {
            self.inner.rss.get_or_create(&[("scope", key.scope.as_str())]).observe(rss as f64);
        }
        let now = self.inner.clock.now_unix_seconds();
        let mut state = self.state();
        state.expire(now);
        state.add(key, 1, kill_unix_seconds, now);
    }

    /// The kernel's own count of OOM kills since boot (`/proc/vmstat`
    /// `oom_kill`), as the daemon last read it.
    pub fn set_kernel_oom_kills(&self, total: u64) {
        self.state().kernel_oom_kills = Some(total);
    }

    /// The daemon's count of losses at one stage since it started (a total,
    /// not an increment; a restart is a counter reset, which `increase()`
    /// handles).
    pub fn set_events_lost(&self, stage: LossStage, total: u64) {
        self.state().lost[stage as usize] = total;
    }

    /// The audit: OOM kills the kernel counted since the daemon started
    /// that have no record (`status`' `audit.missing`); 0 when they match,
    /// negative if there are more records than kernel kills.
    pub fn set_audit_unrecorded_kills(&self, unrecorded: i64) {
        self.state().audit_unrecorded = Some(unrecorded);
    }

    /// The attach point, once chosen, for `oomrecorder_build_info`.
    pub fn set_attach(&self, attach: &str) {
        attach.clone_into(&mut self.state().attach);
    }

    /// The exposition, in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> Result<String, MetricsError> {
        let now = self.inner.clock.now_unix_seconds();
        self.state().expire(now);
        let mut text = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut text, &self.inner.registry).map_err(|_| MetricsError::Encode)?;
        Ok(text)
    }
}

/// The per-kill label pairs, in the order of the exposition.
fn kill_labels(l: &KillLabels, comm: bool) -> Vec<(&'static str, &str)> {
    let mut v = vec![
        ("namespace", l.namespace.as_str()),
        ("pod", l.pod.as_str()),
        ("container", l.container.as_str()),
        ("unit", l.unit.as_str()),
        ("scope", l.scope.as_str()),
        ("constraint", l.constraint.as_str()),
    ];
    if comm {
        v.push(("comm", l.comm.as_str()));
    }
    v
}

/// Renders the state on each scrape: the per-pod series are a view of the
/// state (filtered by the TTL), not live metric objects.
#[derive(Debug)]
struct KillCollector {
    state: Arc<Mutex<State>>,
}

impl Collector for KillCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

        let comm = state.comm_label;

        let mut family = encoder.encode_descriptor(
            "oomrecorder_oom_kills",
            "OOM kills recorded, all-time (counted from the store at start), by who was \
             killed and which limit fired; a series is shown until 10 minutes after its last \
             kill.",
            None,
            MetricType::Counter,
        )?;
        for (labels, series) in &state.active {
            let l = kill_labels(labels, comm);
            ConstCounter::new(series.count).encode(family.encode_family(&l)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "oomrecorder_last_oom_kill_timestamp_seconds",
            "Unix time of the last OOM kill of this label set; alert on this, not on the \
             counter, to catch a new pod's first kill.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, series) in &state.active {
            let l = kill_labels(labels, comm);
            ConstGauge::new(series.last_kill_unix_seconds).encode(family.encode_family(&l)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "oomrecorder_oom_kills_by_scope",
            "OOM kills recorded on this node, all-time, by the scope whose limit fired; every \
             scope is shown from the start, so increase() counts its first kill.",
            None,
            MetricType::Counter,
        )?;
        let unknown = [Scope::Unknown].into_iter().filter(|s| state.by_scope[s.index()] > 0);
        for scope in Scope::NAMED.into_iter().chain(unknown) {
            let l = [("scope", scope.as_str())];
            ConstCounter::new(state.by_scope[scope.index()]).encode(family.encode_family(&l)?)?;
        }

        if let Some(total) = state.kernel_oom_kills {
            let family = encoder.encode_descriptor(
                "oomrecorder_kernel_oom_kills",
                "The kernel's own count of OOM kills since boot (/proc/vmstat oom_kill).",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(total).encode(family)?;
        }

        let mut family = encoder.encode_descriptor(
            "oomrecorder_events_lost",
            "Events the daemon lost or recorded incompletely since it started, by stage.",
            None,
            MetricType::Counter,
        )?;
        for stage in LossStage::ALL {
            let l = [("stage", stage.as_str())];
            ConstCounter::new(state.lost[stage as usize]).encode(family.encode_family(&l)?)?;
        }

        if let Some(unrecorded) = state.audit_unrecorded {
            let family = encoder.encode_descriptor(
                "oomrecorder_audit_unrecorded_oom_kills",
                "OOM kills the kernel counted since the daemon started that have no record \
                 (0: the audit matches).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(unrecorded).encode(family)?;
        }

        let mut family = encoder.encode_descriptor(
            "oomrecorder_build_info",
            "Always 1: the daemon's version and attach point.",
            None,
            MetricType::Gauge,
        )?;
        let l = [("version", state.version.as_str()), ("attach", state.attach.as_str())];
        ConstGauge::new(1i64).encode(family.encode_family(&l)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{family, labels, parse, ManualClock, MetricFamily};

    const T: f64 = 1_900_000_000.0;

    fn metrics_at(now: f64, comm_label: bool) -> (Metrics, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at(now));
        let options = MetricsOptions { version: "1.2.3".into(), attach: "raw_tracepoint".into(), comm_label };
        (Metrics::with_clock(options, clock.clone()), clock)
    }

    fn pod_kill(pod: &str, comm: &str) -> KillLabels {
        KillLabels {
            namespace: "shop".into(),
            pod: pod.into(),
            container: "app".into(),
            unit: String::new(),
            scope: Scope::Container,
            constraint: Constraint::from_kernel("CONSTRAINT_MEMCG"),
            comm: comm.into(),
        }
    }

    fn exposition(m: &Metrics) -> Vec<MetricFamily> {
        let text = m.encode().expect("encode");
        parse(&text).unwrap_or_else(|e| panic!("not the text format: {e}\n{text}"))
    }

    /// The per-pod counter's samples, as (labels, value).
    fn kills(m: &Metrics) -> Vec<(BTreeMap<String, String>, f64)> {
        let f = exposition(m);
        let fam = family(&f, "oomrecorder_oom_kills_total");
        assert_eq!(fam.kind, "counter");
        fam.samples.iter().map(|s| (s.labels.clone(), s.value)).collect()
    }

    fn value(f: &[MetricFamily], name: &str, l: &[(&str, &str)]) -> Option<f64> {
        let want = labels(l);
        f.iter().flat_map(|fam| &fam.samples).find(|s| s.name == name && s.labels == want).map(|s| s.value)
    }

    #[test]
    fn a_kill_has_the_kube_state_metrics_labels_and_nothing_unbounded() {
        let (m, _) = metrics_at(T, false);
        m.record_kill(&pod_kill("cart-7d9f", "java"), T - 1.0, Some(300 << 20));
        let f = exposition(&m);
        let want = [
            ("namespace", "shop"),
            ("pod", "cart-7d9f"),
            ("container", "app"),
            ("unit", ""),
            ("scope", "container"),
            ("constraint", "CONSTRAINT_MEMCG"),
        ];
        assert_eq!(value(&f, "oomrecorder_oom_kills_total", &want), Some(1.0));
        assert_eq!(value(&f, "oomrecorder_last_oom_kill_timestamp_seconds", &want), Some(T - 1.0));
        // No other label anywhere on the per-kill series (no comm: opt-in).
        for name in ["oomrecorder_oom_kills_total", "oomrecorder_last_oom_kill_timestamp_seconds"] {
            for s in &family(&f, name).samples {
                let keys: Vec<_> = s.labels.keys().map(String::as_str).collect();
                assert_eq!(keys, ["constraint", "container", "namespace", "pod", "scope", "unit"]);
            }
        }
    }

    #[test]
    fn kills_outside_kubernetes_and_units_have_empty_values() {
        let (m, _) = metrics_at(T, false);
        let unit = KillLabels {
            unit: "backup.service".into(),
            scope: Scope::Unit,
            constraint: Constraint::Memcg,
            ..KillLabels::default()
        };
        let global = KillLabels {
            scope: Scope::Node,
            constraint: Constraint::from_kernel("CONSTRAINT_NONE"),
            ..KillLabels::default()
        };
        m.record_kill(&unit, T, None);
        m.record_kill(&global, T, None);
        let f = exposition(&m);
        let unit_labels = [
            ("namespace", ""),
            ("pod", ""),
            ("container", ""),
            ("unit", "backup.service"),
            ("scope", "unit"),
            ("constraint", "CONSTRAINT_MEMCG"),
        ];
        let node_labels = [
            ("namespace", ""),
            ("pod", ""),
            ("container", ""),
            ("unit", ""),
            ("scope", "node"),
            ("constraint", "CONSTRAINT_NONE"),
        ];
        assert_eq!(value(&f, "oomrecorder_oom_kills_total", &unit_labels), Some(1.0));
        assert_eq!(value(&f, "oomrecorder_oom_kills_total", &node_labels), Some(1.0));
    }

    #[test]
    fn constraint_text_is_the_kernels_or_empty() {
        assert_eq!(Constraint::from_kernel("CONSTRAINT_MEMCG").as_str(), "CONSTRAINT_MEMCG");
        assert_eq!(Constraint::from_kernel("CONSTRAINT_NONE"), Constraint::None);
        assert_eq!(Constraint::from_kernel("CONSTRAINT_CPUSET"), Constraint::Cpuset);
        assert_eq!(Constraint::from_kernel("CONSTRAINT_MEMORY_POLICY"), Constraint::MemoryPolicy);
        for garbage in ["", "memcg", "CONSTRAINT_MEMCG2", "CONSTRAINT_"] {
            assert_eq!(Constraint::from_kernel(garbage).as_str(), "", "{garbage:?}");
        }
        assert_eq!(Scope::Unknown.as_str(), "");
    }

    #[test]
    fn comm_is_a_label_only_when_asked_for() {
        let (off, _) = metrics_at(T, false);
        off.record_kill(&pod_kill("p", "java"), T, None);
        off.record_kill(&pod_kill("p", "sidecar"), T, None);
        let k = kills(&off);
        assert_eq!(k.len(), 1, "comm off: one series for both commands");
        assert_eq!(k[0].1, 2.0);
        assert!(!k[0].0.contains_key("comm"));

        let (on, _) = metrics_at(T, true);
        on.record_kill(&pod_kill("p", "java"), T, None);
        on.record_kill(&pod_kill("p", "sidecar"), T, None);
        let k = kills(&on);
        let comms: Vec<_> = k.iter().map(|(l, v)| (l["comm"].as_str(), *v)).collect();
        assert_eq!(comms, [("java", 1.0), ("sidecar", 1.0)]);
    }

    #[test]
    fn a_series_is_shown_for_ten_minutes_after_its_last_kill_then_dropped() {
        let (m, clock) = metrics_at(T, false);
        let cart = pod_kill("cart-7d9f", "");
        m.record_kill(&cart, T, None);
        clock.set(T + 600.0);
        assert_eq!(kills(&m).len(), 1, "still there at exactly 10 minutes");
        // A second kill within the window keeps it longer.
        m.record_kill(&cart, T + 300.0, None);
        clock.set(T + 899.0);
        assert_eq!(kills(&m)[0].1, 2.0);
        clock.set(T + 900.5);
        assert!(kills(&m).is_empty(), "dropped 10 minutes after the last kill");
        let f = exposition(&m);
        assert!(family(&f, "oomrecorder_last_oom_kill_timestamp_seconds").samples.is_empty());

        // Killed again later: back, at its all-time count.
        clock.set(T + 4000.0);
        m.record_kill(&cart, T + 4000.0, None);
        assert_eq!(kills(&m)[0].1, 3.0);
        let f = exposition(&m);
        let by_scope = value(&f, "oomrecorder_oom_kills_by_scope_total", &[("scope", "container")]);
        assert_eq!(by_scope, Some(3.0), "the node-level count never drops anything");
    }

    #[test]
    fn a_kill_already_older_than_ten_minutes_is_counted_but_not_shown() {
        let (m, _) = metrics_at(T, false);
        // e.g. found in the kernel log at start, made while the daemon was down
        m.record_kill(&pod_kill("old", ""), T - 3600.0, None);
        assert!(kills(&m).is_empty());
        m.record_kill(&pod_kill("old", ""), T, None);
        assert_eq!(kills(&m)[0].1, 2.0);
    }

    #[test]
    fn seeding_restores_all_time_counts() {
        let (m, clock) = metrics_at(T, false);
        m.seed(&pod_kill("recent", ""), 5, T - 60.0);
        m.seed(&pod_kill("old", ""), 3, T - 86_400.0);
        // Seeding adds: a store iterated kill by kill seeds the same total.
        m.seed(&pod_kill("recent", ""), 1, T - 120.0);
        let k = kills(&m);
        assert_eq!(k.len(), 1, "only the recent label set is shown");
        assert_eq!(k[0].0["pod"], "recent");
        assert_eq!(k[0].1, 6.0);
        let f = exposition(&m);
        let ts = value(
            &f,
            "oomrecorder_last_oom_kill_timestamp_seconds",
            &k[0].0.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>(),
        );
        assert_eq!(ts, Some(T - 60.0), "the newest of the seeded times");
        assert_eq!(value(&f, "oomrecorder_oom_kills_by_scope_total", &[("scope", "container")]), Some(9.0));

        clock.set(T + 10.0);
        m.record_kill(&pod_kill("old", ""), T + 10.0, None);
        let old = kills(&m).into_iter().find(|(l, _)| l["pod"] == "old").expect("old is back");
        assert_eq!(old.1, 4.0, "a seeded label set continues from its stored count");
        m.seed(&pod_kill("none", ""), 0, T);
        assert_eq!(kills(&m).len(), 2, "a count of 0 adds no series");
    }

    #[test]
    fn what_is_known_up_front_is_shown_at_zero_from_the_start() {
        let (m, _) = metrics_at(T, false);
        let f = exposition(&m);
        for scope in Scope::NAMED {
            let s = [("scope", scope.as_str())];
            assert_eq!(value(&f, "oomrecorder_oom_kills_by_scope_total", &s), Some(0.0), "{scope:?}");
            assert_eq!(value(&f, "oomrecorder_victim_rss_bytes_count", &s), Some(0.0), "{scope:?}");
        }
        for stage in LossStage::ALL {
            let s = [("stage", stage.as_str())];
            assert_eq!(value(&f, "oomrecorder_events_lost_total", &s), Some(0.0), "{stage:?}");
        }
        assert_eq!(family(&f, "oomrecorder_oom_kills_total").kind, "counter");
        assert!(family(&f, "oomrecorder_oom_kills_total").samples.is_empty());
        // Not known until the daemon says: absent, not a misleading 0.
        assert!(!f.iter().any(|x| x.name == "oomrecorder_kernel_oom_kills_total"));
        assert!(!f.iter().any(|x| x.name == "oomrecorder_audit_unrecorded_oom_kills"));
        let build = [("version", "1.2.3"), ("attach", "raw_tracepoint")];
        assert_eq!(value(&f, "oomrecorder_build_info", &build), Some(1.0));
    }

    #[test]
    fn totals_set_from_outside_are_shown_as_given() {
        let (m, _) = metrics_at(T, false);
        m.set_kernel_oom_kills(42);
        m.set_events_lost(LossStage::RingbufFull, 7);
        m.set_events_lost(LossStage::WriteFailures, 2);
        m.set_events_lost(LossStage::WriteFailures, 3);
        m.set_audit_unrecorded_kills(-1);
        m.set_attach("tracepoint");
        let f = exposition(&m);
        assert_eq!(family(&f, "oomrecorder_kernel_oom_kills_total").kind, "counter");
        assert_eq!(value(&f, "oomrecorder_kernel_oom_kills_total", &[]), Some(42.0));
        assert_eq!(value(&f, "oomrecorder_events_lost_total", &[("stage", "ringbuf_full")]), Some(7.0));
        assert_eq!(value(&f, "oomrecorder_events_lost_total", &[("stage", "write_failures")]), Some(3.0));
        assert_eq!(value(&f, "oomrecorder_events_lost_total", &[("stage", "decode")]), Some(0.0));
        assert_eq!(family(&f, "oomrecorder_audit_unrecorded_oom_kills").kind, "gauge");
        assert_eq!(value(&f, "oomrecorder_audit_unrecorded_oom_kills", &[]), Some(-1.0));
        let build = [("version", "1.2.3"), ("attach", "tracepoint")];
        assert_eq!(value(&f, "oomrecorder_build_info", &build), Some(1.0));
    }

    #[test]
    fn rss_histogram_buckets_run_from_1_mib_to_64_gib() {
        assert_eq!(RSS_BUCKETS_BYTES[0], 1048576.0);
        assert_eq!(RSS_BUCKETS_BYTES[16], 64.0 * 1024.0 * 1024.0 * 1024.0);
        assert!(RSS_BUCKETS_BYTES.windows(2).all(|w| w[1] == 2.0 * w[0]));

        let (m, _) = metrics_at(T, false);
        m.record_kill(&pod_kill("a", ""), T, Some(255 << 20)); // just under a 256Mi limit
        m.record_kill(&pod_kill("a", ""), T, Some(100 << 30)); // above the last bucket
        m.record_kill(&pod_kill("a", ""), T, None); // counted, not observed
        let f = exposition(&m);
        let h = family(&f, "oomrecorder_victim_rss_bytes");
        assert_eq!(h.kind, "histogram");
        let bucket = |le: f64| {
            h.samples
                .iter()
                .find(|s| {
                    s.name.ends_with("_bucket")
                        && s.labels["scope"] == "container"
                        && s.labels["le"].parse::<f64>().ok() == Some(le)
                })
                .map(|s| s.value)
        };
        assert_eq!(bucket(128.0 * 1048576.0), Some(0.0));
        assert_eq!(bucket(256.0 * 1048576.0), Some(1.0));
        assert_eq!(bucket(64.0 * 1073741824.0), Some(1.0));
        assert_eq!(bucket(f64::INFINITY), Some(2.0));
        let buckets = h.samples.iter().filter(|s| s.name.ends_with("_bucket") && s.labels["scope"] == "pod");
        assert_eq!(buckets.count(), 18, "17 bounds and +Inf");
        let sum = value(&f, "oomrecorder_victim_rss_bytes_sum", &[("scope", "container")]).unwrap();
        assert_eq!(sum, ((255u64 << 20) + (100u64 << 30)) as f64);
        assert_eq!(value(&f, "oomrecorder_oom_kills_by_scope_total", &[("scope", "container")]), Some(3.0));
    }

    #[test]
    fn label_values_with_quotes_and_newlines_parse_back_unchanged() {
        let (m, _) = metrics_at(T, true);
        let odd = pod_kill("we\"ird\\pod\nname", "a b\t\"c\"");
        m.record_kill(&odd, T, None);
        let k = kills(&m);
        assert_eq!(k[0].0["pod"], "we\"ird\\pod\nname");
        assert_eq!(k[0].0["comm"], "a b\t\"c\"");
    }

    #[test]
    fn exposition_is_stable_and_ordered() {
        let (m, _) = metrics_at(T, false);
        for pod in ["b", "a", "c"] {
            m.record_kill(&pod_kill(pod, ""), T, None);
        }
        let first = m.encode().unwrap();
        assert_eq!(first, m.encode().unwrap());
        let pods: Vec<_> = kills(&m).into_iter().map(|(l, _)| l["pod"].clone()).collect();
        assert_eq!(pods, ["a", "b", "c"]);
        // The Prometheus text format, not OpenMetrics.
        assert!(!first.contains("# EOF"));
        assert!(first.contains("# TYPE oomrecorder_oom_kills_total counter\n"));
    }
}
