//! The recorder survives the storms it records: in a memory cgroup held at
//! its limit by a co-tenant that the kernel keeps killing, it records every
//! kill, those of its own cgroup and those elsewhere, and is never the
//! victim. It runs with the unit's `OOMScoreAdjust=` where this machine
//! lets it. Lowering oom_score_adj needs CAP_SYS_RESOURCE, which systemd
//! has on a host but a container's root may lack: there the co-tenants get
//! the opposite adjustment instead (raising needs no privilege), which
//! orders the victims the same way: oom_badness() adds adj * totalpages /
//! 1000 to each task's pages, so only the difference counts. Without
//! either, the kernel chose the recorder in 2 of 6 runs: its mapped binary
//! and ring buffer (file-rss 19 MB) outweigh a co-tenant that has only
//! begun to allocate.

use std::time::{Duration, Instant};

use super::*;

/// The unit's `OOMScoreAdjust=` (packaging/systemd/oomrecorder.service).
fn unit_oom_score_adjust() -> i32 {
    let unit = include_str!("../../packaging/systemd/oomrecorder.service");
    unit.lines()
        .find_map(|l| l.strip_prefix("OOMScoreAdjust="))
        .and_then(|v| v.trim().parse().ok())
        .expect("the unit sets OOMScoreAdjust=")
}

#[test]
fn the_daemon_keeps_recording_while_its_own_cgroup_is_at_its_limit() {
    let _serial = serial("the_daemon_keeps_recording_while_its_own_cgroup_is_at_its_limit");
    const OWN: usize = 10;
    const ELSEWHERE: usize = 20;
    let adjust = unit_oom_score_adjust();
    assert!(adjust <= -500, "the unit must keep the recorder out of the OOM killer's way: {adjust}");
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("oomrecorder.db");
    let own = MemCgroup::create(&unique_name("rec-"), 1 << 30);
    let prelude = format!(
        "echo $$ > {}\necho {adjust} > /proc/self/oom_score_adj 2>/dev/null || true",
        own.path.join("cgroup.procs").display()
    );
    let mut daemon = Daemon::start_after(&db, work.path(), &[], Some(&prelude));
    let pid = daemon.pid();
    let in_effect: i32 =
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim().parse().unwrap();
    // Where the recorder could not be lowered, its co-tenants are raised.
    let cotenant_adj = if in_effect == adjust { 0 } else { -adjust };
    let procs = own.read("cgroup.procs");
    assert!(procs.split_whitespace().any(|p| p == pid.to_string()), "the daemon runs in its cgroup: {procs}");
    // Near its limit: the most the daemon used once attached (its catch-up
    // of the kernel log included; its ring buffer is charged here too), plus
    // room for one co-tenant's burst, which the kernel then kills. A daemon
    // alone above its limit would be the only task to kill, whatever its
    // oom_score_adj: the margin is what the test grants it.
    let peak_file = if own.version == 1 { "memory.max_usage_in_bytes" } else { "memory.current" };
    if own.version == 1 {
        std::fs::write(own.path.join(peak_file), "0").unwrap();
    }
    // Caught up: its log (a line per kill recorded) stays the same for 2 s.
    let mut said = String::new();
    let caught_up = wait_until(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(1_750));
        let now = daemon.log();
        std::mem::replace(&mut said, now.clone()) == now
    });
    assert!(caught_up, "the daemon's catch-up did not settle:\n{}", daemon.log());
    std::thread::sleep(Duration::from_secs(1));
    let idle = own.read(peak_file).parse::<u64>().unwrap().max(own.usage());
    let limit = (idle + (24 << 20)) & !4095;
    own.set_limit(limit);
    if own.version == 1 {
        // The peak from here on.
        std::fs::write(own.path.join(peak_file), "0").unwrap();
    }

    let comm = unique_name("prs-");
    let victim = victim_binary(work.path(), &comm);
    let elsewhere = MemCgroup::create(&comm, LIMIT);
    let since_ns = now_ns();
    let started = Instant::now();
    let (mut cotenants, mut others) = (Vec::new(), Vec::new());
    std::thread::scope(|scope| {
        let near = scope.spawn(|| {
            (0..OWN)
                .map(|_| {
                    let (pid, status) = own.run_hog_adjusted(&victim, cotenant_adj);
                    assert_oom_killed(pid, status);
                    pid
                })
                .collect::<Vec<_>>()
        });
        let far = scope.spawn(|| kills(&elsewhere, &victim, ELSEWHERE));
        cotenants = near.join().unwrap();
        others = far.join().unwrap();
    });
    let storm_s = started.elapsed().as_secs_f64();
    let events = own.read(if own.version == 1 { "memory.oom_control" } else { "memory.events" });
    let oom_kills_here: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(oom_kills_here >= OWN as u64, "the recorder's cgroup was at its limit: {events}");
    assert!(daemon.alive(), "the recorder was killed in its own storm:\n{}", daemon.log());
    let all: Vec<u32> = cotenants.iter().chain(&others).copied().collect();
    assert!(!all.contains(&pid));

    let recorded = wait_until(Duration::from_secs(30), || {
        let mine = ours(&rows(&db), &all, since_ns);
        mine.len() == OWN + ELSEWHERE
            && mine.iter().all(|r| r["sources"].as_array().is_some_and(|s| s.len() >= 2))
    });
    let mine = ours(&rows(&db), &all, since_ns);
    assert!(recorded, "{} of {} kills recorded\n{}", mine.len(), OWN + ELSEWHERE, daemon.log());
    let in_own = mine
        .iter()
        .filter(|r| cotenants.iter().any(|p| r["pid"] == i64::from(*p)))
        .filter(|r| r["cgroup"].as_str().is_some_and(|c| own.path.ends_with(c.trim_start_matches('/'))))
        .count();
    assert_eq!(in_own, OWN, "the co-tenants' kills name the recorder's own cgroup: {mine:#?}");
    let settled = wait_until(Duration::from_secs(15), || status(&db).0 == Some(0));
    let (_, json) = status(&db);
    assert!(settled, "{json:#}\n{}", daemon.log());
    let peak = own.read(if own.version == 1 { "memory.max_usage_in_bytes" } else { "memory.peak" });
    assert!(daemon.alive());
    assert_eq!(daemon.stop().code(), Some(0));
    drop(elsewhere);
    println!(
        "pressure: recorder at oom_score_adj {in_effect}, co-tenants at {cotenant_adj} (the unit's {adjust}{}) in a cgroup of {} MiB (idle {} MiB, peak {} MiB, \
         {oom_kills_here} OOM kills in it): {OWN} co-tenant kills in its cgroup and {ELSEWHERE} elsewhere in {storm_s:.1} s, \
         all {} recorded, none lost, audit matches, the recorder never chosen",
        if in_effect == adjust { "" } else { "; this root lacks CAP_SYS_RESOURCE to lower it" },
        limit >> 20,
        idle >> 20,
        peak.parse::<u64>().unwrap_or(0) >> 20,
        OWN + ELSEWHERE
    );
}
