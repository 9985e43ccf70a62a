//! Throughput of the kmsg OOM report parser, in kills per second, on synthetic
//! imports built from a real 6.12 report (tests/fixtures): the goal is an
//! import of 100,000 kills at 50,000 kills/s or more.
//!
//! `cargo bench -p oomrecorder --bench report`
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oomrecorder::report::{Item, Line, Parser};

const FIXTURE: &str = include_str!("../../tests/fixtures/kmsg-oom-6.12-v2-group.txt");

/// The first report of the fixture, from `invoked oom-killer` to just before
/// its `Killed process` line, without the dmesg time stamps.
fn header_lines() -> Vec<&'static str> {
    let texts: Vec<&str> = FIXTURE.lines().filter_map(|l| l.split_once("] ").map(|(_, text)| text)).collect();
    let start = texts.iter().position(|t| t.contains("invoked oom-killer")).unwrap_or(0);
    let end = texts.iter().position(|t| t.contains("Killed process")).unwrap_or(texts.len());
    texts[start..end].to_vec()
}

fn kill_line(pid: usize) -> String {
    format!(
        "Memory cgroup out of memory: Killed process {pid} (oomt-single) total-vm:133620kB, anon-rss:32576kB, \
         file-rss:0kB, shmem-rss:1248kB, UID:0 pgtables:116kB oom_score_adj:0"
    )
}

/// `kills` kill lines; every `header_every`-th comes with a full header (the
/// kernel prints at most 10 headers per 5 s, so real storms are mostly bare
/// kill lines), and an unrelated line sits between kills.
fn synthetic(kills: usize, header_every: usize) -> Vec<String> {
    let header = header_lines();
    let mut out = Vec::new();
    for i in 0..kills {
        let pid = 1000 + i;
        if i % header_every == 0 {
            for line in &header {
                // The summary names the victim; keep it consistent.
                match line.split_once(",pid=") {
                    Some((left, _)) if line.starts_with("oom-kill:") => {
                        out.push(format!("{left},pid={pid},uid=0"))
                    }
                    _ => out.push((*line).to_owned()),
                }
            }
        }
        out.push(kill_line(pid));
        out.push(
            "systemd[1]: app.service: A process of this unit has been killed by the OOM killer.".to_owned(),
        );
    }
    out
}

fn parse_all(lines: &[String]) -> usize {
    let mut parser = Parser::new();
    let mut kills = 0;
    for (i, text) in lines.iter().enumerate() {
        let items = parser.push(Line { usec: Some(i as u64), text });
        kills += items.iter().filter(|item| matches!(item, Item::Kill(_))).count();
    }
    kills + parser.finish().len()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    for (name, kills, header_every) in [
        ("100k kills, a header per 100", 100_000, 100),
        ("100k kills, a header per 10", 100_000, 10),
        ("10k kills, each with a full header", 10_000, 1),
    ] {
        let lines = synthetic(kills, header_every);
        assert_eq!(parse_all(&lines), kills);
        group.throughput(Throughput::Elements(kills as u64));
        group.bench_function(name, |b| b.iter(|| parse_all(black_box(&lines))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
