//! Real kernel, real kills: the daemon runs against this machine's kernel and
//! every OOM kill a test makes must become exactly one record whose figures
//! equal the kernel's own `Killed process` line. Needs root; never skips.

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::*;

const KILLS: usize = 5;
const LIMIT: u64 = 64 << 20;

#[test]
fn every_real_oom_kill_becomes_one_record_with_the_kernels_figures() {
    require_root("every_real_oom_kill_becomes_one_record_with_the_kernels_figures");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let db_arg = db.to_str().unwrap();
    let daemon = Daemon::start(&db, dir.path());

    let comm = unique_name("oomt-");
    let victim = victim_binary(dir.path(), &comm);
    let mut kmsg = Kmsg::open_at_end();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut pids = Vec::new();
    for _ in 0..KILLS {
        let (pid, status) = cgroup.run_hog(&victim);
        assert_oom_killed(pid, status);
        pids.push(i64::from(pid));
    }
    drop(cgroup);

    let kernel = kmsg.killed(&comm, KILLS, Duration::from_secs(10));
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
            all.as_array().unwrap().iter().filter(|r| r["comm"] == comm.as_str()).cloned().collect();
        if ours.len() >= KILLS || Instant::now() > deadline {
            break ours;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), KILLS, "records for {comm}: {rows:#?}\ndaemon log:\n{}", daemon.log());

    let by_pid: HashMap<i64, &Value> = rows.iter().map(|r| (r["pid"].as_i64().unwrap(), r)).collect();
    assert_eq!(by_pid.len(), KILLS, "each kill must be exactly one record: {rows:#?}");
    for line in &kernel {
        let row = by_pid.get(&line.pid).unwrap_or_else(|| panic!("no record for pid {}", line.pid));
        assert_eq!(row["sources"], serde_json::json!(["ebpf"]));
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
    }

    let status = daemon.stop();
    assert_eq!(status.code(), Some(0), "daemon exit after SIGTERM");
}
