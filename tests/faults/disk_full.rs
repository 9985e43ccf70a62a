//! Disk full: a message that could not be written waits, is retried, and
//! is stored once there is room; no id is reused, the log says `recorded`
//! only for what was committed, and `status` says what waits and why.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_disk_filled_during_a_storm_loses_no_kill_and_says_what_waits() {
    let _serial = serial("a_disk_filled_during_a_storm_loses_no_kill_and_says_what_waits");
    const BEFORE: usize = 3;
    const STORM: usize = 20;
    let disk = Tmpfs::mount("16m");
    let work = tempfile::tempdir().unwrap();
    let db = disk.path.join("oomrecorder.db");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut daemon = Daemon::start_with(&db, work.path(), &["--metrics-listen", &listen]);
    let comm = unique_name("full-");
    let victim = victim_binary(work.path(), &comm);
    let since_ns = now_ns();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut victims = kills(&cgroup, &victim, BEFORE);
    assert!(wait_until(Duration::from_secs(15), || ours(&rows(&db), &victims, since_ns).len() == BEFORE));

    let filler = disk.fill();
    assert!(disk.free() < 64 << 10, "{} bytes still free", disk.free());
    let full_at = Instant::now();
    victims.extend(kills(&cgroup, &victim, STORM));

    // While the disk is full: kills wait in the daemon, the run's row says
    // so (the reserve it freed lets it), and the log has claimed nothing
    // that is not in the store.
    let mut waiting = 0;
    let mut error = Value::Null;
    let mut gauge = None;
    let said = wait_until(Duration::from_secs(10), || {
        let (_, json) = status(&db);
        waiting = json["pipeline"]["writes_pending"].as_u64().unwrap_or(0);
        error = json["write_error"].clone();
        gauge = metric(port, "oomrecorder_writes_pending");
        waiting > 0
            && error["message"].as_str().is_some_and(|m| m.contains("full"))
            && gauge.is_some_and(|g| g > 0.0)
    });
    let stored_while_full = ours(&rows(&db), &victims, since_ns).len();
    no_lie_in_the_log(&daemon.log(), &rows(&db));
    assert!(
        said,
        "status and the metrics did not say writes wait: pending {waiting}, error {error}, gauge {gauge:?}\n{}",
        daemon.log()
    );
    assert!(stored_while_full < BEFORE + STORM, "the disk was not full: all {stored_while_full} stored");
    let (code, _) = status(&db);
    assert_eq!(code, Some(1), "not healthy while writes wait");

    // Room again: everything that waited is stored, each once, under its own id.
    std::fs::remove_file(filler).unwrap();
    let freed_at = Instant::now();
    let all_there = wait_until(Duration::from_secs(30), || {
        let mine = ours(&rows(&db), &victims, since_ns);
        mine.len() == BEFORE + STORM
            && mine.iter().all(|r| r["sources"].as_array().is_some_and(|s| s.len() >= 2))
    });
    let all = rows(&db);
    let mine = ours(&all, &victims, since_ns);
    assert!(
        all_there,
        "{} of {} kills stored after the disk had room again\n{}",
        mine.len(),
        BEFORE + STORM,
        daemon.log()
    );
    let mut pids: Vec<i64> = mine.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), BEFORE + STORM, "one record per kill");
    let log = daemon.log();
    no_lie_in_the_log(&log, &all);
    // One INFO line per kill, said once it was committed.
    let said_for_ours =
        recorded_lines(&log).values().filter(|p| victims.iter().any(|v| i64::from(*v) == p[0])).count();
    assert_eq!(said_for_ours, BEFORE + STORM, "one `recorded kill` line per kill:\n{log}");

    let settled = wait_until(Duration::from_secs(15), || status(&db).0 == Some(0));
    let (code, json) = status(&db);
    assert!(settled, "status after the disk had room: {code:?} {json:#}\n{log}");
    for (key, n) in json["losses"].as_object().unwrap() {
        assert_eq!(n, 0, "losses.{key}: {json:#}");
    }
    let late = json["pipeline"]["stored_late"].as_u64().unwrap();
    assert!(late > 0, "{json:#}");
    assert_eq!((&json["pipeline"]["writes_pending"], &json["write_error"]), (&0.into(), &Value::Null));
    assert_eq!(json["audit"]["matches"], true, "{json:#}");
    assert!(wait_until(Duration::from_secs(10), || metric(port, "oomrecorder_writes_pending") == Some(0.0)));
    assert_eq!(metric(port, "oomrecorder_audit_unrecorded_oom_kills"), Some(0.0));
    assert!(daemon.alive());
    assert_eq!(daemon.stop().code(), Some(0));
    println!(
        "disk full: {STORM} kills made on a full 16 MiB tmpfs ({:.1} s), {stored_while_full} of {} stored \
         while full, {waiting} writes pending as status said then ({}; the metrics gauge {gauge:?}); \
         all {} stored {:.1} s after room came back, {late} messages stored late, 0 lost, audit matches",
        freed_at.duration_since(full_at).as_secs_f64(),
        BEFORE + STORM,
        error["message"],
        BEFORE + STORM,
        freed_at.elapsed().as_secs_f64()
    );
}

/// The second case: a fresh database on a tiny tmpfs while the
/// kernel log already holds many kills (the catch-up writes them all at start).
#[test]
fn a_fresh_store_on_a_tiny_disk_keeps_the_catch_up_until_there_is_room() {
    let _serial = serial("a_fresh_store_on_a_tiny_disk_keeps_the_catch_up_until_there_is_room");
    const WAITING: usize = 40;
    let work = tempfile::tempdir().unwrap();
    let comm = unique_name("tiny-");
    let victim = victim_binary(work.path(), &comm);
    let since_ns = now_ns();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let victims = kills(&cgroup, &victim, WAITING);
    drop(cgroup);

    let disk = Tmpfs::mount("600k");
    let db = disk.path.join("oomrecorder.db");
    let mut daemon = Daemon::start(&db, work.path());
    // The catch-up hits the full disk: some kills are stored, the rest wait.
    let stuck = wait_until(Duration::from_secs(20), || {
        status(&db).1["pipeline"]["writes_pending"].as_u64().is_some_and(|n| n > 0)
            || daemon.log().contains("disk is full")
    });
    assert!(stuck, "the disk never filled:\n{}", daemon.log());
    std::thread::sleep(Duration::from_secs(2));
    let stored_while_full = ours(&rows(&db), &victims, since_ns).len();
    no_lie_in_the_log(&daemon.log(), &rows(&db));
    assert!(stored_while_full < WAITING, "all {stored_while_full} fit: the disk was not too small");

    disk.resize("16m");
    let all_there =
        wait_until(Duration::from_secs(30), || ours(&rows(&db), &victims, since_ns).len() == WAITING);
    let all = rows(&db);
    assert!(all_there, "{} of {WAITING} stored\n{}", ours(&all, &victims, since_ns).len(), daemon.log());
    no_lie_in_the_log(&daemon.log(), &all);
    let (_, json) = status(&db);
    let settled = wait_until(Duration::from_secs(10), || status(&db).1["pipeline"]["writes_pending"] == 0);
    assert!(settled, "{json:#}");
    let (_, json) = status(&db);
    for (key, n) in json["losses"].as_object().unwrap() {
        assert_eq!(n, 0, "losses.{key}: {json:#}");
    }
    assert!(daemon.alive());
    assert_eq!(daemon.stop().code(), Some(0));
    println!(
        "tiny disk: {WAITING} kills in the kernel log at start, a fresh store on a 600 KiB tmpfs: \
         {stored_while_full} stored before it was full, the rest waited; all {WAITING} stored once it \
         grew to 16 MiB, {} messages stored late, 0 lost",
        json["pipeline"]["stored_late"]
    );
}

/// `import` onto a disk that fills mid-way: it stops with the store's
/// error, keeps only whole transactions (4,096 kills each: a batch that
/// failed stored nothing), and once there is room a second import of the
/// same log adds exactly what is missing.
#[test]
fn an_import_onto_a_full_disk_keeps_whole_batches_and_a_second_import_adds_the_rest() {
    let _serial = serial("an_import_onto_a_full_disk_keeps_whole_batches_and_a_second_import_adds_the_rest");
    const KILLS: usize = 20_000;
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("kube.log");
    let mut text = String::new();
    for i in 0..KILLS {
        // The kubepods shape of the bench: an oom-kill: summary and a
        // Killed process line per kill, long systemd-driver cgroup paths.
        let (s, us) = (1 + i / 1000, (i % 1000) * 1000);
        let cg = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{:08x}_0000_4000_8000_{i:012x}.slice/cri-containerd-{i:064x}.scope",
            i % 997
        );
        text.push_str(&format!(
            "[{s:5}.{us:06}] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
             oom_memcg={cg},task_memcg={cg},task=app,pid={},uid=0\n\
             [{s:5}.{:06}] Memory cgroup out of memory: Killed process {} (app) total-vm:207776kB, \
             anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:0\n",
            10_000 + i,
            us + 40,
            10_000 + i
        ));
    }
    std::fs::write(&log, text).unwrap();
    let disk = Tmpfs::mount("24m");
    let db = disk.path.join("oomrecorder.db");
    let import = || {
        let script =
            format!("ulimit -v 1048576 && exec {BIN} import {} --db {}", log.display(), db.display());
        Command::new("/bin/sh").args(["-c", &script]).output().unwrap()
    };
    let stored = || rows(&db).len();

    let first = import();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "the disk never filled: {}", String::from_utf8_lossy(&first.stdout));
    assert!(err.contains("full"), "{err}");
    let kept = stored();
    assert!(kept < KILLS, "{kept}");
    assert_eq!(kept % 4096, 0, "{kept} kills kept: a batch was stored in part");

    disk.resize("512m");
    let second = import();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{out}{}", String::from_utf8_lossy(&second.stderr));
    let says = format!("{KILLS} kills found, {} added, {kept} already recorded", KILLS - kept);
    assert!(out.contains(&says), "{out}");
    assert_eq!(stored(), KILLS);
    println!(
        "import onto a full 24 MiB disk: {kept} of {KILLS} kept ({}); the second import: {}",
        err.trim(),
        out.trim()
    );
}
