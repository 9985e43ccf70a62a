//! `oomrecorder status`: is the daemon running, what did its run lose at each
//! stage, and does its count of kills match the kernel's own?
//!
//! Everything comes from the run's `daemon_runs` row (the daemon's writer
//! updates it every few seconds) and from this machine now: `/proc/<pid>`
//! for liveness, `/proc/vmstat` for the kernel's `oom_kill` count. The
//! database is only read; with `--check` every page of it is checked first
//! (`PRAGMA integrity_check`): a damaged file is reported as such.

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::{json, Value};

use super::{exit::Exit, format};
use crate::{
    clock,
    kernel::vmstat,
    model::{
        json::rfc3339_ms,
        run::{Audit, Counter, Run},
    },
    pipeline::daemon::SET_ASIDE_KEY,
    store::{Access, Store, StoreError},
};

/// While the daemon runs, a kill the kernel has counted may still be on its
/// way to the store (and an exiting-task mark is labelled after 5 s, see
/// `writer::EXITING_AFTER`): a mismatch is read again for this long before
/// it is reported.
const SETTLE: Duration = Duration::from_secs(7);

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object for scripts instead of text.
    #[arg(long)]
    pub json: bool,
    /// Check every page of the database first (`PRAGMA integrity_check`,
    /// every index against its table): seconds on a large store. Without
    /// it, status reads only what it reports (the daemon checks every page
    /// daily, and sets a damaged file aside).
    #[arg(long)]
    pub check: bool,
}

/// What `status` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub running: bool,
    pub run: Option<Run>,
    pub uptime_s: Option<u64>,
    /// How old the run's counters are: the daemon writes them within 5 s of
    /// a change (and at stop), while `records_total` is counted now.
    pub counters_age_s: Option<u64>,
    pub records_total: u64,
    pub database_bytes: u64,
    pub audit: Option<Audit>,
    /// Why there is no audit, when there is none.
    pub no_audit: Option<String>,
    /// A damaged database the daemon set aside for this one (its note).
    pub set_aside: Option<Value>,
}

impl Status {
    /// Running, nothing lost or waiting, and the kernel's count matched.
    pub fn healthy(&self) -> bool {
        self.running
            && self.run.as_ref().is_some_and(|r| {
                r.counts.lost() == 0 && r.counts[Counter::WritesPending] == 0 && r.write_error.is_none()
            })
            && self.audit.as_ref().is_some_and(|a| a.matches)
    }
}

/// This machine, now: what `gather` compares the run's row against.
pub struct Now {
    pub wall_ns: i64,
    pub boot_id: Option<String>,
    /// `/proc/vmstat` `oom_kill`.
    pub oom_kill: Option<u64>,
    /// Whether the run's pid is a live oomrecorder.
    pub pid_alive: bool,
}

pub fn gather(store: &Store, database_bytes: u64, now: &Now) -> Result<Status, StoreError> {
    let run = store.latest_run()?;
    let records_total = store.kill_count()?;
    let set_aside = store.state(SET_ASIDE_KEY)?.and_then(|note| serde_json::from_str(&note).ok());
    let Some(run) = run else {
        return Ok(Status {
            running: false,
            run: None,
            uptime_s: None,
            counters_age_s: None,
            records_total,
            database_bytes,
            audit: None,
            no_audit: Some("the daemon has never run on this database".into()),
            set_aside,
        });
    };
    let same_boot = now.boot_id.as_deref() == Some(run.boot_id.as_str());
    let running = run.stopped_ns.is_none() && same_boot && now.pid_alive;
    let uptime_s = running.then(|| (now.wall_ns.saturating_sub(run.started_ns) / 1_000_000_000) as u64);
    let counters_age_s =
        Some((now.wall_ns.saturating_sub(counters_as_of(&run)).max(0) / 1_000_000_000) as u64);
    // Running: the kernel's count now against every kill stored since start.
    // Stopped: the count the daemon read at its last update, against the
    // kills up to then (kills after it stopped are nobody's loss here).
    let (kernel_now, until_ns) = if running {
        (now.oom_kill, None)
    } else {
        (run.vmstat_oom_kill_now, Some(run.stopped_ns.unwrap_or(run.last_update_ns)))
    };
    let (audit, no_audit) = match (run.vmstat_oom_kill_start, kernel_now) {
        (Some(start), Some(kernel_now)) => {
            let recorded = store.kills_between(&run.boot_id, run.started_ns, until_ns)?;
            let twice = run.counts[Counter::KernelCountedTwice];
            (Some(Audit::new(start, kernel_now, twice, recorded)), None)
        }
        _ if running => (None, Some("/proc/vmstat has no oom_kill counter".into())),
        _ => (None, Some("the run did not read /proc/vmstat".into())),
    };
    Ok(Status {
        running,
        run: Some(run),
        uptime_s,
        counters_age_s,
        records_total,
        database_bytes,
        audit,
        no_audit,
        set_aside,
    })
}

/// When the run's counters were written: at its stop, else its last update.
fn counters_as_of(run: &Run) -> i64 {
    run.stopped_ns.unwrap_or(run.last_update_ns)
}

/// The database file and its write-ahead log, as they take disk space.
fn database_bytes(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db) + size(Path::new(&wal))
}

fn now(run_pid: Option<u32>) -> Now {
    let proc_root = Path::new("/proc");
    let oom_kill = vmstat::read_vmstat_oom_kill(proc_root).map_err(|e| log::warn!("{e}")).ok();
    Now {
        wall_ns: clock::wall_ns_now(),
        boot_id: clock::read_boot_id(proc_root).ok(),
        oom_kill,
        pid_alive: run_pid.is_some_and(|pid| is_daemon(proc_root, pid)),
    }
}

pub fn run(db: &Path, args: &StatusArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    // The full check only when asked: status is what a readiness probe and
    // a watching script call every few seconds, and reading every page of a
    // 100,000-kill store took 4 s (and minutes under qemu).
    if args.check {
        store.integrity_check()?;
    }
    let deadline = Instant::now() + SETTLE;
    let status = loop {
        let pid = store.latest_run()?.map(|r| r.pid);
        let status = gather(&store, database_bytes(db), &now(pid))?;
        let settling = status.running && status.audit.as_ref().is_some_and(|a| !a.matches);
        if !settling || Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let exit = if status.healthy() { Exit::Ok } else { Exit::Attention };
    let written = format::to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &to_json(&status))?;
            writeln!(out)
        } else {
            write_text(out, db, &status)
        }
    })?;
    Ok(if written == Exit::Ok { exit } else { written })
}

/// The name the kernel gives the daemon's process (`/proc/<pid>/comm`), used
/// to tell the daemon from an unrelated process that reused its pid.
pub const DAEMON_COMM: &str = "oomrecorder";

/// Whether `pid` is a live oomrecorder process: the pid exists and its comm
/// is the daemon's (a pid reused by another program is not the daemon).
fn is_daemon(proc_root: &Path, pid: u32) -> bool {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
        .is_ok_and(|comm| comm.trim_end() == DAEMON_COMM)
}

pub fn to_json(status: &Status) -> Value {
    let run = status.run.as_ref();
    let count = |counter: Counter| run.map(|r| r.counts[counter]);
    // Each counter under its key: the pipeline's figures, then the losses.
    let group = |losses: bool| -> Value {
        Counter::ALL
            .iter()
            .filter(|c| c.names().loss == losses && **c != Counter::RecordsStored)
            .map(|c| (c.names().key.to_owned(), json!(count(*c))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "running": status.running,
        "pid": run.filter(|_| status.running).map(|r| r.pid),
        "uptime_s": status.uptime_s,
        "attach_point": run.map(|r| r.attach_point.as_str()),
        "version": run.map(|r| r.version.as_str()),
        "records_total": status.records_total,
        "records_this_run": count(Counter::RecordsStored),
        // The counters are the daemon's last update of its run row (every
        // 5 s, and at stop); records_total is counted now.
        "counters_as_of": rfc3339_ms(run.map(counters_as_of)),
        "counters_age_s": status.counters_age_s,
        "database_bytes": status.database_bytes,
        "pipeline": group(false),
        "losses": group(true),
        "write_error": run.and_then(|r| r.write_error.as_ref()).map(|e| json!({
            "message": e,
            "since": crate::model::json::rfc3339_ms(run.and_then(|r| r.write_error_ns)),
        })),
        "set_aside": status.set_aside,
        "audit": status.audit.as_ref().map(|a| json!({
            "kernel_oom_kills": a.kernel_oom_kills,
            "counted_twice": a.counted_twice,
            "recorded_kills": a.recorded_kills,
            "missing": a.missing,
            "matches": a.matches,
            "summary": a.words(),
        })),
    })
}

fn write_text(out: &mut dyn Write, db: &Path, status: &Status) -> std::io::Result<()> {
    let Some(run) = &status.run else {
        writeln!(out, "daemon:   not running (it has never run on {})", db.display())?;
        return writeln!(out, "records:  {} kill(s)", status.records_total);
    };
    if status.running {
        let up = status.uptime_s.unwrap_or_default();
        writeln!(
            out,
            "daemon:   running, pid {}, up {}h {:02}m {:02}s, attached to {}, version {}",
            run.pid,
            up / 3600,
            up / 60 % 60,
            up % 60,
            run.attach_point,
            run.version
        )?;
    } else {
        let how = match run.stopped_ns {
            Some(_) => "stopped",
            None => "not running (its last run ended without stopping: killed, crashed, or a reboot)",
        };
        writeln!(
            out,
            "daemon:   {how}; last run pid {}, started {}, last update {}",
            run.pid,
            format::local_time(Some(run.started_ns)),
            format::local_time(Some(run.stopped_ns.unwrap_or(run.last_update_ns)))
        )?;
    }
    writeln!(
        out,
        "records:  {} kill(s) in {} ({} with its WAL), {} stored by this run (with kills found in the kernel log at start)",
        status.records_total,
        db.display(),
        format::bytes(status.database_bytes),
        run.counts[Counter::RecordsStored]
    )?;
    let age = status.counters_age_s.map(|s| format!(", {s} s ago")).unwrap_or_default();
    // A running daemon writes its counts within 5 s of a change, not on a
    // timer: the time is when they last changed.
    let when = if status.running { "unchanged since" } else { "as of" };
    writeln!(out, "pipeline (this run, {when} {}{age}):", format::local_time(Some(counters_as_of(run))))?;
    for counter in Counter::ALL {
        writeln!(out, "  {:<34} {}", counter.names().label, run.counts[counter])?;
    }
    writeln!(out, "  {:<34} {}", "total lost", run.counts.lost())?;
    if let Some(error) = &run.write_error {
        writeln!(
            out,
            "writes:   failing since {}: {error}; {} message(s) wait in the daemon's memory and are retried \
             every second",
            format::local_time(run.write_error_ns),
            run.counts[Counter::WritesPending]
        )?;
    }
    if let Some(note) = &status.set_aside {
        writeln!(
            out,
            "store:    a damaged database was set aside at {}: {} ({})",
            format::local_time(note["time_ns"].as_i64()),
            note["path"].as_str().unwrap_or("?"),
            note["damage"].as_str().unwrap_or("?")
        )?;
    }
    let pending = run.counts[Counter::WritesPending];
    match (&status.audit, &status.no_audit) {
        (Some(audit), _) if audit.missing > 0 && pending > 0 => writeln!(
            out,
            "audit:    {} ({pending} write(s) are still pending: the missing kills may be among them)",
            audit.words()
        )?,
        (Some(audit), _) => writeln!(out, "audit:    {}", audit.words())?,
        (None, Some(why)) => writeln!(out, "audit:    not possible: {why}")?,
        (None, None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{run::Counts, Kill, Kind, Source, Victim},
        store::Access,
    };

    fn kill(pid: i32, time_ns: i64, kind: Kind) -> Kill {
        Kill {
            boot_id: Some("b".into()),
            boot_ns: Some(time_ns as u64),
            time_ns: Some(time_ns),
            recorded_ns: time_ns,
            kind,
            sources: vec![Source::Ebpf],
            victim: Victim { pid, ..Victim::default() },
            ..Kill::default()
        }
    }

    fn run_row() -> Run {
        Run {
            pid: 42,
            boot_id: "b".into(),
            started_ns: 1_000,
            last_update_ns: 5_000,
            attach_point: "raw_tracepoint".into(),
            version: "0.1.0".into(),
            counts: Counts::default().with(Counter::RecordsStored, 2),
            vmstat_oom_kill_start: Some(10),
            vmstat_oom_kill_now: Some(12),
            ..Run::default()
        }
    }

    fn store_with(run: &Run) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        // Before the run (catch-up of an older kill), two during it, one
        // exiting-task mark (not a kill), one after it stopped.
        store.insert(&kill(1, 500, Kind::Kill)).unwrap();
        store.insert(&kill(2, 2_000, Kind::Kill)).unwrap();
        store.insert(&kill(3, 3_000, Kind::Kill)).unwrap();
        store.insert(&kill(4, 3_500, Kind::Exiting)).unwrap();
        store.insert(&kill(5, 9_000, Kind::Kill)).unwrap();
        let id = store.start_run(run).unwrap();
        store.update_run(id, run).unwrap();
        (store, dir)
    }

    fn now(oom_kill: u64, pid_alive: bool) -> Now {
        Now { wall_ns: 61_000_001_000, boot_id: Some("b".into()), oom_kill: Some(oom_kill), pid_alive }
    }

    #[test]
    fn a_live_run_is_audited_against_the_kernel_now() {
        let (store, _dir) = store_with(&run_row());
        let status = gather(&store, 4096, &now(14, true)).unwrap();
        assert!(status.running);
        assert_eq!(status.uptime_s, Some(61));
        assert_eq!(status.records_total, 5);
        // Kills since start on this boot, not the exiting mark: 2, 3 and 5.
        assert_eq!(status.audit, Some(Audit::new(10, 14, 0, 3)));
        assert!(!status.healthy(), "one kill the kernel counted is missing");
        let healthy = gather(&store, 4096, &now(13, true)).unwrap();
        assert!(healthy.healthy(), "{healthy:?}");
        let json = to_json(&healthy);
        assert_eq!(json["audit"]["matches"], true);
        assert_eq!(json["pid"], 42);
        assert_eq!(json["losses"]["ringbuf_full"], 0);
        assert_eq!(json["records_this_run"], 2);
        // Last updated at 5_000 ns; now is just under 61 s later.
        assert_eq!((healthy.counters_age_s, &json["counters_age_s"]), (Some(60), &json!(60)));
        assert_eq!(json["counters_as_of"], "1970-01-01T00:00:00.000Z");
        let mut text = Vec::new();
        write_text(&mut text, Path::new("x.db"), &healthy).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("pipeline (this run, unchanged since ") && text.contains(", 60 s ago):"),
            "{text}"
        );
    }

    #[test]
    fn a_stopped_run_is_audited_up_to_its_stop() {
        let run = Run { stopped_ns: Some(5_000), ..run_row() };
        let (store, _dir) = store_with(&run);
        let status = gather(&store, 0, &now(99, true)).unwrap();
        assert!(!status.running, "stopped, whatever the pid is now");
        // The count it read at stop (12 - 10) against kills 2 and 3.
        assert_eq!(status.audit, Some(Audit::new(10, 12, 0, 2)));
        assert!(status.audit.as_ref().unwrap().matches);
        assert!(!status.healthy(), "not running is not healthy");
        assert_eq!(to_json(&status)["pid"], Value::Null);
    }

    #[test]
    fn a_dead_pid_or_another_boot_is_not_running_and_losses_count() {
        let run = Run { counts: run_row().counts.with(Counter::RingbufFull, 3), ..run_row() };
        let (store, _dir) = store_with(&run);
        assert!(!gather(&store, 0, &now(13, false)).unwrap().running);
        let other_boot = Now { boot_id: Some("c".into()), ..now(13, true) };
        assert!(!gather(&store, 0, &other_boot).unwrap().running);
        let lossy = gather(&store, 0, &now(13, true)).unwrap();
        assert!(lossy.running && lossy.audit.as_ref().unwrap().matches);
        assert!(!lossy.healthy(), "3 events lost to a full ring buffer");
    }

    #[test]
    fn writes_that_wait_and_a_set_aside_store_are_said_and_not_healthy() {
        let run = Run {
            counts: run_row().counts.with(Counter::WritesPending, 4),
            write_error: Some("database /x is full".into()),
            write_error_ns: Some(4_000),
            ..run_row()
        };
        let (mut store, _dir) = store_with(&run);
        store
            .set_state(SET_ASIDE_KEY, r#"{"path":"/x.db~corrupt-T","damage":"bad page","time_ns":1}"#)
            .unwrap();
        let status = gather(&store, 0, &now(14, true)).unwrap();
        assert!(!status.healthy(), "writes wait");
        let json = to_json(&status);
        assert_eq!(json["pipeline"]["writes_pending"], 4);
        assert_eq!(json["write_error"]["message"], "database /x is full");
        assert_eq!(json["set_aside"]["path"], "/x.db~corrupt-T");
        assert_eq!(json["losses"]["queue_full"], 0);
        let mut text = Vec::new();
        write_text(&mut text, Path::new("x.db"), &status).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("failing since") && text.contains("4 message(s) wait"), "{text}");
        assert!(text.contains("set aside") && text.contains("bad page"), "{text}");
        assert!(text.contains("may be among them"), "a kill is missing and writes wait: {text}");
    }

    #[test]
    fn a_database_the_daemon_never_ran_on_has_no_audit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let status = gather(&store, 0, &now(1, false)).unwrap();
        assert_eq!((status.running, status.run.is_none(), status.audit.is_none()), (false, true, true));
        let mut text = Vec::new();
        write_text(&mut text, Path::new("x.db"), &status).unwrap();
        assert!(String::from_utf8(text).unwrap().contains("never run"));
    }

    #[test]
    fn only_a_process_named_oomrecorder_is_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, comm) in [(10, "oomrecorder\n"), (11, "bash\n")] {
            std::fs::create_dir_all(dir.path().join(pid.to_string())).unwrap();
            std::fs::write(dir.path().join(pid.to_string()).join("comm"), comm).unwrap();
        }
        assert!(is_daemon(dir.path(), 10));
        assert!(!is_daemon(dir.path(), 11), "a reused pid");
        assert!(!is_daemon(dir.path(), 12), "no such process");
    }
}
