//! Query times on a store of 1,000,000 synthetic kills: `list` newest 50, a
//! pod's kills of the last day, `show` by id, and `stats --since 7d`. Prints
//! the median (and the spread) of several runs of each against its target,
//! and each query's plan. Figures, not a pass/fail test: a shared machine is
//! noisy.
//!
//! Run: `cargo bench --bench queries` (release build). Building the store
//! takes a while; it is kept in the temp dir only for the run.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use oomrecorder::{
    model::{identity::Identity, Figures, Kill, Oom, Source, Victim},
    store::{self, Access, Filter, Store},
};

const KILLS: u64 = 1_000_000;
const RUNS: usize = 15;
const DAY_NS: i64 = 86_400_000_000_000;
/// The records span 180 days up to now, so 7 days hold about 39,000.
const SPAN_DAYS: i64 = 180;

/// A small deterministic generator (xorshift64*), so every run stores the
/// same data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const COMMS: [&str; 12] = [
    "java",
    "python3",
    "node",
    "postgres",
    "redis-server",
    "nginx",
    "ruby",
    "php-fpm",
    "envoy",
    "prometheus",
    "hog",
    "chrome",
];

fn synthetic(i: u64, now: i64, rng: &mut Rng) -> Kill {
    // Times spread evenly over the span, jittered; ids follow time closely
    // as they do in a real store.
    let time_ns = now - SPAN_DAYS * DAY_NS
        + (i as i64) * (SPAN_DAYS * DAY_NS / KILLS as i64)
        + rng.below(1_000_000_000) as i64;
    // 60 % in pods (2,000 pods in 40 namespaces, 3 containers each), 25 %
    // in systemd services, 15 % plain processes.
    let kind = rng.below(100);
    let (container, cgroup) = if kind < 60 {
        let pod = rng.below(2_000);
        let slot = rng.below(3);
        let id = format!("{:016x}{:016x}{:016x}{:016x}", pod, slot, pod * 31 + slot, 0xc0ffee);
        let identity = Identity {
            runtime: Some("containerd".into()),
            id: Some(id.clone()),
            pod_uid: Some(format!("{pod:08x}-0000-4000-8000-000000000000")),
            pod_namespace: Some(format!("ns-{}", pod % 40)),
            pod_name: Some(format!("app-{pod}")),
            container_name: Some(format!("c{slot}")),
            ..Identity::default()
        };
        (Some(identity), format!("/kubepods.slice/kubepods-pod{pod}.slice/cri-containerd-{id}.scope"))
    } else if kind < 85 {
        let unit = format!("svc-{}.service", rng.below(200));
        (Some(Identity { unit: Some(unit.clone()), ..Identity::default() }), format!("/system.slice/{unit}"))
    } else {
        (None, format!("/user.slice/user-{}.slice", 1000 + rng.below(50)))
    };
    let constraint = if rng.below(10) < 8 { "CONSTRAINT_MEMCG" } else { "CONSTRAINT_NONE" };
    Kill {
        time_ns: Some(time_ns),
        // A boot every ~5 days.
        boot_id: Some(format!("{:08x}-0000-4000-8000-000000000000", i * SPAN_DAYS as u64 / KILLS / 5)),
        boot_ns: Some(i * 1_000),
        recorded_ns: time_ns,
        sources: vec![Source::Ebpf, Source::Kmsg],
        victim: Victim {
            pid: (1_000 + i % 4_000_000) as i32,
            comm: Some(COMMS[rng.below(COMMS.len() as u64) as usize].into()),
            figures: Figures {
                anon_rss_kb: Some(rng.below(8 << 20)),
                file_rss_kb: Some(rng.below(1 << 16)),
                ..Figures::default()
            },
            ..Victim::default()
        },
        cgroup: Some(cgroup),
        memory_limit_bytes: Some(1 << 30),
        oom: Oom { constraint: Some(constraint.into()), ..Oom::default() },
        container,
        ..Kill::default()
    }
}

fn median_ms(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    (ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]))
}

fn time<T>(mut query: impl FnMut() -> T) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(query());
            start.elapsed()
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let start = Instant::now();
    {
        let mut store = Store::open(&path, Access::ReadWrite).expect("open store");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // One transaction: one fsync instead of a million.
        store
            .in_transaction(|store| {
                for i in 0..KILLS {
                    store.insert(&synthetic(i, now, &mut rng))?;
                }
                Ok(())
            })
            .expect("store synthetic kills");
    }
    println!("stored {KILLS} synthetic kills in {:.1} s", start.elapsed().as_secs_f64());

    let store = Store::open(&path, Access::ReadOnly).expect("open read-only");
    let newest = Filter { limit: Some(50), ..Filter::default() };
    let pod = Filter {
        limit: Some(50),
        pod: Some("app-77".into()),
        since_ns: Some(now - DAY_NS),
        ..Filter::default()
    };
    let week = Filter { since_ns: Some(now - 7 * DAY_NS), ..Filter::default() };
    let middle = (KILLS / 2) as i64;
    let pod_rows = store.list(&pod).expect("pod list").len();
    let week_total = store.stats(&week, 10).expect("stats").total;

    let results = [
        ("list newest 50", 50.0, time(|| store.list(&newest).expect("list").len())),
        ("list --pod app-77 --since 1d", 50.0, time(|| store.list(&pod).expect("list").len())),
        ("show ID", 20.0, time(|| store.get(middle).expect("get").is_some())),
        ("stats --since 7d", 500.0, time(|| store.stats(&week, 10).expect("stats").total)),
    ];
    println!("{pod_rows} kills of app-77 in the last day; {week_total} kills in the last 7 days\n");
    println!("{:<30} {:>10} {:>10} {:>20} {:>6}", "query", "median ms", "target ms", "min..max ms", "");
    for (name, target, times) in results {
        let (median, min, max) = median_ms(times);
        let verdict = if median <= target { "ok" } else { "SLOW" };
        println!(
            "{name:<30} {median:>10.2} {target:>10.0} {:>20} {verdict:>6}",
            format!("{min:.2}..{max:.2}")
        );
    }

    println!("\nquery plans:");
    let plans = [("list newest 50", newest.list_sql()), ("list --pod --since", pod.list_sql())]
        .into_iter()
        .chain([("stats --since 7d", store::stats_sql(&week))]);
    for (name, (sql, params)) in plans {
        let plan = store.query_plan(&sql, &params).expect("plan");
        println!("  {name}: {}", plan.join(" | "));
    }
}
