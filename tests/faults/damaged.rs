//! A damaged store: the commands that read say so (and never modify it),
//! and the daemon does not write into it: it renames it aside with its WAL,
//! starts a new store, and recovers what the kernel log still holds.

use std::time::Duration;

use super::*;

/// A kernel log of `n` kills of victims named `dmg-0001`…, as `dmesg` prints it.
fn log_of(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "[{i:5}.000000] Memory cgroup out of memory: Killed process {} (dmg-{i:04}) total-vm:207776kB, \
                 anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:0\n",
                10_000 + i
            )
        })
        .collect()
}

/// Overwrites, after its 8-byte header, the middle one of the pages that
/// hold the victims' names: damage neither edge of the table shows.
/// Returns the number of a victim whose row was on it.
fn damage_a_middle_page(db: &Path) -> usize {
    let mut bytes = std::fs::read(db).unwrap();
    let mut pages: Vec<usize> =
        bytes.windows(4).enumerate().filter(|(_, w)| w == b"dmg-").map(|(i, _)| i / 4096).collect();
    pages.dedup();
    assert!(pages.len() >= 5, "the kills span only {} pages", pages.len());
    let page = pages[pages.len() / 2];
    let text = &bytes[page * 4096..(page + 1) * 4096];
    let at = text.windows(4).position(|w| w == b"dmg-").unwrap();
    let number: usize = std::str::from_utf8(&text[at + 4..at + 8]).unwrap().parse().unwrap();
    for (i, b) in bytes[page * 4096 + 8..(page + 1) * 4096].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(db, &bytes).unwrap();
    number
}

#[test]
fn a_damaged_store_is_reported_and_the_daemon_sets_it_aside_and_recovers() {
    let _serial = serial("a_damaged_store_is_reported_and_the_daemon_sets_it_aside_and_recovers");
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("oomrecorder.db");
    let db_arg = db.to_str().unwrap();
    let log = work.path().join("kern.log");
    std::fs::write(&log, log_of(400)).unwrap();
    let out = cli(&["import", log.to_str().unwrap(), "--db", db_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A run that was killed (no clean stop): its last commits are in the WAL.
    let comm = unique_name("dmg-");
    let victim = victim_binary(work.path(), &comm);
    let since_ns = now_ns();
    let cgroup = MemCgroup::create(&comm, LIMIT);
    let mut daemon = Daemon::start(&db, work.path());
    let mut victims = kills(&cgroup, &victim, 2);
    assert!(wait_until(Duration::from_secs(15), || ours(&rows(&db), &victims, since_ns).len() == 2));
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !daemon.alive()));
    drop(daemon);
    let wal = PathBuf::from(format!("{db_arg}-wal"));
    assert!(wal.exists(), "the killed run left its WAL");

    let hidden = damage_a_middle_page(&db);
    let damaged = std::fs::read(&db).unwrap();
    let wal_bytes = std::fs::read(&wal).unwrap();
    let corrupt = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--db", db_arg]);
        let out = cli(&all);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), err)
    };
    // Readers: a `list` that reads the damaged page says so (the newest 50
    // are on sound pages, and are shown); `show` of a row on the damaged
    // page says damaged, not "no kill with id"; `status --check` checks
    // every page.
    let hidden_id = hidden.to_string();
    let readers: [&[&str]; 4] = [
        &["list", "--limit", "1000"],
        &["show", &hidden_id],
        &["status", "--check"],
        &["status", "--check", "--json"],
    ];
    for args in readers {
        let (code, err) = corrupt(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("is corrupt") && err.contains("PRAGMA integrity_check"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), damaged, "a reader changed the damaged file");

    // Kills while the daemon is down: in the kernel log only.
    victims.extend(kills(&cgroup, &victim, 2));
    let daemon = Daemon::start(&db, work.path());
    let log_text = daemon.log();
    assert!(log_text.contains("is damaged") && log_text.contains("moved it aside"), "{log_text}");
    let asides: Vec<PathBuf> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_string_lossy().contains("oomrecorder.db~corrupt-")
                && !p.to_string_lossy().ends_with("-wal")
                && !p.to_string_lossy().ends_with("-shm")
        })
        .collect();
    assert_eq!(asides.len(), 1, "{asides:?}");
    assert_eq!(std::fs::read(&asides[0]).unwrap(), damaged, "the damaged file is kept byte for byte");
    let aside_wal = PathBuf::from(format!("{}-wal", asides[0].display()));
    assert_eq!(std::fs::read(&aside_wal).unwrap(), wal_bytes, "with its WAL");

    // The new store recovers the four kills the kernel log still holds,
    // and records new ones.
    victims.extend(kills(&cgroup, &victim, 2));
    drop(cgroup);
    let recovered = wait_until(Duration::from_secs(15), || ours(&rows(&db), &victims, since_ns).len() == 6);
    let mine = ours(&rows(&db), &victims, since_ns);
    assert!(recovered, "{} of 6 in the new store\n{}", mine.len(), daemon.log());
    let (_, json) = status(&db);
    assert!(json["set_aside"]["path"].as_str().is_some_and(|p| p.contains("~corrupt-")), "{json:#}");
    let text = String::from_utf8_lossy(&cli(&["status", "--db", db_arg]).stdout).into_owned();
    assert!(text.contains("a damaged database was set aside"), "{text}");
    assert_eq!(daemon.stop().code(), Some(0));
    println!(
        "damaged: page of kill {hidden} overwritten; list, show {hidden} and status --check exit 2 naming it corrupt, \
         file unchanged; the daemon moved it aside with its WAL ({} bytes + {} bytes, unchanged) and \
         recovered 4 kills from the kernel log, then recorded 2 more",
        damaged.len(),
        wal_bytes.len()
    );
}
