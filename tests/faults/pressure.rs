//! The recorder survives the storms it records: in a memory cgroup of its
//! own held a few MiB below its limit (by tmpfs pages charged to it, which
//! nothing can reclaim without swap), it records every kill of a storm
//! elsewhere, and is not killed.
//!
//! It runs with the unit's `OOMScoreAdjust=` where this machine lets it
//! (lowering oom_score_adj needs CAP_SYS_RESOURCE, which systemd has on a
//! host but this CI's root lacks). That setting is for the OOMs where the
//! kernel has other tasks to choose from (a system-wide one, a slice's
//! limit). It cannot help a recorder that is the only task its cgroup's OOM
//! can kill: tried with hogs in the recorder's own cgroup, the kernel chose
//! the recorder when its snapshot thread allocated in the few milliseconds
//! after a hog was killed (gone from the task list, its pages still
//! charged), even with the hogs at +900. So the unit gives the daemon a
//! cgroup of its own, and this test checks that it records within a small
//! margin: its memory does not grow with the storm.

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

/// What the margin leaves the daemon above its own peak once caught up.
const HEADROOM: u64 = 8 << 20;

#[test]
fn the_daemon_keeps_recording_while_its_own_cgroup_is_near_its_limit() {
    let _serial = serial("the_daemon_keeps_recording_while_its_own_cgroup_is_near_its_limit");
    const STORM: usize = 30;
    let adjust = unit_oom_score_adjust();
    assert!(
        (-999..=-500).contains(&adjust),
        "the unit keeps the recorder out of the OOM killer's way, and killable: {adjust}"
    );
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
    let procs = own.read("cgroup.procs");
    assert!(procs.split_whitespace().any(|p| p == pid.to_string()), "the daemon runs in its cgroup: {procs}");

    // Its peak once attached and caught up with the kernel log (its log
    // stays the same for 2 s), then a limit a few MiB above it.
    let peak_file = if own.version == 1 { "memory.max_usage_in_bytes" } else { "memory.current" };
    if own.version == 1 {
        std::fs::write(own.path.join(peak_file), "0").unwrap();
    }
    let mut said = String::new();
    let caught_up = wait_until(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(1_750));
        let now = daemon.log();
        std::mem::replace(&mut said, now.clone()) == now
    });
    assert!(caught_up, "the daemon's catch-up did not settle:\n{}", daemon.log());
    let peak = own.read(peak_file).parse::<u64>().unwrap().max(own.usage());
    let limit = (peak + HEADROOM + (16 << 20)) & !4095;
    own.set_limit(limit);
    // Then held near it: tmpfs pages written from inside the cgroup stay
    // charged to it, and without swap nothing can reclaim them.
    let filler = Tmpfs::mount("256m");
    let fill_mib = (limit - own.usage() - HEADROOM) >> 20;
    run(Command::new("/bin/sh").args([
        "-c",
        &format!(
            "echo $$ > {} && exec dd if=/dev/zero of={} bs=1M count={fill_mib} status=none",
            own.path.join("cgroup.procs").display(),
            filler.path.join("ballast").display()
        ),
    ]));
    let held = own.usage();
    assert!(limit - held <= HEADROOM + (2 << 20), "usage {held} of {limit}: not near the limit");
    if own.version == 1 {
        std::fs::write(own.path.join(peak_file), "0").unwrap();
    }

    let comm = unique_name("prs-");
    let victim = victim_binary(work.path(), &comm);
    let elsewhere = MemCgroup::create(&comm, LIMIT);
    let since_ns = now_ns();
    let started = Instant::now();
    let victims = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let pids = kills(&elsewhere, &victim, STORM / 2);
                victims.lock().unwrap().extend(pids);
            });
        }
    });
    let storm_s = started.elapsed().as_secs_f64();
    let victims = victims.into_inner().unwrap();
    assert!(daemon.alive(), "the recorder was killed near its limit:\n{}", daemon.log());
    let recorded = wait_until(Duration::from_secs(30), || {
        let mine = ours(&rows(&db), &victims, since_ns);
        mine.len() == STORM && mine.iter().all(|r| r["sources"].as_array().is_some_and(|s| s.len() >= 2))
    });
    let mine = ours(&rows(&db), &victims, since_ns);
    assert!(recorded, "{} of {STORM} kills recorded\n{}", mine.len(), daemon.log());
    let settled = wait_until(Duration::from_secs(15), || status(&db).0 == Some(0));
    let (_, json) = status(&db);
    assert!(settled, "{json:#}\n{}", daemon.log());
    let top = own.read(peak_file).parse::<u64>().unwrap_or(0);
    let events = own.read(if own.version == 1 { "memory.oom_control" } else { "memory.events" });
    let oom_kills_here: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(oom_kills_here, 0, "nothing was killed in the recorder's cgroup: {events}");
    assert!(daemon.alive());
    assert_eq!(daemon.stop().code(), Some(0));
    drop(elsewhere);
    println!(
        "pressure: recorder at oom_score_adj {in_effect} (the unit's {adjust}{}) in a cgroup of {} MiB held \
         at {} MiB ({fill_mib} MiB of tmpfs ballast; the daemon's own peak {} MiB), highest usage {} MiB \
         during {STORM} kills elsewhere in {storm_s:.1} s: all {STORM} recorded, none lost, audit matches, \
         no OOM kill in its cgroup",
        if in_effect == adjust { "" } else { "; this root lacks CAP_SYS_RESOURCE to lower it" },
        limit >> 20,
        held >> 20,
        peak >> 20,
        top >> 20,
    );
}
