//! `oomrecorder run`: every check the operator must act on, then the
//! pipeline's threads, wired together. The event loop itself is
//! [`super::events`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use common::MarkVictimLayout;

use super::{
    counters::Counters,
    events::read_loop,
    footprint::{self, Startup},
    journal,
    kernel_log::KernelLogReader,
    publish::{self, Publisher},
    retention::Retention,
    snapshotter::Snapshotter,
    writer::{RunTracker, Writer},
};
use crate::{
    clock,
    kernel::{self, caps, memcg, tracefs, vmstat, AttachPoint},
    metrics::{Metrics, MetricsOptions, MetricsServer},
    model::cmdline::CmdlinePolicy,
    model::run::{Counter, Run},
    sources::{
        ebpf::{self as loader, LoadError, Probe},
        kmsg::Kmsg,
    },
    store::{Access, Reserve, SetAside, Sharing, Store, StoreError},
};

/// The state key under which the last store set aside is named (for `status`).
pub const SET_ASIDE_KEY: &str = "set_aside";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "oomrecorder run needs {missing} (run as root, or grant them to the service); nothing was changed"
    )]
    MissingCapabilities { missing: String },
    #[error("cannot read this process's capabilities")]
    Capabilities(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot read the boot id")]
    BootId(#[source] std::io::Error),
    #[error("setting up the event loop")]
    Runtime(#[source] std::io::Error),
}

pub struct DaemonConfig {
    pub db: PathBuf,
    /// Who besides root may read the history.
    pub sharing: Sharing,
    /// What records keep of command lines.
    pub cmdline: CmdlinePolicy,
    /// Delete kills older than this (at start, then daily); `None` keeps all.
    pub retention: Option<Duration>,
    /// Keep at most this many kills; `None`: no cap.
    pub max_records: Option<u64>,
    /// Use the tracepoint program whatever the kernel offers (tests).
    pub force_tracepoint: bool,
    pub metrics: MetricsConfig,
    /// One structured journal entry per kill, where a journal runs.
    pub journal_entries: bool,
}

/// Where the metrics go; both `None`: no metrics at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` here.
    pub listen: Option<SocketAddr>,
    /// Write node_exporter's textfile here.
    pub textfile: Option<PathBuf>,
    /// The victim's command name as a label.
    pub comm_label: bool,
}

/// How often the textfile is rewritten with nothing new (besides after each
/// kill): node_exporter's `node_textfile_mtime_seconds` then tells a dead
/// daemon's file from a quiet one.
const TEXTFILE_EVERY: Duration = Duration::from_secs(60);

/// Runs the daemon until SIGTERM or SIGINT. Every check that can fail for a
/// reason the operator must fix happens before the program is attached.
pub fn run(config: &DaemonConfig) -> Result<(), DaemonError> {
    footprint::bound_heap();
    let cap_eff = caps::read_cap_eff(Path::new("/proc")).map_err(DaemonError::Capabilities)?;
    let missing = caps::missing_for_daemon(cap_eff);
    if !missing.is_empty() {
        return Err(DaemonError::MissingCapabilities { missing: missing.join(" and ") });
    }
    // Every page is checked first; a damaged store is renamed aside, never
    // written into, and the catch-up below recovers from the kernel log what
    // the kernel still holds.
    let (mut store, set_aside) = Store::open_for_daemon(&config.db, &config.sharing)?;
    if let Some(aside) = &set_aside {
        say_set_aside(&mut store, aside);
    }
    let boot_id = clock::read_boot_id(Path::new("/proc")).map_err(DaemonError::BootId)?;
    // The kernel's kill count before the program is attached: a kill between
    // this read and the attach is counted here and found by the kernel-log
    // catch-up (its time is after `started_ns`), so the audit still balances.
    let started_ns = clock::wall_ns_now();
    let vmstat_start = vmstat::read_vmstat_oom_kill(Path::new("/proc"))
        .map_err(|e| log::warn!("{e}: `oomrecorder status` cannot audit this run"))
        .ok();
    let (mut plan, memcg_version) = kernel::read_plan();
    if config.force_tracepoint {
        plan.attach = AttachPoint::Tracepoint;
        plan.attach_reason = "forced by --force-tracepoint".to_owned();
    }
    let machine = kernel::Machine::read(memcg_version);
    log::info!("attach point: {} ({})", plan.attach.as_str(), plan.attach_reason);
    let absent: Vec<String> = plan
        .fields
        .iter()
        .filter_map(|f| f.status.as_ref().err().map(|why| format!("{} ({why})", f.name)))
        .collect();
    if plan.attach == AttachPoint::RawTracepoint && !absent.is_empty() {
        log::warn!("this kernel's BTF lacks {}: those figures are recorded as unknown", absent.join(", "));
    }
    // The tracepoint's record layout: needed by the fallback program only.
    let mark_victim = match tracefs::ensure_mounted().and_then(|root| tracefs::read_mark_victim(&root)) {
        Ok(mv) => Some(mv),
        Err(e) if plan.attach == AttachPoint::RawTracepoint => {
            log::debug!("tracefs not needed by the raw tracepoint: {e}");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let tp_layout = mark_victim.as_ref().map_or(MarkVictimLayout::ABSENT, |mv| mv.layout);
    let mut attached = plan.attach;
    loader::raise_memlock_limit();
    let probe = match Probe::load(plan.attach, &tp_layout, &plan.layout) {
        Ok(probe) => {
            log_attached(plan.attach, mark_victim.as_ref());
            probe
        }
        // A rejected raw tracepoint program is a bug, but the recorder must
        // still record: fall back to the tracepoint, loudly.
        Err(e) if plan.attach == AttachPoint::RawTracepoint && mark_victim.is_some() => {
            log::error!(
                "the raw tracepoint program did not load ({}); falling back to the tracepoint: \
                 kernel-state figures are recorded as unknown",
                chain(&e)
            );
            let probe = Probe::load(AttachPoint::Tracepoint, &tp_layout, &plan.layout)?;
            attached = AttachPoint::Tracepoint;
            log_attached(AttachPoint::Tracepoint, mark_victim.as_ref());
            probe
        }
        Err(e) => return Err(e.into()),
    };
    log::info!("recording to {} (command lines: {})", store.path().display(), config.cmdline.as_str());
    // The BTF parse (here and in aya's loader) freed tens of MiB for a
    // large store's vmlinux: handed back now, not only once start-up is over.
    footprint::trim_heap();

    let cursor = store.kmsg_cursor(&boot_id)?;
    let kmsg = match Kmsg::open(Path::new("/dev/kmsg")) {
        Ok(kmsg) => Some(kmsg),
        Err(e) => {
            log::warn!(
                "cannot read /dev/kmsg ({e}): kills are recorded without the kernel's report \
                 (grant CAP_SYSLOG, or set kernel.dmesg_restrict=0)"
            );
            None
        }
    };

    let journal_cursor = store.state(journal::CURSOR_KEY)?;
    let (tx, rx) = mpsc::channel();
    let retention = (config.retention.is_some() || config.max_records.is_some())
        .then(|| Retention::new(config.retention, config.max_records));
    let counters = Arc::new(Counters::default());
    let run_row = Run {
        pid: std::process::id(),
        boot_id: boot_id.clone(),
        started_ns,
        last_update_ns: clock::wall_ns_now(),
        // The kind alone, as the schema documents it (as_str names the hook too).
        attach_point: match attached {
            AttachPoint::RawTracepoint => "raw_tracepoint",
            AttachPoint::Tracepoint => "tracepoint",
        }
        .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        vmstat_oom_kill_start: vmstat_start,
        vmstat_oom_kill_now: vmstat_start,
        ..Run::default()
    };
    // Without its row the run still records; only `status` is blind to it.
    let run_id = store
        .start_run(&run_row)
        .map_err(|e| {
            log::error!("cannot record this run in the store ({e}): `oomrecorder status` will not see it")
        })
        .ok();
    let metrics = (config.metrics.listen.is_some() || config.metrics.textfile.is_some()).then(|| {
        Metrics::new(MetricsOptions {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            attach: run_row.attach_point.clone(),
            comm_label: config.metrics.comm_label,
        })
    });
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    // Bound before READY=1, so a scrape right after start finds it. A port
    // in use costs the metrics, not the recording: said, and carried on.
    let server = match (&metrics, config.metrics.listen) {
        (Some(_), Some(addr)) => runtime
            .block_on(MetricsServer::bind(addr))
            .map_err(|e| log::error!("{e}: recording without the metrics listener"))
            .ok(),
        _ => None,
    };
    // Over once the kernel log's catch-up and the metrics' seed are done
    // and the writer has stored what they sent.
    let startup = Startup::waiting_for(usize::from(kmsg.is_some()) + 1);
    match &metrics {
        Some(metrics) => seed_metrics(metrics.clone(), &store, startup.clone()),
        None => startup.done(),
    }
    let mut writer = Writer::new(store, Arc::clone(&counters), retention)
        .with_publisher(Publisher::new(
            metrics.clone(),
            config.metrics.textfile.clone(),
            config.journal_entries,
        ))
        .with_reserve(Reserve::beside(&config.db, &config.sharing))
        .shedding_after(startup.clone());
    if let Some(id) = run_id {
        writer = writer.with_run(RunTracker::new(id, run_row, "/proc".into()));
    }
    let writer = thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(DaemonError::Runtime)?;

    let stop = Arc::new(AtomicBool::new(false));
    let journal_thread = {
        let (tx, stop, live, boot_id) = (tx.clone(), Arc::clone(&stop), kmsg.is_none(), boot_id.clone());
        thread::Builder::new()
            .name("journal".into())
            .spawn(move || journal::follow(&boot_id, journal_cursor, live, tx, stop))
            .map_err(DaemonError::Runtime)?
    };
    let hierarchy = memcg::memory_hierarchy(Path::new(memcg::SYS_FS_CGROUP));
    if hierarchy.is_none() {
        log::warn!(
            "no memory cgroup hierarchy under /sys/fs/cgroup: kills are recorded without cgroup snapshots"
        );
    }
    let (snapshots, snapshot_thread) = Snapshotter::new(hierarchy, Path::new("/proc"), Path::new("/"))
        .counting_misses_in(Arc::clone(&counters))
        .keeping_cmdlines(config.cmdline)
        .spawn(tx.clone())
        .map_err(DaemonError::Runtime)?;
    let kernel_log = kmsg.map(|kmsg| {
        (
            kmsg,
            KernelLogReader::new(boot_id.clone(), cursor, tx.clone(), Arc::clone(&counters))
                .counting_repeats_after(started_ns),
            startup,
        )
    });
    let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = metrics_stopped.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut exporters = Vec::new();
    if let (Some(metrics), Some(server)) = (&metrics, server) {
        exporters.push(runtime.spawn(server.serve(metrics.clone(), stopped())));
    }
    if let (Some(metrics), Some(path)) = (&metrics, &config.metrics.textfile) {
        let every = TEXTFILE_EVERY;
        exporters.push(runtime.spawn(crate::metrics::textfile_loop(
            metrics.clone(),
            path.clone(),
            every,
            stopped(),
        )));
    }
    let reader_result = runtime.block_on(read_loop(
        probe,
        kernel_log,
        tx,
        snapshots,
        boot_id,
        machine,
        Arc::clone(&counters),
    ));
    // The listener stops (and the textfile is removed) with the reader: a
    // stopped daemon's numbers must not be served as current.
    let _ = stop_metrics.send(true);
    runtime.block_on(async {
        for exporter in exporters {
            let _ = exporter.await;
        }
    });
    drop(runtime);
    stop.store(true, Ordering::Relaxed);
    if journal_thread.join().is_err() {
        log::error!("the journal reader panicked");
    }
    // The reader dropped its request sender: the snapshotter finishes what it has.
    if snapshot_thread.join().is_err() {
        log::error!("the cgroup snapshotter panicked");
    }
    // Every sender is gone: the writer drains and returns.
    if writer.join().is_err() {
        log::error!("the store writer panicked; records it held are lost (see the log above)");
    }
    reader_result?;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let counts = counters.counts();
    let said: Vec<String> =
        Counter::ALL.iter().map(|c| format!("{} {}", c.names().key, counts[*c])).collect();
    log::info!("stopped: {}", said.join(", "));
    Ok(())
}

/// Says, in the log and in the new store (for `status`), that a damaged
/// store was set aside.
pub(crate) fn say_set_aside(store: &mut Store, aside: &SetAside) {
    log::error!(
        "database {} is damaged ({}): moved it aside, untouched, to {} (with its -wal and -shm); \
         recording into a new database; kills the kernel log still holds are recovered now",
        store.path().display(),
        aside.damage,
        aside.path.display()
    );
    let note = serde_json::json!({
        "path": aside.path.display().to_string(),
        "damage": aside.damage,
        "time_ns": clock::wall_ns_now(),
    });
    if let Err(e) = store.set_state(SET_ASIDE_KEY, &note.to_string()) {
        log::warn!("cannot note the set-aside database in the new one: {e}");
    }
}

/// An error and its sources on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

fn log_attached(attach: AttachPoint, mark_victim: Option<&tracefs::MarkVictim>) {
    match attach {
        AttachPoint::RawTracepoint => {
            log::info!("attached oom_mark_victim_raw to raw tracepoint mark_victim")
        }
        AttachPoint::Tracepoint => {
            match mark_victim.map(|mv| &mv.absent) {
                Some(absent) if !absent.is_empty() => log::warn!(
                    "this kernel's oom:mark_victim lacks {}: those figures are recorded as unknown",
                    absent.join(", ")
                ),
                _ => log::info!("oom:mark_victim carries every field the recorder reads"),
            }
            log::info!("attached oom_mark_victim to tracepoint oom:mark_victim")
        }
    }
}

/// Counts the kills the store already holds into the metrics, on a thread
/// of its own (`publish::seed`). Not joined: a daemon stopped while it runs
/// loses nothing but the rest of a count it rebuilds at its next start.
fn seed_metrics(metrics: Metrics, store: &Store, startup: Startup) {
    let until_id = match store.last_id() {
        Ok(0) => return startup.done(),
        Ok(id) => id,
        Err(e) => {
            log::warn!("cannot count the stored kills into the metrics ({e}): they count from now on");
            return startup.done();
        }
    };
    let path = store.path().to_path_buf();
    let seeder_startup = startup.clone();
    let spawned = thread::Builder::new().name("metrics-seed".into()).spawn(move || {
        let seeded =
            Store::open(&path, Access::ReadOnly).and_then(|store| publish::seed(&metrics, &store, until_id));
        match seeded {
            Ok(n) => log::info!("metrics: counted {n} kill(s) already in the store"),
            Err(e) => log::warn!("cannot count the stored kills into the metrics ({e}): some are left out"),
        }
        seeder_startup.done();
    });
    if let Err(e) = spawned {
        log::warn!("cannot start counting the stored kills into the metrics ({e}): they count from now on");
        startup.done();
    }
}
