//! Import throughput: a 100,000-kill kernel log through the prefix stripper
//! and the report parser, then into a fresh database. Prints kills/s for
//! parsing alone and for parsing plus storing, as the median of 5 runs with
//! the spread, so a noisy shared machine shows as spread, not as a figure.
//!
//! Run: `cargo bench --bench import` (release build).
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{io::Cursor, time::Instant};

use oomrecorder::{
    pipeline::join,
    sources::import,
    store::{Access, Store},
};

const KILLS: usize = 100_000;
const RUNS: usize = 5;

/// A raw `dmesg` log: every 10th kill carries a full memcg report header (as
/// the kernel's rate limit allows), the others only their kill line, with an
/// unrelated kernel line between kills.
fn synthetic_log() -> String {
    let mut log = String::with_capacity(KILLS * 300);
    for i in 0..KILLS {
        let usec = 1_000_000 + i as u64 * 40_000;
        let t = |extra: u64| format!("[{:5}.{:06}] ", (usec + extra) / 1_000_000, (usec + extra) % 1_000_000);
        let pid = 10_000 + i;
        if i % 10 == 0 {
            log.push_str(&format!(
                "{}hog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
                t(0)
            ));
            log.push_str(&format!("{}CPU: 1 UID: 0 PID: {pid} Comm: hog Not tainted 6.18.0 #1\n", t(1)));
            log.push_str(&format!("{}memory: usage 65536kB, limit 65536kB, failcnt 12\n", t(2)));
            log.push_str(&format!("{}swap: usage 0kB, limit 0kB, failcnt 0\n", t(3)));
            log.push_str(&format!("{}Memory cgroup stats for /bench:\n", t(4)));
            for key in
                ["anon 67108864", "file 0", "kernel 1048576", "shmem 0", "inactive_file 0", "active_file 0"]
            {
                log.push_str(&format!("{}{key}\n", t(5)));
            }
            log.push_str(&format!("{}Tasks state (memory values in pages):\n", t(6)));
            log.push_str(&format!("{}[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name\n", t(6)));
            log.push_str(&format!("{}[ {pid:6}]     0 {pid:6}    51760    16547    16320      227        0   225280        0             0 hog\n", t(6)));
            log.push_str(&format!("{}oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/bench,task_memcg=/bench,task=hog,pid={pid},uid=0\n", t(7)));
        }
        log.push_str(&format!("{}Memory cgroup out of memory: Killed process {pid} (hog) total-vm:207040kB, anon-rss:65280kB, file-rss:908kB, shmem-rss:0kB, UID:0 pgtables:220kB oom_score_adj:0\n", t(8)));
        log.push_str(&format!("{}eth0: link up, 1000Mbps\n", t(9)));
    }
    log
}

fn median_and_spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn main() {
    let log = synthetic_log();
    println!("input: {KILLS} kills, {} lines, {:.1} MiB", log.lines().count(), log.len() as f64 / 1048576.0);

    let mut parse_rates = Vec::new();
    let mut store_rates = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let found = import::read_kills(Cursor::new(log.as_bytes())).expect("in-memory read");
        let parsed = started.elapsed();
        assert_eq!(found.kills.len(), KILLS, "the parser must find every kill");

        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("bench.db"), Access::ReadWrite).expect("open store");
        let stored_started = Instant::now();
        store
            .in_transaction(|store| {
                for kill in &found.kills {
                    join::record(store, kill)?;
                }
                Ok(())
            })
            .expect("store");
        let total = parsed + stored_started.elapsed();
        parse_rates.push(KILLS as f64 / parsed.as_secs_f64());
        store_rates.push(KILLS as f64 / total.as_secs_f64());
    }
    let (p, p_lo, p_hi) = median_and_spread(parse_rates);
    let (s, s_lo, s_hi) = median_and_spread(store_rates);
    println!("parse only:        {p:>10.0} kills/s (median of {RUNS}; {p_lo:.0}..{p_hi:.0})");
    println!("parse + store:     {s:>10.0} kills/s (median of {RUNS}; {s_lo:.0}..{s_hi:.0})");
    println!("goal:                   50000 kills/s; parse+store / goal = {:.2}", s / 50_000.0);
}
