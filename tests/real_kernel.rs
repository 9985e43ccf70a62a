//! Real kernel, real kills: the daemon runs against this machine's kernel and
//! every OOM kill a test makes must become exactly one record whose figures
//! equal the kernel's own `Killed process` line. Needs root; never skips.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::{
    collections::HashMap,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::*;

const KILLS: usize = 5;
const LIMIT: u64 = 64 << 20;

/// One real-kernel test at a time: each counts the kills it makes, and a
/// neighbour's storm would only add noise (and kernel-log pressure). Holds
/// when the last test's kills ended.
static SERIAL: Mutex<Option<Instant>> = Mutex::new(None);

/// Waits out the kernel's OOM report rate limit (10 headers per 5 s,
/// mm/oom_kill.c `oom_rs`) after an earlier test's kills, so this test's
/// first kill gets its full report.
fn quiet_kernel_log(last: &mut Option<Instant>) {
    if let Some(ended) = last.take() {
        let quiet = Duration::from_millis(5_500);
        std::thread::sleep(quiet.saturating_sub(ended.elapsed()));
    }
}

/// Whether a `list --json` row is one of the test's own kills: its victim
/// is one of `pids`, killed since the test began (pids are reused: the
/// daemon's catch-up also records earlier tests' kills still in the log).
fn is_ours(row: &Value, pids: &[u32], since_ns: i64) -> bool {
    let pid = row["pid"].as_i64();
    let time_ns = row["time"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    pids.iter().any(|p| Some(i64::from(*p)) == pid)
        && time_ns.is_some_and(|t| t.as_nanosecond() as i64 >= since_ns - 1_000_000_000)
}

/// The records (`show --json`) of the test's kills, once `want` of them are
/// in the store (or 15 s passed).
fn records_of(db: &Path, pids: &[u32], since_ns: i64, want: usize) -> Vec<Value> {
    let db = db.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = cli_json(&["list", "--json", "--limit", "100000", "--db", db]);
        let ours: Vec<Value> =
            all.as_array().unwrap().iter().filter(|r| is_ours(r, pids, since_ns)).cloned().collect();
        if ours.len() >= want || Instant::now() > deadline {
            return ours
                .iter()
                .map(|r| cli_json(&["show", &r["id"].to_string(), "--json", "--db", db]))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks each kernel `Killed process` line has exactly one record, with its
/// figures, and returns the records by pid.
fn one_record_per_kill<'a>(kernel: &[KilledLine], records: &'a [Value]) -> HashMap<i64, &'a Value> {
    let mut by_pid: HashMap<i64, &Value> = HashMap::new();
    for r in records {
        let pid = r["victim"]["pid"].as_i64().unwrap();
        assert!(by_pid.insert(pid, r).is_none(), "pid {pid} has two records: {records:#?}");
    }
    for line in kernel {
        let r = by_pid.get(&line.pid).unwrap_or_else(|| panic!("no record for pid {}", line.pid));
        let v = &r["victim"];
        assert_eq!(v["comm"].as_str(), Some(line.comm.as_str()));
        assert_eq!(v["total_vm_kb"].as_u64(), Some(line.total_vm_kb), "total_vm of {}", line.pid);
        assert_eq!(v["anon_rss_kb"].as_u64(), Some(line.anon_rss_kb), "anon_rss of {}", line.pid);
        assert_eq!(v["file_rss_kb"].as_u64(), Some(line.file_rss_kb), "file_rss of {}", line.pid);
        assert_eq!(v["shmem_rss_kb"].as_u64(), Some(line.shmem_rss_kb), "shmem_rss of {}", line.pid);
        let report = r["kernel_report"]["lines"].as_array().unwrap();
        assert!(
            report
                .iter()
                .any(|l| l.as_str().is_some_and(|l| l.contains(&format!("Killed process {} (", line.pid)))),
            "pid {}: its Killed process line is not in the record's kernel report",
            line.pid
        );
    }
    assert_eq!(by_pid.len(), kernel.len(), "records for kills the kernel did not report");
    by_pid
}

#[test]
fn every_real_oom_kill_becomes_one_record_with_the_kernels_figures() {
    require_root("every_real_oom_kill_becomes_one_record_with_the_kernels_figures");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let db_arg = db.to_str().unwrap();
    let daemon = Daemon::start(&db, dir.path());

    let comm = unique_name("oomt-");
    let victim = victim_binary(dir.path(), &comm);
    quiet_kernel_log(&mut serial);
    let mut kmsg = Kmsg::open_at_end();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let cgroup_version = cgroup.version;
    // kn->id is the cgroup directory's inode number (fs/kernfs/inode.c).
    let cgroup_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup.path).unwrap());
    let mut victims = Vec::new();
    for _ in 0..KILLS {
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
        victims.push(pid);
    }
    drop(cgroup);
    *serial = Some(Instant::now());
    let pids: Vec<i64> = victims.iter().map(|p| i64::from(*p)).collect();

    let (kernel, with_header) = kmsg.killed_with_summaries(&victims, Duration::from_secs(10));
    assert!(with_header.contains(&pids[0]), "after a quiet log the first kill has its full report");
    assert_eq!(
        kernel.iter().map(|k| k.pid).collect::<Vec<_>>(),
        pids,
        "the kernel's Killed process lines do not name the {KILLS} hogs"
    );

    // The daemon commits each kill within milliseconds; allow for a loaded CI.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let all = cli_json(&["list", "--json", "--limit", "1000", "--db", db_arg]);
        let ours: Vec<Value> =
            all.as_array().unwrap().iter().filter(|r| is_ours(r, &victims, kmsg.since_ns)).cloned().collect();
        // Each eBPF record is stored at once and its kernel line joins it
        // moments later: wait for the join, not only for the count.
        let joined = ours.iter().all(|r| r["sources"].as_array().is_some_and(|s| s.len() == 2));
        if ours.len() >= KILLS && joined || Instant::now() > deadline {
            break ours;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), KILLS, "records of {victims:?}: {rows:#?}\ndaemon log:\n{}", daemon.log());

    let by_pid: HashMap<i64, &Value> = rows.iter().map(|r| (r["pid"].as_i64().unwrap(), r)).collect();
    assert_eq!(by_pid.len(), KILLS, "each kill must be exactly one record: {rows:#?}");
    for line in &kernel {
        let row = by_pid.get(&line.pid).unwrap_or_else(|| panic!("no record for pid {}", line.pid));
        let sources = row["sources"].as_array().unwrap();
        assert!(
            sources.contains(&"ebpf".into()) && sources.contains(&"kmsg".into()),
            "eBPF event joined to its line: {sources:?}"
        );
        assert_eq!(row["anon_rss_kb"].as_u64(), Some(line.anon_rss_kb), "pid {}", line.pid);
        let id = row["id"].as_i64().unwrap().to_string();
        let shown = cli_json(&["show", &id, "--json", "--db", db_arg]);
        let v = &shown["victim"];
        assert_eq!(v["pid"].as_i64(), Some(line.pid));
        assert_eq!(v["comm"].as_str(), Some(line.comm.as_str()));
        assert_eq!(v["total_vm_kb"].as_u64(), Some(line.total_vm_kb), "total_vm of {}", line.pid);
        assert_eq!(v["anon_rss_kb"].as_u64(), Some(line.anon_rss_kb), "anon_rss of {}", line.pid);
        assert_eq!(v["file_rss_kb"].as_u64(), Some(line.file_rss_kb), "file_rss of {}", line.pid);
        assert_eq!(v["shmem_rss_kb"].as_u64(), Some(line.shmem_rss_kb), "shmem_rss of {}", line.pid);
        // The hog allocates for itself: it is its own trigger.
        assert_eq!(shown["trigger"]["pid"].as_i64(), Some(line.pid));
        assert_eq!(shown["trigger"]["comm"].as_str(), Some(line.comm.as_str()));
        assert!(shown["boot_id"].as_str().is_some_and(|b| b.len() == 36));
        assert!(shown["kmsg_usec"].as_u64().is_some());
    }
    // Each kill whose header the kernel printed carries it: cgroup, limit,
    // memory.stat, the task table and the allocation that failed.
    for pid in &with_header {
        let shown = cli_json(&["show", &by_pid[pid]["id"].to_string(), "--json", "--db", db_arg]);
        check_header(&shown, &comm);
        // The figures read through BTF at the kill equal the report's own.
        let problems = kernel_state_problems(&shown, true);
        assert!(problems.is_empty(), "{problems:#?}\n{shown:#}");
        assert_eq!(shown["oom"]["oom_cgroup_inferred"], false, "the report named the OOM cgroup");
        assert_eq!(shown["cgroup"]["version"].as_u64(), Some(u64::from(cgroup_version)));
        let badness = &shown["victim"]["badness"];
        assert_eq!(badness["totalpages"].as_u64(), Some(LIMIT / 4096), "memcg OOM without swap: {badness}");
    }
    for pid in &pids {
        let shown = cli_json(&["show", &by_pid[pid]["id"].to_string(), "--json", "--db", db_arg]);
        // The JSON contract on real kills: no sentinel, numbers as numbers.
        let problems = json_contract_problems(&shown);
        assert!(problems.is_empty(), "pid {pid}: {problems:#?}");
        let missing = missing_kernel_state(&shown);
        assert!(missing.is_empty(), "pid {pid}: {missing:?} null\n{shown:#}");
        assert!(shown["cgroup"]["path"].as_str().is_some_and(|p| p.ends_with(&format!("/{comm}"))));
        assert_eq!(shown["cgroup"]["id"].as_u64(), Some(cgroup_inode), "kn->id is the directory's inode");
    }
    // The snapshot read the victim's own cgroup: the limit this test set.
    for pid in &pids {
        let shown = cli_json(&["show", &by_pid[pid]["id"].to_string(), "--json", "--db", db_arg]);
        assert_eq!(
            shown["cgroup"]["memory_limit_bytes"].as_u64(),
            Some(LIMIT),
            "pid {pid}: {:#}",
            shown["cgroup"]
        );
    }
    // For people: the diagnosis of a real kill names the limit this test set.
    let text = cli(&["show", "last", "--db", db_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("Diagnosis: hit its 64.0 MiB limit"), "{text}");
    assert_eq!(daemon.stop().code(), Some(0), "daemon exit after SIGTERM");
}

fn check_header(first: &Value, comm: &str) {
    let oom = &first["oom"];
    assert_eq!(oom["constraint"], "CONSTRAINT_MEMCG", "{oom:#}");
    assert!(oom["oom_cgroup"].as_str().is_some_and(|c| c.ends_with(&comm)), "{oom:#}");
    assert_eq!(oom["memory_limit_kb"].as_u64(), Some(LIMIT / 1024), "{oom:#}");
    assert!(oom["memory_stat"].as_object().is_some_and(|s| !s.is_empty()), "{oom:#}");
    assert!(oom["tasks"].as_array().is_some_and(|t| !t.is_empty()), "{oom:#}");
    assert_eq!(first["trigger"]["comm"], comm);
    assert!(first["trigger"]["gfp_mask"].as_str().is_some());
}

#[test]
fn a_storm_of_300_kills_is_joined_to_the_kernels_lines() {
    require_root("a_storm_of_300_kills_is_joined_to_the_kernels_lines");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const STORM: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let daemon = Daemon::start(&db, dir.path());
    let comm = unique_name("storm-");
    let victim = victim_binary(dir.path(), &comm);
    // Read the kernel log while the storm runs: 300 kills' lines and their
    // rate-limited reports can overrun the kernel's 128 KiB ring buffer
    // before a reader that starts afterwards gets to them.
    let mut kmsg = Kmsg::open_at_end();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let victims = std::sync::Mutex::new(Vec::new());
    // Two hogs at once, so kills overlap and most reports lose their header
    // to the kernel's rate limit: every kill must still join its own line.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..STORM / 2 {
                    let (pid, status) = cgroup.run_hog(&victim);
                    assert_oom_killed(pid, status);
                    victims.lock().unwrap().push(pid);
                }
            });
        }
    });
    drop(cgroup);
    *serial = Some(Instant::now());
    let victims = victims.into_inner().unwrap();
    let kernel = kmsg.killed(&victims, Duration::from_secs(30));
    assert_eq!(kernel.len(), STORM, "the kernel reported {} kills", kernel.len());
    let records = records_of(&db, &victims, kmsg.since_ns, STORM);
    assert_eq!(records.len(), STORM, "daemon log:\n{}", daemon.log());
    let mut with_header = 0;
    for r in one_record_per_kill(&kernel, &records).values() {
        let sources = r["sources"].as_array().unwrap();
        assert!(sources.contains(&"ebpf".into()) && sources.contains(&"kmsg".into()), "{r:#}");
        // Header or not (most lose it to the rate limit), every kill carries
        // the kernel state read at the instant of the kill.
        let missing = missing_kernel_state(r);
        assert!(missing.is_empty(), "{missing:?} null: {r:#}");
        if r["oom"]["tasks"].is_array() {
            with_header += 1;
            // Not the memory line: the other hog charges and frees between
            // the report and the kill (one hog at a time checks it, above).
            let problems = kernel_state_problems(r, false);
            assert!(problems.is_empty(), "{problems:#?}");
        } else {
            // No report header: the OOM cgroup is inferred from the counters.
            assert_eq!(r["oom"]["oom_cgroup_inferred"], true, "{r:#}");
            assert!(r["oom"]["oom_cgroup"].as_str().is_some_and(|c| c.ends_with(&comm)), "{r:#}");
        }
    }
    assert!(with_header > 0 && with_header < STORM, "{with_header} of {STORM} kills had a header");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn kills_made_while_the_daemon_was_stopped_are_recovered_once() {
    require_root("kills_made_while_the_daemon_was_stopped_are_recovered_once");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let comm = unique_name("down-");
    let victim = victim_binary(dir.path(), &comm);

    let first = Daemon::start(&db, dir.path());
    assert_eq!(first.stop().code(), Some(0));

    let mut kmsg = Kmsg::open_at_end();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut victims = Vec::new();
    for _ in 0..3 {
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
        victims.push(pid);
    }
    drop(cgroup);
    *serial = Some(Instant::now());
    let kernel = kmsg.killed(&victims, Duration::from_secs(10));
    assert_eq!(kernel.len(), 3);

    // Started again, twice: the kills are found in the kernel log the first
    // time, and the second start adds nothing.
    for round in 0..2 {
        let daemon = Daemon::start(&db, dir.path());
        let records = records_of(&db, &victims, kmsg.since_ns, 3);
        assert_eq!(records.len(), 3, "round {round}: daemon log:\n{}", daemon.log());
        for r in one_record_per_kill(&kernel, &records).values() {
            // The eBPF program was not attached: the kernel log is the only source.
            assert_eq!(r["sources"], serde_json::json!(["kmsg"]), "{r:#}");
            assert!(r["time"].as_str().is_some(), "a recovered kill still has a time: {r:#}");
        }
        assert_eq!(daemon.stop().code(), Some(0));
    }
}

#[test]
fn the_tracepoint_fallback_still_records_the_tracepoints_figures() {
    require_root("the_tracepoint_fallback_still_records_the_tracepoints_figures");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    // What runs on kernels whose raw tracepoint carries no task, or no BTF.
    let daemon = Daemon::start_with(&db, dir.path(), &["--force-tracepoint"]);
    assert!(
        daemon.log().contains("attached oom_mark_victim to tracepoint oom:mark_victim"),
        "{}",
        daemon.log()
    );
    let comm = unique_name("tpfb-");
    let victim = victim_binary(dir.path(), &comm);
    let mut kmsg = Kmsg::open_at_end();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut victims = Vec::new();
    for _ in 0..2 {
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
        victims.push(pid);
    }
    drop(cgroup);
    *serial = Some(Instant::now());
    let kernel = kmsg.killed(&victims, Duration::from_secs(10));
    let records = records_of(&db, &victims, kmsg.since_ns, 2);
    for r in one_record_per_kill(&kernel, &records).values() {
        assert!(r["sources"].as_array().unwrap().contains(&serde_json::json!("ebpf")), "{r:#}");
        // Nothing was read through BTF: unknown, never zero.
        assert!(r["victim"]["rss_pages"].is_null() && r["cgroup"]["at_kill"].is_null(), "{r:#}");
        assert!(r["victim"]["age_ms"].is_null() && r["victim"]["badness"].is_null(), "{r:#}");
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The race a container runtime sets: each victim has its own cgroup, removed
/// the moment the victim is dead. The record must still hold that cgroup's
/// limit, usage, exact LRU sizes and memory.stat for every kill: the eBPF
/// program reads them at the kill, before anything can remove the cgroup. The cgroup files, read 2–3 ms
/// later by the snapshot thread, lose some of these races (measured: 95–100
/// of 100); their figure is printed, not asserted.
#[test]
fn cgroups_removed_at_once_are_still_in_the_records() {
    require_root("cgroups_removed_at_once_are_still_in_the_records");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const RACES: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let daemon = Daemon::start(&db, dir.path());
    let comm = unique_name("race-");
    let victim = victim_binary(dir.path(), &comm);
    let since_ns = now_ns();
    let mut victims = Vec::new();
    for i in 0..RACES {
        let cgroup = MemCgroup::create(&format!("{comm}-{i}"), LIMIT);
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
        victims.push(pid);
        drop(cgroup); // rmdir, retried every millisecond until it succeeds
    }
    *serial = Some(Instant::now());
    // Snapshots reach the store a moment after their records: wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let records = loop {
        let records = records_of(&db, &victims, since_ns, RACES);
        let snapshotted = records.iter().filter(|r| !r["cgroup"]["snapshot_delay_us"].is_null()).count();
        if snapshotted == RACES || Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(records.len(), RACES, "daemon log:\n{}", daemon.log());
    let mut delays = Vec::new();
    let (mut held, mut files_held) = (0, 0);
    for r in &records {
        let problems = json_contract_problems(r);
        assert!(problems.is_empty(), "{problems:#?}");
        let c = &r["cgroup"];
        let at_kill = &c["at_kill"];
        // The LRU sizes are exact at the kill; memory.stat is what the
        // kernel last flushed (and says whether it is fresh).
        let lru = &at_kill["lru_bytes"];
        let anon = lru["inactive_anon"].as_u64().zip(lru["active_anon"].as_u64()).map(|(i, a)| i + a);
        let has_stat = at_kill["memory_stat"].as_object().is_some_and(|s| s.contains_key("anon"))
            && at_kill["memory_stat_fresh"].is_boolean();
        if at_kill["memory_limit_bytes"].as_u64() == Some(LIMIT)
            && anon.is_some_and(|a| a > LIMIT / 2)
            && has_stat
        {
            held += 1;
            assert!(
                at_kill["path"].as_str().is_some_and(|p| p.contains(&comm)),
                "the victim's own cgroup, not the trigger's: {c:#}"
            );
        }
        let has_stat = c["memory_stat"].as_object().is_some_and(|s| !s.is_empty());
        if c["memory_limit_bytes"].as_u64() == Some(LIMIT) && has_stat {
            files_held += 1;
        }
        delays.extend(c["snapshot_delay_us"].as_u64());
    }
    delays.sort_unstable();
    let pct = |p: usize| delays.get((delays.len() * p / 100).min(delays.len().saturating_sub(1))).copied();
    println!(
        "race: {held}/{RACES} records hold the removed cgroup's limit and memory.stat from the kill; \
         the files' snapshot held them {files_held}/{RACES} times, read after the kill: median {:?} µs, \
         p99 {:?} µs, max {:?} µs",
        pct(50),
        pct(99),
        delays.last()
    );
    assert_eq!(held, RACES, "only {held}/{RACES} records kept the cgroup's figures from the kill");
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The daemon's own accounting against the kernel's: after 20 kills, `status`
/// finds nothing lost at any stage and as many kills recorded as
/// /proc/vmstat `oom_kill` counted since the daemon started.
#[test]
fn status_accounts_for_every_kill_the_kernel_counted() {
    require_root("status_accounts_for_every_kill_the_kernel_counted");
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const KILLS_HERE: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let db_arg = db.to_str().unwrap();
    let daemon = Daemon::start(&db, dir.path());
    let comm = unique_name("stat-");
    let victim = victim_binary(dir.path(), &comm);
    quiet_kernel_log(&mut serial);
    let cgroup = MemCgroup::create(&comm, LIMIT);
    for _ in 0..KILLS_HERE {
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
    }
    *serial = Some(Instant::now());
    // Every record joined to its kernel line, then the run row's next
    // update (every 5 s) carries the counts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, status) = loop {
        let out = cli(&["status", "--json", "--db", db_arg]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("status --json ({e}): {}{}", String::from_utf8_lossy(&out.stdout), daemon.log())
        });
        // The records are visible as each commits; the counters only with
        // the run row's next update: wait for both.
        let done = status["records_this_run"].as_u64().is_some_and(|n| n >= KILLS_HERE as u64)
            && status["pipeline"]["events_received"].as_u64().is_some_and(|n| n >= KILLS_HERE as u64)
            && status["audit"]["matches"] == true;
        if done || Instant::now() > deadline {
            break (out.status.code(), status);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    drop(cgroup);
    let text = cli(&["status", "--db", db_arg]);
    println!("{}", String::from_utf8_lossy(&text.stdout));
    assert_eq!(status["running"], true, "{status:#}\n{}", daemon.log());
    assert!(status["pid"].as_u64().is_some() && status["uptime_s"].as_u64().is_some(), "{status:#}");
    assert!(matches!(status["attach_point"].as_str(), Some("raw_tracepoint" | "tracepoint")), "{status:#}");
    for (key, n) in status["losses"].as_object().unwrap() {
        assert_eq!(n, 0, "losses.{key}: {status:#}\n{}", daemon.log());
    }
    assert_eq!(status["audit"]["matches"], true, "{status:#}\n{}", daemon.log());
    assert!(status["audit"]["kernel_oom_kills"].as_u64() >= Some(KILLS_HERE as u64), "{status:#}");
    assert!(status["records_this_run"].as_u64() >= Some(KILLS_HERE as u64), "{status:#}");
    let pipeline = &status["pipeline"];
    assert!(pipeline["events_received"].as_u64() >= Some(KILLS_HERE as u64), "{status:#}\n{}", daemon.log());
    assert_eq!(pipeline["victims_seen"], pipeline["events_received"], "{status:#}");
    assert!(status["records_total"].as_u64() >= Some(KILLS_HERE as u64), "{status:#}");
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(daemon.stop().code(), Some(0));
    // Stopped: the row says so and status needs attention, audit intact.
    let out = cli(&["status", "--json", "--db", db_arg]);
    let stopped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), &stopped["running"]), (Some(1), &Value::Bool(false)), "{stopped:#}");
    assert_eq!(stopped["audit"]["matches"], true, "{stopped:#}");
}

/// A real-kernel test's start: root checked, the kernel to itself (the
/// serial lock), a daemon on a database of its own, and a victim binary
/// of a unique name.
struct Run {
    serial: std::sync::MutexGuard<'static, Option<Instant>>,
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    daemon: Daemon,
    comm: String,
    victim: std::path::PathBuf,
}

impl Run {
    fn start(test: &str, prefix: &str) -> Run {
        require_root(test);
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        let daemon = Daemon::start(&db, dir.path());
        let comm = unique_name(prefix);
        let victim = victim_binary(dir.path(), &comm);
        Run { serial, dir, db, daemon, comm, victim }
    }

    /// `n` real kills of the victim in a memory cgroup `cgroup` of its own
    /// (removed after), watched from the kernel log's end: the log's
    /// reader and the victims' pids.
    fn kill(&mut self, cgroup: &str, n: usize) -> (Kmsg, Vec<u32>) {
        let kmsg = Kmsg::open_at_end();
        let cgroup = MemCgroup::create(cgroup, LIMIT);
        let victims = (0..n)
            .map(|_| {
                let (pid, status) = cgroup.run_hog(&self.victim);
                assert_oom_killed(pid, status);
                pid
            })
            .collect();
        drop(cgroup);
        *self.serial = Some(Instant::now());
        (kmsg, victims)
    }
}

/// `import` joins what the store has: this boot's own raw `dmesg`,
/// imported into the daemon's live store, adds nothing (each kill merges
/// into the daemon's record of it), and imported into an empty store its
/// kills get this boot's id and their real times.
#[test]
fn importing_this_boots_dmesg_into_the_live_store_adds_nothing() {
    let mut run = Run::start("importing_this_boots_dmesg_into_the_live_store_adds_nothing", "dmsg-");
    let (mut kmsg, victims) = run.kill(&run.comm.clone(), 2);
    let Run { dir, db, daemon, .. } = run;
    let db_arg = db.to_str().unwrap();
    let kernel = kmsg.killed(&victims, Duration::from_secs(10));
    // Both kills recorded and joined to their kernel lines.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ours = loop {
        let all = cli_json(&["list", "--json", "--limit", "0", "--db", db_arg]);
        let ours: Vec<Value> =
            all.as_array().unwrap().iter().filter(|r| is_ours(r, &victims, kmsg.since_ns)).cloned().collect();
        let joined = ours.iter().all(|r| r["sources"].as_array().is_some_and(|s| s.contains(&"kmsg".into())));
        if ours.len() == 2 && joined || Instant::now() > deadline {
            break ours;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ours.len(), 2, "{}", daemon.log());
    let dmesg = std::process::Command::new("dmesg").output().expect("run dmesg (util-linux)");
    assert!(dmesg.status.success(), "{}", String::from_utf8_lossy(&dmesg.stderr));
    let file = dir.path().join("dmesg.txt");
    std::fs::write(&file, &dmesg.stdout).unwrap();
    let before = cli_json(&["list", "--json", "--limit", "0", "--db", db_arg]).as_array().unwrap().len();
    let out = cli(&["import", file.to_str().unwrap(), "--db", db_arg]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains(", 0 added") && said.contains("logged by the running boot"), "{said}");
    let after = cli_json(&["list", "--json", "--limit", "0", "--db", db_arg]);
    assert_eq!(after.as_array().unwrap().len(), before, "{said}");
    for row in after.as_array().unwrap().iter().filter(|r| is_ours(r, &victims, kmsg.since_ns)) {
        let sources = row["sources"].as_array().unwrap();
        for source in ["ebpf", "kmsg", "import"] {
            assert!(sources.contains(&source.into()), "merged into the daemon's record: {row}");
        }
    }
    let again = String::from_utf8_lossy(&cli(&["import", file.to_str().unwrap(), "--db", db_arg]).stdout)
        .into_owned();
    assert!(again.contains(", 0 added"), "{again}");

    // Into an empty store: the running boot's id, and the kill's real time.
    let fresh = dir.path().join("fresh.db");
    let fresh_arg = fresh.to_str().unwrap();
    let out = cli(&["import", file.to_str().unwrap(), "--db", fresh_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let boot = oomrecorder::clock::read_boot_id(Path::new("/proc")).unwrap();
    let imported = cli_json(&["list", "--json", "--limit", "0", "--db", fresh_arg]);
    for line in &kernel {
        let daemons = ours.iter().find(|r| r["pid"].as_i64() == Some(line.pid)).unwrap();
        let row = imported
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pid"].as_i64() == Some(line.pid) && r["comm"] == daemons["comm"])
            .unwrap_or_else(|| panic!("pid {} not imported", line.pid));
        let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", fresh_arg]);
        assert_eq!(shown["boot_id"], boot.as_str(), "{shown:#}");
        let t = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let apart = (t(&shown["time"]) - t(&daemons["time"])).abs();
        assert!(apart < 2_000, "imported time {} vs recorded {}", shown["time"], daemons["time"]);
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `show` of a real kill in a container's cgroup (shaped as Docker's
/// systemd driver names it: `docker-<id>.scope`) answers who and what on
/// its first screen: the diagnosis, the command line, the container and
/// the limit. (This host runs no container runtime, so no name or image
/// can be looked up; the kernel-free CLI test covers those lines.)
#[test]
fn show_of_a_container_kill_answers_who_and_what_on_its_first_screen() {
    let mut run = Run::start("show_of_a_container_kill_answers_who_and_what_on_its_first_screen", "ctr-");
    // A container id of the test's own: its comm's bytes, repeated.
    let hex: String = run.comm.bytes().map(|b| format!("{b:02x}")).collect();
    let id: String = hex.chars().cycle().take(64).collect();
    quiet_kernel_log(&mut run.serial);
    let (mut kmsg, victims) = run.kill(&format!("docker-{id}.scope"), 1);
    let pid = victims[0];
    let Run { db, daemon, comm, dir: _dir, .. } = run;
    let db_arg = db.to_str().unwrap();
    kmsg.killed(&[pid], Duration::from_secs(10));
    // Who the victim was comes with the cgroup snapshot, a moment after the record.
    let deadline = Instant::now() + Duration::from_secs(15);
    let record = loop {
        let record = records_of(&db, &[pid], kmsg.since_ns, 1).pop();
        let named = record.as_ref().is_some_and(|r| r["container"]["id"] == id.as_str());
        if named || Instant::now() > deadline {
            break record.unwrap_or_else(|| panic!("no record of {pid}: {}", daemon.log()));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let shown = cli(&["show", "--container", &id[..12], "--db", db_arg]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}\n{record:#}", String::from_utf8_lossy(&shown.stderr));
    println!("{text}");
    let first: Vec<&str> = text.lines().take(25).collect();
    let has = |needle: &str| first.iter().any(|l| l.contains(needle));
    assert!(
        first[0].starts_with(&format!("Diagnosis: hit its 64.0 MiB limit in container {}", &id[..12])),
        "{text}"
    );
    assert!(has(&format!("Container: {} (docker)", &id[..12])), "{text}");
    assert!(has("Limit: 64.0 MiB") && has("Usage: ") && has("RSS: anon "), "{text}");
    assert!(has(&format!("PID: {pid} ({comm})")), "{text}");
    // The command line, when the snapshot read it before the victim's mm was gone.
    match record["victim"]["cmdline"].as_str() {
        Some(cmdline) => assert!(has(&format!("Command line: {cmdline}")), "{text}"),
        None => assert!(has("Command line: -"), "{text}"),
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

// This machine's own kernel interfaces, read for real. They were unit tests
// once; unit tests touch nothing of the host (they pass as any user, on any
// machine), so what needs the running kernel lives here, with root.

#[test]
fn this_machines_kmsg_reads_one_record_per_read() {
    require_root("this_machines_kmsg_reads_one_record_per_read");
    use oomrecorder::sources::kmsg::{Kmsg, Read1, SeqTracker};
    let mut kmsg = Kmsg::open(Path::new("/dev/kmsg")).expect("open /dev/kmsg as root");
    let mut seen = 0;
    let mut tracker = SeqTracker::default();
    let mut last = None;
    while seen < 5 {
        match kmsg.read_one().unwrap() {
            Read1::Record(r) => {
                assert!(
                    last.is_none_or(|l| r.seq > l),
                    "sequence numbers only grow: {last:?} then {}",
                    r.seq
                );
                last = Some(r.seq);
                tracker.saw(r.seq);
                seen += 1;
            }
            Read1::Overrun => {}
            Read1::Empty => break,
            Read1::Malformed { raw, error } => panic!("{error}: {raw}"),
        }
    }
    assert!(seen > 0, "the kernel log is never empty after boot");
}

#[test]
fn this_machines_boot_id_is_a_uuid() {
    let id = oomrecorder::clock::read_boot_id(Path::new("/proc")).unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");
}

#[test]
fn this_machines_btf_gives_every_field() {
    use common::kfield;
    use oomrecorder::kernel::{plan, read_btf, AttachPoint, MemcgVersion, VMLINUX_BTF};
    // CI's kernel (6.18, cgroup v1 memory) has BTF: this must not pass empty.
    let btf = read_btf(Path::new(VMLINUX_BTF)).unwrap_or_else(|e| panic!("{e}: CI's kernel has BTF"));
    let plan = plan(Ok(&btf), Some(MemcgVersion::V1), 4096);
    let missing: Vec<_> = plan.fields.iter().filter(|f| f.status.is_err()).collect();
    assert!(missing.is_empty(), "absent on this kernel: {missing:#?}");
    assert_eq!(plan.attach, AttachPoint::RawTracepoint, "{}", plan.attach_reason);
    assert_eq!(plan.layout.page_shift, 12);
    assert_eq!(plan.layout.mm_rss_index, [0, 1, 2, 3]);
    // 6.2+: an array of percpu_counter, `count` after the raw spinlock.
    assert!(plan.layout.mm_rss_stride > 8, "{:?}", plan.layout);
    assert!(plan.layout.has(kfield::MEMCG_MEMSW));
    assert_eq!(plan.layout.at(common::off::MEMCG_CSS), 0, "css is mem_cgroup's first member");
}

#[test]
fn this_machines_memory_hierarchy_is_found_and_read() {
    use oomrecorder::{
        kernel::memcg::memory_hierarchy,
        sources::cgroup::files::{path_from_proc_cgroup, snapshot},
    };
    let h = memory_hierarchy(Path::new("/sys/fs/cgroup")).expect("a memory controller on v1 or v2");
    let own = path_from_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap(), h.version)
        .expect("this process's memory cgroup");
    let s = snapshot(&h, &own, Path::new("/proc"));
    assert!(s.memory_usage_bytes.is_some(), "{s:?}");
    assert!(s.processes.iter().any(|p| p.pid == std::process::id() as i32), "{s:?}");
}
